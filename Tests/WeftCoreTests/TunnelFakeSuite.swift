import WeftCore

/// A deterministic, insecure stand-in for `SodiumTunnelSuite`, for pure tests.
///
/// It keeps the algebra the handshake relies on: DH commutes (`g^ab mod p`, p = 2^61 − 1),
/// KDF/MAC/hash are deterministic keyed mixes, and the AEAD really authenticates key, counter,
/// associated data and ciphertext (a tampered byte or a wrong key fails to open).
final class FakeTunnelSuite: TunnelCryptoSuite, @unchecked Sendable {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    static let p: UInt64 = (1 << 61) - 1
    static let g: UInt64 = 3

    private func nextRandom() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    static func mulmod(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (hi, lo) = a.multipliedFullWidth(by: b)
        return p.dividingFullWidth((hi, lo)).remainder
    }

    static func powmod(_ base: UInt64, _ exp: UInt64) -> UInt64 {
        var result: UInt64 = 1, b = base % p, e = exp
        while e > 0 {
            if e & 1 == 1 { result = mulmod(result, b) }
            b = mulmod(b, b)
            e >>= 1
        }
        return result
    }

    static func scalar(_ secret: Tunnel.Secret) -> UInt64 {
        secret.withUnsafeBytes { b in
            var v: UInt64 = 0
            for i in 0..<8 { v = v << 8 | UInt64(b[i]) }
            return v % (p - 2) + 1
        }
    }

    static func publicKey(forScalar s: UInt64) -> Tunnel.PublicKey {
        let v = powmod(g, s)
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: v >> UInt64(56 - 8 * i)) }
        return Tunnel.PublicKey(bytes: bytes)!
    }

    /// A deterministic static key pair for tests.
    static func staticKeyPair(seed: UInt64) -> Tunnel.StaticKeyPair {
        let secret = Tunnel.Secret(bytes64(mix(seed)) + [UInt8](repeating: 7, count: 24))
        return Tunnel.StaticKeyPair(secret: secret, publicKey: publicKey(forScalar: scalar(secret)))
    }

    static func bytes64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> UInt64(56 - 8 * $0)) } }

    func generateEphemeralKeyPair() -> Tunnel.EphemeralKeyPair {
        let secret = Tunnel.Secret(Self.bytes64(nextRandom()) + [UInt8](repeating: 1, count: 24))
        return Tunnel.EphemeralKeyPair(secret: secret, publicKey: Self.publicKey(forScalar: Self.scalar(secret)))
    }

    func randomBytes(_ count: Int) -> [UInt8] { (0..<count).map { _ in UInt8(truncatingIfNeeded: nextRandom()) } }

    func dh(secret: Tunnel.Secret, publicKey: Tunnel.PublicKey) -> Tunnel.Secret? {
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(publicKey.bytes[i]) }
        guard v % Self.p > 1, publicKey.bytes[8...].allSatisfy({ $0 == 0 }) else { return nil }
        let shared = Self.powmod(v, Self.scalar(secret))
        return Tunnel.Secret(Self.digest(Self.bytes64(shared), length: 32))
    }

    static func digest(_ data: [UInt8], length: Int, key: [UInt8] = []) -> [UInt8] {
        var h: UInt64 = 0x6A09_E667_F3BC_C908 ^ UInt64(key.count) << 32 ^ UInt64(data.count)
        for b in key { h = mix(h ^ UInt64(b) &+ 0x100) }
        h = mix(h ^ 0xFFFF)
        for b in data { h = mix(h ^ UInt64(b)) }
        var out: [UInt8] = []
        var i: UInt64 = 0
        while out.count < length {
            out += bytes64(mix(h ^ (i &* 0x9E37_79B9_7F4A_7C15)))
            i += 1
        }
        return Array(out.prefix(length))
    }

    func hash(_ parts: [[UInt8]]) -> [UInt8] { Self.digest(parts.flatMap { $0 }, length: 32) }

    func kdf(chainingKey: Tunnel.Secret, input: UnsafeRawBufferPointer, outputs: Int) -> [Tunnel.Secret] {
        let ck = chainingKey.withUnsafeBytes { Array($0) }
        let prk = Self.digest(Array(input), length: 32, key: ck)
        var result: [Tunnel.Secret] = []
        var previous: [UInt8] = []
        for i in 1...outputs {
            previous = Self.digest(previous + [UInt8(i)], length: 32, key: prk)
            result.append(Tunnel.Secret(previous))
        }
        return result
    }

    func mac(key: Tunnel.Secret, message: UnsafeRawBufferPointer) -> [UInt8] {
        Self.digest(Array(message), length: 16, key: key.withUnsafeBytes { Array($0) } + [0x4D])
    }

    private func keystream(_ key: [UInt8], _ counter: UInt64, _ n: Int) -> [UInt8] {
        Self.digest(Self.bytes64(counter), length: max(n, 1), key: key + [0x53])
    }

    private func tag(_ key: [UInt8], _ counter: UInt64, _ ad: [UInt8], _ ct: [UInt8]) -> [UInt8] {
        Self.digest(Self.bytes64(counter) + Self.bytes64(UInt64(ad.count)) + ad + ct, length: 16, key: key + [0x54])
    }

    func seal(key: Tunnel.Secret, counter: UInt64, plaintext: UnsafeRawBufferPointer,
              associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
        let k = key.withUnsafeBytes { Array($0) }
        let ks = keystream(k, counter, plaintext.count)
        var ct = [UInt8](repeating: 0, count: plaintext.count)
        for i in 0..<plaintext.count { ct[i] = plaintext[i] ^ ks[i] }
        let t = tag(k, counter, Array(associatedData), ct)
        for i in 0..<ct.count { output[i] = ct[i] }
        for i in 0..<16 { output[ct.count + i] = t[i] }
        return ct.count + 16
    }

    func open(key: Tunnel.Secret, counter: UInt64, ciphertext: UnsafeRawBufferPointer,
              associatedData: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard ciphertext.count >= 16 else { return nil }
        let n = ciphertext.count - 16
        let k = key.withUnsafeBytes { Array($0) }
        let ct = Array(ciphertext[0..<n])
        guard tag(k, counter, Array(associatedData), ct) == Array(ciphertext[n...]) else { return nil }
        let ks = keystream(k, counter, n)
        for i in 0..<n { output[i] = ct[i] ^ ks[i] }
        return n
    }
}
