import WeftCrypto

/// The sealed envelope around every gossip datagram and push-pull frame:
///
///      0       1       2                        26
///     +-------+-------+------------------------+---------------------------+
///     |version| kind  |   nonce (24 bytes)     | ciphertext + 16-byte tag  |
///     +-------+-------+------------------------+---------------------------+
///
/// `version` is 1. `kind` says what is inside: 1 = membership datagram (UDP), 2 = push-pull
/// request, 3 = push-pull reply, 16 = IPAM message (TCP frames). Both header bytes are authenticated as associated
/// data under XChaCha20-Poly1305 with the gossip key derived from the cluster key, so a packet
/// moved from one kind to another fails authentication. Later kinds (tunnel handshake, data)
/// share the UDP port with other numbers; numbers are never reused.
enum GossipEnvelope {
    static let version: UInt8 = 1

    enum Kind: UInt8 {
        case datagram = 1
        case pushPullRequest = 2
        case pushPullReply = 3
        /// A point-to-point IPAM message (TCP frame): sender NodeID (16 bytes) || IPAM message.
        /// Kinds 4–15 belong to the tunnel; application kinds start at 16.
        case ipam = 16
    }

    static let headerLength = 2

    static func seal(_ plaintext: [UInt8], kind: Kind, with sealer: GossipSealer) -> [UInt8] {
        sealer.seal(plaintext, header: [version, kind.rawValue])
    }

    enum OpenFailure: String {
        case short = "short-packet"
        case badVersion = "unsupported-envelope-version"
        case wrongKind = "unexpected-kind"
        case unauthenticated = "unauthenticated"
    }

    static func open(_ sealed: [UInt8], expecting kind: Kind, with sealer: GossipSealer) -> Result<[UInt8], OpenFailureBox> {
        guard sealed.count >= headerLength else { return .failure(OpenFailureBox(.short)) }
        guard sealed[0] == version else { return .failure(OpenFailureBox(.badVersion)) }
        guard sealed[1] == kind.rawValue else { return .failure(OpenFailureBox(.wrongKind)) }
        do {
            return .success(try sealer.open(sealed, headerLength: headerLength))
        } catch {
            return .failure(OpenFailureBox(.unauthenticated))
        }
    }

    struct OpenFailureBox: Error {
        let reason: OpenFailure
        init(_ reason: OpenFailure) { self.reason = reason }
    }
}
