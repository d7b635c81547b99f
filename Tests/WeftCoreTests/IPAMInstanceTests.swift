import XCTest
@testable import WeftCore
import WeftTestKit

final class IPAMInstanceTests: XCTestCase {
    let a = ipamNode(1), b = ipamNode(2), c = ipamNode(3), d = ipamNode(4)
    let t0 = Instant.zero

    func single(_ subnet: String = "10.42.0.0/16") throws -> IPAM.Instance {
        var i = IPAM.Instance(me: a, settings: .fast, seed: 1)
        _ = i.createCluster(subnet: try IPAM.Subnet(parsing: subnet), now: t0)
        return i
    }

    func allocated(_ r: (outcome: IPAM.AllocationOutcome, directives: [IPAM.Directive])) -> UInt32? {
        if case .allocated(let x) = r.outcome { return x }
        return nil
    }

    func testSingleNodeAllocatesImmediately() throws {
        var i = try single()
        XCTAssertEqual(i.overlayAddress, 0x0A2A_0001, "the creator takes its overlay address at once")
        let r = try i.allocate(handle: "ctr-1", now: t0)
        XCTAssertEqual(allocated(r), 0x0A2A_0002)
        XCTAssertTrue(r.directives.contains(.persist(.allocation(handle: "ctr-1", address: 0x0A2A_0002))))
        XCTAssertFalse(r.directives.contains { if case .broadcast = $0 { return true }; return false },
                       "free-hint changes are coalesced until the next tick")
        for k in 0..<50 { _ = try i.allocate(handle: "burst\(k)", now: t0) }
        let tick = i.onTick(now: t0 + .seconds(1))
        let gossip = tick.compactMap { d -> IPAM.Message? in if case .broadcast(let b) = d { return try? IPAM.Message(decoding: b) }; return nil }
        let deltas = gossip.filter { $0.kind == .ringDelta }
        XCTAssertEqual(deltas.count, 1, "one ring delta for the whole burst")
        XCTAssertEqual(gossip.filter { $0.kind == .holdings }.count, 1, "and one holdings register")
        guard case .ringDelta(_, _, let entries)? = deltas.first else { return XCTFail("\(tick)") }
        XCTAssertEqual(entries, i.ring!.entries)
        XCTAssertEqual(i.onTick(now: t0 + .seconds(2)).filter { if case .broadcast = $0 { return true }; return false }, [], "then quiet")
        for k in 0..<50 { _ = try i.release(handle: "burst\(k)", now: t0) }
        // Same handle, same address, nothing new to persist.
        let again = try i.allocate(handle: "ctr-1", now: t0)
        XCTAssertEqual(allocated(again), 0x0A2A_0002)
        XCTAssertEqual(again.directives, [])
        XCTAssertEqual(i.ring!.entries[0].free, 65534 - 2)
    }

    func testReleaseAndUnknownHandle() throws {
        var i = try single()
        let x = allocated(try i.allocate(handle: "h", now: t0))!
        let before = i.snapshot
        XCTAssertThrowsError(try i.release(handle: "nope", now: t0)) { e in
            XCTAssertEqual(e as? IPAM.AllocationError, .unknownHandle("nope"))
        }
        XCTAssertEqual(i.snapshot, before, "an unknown handle changes nothing")
        let out = try i.release(handle: "h", now: t0)
        XCTAssertTrue(out.contains(.persist(.release(handle: "h"))))
        XCTAssertNil(i.allocations["h"])
        XCTAssertEqual(i.ring!.entries[0].free, 65534 - 1)
        XCTAssertThrowsError(try i.release(handle: "h", now: t0))
        // The address can be handed out again (after the cursor wraps).
        var seen: Set<UInt32> = []
        for k in 0..<65533 { seen.insert(allocated(try i.allocate(handle: "k\(k)", now: t0))!) }
        XCTAssertTrue(seen.contains(x))
        XCTAssertEqual(seen.count, 65533)
    }

