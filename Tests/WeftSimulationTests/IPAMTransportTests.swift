@testable import WeftCore
@testable import WeftTestKit
import XCTest

/// How IPAM frames travel (docs/ipam.md "Transport"), and the overlay claim's back-off
/// (docs/node.md), with whole nodes in the simulator.
final class IPAMTransportTests: XCTestCase {
    /// The message kind inside an authenticated frame (`version ‖ sender ‖ counter ‖ message ‖ tag`).
    static func kind(ofFrame frame: [UInt8]) -> IPAM.Message.Kind? {
        Node.Instance.ipamFrameMessage(frame).flatMap { IPAM.Message.Kind.of(encoded: $0) }
    }

    struct Sent { var host: Int; var kind: IPAM.Message.Kind; var datagram: Bool; var bytes: Int }

    static func record(_ sim: NodeSimulator) -> () -> [Sent] {
        final class Box: @unchecked Sendable { var sent: [Sent] = [] }
        let box = Box()
        sim.observer = { host, effect in
            switch effect {
            case .sendIPAM(let f, _, _): if let k = kind(ofFrame: f) { box.sent.append(Sent(host: host, kind: k, datagram: false, bytes: f.count)) }
            case .sendIPAMDatagram(let f, _, _): if let k = kind(ofFrame: f) { box.sent.append(Sent(host: host, kind: k, datagram: true, bytes: f.count)) }
            default: break
            }
        }
        return { box.sent }
    }

    /// Holdings writes, acks (and the rest the allocator resends until answered) go as
    /// datagrams while they fit one; a write too large for a datagram, and every other kind
    /// (donations, ring requests), go over TCP.
    func testResentMessagesTravelAsDatagramsWhileTheyFitTheRestOverTCP() throws {
        let sim = NodeSimulator(seed: 7, subnet: try IPAM.Subnet(base: 0x0A2A_0000, prefixLength: 20))
        let sent = Self.record(sim)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(2)) }
        sim.run(for: .seconds(5))
        // Enough allocations on host 1 that its register no longer fits one datagram.
        var addresses = Set<UInt32>()
        for k in 0..<300 {
            let a = sim.allocateWaiting(1, "c\(k)")
            XCTAssertNotNil(a, "allocation c\(k) confirmed")
            if let a { addresses.insert(a) }
        }
        XCTAssertEqual(addresses.count, 300, "every address distinct")
        let limit = sim.membershipSettings.maxPayloadBytes
        let all = sent()
        XCTAssertFalse(all.isEmpty)
        for s in all {
            if s.datagram {
                XCTAssertTrue(s.kind.isResentUntilAnswered, "\(s.kind) must not go as a datagram")
                XCTAssertLessThanOrEqual(s.bytes, limit, "a datagram frame fits the payload limit")
            } else if s.kind.isResentUntilAnswered {
                XCTAssertGreaterThan(s.bytes, limit, "a \(s.kind) that fits a datagram went over TCP")
            }
        }
        let writes = all.filter { $0.kind == .holdingsWrite }
        XCTAssertTrue(writes.contains { $0.datagram }, "small holdings writes went as datagrams")
        XCTAssertTrue(writes.contains { !$0.datagram }, "a holdings write with 300 addresses went over TCP")
        XCTAssertTrue(all.contains { $0.kind == .holdingsAck && $0.datagram }, "acks went as datagrams")
        XCTAssertTrue(all.contains { $0.kind == .donationRequest && !$0.datagram }, "donations went over TCP")
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// A fifth of all datagrams lost: allocations are still confirmed (writes and acks are
    /// resent every `resendInterval`), and nothing is duplicated.
    func testAllocationsAreConfirmedThroughDatagramLoss() throws {
        let sim = NodeSimulator(seed: 11)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(2)) }
        sim.run(for: .seconds(5))
        sim.network.loss = 0.2
        var confirmed = 0
        for k in 0..<30 where sim.allocateWaiting(k % 3, "h\(k)") != nil { confirmed += 1 }
        XCTAssertGreaterThanOrEqual(confirmed, 27, "at most a few allocations may time out at 20 % loss")
        sim.network.loss = 0
        sim.run(for: .seconds(10))
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// The wait after failed overlay claims doubles up to the maximum, each wait spread to
    /// [½, 1) of its nominal length by a per-node hash, so two nodes do not retry in step.
    func testOverlayClaimBackOffDoublesIsCappedAndSpread() throws {
        let sim = NodeSimulator(seed: 3)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(2))
        var a = try XCTUnwrap(sim.hosts[0].node), b = try XCTUnwrap(sim.hosts[1].node)
        let s = a.settings, t0 = sim.now
        var nominal = s.overlayRetryInitial
        var differed = false
        for failure in 1...10 {
            a.overlayClaimFailed(now: t0); b.overlayClaimFailed(now: t0)
            let wa = try XCTUnwrap(a.overlayClaimNotBefore) - t0, wb = try XCTUnwrap(b.overlayClaimNotBefore) - t0
            for w in [wa, wb] {
                XCTAssertGreaterThanOrEqual(w, nominal * 0.5, "failure \(failure)")
                XCTAssertLessThan(w, nominal, "failure \(failure)")
            }
            if wa != wb { differed = true }
            nominal = min(nominal * 2, s.overlayRetryMax)
        }
        XCTAssertEqual(nominal, s.overlayRetryMax, "ten failures reach the cap")
        XCTAssertTrue(differed, "two nodes' waits differ")
    }

    /// After a failed overlay claim the node sends no holdings write until its wait is over,
    /// wakes up for it, then claims again and gets an overlay address, safely.
    func testFailedOverlayClaimWaitsThenClaimsAgain() throws {
        let sim = NodeSimulator(seed: 5)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(2)) }
        sim.run(for: .seconds(5))
        let sent = Self.record(sim)
        var node = try XCTUnwrap(sim.hosts[2].node)
        XCTAssertNotNil(node.ipam.overlayAddress)
        // As if the claim had just timed out a fourth time in a row: the address is gone.
        let now = sim.now
        let effects = node.transact(now: now) { n, w in
            var ds: [IPAM.Directive] = []
            n.ipam.dropAllocation(IPAM.Instance.overlayHandle, into: &ds)
            n.run(ipam: ds, &w, now: now)
            for _ in 0..<4 { n.overlayClaimFailed(now: now) }
        }.effects
        let due = try XCTUnwrap(node.overlayClaimNotBefore)
        XCTAssertGreaterThanOrEqual(due - now, node.settings.overlayRetryInitial * 4, "a wait of several resend intervals")
        XCTAssertLessThanOrEqual(node.nextWakeup, due, "the node wakes up by the end of its wait")
        sim.hosts[2].node = node
        sim.perform(effects, host: 2)
        sim.run(until: due - .milliseconds(1))
        XCTAssertNil(sim.hosts[2].node?.ipam.overlayAddress)
        XCTAssertFalse(sent().contains { $0.host == 2 && $0.kind == .holdingsWrite }, "no claim during the wait")
        sim.run(for: .seconds(3))
        XCTAssertTrue(sent().contains { $0.host == 2 && $0.kind == .holdingsWrite }, "claimed again after the wait")
        XCTAssertNotNil(sim.hosts[2].node?.ipam.overlayAddress, "and got an overlay address")
        XCTAssertNil(sim.hosts[2].node?.overlayClaimNotBefore)
        XCTAssertNoThrow(try sim.checkSafety())
    }
}

