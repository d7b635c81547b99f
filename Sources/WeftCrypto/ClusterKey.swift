import CSodium
import WeftCore

/// The shared secret every member of a cluster holds (32 random bytes). Gossip keys and other
/// cluster-wide keys are derived from it with ``derive(context:subkeyID:)``; the key itself
/// never encrypts anything.
///
/// Printed form (what `weft keygen` prints and `cluster.key` stores):
///
///     weft1:<base64 of the 32 key bytes, standard alphabet, with padding>   (50 characters)
///
/// ``init(text:)`` ignores surrounding whitespace and newlines, so a file written by
/// `echo` or an editor is fine.
public struct ClusterKey: Sendable, Equatable, CustomStringConvertible {
    public static let byteCount = 32
    /// Prefix of the printed form; the digit is the format version.
    public static let textPrefix = "weft1:"

    private let key: SecretBytes

    /// Fresh random cluster key (`crypto_kdf_keygen`).
    public static func generate() -> ClusterKey {
        Sodium.ensureInitialized()
        return ClusterKey(checked: SecretBytes(count: byteCount) { crypto_kdf_keygen($0.baseAddress!.assumingMemoryBound(to: UInt8.self)) })
    }

    /// From raw key bytes (exactly 32).
    public init(bytes: SecretBytes) throws(CryptoError) {
        guard bytes.count == ClusterKey.byteCount else {
            throw .invalidKeyLength(expected: ClusterKey.byteCount, got: bytes.count)
        }
        self.init(checked: bytes)
    }

    private init(checked: SecretBytes) { key = checked }

    /// Parses the printed form. Errors say what is wrong and never echo the key.
    public init(text: String) throws(CryptoError) {
        let hint = "expected \"\(ClusterKey.textPrefix)\" followed by 44 base64 characters, as printed by `weft keygen`"
        let trimmed = Array(text.utf8).trimmingASCIIWhitespace()
        guard !trimmed.isEmpty else { throw .invalidKeyText("the cluster key is empty: \(hint)") }
        let prefix = Array(ClusterKey.textPrefix.utf8)
        guard trimmed.starts(with: prefix) else {
            throw .invalidKeyText("the cluster key does not start with \"\(ClusterKey.textPrefix)\": \(hint)")
        }
        let body = Array(trimmed.dropFirst(prefix.count))
        guard !body.isEmpty else { throw .invalidKeyText("the cluster key has nothing after \"\(ClusterKey.textPrefix)\": \(hint)") }
        Sodium.ensureInitialized()
        // Decode into a buffer larger than a key so "too long" is reported as such.
        let maxLength = 3 * (body.count / 4 + 1)
        var decodedLength = 0
        var rc: Int32 = -1
        let decoded = SecretBytes(count: maxLength) { out in
            body.withUnsafeBufferPointer { b in
                b.withMemoryRebound(to: CChar.self) { chars in
                    rc = sodium_base642bin(out.baseAddress!.assumingMemoryBound(to: UInt8.self), out.count,
                                           chars.baseAddress!, chars.count, nil, &decodedLength, nil,
                                           sodium_base64_VARIANT_ORIGINAL)
                }
            }
        }
        guard rc == 0 else {
            throw .invalidKeyText("the cluster key is not valid base64 after \"\(ClusterKey.textPrefix)\": \(hint)")
        }
        guard decodedLength == ClusterKey.byteCount else {
            throw .invalidKeyText("the cluster key holds \(decodedLength) bytes, expected \(ClusterKey.byteCount): \(hint)")
        }
        key = SecretBytes(count: ClusterKey.byteCount) { out in
            decoded.withUnsafeBytes { out.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<ClusterKey.byteCount])) }
        }
    }

    /// The printed form, `weft1:` + base64. This is the secret: write it only to a 0600 file.
    public var text: String {
        Sodium.ensureInitialized()
        let length = sodium_base64_encoded_len(ClusterKey.byteCount, sodium_base64_VARIANT_ORIGINAL)  // includes NUL
        var chars = [CChar](repeating: 0, count: length)
        key.withUnsafeBytes { k in
            _ = chars.withUnsafeMutableBufferPointer { c in
                sodium_bin2base64(c.baseAddress!, c.count, k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count,
                                  sodium_base64_VARIANT_ORIGINAL)
            }
        }
        let body = chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return ClusterKey.textPrefix + String(decoding: body, as: UTF8.self)
    }

    /// A public fingerprint of the cluster: 16 lowercase hex characters (64 bits), safe to show
    /// in `weft status` and logs. It is the first 8 bytes of
    /// `derive(context: "weftclid", subkeyID: 0)`, so it is one-way and shares no bytes with
    /// the key or with any key used for encryption.
    public var clusterID: String {
        derive(context: KDFContext.clusterID, subkeyID: 0).withUnsafeBytes { Hex.encode($0.prefix(8)) }
    }

    /// A 32-byte subkey: `crypto_kdf_derive_from_key(32, subkeyID, context, clusterKey)`
    /// (BLAKE2b keyed with the cluster key, salt = subkeyID little-endian, personal = context).
    ///
    /// - Parameter context: exactly 8 ASCII bytes naming the purpose. Contexts are constants
    ///   in the code (see ``KDFContext`` and docs/security.md); anything else is a programming
    ///   error and traps.
    public func derive(context: String, subkeyID: UInt64) -> SecretBytes {
        let ctx = Array(context.utf8)
        precondition(ctx.count == 8 && ctx.allSatisfy { $0 >= 0x20 && $0 < 0x7f },
                     "KDF context must be exactly 8 printable ASCII characters, got \(ctx.count) bytes")
        Sodium.ensureInitialized()
        return SecretBytes(count: 32) { out in
            key.withUnsafeBytes { k in
                ctx.withUnsafeBufferPointer { c in
                    c.withMemoryRebound(to: CChar.self) { cc in
                        let rc = crypto_kdf_derive_from_key(out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32, subkeyID,
                                                            cc.baseAddress!, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                        precondition(rc == 0, "crypto_kdf_derive_from_key failed with valid parameters")
                    }
                }
            }
        }
    }

    /// Constant time.
    public static func == (a: ClusterKey, b: ClusterKey) -> Bool { a.key == b.key }

    /// Shows only the fingerprint.
    public var description: String { "ClusterKey(id \(clusterID))" }
}

/// Every KDF context used with ``ClusterKey/derive(context:subkeyID:)``. Each is 8 ASCII bytes
/// and never changes meaning once released; add new ones here and to docs/security.md.
public enum KDFContext {
    /// Gossip/push-pull AEAD key, subkey 1 (``GossipSealer``).
    public static let gossip = "weftgosp"
    /// Public cluster fingerprint, subkey 0 (``ClusterKey/clusterID``).
    public static let clusterID = "weftclid"
}

extension Array where Element == UInt8 {
    func trimmingASCIIWhitespace() -> ArraySlice<UInt8> {
        func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0a || b == 0x0d || b == 0x0b || b == 0x0c }
        var lo = startIndex, hi = endIndex
        while lo < hi && isSpace(self[lo]) { lo += 1 }
        while hi > lo && isSpace(self[hi - 1]) { hi -= 1 }
        return self[lo..<hi]
    }
}
