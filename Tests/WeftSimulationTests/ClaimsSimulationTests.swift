import XCTest
import WeftCore
import WeftTestKit

/// Signed claims in a 100-node simulated cluster (default settings): how many signatures each
/// node checks per second in steady state and around a crash (docs/benchmarks.md), and that no
/// honest claim is ever dropped as unverifiable.
final class ClaimsSimulationTests: XCTestCase {
    func testVerificationsPerNodeAndNoHonestClaimDropped() {
        let sim = SimCluster(seed: 11, settings: .default)
        sim.addConverged(100)
        sim.run(for: .seconds(20))
        func total() -> Membership.ClaimStats {
            sim.nodes.reduce(into: Membership.ClaimStats()) {
                $0.verifications += $1.instance.claimStats.verifications
                $0.cacheHits += $1.instance.claimStats.cacheHits
                $0.signatures += $1.instance.claimStats.signatures
            }
        }
        let t0 = total()
        sim.run(for: .seconds(60))
        let steady = total()
        sim.crash(7)
        let detected = sim.run(until: sim.now + .seconds(60), checkEvery: .milliseconds(100)) { $0.everyone(sees: 7, as: .dead) }
        XCTAssertNotNil(detected, "the crashed node was not dead everywhere within 60 s")
        sim.restart(7, seeds: [0])
        sim.run(for: .seconds(30))
        let after = total()
        let perNodeSecond = { (a: Membership.ClaimStats, b: Membership.ClaimStats, secs: Double) in
            Double(b.verifications - a.verifications) / 100 / secs
        }
        let steadyRate = perNodeSecond(t0, steady, 60)
        let churnRate = perNodeSecond(steady, after, 90)
        print("claims simulation n=100: steady \(String(format: "%.2f", steadyRate)) verifications/node/s, crash + restart window \(String(format: "%.2f", churnRate)) verifications/node/s, cache hits \(after.cacheHits - t0.cacheHits), signatures \(after.signatures - t0.signatures)")
        for reason in [Membership.DropReason.badRecordSignature, .badAccusation, .unknownAccuser, .badLeftSignature] {
            XCTAssertEqual(sim.dropped[reason, default: 0], 0, "honest nodes dropped claims as \(reason)")
        }
        XCTAssertLessThan(churnRate, 50, "verification should be rare: news only, not re-gossip")
    }
}
