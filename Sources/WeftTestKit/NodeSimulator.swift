import WeftCore

/// Whole-node simulation: real `Node.Instance`s (membership + IPAM + the rules between them) on
/// simulated hosts, over a simulated network with delay, loss and (asymmetric) partitions,
/// each with a `MemoryStorage` that survives kill -9. Seeded: a run replays from its seed.
///
/// Hosts are machines: a host keeps its endpoint across restarts; a lost database gives it a
/// new identity (the old one becomes a *ghost*: its containers still run with their addresses).
public final class NodeSimulator {
    public final class Host {
        public let index: Int
        public let endpoint: Endpoint
        public internal(set) var id: NodeID
        public internal(set) var storage = MemoryStorage()
        public internal(set) var node: Node.Instance?
        /// Crashed (not running, state on "disk").
        public var isDown: Bool { node == nil && !hasLeft }
        public internal(set) var hasLeft = false
        public internal(set) var name = ""
        var generation = 0
        var scheduledTick: Instant?
        init(index: Int, endpoint: Endpoint, id: NodeID) {
            self.index = index; self.endpoint = endpoint; self.id = id
        }
    }

    /// What a control client was told: an address for a handle, on a node identity.
    public struct Ack: Equatable, Sendable {
        public var node: NodeID
        public var handle: String
        public var address: UInt32
    }

    enum Event {
        case tick(host: Int, generation: Int)
        case datagram(to: Int, bytes: [UInt8], from: Endpoint)
        case pushPullRequest(to: Int, bytes: [UInt8], from: Int, generation: Int)
        case pushPullReply(to: Int, bytes: [UInt8], from: Int, generation: Int)
        case pushPullFailed(host: Int, target: Endpoint, generation: Int, busy: Bool)
        case ipamFrame(to: Int, bytes: [UInt8])
    }

    public let seed: UInt64
    public var membershipSettings: Membership.Settings
    public var ipamSettings: IPAM.Settings
    public var nodeSettings: Node.Settings
    public let subnet: IPAM.Subnet
    public var network = SimNetwork()
    /// Directed links that drop everything (asymmetric partitions).
    public var blocked: Set<SimNetwork.Link> = []
    /// Hosts whose push-pull port answers "busy" (its connection limits are full, as
    /// `Framing.busyMarker` says in the daemon): their push-pulls fail fast with `busy`.
    public var busy: Set<Int> = []
    public private(set) var now: Instant = Instant(nanoseconds: 1_000_000_000)
    public private(set) var hosts: [Host] = []
    /// Acknowledged allocations not released since, by handle.
    public private(set) var acked: [String: Ack] = [:]
    /// Identities whose database was lost: their last durable allocations (still used by
    /// running containers), until a forced reclaim declares them gone.
    public private(set) var ghosts: [NodeID: [String: UInt32]] = [:]
    /// Every identity whose database was lost (ghost or already force-reclaimed).
    public private(set) var lostIdentities: Set<NodeID> = []
    /// Allocations waiting for a `.allocated` effect: (host identity, handle).
    var waiting: [String: NodeID] = [:]
    var events = SimEventQueue<Event>()
    var rng: DeterministicRNG
    var byEndpoint: [Endpoint: Int] = [:]
    var nextIdentity: UInt64 = 1
    /// Everything the nodes logged at warning or above, for failure reports.
    public private(set) var trace: [String] = []
    public private(set) var eventsProcessed = 0
    /// Set when the simulation stopped on a busy loop.
    public private(set) var livelock: String?
    /// Sees every effect of every host, in order (tests).
    public var observer: ((Int, Node.Effect) -> Void)?
    /// Hosts whose node stopped itself (refused): taken down after the current input.
    var refusedHosts: Set<Int> = []
    /// Hosts started on another data plane than `nodeSettings.dataPlane` (mixed-mode tests).
    public var dataPlaneOf: [Int: String] = [:]
    /// Hosts given an input since the last scheduling pass (see `dispatch`).
    var touched: [Int] = []

