import XCTest
import WeftCore
import WeftTestKit

final class IPAMSimulationTests: XCTestCase {
    /// 10,000 seeded schedules. A failure prints its seed; rerun it with `IPAMSimulator().run(seed:)`.
    func testTenThousandRandomSchedules() {
        let sim = IPAMSimulator()
        var failures: [String] = []
        var allocations = 0, conflicts = 0, steps = 0
        for seed in 0..<(UInt64(ProcessInfo.processInfo.environment["IPAM_SIM_SCHEDULES"] ?? "") ?? 10_000) {
            let r = sim.run(seed: seed)
            allocations += r.allocations; conflicts += r.conflicts; steps += r.steps
            if let f = r.failure {
                failures.append("seed \(seed): \(f)")
                if failures.count >= 5 { break }
            }
        }
        print("IPAM simulation: 10000 schedules, \(steps) steps, \(allocations) allocations, \(conflicts) reported conflicts")
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        XCTAssertGreaterThan(allocations, 10_000, "the schedules must actually allocate")
    }

    /// The same seed gives the same run.
    func testDeterministic() {
        let sim = IPAMSimulator()
        for seed: UInt64 in [1, 77, 4242] {
            let x = sim.run(seed: seed), y = sim.run(seed: seed)
            XCTAssertEqual(x.allocations, y.allocations)
            XCTAssertEqual(x.conflicts, y.conflicts)
            XCTAssertEqual(x.steps, y.steps)
        }
    }
}
