import CSodium
import WeftCore

extension KDFContext {
    /// Tunnel pre-shared key, subkey 1 (``SodiumTunnelSuite/presharedKey(clusterKey:)``).
    public static let tunnelPSK = "weftpsk1"
}

/// The production ``TunnelCryptoSuite``: libsodium's X25519 (`crypto_scalarmult`), BLAKE2b
/// (`crypto_generichash`) and ChaCha20-Poly1305-IETF (`crypto_aead_chacha20poly1305_ietf_*`).
///
/// | suite function | construction |
/// |---|---|
/// | `generateEphemeralKeyPair` | 32 bytes from `randombytes_buf`, public = `crypto_scalarmult_base` |
/// | `dh` | `crypto_scalarmult` (nil for an all-zero result: small-order point) |
/// | `hash` | BLAKE2b, 32-byte output, no key, over the concatenated parts |
/// | `kdf` | `prk = BLAKE2b-256(key: ck, input)`, `T1 = BLAKE2b-256(key: prk, 0x01)`, `Ti = BLAKE2b-256(key: prk, T(i-1) ‖ i)` |
/// | `mac` | BLAKE2b, 16-byte output, keyed |
/// | `seal` / `open` | ChaCha20-Poly1305-IETF, nonce = `00 00 00 00 ‖ LE64(counter)` |
///
/// Stateless and `Sendable`: the data plane may call it from any number of threads.
public struct SodiumTunnelSuite: TunnelCryptoSuite {
    public init() { Sodium.ensureInitialized() }

    // MARK: Key helpers for the runtime

    /// This node's static tunnel key pair: its Ed25519 identity converted to X25519
    /// (`crypto_sign_ed25519_sk_to_curve25519` / `_pk_to_curve25519`). Nil only for a damaged key.
    public static func staticKeyPair(identity: IdentityKeyPair) -> Tunnel.StaticKeyPair? {
        guard let pub = staticPublicKey(identity.publicKey) else { return nil }
        let x = identity.x25519SecretKey()
        let secret = x.withUnsafeBytes { src in Tunnel.Secret(count: src.count) { $0.copyMemory(from: src) } }
        return Tunnel.StaticKeyPair(secret: secret, publicKey: pub)
    }

    /// A member's static tunnel key from its gossiped Ed25519 public key; nil for an invalid or
    /// small-order point (such a member cannot have a tunnel).
    public static func staticPublicKey(_ key: PublicKey) -> Tunnel.PublicKey? {
        key.x25519().flatMap { Tunnel.PublicKey(bytes: $0) }
    }

    /// The handshake PSK: `clusterKey.derive(context: "weftpsk1", subkeyID: 1)`.
    public static func presharedKey(clusterKey: ClusterKey) -> Tunnel.PresharedKey {
        let k = clusterKey.derive(context: KDFContext.tunnelPSK, subkeyID: 1)
        return Tunnel.PresharedKey(secret: k.withUnsafeBytes { src in Tunnel.Secret(count: src.count) { $0.copyMemory(from: src) } })
    }

    // MARK: TunnelCryptoSuite