    func testBadHandles() throws {
        var i = try single()
        for h in ["", String(repeating: "x", count: 257), "a\nb", "tab\there", "del\u{7F}", "c1\u{85}"] {
            XCTAssertThrowsError(try i.allocate(handle: h, now: t0), h.debugDescription) { e in
                guard case .invalidHandle = e as? IPAM.AllocationError else { return XCTFail("\(e)") }
            }
        }
        XCTAssertNotNil(allocated(try i.allocate(handle: String(repeating: "y", count: 256), now: t0)))
        XCTAssertNotNil(allocated(try i.allocate(handle: "pod/ns:name é✓", now: t0)))
        XCTAssertThrowsError(try i.release(handle: "", now: t0))
        // The node's own handle namespace is closed to callers.
        XCTAssertThrowsError(try i.allocate(handle: IPAM.Instance.overlayHandle, now: t0)) { e in
            guard case .invalidHandle(let why) = e as? IPAM.AllocationError else { return XCTFail("\(e)") }
            XCTAssertTrue(why.contains("reserved"))
        }
        XCTAssertThrowsError(try i.release(handle: IPAM.Instance.overlayHandle, now: t0))
        XCTAssertEqual(try i.claimOverlayAddress(now: t0).outcome, .allocated(0x0A2A_0001), "idempotent for the node itself")
    }

    func testOutOfSpace() throws {
        var i = try single("10.42.0.0/30")  // 4 addresses, 2 usable
        XCTAssertEqual(i.overlayAddress, 0x0A2A_0001)
        XCTAssertEqual(allocated(try i.allocate(handle: "x", now: t0)), 0x0A2A_0002)
        XCTAssertThrowsError(try i.allocate(handle: "y", now: t0)) { e in
            XCTAssertEqual(e as? IPAM.AllocationError, .outOfSpace)
        }
        XCTAssertNil(i.allocations["y"])
        _ = try i.release(handle: "x", now: t0)
        XCTAssertEqual(allocated(try i.allocate(handle: "y", now: t0)), 0x0A2A_0002)
    }

    func testNoRingMeansPendingThenTimeout() throws {
        var i = IPAM.Instance(me: b, settings: .fast, seed: 2)
        XCTAssertEqual(try i.allocate(handle: "p", now: t0).outcome, .pending)
        let out = i.onTick(now: t0 + .seconds(11))
        XCTAssertTrue(out.isEmpty, "without a ring there is nothing to tick")
    }

    // MARK: Multi-node (through the harness)

    func cluster(_ ids: [NodeID], subnet: String = "10.42.0.0/16") throws -> IPAMHarness {
        var h = IPAMHarness(settings: .fast)
        for (k, id) in ids.enumerated() { h.addNode(id, seed: UInt64(k + 1)) }
        let s = try IPAM.Subnet(parsing: subnet)
        h.create(ids[0], subnet: s)
        h.updateMembership()
        XCTAssertTrue(h.sync())
        return h
    }

    func testJoinerGetsARangeAndAllocatesLocally() throws {
        var h = try cluster([a, b])
        let nb = h.nodes[b]!
        XCTAssertGreaterThan(nb.ownFree, 0, "a joiner asks for space as soon as it has the ring")
        XCTAssertEqual(h.nodes[a]!.ring, nb.ring)
        let x = try h.allocate(b, "c")
        guard case .allocated(let addr) = x else { return XCTFail("expected local allocation") }
        XCTAssertEqual(h.nodes[b]!.owner(of: addr), b)
        // Donor gave the upper half of its largest free run and none of its own allocations.
        XCTAssertEqual(h.nodes[a]!.owner(of: h.nodes[a]!.overlayAddress!), a)
        XCTAssertEqual(h.nodes[a]!.ownFree + nb.ownFree, 65534 - 1)
        XCTAssertTrue(h.duplicateHolders().isEmpty)
    }