    public init(seed: UInt64, membership: Membership.Settings = NodeSimulator.membershipSettings,
                ipam: IPAM.Settings = NodeSimulator.ipamSettings, node: Node.Settings = NodeSimulator.nodeSettings,
                subnet: IPAM.Subnet = try! IPAM.Subnet(base: 0x0A2A_0000, prefixLength: 24)) {
        self.seed = seed
        self.membershipSettings = membership
        self.ipamSettings = ipam
        self.nodeSettings = node
        self.subnet = subnet
        self.rng = DeterministicRNG(seed: seed)
    }

    /// Membership timing for the simulator: LAN-like but sparse, so long schedules stay cheap.
    public static var membershipSettings: Membership.Settings {
        var s = Membership.Settings.fast
        s.probeInterval = .milliseconds(500)
        s.probeTimeout = .milliseconds(200)
        s.gossipInterval = .milliseconds(200)
        s.pushPullInterval = .seconds(5)
        s.deadReprobeInterval = .seconds(2)
        s.deadRetention = .seconds(3600)
        return s
    }

    public static var nodeSettings: Node.Settings {
        var s = Node.Settings.fast
        s.ipamTick = .milliseconds(250)
        return s
    }

    public static var ipamSettings: IPAM.Settings {
        var s = IPAM.Settings.fast
        s.reclaimAfter = .seconds(20)
        s.requestTimeout = .seconds(1)
        s.pendingTimeout = .seconds(5)
        return s
    }

    public var context: String { "seed=\(seed) t=\(now)" }

    // MARK: - Hosts

    func freshIdentity() -> NodeID {
        defer { nextIdentity += 1 }
        // Distinct `short` forms (the first 6 bytes), so reports name each identity apart.
        return NodeID(high: SimCluster.idHigh | (nextIdentity << 16), low: nextIdentity)
    }

    /// Adds a host and starts its node: the first host creates the cluster, the others join
    /// through `seeds` (host indexes; default: host 0).
    @discardableResult
    public func addHost(seeds: [Int]? = nil, name: String? = nil) -> Int {
        let i = hosts.count
        let host = Host(index: i, endpoint: SimCluster.endpoint(i), id: freshIdentity())
        host.name = name ?? "host-\(i)"
        hosts.append(host)
        byEndpoint[host.endpoint] = i
        boot(i, seeds: seeds ?? (i == 0 ? [] : [0]))
        return i
    }

    /// Starts host `i` like the daemon does: stored incarnation + 1, stored members, stored
    /// IPAM state (or a new ring when it has none and no seeds), seeds contacted.
    func boot(_ i: Int, seeds: [Int]) {
        let host = hosts[i]
        let storage = host.storage
        let inc = storage.nextIncarnation()
        let me = Membership.Member(id: host.id, name: host.name, address: host.endpoint,
                                   publicKey: SimCluster.publicKey(host.id), incarnation: inc, state: .alive)
        let known = storage.members.values.filter { $0.id != host.id }.sorted { $0.id < $1.id }.map { m -> Membership.Member in
            var m = m
            if m.state == .suspect { m.state = .alive }
            return m
        }
        let membership = Membership.Instance(myself: me, settings: membershipSettings, seed: rng.next(), now: now,
                                             knownMembers: known, identityCheck: SimCluster.identityCheck,
                                             signer: SimCluster.signer(for: host.id))
        var ipam: IPAM.Instance
        var startup: [IPAM.Directive] = []
        let snapshot: IPAM.Instance.Snapshot?
        do { snapshot = try storage.ipamSnapshot() } catch {
            trace.append("\(context) host \(i): stored ring is corrupt: \(error)")
            snapshot = nil
        }
        if let snapshot {
            ipam = IPAM.Instance(me: host.id, settings: ipamSettings, seed: rng.next(), restoring: snapshot)
        } else {
            ipam = IPAM.Instance(me: host.id, settings: ipamSettings, seed: rng.next())
            if seeds.isEmpty && known.isEmpty { startup = ipam.createCluster(subnet: subnet, now: now) }
        }
        var settings = nodeSettings
        if let mode = dataPlaneOf[i] { settings.dataPlane = mode }
        // Every run of a host counts its IPAM frames above all earlier runs' (as the daemon's
        // wall-clock base does), whatever the simulated clocks do.
        var node = Node.Instance(membership: membership, ipam: ipam, records: storage.records,
                                 evictions: storage.evictions.keys.sorted().map { storage.evictions[$0]! }, settings: settings, storage: storage,
                                 frameCounterBase: UInt64(host.generation + 1) << 48)
        host.generation += 1
        host.scheduledTick = nil
        do {
            let effects = try node.start(seeds: seeds.filter { $0 != i }.map { hosts[$0].endpoint }, ipamStartup: startup, now: now)
            host.node = node
            perform(effects, host: i)
        } catch {
            trace.append("\(context) host \(i): start failed: \(error)")
            host.node = nil
        }
        schedule(i)
    }

