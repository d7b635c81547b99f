import WeftCore

/// A deterministic in-memory network of IPAM instances for tests, the simulator and the
/// benchmark. Reachability is "both up and in the same partition group"; messages are
/// delivered one at a time in FIFO order and dropped when the pair cannot reach each other.
public struct IPAMHarness {
    public var nodes: [NodeID: IPAM.Instance] = [:]
    /// Nodes that are running (crashed and departed nodes are not).
    public var up: Set<NodeID> = []
    /// Nodes that have left for good.
    public var departed: Set<NodeID> = []
    /// Partition group of each node; nodes in different groups cannot reach each other.
    public var group: [NodeID: Int] = [:]
    public var now: Instant = .zero
    public let settings: IPAM.Settings
    /// Everything reported, for assertions.
    public var conflicts: [NodeID: [IPAM.Conflict]] = [:]
    public var completed: [NodeID: [(handle: String, address: UInt32)]] = [:]
    public var failed: [NodeID: [(handle: String, error: IPAM.AllocationError)]] = [:]
    public var rejections: [(at: NodeID, from: NodeID, reason: IPAM.Rejection)] = []
    /// Bytes carried, by kind: "broadcast" and "send".
    public var bytesSent: [String: Int] = [:]
    public var messagesDelivered = 0
    /// What each node has committed to its store (applied from `.persist` directives exactly as
    /// `NodeStore.applyIPAM` does). A crash keeps this and nothing else; a restart rebuilds the
    /// instance from it. The oracle reads it for every node, crashed ones included.
    public var durable: [NodeID: Durable] = [:]
    /// Allocations acknowledged to the caller (`.allocated` outcome or directive), by node and
    /// handle; the harness removes them when it releases them (or the node leaves / is forgotten).
    public var acknowledged: [NodeID: [String: UInt32]] = [:]
    /// Nodes whose membership view is not refreshed by `updateMembership` (failure-detector lag).
    public var staleMembership: Set<NodeID> = []
    /// When each node first saw each other node unreachable (its local membership view).
    var unreachableSince: [NodeID: [NodeID: Instant]] = [:]
    var queue: [(from: NodeID, to: NodeID?, bytes: [UInt8])] = []
    /// The last view given to each node (unchanged views are not given again).
    var lastMembership: [NodeID: (live: Set<NodeID>, dead: [NodeID: Instant], left: Set<NodeID>)] = [:]
    var queueHead = 0

    public init(settings: IPAM.Settings = .fast) { self.settings = settings }

    /// A node's committed IPAM state, kept like the SQLite tables.
    public struct Durable: Sendable {
        public var cluster: IPAM.ClusterID?
        public var subnet: IPAM.Subnet?
        public var entries: [UInt32: IPAM.Entry] = [:]
        /// handle -> (address, state 0 active / 1 conflict / 2 unconfirmed)
        public var allocations: [String: (address: UInt32, state: Int)] = [:]
        public var holdings: [NodeID: IPAM.Holdings] = [:]
        public var ownHoldingsVersion: UInt64 = 0
        public init() {}

        public mutating func apply(_ c: IPAM.PersistChange) {
            switch c {
            case .cluster(let cl, let s): cluster = cl; subnet = s
            case .ringEntries(let es): for e in es { entries[e.token] = e }
            case .allocation(let h, let a): allocations[h] = (a, 0)
            case .unconfirmedAllocation(let h, let a): allocations[h] = (a, 2)
            case .conflicted(let h, let a): allocations[h] = (a, 1)
            case .release(let h): allocations[h] = nil
            case .holdings(let o, let h): holdings[o] = h
            case .ownHoldingsVersion(let v): ownHoldingsVersion = v
            }
        }

        /// The snapshot a restart reads (as `NodeStore.loadIPAMSnapshot`).
        public var snapshot: IPAM.Instance.Snapshot {
            var ring: IPAM.Ring? = nil
            if let cluster, let subnet, !entries.isEmpty {
                ring = try? IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries.values.sorted { $0.token < $1.token })
            }
            var a: [String: UInt32] = [:], c: [String: UInt32] = [:], u: Set<String> = []
            for (h, x) in allocations {
                switch x.state {
                case 1: c[h] = x.address
                case 2: a[h] = x.address; u.insert(h)
                default: a[h] = x.address
                }
            }
            return .init(ring: ring, allocations: a, conflicts: c, unconfirmed: u, holdings: holdings, ownHoldingsVersion: ownHoldingsVersion)
        }

        /// True when the running instance holds exactly this committed state (nothing unpersisted).
        public func matches(_ n: IPAM.Instance) -> Bool {
            guard n.ownHoldingsVersion == ownHoldingsVersion, n.holdings == holdings else { return false }
            if let r = n.ring {
                guard r.cluster == cluster, r.subnet == subnet, r.entries.count == entries.count else { return false }
                for e in r.entries where entries[e.token] != e { return false }
            } else if !entries.isEmpty { return false }
            guard allocations.count == n.allocations.count + n.conflicts.count else { return false }
            for (h, x) in allocations {
                switch x.state {
                case 1: if n.conflicts[h] != x.address { return false }
                case 2: if n.allocations[h] != x.address || n.unconfirmed[h] == nil { return false }
                default: if n.allocations[h] != x.address || n.unconfirmed[h] != nil { return false }
                }
            }
            return true
        }

