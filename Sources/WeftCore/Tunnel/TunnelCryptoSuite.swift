/// The primitives a tunnel needs, injected so WeftCore stays pure. `SodiumTunnelSuite`
/// (WeftCrypto) is the real one: X25519, BLAKE2b-256, ChaCha20-Poly1305-IETF. Tests use a
/// deterministic fake.
///
/// Contract for implementations:
/// - every function is safe to call from any thread (the data plane seals and opens
///   concurrently);
/// - nothing traps on remote input: a bad public key or a failed open returns nil;
/// - `generateEphemeralKeyPair` and `randomBytes` use a CSPRNG (the fake may be seeded).
public protocol TunnelCryptoSuite: Sendable {
    /// A fresh X25519 key pair (ephemeral handshake keys).
    func generateEphemeralKeyPair() -> Tunnel.EphemeralKeyPair

    /// `count` bytes from a CSPRNG (cookie secrets, cookie-reply nonces).
    func randomBytes(_ count: Int) -> [UInt8]

    /// X25519(secret, public): 32 bytes, or nil when the result is all zeros (a small-order
    /// public key).
    func dh(secret: Tunnel.Secret, publicKey: Tunnel.PublicKey) -> Tunnel.Secret?

    /// HASH: 32-byte unkeyed hash of the concatenation of `parts` (BLAKE2b-256).
    func hash(_ parts: [[UInt8]]) -> [UInt8]

    /// KDF_n (n = 1...3) in HKDF style with a keyed hash as PRF:
    /// `prk = PRF(key: chainingKey, input)`, `T1 = PRF(prk, 0x01)`,
    /// `T(i) = PRF(prk, T(i-1) ‖ i)`; returns `[T1, …, Tn]`, 32 bytes each.
    func kdf(chainingKey: Tunnel.Secret, input: UnsafeRawBufferPointer, outputs: Int) -> [Tunnel.Secret]

    /// MAC: a 16-byte keyed hash of `message` (BLAKE2b-128 keyed); used for MAC1, MAC2 and cookies.
    func mac(key: Tunnel.Secret, message: UnsafeRawBufferPointer) -> [UInt8]

    /// AEAD seal with a 64-bit counter nonce (ChaCha20-Poly1305-IETF, nonce = 4 zero bytes ‖
    /// LE64(counter)). Writes `plaintext.count + 16` bytes to `output` (which must be at least
    /// that large and may not overlap the input) and returns that count.
    func seal(key: Tunnel.Secret, counter: UInt64, plaintext: UnsafeRawBufferPointer,
              associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int

    /// AEAD open; writes `ciphertext.count - 16` bytes to `output` and returns that count, or
    /// nil when the input is shorter than a tag or fails authentication (then the contents of
    /// `output` are unspecified).
    func open(key: Tunnel.Secret, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
              associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int?
}

extension TunnelCryptoSuite {
    /// Array convenience for ``seal(key:counter:plaintext:associatedData:into:)``.
    public func seal(key: Tunnel.Secret, counter: UInt64, plaintext: [UInt8], associatedData: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: plaintext.count + Tunnel.tagByteCount)
        let n = out.withUnsafeMutableBytes { o in
            plaintext.withUnsafeBytes { p in
                associatedData.withUnsafeBytes { ad in
                    seal(key: key, counter: counter, plaintext: p, associatedData: ad, into: o)
                }
            }
        }
        precondition(n == out.count, "TunnelCryptoSuite.seal wrote \(n) bytes, expected \(out.count)")
        return out
    }

    /// Array convenience for ``open(key:counter:ciphertext:associatedData:into:)``.
    public func open(key: Tunnel.Secret, counter: UInt64, ciphertext: [UInt8], associatedData: [UInt8]) -> [UInt8]? {
        guard ciphertext.count >= Tunnel.tagByteCount else { return nil }
        var out = [UInt8](repeating: 0, count: ciphertext.count - Tunnel.tagByteCount)
        let n = out.withUnsafeMutableBytes { o in
            ciphertext.withUnsafeBytes { c in
                associatedData.withUnsafeBytes { ad in
                    open(key: key, counter: counter, ciphertext: c, associatedData: ad, into: o)
                }
            }
        }
        guard n == out.count else { return nil }
        return out
    }

    public func kdf(chainingKey: Tunnel.Secret, input: [UInt8], outputs: Int) -> [Tunnel.Secret] {
        input.withUnsafeBytes { kdf(chainingKey: chainingKey, input: $0, outputs: outputs) }
    }

    public func kdf(chainingKey: Tunnel.Secret, input: Tunnel.Secret, outputs: Int) -> [Tunnel.Secret] {
        input.withUnsafeBytes { kdf(chainingKey: chainingKey, input: $0, outputs: outputs) }
    }

    public func mac(key: Tunnel.Secret, message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { mac(key: key, message: $0) }
    }
}

extension Tunnel {
    /// Poly1305 tag length.
    public static let tagByteCount = 16
    /// MAC output length (MAC1, MAC2, cookie).
    public static let macByteCount = 16
}