    /// kill -9: the node's memory is gone, its storage stays.
    public func crash(_ i: Int) {
        guard hosts[i].node != nil else { return }
        hosts[i].node = nil
        hosts[i].generation += 1
        for (h, id) in waiting where id == hosts[i].id { waiting[h] = nil }
    }

    /// Starts a crashed host again (its seeds: every other host).
    public func restart(_ i: Int) {
        guard hosts[i].isDown else { return }
        boot(i, seeds: hosts.indices.filter { $0 != i })
    }

    /// The database is lost (disk replaced, file removed): the host comes back as a new
    /// identity. Its containers still run: their addresses stay held by the old identity (a
    /// ghost) until a forced reclaim of it.
    public func loseDatabase(_ i: Int) {
        let host = hosts[i]
        crash(i)
        ghosts[host.id] = host.storage.allocations.filter { !$0.value.unconfirmed || $0.value.conflicted }.mapValues(\.address)
        lostIdentities.insert(host.id)
        for (h, a) in acked where a.node == host.id { acked[h] = nil }
        host.storage = MemoryStorage()
        host.id = freshIdentity()
        boot(i, seeds: hosts.indices.filter { $0 != i && !hosts[$0].hasLeft })
    }

    /// `weft leave` on host `i`: its allocations are released (its containers were stopped).
    public func leave(_ i: Int) {
        guard var node = hosts[i].node else { return }
        let (_, effects) = node.leave(now: now)
        hosts[i].node = node
        perform(effects, host: i)
        for (h, a) in acked where a.node == hosts[i].id { acked[h] = nil }
        // The grace period: keep gossiping a little, then stop for good.
        run(for: membershipSettings.probeInterval * 2)
        hosts[i].node = nil
        hosts[i].hasLeft = true
        hosts[i].generation += 1
    }

    /// `weft start` again on the data dir of a host that left (what an operator does after a
    /// `weft leave` to bring the host back).
    public func startAgainAfterLeave(_ i: Int) {
        guard hosts[i].hasLeft else { return }
        hosts[i].hasLeft = false
        boot(i, seeds: hosts.indices.filter { $0 != i && !hosts[$0].hasLeft })
    }

    // MARK: - Control requests

    /// `weft alloc HANDLE` on host `i`. Returns the address when answered at once.
    @discardableResult
    public func allocate(_ i: Int, _ handle: String, name: String? = nil) -> UInt32? {
        guard var node = hosts[i].node else { return nil }
        let (result, effects) = node.allocate(handle: handle, name: name, now: now)
        hosts[i].node = node
        perform(effects, host: i)
        switch result {
        case .success(.allocated(let a)):
            acked[handle] = Ack(node: hosts[i].id, handle: handle, address: a)
            return a
        case .success(.pending):
            waiting[handle] = hosts[i].id
            return nil
        case .failure:
            return nil
        }
    }

    /// `weft release HANDLE` on host `i`.
    @discardableResult
    public func release(_ i: Int, _ handle: String) -> Bool {
        guard var node = hosts[i].node else { return false }
        let (result, effects) = node.release(handle: handle, now: now)
        hosts[i].node = node
        perform(effects, host: i)
        if case .success = result {
            if acked[handle]?.node == hosts[i].id { acked[handle] = nil }
            waiting[handle] = nil
            return true
        }
        return false
    }

    /// `weft alloc HANDLE` on host `i`, waiting (simulated time) for a pending answer.
    @discardableResult
    public func allocateWaiting(_ i: Int, _ handle: String, name: String? = nil, timeout: Duration = .seconds(10)) -> UInt32? {
        if let a = allocate(i, handle, name: name) { return a }
        let deadline = now + timeout
        while now < deadline, waiting[handle] != nil {
            run(for: .milliseconds(20))
        }
        return acked[handle]?.address
    }

