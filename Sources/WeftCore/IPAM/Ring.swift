extension IPAM {
    /// Who created a cluster: the creator's node ID and a random nonce drawn at creation.
    ///
    /// Two clusters started separately from the same key (both without seeds) get different
    /// identities, so when their rings meet the merge refuses with ``RingError/differentCluster``
    /// instead of silently producing two owners per address (Weave's "seeded by different peers").
    public struct ClusterID: Hashable, Sendable, CustomStringConvertible {
        public let creator: NodeID
        public let nonce: UInt64
        public init(creator: NodeID, nonce: UInt64) { self.creator = creator; self.nonce = nonce }
        public var description: String { "\(creator.short)/\(Hex.encode(ByteWriterNonce.bytes(nonce)))" }
    }

    /// One ring entry: the range that starts at `token` and runs to the next entry's token (or
    /// the end of the subnet), its single owner, a version only its owner raises, and how many
    /// addresses of the range the owner has not handed out (a hint used to pick donors).
    public struct Entry: Hashable, Sendable, CustomStringConvertible {
        public var token: UInt32
        public var owner: NodeID
        public var version: UInt64
        public var free: UInt32

        public init(token: UInt32, owner: NodeID, version: UInt64, free: UInt32) {
            self.token = token; self.owner = owner; self.version = version; self.free = free
        }

        /// The merge rule for two entries with the same token: the higher version wins; at equal
        /// versions with different content, the larger owner ID wins, then the larger free count.
        /// This is a total order, so "keep the maximum" is commutative, associative and idempotent.
        @inlinable
        public func beats(_ other: Entry) -> Bool {
            if version != other.version { return version > other.version }
            if owner != other.owner { return owner > other.owner }
            return free > other.free
        }

        public var description: String { "\(IPAM.format(token)) \(owner.short) v\(version) free \(free)" }
    }

    /// What a merge changed here: the remote entries that were new or won, sorted by token.
    /// Forward exactly these; an empty delta means the news was already known.
    public typealias Delta = [Entry]

    /// Why a remote ring (or delta) was refused. Never a trap: the daemon logs and drops it.
    public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
        /// The other ring belongs to a cluster created separately. Nothing was merged.
        case differentCluster(ours: ClusterID, theirs: ClusterID)
        /// The other ring divides a different subnet. Nothing was merged.
        case differentSubnet(ours: Subnet, theirs: Subnet)
        /// The other ring breaks a structural rule (named here). Nothing was merged.
        case invalid(String)

        public var description: String {
            switch self {
            case .differentCluster(let o, let t):
                return "ring from a different cluster (ours \(o), theirs \(t)); two clusters were created separately — join one with --seed instead"
            case .differentSubnet(let o, let t): return "ring divides \(t) but this cluster uses \(o)"
            case .invalid(let why): return "invalid ring: \(why)"
            }
        }
    }

    /// The ownership ring: a CRDT over the subnet.
    ///
    /// State is a grow-only set of tokens (range starts), each mapped to an ``Entry`` register
    /// that keeps the maximum under ``Entry/beats(_:)``. Tokens are never removed, so the union
    /// of two rings over the same subnet still tiles it: every address belongs to the range of
    /// the greatest token at or below it, and that range has exactly one owner.
    public struct Ring: Equatable, Sendable {
        /// Versions above this are refused from the wire so no owner can be pushed to overflow.
        public static let maxVersion: UInt64 = 1 << 62
        /// At most this many entries (tokens) are accepted in one ring or delta.
        public static let maxEntries = 1 << 20

        public let cluster: ClusterID
        public let subnet: Subnet
        /// Sorted by token; the first token is `subnet.base`.
        public private(set) var entries: [Entry]

        /// A fresh ring in which `cluster.creator` owns the whole subnet.
        public init(cluster: ClusterID, subnet: Subnet) {
            self.cluster = cluster
            self.subnet = subnet
            let usable = subnet.size >= 2 ? subnet.size - 2 : 0
            entries = [Entry(token: subnet.base, owner: cluster.creator, version: 1, free: usable)]
        }

        /// A ring received from the wire or restored from storage: every rule is checked.
        public init(cluster: ClusterID, subnet: Subnet, entries: [Entry]) throws(RingError) {
            try Ring.validate(entries, subnet: subnet, full: true)
            self.cluster = cluster
            self.subnet = subnet
            self.entries = entries
        }

        // MARK: Queries

        /// One past the last address of the range of entry `i`.
        @inlinable
        public func end(ofEntryAt i: Int) -> UInt64 {
            i + 1 < entries.count ? UInt64(entries[i + 1].token) : subnet.end
        }

        /// The number of addresses in the range of entry `i`.
        public func size(ofEntryAt i: Int) -> UInt32 { UInt32(end(ofEntryAt: i) - UInt64(entries[i].token)) }

        /// Index of the entry whose range holds `address`, by binary search; nil outside the subnet.
        @inlinable
        public func index(containing address: UInt32) -> Int? {
            guard subnet.contains(address), !entries.isEmpty else { return nil }
            var lo = 0, hi = entries.count - 1
            while lo < hi {
                let mid = (lo + hi + 1) >> 1
                if entries[mid].token <= address { lo = mid } else { hi = mid - 1 }
            }
            return lo
        }

        /// The node that owns `address`, or nil when it lies outside the subnet. O(log entries).
        @inlinable
        public func owner(of address: UInt32) -> NodeID? {
            guard let i = index(containing: address) else { return nil }
            return entries[i].owner
        }

        /// Index of the entry with exactly this token.
        public func index(ofToken token: UInt32) -> Int? {
            guard let i = index(containing: token), entries[i].token == token else { return nil }
            return i
        }

        /// Free-space hint per owner (sum of `free` over its entries).
        public func freeByOwner() -> [NodeID: UInt64] {
            var out: [NodeID: UInt64] = [:]
            for (i, e) in entries.enumerated() { out[e.owner, default: 0] += UInt64(min(e.free, size(ofEntryAt: i))) }
            return out
        }

        /// All owners that appear in the ring.
        public var owners: Set<NodeID> { Set(entries.map(\.owner)) }

        // MARK: Merge

        /// Merges a full remote ring. Returns the entries that changed here (new tokens or
        /// remote entries that won), so gossip can forward exactly the news and then go quiet.
        /// Refuses, changing nothing, if the ring is from another cluster or subnet or is malformed.
        @discardableResult
        public mutating func merge(_ other: Ring) throws(RingError) -> Delta {
            try merge(entries: other.entries, cluster: other.cluster, subnet: other.subnet)
        }

        /// Merges a delta: any sorted subset of a remote ring's entries.
        @discardableResult
        public mutating func merge(entries remote: [Entry], cluster: ClusterID, subnet: Subnet) throws(RingError) -> Delta {
            guard cluster == self.cluster else { throw .differentCluster(ours: self.cluster, theirs: cluster) }
            guard subnet == self.subnet else { throw .differentSubnet(ours: self.subnet, theirs: subnet) }
            try Ring.validate(remote, subnet: subnet, full: false)
            if remote.isEmpty { return [] }
            if remote.count * 16 < entries.count { return mergeSmall(remote) }
            var merged: [Entry] = []
            merged.reserveCapacity(entries.count + remote.count)
            var delta: [Entry] = []
            var i = 0, j = 0
            while i < entries.count || j < remote.count {
                if j == remote.count || (i < entries.count && entries[i].token < remote[j].token) {
                    merged.append(entries[i]); i += 1
                } else if i == entries.count || remote[j].token < entries[i].token {
                    merged.append(remote[j]); delta.append(remote[j]); j += 1
                } else {
                    if remote[j].beats(entries[i]) {
                        merged.append(remote[j]); delta.append(remote[j])
                    } else {
                        merged.append(entries[i])
                    }
                    i += 1; j += 1
                }
            }
            if delta.isEmpty { return [] }
            if let broken = Ring.invariantViolation(merged, subnet: subnet) { throw .invalid(broken) }
            entries = merged
            return delta
        }

        /// The same join for a small delta against a large ring: binary search and update in
        /// place instead of rebuilding the array (gossip deltas are usually one entry).
        /// Remote entries are already validated (sorted, inside the subnet), and the base token
        /// is always present here, so in-place updates keep the invariants.
        mutating func mergeSmall(_ remote: [Entry]) -> Delta {
            var delta: [Entry] = []
            for r in remote {
                let i = index(containing: r.token)!  // validated: inside the subnet
                if entries[i].token == r.token {
                    if r.beats(entries[i]) { entries[i] = r; delta.append(r) }
                } else {
                    entries.insert(r, at: i + 1); delta.append(r)
                }
            }
            assert(Ring.invariantViolation(entries, subnet: subnet) == nil)
            return delta
        }

        // MARK: Owner-side changes (used by Instance; the caller checks ownership)

        /// Replaces the entry with the same token. The token must exist.
        mutating func replace(_ entry: Entry) {
            guard let i = index(ofToken: entry.token) else { preconditionFailure("no token \(entry.token)") }
            entries[i] = entry
            assert(Ring.invariantViolation(entries, subnet: subnet) == nil)
        }

        /// Inserts a new token inside an existing range. The token must be new and in the subnet.
        mutating func insert(_ entry: Entry) {
            guard let i = index(containing: entry.token), entries[i].token != entry.token else {
                preconditionFailure("token \(entry.token) exists or lies outside the subnet")
            }
            entries.insert(entry, at: i + 1)
            assert(Ring.invariantViolation(entries, subnet: subnet) == nil)
        }

        // MARK: Validation

        /// Checks remote entries: sorted, distinct, inside the subnet, sane versions; a full ring
        /// must also start at the subnet base and be non-empty.
        static func validate(_ entries: [Entry], subnet: Subnet, full: Bool) throws(RingError) {
            guard entries.count <= maxEntries else { throw .invalid("\(entries.count) entries (limit \(maxEntries))") }
            if full {
                guard let first = entries.first else { throw .invalid("no entries") }
                guard first.token == subnet.base else { throw .invalid("first token \(IPAM.format(first.token)) is not the subnet base") }
            }
            var previous: UInt32? = nil
            for e in entries {
                guard subnet.contains(e.token) else { throw .invalid("token \(IPAM.format(e.token)) outside \(subnet)") }
                if let p = previous, e.token <= p { throw .invalid("tokens not strictly increasing at \(IPAM.format(e.token))") }
                guard e.version <= maxVersion else { throw .invalid("version \(e.version) too large") }
                guard e.free <= subnet.size else { throw .invalid("free \(e.free) larger than the subnet") }
                previous = e.token
            }
        }

        /// The ring's invariants: non-empty, starts at the base, strictly increasing tokens, all
        /// inside the subnet (so the ranges tile the subnet with exactly one owner each).
        static func invariantViolation(_ entries: [Entry], subnet: Subnet) -> String? {
            guard let first = entries.first else { return "empty ring" }
            guard first.token == subnet.base else { return "does not start at the subnet base" }
            for k in entries.indices {
                guard subnet.contains(entries[k].token) else { return "token outside the subnet" }
                if k > 0 && entries[k].token <= entries[k - 1].token { return "tokens not increasing" }
            }
            return nil
        }

        /// Nil when the invariants hold, else what is broken. Tests call this after every step.
        public var invariantViolation: String? { Ring.invariantViolation(entries, subnet: subnet) }
    }
}

/// Big-endian bytes of a nonce, for display.
enum ByteWriterNonce {
    static func bytes(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }
}
