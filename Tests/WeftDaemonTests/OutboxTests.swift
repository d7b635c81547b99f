import WeftCore
import XCTest

@testable import WeftDaemon

/// The outgoing-connection bound (issue 8/9: 100 booting nodes opened tens of thousands of IPAM
/// connections and died of EMFILE): never more than `maxInFlight` connections, one per peer,
/// frames to a peer in order, and every frame either started or counted as dropped.
final class OutboxTests: XCTestCase {
    private func peer(_ i: Int) -> NodeID { NodeID(bytes: [UInt8](repeating: UInt8(i), count: 16))! }

    func testOnePerPeerAndAGlobalCapInOrder() {
        var box = Outbox<Int>(limits: .init(maxInFlight: 2, perPeer: 8, maxAge: .seconds(5)))
        let t = Instant.zero
        XCTAssertEqual(box.enqueue(1, to: peer(1), now: t).map(\.item), [1])
        XCTAssertEqual(box.enqueue(2, to: peer(1), now: t).map(\.item), [], "a second frame to a busy peer waits")
        XCTAssertEqual(box.enqueue(10, to: peer(2), now: t).map(\.item), [10])
        XCTAssertEqual(box.enqueue(20, to: peer(3), now: t).map(\.item), [], "the global cap holds")
        XCTAssertEqual(box.inFlight, 2)
        // peer 1 finishes: peer 3 waited first for a slot, but peer 1's next frame is also ready;
        // one slot frees, the earliest waiter goes.
        XCTAssertEqual(box.finished(peer(1), now: t).map(\.item), [20])
        XCTAssertEqual(box.finished(peer(2), now: t).map(\.item), [2])
        XCTAssertEqual(box.waiting, 0)
        XCTAssertEqual(box.finished(peer(3), now: t).map(\.item), [])
        XCTAssertEqual(box.finished(peer(1), now: t).map(\.item), [])
        XCTAssertEqual(box.inFlight, 0)
    }

    func testAFullQueueDropsItsOldestAndStaleFramesExpire() {
        var box = Outbox<Int>(limits: .init(maxInFlight: 1, perPeer: 3, maxAge: .seconds(5)))
        _ = box.enqueue(0, to: peer(1), now: .zero)            // in flight
        for i in 1...5 { _ = box.enqueue(i, to: peer(1), now: .zero) }
        XCTAssertEqual(box.overflowed, 2, "frames 1 and 2 pushed out by 3, 4, 5")
        XCTAssertEqual(box.finished(peer(1), now: .zero + .seconds(1)).map(\.item), [3])
        XCTAssertEqual(box.finished(peer(1), now: .zero + .seconds(6)).map(\.item), [], "4 and 5 waited over 5 s")
        XCTAssertEqual(box.expired, 2)
        XCTAssertEqual(box.waiting, 0)
    }

    /// Random schedules: the invariants hold after every step, and once everything finishes,
    /// every frame was started (in order per peer) or counted as dropped.
    func testRandomSchedulesKeepTheBoundsAndLoseNothingUncounted() {
        for seed in 0..<200 {
            var rng = DeterministicRNG(seed: UInt64(seed))
            let limits = Outbox<Int>.Limits(maxInFlight: Int.random(in: 1...6, using: &rng),
                                            perPeer: Int.random(in: 1...5, using: &rng), maxAge: .seconds(3))
            var box = Outbox<Int>(limits: limits)
            var now = Instant.zero
            var inFlight: [NodeID: Int] = [:]
            var started: [NodeID: [Int]] = [:]
            var sent = 0
            func take(_ starts: [Outbox<Int>.Start]) {
                for s in starts {
                    XCTAssertNil(inFlight[s.peer], "seed \(seed): two connections to one peer")
                    inFlight[s.peer] = s.item
                    started[s.peer, default: []].append(s.item)
                }
                XCTAssertLessThanOrEqual(inFlight.count, limits.maxInFlight, "seed \(seed)")
                XCTAssertEqual(inFlight.count, box.inFlight, "seed \(seed)")
            }
            for _ in 0..<300 {
                now = now + .milliseconds(Int64.random(in: 0...400, using: &rng))
                if Bool.random(using: &rng) || inFlight.isEmpty {
                    let p = peer(Int.random(in: 1...8, using: &rng))
                    sent += 1
                    take(box.enqueue(sent, to: p, now: now))
                } else {
                    let p = inFlight.keys.sorted()[Int.random(in: 0..<inFlight.count, using: &rng)]
                    inFlight[p] = nil
                    take(box.finished(p, now: now))
                }
            }
            var rounds = 0
            while let p = inFlight.keys.sorted().first, rounds < 10_000 {
                rounds += 1
                inFlight[p] = nil
                take(box.finished(p, now: now))
            }
            XCTAssertEqual(box.waiting, 0, "seed \(seed): frames left waiting with free slots")
            let total = started.values.reduce(0) { $0 + $1.count }
            XCTAssertEqual(total + box.overflowed + box.expired, sent, "seed \(seed): a frame vanished uncounted")
            for (p, items) in started { XCTAssertEqual(items, items.sorted(), "seed \(seed): frames to \(p) out of order") }
        }
    }
}
