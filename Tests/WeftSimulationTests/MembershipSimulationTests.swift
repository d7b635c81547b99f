import XCTest
import WeftCore
import WeftTestKit

/// Whole-cluster behaviour over the deterministic simulator. Times are simulated; every failure
/// message carries the seed (`cluster.context`) so the run can be replayed.
final class MembershipSimulationTests: XCTestCase {
    typealias M = Membership

    func testJoinConvergenceOf50Nodes() {
        let c = SimCluster(seed: 0x501)
        for i in 0..<50 {
            c.addNode(seeds: i == 0 ? [] : [Int(UInt64(i) * 7 % UInt64(i))])  // various seeds, all already in
            c.run(for: .milliseconds(50))
        }
        let at = c.run(until: c.now + .seconds(30), checkEvery: .milliseconds(200)) { $0.converged }
        XCTAssertNotNil(at, "50 nodes did not converge within 30 s (\(c.context))")
        XCTAssertTrue(c.falseDead.isEmpty, "false dead during join: \(c.falseDead.count) (\(c.context))")
        for i in c.upNodes { XCTAssertEqual(c.nodes[i].instance.members.count, 50, c.context) }
    }

    func testCrashedNodeIsMarkedDeadByAllWithinBound() {
        for seed: UInt64 in [1, 2, 3] {
            let c = SimCluster(seed: seed)
            c.addConverged(40)
            c.run(for: .seconds(5))
            let crashedAt = c.now
            c.crash(7)
            let at = c.run(until: c.now + .seconds(20), checkEvery: .milliseconds(50)) { $0.everyone(sees: 7, as: .dead) }
            // Fast settings at n = 40: suspicion 0.64 ... 3.8 s; plus detection and gossip.
            XCTAssertNotNil(at, "node 7 not dead everywhere within 20 s (\(c.context))")
            if let at { XCTAssertLessThan(at - crashedAt, .seconds(5), "detection took \(at - crashedAt) (\(c.context))") }
            XCTAssertTrue(c.falseDead.isEmpty, "false dead: \(c.falseDead.count) (\(c.context))")
        }
    }

    func testNoFalseDeadUnderTenPercentLoss() {
        let c = SimCluster(seed: 0x10, settings: .default)
        c.network.loss = 0.10
        c.addConverged(30)
        c.run(for: .seconds(300))
        XCTAssertTrue(c.falseDead.isEmpty, "false dead under 10 % loss: \(c.falseDead.count) (\(c.context))")
        XCTAssertTrue(c.converged, c.context)
    }

    func testNoFalseDeadWithOneNodeStalling2sEvery30s() {
        let c = SimCluster(seed: 0x57A11, settings: .default)
        c.addConverged(30)
        c.nodes[4].periodicStall = (period: .seconds(30), duration: .seconds(2), phase: .seconds(10))
        c.run(for: .seconds(300))
        XCTAssertTrue(c.falseDead.isEmpty, "stalled node declared dead \(c.falseDead.count) times (\(c.context))")
        c.run(for: .seconds(5))
        XCTAssertTrue(c.converged, c.context)
    }

    func testPartitionThenHealRejoinsWithoutCommands() {
        let c = SimCluster(seed: 0xBEEF)
        c.addConverged(20)
        c.run(for: .seconds(3))
        let left = Set((0..<10).map { c.nodes[$0].endpoint }), right = Set((10..<20).map { c.nodes[$0].endpoint })
        c.network.split([left, right])
        let split = c.run(until: c.now + .seconds(30), checkEvery: .milliseconds(200)) {
            c in (10..<20).allSatisfy { c.state(of: 0, at: $0) == .dead } && (0..<10).allSatisfy { c.state(of: 15, at: $0) == .dead }
        }
        XCTAssertNotNil(split, "the sides did not declare each other dead (\(c.context))")
        XCTAssertFalse(c.converged)
        c.network.heal()
        let healed = c.run(until: c.now + .seconds(60), checkEvery: .milliseconds(200)) { $0.converged }
        XCTAssertNotNil(healed, "partition did not heal by itself within 60 s (\(c.context))")
    }

    func testMassRestartWithPersistedIncarnationConverges() {
        let c = SimCluster(seed: 0x4E57)
        c.addConverged(25)
        c.run(for: .seconds(3))
        for i in 0..<25 { c.crash(i) }
        c.run(for: .seconds(1))
        for i in 0..<25 {
            c.restart(i, seeds: [(i + 1) % 25])
            c.run(for: .milliseconds(20))
        }
        let at = c.run(until: c.now + .seconds(30), checkEvery: .milliseconds(200)) { $0.convergedExactly }
        XCTAssertNotNil(at, "mass restart did not converge (\(c.context))")
        XCTAssertTrue(c.falseDead.isEmpty, "false dead after restart: \(c.falseDead.count) (\(c.context))")
        for i in 0..<25 {
            XCTAssertGreaterThanOrEqual(c.nodes[i].instance.myself.incarnation, 2, c.context)
            for j in 0..<25 {
                XCTAssertEqual(c.nodes[j].instance.member(c.nodes[i].id)?.incarnation, c.nodes[i].instance.myself.incarnation,
                               "node \(j)'s view of \(i) (\(c.context))")
            }
        }
    }

    func testGracefulLeaveSeenAsLeftByAll() {
        let c = SimCluster(seed: 0x1EA7)
        c.addConverged(30)
        c.run(for: .seconds(3))
        c.leave(9)
        let at = c.run(until: c.now + .seconds(5), checkEvery: .milliseconds(50)) { c in
            c.upNodes.allSatisfy { $0 == 9 || c.state(of: 9, at: $0) == .left }
        }
        XCTAssertNotNil(at, "leave not seen by all (\(c.context))")
        c.run(for: .seconds(10))
        XCTAssertTrue(c.upNodes.allSatisfy { $0 == 9 || c.state(of: 9, at: $0) == .left }, "left is final (\(c.context))")
    }

    func testRestartAtNewAddressIsAdopted() {
        let c = SimCluster(seed: 0xADD4)
        c.addConverged(20)
        c.run(for: .seconds(3))
        c.crash(3)
        c.run(for: .seconds(1))
        c.restart(3, seeds: [0], newAddress: true)
        let ep = c.nodes[3].endpoint
        let at = c.run(until: c.now + .seconds(20), checkEvery: .milliseconds(100)) { c in
            c.upNodes.allSatisfy { c.nodes[$0].instance.member(c.nodes[3].id)?.address == ep } && c.convergedExactly
        }
        XCTAssertNotNil(at, "new address not adopted (\(c.context))")
    }

    func testRunsAreDeterministicFromTheSeed() {
        func fingerprint() -> [Int] {
            let c = SimCluster(seed: 77)
            c.network.loss = 0.05
            c.addConverged(15)
            c.run(for: .seconds(2))
            c.crash(2)
            c.run(for: .seconds(8))
            return c.nodes.map(\.bytesSent) + c.nodes.map { $0.instance.members.filter { $0.state == .dead }.count }
        }
        XCTAssertEqual(fingerprint(), fingerprint())
    }
}
