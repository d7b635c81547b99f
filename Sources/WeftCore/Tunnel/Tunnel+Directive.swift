extension Tunnel {
    /// What the caller must do after an event. Directives are returned in order; carry them
    /// out in that order.
    public enum Directive: Sendable, Equatable {
        /// Send these bytes as one UDP datagram.
        case send([UInt8], to: Endpoint)
        /// Write this inner IP packet (authenticated, decrypted, not a replay) to the TUN device.
        case deliver([UInt8], from: NodeID)
        /// A packet or event was dropped; count it under `reason.name`.
        case dropped(DropReason)
        /// A session became the one used for sending to `info.peer`. A data plane that opens and
        /// seals itself calls ``Instance/handOffSession(localIndex:now:)`` now.
        case sessionEstablished(SessionInfo)
        /// Forget the keys of this session (expired, replaced or peer removed). Packets with this
        /// receiver index are unknown from now on.
        case sessionRetired(peer: NodeID, localIndex: UInt32)
    }

    /// Non-secret facts about a session, for logs, `weft peers` and the data plane's tables.
    public struct SessionInfo: Sendable, Equatable {
        public var peer: NodeID
        /// Receiver index peers put on packets to us under this session.
        public var localIndex: UInt32
        /// Receiver index we put on packets to the peer.
        public var remoteIndex: UInt32
        public var endpoint: Endpoint
        /// True when this node sent the initiation.
        public var isInitiator: Bool
        public var establishedAt: Instant
    }

    /// Why a packet or event was dropped. `name` is a stable counter label.
    public enum DropReason: Sendable, Equatable, CustomStringConvertible {
        /// The bytes do not decode (short, oversized, wrong version/kind, reserved bits set).
        case malformed(WireError)
        /// No peer with that NodeID / static key is configured.
        case unknownPeer
        /// No session or pending handshake uses that receiver index.
        case unknownReceiverIndex
        /// MAC1 does not match: not from a cluster member that knows our key.
        case badMAC1
        /// Too many initiations from this source IP.
        case rateLimited
        /// Handshake cryptography failed (bad DH, decryption failed, wrong cluster key).
        case handshakeFailed
        /// An initiation whose timestamp is not newer than the last one accepted from that peer.
        case replayedInitiation
        /// Both sides initiated at once and this side's initiation wins (lower NodeID).
        case initiationCollision
        /// The peer has no known endpoint to send the initiation to.
        case noEndpoint
        /// The session is past reject-after-time.
        case sessionExpired
        /// The session's counter limit is reached.
        case counterExhausted
        /// A data packet failed authentication.
        case authenticationFailed
        /// A duplicate or too old data packet.
        case replayedPacket
        /// The per-peer queue was full; the oldest queued packet was dropped.
        case queueOverflow
        /// The inner packet is larger than a data message can carry.
        case packetTooLarge
        /// This session was handed to the data plane; the instance no longer opens or seals it.
        case sessionHandedOff
        /// A cookie reply that does not decrypt.
        case badCookieReply

        public var name: String {
            switch self {
            case .malformed: return "malformed"
            case .unknownPeer: return "unknown-peer"
            case .unknownReceiverIndex: return "unknown-receiver-index"
            case .badMAC1: return "bad-mac1"
            case .rateLimited: return "rate-limited"
            case .handshakeFailed: return "handshake-failed"
            case .replayedInitiation: return "replayed-initiation"
            case .initiationCollision: return "initiation-collision"
            case .noEndpoint: return "no-endpoint"
            case .sessionExpired: return "session-expired"
            case .counterExhausted: return "counter-exhausted"
            case .authenticationFailed: return "authentication-failed"
            case .replayedPacket: return "replayed-packet"
            case .queueOverflow: return "queue-overflow"
            case .packetTooLarge: return "packet-too-large"
            case .sessionHandedOff: return "session-handed-off"
            case .badCookieReply: return "bad-cookie-reply"
            }
        }

        public var description: String {
            if case .malformed(let e) = self { return "malformed (\(e))" }
            return name
        }
    }
}
