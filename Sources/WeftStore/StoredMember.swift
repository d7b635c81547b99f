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

    public init(id: NodeID, name: String, address: String, publicKey: [UInt8],
                incarnation: UInt64, state: Membership.MemberState, updatedAt: Int64) {
        self.id = id
        self.name = name
        self.address = address
        self.publicKey = publicKey
        self.incarnation = incarnation
        self.state = state
        self.updatedAt = updatedAt
    }
}
