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

    func testIndirectProbesBridgeABrokenLink() {
        func suspicionsOf5At2(indirectProbes: Int) -> (Int, SimCluster) {
            var settings = M.Settings.default
            settings.indirectProbes = indirectProbes
            let c = SimCluster(seed: 0x11F, settings: settings)
            c.addConverged(10)
            // 2 and 5 cannot reach each other directly; everyone else can reach both.
            c.network.linkLoss[SimNetwork.Link(from: c.nodes[2].endpoint, to: c.nodes[5].endpoint)] = 1
            c.network.linkLoss[SimNetwork.Link(from: c.nodes[5].endpoint, to: c.nodes[2].endpoint)] = 1
            var count = 0
            let five = c.nodes[5].id
            c.observer = { i, d, _ in
                if i == 2, case .memberChanged(let m, _) = d, m.id == five, m.state == .suspect { count += 1 }
            }
            c.run(for: .seconds(120))
            return (count, c)
        }
        let (withRelays, c) = suspicionsOf5At2(indirectProbes: 3)
        XCTAssertEqual(withRelays, 0, "ping-req should bridge the broken link (\(c.context))")
        XCTAssertTrue(c.falseDead.isEmpty, c.context)
        XCTAssertEqual(c.nodes[2].instance.awareness, 0, "the link is broken, not node 2 (\(c.context))")
        let (withoutRelays, _) = suspicionsOf5At2(indirectProbes: 0)
        XCTAssertGreaterThan(withoutRelays, 3, "control: without ping-req 2 keeps suspecting 5 (\(c.context))")
    }

    func testStrugglingNodeSlowsDownInsteadOfAccusingOthers() {
        func run(awarenessMax: Int, seed: UInt64) -> (accusations: Int, maxAwareness: Int, c: SimCluster) {
            var settings = M.Settings.default
            settings.awarenessMax = awarenessMax
            let c = SimCluster(seed: seed, settings: settings)
            c.addConverged(20)
            // Node 0 loses 60 % of what it receives (a saturated NIC): it misses acks and nacks.
            for j in 1..<20 {
                c.network.linkLoss[SimNetwork.Link(from: c.nodes[j].endpoint, to: c.nodes[0].endpoint)] = 0.6
            }
            // Other links are perfect, so every suspicion of a healthy node comes from node 0.
            var accusations = 0
            let zero = c.nodes[0].id
            c.observer = { i, d, _ in
                if i != 0, case .memberChanged(let m, _) = d, m.id != zero, m.state == .suspect { accusations += 1 }
            }
            var maxAwareness = 0
            for _ in 0..<120 {
                c.run(for: .seconds(1))
                maxAwareness = max(maxAwareness, c.nodes[0].instance.awareness)
            }
            let othersKilled = c.falseDead.filter { $0.subject != zero }
            XCTAssertTrue(othersKilled.isEmpty, "healthy nodes declared dead \(othersKilled.count) times (\(c.context))")
            return (accusations, maxAwareness, c)
        }
        var with = 0, without = 0
        for seed: UInt64 in [0x51C, 0x51D, 0x51E] {
            let lifeguard = run(awarenessMax: 8, seed: seed)
            XCTAssertGreaterThanOrEqual(lifeguard.maxAwareness, 2, "awareness should rise (\(lifeguard.c.context))")
            with += lifeguard.accusations
            without += run(awarenessMax: 1, seed: seed).accusations
        }
        // Over three seeds, Lifeguard's local health cuts the struggling node's accusations by a third or more.
        XCTAssertLessThan(Double(with), 0.67 * Double(without),
                          "accusations with awareness \(with), without \(without) (seeds 0x51C...0x51E)")
        print("struggling node accusations: with awareness \(with), without \(without)")
    }
}
