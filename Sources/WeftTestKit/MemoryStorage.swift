import WeftCore

/// The in-memory twin of `NodeStore` for the whole-node simulator and tests: it keeps exactly
/// what committed batches said (as SQLite would), can refuse commits, and survives a "kill -9"
/// of its node (everything committed stays, nothing else exists).
///
/// Single-threaded use only (the simulator); `@unchecked Sendable` for the protocol.
public final class MemoryStorage: NodeStorage, @unchecked Sendable {
    public struct Allocation: Equatable, Sendable {
        public var address: UInt32
        public var conflicted: Bool
        public var unconfirmed = false
    }

    public private(set) var incarnation: UInt64 = 0
    public private(set) var members: [NodeID: Membership.Member] = [:]
    public private(set) var cluster: (IPAM.ClusterID, IPAM.Subnet)?
    public private(set) var ringEntries: [UInt32: IPAM.Entry] = [:]
    public private(set) var allocations: [String: Allocation] = [:]
    public private(set) var records: [DNS.Records.Key: DNS.Records.Record] = [:]
    public private(set) var holdings: [NodeID: IPAM.Holdings] = [:]
    public private(set) var ownHoldingsVersion: UInt64 = 0
    public private(set) var evictions: [NodeID: Node.Eviction] = [:]
    public private(set) var commits = 0
    /// The next this-many commits throw (a full disk, an I/O error).
    public var failNext = 0

    public struct InjectedFailure: Error, CustomStringConvertible {
        public var description: String { "injected storage failure (disk full)" }
    }

    public init() {}

    public func commit(_ batch: Node.Batch) throws {
        if failNext > 0 {
            failNext -= 1
            throw InjectedFailure()
        }
        commits += 1
        if let inc = batch.incarnation { incarnation = max(incarnation, inc) }
        for m in batch.members { members[m.id] = m }
        for id in batch.forgotten { members[id] = nil }
        for change in batch.ipam { apply(change) }
        for (k, r) in batch.dns { records[k] = r }
        for e in batch.evictions { evictions[e.subject] = e }
    }

    func apply(_ change: IPAM.PersistChange) {
        switch change {
        case .cluster(let c, let s): cluster = (c, s)
        case .ringEntries(let es): for e in es { ringEntries[e.token] = e }
        case .allocation(let h, let a): allocations[h] = Allocation(address: a, conflicted: false)
        case .unconfirmedAllocation(let h, let a): allocations[h] = Allocation(address: a, conflicted: false, unconfirmed: true)
        case .holdings(let owner, let reg): holdings[owner] = reg
        case .ownHoldingsVersion(let v): ownHoldingsVersion = v
        case .release(let h): allocations[h] = nil
        case .conflicted(let h, let a): allocations[h] = Allocation(address: a, conflicted: true)
        }
    }

    /// What the daemon's start does first: read the stored incarnation, add one, persist it.
    public func nextIncarnation() -> UInt64 {
        incarnation += 1
        return incarnation
    }

    /// The IPAM state as a restart would load it, or nil without a ring. Throws when the stored
    /// ring breaks the invariants (what `NodeStore` reports as corruption).
    public func ipamSnapshot() throws(IPAM.RingError) -> IPAM.Instance.Snapshot? {
        guard let (c, s) = cluster else { return nil }
        let ring = try IPAM.Ring(cluster: c, subnet: s, entries: ringEntries.values.sorted { $0.token < $1.token })
        var active: [String: UInt32] = [:]
        var conflicts: [String: UInt32] = [:]
        var unconfirmed: Set<String> = []
        for (h, a) in allocations {
            if a.conflicted { conflicts[h] = a.address } else { active[h] = a.address }
            if a.unconfirmed && !a.conflicted { unconfirmed.insert(h) }
        }
        return IPAM.Instance.Snapshot(ring: ring, allocations: active, conflicts: conflicts, unconfirmed: unconfirmed,
                                      holdings: holdings, ownHoldingsVersion: ownHoldingsVersion)
    }

    /// Every address the stored state says is in use (allocations and conflicts), by handle.
    public var heldAddresses: [String: UInt32] {
        allocations.mapValues(\.address)
    }
}
