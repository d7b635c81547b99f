import CSodium

/// Anonymous public-key encryption to one member (`crypto_box_seal`: an ephemeral X25519 key,
/// XSalsa20-Poly1305), to the X25519 form of the member's Ed25519 identity key. Used to hand a
/// new cluster key to each member (`weft keys install`): the frame carrying it is also sealed
/// with the cluster key, but a rotation is often *because* that key may have leaked, and whoever
/// holds it must not read the new one off the wire.
public enum SealedBox {
    /// Bytes `seal` adds: the ephemeral public key (32) and the tag (16).
    public static let overhead = 48

    /// Nil when `recipient` is not a usable Ed25519 point.
    public static func seal(_ plaintext: [UInt8], to recipient: PublicKey) -> [UInt8]? {
        guard let pk = recipient.x25519() else { return nil }
        Sodium.ensureInitialized()
        var out = [UInt8](repeating: 0, count: plaintext.count + overhead)
        let rc = out.withUnsafeMutableBufferPointer { o in
            plaintext.withUnsafeBufferPointer { p in
                pk.withUnsafeBufferPointer { k in
                    crypto_box_seal(o.baseAddress!, p.baseAddress, UInt64(p.count), k.baseAddress!)
                }
            }
        }
        return rc == 0 ? out : nil
    }

    /// Opens what ``seal(_:to:)`` made for `identity`; nil when it was made for someone else,
    /// was changed, or is too short.
    public static func open(_ sealed: [UInt8], with identity: IdentityKeyPair) -> SecretBytes? {
        guard sealed.count > overhead, let pk = identity.publicKey.x25519() else { return nil }
        Sodium.ensureInitialized()
        let sk = identity.x25519SecretKey()
        var rc: Int32 = -1
        let plain = SecretBytes(count: sealed.count - overhead) { out in
            sk.withUnsafeBytes { s in
                sealed.withUnsafeBufferPointer { c in
                    pk.withUnsafeBufferPointer { p in
                        rc = crypto_box_seal_open(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                                  c.baseAddress!, UInt64(c.count), p.baseAddress!,
                                                  s.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    }
                }
            }
        }
        return rc == 0 ? plain : nil
    }
}
