import XCTest
@testable import WeftCore
import WeftTestKit

/// IPAM v2 rules (docs/ipam.md): reserved addresses, confirmation, fail-fast, voter checks,
/// unconfirmed vs confirmed on loss, fenced and forced reclaim, reserved routes.
final class IPAMQuorumTests: XCTestCase {
    let a = ipamNode(1), b = ipamNode(2), c = ipamNode(3), d = ipamNode(4), e = ipamNode(5)

    func sends(_ ds: [IPAM.Directive], kind: IPAM.Message.Kind) -> [(to: NodeID, bytes: [UInt8], message: IPAM.Message)] {
        ds.compactMap { d in
            guard case .send(let bytes, let to) = d, let m = try? IPAM.Message(decoding: bytes), m.kind == kind else { return nil }
            return (to, bytes, m)
        }
    }

    func cluster(_ ids: [NodeID], subnet: String = "10.42.0.0/16", settings: IPAM.Settings = .fast) throws -> IPAMHarness {
        var h = IPAMHarness(settings: settings)
        for (k, id) in ids.enumerated() { h.addNode(id, seed: UInt64(k + 1)) }
        h.create(ids[0], subnet: try IPAM.Subnet(parsing: subnet))
        h.updateMembership()
        XCTAssertTrue(h.sync())
        return h
    }

    /// The address of a handle once it is acknowledged (at once or by a later directive).
    func acked(_ h: IPAMHarness, _ id: NodeID, _ handle: String) -> UInt32? { h.acknowledged[id]?[handle] }

    // MARK: Rule 1: reserved addresses

