import Foundation
import XCTest
import WeftCore
import WeftTestKit

final class IPAMSimulationTests: XCTestCase {
    /// 10,000 seeded schedules (set `IPAM_SIM_SCHEDULES` to run fewer or more). A failure prints
    /// its seed; rerun it with `IPAMSimulator().run(seed:)`.
    func testTenThousandRandomSchedules() {
        let sim = IPAMSimulator()
        let count = UInt64(ProcessInfo.processInfo.environment["IPAM_SIM_SCHEDULES"] ?? "") ?? 10_000
        var failures: [String] = []
        var total = IPAMSimulator.Report(seed: 0)
        let clock = ContinuousClock()
        let start = clock.now
        for seed in 0..<count {
            let r = sim.run(seed: seed)
            total.allocations += r.allocations; total.conflicts += r.conflicts; total.steps += r.steps
            total.reclaims += r.reclaims; total.partitionedRefusals += r.partitionedRefusals
            total.unconfirmedTimeouts += r.unconfirmedTimeouts; total.quorumSteps += r.quorumSteps
            if let f = r.failure {
                failures.append("seed \(seed): \(f)")
                if failures.count >= 5 { break }
            }
        }
        print("IPAM simulation: \(count) schedules in \(clock.now - start), \(total.steps) steps (\(total.quorumSteps) in quorum mode), " +
              "\(total.allocations) acknowledged at once, \(total.conflicts) conflicts, \(total.reclaims) manual reclaims, " +
              "\(total.partitionedRefusals) fail-fast refusals, \(total.unconfirmedTimeouts) confirmation timeouts")
        XCTAssertEqual(failures, [], failures.joined(separator: "\n"))
        if count >= 1000 {
            XCTAssertGreaterThan(total.allocations, Int(count), "the schedules must actually allocate")
            XCTAssertGreaterThan(total.quorumSteps, Int(count), "most schedules must run in quorum mode")
            XCTAssertGreaterThan(total.partitionedRefusals, 0, "partitioned minorities must be refused")
            XCTAssertGreaterThan(total.unconfirmedTimeouts, 0, "unnoticed partitions must time out")
            XCTAssertGreaterThan(total.reclaims, 0)
        }
    }

    /// The same seed gives the same run.
    func testDeterministic() {
        let sim = IPAMSimulator()
        for seed: UInt64 in [1, 77, 4242] {
            let x = sim.run(seed: seed), y = sim.run(seed: seed)
            XCTAssertEqual(x.allocations, y.allocations)
            XCTAssertEqual(x.conflicts, y.conflicts)
            XCTAssertEqual(x.steps, y.steps)
            XCTAssertEqual(x.failure, y.failure)
        }
    }

    /// The oracle catches the bug that confirmation fixes: with the test-only switch
    /// `unsafeSkipConfirmation` (v1 behaviour: a partitioned node keeps allocating, its heir
    /// reclaims without knowing those addresses), some seed must break the oracle.
    func testOracleCatchesAllocationWithoutConfirmation() {
        var sim = IPAMSimulator()
        sim.unsafeSkipConfirmation = true
        var broken: [String] = []
        for seed: UInt64 in 0..<2000 {
            if let f = sim.run(seed: seed).failure {
                broken.append("seed \(seed): \(f)")
                if broken.count >= 3 { break }
            }
        }
        print("with unsafeSkipConfirmation: \(broken.joined(separator: "\n"))")
        XCTAssertFalse(broken.isEmpty, "the oracle must catch unconfirmed allocations")
        XCTAssertTrue(broken.contains { $0.contains("active for both") || $0.contains("lost") }, "\(broken)")
    }
}

final class IPAMSimulationReplay: XCTestCase {
    /// `IPAM_SIM_REPLAY=<seed>` prints a schedule step by step.
    func testReplay() throws {
        guard let s = ProcessInfo.processInfo.environment["IPAM_SIM_REPLAY"], let seed = UInt64(s) else {
            throw XCTSkip("set IPAM_SIM_REPLAY=<seed> to print a schedule")
        }
        var sim = IPAMSimulator()
        sim.trace = true
        print(sim.run(seed: seed).failure ?? "passed")
    }
}