extension IPAMTransportTests {
    /// The allocator's free-hint deltas and holdings broadcasts are keyed by the tokens and
    /// owners they cover (`IPAM.Message.gossipKey`): a stream of allocations leaves one queued
    /// item per key, not one per update. A lone node never gossips, so without keys its queue
    /// would hold two items for every tick with an allocation.
    func testAllocatorBroadcastsReplaceTheirPredecessorsInTheGossipQueue() throws {
        let sim = NodeSimulator(seed: 3)
        sim.addHost()
        sim.run(for: .seconds(3))
        let before = try XCTUnwrap(sim.hosts[0].node).membership.pendingBroadcasts
        for k in 0..<60 {
            XCTAssertNotNil(sim.allocateWaiting(0, "c\(k)"), "allocation \(k)")
            sim.run(for: .milliseconds(500))
        }
        let after = try XCTUnwrap(sim.hosts[0].node).membership.pendingBroadcasts
        XCTAssertLessThanOrEqual(after, before + 4, "60 allocations left \(after - before) more queued broadcasts")
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// What may replace what: own broadcasts of any size by their exact token/owner set; a
    /// passed-on one only when it covers one item; other kinds never.
    func testGossipKeysCoverExactlyTheTokensOrOwnersOfTheMessage() throws {
        let cluster = IPAM.ClusterID(creator: NodeID(high: 9, low: 9), nonce: 5)
        let subnet = IPAM.Subnet.default
        let a = NodeID(high: 1, low: 1), b = NodeID(high: 2, low: 2)
        func delta(_ tokens: [UInt32]) -> [UInt8] {
            IPAM.Message.ringDelta(cluster: cluster, subnet: subnet,
                                   entries: tokens.sorted().map { IPAM.Entry(token: 0x0A2A_0000 + $0 * 256, owner: a, version: 1, free: 3) }).encoded()
        }
        let one = IPAM.Message.gossipKey(encoded: delta([7]), singleItemOnly: true)
        XCTAssertNotNil(one)
        XCTAssertEqual(one, IPAM.Message.gossipKey(encoded: delta([7]), singleItemOnly: false))
        XCTAssertNotEqual(one, IPAM.Message.gossipKey(encoded: delta([8]), singleItemOnly: false))
        XCTAssertNil(IPAM.Message.gossipKey(encoded: delta([7, 9]), singleItemOnly: true), "a passed-on delta of two tokens is not keyed")
        XCTAssertNotEqual(IPAM.Message.gossipKey(encoded: delta([7, 9]), singleItemOnly: false), one, "another token set, another key")
        let holdings = IPAM.Message.holdings(cluster: cluster, subnet: subnet,
                                             registers: [IPAM.OwnedHoldings(owner: b, holdings: IPAM.Holdings(version: 3, addresses: [0x0A2A_0001]))]).encoded()
        let hk = try XCTUnwrap(IPAM.Message.gossipKey(encoded: holdings, singleItemOnly: true))
        XCTAssertNotEqual(hk, one, "holdings and deltas never share a key")
        XCTAssertNil(IPAM.Message.gossipKey(encoded: IPAM.Message.donationRequest(cluster: cluster, wanted: 4).encoded(), singleItemOnly: false))
        XCTAssertNil(IPAM.Message.gossipKey(encoded: [1, 2, 3], singleItemOnly: false), "garbage is not keyed")
    }
}
