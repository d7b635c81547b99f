import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import WeftCore
import WeftTestKit

/// Whole-node benchmark over the deterministic simulator (`NodeSimulator`: real `Node.Instance`s
/// with the in-memory storage twin, default LAN settings, simulated time).
///
/// For each cluster size: time from the last start until every node holds address space (its
/// overlay address), time from a partition heal until every node has the same ring (one owner
/// per range), allocation latency and throughput on one node, and the simulator's own speed in
/// simulated node-seconds per wall second.
struct NodeBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Whole nodes: boot to space everywhere, heal to one owner per range, allocation speed, simulator speed.")

    @Option(help: "Cluster sizes, comma separated.")
    var nodes: String = "100,1000"

    @Option(help: "Allocations on one node for the throughput row.")
    var allocations: Int = 1000

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "New DNS names whose propagation to every node is timed (0: skip that row).")
    var dnsNames: Int = 20

    @Flag(help: "Only boot and the DNS propagation row (skip the partition and allocation rows).")
    var dnsOnly = false

    func run() throws {
        let sizes = nodes.split(separator: ",").compactMap { Int($0.trimmingCharacters()) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 2 }) else { throw ValidationError("--nodes: sizes ≥ 2, comma separated") }
        emit("whole-node benchmark: Membership/IPAM/Node settings .default, simulated time, seed \(seed)")
        for n in sizes { bench(n: n) }
    }

    func bench(n: Int) {
        let clock = ContinuousClock()
        var ipam = IPAM.Settings.default
        ipam.lowWaterMark = 16
        let sim = NodeSimulator(seed: seed &+ UInt64(n), membership: .default, ipam: ipam, node: .default,
                                subnet: try! IPAM.Subnet(base: 0x0A2A_0000, prefixLength: 16))
        emit("\n## n = \(n)")
        let wallStart = clock.now
        var rng = DeterministicRNG(seed: seed)
        for i in 0..<n {
            let seeds = i == 0 ? [] : [Int.random(in: 0..<i, using: &rng)]
            sim.addHost(seeds: seeds)
            sim.run(for: .milliseconds(10))
        }
        let started = sim.now
        let deadline = started + .seconds(600)
        var everyone: Instant?
        while sim.now < deadline {
            if sim.hosts.allSatisfy({ $0.node?.ipam.overlayAddress != nil }) { everyone = sim.now; break }
            sim.run(for: .milliseconds(100))
        }
        let bootWall = clock.now - wallStart
        if let everyone {
            emit("boot: every node holds space (its overlay address) \(fmt((everyone - started).seconds)) s after the last start (\(n) starts 10 ms apart)")
        } else {
            emit("boot: not every node held space within 600 s")
        }
        let bootSimulated = (sim.now - Instant(nanoseconds: 1_000_000_000)).seconds
        emit("simulator speed (boot): \(fmt(Double(n) * bootSimulated / bootWall.seconds)) simulated node-seconds per wall second (\(sim.eventsProcessed) events in \(fmt(bootWall.seconds)) s)")

        // The DNS row runs last (or alone with --dns-only): its settling and allocations change
        // what the partition rows below would measure.
        if dnsOnly {
            if dnsNames > 0 { dnsPropagation(sim, n: n, wall: clock) }
            return
        }

        // Partition into halves for two minutes, allocate on both sides, heal, wait for one ring.
        let half = Array(0..<(n / 2)), rest = Array((n / 2)..<n)
        sim.split([half, rest])
        sim.run(for: .seconds(120))
        for i in [0, n - 1] { for k in 0..<10 { sim.allocate(i, "p\(i)-\(k)") } }
        sim.run(for: .seconds(2))
        sim.heal()
        let healed = sim.now
        var oneRing: Instant?
        while sim.now < healed + .seconds(600) {
            let rings = sim.hosts.compactMap { $0.node?.ipam.ring?.entries }
            if let first = rings.first, rings.allSatisfy({ $0 == first }) { oneRing = sim.now; break }
            sim.run(for: .milliseconds(200))
        }
        if let oneRing {
            emit("heal: every node has the same ring (one owner per range) \(fmt((oneRing - healed).seconds)) s after a 2-minute partition into halves")
        } else {
            emit("heal: rings still differ 600 s after the heal")
        }
        // With IPAM v2 neither half of a 50/50 split holds a majority, so no range moves and the
        // rings stay equal; what the heal has to restore is membership (each half saw the other
        // dead) and with it the quorum the allocator needs.
        var allAlive: Instant?
        while sim.now < healed + .seconds(600) {
            if sim.hosts.allSatisfy({ $0.node.map { $0.membership.liveCount >= n } ?? true }) { allAlive = sim.now; break }
            sim.run(for: .milliseconds(200))
        }
        emit(allAlive.map { "heal: every node sees all \(n) alive again \(fmt(($0 - healed).seconds)) s after the heal" }
             ?? "heal: some node still misses a live member 600 s after the heal")

        // Allocation on one node: wall time per call (pure node + storage twin) and simulated
        // time until each is acknowledged.
        let target = n / 3
        let t0 = clock.now
        var immediate = 0, pending: [String: Instant] = [:]
        for k in 0..<allocations {
            let h = "bench-\(k)"
            if sim.allocate(target, h) != nil { immediate += 1 } else { pending[h] = sim.now }
        }
        let callWall = clock.now - t0
        let simBefore = sim.now
        sim.run(for: .seconds(10))
        let acked = (0..<allocations).filter { sim.acked["bench-\($0)"] != nil }.count
        emit("allocate on one node: \(fmt(callWall.seconds / Double(allocations) * 1e6)) µs wall per call "
             + "(\(fmt(Double(allocations) / callWall.seconds)) allocations/s), \(immediate) answered at once, "
             + "\(acked - immediate) after waiting, \(allocations - acked) not within \(fmt((sim.now - simBefore).seconds)) s")
        if dnsNames > 0 { dnsPropagation(sim, n: n, wall: clock) }
        do { try sim.checkSafety() } catch { emit("SAFETY VIOLATION: \(error)") }
    }

    /// A new container name on a random node, one every 250 ms (simulated): the time from the
    /// node confirming the allocation (its `.allocated` effect, when the record is made) until
    /// every running node holds the record (the zone each one answers from is built from those).
    func dnsPropagation(_ sim: NodeSimulator, n: Int, wall clock: ContinuousClock) {
        final class Stamps { var at: [String: Instant] = [:] }
        let stamps = Stamps()
        sim.observer = { [unowned sim] _, e in
            if case .allocated(let h, _) = e, h.hasPrefix("dns-bench-"), stamps.at[h] == nil { stamps.at[h] = sim.now }
        }
        defer { sim.observer = nil }
        // Names are measured in a settled cluster: every node knows every other one alive
        // (right after "every node holds space" some do not yet, and a name reaches a node that
        // few know only through a push-pull).
        let settleStart = sim.now
        while sim.now < settleStart + .seconds(300),
              !sim.hosts.allSatisfy({ $0.node.map { $0.membership.liveCount >= n } ?? true }) {
            sim.run(for: .milliseconds(100))
        }
        emit("membership: every node sees all \(n) alive \(fmt((sim.now - settleStart).seconds)) s after that")
        let wallStart = clock.now
        var rng = DeterministicRNG(seed: seed &+ 53)
        var keys: [(handle: String, key: DNS.Records.Key)] = []
        var done: [Int: Duration] = [:]
        var published: [Int: Instant] = [:]
        var lateRecords = 0
        let spacing: Duration = .milliseconds(250)
        let end = sim.now + spacing * dnsNames + .seconds(60)
        var next = sim.now
        while sim.now < end && done.count < dnsNames {
            if keys.count < dnsNames && sim.now >= next {
                let k = keys.count
                let h = Int.random(in: 0..<n, using: &rng)
                let handle = "dns-bench-\(k)"
                sim.allocate(h, handle, name: "svc-\(k)")
                keys.append((handle, DNS.Records.Key(owner: sim.hosts[h].id, handle: handle)))
                next = sim.now + spacing
            }
            sim.run(for: .milliseconds(10))
            for (k, s) in keys.enumerated() where done[k] == nil {
                // Published: the origin holds the record (an allocation that waited for
                // confirmation gets its record then, not at its `.allocated` effect).
                guard let t0 = stamps.at[s.handle] else { continue }
                if published[k] == nil {
                    guard let origin = sim.hosts.first(where: { $0.id == s.key.owner })?.node,
                          origin.dns.entries[s.key].map({ !$0.deleted }) == true else { continue }
                    published[k] = max(t0, sim.now - .milliseconds(10))
                    if sim.now - t0 > .milliseconds(20) { lateRecords += 1 }
                }
                let from = published[k]!
                if sim.hosts.allSatisfy({ h in h.node.map { ($0.dns.entries[s.key].map { !$0.deleted }) ?? false } ?? true }) {
                    done[k] = sim.now - from
                }
            }
        }
        let times = done.values.map(\.seconds).sorted()
        let missing = dnsNames - times.count
        func pct(_ p: Double) -> Double { times.isEmpty ? .nan : times[min(times.count - 1, max(0, Int((Double(times.count) * p).rounded(.up)) - 1))] }
        emit("dns: a new name on every node (its record held by all \(n)): p50 \(fmt(pct(0.5))) s, p99 \(fmt(pct(0.99))) s, max \(fmt(times.last ?? .nan)) s "
             + "over \(times.count) names (10 ms steps)\(missing > 0 ? ", \(missing) not everywhere within 60 s" : "") (\(fmt((clock.now - wallStart).seconds)) s wall)")
        emit("dns: every name's time (s): \(times.map(fmt).joined(separator: " "))\(lateRecords > 0 ? "; \(lateRecords) records appeared on their own node > 20 ms after .allocated" : "")")
    }

    func fmt(_ x: Double) -> String {
        let r = (x * 100).rounded() / 100
        return "\(r)"
    }

    func emit(_ s: String) {
        print(s)
        fflush(nil)  // all streams: stdout is a global the compiler cannot prove safe
    }
}
