@testable import WeftCore
import XCTest

final class TunnelInstanceTests: XCTestCase {
    let idA = TunnelPair.idA, idB = TunnelPair.idB
    let endA = TunnelPair.endA, endB = TunnelPair.endB

    func testFullHandshakeProducesMatchingKeys() throws {
        var pair = TunnelPair()
        let initiation = pair.a.connect(idB, now: at(1))
        XCTAssertEqual(initiation.sent(kind: .handshakeInitiation).count, 1)
        XCTAssertEqual(pair.a.status(of: idB, now: at(1))?.state, .handshaking(attempt: 1))

        let toB = pair.b.onHandshakeInitiation(initiation.sent[0], from: endA, now: at(1))
        XCTAssertEqual(toB.sent(kind: .handshakeResponse).count, 1)
        XCTAssertTrue(toB.established.isEmpty, "responder waits for key confirmation")

        let toA = pair.a.onHandshakeResponse(toB.sent[0], from: endB, now: at(1))
        XCTAssertEqual(toA.established.count, 1)
        XCTAssertEqual(toA.sent(kind: .data).count, 1, "initiator confirms with a keepalive")

        let confirm = pair.b.onData(toA.sent[0], from: endA, now: at(1))
        XCTAssertEqual(confirm.established.count, 1)
        XCTAssertTrue(confirm.delivered.isEmpty, "a keepalive delivers nothing")

        let infoA = toA.established[0], infoB = confirm.established[0]
        XCTAssertEqual(infoA.remoteIndex, infoB.localIndex)
        XCTAssertEqual(infoB.remoteIndex, infoA.localIndex)
        XCTAssertTrue(infoA.isInitiator); XCTAssertFalse(infoB.isInitiator)

        let snapA = try XCTUnwrap(pair.a.handOffSession(localIndex: infoA.localIndex, now: at(1)))
        let snapB = try XCTUnwrap(pair.b.handOffSession(localIndex: infoB.localIndex, now: at(1)))
        XCTAssertEqual(snapA.sendKey.secret, snapB.receiveKey.secret)
        XCTAssertEqual(snapA.receiveKey.secret, snapB.sendKey.secret)
        XCTAssertNotEqual(snapA.sendKey.secret, snapA.receiveKey.secret, "each direction has its own key")
        XCTAssertEqual(snapA.sendCounters.lowerBound, 1, "the keepalive used counter 0")
        XCTAssertEqual(pair.a.status(of: idB, now: at(2))?.state, .established(since: at(1)))
        XCTAssertEqual(pair.b.status(of: idA, now: at(2))?.state, .established(since: at(1)))
        XCTAssertFalse("\(snapA.sendKey)".contains("0x"), "keys print redacted")
        XCTAssertTrue("\(snapA.sendKey)".contains("redacted"))
        var dumped = ""
        dump(snapA, to: &dumped)
        snapA.sendKey.secret.withUnsafeBytes { key in
            XCTAssertFalse(dumped.contains(Hex.encode(key.prefix(4))), "dump() must not reveal key bytes")
            XCTAssertFalse(dumped.contains("\(key[0]), \(key[1]), \(key[2])"))
        }
    }

    func testDataFlowsBothWays() {
        var pair = TunnelPair()
        pair.establish(now: at(1))
        let packet = Array("hello from A".utf8)
        let out = pair.a.onOutbound(packet, to: idB, now: at(2))
        XCTAssertEqual(out.sent(kind: .data).count, 1)
        XCTAssertEqual(out.sent[0].count, packet.count + 32)
        XCTAssertEqual(pair.b.onData(out.sent[0], from: endA, now: at(2)).delivered, [packet])
        let back = pair.b.onOutbound([9, 9, 9], to: idA, now: at(2))
        XCTAssertEqual(pair.a.onData(back.sent[0], from: endB, now: at(2)).delivered, [[9, 9, 9]])
        XCTAssertEqual(pair.b.onData(out.sent[0], from: endA, now: at(2)).drops, [.replayedPacket])
        var tampered = out.sent[0]; tampered[20] ^= 1
        XCTAssertEqual(pair.b.onData(tampered, from: endA, now: at(2)).drops, [.replayedPacket], "same counter: rejected before decrypting")
        let second = pair.a.onOutbound(packet, to: idB, now: at(2)).sent[0]
        var tampered2 = second; tampered2[20] ^= 1
        XCTAssertEqual(pair.b.onData(tampered2, from: endA, now: at(2)).drops, [.authenticationFailed])
        XCTAssertEqual(pair.b.onData(second, from: endA, now: at(2)).delivered, [packet], "a forged packet did not burn the counter")
    }

