import WeftCore

/// A deterministic cluster of `Membership.Instance`s over a `SimNetwork`, stepped in time order
/// from one seed. Datagrams and push-pull exchanges both travel through the simulator; crashed
/// nodes are silent, stalled nodes handle nothing until they resume (their input waits, as in a
/// socket buffer).
///
/// Node identities are synthetic: node i has id (seed-derived high, i + 1) and a public key made
/// of its id bytes twice; `SimCluster.identityCheck` checks exactly that.
public final class SimCluster {
    public typealias Instance = Membership.Instance

    public final class Node {
        public let index: Int
        public var instance: Instance
        public var endpoint: Endpoint
        /// Crashed: receives nothing, runs nothing.
        public var isDown = false
        /// Explicit stall windows [start, end).
        public var stalls: [(start: Instant, end: Instant)] = []
        /// A repeating stall: `duration` out of every `period`, starting at `phase`.
        public var periodicStall: (period: Duration, duration: Duration, phase: Duration)?
        /// The incarnation the daemon would have persisted.
        public var persistedIncarnation: UInt64
        public var bytesSent = 0
        public var datagramsSent = 0
        fileprivate var scheduledTick: Instant?
        fileprivate var generation = 0

        init(index: Int, instance: Instance, endpoint: Endpoint) {
            self.index = index
            self.instance = instance
            self.endpoint = endpoint
            self.persistedIncarnation = instance.myself.incarnation
        }

        public var id: NodeID { instance.myself.id }

        /// When the node is stalled at `t`, the instant it resumes.
        public func resume(after t: Instant) -> Instant? {
            for s in stalls where t >= s.start && t < s.end { return s.end }
            if let p = periodicStall {
                let rel = t.nanoseconds - p.phase.nanoseconds
                if rel >= 0 {
                    let into = rel % p.period.nanoseconds
                    if into < p.duration.nanoseconds { return t + .nanoseconds(p.duration.nanoseconds - into) }
                }
            }
            return nil
        }
    }

    enum Event {
        case tick(node: Int, generation: Int)
        case datagram(node: Int, bytes: [UInt8], from: Endpoint)
        case pushPullRequest(node: Int, initiator: Int, bytes: [UInt8])
        case pushPullReply(node: Int, bytes: [UInt8], from: Endpoint)
    }

    public let seed: UInt64
    public var settings: Membership.Settings
    public var network = SimNetwork()
    public private(set) var now: Instant = .zero
    public private(set) var nodes: [Node] = []
    var rng: DeterministicRNG
    var events = SimEventQueue<Event>()
    var byEndpoint: [Endpoint: Int] = [:]

    /// Every `memberChanged` to dead about a node that was not down at that moment: (observer, subject, time).
    public private(set) var falseDead: [(observer: Int, subject: NodeID, at: Instant)] = []
    /// `.dropped` directives of all nodes, counted by reason.
    public private(set) var dropped: [Membership.DropReason: Int] = [:]
    /// Called for every directive (node index, directive, time), e.g. to record delivery.
    public var observer: ((Int, Membership.Directive, Instant) -> Void)?

    public static let idHigh: UInt64 = 0x5745_4654_0000_0000  // "WEFT"

    public static func nodeID(_ i: Int) -> NodeID { NodeID(high: idHigh, low: UInt64(i + 1)) }
    public static func publicKey(_ id: NodeID) -> [UInt8] { id.bytes + id.bytes }
    public static let identityCheck: @Sendable (NodeID, [UInt8]) -> Bool = { id, key in key == id.bytes + id.bytes }

