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
        do { try sim.checkSafety() } catch { emit("SAFETY VIOLATION: \(error)") }
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