    func testReplayedInitiationIsRejected() {
        var pair = TunnelPair()
        let initiation = pair.a.connect(idB, now: at(1)).sent[0]
        XCTAssertEqual(pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1)).sent.count, 1)
        let replay = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(3))
        XCTAssertEqual(replay.drops, [.replayedInitiation])
        XCTAssertTrue(replay.sent.isEmpty)
    }

    func testOlderInitiationIsRejectedAfterANewerOne() {
        var pair = TunnelPair()
        let first = pair.a.connect(idB, now: at(1)).sent[0]
        let second = pair.a.onTick(now: at(7)).sent[0]  // retry, later timestamp
        XCTAssertEqual(pair.b.onHandshakeInitiation(second, from: endA, now: at(7)).sent.count, 1)
        XCTAssertEqual(pair.b.onHandshakeInitiation(first, from: endA, now: at(7)).drops, [.replayedInitiation])
    }

    func testWrongClusterKeyGetsNoReplyAndNoSession() {
        let otherPSK = Tunnel.PresharedKey(secret: Tunnel.Secret([UInt8](repeating: 0x43, count: 32)))
        var pair = TunnelPair(pskB: otherPSK)
        let initiation = pair.a.connect(idB, now: at(1)).sent[0]
        let out = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1))
        XCTAssertEqual(out.drops, [.badMAC1])
        XCTAssertTrue(out.sent.isEmpty)
        let loaded = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1), underLoad: true)
        XCTAssertTrue(loaded.sent.isEmpty, "not even a cookie reply")
        XCTAssertEqual(pair.b.status(of: idA, now: at(2))?.state, .idle)
    }

    func testTamperedResponseIsRejectedWithoutSession() {
        var pair = TunnelPair()
        let initiation = pair.a.connect(idB, now: at(1)).sent[0]
        var response = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1)).sent[0]
        response[44] ^= 0x80  // inside AEAD(empty)
        // Re-MAC so the packet passes MAC1 and reaches the handshake cryptography.
        let suite = pair.a.suite
        let mac1Key = Tunnel.Handshake.mac1Key(suite, psk: TunnelPair.psk, staticKey: TunnelPair.keysA.publicKey)
        response.replaceSubrange(60..<76, with: suite.mac(key: mac1Key, message: Array(response[0..<60])))
        let out = pair.a.onHandshakeResponse(response, from: endB, now: at(1))
        XCTAssertEqual(out.drops, [.handshakeFailed])
        XCTAssertTrue(out.established.isEmpty)
        XCTAssertTrue(out.sent.isEmpty)
    }

    /// The PSK (cluster key) is mixed into the session: a responder with another PSK produces a
    /// response the initiator cannot accept, even with matching static keys.
    func testHandshakeWithDifferentPSKFails() throws {
        let suite = FakeTunnelSuite(seed: 9)
        let other = Tunnel.PresharedKey(secret: Tunnel.Secret([UInt8](repeating: 0x43, count: 32)))
        let ts = Tunnel.Timestamp(seconds: 1, nanoseconds: 0)
        let (initiation, iState) = try XCTUnwrap(Tunnel.Handshake.createInitiation(
            suite, local: TunnelPair.keysA, remoteStatic: TunnelPair.keysB.publicKey,
            ephemeral: suite.generateEphemeralKeyPair(), senderIndex: 1, timestamp: ts))
        let (rState, gotTS) = try XCTUnwrap(Tunnel.Handshake.consumeInitiation(suite, initiation, local: TunnelPair.keysB))
        XCTAssertEqual(gotTS, ts)
        XCTAssertEqual(rState.remoteStatic, TunnelPair.keysA.publicKey)
        for (psk, shouldWork) in [(TunnelPair.psk, true), (other, false)] {
            let (response, rKeys) = try XCTUnwrap(Tunnel.Handshake.createResponse(
                suite, rState, psk: psk, ephemeral: suite.generateEphemeralKeyPair(), senderIndex: 2, receiverIndex: 1))
            let iKeys = Tunnel.Handshake.consumeResponse(suite, response, state: iState, local: TunnelPair.keysA, psk: TunnelPair.psk)
            XCTAssertEqual(iKeys != nil, shouldWork)
            if let iKeys {
                XCTAssertEqual(iKeys.initiatorToResponder, rKeys.initiatorToResponder)
                XCTAssertEqual(iKeys.responderToInitiator, rKeys.responderToInitiator)
            }
        }
        // The initiation is bound to the responder's static key.
        XCTAssertNil(Tunnel.Handshake.consumeInitiation(suite, initiation, local: TunnelPair.keysA))
    }

    func testUnknownStaticKeyGetsNoReply() {
        var pair = TunnelPair(bKnowsA: false)
        let initiation = pair.a.connect(idB, now: at(1)).sent[0]
        let out = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1))
        XCTAssertEqual(out.drops, [.unknownPeer])
        XCTAssertTrue(out.sent.isEmpty)
        XCTAssertNil(pair.b.knownPeer(staticKey: TunnelPair.keysA.publicKey))
    }

    func testRekeyAt120sByDesignatedSideOnly() {
        var pair = TunnelPair()
        pair.establish(now: at(0))
        XCTAssertEqual(pair.a.nextWakeup, at(120))
        XCTAssertTrue(pair.a.onTick(now: at(119.9)).sent.isEmpty)
        XCTAssertTrue(pair.b.onTick(now: at(120)).sent.isEmpty, "B (higher NodeID) does not rekey at 120 s")
        let rekey = pair.a.onTick(now: at(120))
        XCTAssertEqual(rekey.sent(kind: .handshakeInitiation).count, 1, "A (lower NodeID) rekeys at 120 s")
        XCTAssertEqual(pair.a.status(of: idB, now: at(120))?.state, .rekeying(attempt: 1))
        let log = pair.run(rekey, fromA: true, now: at(120))
        XCTAssertEqual(log.a.established.count, 1)
        XCTAssertEqual(log.b.established.count, 1)
        XCTAssertEqual(pair.a.status(of: idB, now: at(121))?.state, .established(since: at(120)))
        XCTAssertTrue(pair.b.onTick(now: at(200)).sent(kind: .handshakeInitiation).isEmpty, "B's new session is 80 s old")
    }

    func testNonDesignatedSideFallsBackWhenTheOtherStaysSilent() {
        var pair = TunnelPair()
        pair.establish(now: at(0))
        XCTAssertEqual(pair.b.nextWakeup, at(180), "an idle responder only waits for its session to expire")
        _ = pair.b.onOutbound([7], to: idA, now: at(100))  // B has traffic; A (designated) stays silent
        XCTAssertEqual(pair.b.nextWakeup, at(150))
        XCTAssertTrue(pair.b.onTick(now: at(149)).sent.isEmpty)
        XCTAssertEqual(pair.b.onTick(now: at(150)).sent(kind: .handshakeInitiation).count, 1)
    }

    /// Traffic-driven peers (the node never calls `connect`): no rekey while idle, the session
    /// expires, and the next packet starts a fresh handshake — a quiet mesh stays quiet.
    func testIdlePeerIsNotRekeyedAndItsSessionExpires() {
        var pair = TunnelPair()
        let first = pair.a.onOutbound([1], to: idB, now: at(0))
        let log = pair.run(first, fromA: true, now: at(0))
        XCTAssertEqual(log.a.established.count, 1)
        XCTAssertEqual(log.b.delivered, [[1]])
        XCTAssertEqual(pair.a.nextWakeup, at(180), "no rekey wake-up for an idle session, only its expiry")
        XCTAssertTrue(pair.a.onTick(now: at(120)).sent.isEmpty, "idle: no rekey at 120 s")
        XCTAssertEqual(pair.a.onTick(now: at(180)).retired.count, 1, "the idle session expires")
        XCTAssertTrue(pair.a.onTick(now: at(200)).sent.isEmpty, "and nothing re-handshakes by itself")
        XCTAssertNil(pair.a.nextWakeup)
        XCTAssertEqual(pair.a.status(of: idB, now: at(200))?.state, .idle)
        let again = pair.a.onOutbound([2], to: idB, now: at(300))
        XCTAssertEqual(again.sent(kind: .handshakeInitiation).count, 1, "the next packet starts a new handshake")
    }

    /// Activity seen only through the data plane's counter reports keeps the rekey schedule.
    func testActivityReportedByTheDataPlaneKeepsRekeying() {
        var pair = TunnelPair()
        let log = pair.run(pair.a.onOutbound([1], to: idB, now: at(0)), fromA: true, now: at(0))
        let info = log.a.established[0]
        let snap = pair.a.handOffSession(localIndex: info.localIndex, now: at(0))!
        _ = pair.a.onDataPlaneReport(localIndex: info.localIndex, nextSendCounter: snap.sendCounters.lowerBound, now: at(30))
        XCTAssertEqual(pair.a.nextWakeup, at(180), "a report without progress is not activity")
        _ = pair.a.onDataPlaneReport(localIndex: info.localIndex, nextSendCounter: snap.sendCounters.lowerBound + 500, now: at(60))
        XCTAssertEqual(pair.a.nextWakeup, at(120))
        XCTAssertEqual(pair.a.onTick(now: at(120)).sent(kind: .handshakeInitiation).count, 1, "active: rekeyed at 120 s")
    }

    func testSimultaneousInitiationResolvesToOneSession() {
        for aFirst in [true, false] {
            var pair = TunnelPair()
            let fromA = pair.a.onOutbound([1], to: idB, now: at(1)).sent[0]
            let fromB = pair.b.onOutbound([2], to: idA, now: at(1)).sent[0]
            var logA: [Tunnel.Directive] = [], logB: [Tunnel.Directive] = []
            if aFirst {
                let r = pair.b.onHandshakeInitiation(fromA, from: endA, now: at(1))   // B yields
                XCTAssertEqual(r.sent(kind: .handshakeResponse).count, 1)
                let c = pair.a.onHandshakeInitiation(fromB, from: endB, now: at(1))   // A wins
                XCTAssertEqual(c.drops, [.initiationCollision]); XCTAssertTrue(c.sent.isEmpty)
                let l = pair.run(r, fromA: false, now: at(1)); logA = l.a; logB = l.b
            } else {
                let c = pair.a.onHandshakeInitiation(fromB, from: endB, now: at(1))
                XCTAssertEqual(c.drops, [.initiationCollision])
                let r = pair.b.onHandshakeInitiation(fromA, from: endA, now: at(1))
                let l = pair.run(r, fromA: false, now: at(1)); logA = l.a; logB = l.b
            }
            XCTAssertEqual(logA.established.count, 1, "aFirst \(aFirst)")
            XCTAssertEqual(logB.established.count, 1)
            XCTAssertEqual(logA.established[0].localIndex, logB.established[0].remoteIndex)
            XCTAssertEqual(logB.delivered, [[1]], "A's queued packet")
            XCTAssertEqual(logA.delivered, [[2]], "B's queued packet, flushed on confirmation")
            XCTAssertEqual(pair.b.status(of: idA, now: at(2))?.state, .established(since: at(1)), "B's own handshake was abandoned")
            XCTAssertTrue(pair.b.onTick(now: at(10)).sent.isEmpty, "no stale retry from the abandoned handshake")
        }
    }

    func testPreviousSessionDecryptsUntilNewOneIsConfirmed() {
        var pair = TunnelPair()
        pair.establish(now: at(0))
        let inFlightAtoB = pair.a.onOutbound([0xA1], to: idB, now: at(119)).sent[0]
        let inFlightBtoA = pair.b.onOutbound([0xB1], to: idA, now: at(119)).sent[0]
        let initiation = pair.a.onTick(now: at(120)).sent[0]
        let response = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(120)).sent[0]
        // B has the new session unconfirmed: it still sends under the old one.
        let fromBOld = pair.b.onOutbound([0xB2], to: idA, now: at(120)).sent[0]
        let established = pair.a.onHandshakeResponse(response, from: endB, now: at(120))
        XCTAssertEqual(established.established.count, 1)
        let keepalive = established.sent[0]
        // A decrypts old-session packets with its previous session.
        XCTAssertEqual(pair.a.onData(inFlightBtoA, from: endB, now: at(121)).delivered, [[0xB1]])
        XCTAssertEqual(pair.a.onData(fromBOld, from: endB, now: at(121)).delivered, [[0xB2]])
        // B decrypts A's in-flight old packet with its current (old) session, then confirms.
        XCTAssertEqual(pair.b.onData(inFlightAtoB, from: endA, now: at(121)).delivered, [[0xA1]])
        XCTAssertEqual(pair.b.onData(keepalive, from: endA, now: at(121)).established.count, 1)
        // B now sends under the new session, and A's old in-flight still opens at B (previous).
        let fromBNew = pair.b.onOutbound([0xB3], to: idA, now: at(122)).sent[0]
        XCTAssertEqual(pair.a.onData(fromBNew, from: endB, now: at(122)).delivered, [[0xB3]])
        XCTAssertNotEqual(Array(fromBNew[4..<8]), Array(fromBOld[4..<8]), "different receiver index")
        // The old session dies at 180 s after its creation.
        let tick = pair.a.onTick(now: at(180))
        XCTAssertEqual(tick.retired.count, 1)
    }

    func testSessionRefusedAfter180s() {
        var pair = TunnelPair()
        pair.establish(now: at(0))
        let late = pair.a.onOutbound([1], to: idB, now: at(179)).sent[0]
        XCTAssertEqual(pair.b.onData(late, from: endA, now: at(180)).drops, [.sessionExpired])
        let out = pair.a.onOutbound([2], to: idB, now: at(180))
        XCTAssertTrue(out.sent(kind: .data).isEmpty, "no data under an expired session")
        XCTAssertEqual(out.sent(kind: .handshakeInitiation).count, 1, "a new handshake instead")
        XCTAssertEqual(pair.a.status(of: idB, now: at(180))?.queuedPackets, 1)
        XCTAssertEqual(pair.b.onTick(now: at(180)).retired.count, 1)
    }

    func testRetriesForeverWithJitterAndBackoff() {
        var pair = TunnelPair()
        var times: [Instant] = []
        times.append(at(0))
        XCTAssertEqual(pair.a.connect(idB, now: at(0)).sent.count, 1)
        var now = at(0)
        for _ in 0..<40 {
            guard let wake = pair.a.nextWakeup else { return XCTFail("no wakeup while failing") }
            now = wake
            let out = pair.a.onTick(now: now)
            if !out.sent(kind: .handshakeInitiation).isEmpty { times.append(now) }
        }
        let gaps = zip(times.dropFirst(), times).map { ($0 - $1).seconds }
        XCTAssertGreaterThanOrEqual(gaps.count, 30)
        for g in gaps.prefix(3) { XCTAssertEqual(g, 5, accuracy: 0.335) }
        XCTAssertEqual(gaps[3], 10, accuracy: 0.335)
        XCTAssertEqual(gaps[4], 20, accuracy: 0.335)
        for g in gaps.dropFirst(5) { XCTAssertEqual(g, 30, accuracy: 0.335, "bounded backoff") }
        XCTAssertGreaterThan(Set(gaps.map { Int($0 * 1000) }).count, 5, "jitter varies")
        guard case .failing(let attempts, let error)? = pair.a.status(of: idB, now: now)?.state else {
            return XCTFail("state should be failing, is \(String(describing: pair.a.status(of: idB, now: now)?.state))")
        }
        XCTAssertEqual(attempts, times.count - 1)
        XCTAssertEqual(error, .noResponse)
        XCTAssertGreaterThan(now, at(600), "still retrying after ten minutes")
        // And it recovers as soon as B answers.
        let retry = pair.a.onTick(now: pair.a.nextWakeup!)
        let log = pair.run(retry, fromA: true, now: pair.a.nextWakeup ?? now)
        XCTAssertEqual(log.a.established.count, 1)
    }

    func testQueuedPacketsFlushedOnEstablishment() {
        var settings = Tunnel.Settings()
        settings.maxQueuedPackets = 4
        var pair = TunnelPair(settings: settings)
        var first: [Tunnel.Directive] = []
        for i in 0..<6 {
            let out = pair.a.onOutbound([UInt8(i)], to: idB, now: at(1))
            if i == 0 { first = out; XCTAssertEqual(out.sent(kind: .handshakeInitiation).count, 1) }
            else { XCTAssertTrue(out.sent.isEmpty, "one handshake, not one per packet") }
            if i >= 4 { XCTAssertEqual(out.drops, [.queueOverflow]) }
        }
        XCTAssertEqual(pair.a.status(of: idB, now: at(1))?.queuedPackets, 4)
        let log = pair.run(first, fromA: true, now: at(1))
        XCTAssertEqual(log.a.sent(kind: .data).count, 4, "queue flushed instead of a keepalive")
        XCTAssertEqual(log.b.delivered, [[2], [3], [4], [5]], "oldest dropped, order kept")
        XCTAssertEqual(pair.a.status(of: idB, now: at(1))?.queuedPackets, 0)
    }

    func testRateLimitPerSource() {
        var results: [[Tunnel.Directive]] = []
        // Seven distinct initiations from A's address at the same instant: burst 5.
        var fresh = TunnelPair()
        var inits: [[UInt8]] = []
        inits.append(fresh.a.connect(idB, now: at(0)).sent[0])
        for _ in 1..<7 { inits.append(fresh.a.onTick(now: fresh.a.nextWakeup!).sent[0]) }
        for m in inits { results.append(fresh.b.onHandshakeInitiation(m, from: endA, now: at(50))) }
        XCTAssertEqual(results.prefix(5).map { $0.sent.count }, [1, 1, 1, 1, 1])
        XCTAssertEqual(results[5].drops, [.rateLimited])
        XCTAssertTrue(results[5].sent.isEmpty)
        // Another source is not affected; after a second the first one has tokens again.
        let otherSource = Endpoint("192.0.2.99:7946")!
        XCTAssertEqual(fresh.b.onHandshakeInitiation(inits[6], from: otherSource, now: at(50)).sent.count, 1)
    }

    func testCookieReplyUnderLoadThenMAC2Accepted() {
        var pair = TunnelPair()
        let initiation = pair.a.connect(idB, now: at(1)).sent[0]
        let cookieOut = pair.b.onHandshakeInitiation(initiation, from: endA, now: at(1), underLoad: true)
        XCTAssertEqual(cookieOut.sent(kind: .cookieReply).count, 1, "under load: a cookie, no response")
        XCTAssertEqual(cookieOut.sent.count, 1)
        XCTAssertEqual(pair.b.status(of: idA, now: at(1))?.lastHandshake, nil, "no handshake state was created")
        XCTAssertEqual(pair.a.onCookieReply(cookieOut.sent[0], from: endB, now: at(1)), [])
        var tamperedCookie = cookieOut.sent[0]; tamperedCookie[40] ^= 1
        XCTAssertEqual(pair.a.onCookieReply(tamperedCookie, from: endB, now: at(1)).drops, [.badCookieReply])

        let retry = pair.a.onTick(now: pair.a.nextWakeup!)
        let withMAC2 = retry.sent[0]
        XCTAssertNotEqual(Array(withMAC2[132..<148]), [UInt8](repeating: 0, count: 16), "MAC2 filled from the cookie")
        // The cookie is bound to A's address: from elsewhere it is not valid.
        let elsewhere = pair.b.onHandshakeInitiation(withMAC2, from: Endpoint("192.0.2.1:9999")!, now: at(7), underLoad: true)
        XCTAssertEqual(elsewhere.sent(kind: .cookieReply).count, 1)
        let accepted = pair.b.onHandshakeInitiation(withMAC2, from: endA, now: at(7), underLoad: true)
        XCTAssertEqual(accepted.sent(kind: .handshakeResponse).count, 1, "valid MAC2 is served under load")
    }

    func testAutomaticLoadDetection() {
        var settings = Tunnel.Settings()
        settings.initiationsPerSecondBeforeLoad = 1
        settings.initiationBurstBeforeLoad = 2
        var pair = TunnelPair(settings: settings)
        var inits: [[UInt8]] = []
        for i in 0..<3 {
            let t = at(Double(i) * 6)
            inits.append(i == 0 ? pair.a.connect(idB, now: t).sent[0] : pair.a.onTick(now: t).sent[0])
        }
        let outs = inits.map { pair.b.onHandshakeInitiation($0, from: endA, now: at(20)) }
        XCTAssertEqual(outs[0].sent(kind: .handshakeResponse).count, 1)
        XCTAssertEqual(outs[1].sent(kind: .handshakeResponse).count, 1)
        XCTAssertEqual(outs[2].sent(kind: .cookieReply).count, 1, "third initiation within the burst: under load")
    }

    func testHandOffStopsTheInstanceAndSnapshotInteroperates() throws {
        var pair = TunnelPair()
        let first = pair.a.connect(idB, now: at(1))
        let log = pair.run(first, fromA: true, now: at(1))
        let info = try XCTUnwrap(log.a.established.first)
        let snap = try XCTUnwrap(pair.a.handOffSession(localIndex: info.localIndex, now: at(2)))
        XCTAssertNil(pair.a.handOffSession(localIndex: info.localIndex, now: at(2)), "handed off once")
        XCTAssertEqual(snap.rejectAfter, at(181))
        // The data plane seals with its own counter from the lease.
        let suite = pair.a.suite
        let payload: [UInt8] = Array(repeating: 0x5A, count: 100)
        var datagram = [UInt8](repeating: 0, count: payload.count + Tunnel.dataOverhead)
        let n = datagram.withUnsafeMutableBytes { o in
            payload.withUnsafeBytes { Tunnel.sealData(suite: suite, key: snap.sendKey, receiverIndex: snap.remoteIndex,
                                                      counter: snap.sendCounters.lowerBound, plaintext: $0, into: o) }
        }
        XCTAssertEqual(n, datagram.count)
        XCTAssertEqual(pair.b.onData(datagram, from: endA, now: at(2)).delivered, [payload])
        // B → A under the handed-off session: the instance refuses; the snapshot opens it.
        let fromB = pair.b.onOutbound([7, 7], to: idA, now: at(2)).sent[0]
        XCTAssertEqual(pair.a.onData(fromB, from: endB, now: at(2)).drops, [.sessionHandedOff])
        let header = try Tunnel.DataHeader(parsing: fromB)
        XCTAssertEqual(header.receiverIndex, snap.localIndex)
        var window = snap.replayWindow
        XCTAssertTrue(window.wouldAccept(header.counter))
        var plain = [UInt8](repeating: 0, count: fromB.count - Tunnel.dataOverhead)
        let opened = plain.withUnsafeMutableBytes { o in
            fromB.withUnsafeBytes { Tunnel.openData(suite: suite, key: snap.receiveKey, header: header, packet: $0, into: o) }
        }
        XCTAssertEqual(opened, 2)
        XCTAssertEqual(plain, [7, 7])
        XCTAssertTrue(window.accept(header.counter))
        XCTAssertFalse(window.accept(header.counter))
    }

    func testMessageCountRekeyAndCounterLimit() {
        var settings = Tunnel.Settings()
        settings.rekeyAfterMessages = 5
        settings.rejectAfterMessages = 8
        var pair = TunnelPair(settings: settings)
        pair.establish(now: at(1))  // keepalive used counter 0
        var initiations = 0
        var dataSent = 0
        for i in 0..<10 {
            let out = pair.a.onOutbound([UInt8(i)], to: idB, now: at(2))
            initiations += out.sent(kind: .handshakeInitiation).count
            dataSent += out.sent(kind: .data).count
        }
        XCTAssertEqual(initiations, 1, "one rekey when the count is reached, not one per packet")
        XCTAssertEqual(dataSent, 7, "counters 1...7; 8 is the reject limit")
        XCTAssertEqual(pair.a.status(of: idB, now: at(2))?.queuedPackets, 3)
    }

    func testResponderInitiatesWhenItsSessionIsNeverConfirmed() {
        var pair = TunnelPair()
        let initiation = pair.a.connect(idB, now: at(0)).sent[0]
        XCTAssertEqual(pair.b.onHandshakeInitiation(initiation, from: endA, now: at(0)).sent.count, 1)
        // The response (and so A's keepalive) is lost; B has traffic for A.
        let queued = pair.b.onOutbound([1], to: idA, now: at(1))
        XCTAssertTrue(queued.sent.isEmpty, "B waits for the confirmation that may be in flight")
        XCTAssertEqual(pair.b.nextWakeup, at(5))
        XCTAssertEqual(pair.b.onTick(now: at(5)).sent(kind: .handshakeInitiation).count, 1)
    }

    func testPeerRemovalRetiresSessions() {
        var pair = TunnelPair()
        pair.establish(now: at(1))
        let out = pair.a.removePeer(idB)
        XCTAssertEqual(out.retired.count, 1)
        XCTAssertNil(pair.a.status(of: idB, now: at(1)))
        XCTAssertEqual(pair.a.onOutbound([1], to: idB, now: at(1)).drops, [.unknownPeer])
    }

    func testNoEndpointIsReportedAndRetried() {
        var a = TunnelPair.makeInstance(id: idA, keys: TunnelPair.keysA, psk: TunnelPair.psk, seed: 1)
        _ = a.upsertPeer(idB, staticKey: TunnelPair.keysB.publicKey, endpoint: nil)
        XCTAssertEqual(a.connect(idB, now: at(0)).drops, [.noEndpoint])
        XCTAssertEqual(a.status(of: idB, now: at(0))?.state, .failing(attempts: 1, lastError: .noEndpoint))
        XCTAssertNotNil(a.nextWakeup)
        _ = a.upsertPeer(idB, staticKey: TunnelPair.keysB.publicKey, endpoint: endB)
        XCTAssertEqual(a.onTick(now: a.nextWakeup!).sent(kind: .handshakeInitiation).count, 1)
    }

    func testTimestampsAreMonotonicAndRounded() {
        let origin = Tunnel.TimestampOrigin(wall: Tunnel.Timestamp(seconds: 100, nanoseconds: 999_999_999), instant: at(10))
        let t1 = origin.timestamp(at: at(10), granularity: .nanoseconds(1 << 24))
        let t2 = origin.timestamp(at: at(11.5), granularity: .nanoseconds(1 << 24))
        XCTAssertLessThan(t1, t2)
        XCTAssertEqual(t2.seconds, 102)
        XCTAssertEqual(Tunnel.Timestamp(bytes: t2.bytes), t2)
        XCTAssertNil(Tunnel.Timestamp(bytes: [UInt8](repeating: 0, count: 12)), "below the TAI64 label")
    }
}