    /// A node whose range was taken over and then handed back must not hand out the address of
    /// its own conflict (v1 checked only active allocations), also after a restart.
    func conflictScenario(settings: IPAM.Settings) throws -> (IPAM.Instance, UInt32) {
        var i = IPAM.Instance(me: a, settings: settings, seed: 1)
        _ = i.createCluster(subnet: try IPAM.Subnet(parsing: "10.42.0.0/28"), now: .zero)
        let x = try XCTUnwrap({ if case .allocated(let v) = try i.allocate(handle: "x", now: .zero).outcome { return v }; return nil }())
        let ring = i.ring!
        // c takes the whole range over (x becomes a conflict), then hands it back to a.
        let taken = IPAM.Entry(token: ring.subnet.base, owner: c, version: 3 + IPAM.Instance.takeoverStride, free: 10)
        _ = i.onRingDelta(IPAM.Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: [taken]).encoded(), from: c, now: .zero)
        XCTAssertEqual(i.conflicts["x"], x)
        var back = taken; back.owner = a; back.version += 1
        _ = i.onRingDelta(IPAM.Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: [back]).encoded(), from: c, now: .zero)
        XCTAssertEqual(i.owner(of: x), a, "the range is ours again")
        return (i, x)
    }

    func testConflictedAddressIsNeverHandedOutAgain() throws {
        var (i, x) = try conflictScenario(settings: .fast)
        var restored = IPAM.Instance(me: a, settings: .fast, seed: 9, restoring: i.snapshot)
        for node in [0, 1] {
            var n = node == 0 ? i : restored
            var got: Set<UInt32> = []
            for k in 0..<20 {
                if case .allocated(let v)? = try? n.allocate(handle: "k\(k)", now: .zero).outcome { got.insert(v) }
            }
            XCTAssertFalse(got.contains(x), "conflicted \(IPAM.format(x)) handed out again (\(node == 0 ? "live" : "restored"))")
            XCTAssertEqual(got.count, 14 - 1 - 1, "every other usable address (14 minus overlay minus the conflict) is handed out")
            if node == 0 { i = n } else { restored = n }
        }
        // The test-only switch brings the bug back, so this test would catch it.
        var (buggy, bx) = try conflictScenario(settings: { var s = IPAM.Settings.fast; s.debugHandOutConflicts = true; return s }())
        var handed: Set<UInt32> = []
        for k in 0..<20 { if case .allocated(let v)? = try? buggy.allocate(handle: "k\(k)", now: .zero).outcome { handed.insert(v) } }
        XCTAssertTrue(handed.contains(bx), "debugHandOutConflicts must reproduce the v1 bug")
    }

    func testOtherNodesHoldingsAreNeitherHandedOutNorDonated() throws {
        var i = IPAM.Instance(me: a, settings: .fast, seed: 1)
        _ = i.createCluster(subnet: try IPAM.Subnet(parsing: "10.42.0.0/24"), now: .zero)
        let ring = i.ring!
        // c still holds .200 ... .254 (e.g. it lost the range while away): reserved here.
        let held = Array(UInt32(0x0A2A_00C8)...UInt32(0x0A2A_00FE))
        let reg = IPAM.OwnedHoldings(owner: c, holdings: IPAM.Holdings(version: 7, addresses: held))
        let out = i.onMessage(IPAM.Message.holdings(cluster: ring.cluster, subnet: ring.subnet, registers: [reg]).encoded(), from: c, now: .zero)
        XCTAssertTrue(out.contains(.persist(.holdings(owner: c, reg.holdings))))
        XCTAssertEqual(i.holdings[c], reg.holdings)
        let run = try XCTUnwrap(i.largestFreeRun())
        XCTAssertLessThanOrEqual(run.end, UInt64(held[0]), "a free run never covers reserved addresses")
        let granted = try XCTUnwrap(i.donate(to: b))
        let given = granted.first { $0.owner == b }!
        let k = i.ring!.index(ofToken: given.token)!
        XCTAssertLessThanOrEqual(i.ring!.end(ofEntryAt: k), UInt64(held[0]), "donation gives away no reserved address")
        var got: Set<UInt32> = []
        for n in 0..<300 { if case .allocated(let v)? = try? i.allocate(handle: "k\(n)", now: .zero).outcome { got.insert(v) } }
        XCTAssertTrue(got.isDisjoint(with: held))
        XCTAssertFalse(got.isEmpty)
        // Routes: c's addresses lie in a's range, so they route to c.
        let routes = i.reservedRoutes()
        XCTAssertEqual(routes[held[0]], c)
        XCTAssertEqual(routes.filter { $0.value == c }.count, held.count)
    }

    // MARK: Rules 2 and 3: confirmation and fail-fast

    func testOneAndTwoVoterClustersAllocateAtOnce() throws {
        for ids in [[a], [a, b]] {
            var h = try cluster(ids)
            let last = ids.last!
            XCTAssertFalse(h.nodes[last]!.quorumMode)
            guard case .allocated = try h.allocate(last, "now") else { return XCTFail("\(ids.count) voters must allocate at once") }
        }
    }

    func testThreeVotersWaitForOneAckFiveForTwo() throws {
        let h = try cluster([a, b, c])
        XCTAssertTrue(h.nodes[b]!.quorumMode)
        XCTAssertEqual(h.nodes[b]!.quorum, 2)
        var nb = h.nodes[b]!
        let r = try nb.allocate(handle: "w", now: h.now)
        XCTAssertEqual(r.outcome, .pending)
        let writes = sends(r.directives, kind: .holdingsWrite)
        XCTAssertEqual(Set(writes.map(\.to)), [a, c], "the write goes to every reachable voter")
        let addr = nb.allocations["w"]!
        XCTAssertTrue(r.directives.contains(.persist(.unconfirmedAllocation(handle: "w", address: addr))))
        guard case .holdingsWrite(_, _, let owner, let holdings, let pending, let entries) = writes[0].message else { return XCTFail() }
        XCTAssertEqual(owner, b)
        XCTAssertEqual(pending, [addr])
        XCTAssertTrue(holdings.contains(addr))
        XCTAssertEqual(entries.map(\.owner), [b])
        XCTAssertEqual(try nb.allocate(handle: "w", now: h.now).outcome, .pending, "idempotent while waiting")
        // One ack (Q-1 = 1) confirms.
        var na = h.nodes[a]!
        let answer = na.onMessage(writes.first { $0.to == a }!.bytes, from: b, now: h.now)
        XCTAssertEqual(na.holdings[b]?.contains(addr), true, "the voter stores the register")
        let ack = try XCTUnwrap(sends(answer, kind: .holdingsAck).first)
        let done = nb.onMessage(ack.bytes, from: a, now: h.now)
        XCTAssertEqual(done, [.persist(.allocation(handle: "w", address: addr)), .allocated(handle: "w", address: addr)])
        XCTAssertEqual(try nb.allocate(handle: "w", now: h.now).outcome, .allocated(addr))

        // Five voters: Q = 3, so two acks are needed.
        let h5 = try cluster([a, b, c, d, e])
        var n5 = h5.nodes[b]!
        let r5 = try n5.allocate(handle: "v", now: h5.now)
        let w5 = sends(r5.directives, kind: .holdingsWrite)
        XCTAssertEqual(w5.count, 4)
        var first = h5.nodes[a]!
        let ack1 = sends(first.onMessage(w5.first { $0.to == a }!.bytes, from: b, now: h5.now), kind: .holdingsAck)[0]
        XCTAssertEqual(n5.onMessage(ack1.bytes, from: a, now: h5.now), [], "one ack of two")
        XCTAssertEqual(n5.onMessage(ack1.bytes, from: a, now: h5.now), [], "the same voter twice counts once")
        var second = h5.nodes[c]!
        let ack2 = sends(second.onMessage(w5.first { $0.to == c }!.bytes, from: b, now: h5.now), kind: .holdingsAck)[0]
        XCTAssertTrue(n5.onMessage(ack2.bytes, from: c, now: h5.now).contains(.allocated(handle: "v", address: n5.allocations["v"]!)))
    }

    /// Twenty voters (Q = 11, 10 acks needed): the first write goes to 10 + 2 + 1 = 13 of the
    /// 19 others, not all; different register versions pick different voters; a resend after
    /// `resendInterval` goes to every voter that has not acked; the allocation is confirmed by
    /// acks from the first subset alone.
    func testFirstWriteGoesToAQuorumWithMarginResendsToEveryone() throws {
        let ids = (1...20).map { ipamNode(UInt64($0)) }
        let h = try cluster(ids)
        var nb = h.nodes[ids[1]]!
        XCTAssertEqual(nb.quorum, 11)
        let r = try nb.allocate(handle: "w", now: h.now)
        let first = sends(r.directives, kind: .holdingsWrite)
        XCTAssertEqual(first.count, 13, "need 10, margin 2 + 10/8")
        XCTAssertEqual(Set(first.map(\.to)).count, 13, "distinct voters")
        XCTAssertFalse(first.contains { $0.to == ids[1] }, "never to itself")
        // A second allocation (a newer register version) picks another subset of the missing voters.
        let r2 = try nb.allocate(handle: "w2", now: h.now)
        let second = sends(r2.directives, kind: .holdingsWrite)
        XCTAssertEqual(second.count, 13)
        XCTAssertNotEqual(Set(second.map(\.to)), Set(first.map(\.to)), "the subset depends on the version")
        // Before resendInterval nothing is resent; after it, every voter still missing gets it.
        XCTAssertTrue(sends(nb.onTick(now: h.now + .milliseconds(100)), kind: .holdingsWrite).isEmpty)
        let resend = sends(nb.onTick(now: h.now + IPAM.Settings.fast.resendInterval), kind: .holdingsWrite)
        XCTAssertEqual(Set(resend.map(\.to)), Set(ids).subtracting([ids[1]]), "the resend widens to all 19")
        // Acks from ten voters of the first subset confirm both allocations (the resend carried both).
        var done: [IPAM.Directive] = []
        for w in resend.prefix(10) {
            var voter = h.nodes[w.to]!
            let ack = try XCTUnwrap(sends(voter.onMessage(w.bytes, from: ids[1], now: h.now), kind: .holdingsAck).first)
            done += nb.onMessage(ack.bytes, from: w.to, now: h.now)
        }
        XCTAssertEqual(done.filter { if case .allocated = $0 { return true } else { return false } }.count, 2)
    }

    /// Resends of one unanswered write back off (resendInterval, then twice that): a voter that
    /// has not answered is usually busy, and resending to every missing voter each interval
    /// multiplied a busy cluster's load (docs/benchmarks.md, stop 24). A new allocation is
    /// written at once and starts the spacing again.
    func testResendsOfAnUnansweredWriteBackOff() throws {
        let ids = (1...5).map { ipamNode(UInt64($0)) }
        let h = try cluster(ids)
        var n = h.nodes[ids[0]]!
        let step = IPAM.Settings.fast.resendInterval
        XCTAssertLessThan(step * 3, IPAM.Settings.fast.confirmTimeout, "two resends fit before the timeout")
        let r = try n.allocate(handle: "x", now: h.now)
        XCTAssertFalse(sends(r.directives, kind: .holdingsWrite).isEmpty)
        XCTAssertFalse(sends(n.onTick(now: h.now + step), kind: .holdingsWrite).isEmpty, "first resend after one interval")
        XCTAssertTrue(sends(n.onTick(now: h.now + step * 2), kind: .holdingsWrite).isEmpty, "not again one interval later")
        XCTAssertFalse(sends(n.onTick(now: h.now + step * 3), kind: .holdingsWrite).isEmpty, "the second waits two intervals")
        // A new allocation goes out at once, and its first resend comes one interval later.
        let t = h.now + step * 3 + .milliseconds(10)
        XCTAssertFalse(sends(try n.allocate(handle: "y", now: t).directives, kind: .holdingsWrite).isEmpty)
        XCTAssertTrue(sends(n.onTick(now: t + step / 2), kind: .holdingsWrite).isEmpty)
        XCTAssertFalse(sends(n.onTick(now: t + step), kind: .holdingsWrite).isEmpty)
    }

    func testPartitionedMinorityFailsAtOnceWithTheMessage() throws {
        var h = try cluster([a, b, c, d, e])
        _ = try h.allocate(a, "old")
        h.sync()
        XCTAssertNotNil(acked(h, a, "old"))
        h.group[a] = 1; h.group[b] = 1
        h.updateMembership()
        XCTAssertThrowsError(try h.allocate(a, "new")) { err in
            XCTAssertEqual(err as? IPAM.AllocationError, .partitioned(reachable: 2, voters: 5))
            XCTAssertEqual("\(err)", "partitioned: this node reaches 2 of 5 members; new addresses resume when it rejoins")
        }
        XCTAssertEqual(try h.allocate(a, "old"), .allocated(acked(h, a, "old")!), "existing handles are still answered")
        // The majority side allocates.
        _ = try h.allocate(c, "maj")
        h.sync()
        XCTAssertNotNil(acked(h, c, "maj"))
        // Heal: allocation resumes.
        h.group[a] = 0; h.group[b] = 0; h.updateMembership(); h.sync()
        _ = try h.allocate(a, "new")
        h.sync()
        XCTAssertNotNil(acked(h, a, "new"))
    }

    func testUnconfirmedAllocationTimesOutAndIsReleased() throws {
        var h = try cluster([a, b, c])
        // a has not noticed that it is cut off: its writes are lost.
        h.group[a] = 1
        h.staleMembership = [a]
        h.updateMembership()
        XCTAssertEqual(try h.allocate(a, "lost"), .pending)
        let addr = h.nodes[a]!.allocations["lost"]!
        h.deliverAll()
        h.now = h.now + .milliseconds(500)
        h.tickAll(); h.deliverAll()
        XCTAssertNotNil(h.nodes[a]!.unconfirmed["lost"], "still waiting, writes resent")
        h.now = h.now + .milliseconds(600)
        h.tickAll(); h.deliverAll()
        XCTAssertNil(h.nodes[a]!.allocations["lost"])
        // a still counts 3 reachable voters: not "partitioned" but "not confirmed", with the count.
        XCTAssertTrue(h.failed[a]?.contains { $0.handle == "lost" && $0.error == .unconfirmed(acks: 0, needed: 1) } ?? false, "\(h.failed)")
        XCTAssertFalse(h.nodes[a]!.ownHoldings.contains(addr), "the address is released")
        XCTAssertNil(h.durable[a]!.allocations["lost"], "and the release is persisted")
    }

    func testUnconfirmedAllocationSurvivesRestartAndResumes() throws {
        let h = try cluster([a, b, c])
        var na = h.nodes[a]!
        let r = try na.allocate(handle: "r", now: h.now)
        var dur = h.durable[a]!
        for d in r.directives { if case .persist(let ch) = d { dur.apply(ch) } }
        XCTAssertEqual(dur.allocations["r"]?.state, 2, "persisted as unconfirmed")
        var restarted = IPAM.Instance(me: a, settings: .fast, seed: 3, restoring: dur.snapshot)
        _ = restarted.onMembersChanged(live: [b, c], deadSince: [:], now: h.now)  // old call shape still compiles
        XCTAssertNotNil(restarted.unconfirmed["r"])
        let t1 = restarted.onTick(now: h.now + .milliseconds(200))
        let t2 = restarted.onTick(now: h.now + .milliseconds(400))
        XCTAssertEqual(Set(sends(t1 + t2, kind: .holdingsWrite).map(\.to)), [b, c], "writes resume after a restart")
        na = restarted
        _ = na
    }

    // MARK: Rules 4, 5, 6: voter check, loss, fenced reclaim

    /// b crashes; its heir takes its ranges over with a quorum (fenced). b comes back with its
    /// old view: a new allocation is refused by a voter (nack with entries), dropped, and served
    /// elsewhere; its confirmed allocation becomes a conflict, stays reserved and routes to b.
    func testTakeoverFencesTheReturningOwner() throws {
        var h = try cluster([a, b, c])
        _ = try h.allocate(b, "b0")
        h.sync()
        let b0 = try XCTUnwrap(acked(h, b, "b0"))
        let stale = h.nodes[b]!  // b's state as it crashes
        h.crash(b)
        h.updateMembership()
        let heir = h.nodes[a]!.heir(of: b)!
        let voter = heir == a ? c : a
        h.now = h.now + .seconds(601)
        h.updateMembership()
        h.tickAll()
        h.sync()
        XCTAssertFalse(h.nodes[heir]!.ring!.owners.contains(b), "the heir reclaimed with a quorum")
        XCTAssertEqual(h.nodes[heir]!.holdings[b]?.contains(b0), true, "b's confirmed address stays reserved at the heir")
        XCTAssertEqual(h.nodes[heir]!.reservedRoutes()[b0], b, "and routes to b")
        // The returning b (stale ring, thinks everyone is live) allocates: the write is refused.
        var nb = stale
        let r = try nb.allocate(handle: "b1", now: h.now)
        XCTAssertEqual(r.outcome, .pending)
        let b1 = nb.allocations["b1"]!
        let write = try XCTUnwrap(sends(r.directives, kind: .holdingsWrite).first { $0.to == voter })
        var nv = h.nodes[voter]!
        let answer = nv.onMessage(write.bytes, from: b, now: h.now)
        XCTAssertTrue(sends(answer, kind: .holdingsAck).isEmpty)
        let nack = try XCTUnwrap(sends(answer, kind: .holdingsNack).first)
        guard case .holdingsNack(_, _, b, _, let refused, let entries) = nack.message else { return XCTFail("\(nack.message)") }
        XCTAssertEqual(refused, [b1])
        XCTAssertEqual(entries.first?.owner, heir, "the nack carries the voter's entries")
        XCTAssertEqual(nv.holdings[b]?.contains(b1) ?? false, false, "a refused address is not stored")
        let after = nb.onMessage(nack.bytes, from: voter, now: h.now)
        XCTAssertNil(nb.allocations["b1"].flatMap { $0 == b1 ? $0 : nil }, "the unconfirmed allocation is dropped")
        XCTAssertEqual(nb.conflicts["b0"], b0, "the confirmed one becomes a conflict")
        XCTAssertTrue(after.contains(.conflict(IPAM.Conflict(handle: "b0", address: b0, owner: heir))))
        XCTAssertTrue(nb.ownHoldings.contains(b0), "a conflict stays in b's register (reserved)")
        XCTAssertTrue(nb.pending.contains { $0.handle == "b1" } || nb.allocations["b1"] != nil || after.contains { if case .allocationFailed("b1", _) = $0 { return true }; return false },
                      "b1 is served again: waiting, a new address, or a failure")
        XCTAssertEqual(nb.reservedRoutes()[b0], b)
    }

    func testReclaimWithoutQuorumDoesNotHappen() throws {
        var h = try cluster([a, b, c, d, e])
        for x in [a, b, c, d, e] { _ = try h.allocate(x, "x") }
        h.sync()
        // {a, b} | {c, d, e}, far longer than reclaimAfter.
        h.group[a] = 1; h.group[b] = 1
        h.updateMembership()
        for _ in 0..<5 { h.now = h.now + .seconds(700); h.updateMembership(); h.tickAll(); h.sync() }
        let minority = h.nodes[a]!.ring!
        XCTAssertTrue([c, d, e].allSatisfy { minority.owners.contains($0) }, "the minority reclaims nothing")
        XCTAssertFalse(h.nodes[c]!.ring!.owners.contains(a), "the majority reclaims the minority's space")
        XCTAssertFalse(h.nodes[c]!.ring!.owners.contains(b))
        XCTAssertThrowsError(try h.nodes[a]!.reclaim(c, now: h.now)) { err in
            XCTAssertEqual(err as? IPAM.ReclaimError, .partitioned(reachable: 2, voters: 5))
        }
        // Heal: one owner per range, every acknowledged allocation still held, no duplicate.
        h.group[a] = 0; h.group[b] = 0; h.updateMembership(); h.sync()
        XCTAssertNil(h.globalDuplicate().map { "\($0)" })
        XCTAssertNil(h.lostAcknowledgement().map { "\($0)" })
        XCTAssertEqual(h.nodes[a]!.ring, h.nodes[c]!.ring)
        XCTAssertEqual(h.nodes[a]!.conflicts["x"], acked(h, a, "x"), "a's confirmed allocation became a conflict")
    }

    func testForceReclaimFreesReservedAddressesAndReleaseOfAConflictFreesIt() throws {
        // Tiny subnet so "the address is handed out again" is observable.
        for force in [false, true] {
            var h = try cluster([a, b, c], subnet: "10.42.0.0/28")
            _ = try h.allocate(b, "b0")
            h.sync()
            let b0 = try XCTUnwrap(acked(h, b, "b0"))
            h.crash(b); h.updateMembership()
            let heir = h.nodes[a]!.heir(of: b)!
            try h.reclaim(heir, b, force: force)
            h.sync()
            if force { h.departed.insert(b); h.acknowledged[b] = nil }  // gone for good: its containers are dead
            XCTAssertFalse(h.nodes[heir]!.ring!.owners.contains(b))
            XCTAssertEqual(h.nodes[heir]!.holdings[b]?.contains(b0), !force)
            if force { XCTAssertGreaterThanOrEqual(h.nodes[heir]!.holdings[b]!.version, IPAM.Instance.takeoverStride) }
            var got: Set<UInt32> = []
            for k in 0..<16 { _ = try? h.allocate(heir, "k\(k)"); h.sync() }
            for (hd, x) in h.acknowledged[heir] ?? [:] where hd.hasPrefix("k") { got.insert(x) }
            XCTAssertEqual(got.contains(b0), force, force ? "force frees b's reserved address" : "without force it stays reserved")
            if !force {
                // b returns, its b0 became a conflict; releasing it frees the address for the heir.
                h.restart(b, seed: 7); h.updateMembership(); h.sync()
                XCTAssertEqual(h.nodes[b]!.conflicts["b0"], b0)
                try h.release(b, "b0")
                h.now = h.now + .seconds(1); h.tickAll(); h.sync()
                XCTAssertEqual(h.nodes[heir]!.holdings[b]?.contains(b0), false)
                _ = try? h.allocate(heir, "after"); h.sync()
                XCTAssertEqual(acked(h, heir, "after"), b0, "the freed address is handed out by the range's owner")
            }
            XCTAssertNil(h.globalDuplicate().map { "\($0)" })
        }
    }

    func testSettingsValidation() {
        var s = IPAM.Settings.default
        XCTAssertNil(s.validate())
        s.reclaimAfter = nil
        XCTAssertNil(s.validate(), "never is allowed")
        s.reclaimAfter = .seconds(5)
        XCTAssertNotNil(s.validate(), "reclaimAfter must exceed confirmTimeout")
        s.reclaimAfter = .seconds(6)
        XCTAssertNil(s.validate())
        s.confirmTimeout = .zero
        XCTAssertNotNil(s.validate())
        XCTAssertNil(IPAM.Settings.fast.validate())
    }

    func testNeverMeansNoQuorumModeAndNoAutomaticReclaim() throws {
        var s = IPAM.Settings.fast
        s.reclaimAfter = nil
        var h = try cluster([a, b, c], settings: s)
        XCTAssertFalse(h.nodes[b]!.quorumMode)
        guard case .allocated = try h.allocate(b, "x") else { return XCTFail("no confirmation with never") }
        h.crash(c); h.updateMembership()
        h.now = h.now + .seconds(100_000); h.updateMembership(); h.tickAll(); h.sync()
        XCTAssertTrue(h.nodes[a]!.ring!.owners.contains(c), "never reclaims automatically")
    }
}
