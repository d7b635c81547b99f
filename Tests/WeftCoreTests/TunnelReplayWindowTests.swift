import WeftCore
import XCTest

final class TunnelReplayWindowTests: XCTestCase {
    let w = Tunnel.ReplayWindow.windowSize

    func testWindowIsAtLeast8192() {
        XCTAssertEqual(w, 8192)
    }

    func testInOrderAcceptedOnce() {
        var r = Tunnel.ReplayWindow()
        for c: UInt64 in 0..<20_000 { XCTAssertTrue(r.accept(c), "counter \(c)") }
        for c: UInt64 in 19_000..<20_000 { XCTAssertFalse(r.accept(c), "duplicate \(c)") }
        XCTAssertEqual(r.highest, 19_999)
    }

    func testReorderedWithinWindow() {
        var r = Tunnel.ReplayWindow()
        XCTAssertTrue(r.accept(10_000))
        XCTAssertTrue(r.accept(10_000 - (w - 1)), "oldest counter still inside the window")
        XCTAssertTrue(r.accept(9_999))
        XCTAssertTrue(r.accept(5_000))
        XCTAssertFalse(r.accept(5_000), "duplicate inside the window")
        XCTAssertTrue(r.accept(10_001))
        XCTAssertTrue(r.accept(9_998))
    }

    func testJustOutsideWindow() {
        var r = Tunnel.ReplayWindow()
        XCTAssertTrue(r.accept(10_000))
        XCTAssertFalse(r.wouldAccept(10_000 - w))
        XCTAssertFalse(r.accept(10_000 - w), "exactly windowSize behind is too old")
        XCTAssertTrue(r.accept(10_000 - w + 1))
        XCTAssertFalse(r.accept(0))
    }

    func testHugeJumpClearsTheRing() {
        var r = Tunnel.ReplayWindow()
        for c: UInt64 in 0..<100 { XCTAssertTrue(r.accept(c)) }
        let big: UInt64 = 1 << 40
        XCTAssertTrue(r.accept(big))
        XCTAssertFalse(r.accept(5), "far behind after the jump")
        XCTAssertTrue(r.accept(big - 1), "bits from before the jump must not leak into the new window")
        XCTAssertTrue(r.accept(big - 64))
        XCTAssertTrue(r.accept(big - (w - 1)))
        XCTAssertFalse(r.accept(big - w))
        XCTAssertFalse(r.accept(big))
    }

    func testJumpOfExactlyTheRingDoesNotAlias() {
        var r = Tunnel.ReplayWindow()
        XCTAssertTrue(r.accept(64))
        // Same ring slot (129 blocks later) must have been cleared when the window moved.
        XCTAssertTrue(r.accept(64 + 129 * 64))
        XCTAssertTrue(r.accept(64 + 129 * 64 - 1))
    }

    func testLimitAndZero() {
        var r = Tunnel.ReplayWindow(limit: 100)
        XCTAssertTrue(r.accept(0))
        XCTAssertFalse(r.accept(0))
        XCTAssertTrue(r.accept(99))
        XCTAssertFalse(r.accept(100))
        XCTAssertFalse(r.accept(.max))
        var full = Tunnel.ReplayWindow()
        XCTAssertTrue(full.accept(.max - 1))
        XCTAssertFalse(full.accept(.max), "the default limit (UInt64.max) itself is never accepted")
    }

    func testWouldAcceptDoesNotChangeState() {
        var r = Tunnel.ReplayWindow()
        XCTAssertTrue(r.accept(7))
        let before = r
        XCTAssertTrue(r.wouldAccept(8))
        XCTAssertFalse(r.wouldAccept(7))
        XCTAssertEqual(r, before)
    }

    /// Random arrival orders against a naive model (set of seen counters + highest).
    func testMatchesNaiveModel() {
        for seed: UInt64 in 1...5 {
            var rng = DeterministicRNG(seed: seed)
            var r = Tunnel.ReplayWindow()
            var seen = Set<UInt64>()
            var highest: UInt64? = nil
            var base: UInt64 = 0
            for _ in 0..<20_000 {
                base += UInt64.random(in: 0...3, using: &rng)
                if UInt64.random(in: 0..<1000, using: &rng) == 0 { base += UInt64.random(in: 0...100_000, using: &rng) }
                let back = UInt64.random(in: 0...10_000, using: &rng)
                let c = base >= back ? base - back : base
                let expected: Bool
                if let h = highest, c <= h {
                    expected = h - c < w && !seen.contains(c)
                } else {
                    expected = true
                }
                XCTAssertEqual(r.accept(c), expected, "seed \(seed), counter \(c), highest \(String(describing: highest))")
                if expected { seen.insert(c); highest = max(highest ?? c, c) }
            }
        }
    }
}