    /// `weft ipam reclaim [--force] NODE` on host `i`.
    @discardableResult
    public func reclaim(_ i: Int, _ target: NodeID, force: Bool = false) -> Bool {
        guard var node = hosts[i].node else { return false }
        let (result, effects) = node.reclaim(target.hex, force: force, now: now)
        hosts[i].node = node
        perform(effects, host: i)
        if case .success = result {
            // The operator said the host is gone for good: its containers are gone with it.
            if force { ghosts[target] = nil }
            return true
        }
        return false
    }

    /// `weft evict [--undo] NODE` on host `i`: the outcome (the node's error when refused).
    @discardableResult
    public func evict(_ i: Int, _ target: NodeID, undo: Bool = false) -> Result<NodeID, Node.Instance.EvictError>? {
        guard var node = hosts[i].node else { return nil }
        let (result, effects) = node.evict(target.hex, undo: undo, now: now)
        hosts[i].node = node
        perform(effects, host: i)
        return result.map(\.node)
    }

    /// Feeds host `i` one authenticated gossip datagram (what a cluster-key holder can send),
    /// returning the effects.
    @discardableResult
    public func deliverGossip(_ i: Int, _ bytes: [UInt8], from: Endpoint) -> [Node.Effect] {
        guard var node = hosts[i].node else { return [] }
        let effects = node.onGossip(bytes, from: from, now: now)
        hosts[i].node = node
        perform(effects, host: i)
        return effects
    }

    // MARK: - Network

    public func split(_ groups: [[Int]]) {
        network.split(groups.map { Set($0.map { hosts[$0].endpoint }) })
    }

    /// Drops everything `from` sends to `to` (one direction only).
    public func block(from: Int, to: Int) {
        blocked.insert(SimNetwork.Link(from: hosts[from].endpoint, to: hosts[to].endpoint))
    }

    public func heal() {
        network.heal()
        blocked.removeAll()
    }

    func reaches(_ a: Endpoint, _ b: Endpoint) -> Bool {
        network.connected(a, b) && !blocked.contains(SimNetwork.Link(from: a, to: b))
    }

    // MARK: - Running

    public func run(until deadline: Instant) {
        var sameInstant = 0
        while livelock == nil, let t = events.nextTime, t <= deadline {
            let (time, event) = events.pop()!
            sameInstant = time > now ? 0 : sameInstant + 1
            now = max(now, time)
            eventsProcessed += 1
            dispatch(event)
            // A node that keeps asking to be woken at the same instant is a busy loop in the
            // daemon: stop and report it (checkSafety throws).
            if sameInstant > 100_000 { livelock = "\(context): more than 100,000 events at one instant (a node's nextWakeup does not advance)" }
        }
        now = max(now, deadline)
    }

    public func run(for d: Duration) { run(until: now + d) }

    func schedule(_ i: Int) {
        let host = hosts[i]
        guard let node = host.node else { return }
        let t = max(node.nextWakeup, now)
        if let s = host.scheduledTick, s <= t, s >= now { return }
        host.scheduledTick = t
        events.push(t, .tick(host: i, generation: host.generation))
    }

