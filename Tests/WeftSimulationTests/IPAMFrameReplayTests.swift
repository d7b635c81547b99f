@testable import WeftCore
@testable import WeftTestKit
import XCTest

/// Point-to-point IPAM frames are authenticated (a MAC under the pair's key) over a per-sender counter (Node.Instance.onIPAMFrame):
/// a frame captured on the wire and sent again — the same frame, or one far behind the
/// sender's newest — is refused and counted, never applied twice; a fresh frame from the same
/// sender, and the frames of a restarted sender, still are. Whole nodes in the simulator, frames
/// built with the sender's own (simulated) identity key as a member's node builds them.
final class IPAMFrameReplayTests: XCTestCase {
    func testReplayedAndStaleFramesAreRefusedFreshOnesAccepted() throws {
        let sim = NodeSimulator(seed: 21)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(5))
        let a = sim.hosts[0], b = sim.hosts[1]
        XCTAssertNotNil(a.node?.membership.member(b.id), "a knows b")

        // b's node builds the frame exactly as it sends one (ringRequest: harmless, answered).
        let message = IPAM.Message.ringRequest.encoded()
        XCTAssertNotNil(b.node)
        // b's real node signs (its counter advances as if it had sent them).
        func bFrame(to id: NodeID) -> [UInt8] { b.node!.ipamFrame(message, to: id)! }
        let frame = bFrame(to: a.id)
        let next = bFrame(to: a.id)
        func deliver(_ f: [UInt8]) -> [String] {
            a.node!.onIPAMFrame(f, now: sim.now).compactMap { if case .dropped(let r) = $0 { return r } else { return nil } }
        }
        XCTAssertEqual(deliver(frame), [], "a fresh signed frame is taken in")
        XCTAssertEqual(deliver(frame), ["ipam-replayed"], "the same frame again is a replay")
        XCTAssertEqual(deliver(next), [], "b's next frame still is taken in")

        // The counter is signed: a replay with a changed counter breaks the signature.
        var counter = ByteWriter(capacity: 8)
        counter.u64(frame.counterValue + 5000)
        var moved = frame
        moved.replaceSubrange((1 + NodeID.byteCount)..<(1 + NodeID.byteCount + 8), with: counter.bytes)
        XCTAssertEqual(deliver(moved), ["ipam-bad-signature"])
        // Once b's newest is a window or more ahead, a captured old frame is too old.
        for _ in 0..<Int(SenderReplayGuard.windowSize) { _ = bFrame(to: a.id) }
        XCTAssertEqual(deliver(bFrame(to: a.id)), [])
        XCTAssertEqual(deliver(frame), ["ipam-replay-too-old"])

        // Another frame version, or the version-1 layout (no version byte, a signature), is
        // refused by name before any work is spent on it.
        var v1 = frame; v1[0] = 1
        XCTAssertEqual(deliver(v1), ["ipam-unsupported-frame-version"])
        XCTAssertEqual(deliver([]), ["malformed-ipam"])
        XCTAssertEqual(deliver([Node.Instance.ipamFrameVersion] + b.id.bytes), ["malformed-ipam"])
        // A tag under another pair's key does not pass (b's frame to a, re-tagged with the key
        // of a third pair).
        var retagged = frame
        retagged.replaceSubrange((frame.count - 32)..., with: [UInt8](repeating: 7, count: 32))
        XCTAssertEqual(deliver(retagged), ["ipam-bad-signature"])
        // The pair key is derived once per peer, not per frame, on both ends.
        let derivedB = b.node!.ipamFrameStats.pairKeys, derivedA = a.node!.ipamFrameStats.pairKeys
        XCTAssertGreaterThan(derivedB, 0)
        for _ in 0..<10 { XCTAssertEqual(deliver(bFrame(to: a.id)), []) }
        XCTAssertEqual(b.node!.ipamFrameStats.pairKeys, derivedB, "b derived its key with a again")
        XCTAssertEqual(a.node!.ipamFrameStats.pairKeys, derivedA, "a derived its key with b again")

        // A frame addressed to another member is worthless here.
        let c = sim.addHost(); sim.run(for: .seconds(5))
        XCTAssertEqual(deliver(bFrame(to: sim.hosts[c].id)), ["ipam-bad-signature"])

        // b restarts: its new run counts above every earlier counter, and a takes its frames.
        sim.crash(1); sim.restart(1); sim.run(for: .seconds(5))
        XCTAssertNotNil(sim.hosts[1].node)
        XCTAssertEqual(deliver(bFrame(to: a.id)), [], "a restarted sender's frames are fresh")
        XCTAssertEqual(deliver(next), ["ipam-replay-too-old"], "a frame from before the restart stays refused")
        XCTAssertNoThrow(try sim.checkSafety())
    }
}

private extension Array where Element == UInt8 {
    /// The counter of a frame (`version ‖ sender ‖ counter ‖ message ‖ tag`).
    var counterValue: UInt64 {
        var r = ByteReader(self, offset: 1 + NodeID.byteCount)
        return (try? r.u64("counter")) ?? 0
    }
}
