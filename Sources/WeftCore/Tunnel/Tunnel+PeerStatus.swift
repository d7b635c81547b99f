extension Tunnel {
    /// A peer's tunnel state, as `weft peers` shows it.
    ///
    /// ```
    ///            connect/outbound           response              age ≥ rekey (designated side)
    ///   idle ─────────────────► handshaking ─────────► established ─────────────► rekeying
    ///                               │  no response          ▲  ◄──── response ──────┘
    ///                               ▼  (retry, backoff)     │
    ///                            failing ───── response ────┘      session > 180 s: back to
    ///                                                              handshaking/failing
    /// ```
    public enum PeerState: Sendable, Equatable, CustomStringConvertible {
        /// No session and no handshake in progress.
        case idle
        /// First handshake in progress (`attempt` counts from 1).
        case handshaking(attempt: Int)
        /// A usable session exists and no handshake is in progress.
        case established(since: Instant)
        /// A usable session exists and a new handshake is in progress.
        case rekeying(attempt: Int)
        /// No usable session and at least one attempt went unanswered or was rejected; retrying.
        case failing(attempts: Int, lastError: HandshakeFailure)

        public var description: String {
            switch self {
            case .idle: return "idle"
            case .handshaking(let a): return "handshaking (attempt \(a))"
            case .established(let s): return "established (since \(s))"
            case .rekeying(let a): return "rekeying (attempt \(a))"
            case .failing(let a, let e): return "failing (\(a) attempts, last: \(e))"
            }
        }
    }

    /// Why the last handshake attempt did not produce a session.
    public enum HandshakeFailure: Sendable, Equatable, CustomStringConvertible {
        /// No valid response within the retry interval.
        case noResponse
        /// A response arrived but was rejected.
        case responseRejected(DropReason)
        /// The peer has no endpoint.
        case noEndpoint

        public var description: String {
            switch self {
            case .noResponse: return "no response"
            case .responseRejected(let r): return "response rejected: \(r)"
            case .noEndpoint: return "no endpoint"
            }
        }
    }

    /// One row of `weft peers`.
    public struct PeerStatus: Sendable, Equatable {
        public var peer: NodeID
        public var endpoint: Endpoint?
        public var state: PeerState
        public var lastHandshake: Instant?
        public var currentSession: UInt32?
        public var queuedPackets: Int
        public var packetsSent: UInt64
        public var packetsReceived: UInt64
        public var bytesSent: UInt64
        public var bytesReceived: UInt64
        /// When the next initiation is scheduled (retry), if any.
        public var nextAttempt: Instant?
    }
}
