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
    /// When each node first saw each other node unreachable (its local membership view).
    var unreachableSince: [NodeID: [NodeID: Instant]] = [:]
    var queue: [(from: NodeID, to: NodeID?, bytes: [UInt8])] = []
    var queueHead = 0

    public init(settings: IPAM.Settings = .fast) { self.settings = settings }

    public func canReach(_ a: NodeID, _ b: NodeID) -> Bool {
        up.contains(a) && up.contains(b) && group[a, default: 0] == group[b, default: 0]
    }

    /// Adds a running node with no state.
    public mutating func addNode(_ id: NodeID, seed: UInt64) {
        nodes[id] = IPAM.Instance(me: id, settings: settings, seed: seed)
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
        return r.outcome
    }

    public mutating func release(_ id: NodeID, _ handle: String) throws(IPAM.AllocationError) {
        let out = try nodes[id]!.release(handle: handle, now: now)
        route(from: id, out)
    }

    public mutating func create(_ id: NodeID, subnet: IPAM.Subnet) {
        let out = nodes[id]!.createCluster(subnet: subnet, now: now)
        route(from: id, out)
    }

    public mutating func leave(_ id: NodeID) {
        let out = nodes[id]!.leave(now: now)
        route(from: id, out)
    }

    public mutating func reclaim(_ id: NodeID, _ dead: NodeID) throws(IPAM.ReclaimError) {
        let out = try nodes[id]!.reclaim(dead, now: now)
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
            case .allocated(let h, let a): completed[id, default: []].append((h, a))
            case .allocationFailed(let h, let e): failed[id, default: []].append((h, e))
            case .rejected(let from, let reason): rejections.append((id, from, reason))
            case .persist, .log: break
            }
        }
    }

    /// Delivers queued messages until the queue is empty (or `limit` deliveries).
    public mutating func deliverAll(limit: Int = 100_000) {
        var n = 0
        while queueHead < queue.count && n < limit {
            let m = queue[queueHead]; queueHead += 1; n += 1
            let targets: [NodeID] = m.to.map { [$0] } ?? nodes.keys.filter { $0 != m.from }.sorted()
            for t in targets where canReach(m.from, t) {
                messagesDelivered += 1
                let out = nodes[t]!.onMessage(m.bytes, from: m.from, now: now)
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
        for x in up.sorted() {
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
            let out = nodes[x]!.onMembersChanged(live: live, deadSince: dead, now: now)
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
                var joined = nodes[first]!.ring!
                for id in withRing.dropFirst() { _ = try? joined.merge(nodes[id]!.ring!) }
                for id in comp where nodes[id]!.ring != joined {
                    settled = false
                    let from = comp.first { $0 != id } ?? first
                    let out = nodes[id]!.onMessage(IPAM.Message.ringFull(joined), from: from, now: now)
                    route(from: id, out)
                }
            }
            if settled && queueHead == queue.count { return true }
        }
        deliverAll()
        return false
    }

    /// Runs `onTick` on every running node.
    public mutating func tickAll() {
        for id in up.sorted() {
            let out = nodes[id]!.onTick(now: now)
            route(from: id, out)
        }
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
