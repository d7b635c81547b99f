import Foundation
import WeftCore
import WeftTestKit
import XCTest

/// `weft evict` (issue 9, item 5; docs/security.md "Eviction") in the whole-node simulator:
/// real `Node.Instance`s, the storage twin, the global oracle (no address active twice, no
/// acknowledged allocation lost) checked after every phase.
final class NodeEvictionSimTests: XCTestCase {
    /// Four hosts; host 0 evicts host 3, which holds two containers. Every other host forgets
    /// it and closes its tunnel; host 3 says it is evicted, refuses allocations and sends no
    /// gossip; its ranges go to its heir after reclaim-after while its containers' addresses
    /// stay reserved; the ban survives restarts on both sides; `--undo` from another host lets
    /// it rejoin and allocate again.
    func testEvictionSpreadsCutsOffReclaimsSurvivesRestartsAndIsUndone() throws {
        let sim = NodeSimulator(seed: 41)
        for _ in 0..<4 { sim.addHost(); sim.run(for: .seconds(1)) }
        sim.run(for: .seconds(8))
        try sim.checkConverged()
        let victim = sim.hosts[3].id
        let held = try XCTUnwrap(sim.allocateWaiting(3, "c1", name: "web"))
        sim.run(for: .seconds(3))
        XCTAssertEqual(sim.hosts[0].node?.zone.names["web"], [held], "the name is served before the eviction")
        XCTAssertNotNil(sim.allocateWaiting(3, "c2"))

        var removedTunnel: Set<Int> = []
        var victimSends = 0
        var evictedAt: Instant?
        sim.observer = { host, e in
            if case .tunnelPeer(.remove(let id)) = e, id == victim { removedTunnel.insert(host) }
            if host == 3, evictedAt != nil, sim.hosts[3].node?.phase == .evicted {
                switch e {
                case .sendGossip, .sendIPAM, .sendIPAMDatagram: victimSends += 1
                default: break
                }
            }
        }
        guard case .success(let id)? = sim.evict(0, victim) else { return XCTFail("evict refused") }
        XCTAssertEqual(id, victim)
        evictedAt = sim.now
        XCTAssertEqual(sim.evict(0, victim).flatMap { r -> String? in if case .failure(let e) = r { "\(e)" } else { nil } }?
            .contains("already evicted"), true)
        sim.run(for: .seconds(6))
        try sim.checkSafety()

        for h in 0..<3 {
            let node = try XCTUnwrap(sim.hosts[h].node)
            XCTAssertNil(node.membership.member(victim), "host \(h) still lists the evicted member")
            XCTAssertTrue(node.membership.evicted.contains(victim), "host \(h)")
            XCTAssertEqual(node.evictedMembers.map(\.subject), [victim], "host \(h)")
            XCTAssertNil(node.zone.names["web"], "host \(h) still serves the evicted node's names")
        }
        XCTAssertEqual(removedTunnel, [0, 1, 2], "every other host closed its tunnel to the evicted one")
        let evicted = try XCTUnwrap(sim.hosts[3].node)
        XCTAssertEqual(evicted.phase, .evicted)
        XCTAssertEqual(evicted.evictedBy?.by, sim.hosts[0].id)
        XCTAssertTrue(evicted.warnings.contains { $0.contains("evicted") && $0.contains("weft evict --undo") }, "\(evicted.warnings)")
        XCTAssertNil(sim.allocate(3, "after"), "an evicted node hands out no address")
        XCTAssertEqual(evicted.ipam.allocations["c1"], held, "nothing of the evicted node's state is lost")
        XCTAssertEqual(victimSends, 0, "an evicted node sends no gossip or IPAM frames")

        // Its space is reclaimed under the IPAM rules; its containers' addresses stay reserved.
        sim.run(for: (sim.ipamSettings.reclaimAfter ?? .seconds(20)) * 3)
        try sim.checkSafety()
        let ring = try XCTUnwrap(sim.hosts[0].node?.ipam.ring)
        XCTAssertFalse(ring.owners.contains(victim), "the evicted member's ranges were not reclaimed")
        for i in 0..<40 {
            let a = sim.allocateWaiting(i % 3, "after-\(i)")
            XCTAssertNotNil(a)
            XCTAssertNotEqual(a, held, "the evicted node's container address was handed out again")
        }
        try sim.checkSafety()

        // Restarts keep the ban, on both sides.
        sim.crash(1); sim.restart(1)
        sim.crash(3); sim.restart(3)
        sim.run(for: .seconds(10))
        XCTAssertEqual(sim.hosts[3].node?.phase, .evicted, "the ban was lost by the evicted node's restart")
        XCTAssertNil(sim.hosts[1].node?.membership.member(victim), "the ban was lost by a member's restart")
        XCTAssertEqual(sim.hosts[1].node?.evictedMembers.map(\.subject), [victim])

        // The evicted node cannot lift its own ban; another member can.
        if case .success? = sim.evict(3, sim.hosts[0].id) { XCTFail("an evicted node evicted a member") }
        guard case .success? = sim.evict(1, victim, undo: true) else { return XCTFail("undo refused") }
        sim.run(for: sim.nodeSettings.seedRetryMax * 3 + .seconds(10))
        try sim.checkSafety()
        XCTAssertEqual(sim.hosts[3].node?.phase, .running, "the readmitted node did not come back")
        for h in 0..<3 {
            XCTAssertEqual(sim.hosts[h].node?.membership.member(victim)?.state, .alive, "host \(h) did not readmit it")
            XCTAssertEqual(sim.hosts[h].node?.evictedMembers.count, 0)
        }
        XCTAssertNotNil(sim.allocateWaiting(3, "back"), "the readmitted node cannot allocate")
        try sim.checkSafety()
    }

