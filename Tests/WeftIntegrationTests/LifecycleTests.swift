import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The node lifecycle with real `weft start --no-tun` processes on 127.0.0.1 (docs/operations.md,
/// "Lifecycle"): failed starts leave the data dir as it was, a key without a database needs a
/// seed, a damaged database has a recovery path that works when typed literally, and a node that
/// left rejoins as a new joiner.
final class LifecycleTests: XCTestCase {
    /// LEAD: set to true once the node marks itself `joined` when a member restored from SQLite
    /// answers (issue 8, "after any restart `weft status` says joined no"). Until then the one
    /// assertion that depends on it only prints what it saw.
    static let nodeFixLanded = true

    private var root: TempDir!
    private var nodes: [NodeProcess] = []
    private var launched: [Process] = []

    override func setUp() { root = TempDir("life") }

    override func tearDown() {
        for n in nodes { n.kill9() }
        for p in launched where p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        if (testRun?.totalFailureCount ?? 0) > 0 {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(4000))") }
            for f in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] where f.hasSuffix(".cmdlog") {
                print("---- \(f) ----\n\(((try? String(contentsOfFile: root.path + "/" + f, encoding: .utf8)) ?? "").suffix(4000))")
            }
        }
        root.remove()
    }

    private func node(_ name: String, extra: [String] = []) -> NodeProcess {
        let n = NodeProcess(name: name, root: root.path, extraArgs: extra)
        nodes.append(n)
        return n
    }

    private func contents(_ dir: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).sorted()
    }

    private func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }

    private func assertFailed(_ r: CommandResult, _ needles: [String], file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, "expected failure; stdout: \(r.stdout)", file: file, line: line)
        for n in needles { XCTAssertTrue(r.stderr.contains(n), "stderr should mention '\(n)': \(r.stderr)", file: file, line: line) }
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump"), r.stderr, file: file, line: line)
    }

    /// The commands a StartupError prints: its lines indented by four spaces, comments excluded.
    private func commands(in stderr: String) -> [String] {
        stderr.split(separator: "\n").compactMap { l in
            guard l.hasPrefix("    "), !l.hasPrefix("    #") else { return nil }
            return String(l.dropFirst(4))
        }
    }

    /// Runs a printed `weft start …` command literally (its `weft` is this build's binary) in the background.
    private func launch(_ command: String, log: String) throws -> Process {
        XCTAssertTrue(command.hasPrefix("weft start "), command)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", "exec \(WeftBinary.path) \(command.dropFirst(5)) >>\(root.path)/\(log).cmdlog 2>&1"]
        try p.run()
        launched.append(p)
        return p
    }

    private func sh(_ command: String) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = ["-c", command]
        try? p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }

    private func client(_ dataDir: String) -> ControlClient { ControlClient(dataDir: dataDir, timeoutSeconds: 5) }
    private func status(_ dataDir: String) -> API.Status? { try? client(dataDir).call(API.Request(op: .status), as: API.Status.self) }

    private func startCluster() throws -> NodeProcess {
        let first = node("n1")
        try first.start()
        XCTAssertTrue(first.waitReady(), "n1 never answered")
        XCTAssertTrue(eventually(timeout: 10) { first.status()?.overlayAddress != nil })
        return first
    }

    // MARK: - Failed starts

    /// Port in use, metrics port in use, unreadable or invalid key: each start fails with a clear
    /// message and leaves the data dir exactly as it was; then the correct start works.
    func testFailedStartsLeaveTheDataDirAsItWas() throws {
        let holder = try startCluster()
        let base = ["start", "--no-tun", "--profile", "fast"]

        // Fresh data dir that does not exist yet: it does not exist afterwards either.
        let fresh = root.path + "/fresh/nested"
        assertFailed(try runWeft(base + ["--data-dir", fresh, "--listen", holder.address]), ["already in use", "--listen"])
        XCTAssertFalse(exists(root.path + "/fresh"), "a failed start removes the directories it created")

        // Existing empty dir: stays empty, whatever failed (UDP port, metrics port after the ring was made).
        let empty = root.path + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", holder.address]), ["already in use"])
        XCTAssertEqual(contents(empty), [])
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", "127.0.0.1:\(freePort())", "--metrics-listen", holder.address]),
                     ["already in use", "--metrics-listen"])
        XCTAssertEqual(contents(empty), [], "no cluster.key, no weft.db after a start that failed late")
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", "127.0.0.1:\(freePort())", "--cluster-key-file", root.path + "/missing.key"]),
                     ["cannot read cluster key file"])
        let bad = root.path + "/bad.key"
        try "not a key".write(toFile: bad, atomically: true, encoding: .utf8)
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", "127.0.0.1:\(freePort())", "--cluster-key-file", bad, "--seed", holder.address]),
                     ["does not hold a valid key", "weft keygen >"])
        XCTAssertEqual(contents(empty), [])
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", "127.0.0.1:\(freePort())", "--seed", "not-an-address", "--cluster-key-file", holder.dataDir + "/cluster.key"]),
                     ["is not an address"])
        XCTAssertEqual(contents(empty), [])

        // The correct start on the same dir now works: it joins the holder's cluster.
        let joiner = NodeProcess(name: "empty", root: root.path, extraArgs: ["--seed", holder.address, "--cluster-key-file", holder.dataDir + "/cluster.key"])
        nodes.append(joiner)
        try joiner.start()
        XCTAssertTrue(joiner.waitReady(), "the correct start after failed ones must work")
        XCTAssertTrue(eventually(timeout: 15) { joiner.status()?.overlayAddress != nil && joiner.status()?.joined == true }, "joiner got no address")
        XCTAssertEqual(joiner.status()?.cluster, holder.status()?.cluster)
        XCTAssertTrue(exists(empty + "/cluster.key") && exists(empty + "/weft.db"))

        // An existing data dir whose start fails keeps its database and identity.
        let id = joiner.status()?.id
        let incarnation = joiner.status()?.incarnation ?? 0
        joiner.signal(SIGTERM)
        XCTAssertEqual(joiner.waitForExit(), 0)
        let dbBefore = FileManager.default.contents(atPath: empty + "/weft.db")
        XCTAssertNotNil(dbBefore)
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", joiner.address, "--metrics-listen", holder.address]), ["already in use"])
        XCTAssertTrue(exists(empty + "/weft.db") && exists(empty + "/cluster.key"), "an existing weft.db is never deleted: \(contents(empty))")
        // A key flag for another cluster is refused without touching anything.
        let other = root.path + "/other.key"
        let keygen = try runWeft(["keygen"])
        try keygen.stdout.write(toFile: other, atomically: true, encoding: .utf8)
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", joiner.address, "--cluster-key-file", other]), ["belongs to cluster"])
        try joiner.start()
        XCTAssertTrue(joiner.waitReady())
        XCTAssertEqual(joiner.status()?.id, id, "identity survives failed starts")
        XCTAssertGreaterThan(joiner.status()?.incarnation ?? 0, incarnation)

        // Two starts on one data dir: the second is refused while the first runs.
        assertFailed(try runWeft(base + ["--data-dir", empty, "--listen", "127.0.0.1:\(freePort())"]), ["already running"])
        XCTAssertNotNil(joiner.status(), "the running node is unaffected")
    }

    /// A wrong key with a seed is not a start failure: the node runs and keeps retrying.
    func testSeedWithWrongKeyRunsAndRetries() throws {
        let holder = try startCluster()
        let wrong = root.path + "/wrong.key"
        try (try runWeft(["keygen"])).stdout.write(toFile: wrong, atomically: true, encoding: .utf8)
        let n = node("wrongkey", extra: ["--seed", holder.address, "--cluster-key-file", wrong])
        try n.start()
        XCTAssertTrue(n.waitReady())
        XCTAssertTrue(eventually(timeout: 10) { n.log().contains("no seed answered") })
        XCTAssertTrue(n.isRunning)
        XCTAssertEqual(n.status()?.joined, false)

        // Restarted without the seed, a node that never reached its cluster is refused rather
        // than left alone without address space.
        n.signal(SIGTERM)
        XCTAssertEqual(n.waitForExit(), 0)
        let alone = try runWeft(["start", "--no-tun", "--data-dir", n.dataDir, "--listen", n.address])
        assertFailed(alone, ["knows no member and holds no address space", "--seed HOST:PORT"])
        XCTAssertTrue(exists(n.dataDir + "/weft.db"), "the existing database is kept")
    }

    // MARK: - cluster.key without weft.db

    func testKeyWithoutDatabaseJoinsOnlyThroughASeed() throws {
        let first = try startCluster()
        let d = root.path + "/recovered"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: first.dataDir + "/cluster.key", toPath: d + "/cluster.key")
        let listen = "127.0.0.1:\(freePort())"

        let refused = try runWeft(["start", "--no-tun", "--data-dir", d, "--listen", listen, "--name", "recovered", "--profile", "fast"])
        assertFailed(refused, ["has cluster.key", "no weft.db", "--seed HOST:PORT"])
        XCTAssertEqual(contents(d), ["cluster.key"], "nothing created by the refused start")
        let cmds = commands(in: refused.stderr)
        XCTAssertEqual(cmds.count, 1, refused.stderr)
        let cmd = try XCTUnwrap(cmds.first)
        XCTAssertEqual(cmd, "weft start --data-dir \(d) --listen \(listen) --name recovered --no-tun --profile fast --seed HOST:PORT")

        // Type it, with a member's address for HOST:PORT.
        _ = try launch(cmd.replacingOccurrences(of: "HOST:PORT", with: first.address), log: "recovered")
        XCTAssertTrue(eventually(timeout: 20) { self.status(d)?.overlayAddress != nil }, "the recovered node got no overlay address")
        let s = try XCTUnwrap(status(d))
        XCTAssertEqual(s.cluster, first.status()?.cluster)
        XCTAssertTrue(eventually(timeout: 10) { (first.members() ?? []).contains { $0.id == s.id && $0.state == "alive" } })
        XCTAssertFalse((first.status()?.warnings ?? []).contains { $0.contains("another address ring") }, "one ring, not two")
        let alloc = try runWeft(["alloc", "--data-dir", d, "ctr-1", "--json"], timeout: 40)
        XCTAssertEqual(alloc.status, 0, alloc.stderr)
    }

    // MARK: - Damaged weft.db

    func testCorruptDatabaseRecoveryWorksWhenTypedLiterally() throws {
        let first = try startCluster()
        let second = node("n2", extra: ["--seed", first.address])
        second.extraArgs += ["--cluster-key-file", first.dataDir + "/cluster.key"]
        try second.start()
        XCTAssertTrue(second.waitReady())
        XCTAssertTrue(eventually(timeout: 15) { second.status()?.overlayAddress != nil })
        let oldID = try XCTUnwrap(second.status()?.id)
        second.signal(SIGTERM)
        XCTAssertEqual(second.waitForExit(), 0)

        let db = second.dataDir + "/weft.db"
        // A damaged file on disk; its log is gone with it (a -wal could hold every page and mask the damage).
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: db + suffix) }
        let garbage = Data((0..<16384).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) })
        XCTAssertTrue(FileManager.default.createFile(atPath: db, contents: garbage))
        let before = contents(second.dataDir)

        let args = ["start", "--no-tun", "--data-dir", second.dataDir, "--listen", second.address, "--name", "n2", "--profile", "fast"]
        let failed = try runWeft(args)
        assertFailed(failed, ["is damaged", "rejoins the cluster as a new member", "HOST:PORT"])
        XCTAssertEqual(FileManager.default.contents(atPath: db), garbage, "the damaged file is left as it was")
        XCTAssertEqual(contents(second.dataDir), before)
        let cmds = commands(in: failed.stderr)
        XCTAssertEqual(cmds.count, 2, failed.stderr)
        guard cmds.count == 2 else { return }
        XCTAssertTrue(cmds[0].hasPrefix("mkdir -p \(second.dataDir)/damaged && mv \(db)"), cmds[0])

        // Type both, with a member's address for HOST:PORT.
        XCTAssertEqual(sh(cmds[0]), 0, cmds[0])
        XCTAssertFalse(exists(db))
        XCTAssertEqual(FileManager.default.contents(atPath: second.dataDir + "/damaged/weft.db"), garbage)
        _ = try launch(cmds[1].replacingOccurrences(of: "HOST:PORT", with: first.address), log: "n2-recovered")
        XCTAssertTrue(eventually(timeout: 20) { self.status(second.dataDir)?.overlayAddress != nil }, "the recovered node got no overlay address")
        let s = try XCTUnwrap(status(second.dataDir))
        XCTAssertNotEqual(s.id, oldID, "a new member: the old identity was in the damaged file")
        XCTAssertEqual(s.cluster, first.status()?.cluster)
        XCTAssertTrue(eventually(timeout: 10) { (first.members() ?? []).contains { $0.id == s.id && $0.state == "alive" } })
        XCTAssertFalse((first.status()?.warnings ?? []).contains { $0.contains("another address ring") })
        let alloc = try runWeft(["alloc", "--data-dir", second.dataDir, "ctr-1", "--json"], timeout: 40)
        XCTAssertEqual(alloc.status, 0, alloc.stderr)
    }

    /// A moved weft.db with its -wal left behind: refused, since SQLite would replay the old log.
    func testLeftoverJournalIsRefused() throws {
        let d = root.path + "/journal"
        try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: d + "/weft.db-wal", contents: Data(repeating: 1, count: 100)))
        let r = try runWeft(["start", "--no-tun", "--data-dir", d, "--listen", "127.0.0.1:\(freePort())"])
        assertFailed(r, ["weft.db-wal", "left over"])
        XCTAssertEqual(commands(in: r.stderr), ["mkdir -p \(d)/damaged && mv \(d)/weft.db-wal \(d)/damaged/"])
        XCTAssertEqual(contents(d), ["weft.db-wal"])
    }

    /// cluster.key deleted from a data dir that belongs to a cluster: refused, nothing regenerated.
    func testMissingKeyOfAClusterIsNotRegenerated() throws {
        let first = try startCluster()
        first.signal(SIGTERM)
        XCTAssertEqual(first.waitForExit(), 0)
        try FileManager.default.removeItem(atPath: first.dataDir + "/cluster.key")
        let r = try runWeft(["start", "--no-tun", "--data-dir", first.dataDir, "--listen", first.address])
        assertFailed(r, ["belongs to cluster", "cluster.key is missing", "scp MEMBER:"])
        XCTAssertFalse(exists(first.dataDir + "/cluster.key"), "no new key was made up")
    }

    // MARK: - Leave, then start again

    func testLeaveThenStartRejoinsAsNewJoiner() throws {
        let first = try startCluster()
        let second = node("n2", extra: ["--seed", first.address, "--cluster-key-file", first.dataDir + "/cluster.key"])
        try second.start()
        XCTAssertTrue(second.waitReady())
        XCTAssertTrue(eventually(timeout: 15) { second.status()?.overlayAddress != nil })
        let before = try XCTUnwrap(second.status())

        let leave = try runWeft(["leave", "--data-dir", second.dataDir], timeout: 30)
        XCTAssertEqual(leave.status, 0, leave.stderr)
        XCTAssertEqual(second.waitForExit(timeout: 15), 0)
        XCTAssertTrue(eventually(timeout: 10) { (first.members() ?? []).contains { $0.id == before.id && $0.state == "left" } })
        XCTAssertTrue(eventually(timeout: 10) { !((try? first.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self))?.ranges.contains { $0.owner == before.id } ?? true) },
                      "the leaver's ranges were handed over")

        // Same command again: it says it rejoins and comes back as a new joiner under its id.
        try second.start()
        XCTAssertTrue(second.waitReady())
        XCTAssertTrue(eventually(timeout: 5) { second.log().contains("it rejoins as a new member") }, "start does not say it rejoins")
        let t0 = Date()
        XCTAssertTrue(eventually(timeout: 10) { second.status()?.overlayAddress != nil }, "no overlay address within 10 s of the rejoin")
        print("rejoin: overlay address after \(String(format: "%.1f", Date().timeIntervalSince(t0))) s")
        let after = try XCTUnwrap(second.status())
        XCTAssertEqual(after.id, before.id, "identity kept")
        XCTAssertGreaterThan(after.incarnation, before.incarnation)
        XCTAssertTrue(eventually(timeout: 10) { second.status()?.joined == true })
        XCTAssertTrue(eventually(timeout: 10) {
            (first.members() ?? []).contains { $0.id == before.id && $0.state == "alive" && $0.incarnation == after.incarnation }
        })
        let alloc = try runWeft(["alloc", "--data-dir", second.dataDir, "ctr-1", "--json"], timeout: 40)
        XCTAssertEqual(alloc.status, 0, "alloc after rejoin: \(alloc.stderr)")

        // A plain restart of the rejoined node keeps what it got.
        second.signal(SIGTERM)
        XCTAssertEqual(second.waitForExit(), 0)
        try second.start()
        XCTAssertTrue(second.waitReady())
        XCTAssertTrue(eventually(timeout: 5) { second.log().contains("node started") }, "restart logged")
        usleep(500_000)
        XCTAssertFalse(second.log().contains("rejoin"), "a restart is not a rejoin: \(second.log().prefix(2000))")
        XCTAssertEqual(second.status()?.overlayAddress, after.overlayAddress)
        // DEPENDS ON THE LEAD'S NODE FIX (issue 8): `joined` after a restart once a member answers.
        let joinedAfterRestart = eventually(timeout: 10) { second.status()?.joined == true }
        if Self.nodeFixLanded {
            XCTAssertTrue(joinedAfterRestart, "joined must turn true after a restart once a member answers")
        } else if joinedAfterRestart {
            print("LifecycleTests: joined is true after a restart: the node fix has landed, set nodeFixLanded = true")
        } else {
            print("LifecycleTests: KNOWN, awaiting the node fix: joined stays false after a restart")
        }
    }

    /// Issue 13: the "to add a host" hint is printed once, by the start that created the
    /// cluster — not on its restarts, and never on a joiner (restarted without --seed either).
    func testJoinHintOnlyWhenTheClusterIsCreated() throws {
        let hint = "to add a host"
        let a = node("a")
        try a.start()
        XCTAssertTrue(a.waitReady(), a.log())
        XCTAssertTrue(a.log().contains(hint), "the creating start prints the join hint: \(a.log().prefix(600))")
        let b = node("b", extra: ["--seed", a.address, "--cluster-key-file", a.dataDir + "/cluster.key"])
        try b.start()
        XCTAssertTrue(b.waitReady(), b.log())
        XCTAssertFalse(b.log().contains(hint), "a joiner is not told how to add hosts")
        for n in [a, b] {
            n.signal(SIGTERM)
            XCTAssertNotNil(n.waitForExit())
            try? FileManager.default.removeItem(atPath: n.logPath)
            n.extraArgs = []
            try n.start()
            XCTAssertTrue(n.waitReady(), n.log())
            XCTAssertFalse(n.log().contains(hint), "a restart (\(n.name)) does not repeat the hint: \(n.log().prefix(600))")
        }
    }
}
