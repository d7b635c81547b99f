/// SWIM membership with the Lifeguard refinements. See docs/protocol.md and
/// docs/membership.md; the pure state machine is `Membership.Instance`.
public enum Membership {}

extension Membership {
    /// The ceiling of incarnations (2^62). Updates at or above it are dropped as
    /// `incarnationTooLarge`, so raising ours (`incarnation + 1`) never passes it and can never
    /// overflow.
    public static let maxIncarnation: UInt64 = 1 << 62

    /// The incarnation after `incarnation`, or nil at or above `maxIncarnation` (never traps).
    public static func incarnation(after incarnation: UInt64) -> UInt64? {
        incarnation < maxIncarnation ? incarnation + 1 : nil
    }

    /// Why an incoming incarnation is refused, or nil when it is plausible: at or above the
    /// ceiling, or more than `maxJump` above `known` (the member's current incarnation, or
    /// ours for news about us; nil for a member we do not know yet).
    public static func refusal(incarnation: UInt64, known: UInt64?, maxJump: UInt64) -> DropReason? {
        if incarnation >= maxIncarnation { return .incarnationTooLarge }
        if let known, incarnation > known, incarnation - known > maxJump { return .incarnationJump }
        return nil
    }
}

extension Membership {
    /// What a node believes about a member. Order matters for merges at equal incarnation:
    /// `alive < suspect < dead`; `left` is final for an incarnation and beats `dead`.
    public enum MemberState: UInt8, Sendable, Codable, CaseIterable, CustomStringConvertible {
        case alive = 0
        case suspect = 1
        case dead = 2
        case left = 3

        public var description: String {
            switch self {
            case .alive: return "alive"
            case .suspect: return "suspect"
            case .dead: return "dead"
            case .left: return "left"
            }
        }

        public init?(name: String) {
            guard let s = MemberState.allCases.first(where: { $0.description == name }) else { return nil }
            self = s
        }
    }

    /// One member of the cluster as this node knows it.
    public struct Member: Sendable, Equatable, CustomStringConvertible {
        /// Stable identity, derived from `publicKey` (checked by the caller-supplied identity check).
        public var id: NodeID
        /// Human-readable name (host name by default). At most 63 UTF-8 bytes.
        public var name: String
        /// Where the member's gossip/data UDP port and push-pull TCP port listen.
        public var address: Endpoint
        /// The member's long-term Ed25519 public key (32 bytes).
        public var publicKey: [UInt8]
        /// Only the member itself raises this; higher incarnations win.
        public var incarnation: UInt64
        public var state: MemberState
        /// When this node last saw the state change (local monotonic time; not gossiped).
        public var stateChangedAt: Instant
        /// The member's own signature over `Claims.record(of:)` at `incarnation` (64 bytes;
        /// empty when not known, e.g. a record stored before wire version 2: never gossiped).
        public var recordSignature: [UInt8]
        /// Who made the state claim: the accuser for suspect/dead, the member itself for left;
        /// nil for alive.
        public var stateBy: NodeID?
        /// `stateBy`'s signature over `Claims.accusation` (suspect, dead) or `Claims.left` (left).
        public var stateSignature: [UInt8]

        public init(
            id: NodeID, name: String, address: Endpoint, publicKey: [UInt8],
            incarnation: UInt64, state: MemberState, stateChangedAt: Instant = .zero,
            recordSignature: [UInt8] = [], stateBy: NodeID? = nil, stateSignature: [UInt8] = []
        ) {
            self.recordSignature = recordSignature
            self.stateBy = stateBy
            self.stateSignature = stateSignature
            self.id = id
            self.name = name
            self.address = address
            self.publicKey = publicKey
            self.incarnation = incarnation
            self.state = state
            self.stateChangedAt = stateChangedAt
        }

        public var description: String { "\(name)(\(id.short))@\(address) inc=\(incarnation) \(state)" }
    }
}
