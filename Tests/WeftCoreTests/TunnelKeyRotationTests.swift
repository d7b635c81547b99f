import WeftCore
import XCTest

/// A cluster key rotation as the tunnels see it (docs/tunnel.md, "Key rotation"): each node
/// accepts every installed pre-shared key and initiates with its primary one.
final class TunnelKeyRotationTests: XCTestCase {
    let old = TunnelPair.psk
    let new = Tunnel.PresharedKey(secret: Tunnel.Secret([UInt8](repeating: 0x77, count: 32)))

    /// Both directions handshake while the two nodes disagree on the primary key, as long as
    /// each holds the other's primary.
    func testHandshakesWorkBothWaysWhilePrimariesDiffer() {
        for aFirst in [true, false] {
            var pair = TunnelPair()
            // Mid-rotation: A already seals with the new key, B still with the old one.
            pair.a.setPresharedKeys(aFirst ? [new, old] : [old, new])
            pair.b.setPresharedKeys(aFirst ? [old, new] : [new, old])
            let fwd = pair.run(pair.a.connect(TunnelPair.idB, now: at(1)), fromA: true, now: at(1))
            XCTAssertFalse(fwd.a.established.isEmpty, "A→B with A primary \(aFirst ? "new" : "old"): \(fwd.a.drops) \(fwd.b.drops)")
            // And B as initiator (a fresh pair, B connects).
            var back = TunnelPair()
            back.a.setPresharedKeys(aFirst ? [new, old] : [old, new])
            back.b.setPresharedKeys(aFirst ? [old, new] : [new, old])
            _ = back.b.upsertPeer(TunnelPair.idA, staticKey: TunnelPair.keysA.publicKey, endpoint: TunnelPair.endA)
            let out = back.b.connect(TunnelPair.idA, now: at(1))
            let log = back.run(out, fromA: false, now: at(1))
            XCTAssertFalse(log.b.established.isEmpty, "B→A with B primary \(aFirst ? "old" : "new"): \(log.a.drops) \(log.b.drops)")
        }
    }

    /// Once a node has removed a key, a peer that knows only that key cannot handshake with it
    /// (its initiation fails MAC1 and gets no answer), and neither can it the other way.
    func testAPeerWithOnlyTheRemovedKeyIsRefusedBothWays() {
        var pair = TunnelPair()
        pair.a.setPresharedKeys([new])
        // B has only the old key.
        let out = pair.b.connect(TunnelPair.idA, now: at(1))
        let log = pair.run(out, fromA: false, now: at(1))
        XCTAssertTrue(log.b.established.isEmpty)
        XCTAssertEqual(log.a.drops, [.badMAC1], "A drops B's initiation unanswered")
        XCTAssertTrue(log.a.sent.isEmpty, "nothing is sent back to the old-key peer")

        let out2 = pair.a.connect(TunnelPair.idB, now: at(2))
        let log2 = pair.run(out2, fromA: true, now: at(2))
        XCTAssertTrue(log2.a.established.isEmpty)
        XCTAssertEqual(log2.b.drops, [.badMAC1])
    }

    /// The whole rotation on an established tunnel: install, use, remove — the session carries
    /// packets at every step, and each rekey after a step succeeds.
    func testRotationKeepsTheTunnelAndRekeysUnderTheNewKey() {
        var pair = TunnelPair()
        pair.establish(now: at(1))
        func carries(_ label: String, now: Instant) {
            let out = pair.a.onOutbound(Array("ping \(label)".utf8), to: TunnelPair.idB, now: now)
            let log = pair.run(out, fromA: true, now: now)
            XCTAssertEqual(log.b.delivered.count, 1, "a packet gets through after \(label): \(log.b.drops)")
        }
        carries("establish", now: at(2))
        pair.a.setPresharedKeys([old, new]); pair.b.setPresharedKeys([old, new])
        carries("install", now: at(3))
        pair.b.setPresharedKeys([new, old])      // B uses first; A not yet
        carries("use on B", now: at(4))
        pair.a.setPresharedKeys([new, old])
        carries("use on A", now: at(5))
        pair.a.setPresharedKeys([new]); pair.b.setPresharedKeys([new])
        carries("remove", now: at(6))
        XCTAssertEqual(pair.a.presharedKeyCount, 1)
        // After the sessions made under the old key expire, a packet needs a new handshake,
        // which can only be under the new key.
        let later = at(6 + 181)
        let tickA = pair.run(pair.a.onTick(now: later), fromA: true, now: later)
        let tickB = pair.run(pair.b.onTick(now: later), fromA: false, now: later)
        let out = pair.a.onOutbound(Array("after expiry".utf8), to: TunnelPair.idB, now: later)
        let log = pair.run(out, fromA: true, now: later)
        let established = tickA.a.established + tickB.a.established + log.a.established
        XCTAssertFalse(established.isEmpty, "a new handshake under the new key alone: \(log.a.drops) \(log.b.drops)")
        XCTAssertTrue((tickA.b.drops + tickB.a.drops + log.a.drops + log.b.drops).allSatisfy { $0 != .badMAC1 })
        XCTAssertEqual(log.b.delivered.count, 1)
    }
}
