import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9 (4), with real processes and the real command: `weft keys install|use|remove` on a
/// running five-node cluster (each step asked on a different node) loses no member, the keys
/// survive restarts in cluster.key, a host with only the removed key is refused with a message
/// that says what to do, and a new host joins with a copy of a member's cluster.key.
final class KeyRotationProcessTests: NodeProcessTestCase {
    override class var label: String { "keys" }

    private func keyLines(_ n: NodeProcess) -> Int {
        let text = (try? String(contentsOfFile: n.dataDir + "/cluster.key", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").filter { $0.hasPrefix("weft1:") }.count
    }

    private func list(_ n: NodeProcess) throws -> API.KeysReport {
        let r = try runWeft(["keys", "list", "--json", "--data-dir", n.dataDir])
        XCTAssertEqual(r.status, 0, r.stdout + r.stderr)
        return try JSONDecoder().decode(API.KeysReport.self, from: Data(r.stdout.utf8))
    }

    private func allAlive(_ nodes: [NodeProcess], count: Int) -> Bool {
        nodes.allSatisfy { n in
            let m = n.members() ?? []
            return m.count == count && m.allSatisfy { $0.state == "alive" }
        }
    }

    private func incarnations(_ nodes: [NodeProcess]) -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for n in nodes { for m in n.members() ?? [] { out["\(n.name)->\(m.name)"] = m.incarnation } }
        return out
    }

    func testRotationOnAFiveNodeClusterAndWhatComesAfter() throws {
        let first = node("k1")
        try first.start()
        XCTAssertTrue(first.waitReady())
        let keyFile = first.dataDir + "/cluster.key"
        let oldKey = root.path + "/old.key"
        try FileManager.default.copyItem(atPath: keyFile, toPath: oldKey)
        var all = [first]
        for i in 2...5 {
            let n = node("k\(i)", extra: ["--seed", first.address, "--cluster-key-file", keyFile])
            try n.start()
            all.append(n)
        }
        for n in all { XCTAssertTrue(n.waitReady(), "\(n.name) never became ready") }
        XCTAssertTrue(eventually(timeout: 30) { self.allAlive(all, count: 5) }, "the five nodes did not converge")
        let cluster = try XCTUnwrap(first.status()?.cluster)
        let before = incarnations(all)
        let oldID = try XCTUnwrap(try list(first).keys.first?.id)
        XCTAssertEqual(oldID, cluster, "a one-key cluster's id is its key's")

        // Install, asked on k3.
        let newKey = root.path + "/new.key"
        try (try runWeft(["keygen"])).stdout.write(toFile: newKey, atomically: true, encoding: .utf8)
        let install = try runWeft(["keys", "install", "--key-file", newKey, "--data-dir", all[2].dataDir])
        XCTAssertEqual(install.status, 0, install.stdout + install.stderr)
        XCTAssertTrue(install.stdout.contains("installed on 5 members"), install.stdout)
        for n in all {
            XCTAssertEqual(keyLines(n), 2, "\(n.name)'s cluster.key holds both keys")
            let attrs = try FileManager.default.attributesOfItem(atPath: n.dataDir + "/cluster.key")
            XCTAssertEqual((attrs[.posixPermissions] as? NSNumber)?.intValue, 0o600)
        }
        let report = try list(all[1])
        XCTAssertTrue(report.complete)
        let newID = try XCTUnwrap(report.keys.first { $0.id != oldID }?.id)
        XCTAssertEqual(report.keys.first { $0.id == newID }?.installedOn.count, 5)
        XCTAssertEqual(report.keys.first { $0.id == oldID }?.primaryOn.count, 5)

        // Refusals that change nothing: the primary cannot go; an unknown key cannot be used.
        let removePrimary = try runWeft(["keys", "remove", oldID, "--data-dir", all[0].dataDir])
        XCTAssertEqual(removePrimary.status, 1)
        XCTAssertTrue(removePrimary.stderr.contains("primary key"), removePrimary.stderr)
        let useUnknown = try runWeft(["keys", "use", "0123456789abcdef", "--data-dir", all[0].dataDir])
        XCTAssertEqual(useUnknown.status, 1)
        XCTAssertTrue(useUnknown.stderr.contains("not installed"), useUnknown.stderr)
        let noKey = try runWeft(["keys", "install", "--data-dir", all[0].dataDir])
        XCTAssertEqual(noKey.status, 2, "a missing key is a usage error")

        // Use, asked on k1 (by id prefix); remove, asked on k5.
        let use = try runWeft(["keys", "use", String(newID.prefix(6)), "--data-dir", all[0].dataDir])
        XCTAssertEqual(use.status, 0, use.stdout + use.stderr)
        XCTAssertEqual(try list(all[3]).keys.first { $0.id == newID }?.primaryOn.count, 5)
        let remove = try runWeft(["keys", "remove", oldID, "--data-dir", all[4].dataDir])
        XCTAssertEqual(remove.status, 0, remove.stdout + remove.stderr)
        let final = try list(all[0])
        XCTAssertEqual(final.keys.map(\.id), [newID])
        XCTAssertEqual(final.keys.first?.installedOn.count, 5)
        for n in all { XCTAssertEqual(keyLines(n), 1) }
        XCTAssertEqual(all[3].status()?.cluster, cluster, "the cluster keeps its id after its first key is gone")

        // No member lost, none even suspected (a suspicion is refuted with a new incarnation).
        Thread.sleep(forTimeInterval: 2)
        XCTAssertTrue(allAlive(all, count: 5), "\(all.map { "\($0.name): \(($0.members() ?? []).map { "\($0.name) \($0.state)" })" })")
        XCTAssertEqual(incarnations(all), before, "a member was suspected during the rotation")

        // A host with only the removed key is refused, and told why and what to do.
        let stale = node("stale", extra: ["--seed", first.address, "--cluster-key-file", oldKey])
        try stale.start()
        XCTAssertTrue(stale.waitReady())
        XCTAssertTrue(eventually(timeout: 15) {
            (stale.status()?.warnings ?? []).contains { $0.contains("does not accept this node's cluster key") && $0.contains(oldID) && $0.contains("copy cluster.key from a member") }
        }, "\(stale.status()?.warnings ?? [])")
        XCTAssertEqual(stale.status()?.joined, false)
        XCTAssertFalse((first.members() ?? []).contains { $0.name == "stale" })
        stale.kill9()

        // A restarted member comes back with the new key from its own cluster.key, no flags.
        all[1].signal(SIGTERM)
        XCTAssertEqual(all[1].waitForExit(), 0)
        all[1].extraArgs = []
        try all[1].start()
        XCTAssertTrue(all[1].waitReady())
        XCTAssertTrue(eventually(timeout: 30) { self.allAlive(all, count: 5) }, "k2 did not come back after its restart")

        // A new host joins with a copy of a member's cluster.key and shows the same cluster.
        let copy = root.path + "/copied.key"
        try FileManager.default.copyItem(atPath: all[4].dataDir + "/cluster.key", toPath: copy)
        let late = node("late", extra: ["--seed", all[4].address, "--cluster-key-file", copy])
        try late.start()
        XCTAssertTrue(late.waitReady())
        XCTAssertTrue(eventually(timeout: 30) { self.allAlive(all + [late], count: 6) }, "the new host did not join")
        XCTAssertEqual(late.status()?.cluster, cluster)

        // A member that does not answer makes the report incomplete: exit 1, naming it.
        kill(all[3].pid ?? 0, SIGSTOP)
        defer { kill(all[3].pid ?? 0, SIGCONT) }
        let partial = try runWeft(["keys", "list", "--data-dir", all[0].dataDir])
        XCTAssertEqual(partial.status, 1)
        XCTAssertTrue(partial.stderr.contains("k4"), partial.stderr)
    }
}
