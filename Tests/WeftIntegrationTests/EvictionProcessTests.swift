import Foundation
import WeftAPI
import XCTest

/// Issue 9 (5), with real processes and the real command: `weft evict NODE` on one member bans
/// that identity everywhere; the evicted node stays up, says so, hands out nothing and stays
/// banned across restarts on both sides; `weft evict --undo` from another member readmits it.
final class EvictionProcessTests: NodeProcessTestCase {
    override class var label: String { "evict" }

    private func names(_ n: NodeProcess) -> Set<String> {
        Set((n.members() ?? []).filter { $0.state == "alive" }.map(\.name))
    }

    func testEvictAndUndoAcrossRestarts() throws {
        let a = node("ev-a")
        try a.start()
        XCTAssertTrue(a.waitReady())
        let keyFile = a.dataDir + "/cluster.key"
        let b = node("ev-b", extra: ["--seed", a.address, "--cluster-key-file", keyFile])
        let c = node("ev-c", extra: ["--seed", a.address, "--cluster-key-file", keyFile])
        try b.start(); try c.start()
        for n in [b, c] { XCTAssertTrue(n.waitReady(), "\(n.name) never became ready") }
        let all: Set = ["ev-a", "ev-b", "ev-c"]
        XCTAssertTrue(eventually(timeout: 30) { [a, b, c].allSatisfy { self.names($0) == all } }, "the three nodes did not converge")
        XCTAssertTrue(eventually(timeout: 20) { c.status()?.overlayAddress != nil }, "c never got address space")
        let before = try runWeft(["alloc", "box", "--data-dir", c.dataDir])
        XCTAssertEqual(before.status, 0, before.stdout + before.stderr)

        // Refusals that say what is wrong.
        let unknown = try runWeft(["evict", "no-such-node", "--data-dir", a.dataDir])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue((unknown.stdout + unknown.stderr).contains("no member matches"), unknown.stdout + unknown.stderr)
        let selfEvict = try runWeft(["evict", "ev-a", "--data-dir", a.dataDir])
        XCTAssertNotEqual(selfEvict.status, 0)
        XCTAssertTrue((selfEvict.stdout + selfEvict.stderr).contains("weft leave"), selfEvict.stdout + selfEvict.stderr)
        let undoNothing = try runWeft(["evict", "--undo", "ev-c", "--data-dir", a.dataDir])
        XCTAssertNotEqual(undoNothing.status, 0)
        XCTAssertTrue((undoNothing.stdout + undoNothing.stderr).contains("not evicted"), undoNothing.stdout + undoNothing.stderr)

        // Evict c from a.
        let evict = try runWeft(["evict", "ev-c", "--data-dir", a.dataDir])
        XCTAssertEqual(evict.status, 0, evict.stdout + evict.stderr)
        XCTAssertTrue(evict.stdout.contains("evicted ev-c"), evict.stdout)
        XCTAssertTrue(evict.stdout.contains("weft keys"), "the command points at key rotation: \(evict.stdout)")
        XCTAssertTrue(eventually(timeout: 20) {
            self.names(a) == ["ev-a", "ev-b"] && self.names(b) == ["ev-a", "ev-b"] && c.status()?.phase == "evicted"
        }, "the eviction did not spread: a \(names(a)) b \(names(b)) c \(c.status()?.phase ?? "?")")
        XCTAssertTrue(c.isRunning, "the evicted node keeps running")
        let cs = try XCTUnwrap(c.status())
        XCTAssertEqual(cs.evictedBy?.byName, "ev-a")
        XCTAssertTrue(cs.warnings.contains { $0.contains("evicted") && $0.contains("weft evict --undo ev-c") }, "\(cs.warnings)")
        let text = try runWeft(["status", "--data-dir", c.dataDir])
        XCTAssertTrue(text.stdout.contains("evicted") && text.stdout.contains("ev-a"), text.stdout)
        XCTAssertEqual(b.status()?.evictedMembers?.map(\.name), ["ev-c"])

        let alloc = try runWeft(["alloc", "after", "--data-dir", c.dataDir])
        XCTAssertNotEqual(alloc.status, 0, "an evicted node handed out an address")
        XCTAssertTrue((alloc.stdout + alloc.stderr).contains("evicted"), alloc.stdout + alloc.stderr)
        let again = try runWeft(["evict", "ev-c", "--data-dir", b.dataDir])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue((again.stdout + again.stderr).contains("already evicted"), again.stdout + again.stderr)
        let back = try runWeft(["evict", "--undo", "ev-c", "--data-dir", c.dataDir])
        XCTAssertNotEqual(back.status, 0, "an evicted node readmitted itself")

        // The evicted node keeps asking (every seed-retry maximum) and is answered with the ban.
        XCTAssertTrue(eventually(timeout: 20) {
            [a, b].contains { ($0.status()?.drops["push-pull-from-evicted"] ?? 0) > 0 }
        }, "nobody refused the evicted node's push-pull: a \(a.status()?.drops ?? [:]) b \(b.status()?.drops ?? [:])")

        // Restarts on both sides keep the ban.
        c.kill9(); b.kill9()
        try c.start(); try b.start()
        XCTAssertTrue(c.waitReady()); XCTAssertTrue(b.waitReady())
        XCTAssertTrue(eventually(timeout: 15) { c.status()?.phase == "evicted" }, "the evicted node forgot its ban on restart")
        XCTAssertEqual(b.status()?.evictedMembers?.map(\.name), ["ev-c"], "a member forgot the ban on restart")
        Thread.sleep(forTimeInterval: 5)
        XCTAssertFalse(names(a).contains("ev-c") || names(b).contains("ev-c"), "the evicted identity rejoined after a restart")

        // Undo from b: c rejoins and allocates again.
        let undo = try runWeft(["evict", "--undo", "ev-c", "--data-dir", b.dataDir])
        XCTAssertEqual(undo.status, 0, undo.stdout + undo.stderr)
        XCTAssertTrue(eventually(timeout: 40) {
            c.status()?.phase == "running" && [a, b, c].allSatisfy { self.names($0) == all }
        }, "the readmitted node did not rejoin: a \(names(a)) b \(names(b)) c \(c.status()?.phase ?? "?")")
        XCTAssertEqual(a.status()?.evictedMembers ?? [], [])
        let kept = try runWeft(["alloc", "box", "--data-dir", c.dataDir])
        XCTAssertEqual(kept.status, 0, kept.stdout + kept.stderr)
        XCTAssertEqual(kept.stdout, before.stdout, "the container's address changed across eviction and readmission")
        let fresh = try runWeft(["alloc", "fresh", "--data-dir", c.dataDir], timeout: 45)
        XCTAssertEqual(fresh.status, 0, fresh.stdout + fresh.stderr)
    }
}
