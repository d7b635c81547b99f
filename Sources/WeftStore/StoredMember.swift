import WeftCore

/// One row of the `members` table: what this node last knew about a member, kept across
/// restarts so dead members are re-probed after a partition heals.
public struct StoredMember: Sendable, Equatable {
    public var id: NodeID
    public var name: String
    /// `host:port` or `[v6]:port`, as `Endpoint.description` prints it.
    public var address: String
    /// Ed25519 public key, 32 bytes (not checked here; WeftStore does not know crypto).
    public var publicKey: [UInt8]
    public var incarnation: UInt64
    public var state: Membership.MemberState
    /// Wall-clock time of the last change, Unix milliseconds.
    public var updatedAt: Int64
    /// The member's signature of its record (64 bytes; empty for rows from before schema v5).
    public var recordSignature: [UInt8]
    /// Accuser (suspect/dead) or the member itself (left); nil for alive.
    public var stateBy: NodeID?
    /// `stateBy`'s signature of the state claim (empty for alive).
    public var stateSignature: [UInt8]

    public init(id: NodeID, name: String, address: String, publicKey: [UInt8],
                incarnation: UInt64, state: Membership.MemberState, updatedAt: Int64,
                recordSignature: [UInt8] = [], stateBy: NodeID? = nil, stateSignature: [UInt8] = []) {
        self.recordSignature = recordSignature
        self.stateBy = stateBy
        self.stateSignature = stateSignature
        self.id = id
        self.name = name
        self.address = address
        self.publicKey = publicKey
        self.incarnation = incarnation
        self.state = state
        self.updatedAt = updatedAt
    }
}
