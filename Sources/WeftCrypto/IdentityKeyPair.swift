import CSodium
import WeftCore

/// A node's long-term Ed25519 identity key pair.
///
/// The secret key is libsodium's 64-byte form (`seed(32) || publicKey(32)`), which is also what
/// the store persists. The same key converts to X25519 for tunnel handshakes
/// (``x25519SecretKey()`` and ``PublicKey/x25519()``), so a node has one identity, not two.
public struct IdentityKeyPair: Sendable, CustomStringConvertible {
    public static let secretKeyByteCount = 64
    public static let seedByteCount = 32
    public static let signatureByteCount = 64

    /// The 64-byte libsodium secret key, for persistence.
    public let secretKey: SecretBytes
    public let publicKey: PublicKey

    /// A fresh random key pair (`crypto_sign_ed25519_keypair`).
    public static func generate() -> IdentityKeyPair {
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: PublicKey.byteCount)
        let sk = SecretBytes(count: secretKeyByteCount) { skBuf in
            let rc = pk.withUnsafeMutableBufferPointer { p in
                crypto_sign_ed25519_keypair(p.baseAddress!, skBuf.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
            precondition(rc == 0, "crypto_sign_ed25519_keypair failed")
        }
        return IdentityKeyPair(checkedSecretKey: sk, publicKey: try! PublicKey(bytes: pk))
    }

    /// Restores a key pair from the 64-byte libsodium secret key. The embedded public half is
    /// recomputed from the seed and must match, so a damaged stored key is refused rather than
    /// producing a node that signs with one key and announces another.
    public init(secretKey: SecretBytes) throws(CryptoError) {
        guard secretKey.count == IdentityKeyPair.secretKeyByteCount else {
            throw .invalidKeyLength(expected: IdentityKeyPair.secretKeyByteCount, got: secretKey.count)
        }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: PublicKey.byteCount)
        let recomputed = SecretBytes(count: IdentityKeyPair.secretKeyByteCount) { out in
            secretKey.withUnsafeBytes { sk in
                _ = pk.withUnsafeMutableBufferPointer { p in
                    crypto_sign_ed25519_seed_keypair(p.baseAddress!, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                     sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard recomputed == secretKey else {
            throw .malformed("identity secret key is inconsistent (its public half does not match its seed)")
        }
        self.init(checkedSecretKey: secretKey, publicKey: try PublicKey(bytes: pk))
    }

    /// Deterministic key pair from a 32-byte seed (`crypto_sign_ed25519_seed_keypair`); for
    /// tests and test vectors.
    public init(seed: SecretBytes) throws(CryptoError) {
        guard seed.count == IdentityKeyPair.seedByteCount else {
            throw .invalidKeyLength(expected: IdentityKeyPair.seedByteCount, got: seed.count)
        }
        Sodium.ensureInitialized()
        var pk = [UInt8](repeating: 0, count: PublicKey.byteCount)
        let sk = SecretBytes(count: IdentityKeyPair.secretKeyByteCount) { out in
            seed.withUnsafeBytes { s in
                _ = pk.withUnsafeMutableBufferPointer { p in
                    crypto_sign_ed25519_seed_keypair(p.baseAddress!, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                     s.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        self.init(checkedSecretKey: sk, publicKey: try PublicKey(bytes: pk))
    }

    private init(checkedSecretKey: SecretBytes, publicKey: PublicKey) {
        self.secretKey = checkedSecretKey
        self.publicKey = publicKey
    }

    /// `publicKey.nodeID`.
    public var nodeID: NodeID { publicKey.nodeID }

    /// A 64-byte Ed25519 detached signature of `message`.
    public func sign(_ message: [UInt8]) -> [UInt8] {
        var sig = [UInt8](repeating: 0, count: IdentityKeyPair.signatureByteCount)
        secretKey.withUnsafeBytes { sk in
            _ = sig.withUnsafeMutableBufferPointer { s in
                message.withUnsafeBufferPointer { m in
                    crypto_sign_ed25519_detached(s.baseAddress!, nil, m.baseAddress, UInt64(m.count),
                                                 sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return sig
    }

    /// The X25519 secret scalar for this identity (`crypto_sign_ed25519_sk_to_curve25519`).
    /// Pairs with `publicKey.x25519()`.
    public func x25519SecretKey() -> SecretBytes {
        SecretBytes(count: 32) { out in
            secretKey.withUnsafeBytes { sk in
                _ = crypto_sign_ed25519_sk_to_curve25519(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                         sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
    }

    public var description: String { "IdentityKeyPair(node \(nodeID.short), secret \(secretKey))" }
}

/// X25519 Diffie-Hellman (`crypto_scalarmult`). Returns nil when the result is all zeros
/// (the peer sent a small-order point), which libsodium reports as an error.
public enum X25519 {
    public static func sharedSecret(secretKey: SecretBytes, publicKey: [UInt8]) -> SecretBytes? {
        guard secretKey.count == 32, publicKey.count == 32 else { return nil }
        Sodium.ensureInitialized()
        var rc: Int32 = -1
        let shared = SecretBytes(count: 32) { out in
            secretKey.withUnsafeBytes { sk in
                publicKey.withUnsafeBufferPointer { pk in
                    rc = crypto_scalarmult(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                           sk.baseAddress!.assumingMemoryBound(to: UInt8.self), pk.baseAddress!)
                }
            }
        }
        return rc == 0 ? shared : nil
    }

    /// The X25519 public key for a 32-byte X25519 secret (`crypto_scalarmult_base`).
    public static func publicKey(secretKey: SecretBytes) -> [UInt8]? {
        guard secretKey.count == 32 else { return nil }
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: 32)
        let rc = secretKey.withUnsafeBytes { sk in
            out.withUnsafeMutableBufferPointer { o in
                crypto_scalarmult_base(o.baseAddress!, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return rc == 0 ? out : nil
    }
}
