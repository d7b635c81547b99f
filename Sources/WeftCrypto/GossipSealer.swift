import CSodium

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
public struct GossipSealer: Sendable {
    public static let nonceByteCount = 24   // crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
    public static let tagByteCount = 16     // crypto_aead_xchacha20poly1305_ietf_ABYTES
    /// Bytes `seal` adds besides the header: nonce + tag = 40.
    public static let overhead: Int = nonceByteCount + tagByteCount

    private let key: SecretBytes

    public init(clusterKey: ClusterKey) {
        key = clusterKey.derive(context: KDFContext.gossip, subkeyID: 1)
    }

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
            let rc = key.withUnsafeBytes { k in
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
        guard rc == 0 else { throw .authenticationFailed }
        return plain
    }
}
