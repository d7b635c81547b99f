/// The node's durable state as seen from the pure core: one atomic commit per input.
///
/// `Node.Instance` gathers every durable change an input causes into one ``Node/Batch`` and
/// commits it before any effect of that input leaves the node (no answer, no datagram, no
/// route). If the commit throws, the node restores its state from before the input and reports
/// the failure: memory never runs ahead of the disk, and nothing is acknowledged that a crash
/// could lose. `NodeStore` (SQLite) implements it; WeftTestKit has an in-memory twin that can
/// fail writes and lose everything after the last commit (kill -9).
public protocol NodeStorage: AnyObject, Sendable {
    /// Applies every change of `batch` in one transaction, or none of them.
    func commit(_ batch: Node.Batch) throws
}

extension Node {
    /// The durable changes of one input, committed together.
    public struct Batch: Equatable, Sendable {
        /// Address-allocation changes, in order.
        public var ipam: [IPAM.PersistChange] = []
        /// Members to upsert (last write per id wins within the batch).
        public var members: [Membership.Member] = []
        /// Members forgotten after their retention: delete.
        public var forgotten: [NodeID] = []
        /// This node's incarnation rose (refutation): persist before anything is sent.
        public var incarnation: UInt64?
        /// Name records to upsert (this node's and others').
        public var dns: [DNS.Records.Key: DNS.Records.Record] = [:]
        /// Eviction records to upsert (by subject; each supersedes the stored one).
        public var evictions: [Node.Eviction] = []

        public init() {}
        public var isEmpty: Bool {
            ipam.isEmpty && members.isEmpty && forgotten.isEmpty && incarnation == nil && dns.isEmpty && evictions.isEmpty
        }
    }
}
