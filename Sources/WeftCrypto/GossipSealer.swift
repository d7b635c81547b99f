import CSodium
import Synchronization

/// Authenticated encryption for every gossip datagram and push-pull frame
/// (XChaCha20-Poly1305-IETF, key = `clusterKey.derive(context: "weftgosp", subkeyID: 1)`).
///
/// ```
///  0                   h                  h+24                               end
///  +-------------------+-------------------+----------------------------------+
///  | header (h bytes)  | nonce (24 bytes)  | ciphertext (n bytes) | tag (16)   |
///  | plaintext, but    | random per seal   | XChaCha20 of the     | Poly1305   |
///  | authenticated(AD) |                   | plaintext            |            |
///  +-------------------+-------------------+----------------------------------+
/// ```
///
/// Nonce rule: 24 random bytes from the CSPRNG per seal. With 192-bit nonces the chance of
/// any repeat stays below 2^-64 for the first 2^64 messages under one key, far beyond a
/// cluster key's life, so no counter or state is needed and two senders never coordinate.
///
/// Keys: a sealer holds a ``ClusterKeyring``'s gossip subkeys. It seals with the primary and
/// opens with any of them, the primary tried first (docs/security.md, "Key rotation"). Copies
/// share one keyring, so ``setKeyring(_:)`` changes every copy at once — the runtime's, the TCP
/// hello gate's — without a restart.
public struct GossipSealer: Sendable {
    public static let nonceByteCount = 24   // crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
    public static let tagByteCount = 16     // crypto_aead_xchacha20poly1305_ietf_ABYTES
    /// Bytes `seal` adds besides the header: nonce + tag = 40.
    public static let overhead: Int = nonceByteCount + tagByteCount

    private final class Keys: Sendable {
        /// Gossip subkeys, the primary first.
        let subkeys: Mutex<[SecretBytes]>
        init(_ k: [SecretBytes]) { subkeys = Mutex(k) }
    }
    private let keys: Keys

    public init(clusterKey: ClusterKey) {
        self.init(keyring: ClusterKeyring(primary: clusterKey))
    }

    public init(keyring: ClusterKeyring) {
        keys = Keys(Self.subkeys(keyring))
    }

    /// Replaces the keys of this sealer and of every copy of it.
    public func setKeyring(_ keyring: ClusterKeyring) {
        let k = Self.subkeys(keyring)
        keys.subkeys.withLock { $0 = k }
    }

    /// How many keys open (1 outside a rotation).
    public var keyCount: Int { keys.subkeys.withLock { $0.count } }

    private static func subkeys(_ keyring: ClusterKeyring) -> [SecretBytes] {
        keyring.keys.map { $0.derive(context: KDFContext.gossip, subkeyID: 1) }
    }

    private var primary: SecretBytes { keys.subkeys.withLock { $0[0] } }

    /// `header || nonce || ciphertext+tag`; the header travels in clear but is authenticated.
    public func seal(_ plaintext: [UInt8], header: [UInt8]) -> [UInt8] {
        Sodium.ensureInitialized()
        let h = header.count, n = GossipSealer.nonceByteCount
        var out = [UInt8](repeating: 0, count: h + n + plaintext.count + GossipSealer.tagByteCount)
        out.withUnsafeMutableBufferPointer { o in
            let base = o.baseAddress!
            if h > 0 { header.withUnsafeBufferPointer { base.update(from: $0.baseAddress!, count: h) } }
            randombytes_buf(base + h, n)
            var clen: UInt64 = 0
            let rc = primary.withUnsafeBytes { k in
                plaintext.withUnsafeBufferPointer { p in
                    header.withUnsafeBufferPointer { ad in
                        crypto_aead_xchacha20poly1305_ietf_encrypt(
                            base + h + n, &clen, p.baseAddress, UInt64(p.count),
                            ad.baseAddress, UInt64(ad.count), nil, base + h,
                            k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    }
                }
            }
            precondition(rc == 0 && Int(clen) == plaintext.count + GossipSealer.tagByteCount, "AEAD encrypt failed")
        }
        return out
    }

    /// Checks and decrypts `sealed` whose first `headerLength` bytes are the clear header.
    /// - Throws: ``CryptoError/malformed(_:)`` when shorter than header + overhead (or a
    ///   negative header length), ``CryptoError/authenticationFailed`` for a wrong key or any
    ///   change to header, nonce, ciphertext or tag.
    public func open(_ sealed: [UInt8], headerLength: Int) throws(CryptoError) -> [UInt8] {
        guard headerLength >= 0 else { throw .malformed("negative header length") }
        // Written without `headerLength + overhead`, which could overflow for a huge length.
        guard sealed.count >= GossipSealer.overhead, headerLength <= sealed.count - GossipSealer.overhead else {
            throw .malformed("sealed message of \(sealed.count) bytes is shorter than header (\(headerLength)) + \(GossipSealer.overhead)")
        }
        Sodium.ensureInitialized()
        let h = headerLength, n = GossipSealer.nonceByteCount
        let cipherLength = sealed.count - h - n
        var plain = [UInt8](repeating: 0, count: cipherLength - GossipSealer.tagByteCount)
        // Each key is tried on the whole message; a failed attempt writes nothing usable.
        for key in keys.subkeys.withLock({ $0 }) {
            var mlen: UInt64 = 0
            let rc = sealed.withUnsafeBufferPointer { s in
                let base = s.baseAddress!
                return plain.withUnsafeMutableBufferPointer { p in
                    key.withUnsafeBytes { k in
                        // A zero-length buffer may have no base address; libsodium never writes then.
                        crypto_aead_xchacha20poly1305_ietf_decrypt(
                            p.baseAddress ?? UnsafeMutablePointer(mutating: base), &mlen, nil,
                            base + h + n, UInt64(cipherLength), h > 0 ? base : nil, UInt64(h), base + h,
                            k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    }
                }
            }
            if rc == 0 { return plain }
        }
        throw .authenticationFailed
    }
}