        /// Addresses in use by containers: confirmed allocations and conflicts (not unconfirmed
        /// ones: no caller has been given those).
        public var active: [(handle: String, address: UInt32)] {
            allocations.filter { $0.value.state != 2 }.map { ($0.key, $0.value.address) }
        }
    }

    /// Kills node `id` (kill -9): it keeps only its durable state.
    public mutating func crash(_ id: NodeID) { up.remove(id) }

    /// Restarts a crashed node from its durable state.
    public mutating func restart(_ id: NodeID, seed: UInt64) {
        lastMembership[id] = nil
        let snap = (durable[id] ?? Durable()).snapshot
        nodes[id] = snap.ring == nil ? IPAM.Instance(me: id, settings: settings, seed: seed)
            : IPAM.Instance(me: id, settings: settings, seed: seed, restoring: snap)
        up.insert(id)
    }

    public func canReach(_ a: NodeID, _ b: NodeID) -> Bool {
        up.contains(a) && up.contains(b) && group[a, default: 0] == group[b, default: 0]
    }

    /// Adds a running node with no state.
    public mutating func addNode(_ id: NodeID, seed: UInt64) {
        nodes[id] = IPAM.Instance(me: id, settings: settings, seed: seed)
        durable[id] = Durable()
        up.insert(id)
        group[id] = 0
    }

    /// Runs `body` on one node and routes the directives it returns.
    @discardableResult
    public mutating func with<T>(_ id: NodeID, _ body: (inout IPAM.Instance) throws -> (T, [IPAM.Directive])) rethrows -> T {
        let (value, directives) = try body(&nodes[id]!)
        route(from: id, directives)
        return value
    }

    /// Allocates on node `id` at the harness's current time.
    @discardableResult
    public mutating func allocate(_ id: NodeID, _ handle: String) throws(IPAM.AllocationError) -> IPAM.AllocationOutcome {
        let r = try nodes[id]!.allocate(handle: handle, now: now)
        route(from: id, r.directives)
        if case .allocated(let a) = r.outcome, handle != IPAM.Instance.overlayHandle { acknowledged[id, default: [:]][handle] = a }
        return r.outcome
    }

    public mutating func release(_ id: NodeID, _ handle: String) throws(IPAM.AllocationError) {
        let out = try nodes[id]!.release(handle: handle, now: now)
        acknowledged[id]?[handle] = nil
        route(from: id, out)
    }

    public mutating func create(_ id: NodeID, subnet: IPAM.Subnet) {
        let out = nodes[id]!.createCluster(subnet: subnet, now: now)
        route(from: id, out)
    }

    public mutating func leave(_ id: NodeID) {
        let out = nodes[id]!.leave(now: now)
        acknowledged[id] = nil
        route(from: id, out)
    }

    public mutating func reclaim(_ id: NodeID, _ dead: NodeID, force: Bool = false) throws(IPAM.ReclaimError) {
        let out = try nodes[id]!.reclaim(dead, force: force, now: now)
        route(from: id, out)
    }

    public mutating func route(from id: NodeID, _ directives: [IPAM.Directive]) {
        for d in directives {
            switch d {
            case .broadcast(let b):
                queue.append((id, nil, b)); bytesSent["broadcast", default: 0] += b.count
            case .send(let b, let to):
                queue.append((id, to, b)); bytesSent["send", default: 0] += b.count
            case .conflict(let c): conflicts[id, default: []].append(c)
            case .allocated(let h, let a):
                completed[id, default: []].append((h, a))
                if h != IPAM.Instance.overlayHandle { acknowledged[id, default: [:]][h] = a }
            case .allocationFailed(let h, let e): failed[id, default: []].append((h, e))
            case .rejected(let from, let reason): rejections.append((id, from, reason))
            case .persist(let c): durable[id, default: Durable()].apply(c)
            case .log: break
            }
        }
    }

    /// Delivers queued messages until the queue is empty (or `limit` deliveries).
    public mutating func deliverAll(limit: Int = 100_000) {
        var n = 0
        while queueHead < queue.count && n < limit {
            let m = queue[queueHead]; queueHead += 1; n += 1
            let targets: [NodeID] = m.to.map { [$0] } ?? nodes.keys.filter { $0 != m.from }.sorted()
            let decoded = try? IPAM.Message(decoding: m.bytes)
            for t in targets where canReach(m.from, t) {
                messagesDelivered += 1
                let out = decoded.map { nodes[t]!.onMessage($0, from: m.from, now: now) } ?? nodes[t]!.onMessage(m.bytes, from: m.from, now: now)
                route(from: t, out)
            }
        }
        if queueHead == queue.count { queue.removeAll(keepingCapacity: true); queueHead = 0 }
    }

    /// Components of mutually reachable running nodes, each sorted.
    public var components: [[NodeID]] {
        var byGroup: [Int: [NodeID]] = [:]
        for id in up.sorted() { byGroup[group[id, default: 0], default: []].append(id) }
        return byGroup.keys.sorted().map { byGroup[$0]! }
    }

    /// Tells every running node who it can reach now and since when the others are gone.
    public mutating func updateMembership() {
        for x in up.sorted() where !staleMembership.contains(x) {
            var live: Set<NodeID> = []
            var dead: [NodeID: Instant] = [:]
            for y in nodes.keys where y != x {
                if canReach(x, y) && !departed.contains(y) {
                    live.insert(y); unreachableSince[x, default: [:]][y] = nil
                } else {
                    let since = unreachableSince[x, default: [:]][y] ?? now
                    unreachableSince[x, default: [:]][y] = since
                    dead[y] = since
                }
            }
            if let last = lastMembership[x], last.live == live, last.dead == dead, last.left == departed { continue }
            lastMembership[x] = (live, dead, departed)
            let out = nodes[x]!.onMembersChanged(live: live, deadSince: dead, left: departed, now: now)
            route(from: x, out)
        }
    }

    /// Push-pull within every component until all its rings agree and nothing is queued.
    /// Returns false if it did not settle within `rounds`.
    @discardableResult
    public mutating func sync(rounds: Int = 30) -> Bool {
        for _ in 0..<rounds {
            deliverAll()
            var settled = true
            for comp in components {
                let withRing = comp.filter { nodes[$0]!.ring != nil }
                guard let first = withRing.first else { continue }
                // Cheap check first: every ring equal and every register view equal.
                let r0 = nodes[first]!.ring!
                var views: [[NodeID: IPAM.Holdings]] = []
                for id in withRing {
                    var v = nodes[id]!.holdings
                    v[id] = nodes[id]!.ownHoldings
                    views.append(v)
                }
                if withRing.count == comp.count && withRing.allSatisfy({ nodes[$0]!.ring == r0 }) && views.allSatisfy({ $0 == views[0] }) { continue }
                var regs: [NodeID: IPAM.Holdings] = [:]
                for v in views { for (o, x) in v where regs[o].map({ x.beats($0) }) ?? true { regs[o] = x } }
                var joined = r0
                for id in withRing.dropFirst() { _ = try? joined.merge(nodes[id]!.ring!) }
                let registers = regs.sorted { $0.key < $1.key }.map { IPAM.OwnedHoldings(owner: $0.key, holdings: $0.value) }
                for id in comp {
                    if nodes[id]!.ring == joined && registersAgree(nodes[id]!, regs) { continue }
                    settled = false
                    let from = comp.first { $0 != id } ?? first
                    let out = nodes[id]!.onMessage(IPAM.Message.fullState(ring: joined, registers: registers), from: from, now: now)
                    route(from: id, out)
                }
            }
            if settled && queueHead == queue.count { return true }
        }
        deliverAll()
        return false
    }

    /// True when `n` stores (at least) every register in `regs` (its own compared as its own).
    func registersAgree(_ n: IPAM.Instance, _ regs: [NodeID: IPAM.Holdings]) -> Bool {
        for (o, h) in regs {
            if o == n.me { if n.ownHoldings != h { return false } } else if n.holdings[o] != h { return false }
        }
        return true
    }

    /// Runs `onTick` on every running node.
    public mutating func tickAll() {
        for id in up.sorted() {
            let out = nodes[id]!.onTick(now: now)
            route(from: id, out)
        }
    }

    /// The global oracle (docs/ipam.md): over the durable state of every node that has not left
    /// (running or crashed, reachable or not), an address that is active (a confirmed allocation
    /// or a conflict) for two (node, handle) pairs. Returns the first such address and pairs.
    public func globalDuplicate() -> (address: UInt32, first: (NodeID, String), second: (NodeID, String))? {
        var seen: [UInt32: (NodeID, String)] = [:]
        for id in durable.keys.sorted() where !departed.contains(id) {
            for (h, a) in durable[id]!.active.sorted(by: { $0.handle < $1.handle }) {
                if let other = seen[a] { return (a, other, (id, h)) }
                seen[a] = (id, h)
            }
        }
        return nil
    }

    /// An acknowledged allocation that is no longer in its node's durable allocations or
    /// conflicts (with the same address) although the harness never released it.
    public func lostAcknowledgement() -> (node: NodeID, handle: String, address: UInt32)? {
        for id in acknowledged.keys.sorted() where !departed.contains(id) {
            for (h, a) in acknowledged[id]!.sorted(by: { $0.key < $1.key }) {
                guard let x = durable[id]?.allocations[h], x.address == a, x.state != 2 else { return (id, h, a) }
            }
        }
        return nil
    }

    /// Pairs of mutually reachable nodes that both hold the same address, with the address.
    public func duplicateHolders() -> [(NodeID, NodeID, UInt32)] {
        var found: [(NodeID, NodeID, UInt32)] = []
        for comp in components {
            var seen: [UInt32: NodeID] = [:]
            for id in comp {
                for a in nodes[id]!.allocations.values {
                    if let other = seen[a] { found.append((other, id, a)) } else { seen[a] = id }
                }
            }
        }
        return found
    }
}