    /// A deterministic stand-in for Ed25519 in simulations: the "signature" is a keyed hash of
    /// (public key, message), so verification really checks key and message (a claim signed
    /// for another key or message fails) at a fraction of the cost. Not a secret: any
    /// simulated node could compute another's, so adversarial tests use real Ed25519.
    public static func fakeSignature(key: [UInt8], message: [UInt8]) -> [UInt8] {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in key { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        for b in message { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        var out: [UInt8] = []
        out.reserveCapacity(64)
        var x = h
        for _ in 0..<8 {
            x &+= 0x9e37_79b9_7f4a_7c15
            var z = x
            z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
            z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
            z ^= z >> 31
            for k in 0..<8 { out.append(UInt8(truncatingIfNeeded: z >> (8 * UInt64(k)))) }
        }
        return out
    }

    /// The simulated claim signer of node `id` (see `fakeSignature`).
    public static func signer(for id: NodeID) -> Membership.ClaimSigner {
        let key = publicKey(id)
        // Pair keys: a hash of the two public keys in order, so both ends derive the same one
        // (anyone could, as anyone can make the fake signatures: the twin checks the protocol's
        // wiring, not its cryptography).
        return Membership.ClaimSigner(sign: { fakeSignature(key: key, message: $0) },
                                      verify: { k, m, s in s == fakeSignature(key: k, message: m) },
                                      pairKey: { peer in
                                          let (low, high) = key.lexicographicallyPrecedes(peer) ? (key, peer) : (peer, key)
                                          return Array(fakeSignature(key: low + high, message: Array("pair".utf8)).prefix(32))
                                      },
                                      mac: { k, m in Array(fakeSignature(key: k, message: m).prefix(32)) },
                                      checkMAC: { k, m, t in t == Array(fakeSignature(key: k, message: m).prefix(32)) })
    }
    public static func endpoint(_ i: Int, generation: Int = 0) -> Endpoint {
        Endpoint(address: .v4(0x0A00_0000 | UInt32(generation) << 16 | UInt32(i + 1)), port: 7946)
    }

    public init(seed: UInt64, settings: Membership.Settings = .fast) {
        self.seed = seed
        self.settings = settings
        self.rng = DeterministicRNG(seed: seed)
    }

    /// A short description for failure messages: always includes the seed.
    public var context: String { "seed=\(seed) t=\(now)" }

    func member(_ i: Int, endpoint: Endpoint, incarnation: UInt64) -> Membership.Member {
        let id = SimCluster.nodeID(i)
        var m = Membership.Member(id: id, name: "node-\(i)", address: endpoint, publicKey: SimCluster.publicKey(id),
                                  incarnation: incarnation, state: .alive)
        m.recordSignature = SimCluster.fakeSignature(key: m.publicKey, message: Membership.Claims.record(of: m))
        return m
    }

    /// Adds a node; it joins through `seeds` (node indexes) unless `knowsEveryone` builds it
    /// already converged (every current node in its table and it in theirs, for benchmarks).
    @discardableResult
    public func addNode(seeds: [Int] = [0], knowsEveryone: Bool = false) -> Int {
        let i = nodes.count
        let ep = SimCluster.endpoint(i)
        let me = member(i, endpoint: ep, incarnation: 1)
        let known = knowsEveryone ? nodes.map { $0.instance.myself } : []
        let inst = Instance(myself: me, settings: settings, seed: rng.next(), now: now, knownMembers: known,
                            identityCheck: SimCluster.identityCheck, signer: SimCluster.signer(for: me.id))
        let node = Node(index: i, instance: inst, endpoint: ep)
        nodes.append(node)
        byEndpoint[ep] = i
        if !knowsEveryone {
            let seedEPs = seeds.filter { $0 != i && $0 < nodes.count }.map { nodes[$0].endpoint }
            let ds = node.instance.join(seeds: seedEPs, now: now)
            handle(ds, from: i)
        }
        schedule(i)
        return i
    }

    /// Builds `n` nodes that already know each other (as after a long quiet period).
    public func addConverged(_ n: Int) {
        let start = nodes.count
        var members: [Membership.Member] = []
        for i in start..<(start + n) { members.append(member(i, endpoint: SimCluster.endpoint(i), incarnation: 1)) }
        for (k, me) in members.enumerated() {
            let i = start + k
            let inst = Instance(myself: me, settings: settings, seed: rng.next(), now: now,
                                knownMembers: members + nodes.map { $0.instance.myself },
                                identityCheck: SimCluster.identityCheck, signer: SimCluster.signer(for: me.id))
            let node = Node(index: i, instance: inst, endpoint: me.address)
            nodes.append(node)
            byEndpoint[me.address] = i
            schedule(i)
        }
    }

    /// Crashes node `i`: it stops answering and ticking.
    public func crash(_ i: Int) { nodes[i].isDown = true; nodes[i].generation += 1 }

    /// Restarts node `i` like the daemon: persisted incarnation + 1, stored members, join seeds.
    /// With `newAddress` it comes back at another endpoint.
    public func restart(_ i: Int, seeds: [Int], newAddress: Bool = false) {
        let node = nodes[i]
        let stored = node.instance.members
        if newAddress {
            byEndpoint[node.endpoint] = nil
            node.endpoint = SimCluster.endpoint(i, generation: Int(node.persistedIncarnation % 200) + 1)
            byEndpoint[node.endpoint] = i
        }
        let inc = node.persistedIncarnation + 1
        node.persistedIncarnation = inc
        let me = member(i, endpoint: node.endpoint, incarnation: inc)
        node.instance = Instance(myself: me, settings: settings, seed: rng.next(), now: now, knownMembers: stored,
                                 identityCheck: SimCluster.identityCheck, signer: SimCluster.signer(for: me.id))
        node.isDown = false
        node.generation += 1
        node.scheduledTick = nil
        let ds = node.instance.join(seeds: seeds.filter { $0 != i }.map { nodes[$0].endpoint }, now: now)
        handle(ds, from: i)
        schedule(i)
    }

    /// Makes node `i` leave gracefully.
    public func leave(_ i: Int) {
        let ds = nodes[i].instance.leave(now: now)
        handle(ds, from: i)
        schedule(i)
    }

    // MARK: running

    /// Runs every event up to and including `deadline`.
    public func run(until deadline: Instant) {
        while let t = events.nextTime, t <= deadline {
            let (time, event) = events.pop()!
            now = time
            dispatch(event)
        }
        now = max(now, deadline)
    }

    public func run(for d: Duration) { run(until: now + d) }

    /// Runs until `condition` holds (checked every `every`) or `deadline`; returns when it held.
    public func run(until deadline: Instant, checkEvery every: Duration, _ condition: (SimCluster) -> Bool) -> Instant? {
        while now < deadline {
            if condition(self) { return now }
            run(until: min(now + every, deadline))
        }
        return condition(self) ? now : nil
    }

    func schedule(_ i: Int) {
        let node = nodes[i]
        guard !node.isDown else { return }
        let t = max(node.instance.nextWakeup, now)
        if node.scheduledTick == t { return }
        node.scheduledTick = t
        node.generation += 1
        events.push(t, .tick(node: i, generation: node.generation))
    }

    func index(of e: Endpoint) -> Int? { byEndpoint[e] }

    func dispatch(_ event: Event) {
        let i: Int
        switch event {
        case .tick(let n, _), .datagram(let n, _, _), .pushPullRequest(let n, _, _), .pushPullReply(let n, _, _): i = n
        }
        let node = nodes[i]
        guard !node.isDown else { return }
        if let resume = node.resume(after: now) {
            if case .tick = event { node.scheduledTick = nil; events.push(resume, .tick(node: i, generation: node.generation)); node.scheduledTick = resume } else { events.push(resume, event) }
            return
        }
        switch event {
        case .tick(_, let gen):
            guard gen == node.generation else { return }
            node.scheduledTick = nil
            handle(node.instance.onTick(now: now), from: i)
        case .datagram(_, let bytes, let from):
            handle(node.instance.onDatagram(bytes, from: from, now: now), from: i)
        case .pushPullRequest(_, let initiator, let bytes):
            let from = nodes[initiator].endpoint
            let (reply, ds) = node.instance.onPushPull(bytes, from: from, appState: [], now: now)
            handle(ds, from: i)
            if let reply, network.connected(node.endpoint, from), !nodes[initiator].isDown {
                node.bytesSent += reply.count
                events.push(now + network.streamDelay(rng: &rng), .pushPullReply(node: initiator, bytes: reply, from: node.endpoint))
            }
        case .pushPullReply(_, let bytes, let from):
            handle(node.instance.onPushPull(bytes, from: from, appState: [], now: now).directives, from: i)
        }
        schedule(i)
    }

    func handle(_ directives: [Membership.Directive], from i: Int) {
        let node = nodes[i]
        for d in directives {
            observer?(i, d, now)
            switch d {
            case .send(let bytes, let to):
                precondition(bytes.count <= settings.maxPayloadBytes, "datagram over budget (\(context))")
                node.bytesSent += bytes.count
                node.datagramsSent += 1
                guard let j = index(of: to), let delay = network.transit(from: node.endpoint, to: to, rng: &rng) else { continue }
                events.push(now + delay, .datagram(node: j, bytes: bytes, from: node.endpoint))
            case .pushPull(let to):
                guard let j = index(of: to), network.connected(node.endpoint, to), !nodes[j].isDown else { continue }
                let bytes = node.instance.makePushPull(appState: [], now: now)
                node.bytesSent += bytes.count
                events.push(now + network.streamDelay(rng: &rng), .pushPullRequest(node: j, initiator: i, bytes: bytes))
            case .memberChanged(let m, _):
                if m.state == .dead, m.id.high == SimCluster.idHigh, m.id.low >= 1, Int(m.id.low) <= nodes.count,
                   !nodes[Int(m.id.low) - 1].isDown {
                    falseDead.append((i, m.id, now))
                }
            case .persistIncarnation(let inc):
                node.persistedIncarnation = max(node.persistedIncarnation, inc)
            case .dropped(let r):
                dropped[r, default: 0] += 1
            case .memberRemoved, .deliver, .mergeAppState, .probeRTT:
                break
            }
        }
    }

    // MARK: queries

    /// Node `observer`'s view of node `subject`.
    public func state(of subject: Int, at observer: Int) -> Membership.MemberState? {
        nodes[observer].instance.member(nodes[subject].id)?.state
    }

    /// Indexes of nodes that are up.
    public var upNodes: [Int] { nodes.filter { !$0.isDown }.map(\.index) }

    /// Whether every up node sees every other up node alive (and knows nothing else alive).
    public var converged: Bool {
        let up = upNodes
        for i in up {
            let inst = nodes[i].instance
            for j in up where inst.member(nodes[j].id)?.state != .alive { return false }
        }
        return true
    }

    /// `converged`, and every view holds each node's current incarnation and address.
    public var convergedExactly: Bool {
        let up = upNodes
        for i in up {
            let inst = nodes[i].instance
            for j in up {
                let me = nodes[j].instance.myself
                guard let m = inst.member(me.id), m.state == .alive, m.incarnation == me.incarnation,
                      m.address == me.address else { return false }
            }
        }
        return true
    }

    /// Whether every up node other than `subject` sees it in `state`.
    public func everyone(sees subject: Int, as state: Membership.MemberState) -> Bool {
        upNodes.allSatisfy { $0 == subject || self.state(of: subject, at: $0) == state }
    }
}
