// The Noise IKpsk2 handshake (docs/tunnel.md §2), as pure functions over a crypto suite.
//
//   IKpsk2:   <- s
//             ...
//             -> e, es, s, ss          (initiation: + encrypted timestamp)
//             <- e, ee, se, psk        (response: + encrypted empty payload)

extension Tunnel {
    /// Constants and the message constructions of the handshake.
    enum Handshake {
        static let construction = Array("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b".utf8)
        static let identifier = Array("weft tunnel v1".utf8)
        static let labelMAC1 = Array("mac1----".utf8)
        static let labelCookie = Array("cookie--".utf8)

        /// Chaining key and hash after the pre-message (`<- s`): depends only on the
        /// responder's static public key.
        static func initialState<S: TunnelCryptoSuite>(_ suite: S, responderStatic: PublicKey) -> (ck: Secret, h: [UInt8]) {
            let ck = suite.hash([construction])
            let h0 = suite.hash([ck, identifier])
            let h = suite.hash([h0, responderStatic.bytes])
            return (Secret(ck), h)
        }

        /// MAC1 key for messages *to* the holder of `staticKey`: KDF1(psk, "mac1----" ‖ S_pub).
        static func mac1Key<S: TunnelCryptoSuite>(_ suite: S, psk: PresharedKey, staticKey: PublicKey) -> Secret {
            suite.kdf(chainingKey: psk.secret, input: labelMAC1 + staticKey.bytes, outputs: 1)[0]
        }

        /// Cookie-reply key of the holder of `staticKey`: KDF1(psk, "cookie--" ‖ S_pub).
        static func cookieKey<S: TunnelCryptoSuite>(_ suite: S, psk: PresharedKey, staticKey: PublicKey) -> Secret {
            suite.kdf(chainingKey: psk.secret, input: labelCookie + staticKey.bytes, outputs: 1)[0]
        }

        /// Initiator's state between sending the initiation and consuming the response.
        struct InitiatorState: Sendable {
            var ck: Secret
            var h: [UInt8]
            var ephemeral: EphemeralKeyPair
            var remoteStatic: PublicKey
        }

        /// Responder's state between consuming the initiation and writing the response.
        struct ResponderState: Sendable {
            var ck: Secret
            var h: [UInt8]
            var remoteEphemeral: PublicKey
            var remoteStatic: PublicKey
        }

        /// Session keys as (initiator→responder, responder→initiator).
        struct TransportKeys: Sendable {
            var initiatorToResponder: Secret
            var responderToInitiator: Secret
        }

        /// -> e, es, s, ss, {timestamp}. MACs are left zero (the instance adds them).
        static func createInitiation<S: TunnelCryptoSuite>(
            _ suite: S, local: StaticKeyPair, remoteStatic: PublicKey, ephemeral: EphemeralKeyPair,
            senderIndex: UInt32, timestamp: Timestamp
        ) -> (HandshakeInitiation, InitiatorState)? {
            var (ck, h) = initialState(suite, responderStatic: remoteStatic)
            // e
            ck = suite.kdf(chainingKey: ck, input: ephemeral.publicKey.bytes, outputs: 1)[0]
            h = suite.hash([h, ephemeral.publicKey.bytes])
            // es
            guard let es = suite.dh(secret: ephemeral.secret, publicKey: remoteStatic) else { return nil }
            var out = suite.kdf(chainingKey: ck, input: es, outputs: 2)
            ck = out[0]
            // s
            let encryptedStatic = suite.seal(key: out[1], counter: 0, plaintext: local.publicKey.bytes, associatedData: h)
            h = suite.hash([h, encryptedStatic])
            // ss
            guard let ss = suite.dh(secret: local.secret, publicKey: remoteStatic) else { return nil }
            out = suite.kdf(chainingKey: ck, input: ss, outputs: 2)
            ck = out[0]
            // {timestamp}
            let encryptedTimestamp = suite.seal(key: out[1], counter: 0, plaintext: timestamp.bytes, associatedData: h)
            h = suite.hash([h, encryptedTimestamp])
            let message = HandshakeInitiation(senderIndex: senderIndex, ephemeral: ephemeral.publicKey,
                                              encryptedStatic: encryptedStatic, encryptedTimestamp: encryptedTimestamp)
            return (message, InitiatorState(ck: ck, h: h, ephemeral: ephemeral, remoteStatic: remoteStatic))
        }

