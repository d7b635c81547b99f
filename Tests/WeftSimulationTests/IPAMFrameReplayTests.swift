@testable import WeftCore
@testable import WeftTestKit
import XCTest

/// Point-to-point IPAM frames are signed over a per-sender counter (Node.Instance.onIPAMFrame):
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
        func bFrame(to id: NodeID) -> [UInt8] { b.node!.ipamFrame(message, to: id) }
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
        moved.replaceSubrange(NodeID.byteCount..<(NodeID.byteCount + 8), with: counter.bytes)
        XCTAssertEqual(deliver(moved), ["ipam-bad-signature"])
        // Once b's newest is a window or more ahead, a captured old frame is too old.
        for _ in 0..<Int(SenderReplayGuard.windowSize) { _ = bFrame(to: a.id) }
        XCTAssertEqual(deliver(bFrame(to: a.id)), [])
        XCTAssertEqual(deliver(frame), ["ipam-replay-too-old"])

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
    /// The counter of a frame (`sender ‖ counter ‖ message ‖ signature`).
    var counterValue: UInt64 {
        var r = ByteReader(self, offset: NodeID.byteCount)
        return (try? r.u64("counter")) ?? 0
    }
}
