import WeftCore

/// Random seeded schedules of joins, leaves, crashes, restarts (state kept), partitions and
/// heals with allocations everywhere, over ``IPAMHarness``. After every step it checks that no
/// two mutually reachable nodes hold the same address and that rings agree inside each
/// component; at the end (after heals and the reclaim timeout) that no range is stranded.
public struct IPAMSimulator {
    public struct Report: Sendable {
        public var seed: UInt64
        /// Nil when every check held; else the first broken check, with the step.
        public var failure: String?
        public var steps = 0
        public var nodes = 0
        public var allocations = 0
        public var conflicts = 0
        public var reclaims = 0
    }

    public var maxNodes = 8
    public var stepRange = 20...60

    public init() {}

    /// Runs one schedule. Deterministic in `seed`.
    public func run(seed: UInt64) -> Report {
        var rng = DeterministicRNG(seed: seed)
        var report = Report(seed: seed)
        var settings = IPAM.Settings.fast
        settings.lowWaterMark = UInt32.random(in: 0...4, using: &rng)
        var h = IPAMHarness(settings: settings)
        let subnet = [try! IPAM.Subnet(parsing: "10.42.0.0/16"), try! IPAM.Subnet(parsing: "10.42.0.0/26"),
                      try! IPAM.Subnet(parsing: "10.42.0.0/29")].randomElement(using: &rng)!
        var nextID: UInt64 = 1
        func newNode(_ h: inout IPAMHarness, _ rng: inout DeterministicRNG) -> NodeID {
            let id = NodeID(high: rng.next(), low: nextID)
            nextID += 1
            h.addNode(id, seed: rng.next())
            return id
        }
        let first = newNode(&h, &rng)
        h.create(first, subnet: subnet)
        let initial = Int.random(in: 1...3, using: &rng)
        for _ in 0..<initial { _ = newNode(&h, &rng) }
        h.updateMembership(); h.sync()
        var handleCounter = 0
        var crashed: Set<NodeID> = []

        func check(_ h: IPAMHarness, _ what: String) -> String? {
            if let (x, y, a) = h.duplicateHolders().first {
                return "\(what): \(IPAM.format(a)) held by both \(x.short) and \(y.short)"
            }
            for id in h.up.sorted() {
                let n = h.nodes[id]!
                if let r = n.ring {
                    if let v = r.invariantViolation { return "\(what): ring of \(id.short) broken: \(v)" }
                    for (hd, a) in n.allocations where r.owner(of: a) != id {
                        return "\(what): \(id.short) holds \(hd)=\(IPAM.format(a)) outside its own ranges"
                    }
                }
            }
            for comp in h.components {
                let rings = comp.compactMap { h.nodes[$0]!.ring }
                if let r0 = rings.first, rings.contains(where: { $0 != r0 }) { return "\(what): rings differ inside a component" }
            }
            return nil
        }

        let steps = Int.random(in: stepRange, using: &rng)
        for step in 0..<steps {
            report.steps = step + 1
            h.now = h.now + .seconds(1)
            let running = h.up.sorted()
            let members = running.filter { h.nodes[$0]!.ring != nil && !h.nodes[$0]!.hasLeft }
            let roll = Int.random(in: 0..<100, using: &rng)
            var what = ""
            switch roll {
            case 0..<40 where !members.isEmpty:
                let id = members.randomElement(using: &rng)!
                handleCounter += 1
                what = "allocate on \(id.short)"
                if case .allocated? = try? h.allocate(id, "h\(handleCounter)") { report.allocations += 1 }
            case 40..<52 where !members.isEmpty:
                let id = members.randomElement(using: &rng)!
                if let handle = h.nodes[id]!.allocations.keys.sorted().randomElement(using: &rng)
                    ?? h.nodes[id]!.conflicts.keys.sorted().first {
                    what = "release on \(id.short)"
                    try? h.release(id, handle)
                }
            case 52..<60 where h.nodes.count < maxNodes:
                let id = newNode(&h, &rng)
                if let g = running.randomElement(using: &rng) { h.group[id] = h.group[g] }
                what = "join \(id.short)"
            case 60..<65 where members.count >= 2:
                let id = members.randomElement(using: &rng)!
                what = "leave \(id.short)"
                h.leave(id); h.sync()
                h.departed.insert(id); h.up.remove(id)
            case 65..<72 where running.count >= 2:
                let id = running.randomElement(using: &rng)!
                what = "crash \(id.short)"
                h.up.remove(id); crashed.insert(id)
            case 72..<80 where !crashed.isEmpty:
                let id = crashed.sorted().randomElement(using: &rng)!
                what = "restart \(id.short)"
                crashed.remove(id)
                let snap = h.nodes[id]!.snapshot
                h.nodes[id] = IPAM.Instance(me: id, settings: settings, seed: rng.next(), restoring: snap)
                h.up.insert(id)
            case 80..<86:
                what = "partition"
                for id in h.nodes.keys.sorted() { h.group[id] = Int.random(in: 0...1, using: &rng) }
            case 86..<91:
                what = "heal"
                for id in h.nodes.keys { h.group[id] = 0 }
            default:
                let minutes = Int.random(in: 1...15, using: &rng)
                what = "advance \(minutes) min"
                h.now = h.now + .seconds(60 * minutes)
            }
            h.updateMembership()
            h.tickAll()
            if !h.sync() { report.failure = "step \(step) (\(what)): gossip did not settle"; break }
            if let f = check(h, "step \(step) (\(what))") { report.failure = f; break }
        }

        if report.failure == nil {
            // Heal everything, wait out the reclaim timeout, and check nothing is stranded.
            for id in h.nodes.keys { h.group[id] = 0 }
            h.updateMembership(); h.sync()
            for _ in 0..<3 {
                h.now = h.now + settings.reclaimAfter + .seconds(1)
                h.updateMembership(); h.tickAll(); h.sync()
            }
            if let f = check(h, "end") { report.failure = f }
            let live = Set(h.up.filter { h.nodes[$0]!.ring != nil && !h.nodes[$0]!.hasLeft })
            if report.failure == nil, let ring = live.first.flatMap({ h.nodes[$0]!.ring }) {
                for (i, e) in ring.entries.enumerated() where !live.contains(e.owner) {
                    report.failure = "end: range \(IPAM.format(e.token))+\(ring.size(ofEntryAt: i)) stranded with \(e.owner.short)"
                    break
                }
            }
        }
        report.nodes = h.nodes.count
        report.conflicts = h.conflicts.values.reduce(0) { $0 + $1.count }
        return report
    }
}
