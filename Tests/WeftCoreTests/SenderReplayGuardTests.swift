import XCTest
@testable import WeftCore

/// Test vectors for the per-sender gossip replay window (docs/protocol.md §1).
final class SenderReplayGuardTests: XCTestCase {
    let a = NodeID(high: 1, low: 1), b = NodeID(high: 2, low: 2)

    func testAcceptOnceReorderWithinWindowRefuseOld() {
        var g = SenderReplayGuard()
        XCTAssertNil(g.check(sender: a, counter: 5000))
        XCTAssertEqual(g.check(sender: a, counter: 5000), .replayed)
        XCTAssertNil(g.check(sender: a, counter: 4990), "reordered within the window")
        XCTAssertEqual(g.check(sender: a, counter: 4990), .replayed)
        XCTAssertNil(g.check(sender: a, counter: 5000 - 1023), "the window's last slot")
        XCTAssertEqual(g.check(sender: a, counter: 5000 - 1024), .tooOld)
        XCTAssertNil(g.check(sender: b, counter: 5000), "windows are per sender")
        // Sliding: after a jump of 70, old marks move with it.
        XCTAssertNil(g.check(sender: a, counter: 5070))
        XCTAssertEqual(g.check(sender: a, counter: 5000), .replayed)
        XCTAssertEqual(g.check(sender: a, counter: 4990), .replayed)
        XCTAssertNil(g.check(sender: a, counter: 5001))
        // A jump beyond the window clears it; the old ones are then too old.
        XCTAssertNil(g.check(sender: a, counter: 1_000_000))
        XCTAssertEqual(g.check(sender: a, counter: 5070), .tooOld)
        XCTAssertNil(g.check(sender: a, counter: .max))
        XCTAssertEqual(g.check(sender: a, counter: .max), .replayed)
        XCTAssertEqual(g.check(sender: a, counter: 0), .tooOld)
    }

    func testShiftMatchesAReferenceSet() {
        // Against a plain set of accepted counters, over a pseudo-random walk.
        var g = SenderReplayGuard()
        var seen = Set<UInt64>()
        var highest: UInt64 = 0
        var rng = DeterministicRNG(seed: 9)
        var c: UInt64 = 10_000
        for _ in 0..<20_000 {
            let step = Int.random(in: -1500...200, using: &rng)
            c = UInt64(max(0, Int(c) + step))
            let expected: SenderReplayGuard.Refusal?
            if seen.isEmpty || c > highest { expected = nil }
            else if highest - c >= SenderReplayGuard.windowSize { expected = .tooOld }
            else if seen.contains(c) { expected = .replayed }
            else { expected = nil }
            XCTAssertEqual(g.check(sender: a, counter: c), expected, "counter \(c) highest \(highest)")
            if expected == nil { seen.insert(c); highest = max(highest, c) }
        }
    }

    func testEvictedSenderKeepsAFloor() {
        var g = SenderReplayGuard(maxSenders: 2)
        XCTAssertNil(g.check(sender: a, counter: 100))
        XCTAssertNil(g.check(sender: b, counter: 100))
        XCTAssertNil(g.check(sender: NodeID(high: 3, low: 3), counter: 1), "evicts a, the least recent")
        XCTAssertEqual(g.trackedSenders, 2)
        XCTAssertEqual(g.check(sender: a, counter: 100), .tooOld, "an evicted sender's old counters stay refused")
        XCTAssertNil(g.check(sender: a, counter: 101))
    }

    func testCounterSaturates() {
        var c = ReplayCounter(base: .max - 1)
        XCTAssertEqual(c.take(), .max - 1)
        XCTAssertEqual(c.take(), .max)
        XCTAssertEqual(c.take(), .max, "saturates instead of trapping")
    }
}