    func dispatch(_ event: Event) {
        switch event {
        case .tick(let i, let generation):
            let host = hosts[i]
            guard host.generation == generation, var node = host.node else { return }
            host.scheduledTick = nil
            let effects = node.onTick(now: now)
            host.node = node
            perform(effects, host: i)
        case .datagram(let to, let bytes, let from):
            guard var node = hosts[to].node else { return }
            let effects = node.onGossip(bytes, from: from, now: now)
            hosts[to].node = node
            perform(effects, host: to)
        case .pushPullRequest(let to, let bytes, let from, let generation):
            let requester = hosts[from]
            guard var node = hosts[to].node, reaches(hosts[to].endpoint, requester.endpoint) else {
                fail(from, target: hosts[to].endpoint, generation: generation)
                return
            }
            if busy.contains(to) {
                events.push(now + network.streamDelay(rng: &rng), .pushPullFailed(host: from, target: hosts[to].endpoint, generation: generation, busy: true))
                return
            }
            let (reply, effects) = node.onPushPullRequest(bytes, from: requester.endpoint, now: now)
            hosts[to].node = node
            perform(effects, host: to)
            if let reply {
                events.push(now + network.streamDelay(rng: &rng), .pushPullReply(to: from, bytes: reply, from: to, generation: generation))
            } else {
                fail(from, target: hosts[to].endpoint, generation: generation)
            }
        case .pushPullReply(let to, let bytes, let from, let generation):
            let host = hosts[to]
            guard host.generation == generation, var node = host.node else { return }
            let effects = node.onPushPullReply(bytes, from: hosts[from].endpoint, now: now)
            host.node = node
            perform(effects, host: to)
        case .pushPullFailed(let i, let target, let generation, let busy):
            let host = hosts[i]
            guard host.generation == generation, var node = host.node else { return }
            let effects = node.onPushPullFailed(to: target, reason: busy ? "busy" : "unreachable", busy: busy, now: now)
            host.node = node
            perform(effects, host: i)
        case .ipamFrame(let to, let bytes):
            guard var node = hosts[to].node else { return }
            let effects = node.onIPAMFrame(bytes, now: now)
            hosts[to].node = node
            perform(effects, host: to)
        }
        stopRefused()
        // Only hosts that took an input since the last pass can have a new wake-up (every
        // other host's tick is already queued): scheduling all of them after every event made
        // each event O(n), a whole-node run O(n²) per simulated second (n = 1000 did not finish).
        // Ascending order, as the full pass had, so every seed replays the same events.
        if touched.count > 1 { touched.sort() }
        var last = -1
        for i in touched where i != last && hosts[i].node != nil { schedule(i); last = i }
        touched.removeAll(keepingCapacity: true)
    }

    func stopRefused() {
        for i in refusedHosts.sorted() {
            hosts[i].node = nil
            hosts[i].hasLeft = true
            hosts[i].generation += 1
        }
        refusedHosts.removeAll()
    }

    func fail(_ requester: Int, target: Endpoint, generation: Int) {
        events.push(now + .seconds(1), .pushPullFailed(host: requester, target: target, generation: generation, busy: false))
    }

    /// Carries out one host's effects, as the daemon does over sockets.
    func perform(_ effects: [Node.Effect], host i: Int) {
        let me = hosts[i]
        touched.append(i)
        for e in effects {
            observer?(i, e)
            switch e {
            case .sendGossip(let bytes, let to):
                guard let j = byEndpoint[to], reaches(me.endpoint, to),
                      let delay = network.transit(from: me.endpoint, to: to, rng: &rng) else { continue }
                events.push(now + delay, .datagram(to: j, bytes: bytes, from: me.endpoint))
            case .pushPull(let to):
                guard var node = me.node else { continue }
                let request = node.makePushPullRequest(now: now)
                me.node = node
                guard let j = byEndpoint[to], reaches(me.endpoint, to) else {
                    fail(i, target: to, generation: me.generation)
                    continue
                }
                events.push(now + network.streamDelay(rng: &rng), .pushPullRequest(to: j, bytes: request, from: i, generation: me.generation))
            case .sendIPAM(let bytes, _, let endpoint):
                guard let j = byEndpoint[endpoint], reaches(me.endpoint, endpoint) else { continue }
                events.push(now + network.streamDelay(rng: &rng), .ipamFrame(to: j, bytes: bytes))
            case .sendIPAMDatagram(let bytes, _, let endpoint):
                // A datagram: lost, delayed and reordered as the network's datagrams are.
                guard let j = byEndpoint[endpoint], reaches(me.endpoint, endpoint),
                      let delay = network.transit(from: me.endpoint, to: endpoint, rng: &rng) else { continue }
                events.push(now + delay, .ipamFrame(to: j, bytes: bytes))
            case .allocated(let handle, let address):
                if waiting.removeValue(forKey: handle) == me.id {
                    acked[handle] = Ack(node: me.id, handle: handle, address: address)
                }
            case .allocationFailed(let handle, _):
                waiting[handle] = nil
            case .log(let l) where l.level == .error || l.level == .warning:
                if trace.count < 400 { trace.append("\(context) host \(i): \(l.event) \(l.fields.sorted { $0.key < $1.key })") }
            case .stop(let phase, let message):
                trace.append("\(context) host \(i): stop \(phase): \(message)")
                if phase == .refused { refusedHosts.insert(i) }
            default:
                break
            }
        }
    }
}
