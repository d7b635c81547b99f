extension IPAM {
    /// What an ``Instance`` asks its host (the daemon or the simulator) to do, in order.
    ///
    /// `persist` directives must be committed (SQLite) before any later directive is carried
    /// out and before the answer of the call that produced them is given to the caller.
    public enum Directive: Equatable, Sendable {
        /// Commit this change to durable storage first.
        case persist(PersistChange)
        /// Piggyback these bytes (an encoded ``Message/ringDelta``) on membership gossip.
        case broadcast([UInt8])
        /// Send these bytes (an encoded ``Message``) to one member, reliably if possible.
        case send([UInt8], to: NodeID)
        /// A previously pending allocation got its address.
        case allocated(handle: String, address: UInt32)
        /// A previously pending allocation failed.
        case allocationFailed(handle: String, error: AllocationError)
        /// An allocation of this node lies in a range another node now owns: report it; the
        /// address is no longer this node's to use and will not be handed out again here.
        case conflict(Conflict)
        /// Remote input was refused (malformed bytes, another cluster or subnet). Nothing changed.
        case rejected(from: NodeID, reason: Rejection)
        /// A structured log line.
        case log(LogEvent)
    }

    /// One change to durable state. Tables: `ipam_cluster` (one row), `ipam_ring` (one row per
    /// token), `ipam_allocation` (one row per handle), `ipam_holdings` + `ipam_holding` (other
    /// nodes' registers), `ipam_self` (this node's own register version).
    public enum PersistChange: Equatable, Sendable {
        /// The cluster identity and subnet (written once, when the node creates or joins a ring).
        case cluster(ClusterID, Subnet)
        /// Upsert these ring entries by token.
        case ringEntries([Entry])
        /// Insert an active, confirmed allocation (state 0), or mark an unconfirmed one confirmed.
        case allocation(handle: String, address: UInt32)
        /// Insert an allocation that waits for confirmation by a quorum of voters (state 2).
        /// On restart it is still unconfirmed: the node resumes confirming it or times it out.
        case unconfirmedAllocation(handle: String, address: UInt32)
        /// Replace the stored register of another node (`owner` is never this node).
        case holdings(owner: NodeID, Holdings)
        /// This node's own register changed: its version (its addresses are the allocation table).
        case ownHoldingsVersion(UInt64)
        /// Delete the allocation row of this handle (active or in conflict).
        case release(handle: String)
        /// Mark this handle's row as in conflict (keep it so the admin can see it).
        case conflicted(handle: String, address: UInt32)
    }

    /// An allocation that lost its range to another owner.
    public struct Conflict: Equatable, Sendable, CustomStringConvertible {
        public var handle: String
        public var address: UInt32
        /// Who owns the address now.
        public var owner: NodeID
        public var description: String { "\(handle) \(IPAM.format(address)) now owned by \(owner.short)" }
    }

    /// Why remote input was refused.
    public enum Rejection: Equatable, Sendable, CustomStringConvertible {
        case wire(WireError)
        case ring(RingError)
        public var description: String {
            switch self {
            case .wire(let e): return "malformed IPAM message: \(e)"
            case .ring(let e): return e.description
            }
        }
    }

    /// A log line with a fixed event name and key/value fields.
    public struct LogEvent: Equatable, Sendable, CustomStringConvertible {
        public enum Level: Sendable { case debug, info, warning, error }
        public var level: Level
        public var event: String
        public var fields: [String: String]
        public init(_ level: Level, _ event: String, _ fields: [String: String] = [:]) {
            self.level = level; self.event = event; self.fields = fields
        }
        public var description: String {
            "\(event) " + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
    }

    /// Why an allocation or release was refused. Nothing changed.
    public enum AllocationError: Error, Equatable, Sendable, CustomStringConvertible {
        case invalidHandle(String)
        /// This node has no ring yet (not created, not joined) or has left.
        case notInCluster
        /// No member of the cluster has a free address.
        case outOfSpace
        /// Waited `pendingTimeout` without getting a range from any peer.
        case noSpaceObtained
        case unknownHandle(String)
        /// The handle's address was lost to another owner; release it first.
        case handleInConflict(String)
        /// Quorum mode: this node reaches fewer than a majority of the cluster's voters, so it
        /// cannot confirm a new address (thrown at once, or after `confirmTimeout`).
        case partitioned(reachable: Int, voters: Int)
        /// Quorum mode: enough voters seemed reachable, but fewer than the `needed` acks arrived
        /// within `confirmTimeout` (messages lost, or the voters too slow to answer). The
        /// address was released; nothing was handed out.
        case unconfirmed(acks: Int, needed: Int)

        public var description: String {
            switch self {
            case .invalidHandle(let why): return "invalid handle: \(why)"
            case .notInCluster: return "this node is not part of a cluster yet; start it with --seed or create a cluster"
            case .outOfSpace: return "the cluster's address space is exhausted; release addresses or reclaim space of dead nodes"
            case .noSpaceObtained: return "no peer granted address space in time; check that this node can reach the cluster"
            case .unknownHandle(let h): return "no allocation for handle '\(h)'"
            case .handleInConflict(let h): return "handle '\(h)' holds an address now owned by another node; release it first"
            case .partitioned(let r, let n): return "partitioned: this node reaches \(r) of \(n) members; new addresses resume when it rejoins"
            case .unconfirmed(let a, let n):
                return "not confirmed in time: \(a) of the \(n) acknowledgements a new address needs arrived (the members are reachable but slow, or messages are lost); nothing was handed out: retry, and see `weft doctor` if it persists"
            }
        }
    }

    /// Why a manual reclaim was refused.
    public enum ReclaimError: Error, Equatable, Sendable, CustomStringConvertible {
        case notInCluster
        case isSelf
        case nodeIsAlive(NodeID)
        case ownsNothing(NodeID)
        /// Quorum mode: a reclaim needs a majority of the voters (fenced takeover, rule 6).
        case partitioned(reachable: Int, voters: Int)
        /// A takeover of this node is already under way (phase 1 sent, waiting for acks).
        case inProgress(NodeID)
        /// The node allocated without confirmation (fewer than 3 voters) or published no
        /// register: addresses it handed out may be unknown here. Only `force` may reclaim it.
        case holdingsUnknown(NodeID)
        public var description: String {
            switch self {
            case .notInCluster: return "this node is not part of a cluster"
            case .isSelf: return "a node cannot reclaim its own space; use leave"
            case .nodeIsAlive(let n): return "\(n.short) is alive; only dead or departed nodes' space can be reclaimed"
            case .ownsNothing(let n): return "\(n.short) owns no ranges"
            case .partitioned(let r, let n): return "partitioned: this node reaches \(r) of \(n) members; a reclaim needs a majority — retry when it rejoins"
            case .holdingsUnknown(let n): return "\(n.short) allocated addresses without confirmation (the cluster had fewer than 3 voters) that this node may not know; if the host is gone for good use reclaim --force, else bring it back"
            case .inProgress(let n): return "a reclaim of \(n.short) is already waiting for the voters' answers; retry in a few seconds"
            }
        }
    }

    /// The answer to `allocate`.
    public enum AllocationOutcome: Equatable, Sendable {
        /// Served now (persist the directives first, then answer).
        case allocated(UInt32)
        /// Waiting for space from a peer, or (quorum mode) for a quorum of voters to confirm the
        /// address; an `.allocated` or `.allocationFailed` directive follows.
        case pending
    }
}