    func testDonationFromDonorWithNothingFree() throws {
        var h = try cluster([a], subnet: "10.42.0.0/30")
        _ = try h.allocate(a, "last")
        h.addNode(b, seed: 9)
        h.updateMembership(); h.sync()
        XCTAssertEqual(h.nodes[b]!.ownFree, 0, "nothing to donate")
        XCTAssertThrowsError(try h.nodes[b]!.allocate(handle: "z", now: h.now)) { e in
            XCTAssertEqual(e as? IPAM.AllocationError, .outOfSpace)
        }
        // A deny from a donor with no free run fails waiting handles when nobody has space.
        var donor = h.nodes[a]!
        let out = donor.onMessage(IPAM.Message.donationRequest(cluster: donor.ring!.cluster, wanted: 4).encoded(), from: b, now: h.now)
        XCTAssertTrue(out.contains { if case .send(let bytes, b) = $0 { return (try? IPAM.Message(decoding: bytes))?.kind == .donationDeny }; return false })
        XCTAssertEqual(donor.ring, h.nodes[a]!.ring)
    }

    func testTinyRangesDonateSingleAddresses() throws {
        // /29: 8 addresses, 6 usable. A holds its overlay; B, C join and each get at least one.
        var h = try cluster([a, b, c], subnet: "10.42.0.0/29")
        for id in [a, b, c] { XCTAssertNil(h.nodes[id]!.ring!.invariantViolation) }
        var got: [NodeID: UInt32] = [:]
        for id in [b, c] {
            let r = try h.allocate(id, "o")
            h.sync()
            if case .allocated(let x) = r { got[id] = x } else { got[id] = h.completed[id]?.first?.address }
        }
        XCTAssertEqual(Set(got.values).count, 2)
        XCTAssertTrue(h.duplicateHolders().isEmpty)
        // Fill the cluster: every usable address ends up allocated, never twice.
        for k in 0..<10 {
            for id in [a, b, c] {
                _ = try? h.allocate(id, "f\(k)")
                h.sync()
            }
        }
        let held = h.nodes.values.reduce(0) { $0 + $1.allocations.count }
        XCTAssertEqual(held, 6, "all six usable addresses end up allocated")
        XCTAssertTrue(h.duplicateHolders().isEmpty)
    }

    func testDonorSkipsFragmentedAllocations() throws {
        var i = try single("10.42.0.0/24")
        // Allocate 1...100 then release every other one: free runs are 1 long up to .100.
        for k in 0..<99 { _ = try i.allocate(handle: "k\(k)", now: t0) }
        for k in stride(from: 0, to: 99, by: 2) { _ = try i.release(handle: "k\(k)", now: t0) }
        let run = i.largestFreeRun()!
        XCTAssertEqual(run.start, UInt64(0x0A2A_0064))
        XCTAssertEqual(run.end, UInt64(0x0A2A_00FF), "the broadcast address is not part of a run")
        let held = Set(i.allocations.values)
        let granted = i.donate(to: b)!
        XCTAssertNil(i.ring!.invariantViolation)
        for addr in held { XCTAssertEqual(i.owner(of: addr), a, "never donates an address it handed out") }
        XCTAssertEqual(granted.first { $0.owner == b }!.token, 0x0A2A_00FF - 77)
        XCTAssertEqual(i.ownFree, UInt64(254 - 50 - 77))
    }

    func testLeaveHandsEverythingToLivePeers() throws {
        var h = try cluster([a, b, c])
        for id in [a, b, c] { _ = try h.allocate(id, "x") }
        h.sync()
        h.leave(b)
        h.sync()
        h.departed.insert(b); h.up.remove(b)
        h.updateMembership(); h.sync()
        let ring = h.nodes[a]!.ring!
        XCTAssertFalse(ring.owners.contains(b), "nothing stranded with the leaver")
        XCTAssertEqual(ring, h.nodes[c]!.ring!)
        XCTAssertTrue(h.nodes[b]!.allocations.isEmpty)
        XCTAssertThrowsError(try h.nodes[b]!.allocate(handle: "y", now: h.now))
        XCTAssertNotNil(h.nodes[a]!.allocations["x"])
        // A departed node answers donation requests with a deny, so nobody waits for it.
        var gone = h.nodes[b]!
        let out = gone.onMessage(IPAM.Message.donationRequest(cluster: gone.ring!.cluster, wanted: 1).encoded(), from: c, now: h.now)
        XCTAssertTrue(out.contains { if case .send(let bytes, c) = $0 { return (try? IPAM.Message(decoding: bytes))?.kind == .donationDeny }; return false })
    }

