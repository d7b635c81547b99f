import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import WeftCore
import WeftTestKit

/// Membership benchmark over the deterministic simulator (default LAN settings, simulated time).
///
/// For each cluster size: time until every member knows a joiner, time until every member marks
/// a crashed node dead (p50/p99 over seeds), false "dead" per node-hour under 5 % and 10 % loss
/// and with one node stalling 2 s every 30 s, and idle gossip bytes per node per second.
struct MembershipBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "membership",
        abstract: "SWIM + Lifeguard membership: join/detection latency, false positives, idle bandwidth.")

    @Option(help: "Cluster sizes, comma separated.")
    var nodes: String = "100,1000"

    @Option(help: "Seeds (runs) per latency measurement.")
    var seeds: Int = 20

    @Flag(help: "Fewer seeds and shorter false-positive runs (a smoke test).")
    var quick = false

    @Option(help: "Override Settings.suspicionAlpha (Lifeguard α) to explore the detection/false-positive trade-off.")
    var suspicionAlpha: Double?

    @Option(help: "Only the burst row: N nodes started through one seed over --burst-spread seconds (bench/scale.sh's start).")
    var burst: Int?

    @Option(help: "Seconds over which the burst's nodes start.")
    var burstSpread: Double = 2.8

    @Flag(help: "Print every sample.")
    var verbose = false

    @Option(help: "Simulated seconds per false-positive run (default: 1800 at n ≤ 100, 300 above; quick: 120).")
    var falseDeadSeconds: Int?

    func run() throws {
        let sizes = nodes.split(separator: ",").compactMap { Int($0.trimmingCharacters()) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 3 }) else { throw ValidationError("--nodes: sizes ≥ 3, comma separated") }
        let runs = quick ? min(seeds, 5) : seeds
        try settings.validate()
        emit("membership benchmark: settings .default\(suspicionAlpha.map { " with α = \($0)" } ?? ""), simulated time, \(runs) seeds per latency row")
        if let burst {
            var xs: [Double] = []
            for s in 0..<runs { xs.append(burstJoin(n: burst, spread: burstSpread, seed: UInt64(5000 + s))) }
            emit(row("burst: \(burst) nodes started through one seed over \(burstSpread) s, every node sees all alive (s after the first start)", xs))
            return
        }
        for n in sizes {
            emit("\n## n = \(n)")
            var join: [Double] = [], detect: [Double] = []
            for s in 0..<runs {
                join.append(joinLatency(n: n, seed: UInt64(1000 + s)))
                detect.append(detectionLatency(n: n, seed: UInt64(2000 + s)))
            }
            emit(row("join: every member knows a new member", join))
            emit(row("crash: every member marks it dead", detect))
            if verbose { emit("  join samples: \(join.map(fmt))\n  crash samples: \(detect.map(fmt))") }
            let secs = falseDeadSeconds ?? (quick ? 120 : (n <= 100 ? 1800 : 300))
            for (label, loss, stall) in [("5 % loss", 0.05, false), ("10 % loss", 0.10, false), ("one node stalls 2 s every 30 s", 0.0, true)] {
                let (events, subjects) = falseDead(n: n, seed: 3000, loss: loss, stall: stall, seconds: secs)
                let nodeHours = Double(n) * Double(secs) / 3600
                emit("false dead, \(label): \(events) declarations (\(subjects) distinct nodes) in \(secs) s = "
                      + fmt(Double(events) / nodeHours) + " per node-hour")
            }
            let (bytes, datagrams) = idleBandwidth(n: n, seed: 4000)
            emit("idle: " + fmt(bytes) + " bytes/node/s (" + fmt(datagrams) + " datagrams/node/s, push-pull included)")
        }
    }

    var settings: Membership.Settings {
        var s = Membership.Settings.default
        if let a = suspicionAlpha { s.suspicionAlpha = a }
        return s
    }

    func cluster(n: Int, seed: UInt64) -> SimCluster {
        let c = SimCluster(seed: seed, settings: settings)
        c.addConverged(n)
        c.run(for: .seconds(20))  // let the start-up self announcements drain
        return c
    }

    func joinLatency(n: Int, seed: UInt64) -> Double {
        let c = cluster(n: n, seed: seed)
        let start = c.now
        let j = c.addNode(seeds: [Int(seed % UInt64(n))])
        let id = c.nodes[j].id
        let at = c.run(until: start + .seconds(120), checkEvery: .milliseconds(100)) { c in
            c.upNodes.allSatisfy { c.nodes[$0].instance.member(id)?.state == .alive }
        }
        return at.map { ($0 - start).seconds } ?? .infinity
    }

    /// bench/scale.sh's start in simulated time: node 0 first, then n − 1 nodes through it,
    /// evenly over `spread` seconds; time from the first start until every node sees n alive.
    func burstJoin(n: Int, spread: Double, seed: UInt64) -> Double {
        let c = SimCluster(seed: seed, settings: settings)
        _ = c.addNode(seeds: [])
        let start = c.now
        let gap = Duration.nanoseconds(Int64(spread * 1e9 / Double(max(1, n - 1))))
        for _ in 1..<n {
            c.run(for: gap)
            _ = c.addNode(seeds: [0])
        }
        let at = c.run(until: start + .seconds(180), checkEvery: .milliseconds(100)) { $0.converged }
        return at.map { ($0 - start).seconds } ?? .infinity
    }

    func detectionLatency(n: Int, seed: UInt64) -> Double {
        let c = cluster(n: n, seed: seed)
        let victim = Int(seed % UInt64(n))
        let start = c.now
        c.crash(victim)
        let at = c.run(until: start + .seconds(120), checkEvery: .milliseconds(100)) { $0.everyone(sees: victim, as: .dead) }
        return at.map { ($0 - start).seconds } ?? .infinity
    }

    func falseDead(n: Int, seed: UInt64, loss: Double, stall: Bool, seconds: Int) -> (Int, Int) {
        let c = cluster(n: n, seed: seed)
        c.network.loss = loss
        if stall { c.nodes[1].periodicStall = (period: .seconds(30), duration: .seconds(2), phase: .seconds(5)) }
        let before = c.falseDead.count
        c.run(for: .seconds(Int64(seconds)))
        let events = c.falseDead.dropFirst(before)
        return (events.count, Set(events.map(\.subject)).count)
    }

    func idleBandwidth(n: Int, seed: UInt64) -> (Double, Double) {
        let c = cluster(n: n, seed: seed)
        c.run(for: .seconds(40))
        let b0 = c.nodes.reduce(0) { $0 + $1.bytesSent }, d0 = c.nodes.reduce(0) { $0 + $1.datagramsSent }
        let secs = 300
        c.run(for: .seconds(Int64(secs)))
        let b1 = c.nodes.reduce(0) { $0 + $1.bytesSent }, d1 = c.nodes.reduce(0) { $0 + $1.datagramsSent }
        let denom = Double(n * secs)
        return (Double(b1 - b0) / denom, Double(d1 - d0) / denom)
    }

    func row(_ label: String, _ xs: [Double]) -> String {
        let s = xs.sorted()
        // Nearest-rank percentile: the smallest sample with at least p · N samples at or below it.
        func pct(_ p: Double) -> Double { s[max(0, min(s.count - 1, Int((p * Double(s.count)).rounded(.up)) - 1))] }
        return "\(label): p50 \(fmt(pct(0.5))) s, p99 \(fmt(pct(0.99))) s, max \(fmt(s.last!)) s (\(s.count) seeds)"
    }

    func fmt(_ x: Double) -> String {
        guard x.isFinite else { return "never" }
        let r = (x * 100).rounded() / 100
        return "\(r)"
    }
}

extension Substring {
    func trimmingCharacters() -> Substring {
        var s = self
        while s.first == " " { s.removeFirst() }
        while s.last == " " { s.removeLast() }
        return s
    }
}

/// Writes one line straight to standard output (unbuffered, so long runs show progress in a file).
private func emit(_ line: String) {
    var text = line + "\n"
    #if canImport(Glibc)
    text.withUTF8 { buf in _ = write(1, buf.baseAddress, buf.count) }
    #else
    Swift.print(line)
    #endif
}
