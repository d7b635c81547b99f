import WeftCore

extension Membership.ClaimSigner {
    /// Ed25519 claims (issue 9): this node's identity key signs its record, accusations and
    /// leave (`crypto_sign_ed25519_detached`); other members' claims are checked against their
    /// 32-byte keys (`crypto_sign_ed25519_verify_detached`). Messages are the domain-separated
    /// encodings of `Membership.Claims` and `IPAM.Claims`.
    ///
    /// Pair keys for point-to-point frames: both identities converted to X25519
    /// (`crypto_sign_ed25519_sk_to_curve25519`, `…_pk_to_curve25519`), one `crypto_scalarmult`,
    /// then BLAKE2b-256 of `"weft-ipam-pair-v1\0" ‖ shared ‖ lower key ‖ higher key` (both Ed25519
    /// public keys, sorted, so both ends derive the same key; the context keeps it apart from
    /// the tunnel handshake's use of the same static DH). A peer key that is not a valid point,
    /// or whose DH is all zeros (small order), yields none. Tags are keyed BLAKE2b-256
    /// (`crypto_generichash`), compared in constant time.
    public static func ed25519(identity: IdentityKeyPair) -> Membership.ClaimSigner {
        let secret = identity.x25519SecretKey()
        let mine = identity.publicKey.bytes
        return Membership.ClaimSigner(
            sign: { identity.sign($0) },
            verify: { key, message, signature in
                guard let pk = try? PublicKey(bytes: key) else { return false }
                return pk.verify(signature, of: message)
            },
            pairKey: { peer in
                guard let pk = try? PublicKey(bytes: peer), let curve = pk.x25519(),
                      let shared = X25519.sharedSecret(secretKey: secret, publicKey: curve) else { return nil }
                let (low, high) = mine.lexicographicallyPrecedes(peer) ? (mine, peer) : (peer, mine)
                return shared.withUnsafeBytes { s in Blake2b.hash(pairContext + Array(s) + low + high, outputLength: 32) }
            },
            mac: { key, message in Blake2b.hash(message, outputLength: macBytes, key: key) },
            checkMAC: { key, message, tag in
                tag.count == macBytes && constantTimeEqual(Blake2b.hash(message, outputLength: macBytes, key: key), tag)
            })
    }

    static let pairContext = Array("weft-ipam-pair-v1\u{0}".utf8)
}