    func testReclaimHasExactlyOneHeir() throws {
        var h = try cluster([a, b, c, d])
        h.up.remove(d)  // d crashes
        h.updateMembership()
        let heirs = Set([a, b, c].map { h.nodes[$0]!.heir(of: d) })
        XCTAssertEqual(heirs.count, 1, "every survivor computes the same heir")
        h.now = h.now + .seconds(599)
        h.tickAll(); h.sync()
        XCTAssertTrue(h.nodes[a]!.ring!.owners.contains(d), "not before reclaimAfter")
        h.now = h.now + .seconds(2)
        // All three notice at the same moment; only the heir acts.
        var acted: [NodeID] = []
        for id in [a, b, c] {
            let out = h.nodes[id]!.onTick(now: h.now)
            // Four voters: quorum mode, so the heir starts the fenced takeover (phase 1).
            if out.contains(where: { if case .log(let l) = $0 { return l.event == "ipam.reclaim.fencing" }; return false }) { acted.append(id) }
            h.route(from: id, out)
        }
        XCTAssertEqual(acted, [heirs.first!])
        h.sync()
        let ring = h.nodes[a]!.ring!
        XCTAssertFalse(ring.owners.contains(d))
        XCTAssertTrue(h.conflicts.isEmpty)
    }

    func testManualReclaimAndRefusals() throws {
        var h = try cluster([a, b])
        XCTAssertThrowsError(try h.nodes[a]!.reclaim(b, now: h.now)) { e in XCTAssertEqual(e as? IPAM.ReclaimError, .nodeIsAlive(b)) }
        XCTAssertThrowsError(try h.nodes[a]!.reclaim(a, now: h.now)) { e in XCTAssertEqual(e as? IPAM.ReclaimError, .isSelf) }
        XCTAssertThrowsError(try h.nodes[a]!.reclaim(c, now: h.now)) { e in XCTAssertEqual(e as? IPAM.ReclaimError, .ownsNothing(c)) }
        h.up.remove(b); h.updateMembership()
        // Two voters: b allocated without confirmation, so only a forced reclaim may take it.
        XCTAssertThrowsError(try h.reclaim(a, b)) { XCTAssertEqual($0 as? IPAM.ReclaimError, .holdingsUnknown(b)) }
        try h.reclaim(a, b, force: true)
        XCTAssertEqual(h.nodes[a]!.ring!.owners, [a])
        XCTAssertEqual(h.nodes[a]!.ownFree, 65534 - 1)
    }

    func testReturningNodeDetectsTakeoverAndReportsConflicts() throws {
        var h = try cluster([a, b])
        for k in 0..<3 { _ = try h.allocate(b, "b\(k)") }
        h.sync()
        let held = h.nodes[b]!.allocations
        // b is partitioned away, keeps allocating in its own ranges (two voters: no confirmation),
        // and an admin reclaims it on a meanwhile (two voters never reclaim automatically).
        h.group[b] = 1; h.updateMembership()
        for k in 3..<8 { _ = try h.allocate(b, "b\(k)") }
        h.now = h.now + .seconds(601)
        h.updateMembership(); h.tickAll(); h.sync()
        XCTAssertTrue(h.nodes[a]!.ring!.owners.contains(b), "a 2-voter cluster does not reclaim automatically")
        XCTAssertThrowsError(try h.reclaim(a, b)) { XCTAssertEqual($0 as? IPAM.ReclaimError, .holdingsUnknown(b)) }
        try h.reclaim(a, b, force: true); h.sync()
        XCTAssertEqual(h.nodes[a]!.ring!.owners, [a])
        // a hands out addresses from the reclaimed space, possibly the same ones.
        for k in 0..<5 { _ = try h.allocate(a, "a\(k)") }
        // Heal: b learns its ranges are owned by a at a higher version.
        h.group[b] = 0; h.updateMembership(); h.sync()
        XCTAssertTrue(h.duplicateHolders().isEmpty)
        XCTAssertEqual(Set(h.conflicts[b]?.map(\.handle) ?? []), Set((0..<8).map { "b\($0)" }), "b never claimed an overlay address; all 8 handles conflict")
        XCTAssertTrue(h.nodes[b]!.allocations.isEmpty, "b stops using every address it lost")
        XCTAssertEqual(h.nodes[b]!.conflicts.count, 8)
        for (handle, addr) in held { XCTAssertEqual(h.nodes[b]!.conflicts[handle], addr) }
        XCTAssertThrowsError(try h.nodes[b]!.allocate(handle: "b0", now: h.now)) { e in
            XCTAssertEqual(e as? IPAM.AllocationError, .handleInConflict("b0"))
        }
        // b can release the conflicts and get fresh space by donation.
        for handle in h.nodes[b]!.conflicts.keys.sorted() { try h.release(b, handle) }
        let r = try h.allocate(b, "new")
        h.sync()
        let addr: UInt32? = { if case .allocated(let x) = r { return x }; return h.completed[b]?.last?.address }()
        XCTAssertNotNil(addr)
        XCTAssertEqual(h.nodes[a]!.owner(of: addr!), b)
        XCTAssertTrue(h.duplicateHolders().isEmpty)
    }