    /// What a cluster-key holder can send: eviction records with a forged signature, by an
    /// unknown signer, by the subject itself (self-undo), at an absurd version, malformed. None
    /// changes anything; each is counted by reason.
    func testForgedEvictionsAreRefused() throws {
        let sim = NodeSimulator(seed: 43)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(1)) }
        sim.run(for: .seconds(6))
        let a = sim.hosts[0].id, b = sim.hosts[1].id, c = sim.hosts[2].id
        let stranger = NodeID(high: 0x5eed, low: 0xbad)
        func record(subject: NodeID, by: NodeID, version: UInt64 = 1, evicted: Bool = true, signer: NodeID? = nil) -> Node.Eviction {
            let claim = Node.Eviction.claim(subject: subject, name: "x", version: version, evicted: evicted, by: by)
            let sig = SimCluster.signer(for: signer ?? by).sign(claim)
            return Node.Eviction(subject: subject, name: "x", version: version, evicted: evicted, by: by,
                                 byKey: SimCluster.publicKey(by), signature: sig)
        }
        func gossip(_ payload: [UInt8]) -> [UInt8] {
            Membership.Codec.encode(.gossip(source: b, Membership.Piggyback(broadcasts: [Membership.AppBroadcast(origin: b, payload: payload)])))
        }
        let cases: [(String, [UInt8])] = [
            ("eviction-bad-signature", record(subject: c, by: b, signer: stranger).broadcast),
            ("eviction-unknown-signer", record(subject: c, by: stranger).broadcast),
            ("eviction-by-subject", record(subject: c, by: c).broadcast),
            ("eviction-bad-version", record(subject: c, by: b, version: Node.Eviction.maxVersion).broadcast),
            ("eviction-version-jump", record(subject: c, by: b, version: Node.Eviction.maxVersionJump + 5).broadcast),
            ("malformed-eviction", Array(record(subject: c, by: b).broadcast.dropLast())),
        ]
        for (reason, payload) in cases {
            let effects = sim.deliverGossip(0, gossip(payload), from: sim.hosts[1].endpoint)
            XCTAssertTrue(effects.contains(.dropped(reason)), "\(reason): \(effects.filter { if case .dropped = $0 { true } else { false } })")
        }
        sim.run(for: .seconds(3))
        for h in 0..<3 {
            XCTAssertEqual(sim.hosts[h].node?.evictedMembers.count, 0, "host \(h)")
            XCTAssertEqual(sim.hosts[h].node?.membership.member(c)?.state, .alive, "host \(h)")
        }
        // A genuine record from b (its own key) is taken, and spreads.
        let effects = sim.deliverGossip(0, gossip(record(subject: c, by: b).broadcast), from: sim.hosts[1].endpoint)
        XCTAssertFalse(effects.contains { if case .dropped(let r) = $0 { r.hasPrefix("eviction") } else { false } })
        sim.run(for: .seconds(5))
        XCTAssertEqual(sim.hosts[2].node?.phase, .evicted)
        XCTAssertNil(sim.hosts[1].node?.membership.member(c))
        _ = a
    }

    /// Two members evict each other at the same version (a race, or a compromised host
    /// answering an eviction with its own): every node settles on the same outcome, the
    /// signer with the smaller id wins, and the loser's record is not applied anywhere.
    func testMutualEvictionConvergesEverywhere() throws {
        let sim = NodeSimulator(seed: 47)
        for _ in 0..<4 { sim.addHost(); sim.run(for: .seconds(1)) }
        sim.run(for: .seconds(6))
        sim.split([[0, 2], [1, 3]])
        guard case .success? = sim.evict(0, sim.hosts[1].id), case .success? = sim.evict(1, sim.hosts[0].id) else {
            return XCTFail("evict refused")
        }
        sim.run(for: .seconds(3))
        sim.heal()
        sim.run(for: .seconds(20))
        try sim.checkSafety()
        let (a, b) = (sim.hosts[0].id, sim.hosts[1].id)
        let winner = a < b ? 0 : 1, loser = 1 - winner
        XCTAssertEqual(sim.hosts[loser].node?.phase, .evicted)
        XCTAssertEqual(sim.hosts[winner].node?.phase, .running)
        for h in [winner, 2, 3] {
            XCTAssertEqual(sim.hosts[h].node?.evictedMembers.map(\.subject), [sim.hosts[loser].id], "host \(h)")
        }
    }

    /// A tampered database (a record written into the store with a forged signature) evicts
    /// nobody: stored records are verified again at start.
    func testForgedStoredEvictionIsDroppedAtStart() throws {
        let sim = NodeSimulator(seed: 53)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(1)) }
        sim.run(for: .seconds(6))
        let (b, c) = (sim.hosts[1].id, sim.hosts[2].id)
        var batch = Node.Batch()
        batch.evictions = [Node.Eviction(subject: c, name: "x", version: 1, evicted: true, by: b,
                                         byKey: SimCluster.publicKey(b), signature: [UInt8](repeating: 1, count: 64))]
        sim.crash(0)
        try sim.hosts[0].storage.commit(batch)
        sim.restart(0)
        sim.run(for: .seconds(6))
        XCTAssertEqual(sim.hosts[0].node?.evictedMembers.count, 0, "a forged stored record evicted a member")
        XCTAssertEqual(sim.hosts[0].node?.membership.member(c)?.state, .alive)
        XCTAssertEqual(sim.hosts[2].node?.phase, .running)
    }
}
