import CSodium

/// Process-wide libsodium setup and randomness.
///
/// Call ``initialize()`` once at start-up to get a thrown error instead of a trap if libsodium
/// cannot start (for example when the kernel's random source is unavailable). Every other
/// entry point of WeftCrypto initializes libsodium on first use too, so forgetting the call is
/// safe; it only turns a reportable error into a precondition failure.
public enum Sodium {
    /// `sodium_init()` runs exactly once per process (Swift guarantees a thread-safe lazy
    /// `static let`). 0 = initialized now, 1 = already initialized, -1 = failed.
    private static let initResult: Int32 = sodium_init()

    /// Initializes libsodium. Idempotent and thread-safe.
    public static func initialize() throws(CryptoError) {
        guard initResult >= 0 else { throw .initializationFailed }
    }

    /// Used by every non-throwing entry point. libsodium without a working CSPRNG cannot produce
    /// a single safe key, so failing here is a stop, not a recoverable condition.
    @inline(__always)
    static func ensureInitialized() {
        precondition(initResult >= 0, "libsodium failed to initialize (sodium_init returned -1); call Sodium.initialize() at start-up to report this as an error")
    }

    /// `count` bytes from libsodium's CSPRNG (`randombytes_buf`).
    public static func randomBytes(_ count: Int) -> [UInt8] {
        precondition(count >= 0, "randomBytes: negative count")
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 {
            out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        }
        return out
    }

    /// A uniformly random 64-bit value from libsodium's CSPRNG (for seeding `DeterministicRNG`,
    /// session indices, ...).
    public static func randomUInt64() -> UInt64 {
        ensureInitialized()
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { randombytes_buf($0.baseAddress!, $0.count) }
        return value
    }
}