        /// Responder side of the initiation. Nil when any DH or decryption fails.
        static func consumeInitiation<S: TunnelCryptoSuite>(
            _ suite: S, _ message: HandshakeInitiation, local: StaticKeyPair
        ) -> (ResponderState, Timestamp)? {
            var (ck, h) = initialState(suite, responderStatic: local.publicKey)
            ck = suite.kdf(chainingKey: ck, input: message.ephemeral.bytes, outputs: 1)[0]
            h = suite.hash([h, message.ephemeral.bytes])
            guard let es = suite.dh(secret: local.secret, publicKey: message.ephemeral) else { return nil }
            var out = suite.kdf(chainingKey: ck, input: es, outputs: 2)
            ck = out[0]
            guard let staticBytes = suite.open(key: out[1], counter: 0, ciphertext: message.encryptedStatic, associatedData: h),
                  let remoteStatic = PublicKey(bytes: staticBytes) else { return nil }
            h = suite.hash([h, message.encryptedStatic])
            guard let ss = suite.dh(secret: local.secret, publicKey: remoteStatic) else { return nil }
            out = suite.kdf(chainingKey: ck, input: ss, outputs: 2)
            ck = out[0]
            guard let tsBytes = suite.open(key: out[1], counter: 0, ciphertext: message.encryptedTimestamp, associatedData: h),
                  let timestamp = Timestamp(bytes: tsBytes) else { return nil }
            h = suite.hash([h, message.encryptedTimestamp])
            return (ResponderState(ck: ck, h: h, remoteEphemeral: message.ephemeral, remoteStatic: remoteStatic), timestamp)
        }

        /// <- e, ee, se, psk, {}. Returns the response (MACs zero) and the transport keys.
        static func createResponse<S: TunnelCryptoSuite>(
            _ suite: S, _ state: ResponderState, psk: PresharedKey, ephemeral: EphemeralKeyPair,
            senderIndex: UInt32, receiverIndex: UInt32
        ) -> (HandshakeResponse, TransportKeys)? {
            var ck = state.ck, h = state.h
            ck = suite.kdf(chainingKey: ck, input: ephemeral.publicKey.bytes, outputs: 1)[0]
            h = suite.hash([h, ephemeral.publicKey.bytes])
            guard let ee = suite.dh(secret: ephemeral.secret, publicKey: state.remoteEphemeral),
                  let se = suite.dh(secret: ephemeral.secret, publicKey: state.remoteStatic) else { return nil }
            ck = suite.kdf(chainingKey: ck, input: ee, outputs: 1)[0]
            ck = suite.kdf(chainingKey: ck, input: se, outputs: 1)[0]
            let out = suite.kdf(chainingKey: ck, input: psk.secret, outputs: 3)
            ck = out[0]
            h = out[1].withUnsafeBytes { suite.hash([h, Array($0)]) }
            let encryptedNothing = suite.seal(key: out[2], counter: 0, plaintext: [], associatedData: h)
            let keys = suite.kdf(chainingKey: ck, input: [UInt8](), outputs: 2)
            let message = HandshakeResponse(senderIndex: senderIndex, receiverIndex: receiverIndex,
                                            ephemeral: ephemeral.publicKey, encryptedNothing: encryptedNothing)
            return (message, TransportKeys(initiatorToResponder: keys[0], responderToInitiator: keys[1]))
        }

        /// Initiator side of the response. Nil when any DH fails or the empty payload does not
        /// authenticate (wrong responder key, wrong cluster key, tampering).
        static func consumeResponse<S: TunnelCryptoSuite>(
            _ suite: S, _ message: HandshakeResponse, state: InitiatorState, local: StaticKeyPair, psk: PresharedKey
        ) -> TransportKeys? {
            var ck = state.ck, h = state.h
            ck = suite.kdf(chainingKey: ck, input: message.ephemeral.bytes, outputs: 1)[0]
            h = suite.hash([h, message.ephemeral.bytes])
            guard let ee = suite.dh(secret: state.ephemeral.secret, publicKey: message.ephemeral),
                  let se = suite.dh(secret: local.secret, publicKey: message.ephemeral) else { return nil }
            ck = suite.kdf(chainingKey: ck, input: ee, outputs: 1)[0]
            ck = suite.kdf(chainingKey: ck, input: se, outputs: 1)[0]
            let out = suite.kdf(chainingKey: ck, input: psk.secret, outputs: 3)
            ck = out[0]
            h = out[1].withUnsafeBytes { suite.hash([h, Array($0)]) }
            guard suite.open(key: out[2], counter: 0, ciphertext: message.encryptedNothing, associatedData: h) != nil else {
                return nil
            }
            let keys = suite.kdf(chainingKey: ck, input: [UInt8](), outputs: 2)
            return TransportKeys(initiatorToResponder: keys[0], responderToInitiator: keys[1])
        }
    }
}

/// Constant-time equality of two byte arrays (lengths are not secret).
func tunnelConstantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
