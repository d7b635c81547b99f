import WeftCore

extension Membership.ClaimSigner {
    /// Ed25519 claims (issue 9): this node's identity key signs its record, accusations and
    /// leave (`crypto_sign_ed25519_detached`); other members' claims are checked against their
    /// 32-byte keys (`crypto_sign_ed25519_verify_detached`). Messages are the domain-separated
    /// encodings of `Membership.Claims` and `IPAM.Claims`.
    public static func ed25519(identity: IdentityKeyPair) -> Membership.ClaimSigner {
        Membership.ClaimSigner(
            sign: { identity.sign($0) },
            verify: { key, message, signature in
                guard let pk = try? PublicKey(bytes: key) else { return false }
                return pk.verify(signature, of: message)
            })
    }
}
