import ArgumentParser
import Foundation
import WeftCore
import WeftStore

/// `weft-bench durable-alloc`: what a container start pays for its address on the node — the
/// allocator plus the SQLite commit that must happen before the answer — against the floor
/// measured in the same run: a bare one-row SQLite commit with the same durability settings.
struct DurableAllocBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "durable-alloc",
        abstract: "Allocation latency including the SQLite commit, against a bare SQLite commit.")

    @Option(help: "Allocations per run.")
    var allocations = 2000

    @Option(help: "Runs; medians are reported.")
    var runs = 5

    @Option(help: "Directory for the temporary databases (default: the system temp dir).")
    var dir: String?

    func run() throws {
        var allocP50: [Double] = [], allocP99: [Double] = [], bareP50: [Double] = [], bareP99: [Double] = []
        for r in 0..<runs {
            let base = (dir ?? NSTemporaryDirectory()) + "/weft-bench-\(getpid())-\(r)"
            try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: base) }

            // Peer: one-row commits on the same kind of store (meta upserts).
            let bare = try NodeStore(path: base + "/bare.db")
            var bareSamples: [Double] = []
            for i in 0..<allocations {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try bare.setMeta("k\(i % 64)", "v\(i)")
                bareSamples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
            }

            // Weft: allocate + persist its directives, as the daemon does before answering.
            let store = try NodeStore(path: base + "/weft.db")
            var node = IPAM.Instance(me: NodeID(high: 7, low: UInt64(r)), settings: .default, seed: UInt64(r))
            try store.applyIPAM(node.createCluster(subnet: .default, now: .zero).compactMap(persisted))
            var samples: [Double] = []
            for i in 0..<allocations {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let (_, directives) = try node.allocate(handle: "container-\(i)", now: .zero)
                try store.applyIPAM(directives.compactMap(persisted))
                samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1000)
            }
            allocP50.append(percentile(samples, 0.5)); allocP99.append(percentile(samples, 0.99))
            bareP50.append(percentile(bareSamples, 0.5)); bareP99.append(percentile(bareSamples, 0.99))
        }
        let m = { (xs: [Double]) in xs.sorted()[xs.count / 2] }
        print("durable allocation, \(allocations) per run, median of \(runs) runs (µs)")
        print(String(format: "  weft alloc + commit   p50 %8.1f   p99 %8.1f", m(allocP50), m(allocP99)))
        print(String(format: "  bare SQLite commit    p50 %8.1f   p99 %8.1f", m(bareP50), m(bareP99)))
        print(String(format: "  ratio (weft / bare)   p50 %8.2f   p99 %8.2f", m(allocP50) / m(bareP50), m(allocP99) / m(bareP99)))
    }

    private func persisted(_ d: IPAM.Directive) -> IPAM.PersistChange? {
        if case .persist(let c) = d { return c }
        return nil
    }

    private func percentile(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        return s[min(s.count - 1, Int(Double(s.count) * p))]
    }
}