    public func generateEphemeralKeyPair() -> Tunnel.EphemeralKeyPair {
        var pub = [UInt8](repeating: 0, count: 32)
        let secret = Tunnel.Secret(count: 32) { s in
            randombytes_buf(s.baseAddress!, 32)
            let rc = pub.withUnsafeMutableBufferPointer { crypto_scalarmult_base($0.baseAddress!, s.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
            precondition(rc == 0, "crypto_scalarmult_base failed")
        }
        return Tunnel.EphemeralKeyPair(secret: secret, publicKey: Tunnel.PublicKey(bytes: pub)!)
    }

    public func randomBytes(_ count: Int) -> [UInt8] { Sodium.randomBytes(count) }

    public func dh(secret: Tunnel.Secret, publicKey: Tunnel.PublicKey) -> Tunnel.Secret? {
        guard secret.count == 32 else { return nil }
        var rc: Int32 = -1
        let shared = Tunnel.Secret(count: 32) { out in
            secret.withUnsafeBytes { s in
                publicKey.bytes.withUnsafeBufferPointer { p in
                    rc = crypto_scalarmult(out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                           s.baseAddress!.assumingMemoryBound(to: UInt8.self), p.baseAddress!)
                }
            }
        }
        return rc == 0 ? shared : nil
    }

    /// Runs `body` with a fresh, 64-byte-aligned BLAKE2b state, wiped afterwards.
    private func withHashState<R>(_ body: (OpaquePointer) -> R) -> R {
        let size = crypto_generichash_statebytes()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        defer { sodium_memzero(raw, size); raw.deallocate() }
        return body(OpaquePointer(raw))
    }

    public func hash(_ parts: [[UInt8]]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        withHashState { state in
            crypto_generichash_init(state, nil, 0, 32)
            for part in parts where !part.isEmpty {
                part.withUnsafeBufferPointer { _ = crypto_generichash_update(state, $0.baseAddress!, UInt64($0.count)) }
            }
            out.withUnsafeMutableBufferPointer { _ = crypto_generichash_final(state, $0.baseAddress!, 32) }
        }
        return out
    }

    /// Keyed BLAKE2b-256 of `a ‖ b` written straight into `out` (32 bytes).
    private func prf(key: UnsafeRawBufferPointer, _ a: UnsafeRawBufferPointer, _ b: [UInt8], into out: UnsafeMutableRawBufferPointer) {
        withHashState { state in
            let rc = crypto_generichash_init(state, key.baseAddress!.assumingMemoryBound(to: UInt8.self), key.count, 32)
            precondition(rc == 0, "crypto_generichash_init failed (key of \(key.count) bytes)")
            if a.count > 0 { crypto_generichash_update(state, a.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(a.count)) }
            if !b.isEmpty { b.withUnsafeBufferPointer { _ = crypto_generichash_update(state, $0.baseAddress!, UInt64($0.count)) } }
            crypto_generichash_final(state, out.baseAddress!.assumingMemoryBound(to: UInt8.self), 32)
        }
    }

    public func kdf(chainingKey: Tunnel.Secret, input: UnsafeRawBufferPointer, outputs: Int) -> [Tunnel.Secret] {
        precondition((1...3).contains(outputs), "kdf: 1...3 outputs")
        let prk = Tunnel.Secret(count: 32) { out in
            chainingKey.withUnsafeBytes { ck in prf(key: ck, input, [], into: out) }
        }
        var result: [Tunnel.Secret] = []
        result.reserveCapacity(outputs)
        for i in 1...outputs {
            let previous = result.last
            let t = Tunnel.Secret(count: 32) { out in
                prk.withUnsafeBytes { k in
                    if let previous {
                        previous.withUnsafeBytes { prev in prf(key: k, prev, [UInt8(i)], into: out) }
                    } else {
                        prf(key: k, UnsafeRawBufferPointer(start: nil, count: 0), [UInt8(i)], into: out)
                    }
                }
            }
            result.append(t)
        }
        return result
    }

    public func mac(key: Tunnel.Secret, message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Tunnel.macByteCount)
        key.withUnsafeBytes { k in
            out.withUnsafeMutableBufferPointer { o in
                let rc = crypto_generichash(o.baseAddress!, o.count,
                                            message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                                            k.baseAddress!.assumingMemoryBound(to: UInt8.self), k.count)
                precondition(rc == 0, "crypto_generichash failed (key of \(k.count) bytes)")
            }
        }
        return out
    }

    /// Calls `body` with the 12-byte nonce `00 00 00 00 ‖ LE64(counter)` (as WireGuard).
    @inline(__always)
    private func withNonce<R>(_ counter: UInt64, _ body: (UnsafePointer<UInt8>) -> R) -> R {
        var buffer: (UInt64, UInt64) = (0, 0)  // 16 bytes; the first 12 are the nonce
        return withUnsafeMutableBytes(of: &buffer) { p in
            for i in 0..<8 { p[4 + i] = UInt8(truncatingIfNeeded: counter >> UInt64(8 * i)) }
            return body(UnsafePointer(p.baseAddress!.assumingMemoryBound(to: UInt8.self)))
        }
    }

    public func seal(key: Tunnel.Secret, counter: UInt64, plaintext: UnsafeRawBufferPointer,
                     associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        precondition(key.count == 32, "seal: key must be 32 bytes")
        precondition(output.count >= plaintext.count + Tunnel.tagByteCount, "seal: output too small")
        var clen: UInt64 = 0
        let rc = withNonce(counter) { npub in
            key.withUnsafeBytes { k in
                crypto_aead_chacha20poly1305_ietf_encrypt(
                    output.baseAddress!.assumingMemoryBound(to: UInt8.self), &clen,
                    plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nil, npub, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(rc == 0 && Int(clen) == plaintext.count + Tunnel.tagByteCount, "AEAD encrypt failed")
        return Int(clen)
    }

    public func open(key: Tunnel.Secret, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
                     associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard key.count == 32, ciphertext.count >= Tunnel.tagByteCount,
              output.count >= ciphertext.count - Tunnel.tagByteCount else { return nil }
        var mlen: UInt64 = 0
        var dummy: UInt8 = 0
        let rc = withNonce(counter) { npub in
            key.withUnsafeBytes { k in
                withUnsafeMutablePointer(to: &dummy) { d in
                    crypto_aead_chacha20poly1305_ietf_decrypt(
                        output.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? d, &mlen, nil,
                        ciphertext.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count),
                        associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                        npub, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else { return nil }
        return Int(mlen)
    }
}
