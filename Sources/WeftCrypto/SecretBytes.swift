import CSodium

/// Secret key material: owns its bytes, compares in constant time, prints redacted and is
/// wiped with `sodium_memzero` when the last reference goes away.
///
/// The storage is immutable after `init`, so sharing one instance across threads is safe
/// (hence `@unchecked Sendable`). Bytes are kept in ordinary heap memory, not `sodium_malloc`
/// guard pages: session keys are many and small, and guard pages cost several pages each.
/// Copies you make with ``withUnsafeBytes(_:)`` or ``copyBytes()`` are yours to wipe.
public final class SecretBytes: @unchecked Sendable, Equatable, CustomStringConvertible {
    private let storage: UnsafeMutableRawBufferPointer

    /// Number of secret bytes.
    public var count: Int { length }

    /// Takes a copy of `bytes`. The caller's array is not wiped (Swift arrays may have been
    /// copied already); prefer ``init(count:fill:)`` or ``random(count:)`` for fresh secrets.
    public convenience init(_ bytes: [UInt8]) {
        self.init(count: bytes.count) { buffer in
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        }
    }

    /// Allocates `count` zeroed bytes and lets `fill` write them in place, so the secret never
    /// exists in an unmanaged copy.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) -> Void) {
        precondition(count >= 0, "SecretBytes: negative count")
        // At least one byte so the base address is never nil; only `length` bytes are exposed.
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
        length = count
        fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
    }

    private let length: Int

    /// `count` fresh random bytes from libsodium's CSPRNG.
    public static func random(count: Int) -> SecretBytes {
        Sodium.ensureInitialized()
        return SecretBytes(count: count) { buffer in
            if buffer.count > 0 { randombytes_buf(buffer.baseAddress!, buffer.count) }
        }
    }

    deinit {
        sodium_memzero(storage.baseAddress!, storage.count)
        storage.deallocate()
    }

    /// Read access to the secret bytes. Do not let the pointer escape the closure.
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<length]))
    }

    /// An unmanaged copy, for persistence (`NodeStore.saveIdentitySecret`). Wipe it when done if
    /// you can; prefer ``withUnsafeBytes(_:)`` where possible.
    public func copyBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Constant-time in the contents (`sodium_memcmp`); lengths are not secret and a length
    /// mismatch returns false immediately.
    public static func == (lhs: SecretBytes, rhs: SecretBytes) -> Bool {
        if lhs === rhs { return true }
        guard lhs.length == rhs.length else { return false }
        if lhs.length == 0 { return true }
        return sodium_memcmp(lhs.storage.baseAddress!, rhs.storage.baseAddress!, lhs.length) == 0
    }

    public var description: String { "<redacted \(length) bytes>" }
}

extension SecretBytes: CustomDebugStringConvertible {
    public var debugDescription: String { description }
}

extension SecretBytes: CustomReflectable {
    /// Keeps `dump()` and debugger summaries from showing the storage pointer's contents.
    public var customMirror: Mirror { Mirror(self, children: ["count": length]) }
}

/// Constant-time comparison of two byte arrays (`sodium_memcmp`). Arrays of different lengths
/// are unequal (the length itself is not treated as secret). Two empty arrays are equal.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    Sodium.ensureInitialized()
    return a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
    }
}