    func testSeparatelyCreatedClustersNeverMerge() throws {
        var x = IPAM.Instance(me: a, settings: .fast, seed: 1)
        var y = IPAM.Instance(me: b, settings: .fast, seed: 2)
        _ = x.createCluster(subnet: .default, now: t0)
        _ = y.createCluster(subnet: .default, now: t0)
        let before = x.snapshot
        let out = x.onRingDelta(y.fullStateMessage()!, from: b, now: t0)
        XCTAssertEqual(out.count, 2)
        guard case .rejected(b, .ring(.differentCluster(let ours, let theirs))) = out[0] else { return XCTFail("\(out)") }
        XCTAssertEqual(ours, x.ring!.cluster)
        XCTAssertEqual(theirs, y.ring!.cluster)
        XCTAssertEqual(x.snapshot, before)
        // Donation requests across clusters are refused too.
        let out2 = x.onMessage(IPAM.Message.donationRequest(cluster: y.ring!.cluster, wanted: 1).encoded(), from: b, now: t0)
        guard case .rejected(b, .ring(.differentCluster)) = out2.first else { return XCTFail("\(out2)") }
        XCTAssertEqual(x.snapshot, before)
    }

    func testRestartKeepsStateAndGarbageIsRejected() throws {
        var i = try single()
        _ = try i.allocate(handle: "keep", now: t0)
        var j = IPAM.Instance(me: a, settings: .fast, seed: 5, restoring: i.snapshot)
        XCTAssertEqual(try j.allocate(handle: "keep", now: t0).outcome, .allocated(i.allocations["keep"]!))
        let x = allocated(try j.allocate(handle: "other", now: t0))!
        XCTAssertFalse(i.allocations.values.contains(x))
        let out = j.onMessage([1, 99, 0], from: b, now: t0)
        XCTAssertEqual(out, [.rejected(from: b, reason: .wire(.unknownType(99)))])
    }

    func testOverlayAddressLostToTakeoverIsClaimedAfresh() throws {
        var i = try single()
        let ring = i.ring!
        // Another node (c) took over the first half at a takeover version; we keep the rest.
        let taken = IPAM.Entry(token: ring.subnet.base, owner: c, version: 1 + IPAM.Instance.takeoverStride, free: 100)
        let rest = IPAM.Entry(token: ring.subnet.base + 0x8000, owner: a, version: 1, free: 0x7FFF)
        let out = i.onRingDelta(IPAM.Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: [taken, rest]).encoded(), from: c, now: t0)
        XCTAssertTrue(out.contains(.conflict(IPAM.Conflict(handle: IPAM.Instance.overlayHandle, address: 0x0A2A_0001, owner: c))))
        XCTAssertNil(i.overlayAddress)
        let r = try i.claimOverlayAddress(now: t0)
        XCTAssertEqual(r.outcome, .allocated(0x0A2A_8000))
        XCTAssertEqual(r.directives.first, .persist(.release(handle: IPAM.Instance.overlayHandle)))
        XCTAssertTrue(i.conflicts.isEmpty)
    }
}
