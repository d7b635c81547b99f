import CSodium
import WeftCore

/// A node's long-term Ed25519 public key (32 bytes): its identity in gossip.
public struct PublicKey: Sendable, Hashable, CustomStringConvertible {
    public static let byteCount = 32

    public let bytes: [UInt8]

    /// Accepts exactly 32 bytes. Whether they are a valid curve point is checked by
    /// ``verify(_:of:)`` and ``x25519()``, which fail for invalid points.
    public init(bytes: [UInt8]) throws(CryptoError) {
        guard bytes.count == PublicKey.byteCount else {
            throw .invalidKeyLength(expected: PublicKey.byteCount, got: bytes.count)
        }
        self.bytes = bytes
    }

    /// The node ID this key stands for; see ``NodeIdentity/nodeID(forPublicKey:)``.
    public var nodeID: NodeID { NodeIdentity.derive(bytes) }

    /// Checks a 64-byte Ed25519 detached signature. Any other signature length is false.
    public func verify(_ signature: [UInt8], of message: [UInt8]) -> Bool {
        guard signature.count == IdentityKeyPair.signatureByteCount else { return false }
        Sodium.ensureInitialized()
        return signature.withUnsafeBufferPointer { sig in
            message.withUnsafeBufferPointer { msg in
                bytes.withUnsafeBufferPointer { pk in
                    crypto_sign_ed25519_verify_detached(sig.baseAddress!, msg.baseAddress, UInt64(msg.count), pk.baseAddress!) == 0
                }
            }
        }
    }

    /// The same key as an X25519 (Montgomery) public key, for Diffie-Hellman in tunnel
    /// handshakes (`crypto_sign_ed25519_pk_to_curve25519`). Nil when the bytes are not a valid
    /// Ed25519 point (or a small-order one), so a hostile member cannot feed us a weak key.
    public func x25519() -> [UInt8]? {
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: 32)
        let rc = out.withUnsafeMutableBufferPointer { o in
            bytes.withUnsafeBufferPointer { crypto_sign_ed25519_pk_to_curve25519(o.baseAddress!, $0.baseAddress!) }
        }
        return rc == 0 ? out : nil
    }

    /// Lowercase hex of the key.
    public var hex: String { Hex.encode(bytes) }

    public var description: String { "PublicKey(\(Hex.encode(bytes.prefix(8)))…)" }
}

/// Derivation and check of node IDs from public keys.
///
/// `nodeID = BLAKE2b-256(key: none, message: "weft-node-id-v1" || publicKey)[0..<16]`
///
/// The ASCII prefix separates this hash from any other use of the key; the ID is a hash (not
/// the key itself) so IDs are uniformly spread for the membership and IPAM rings.
public enum NodeIdentity {
    /// Domain separation prefix for node IDs. Never change: IDs are persisted and gossiped.
    public static let domain: [UInt8] = Array("weft-node-id-v1".utf8)

    /// The node ID for a 32-byte Ed25519 public key; nil for any other length.
    public static func nodeID(forPublicKey bytes: [UInt8]) -> NodeID? {
        guard bytes.count == PublicKey.byteCount else { return nil }
        return derive(bytes)
    }

    /// True when `id` is the node ID of `publicKey` (so a gossiped member cannot claim an ID
    /// that its key does not hash to). Compared in constant time.
    public static func matches(_ id: NodeID, publicKey: [UInt8]) -> Bool {
        guard let derived = nodeID(forPublicKey: publicKey) else { return false }
        return constantTimeEqual(derived.bytes, id.bytes)
    }

    static func derive(_ publicKey: [UInt8]) -> NodeID {
        let digest = Blake2b.hash(domain + publicKey, outputLength: 32)
        return NodeID(bytes: digest[0..<NodeID.byteCount])!
    }
}

/// Unkeyed or keyed BLAKE2b (`crypto_generichash`).
enum Blake2b {
    static func hash(_ message: [UInt8], outputLength: Int, key: [UInt8] = []) -> [UInt8] {
        precondition((16...64).contains(outputLength) && key.count <= 64)
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: outputLength)
        let rc = out.withUnsafeMutableBufferPointer { o in
            message.withUnsafeBufferPointer { m in
                key.withUnsafeBufferPointer { k in
                    crypto_generichash(o.baseAddress!, outputLength, m.baseAddress, UInt64(m.count),
                                       k.count == 0 ? nil : k.baseAddress, k.count)
                }
            }
        }
        precondition(rc == 0, "crypto_generichash failed with valid parameters")
        return out
    }
}
