import ArgumentParser
import WeftCore
import WeftTestKit

/// `weft-bench ipam`: local allocation latency and throughput of the pure allocator, the cost
/// of IPAM v2 confirmation in simulated 3- and 100-node clusters against the same clusters
/// without it (same run), simulated time for a joiner to get its first range, and ring gossip
/// sizes at n = 100 and n = 1000.
struct IPAMBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipam",
        abstract: "IPAM allocator latency/throughput, joiner first-range time, ring gossip bytes.")

    @Option(help: "Allocations per latency/throughput run (at most 65533 for a /16).")
    var allocations = 60_000

    @Option(help: "Repetitions; the median of each figure is reported.")
    var runs = 5

    @Option(help: "Simulated one-way network delay in milliseconds for the join measurement.")
    var delayMs = 0.5

    @Option(help: "Allocations per confirmation run (on one node of the simulated cluster).")
    var confirmAllocations = 1000

    func run() throws {
        guard allocations > 0 && allocations <= 65_533 else { throw ValidationError("--allocations must be 1...65533") }
        guard runs > 0 else { throw ValidationError("--runs must be positive") }
        var p50s: [Double] = [], p99s: [Double] = [], rates: [Double] = []
        for r in 0..<runs {
            let (p50, p99) = latency(seed: UInt64(r))
            p50s.append(p50); p99s.append(p99)
            rates.append(throughput(seed: UInt64(r)))
        }
        print("IPAM local allocation (pure allocator, /16, \(allocations) allocations, median of \(runs) runs)")
        print("  latency p50            \(fmt(median(p50s))) ns")
        print("  latency p99            \(fmt(median(p99s))) ns")
        print("  throughput             \(fmt(median(rates))) allocations/s")
        for n in [3, 100] {
            var with: [Confirmation] = [], without: [Confirmation] = []
            for r in 0..<runs {
                with.append(confirmation(n: n, confirm: true, seed: UInt64(r)))
                without.append(confirmation(n: n, confirm: false, seed: UInt64(r)))
            }
            let w = Confirmation.median(with), o = Confirmation.median(without)
            print("  confirmation n=\(n) (\(confirmAllocations) allocations on one node, every node simulated on this core, median of \(runs))")
            print("    with    \(fmt(w.rate)) allocations/s, p50 \(fmt(w.p50 / 1000)) us, p99 \(fmt(w.p99 / 1000)) us, " +
                  "\(fmt(w.messages)) messages and \(fmt(w.bytes / 1024)) KiB per allocation, 1 round trip to the voters")
            print("    without \(fmt(o.rate)) allocations/s, p50 \(fmt(o.p50 / 1000)) us, p99 \(fmt(o.p99 / 1000)) us, " +
                  "\(fmt(o.messages)) messages per allocation")
            print("    ratio   throughput \(fmt2(o.rate / w.rate))x lower with confirmation, p50 latency \(fmt2(w.p50 / o.p50))x")
        }
        for n in [10, 100] {
            let (hops, t) = joinTime(existing: n)
            print("  joiner first range     n=\(n): \(hops) sequential messages, \(fmt(t)) ms simulated at \(delayMs) ms one-way")
        }
        for n in [100, 1000] { gossip(n: n); steadyState(n: n) }
    }

    func fmt(_ x: Double) -> String {
        let r = (x * 10).rounded() / 10
        return r >= 100 ? String(Int(r)) : String(r)
    }

    func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

    func fmt2(_ x: Double) -> String { String(Double((x * 100).rounded()) / 100) }

    struct Confirmation {
        var rate: Double, p50: Double, p99: Double, messages: Double, bytes: Double
        static func median(_ xs: [Confirmation]) -> Confirmation {
            func m(_ f: (Confirmation) -> Double) -> Double { xs.map(f).sorted()[xs.count / 2] }
            return Confirmation(rate: m(\.rate), p50: m(\.p50), p99: m(\.p99), messages: m(\.messages), bytes: m(\.bytes))
        }
    }

    /// n nodes each owning an equal share of the /16 (so nobody needs a donation). One node
    /// allocates `confirmAllocations` handles; with confirmation each allocation is timed until
    /// its `.allocated` directive, i.e. including the writes to the voters, their checks and
    /// acks, delivered through the harness (encode, decode, merge) on this one core. Without
    /// confirmation (`reclaimAfter = never`) the same cluster answers locally.
    func confirmation(n: Int, confirm: Bool, seed: UInt64) -> Confirmation {
        let subnet = IPAM.Subnet.default
        let ids = (0..<n).map { NodeID(high: 11, low: UInt64($0) &+ seed << 32) }
        let cluster = IPAM.ClusterID(creator: ids[0], nonce: seed)
        let step = subnet.size / UInt32(n)
        var entries: [IPAM.Entry] = []
        for (k, id) in ids.enumerated() {
            let lo = UInt64(subnet.base) + UInt64(k) * UInt64(step)
            let hi = k == n - 1 ? subnet.end : lo + UInt64(step)
            var free = UInt32(hi - lo)
            if k == 0 { free -= 1 }
            if k == n - 1 { free -= 1 }
            entries.append(IPAM.Entry(token: UInt32(lo), owner: id, version: 1, free: free))
        }
        let ring = try! IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries)
        var settings = IPAM.Settings.default
        if !confirm { settings.reclaimAfter = nil }
        var h = IPAMHarness(settings: settings)
        for (k, id) in ids.enumerated() {
            h.nodes[id] = IPAM.Instance(me: id, settings: settings, seed: UInt64(k), restoring: .init(ring: ring, allocations: [:], conflicts: [:]))
            h.up.insert(id); h.group[id] = 0
        }
        h.updateMembership(); h.deliverAll()
        let me = ids[n / 2]
        precondition(h.nodes[me]!.quorumMode == confirm)
        let count = min(confirmAllocations, Int(step) - 2)
        var samples: [Int64] = []
        samples.reserveCapacity(count)
        let clock = ContinuousClock()
        let delivered0 = h.messagesDelivered, bytes0 = h.bytesSent["send", default: 0]
        let start = clock.now
        for k in 0..<count {
            let t0 = clock.now
            let outcome = try! h.allocate(me, "c\(k)")
            if outcome == .pending { h.deliverAll() }
            samples.append((clock.now - t0).nanoseconds)
            precondition(h.acknowledged[me]?["c\(k)"] != nil, "allocation \(k) not acknowledged")
        }
        let took = (clock.now - start).seconds
        samples.sort()
        return Confirmation(rate: Double(count) / took, p50: Double(samples[count / 2]), p99: Double(samples[count * 99 / 100]),
                            messages: Double(h.messagesDelivered - delivered0) / Double(count),
                            bytes: Double(h.bytesSent["send", default: 0] - bytes0) / Double(count))
    }

    func handles() -> [String] { (0..<allocations).map { "container-\($0)" } }

    func freshNode(seed: UInt64) -> IPAM.Instance {
        var i = IPAM.Instance(me: NodeID(high: 1, low: seed), settings: .default, seed: seed)
        _ = i.createCluster(subnet: .default, now: .zero)
        return i
    }

    /// Per-call latency, including building the persist/broadcast directives.
    func latency(seed: UInt64) -> (Double, Double) {
        var node = freshNode(seed: seed)
        let hs = handles()
        var samples: [Int64] = []
        samples.reserveCapacity(hs.count)
        let clock = ContinuousClock()
        for h in hs {
            let start = clock.now
            let r = try? node.allocate(handle: h, now: .zero)
            let took = clock.now - start
            precondition(r != nil)
            samples.append(took.nanoseconds)
        }
        samples.sort()
        return (Double(samples[samples.count / 2]), Double(samples[samples.count * 99 / 100]))
    }

    func throughput(seed: UInt64) -> Double {
        var node = freshNode(seed: seed)
        let hs = handles()
        let clock = ContinuousClock()
        let start = clock.now
        var ok = 0
        for h in hs { if (try? node.allocate(handle: h, now: .zero)) != nil { ok += 1 } }
        let took = clock.now - start
        precondition(ok == hs.count)
        return Double(ok) / took.seconds
    }

    /// A cluster of `existing` nodes that already split the subnet; a new node gets the ring by
    /// push-pull (one request, one answer) and then asks for a donation. Messages are delivered
    /// in time order with a fixed one-way delay; returns the number of sequential messages
    /// and the simulated time until the joiner owns free space.
    func joinTime(existing n: Int) -> (Int, Double) {
        var h = IPAMHarness(settings: .default)
        let ids = (0..<n).map { NodeID(high: 7, low: UInt64($0)) }
        for (k, id) in ids.enumerated() { h.addNode(id, seed: UInt64(k)) }
        h.create(ids[0], subnet: .default)
        h.updateMembership(); h.sync(rounds: 200)
        let joiner = NodeID(high: 9, low: 9)
        h.addNode(joiner, seed: 99)
        h.updateMembership(); h.deliverAll()
        // Timed delivery between the joiner and the others.
        let delay = Duration.nanoseconds(Int64(delayMs * 1_000_000))
        var queue: [(at: Instant, from: NodeID, to: NodeID, bytes: [UInt8], hop: Int)] =
            [(.zero + delay, joiner, ids[0], IPAM.Message.ringRequest.encoded(), 1)]
        while !queue.isEmpty {
            queue.sort { $0.at < $1.at }
            let m = queue.removeFirst()
            let out = h.nodes[m.to]!.onMessage(m.bytes, from: m.from, now: m.at)
            if m.to == joiner && h.nodes[joiner]!.ownFree > 0 {
                return (m.hop, Double(m.at.nanoseconds) / 1e6)
            }
            for d in out {
                if case .send(let b, let to) = d { queue.append((m.at + delay, m.to, to, b, m.hop + 1)) }
            }
        }
        return (-1, .nan)
    }

    /// Sizes of the encoded ring at n owners and of one change, and the cost of merging a full
    /// ring (push-pull) and a one-entry delta (gossip).
    func gossip(n: Int) {
        let subnet = IPAM.Subnet.default
        let cluster = IPAM.ClusterID(creator: NodeID(high: 1, low: 1), nonce: 1)
        var entries: [IPAM.Entry] = []
        let step = subnet.size / UInt32(n)
        for k in 0..<n {
            entries.append(IPAM.Entry(token: subnet.base + UInt32(k) * step, owner: NodeID(high: 3, low: UInt64(k)), version: 5, free: step / 2))
        }
        let ring = try! IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries)
        let full = IPAM.Message.ringFull(ring).encoded()
        var changed = entries[n / 2]; changed.version += 1; changed.free -= 1
        let delta = IPAM.Message.ringDelta(cluster: cluster, subnet: subnet, entries: [changed]).encoded()
        // Every node forwards each delta ~3*log2(n+1) times (membership piggyback budget).
        let retransmits = Int((3 * log2(Double(n + 1))).rounded(.up))
        let clusterWide = delta.count * retransmits * n
        let clock = ContinuousClock()
        var sink = 0
        let reps = 200
        let t0 = clock.now
        for _ in 0..<reps {
            var mine = ring
            sink &+= (try? mine.merge(IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries.map { var e = $0; e.version += 1; return e })))?.count ?? 0
        }
        let fullMerge = (clock.now - t0).seconds / Double(reps)
        var target = ring
        let t1 = clock.now
        for k in 0..<10_000 {
            var e = changed; e.version = 10 + UInt64(k)
            sink &+= (try? target.merge(entries: [e], cluster: cluster, subnet: subnet))?.count ?? 0
        }
        let deltaMerge = (clock.now - t1).seconds / 10_000
        print("  gossip n=\(n): full ring \(full.count) B, one-change delta \(delta.count) B, " +
              "cluster-wide per delta <= \(clusterWide / 1024) KiB (\(retransmits) retransmits x \(n) nodes), " +
              "full merge \(fmt(fullMerge * 1e6)) us, delta merge \(fmt(deltaMerge * 1e9)) ns  [\(sink > 0 ? "ok" : "?")]")
    }

    /// Through the real instances: n nodes each owning an equal range; every node starts 5
    /// containers, then one tick (one ring delta and one holdings register per node). Counts the gossip bytes originated (each node's coalesced
    /// delta), delivers them to everyone (full mesh, as an upper bound for fan-out), and checks
    /// that a second tick is quiet.
    func steadyState(n: Int) {
        let subnet = IPAM.Subnet.default
        let ids = (0..<n).map { NodeID(high: 5, low: UInt64($0)) }
        let cluster = IPAM.ClusterID(creator: ids[0], nonce: 3)
        let step = subnet.size / UInt32(n)
        var entries: [IPAM.Entry] = []
        for (k, id) in ids.enumerated() {
            let lo = UInt64(subnet.base) + UInt64(k) * UInt64(step)
            let hi = k == n - 1 ? subnet.end : lo + UInt64(step)
            var free = UInt32(hi - lo)
            if k == 0 { free -= 1 }
            if k == n - 1 { free -= 1 }
            entries.append(IPAM.Entry(token: UInt32(lo), owner: id, version: 1, free: free))
        }
        let ring = try! IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries)
        // Gossip only (no confirmation traffic, which `confirmation(n:)` measures): never.
        var settings = IPAM.Settings.default
        settings.reclaimAfter = nil
        var h = IPAMHarness(settings: settings)
        for (k, id) in ids.enumerated() {
            h.nodes[id] = IPAM.Instance(me: id, settings: settings, seed: UInt64(k),
                                        restoring: .init(ring: ring, allocations: [:], conflicts: [:]))
            h.up.insert(id); h.group[id] = 0
        }
        h.updateMembership()
        for id in ids { for c in 0..<5 { _ = try? h.allocate(id, "c\(c)") } }
        let before = h.bytesSent["broadcast", default: 0]
        h.now = h.now + .seconds(1)
        h.tickAll()
        let originated = h.bytesSent["broadcast", default: 0] - before
        let clock = ContinuousClock()
        let t0 = clock.now
        h.deliverAll()
        let deliverTime = (clock.now - t0).seconds
        let agree = ids.allSatisfy { h.nodes[$0]!.ring == h.nodes[ids[0]]!.ring }
        let before2 = h.bytesSent["broadcast", default: 0]
        h.now = h.now + .seconds(1)
        h.tickAll(); h.deliverAll()
        let second = h.bytesSent["broadcast", default: 0] - before2
        print("  steady n=\(n): 5 containers on every node -> \(originated) B originated in one tick " +
              "(\(originated / n) B per node), full-mesh delivery \(originated * (n - 1) / 1024) KiB in \(fmt(deliverTime * 1e3)) ms, " +
              "rings agree: \(agree), next tick: \(second) B")
    }
}

/// log2 without Foundation.
private func log2(_ x: Double) -> Double {
    var v = x, r = 0.0
    while v >= 2 { v /= 2; r += 1 }
    // linear interpolation of the fractional part is accurate enough for a retransmit budget
    return r + (v - 1)
}
