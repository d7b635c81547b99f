import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Real `weft start --no-tun` processes on 127.0.0.1: membership end to end.
final class ClusterProcessTests: XCTestCase {
    private var root: TempDir!
    private var nodes: [NodeProcess] = []

    override func setUp() {
        root = TempDir("cluster")
    }

    override func tearDown() {
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(6000))") }
        }
        root.remove()
    }

    private func node(_ name: String, extra: [String] = []) -> NodeProcess {
        let n = NodeProcess(name: name, root: root.path, extraArgs: extra)
        nodes.append(n)
        return n
    }

    private func states(seenBy observer: NodeProcess) -> [String: String] {
        Dictionary((observer.members() ?? []).map { ($0.name, $0.state) }, uniquingKeysWith: { a, _ in a })
    }

    /// Five nodes: all alive everywhere; SIGKILL → dead; `weft leave` → left; restart → higher incarnation.
    func testFiveNodesJoinDetectCrashLeaveAndRestart() throws {
        let first = node("n1")
        try first.start()
        XCTAssertTrue(first.waitReady(), "n1 never answered on its control socket")
        let keyFile = first.dataDir + "/cluster.key"
        XCTAssertTrue(FileManager.default.fileExists(atPath: keyFile), "the first node must write cluster.key")
        XCTAssertTrue(first.log().contains("--seed \(first.address)"), "the first node prints the join command")

        var others: [NodeProcess] = []
        for i in 2...5 {
            let n = node("n\(i)", extra: ["--seed", first.address, "--cluster-key-file", keyFile])
            try n.start()
            others.append(n)
        }
        let all = [first] + others
        for n in all { XCTAssertTrue(n.waitReady(), "\(n.name) never became ready") }

        let converged = eventually(timeout: 30) {
            all.allSatisfy { n in
                let s = self.states(seenBy: n)
                return s.count == 5 && s.values.allSatisfy { $0 == "alive" }
            }
        }
        XCTAssertTrue(converged, "not every node saw 5 alive members: \(all.map { "\($0.name): \(states(seenBy: $0))" })")

        // Status JSON shape and cluster identity.
        let statuses = all.compactMap { $0.status() }
        XCTAssertEqual(statuses.count, 5)
        XCTAssertEqual(Set(statuses.map(\.cluster)).count, 1, "all nodes report one cluster")
        XCTAssertEqual(Set(statuses.map(\.id)).count, 5, "node ids are distinct")
        XCTAssertEqual(statuses.first?.members["alive"], 5)
        // Messages are counted by wire type: a converged cluster has probed and acked.
        let counted = eventually(timeout: 10) {
            all.allSatisfy { n in
                guard let m = n.status()?.messages else { return false }
                return m["ping-out", default: 0] > 0 && m["ping-in", default: 0] > 0 && m["ack-out", default: 0] > 0 && m["ack-in", default: 0] > 0
            }
        }
        XCTAssertTrue(counted, "messages not counted by type: \(all.compactMap { $0.status()?.messages })")

        // Crash: SIGKILL n5; every other node must mark it dead.
        let victim = others[3]
        victim.kill9()
        let survivors = all.filter { $0 !== victim }
        let deadSeen = eventually(timeout: 40) { survivors.allSatisfy { self.states(seenBy: $0)[victim.name] == "dead" } }
        XCTAssertTrue(deadSeen, "killed node not dead everywhere: \(survivors.map { "\($0.name): \(states(seenBy: $0)[victim.name] ?? "?")" })")

        // Graceful leave: n4 runs `weft leave`; it exits 0 and others see `left`.
        let leaver = others[2]
        let result = try runWeft(["leave", "--data-dir", leaver.dataDir], timeout: 30)
        XCTAssertEqual(result.status, 0, "weft leave failed: \(result.stderr)")
        XCTAssertTrue(result.stdout.contains("left the cluster"))
        XCTAssertEqual(leaver.waitForExit(timeout: 15), 0, "the leaving node must exit cleanly")
        let remaining = survivors.filter { $0 !== leaver }
        let leftSeen = eventually(timeout: 30) { remaining.allSatisfy { self.states(seenBy: $0)[leaver.name] == "left" } }
        XCTAssertTrue(leftSeen, "leave not seen: \(remaining.map { "\($0.name): \(states(seenBy: $0)[leaver.name] ?? "?")" })")

        // Restart: SIGTERM n3, start it again on the same data dir; it rejoins with a higher incarnation.
        let restarted = others[1]
        let before = restarted.status()?.incarnation ?? 0
        restarted.signal(SIGTERM)
        XCTAssertEqual(restarted.waitForExit(timeout: 15), 0, "SIGTERM must stop the node cleanly")
        XCTAssertFalse(FileManager.default.fileExists(atPath: restarted.dataDir + "/weft.sock"), "control socket removed on stop")
        try restarted.start()
        XCTAssertTrue(restarted.waitReady())
        let after = restarted.status()?.incarnation ?? 0
        XCTAssertGreaterThan(after, before, "a restart must use a higher incarnation")
        let rejoined = eventually(timeout: 30) {
            remaining.allSatisfy { n in
                (n.members() ?? []).contains { $0.name == restarted.name && $0.state == "alive" && $0.incarnation >= after }
            }
        }
        XCTAssertTrue(rejoined, "restarted node not alive with its new incarnation everywhere")
        XCTAssertEqual(restarted.status()?.id, statuses.first { $0.name == restarted.name }?.id, "identity survives a restart")
    }

    /// A node with another cluster key is not admitted, and the cluster counts what it rejected.
    func testWrongClusterKeyIsNotAdmitted() throws {
        let first = node("good1")
        try first.start()
        XCTAssertTrue(first.waitReady())
        let second = node("good2", extra: ["--seed", first.address, "--cluster-key-file", first.dataDir + "/cluster.key"])
        try second.start()
        XCTAssertTrue(second.waitReady())
        XCTAssertTrue(eventually(timeout: 20) { (first.members() ?? []).filter { $0.state == "alive" }.count == 2 })

        let keygen = try runWeft(["keygen"])
        XCTAssertEqual(keygen.status, 0)
        let wrongKey = root.path + "/wrong.key"
        try keygen.stdout.write(toFile: wrongKey, atomically: true, encoding: .utf8)
        let intruder = node("intruder", extra: ["--seed", first.address, "--cluster-key-file", wrongKey])
        try intruder.start()
        XCTAssertTrue(intruder.waitReady())

        let rejected = eventually(timeout: 15) { (first.status()?.drops["unauthenticated"] ?? 0) > 0 }
        XCTAssertTrue(rejected, "the seed must count the intruder's packets as unauthenticated: \(String(describing: first.status()?.drops))")
        // Give gossip time to (wrongly) spread it, then check nobody admitted it.
        sleep(3)
        for n in [first, second] {
            XCTAssertFalse((n.members() ?? []).contains { $0.name == "intruder" }, "\(n.name) admitted a node with the wrong key")
        }
        let intruderStatus = intruder.status()
        XCTAssertEqual(intruderStatus?.joined, false)
        XCTAssertTrue(intruderStatus?.warnings.contains { $0.contains("cluster key") } ?? false, "status warns about the key: \(String(describing: intruderStatus?.warnings))")
        XCTAssertTrue(eventually(timeout: 10) { intruder.log().contains("no seed answered") }, "the log names the problem")
        XCTAssertEqual(intruder.members()?.count, 1, "the intruder learned nothing about the cluster")
    }

    /// `weft join` against a running node, JSON shapes, and the Prometheus endpoint.
    func testJoinCommandJSONAndMetrics() throws {
        let metricsPort = freePort()
        let a = node("ja", extra: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        try a.start()
        XCTAssertTrue(a.waitReady())
        // b shares a's key but has no seed: it joins only when told to.
        let b = node("jb", extra: ["--cluster-key-file", a.dataDir + "/cluster.key"])
        try b.start()
        XCTAssertTrue(b.waitReady())
        XCTAssertEqual(b.members()?.count, 1)

        let join = try runWeft(["join", "--data-dir", b.dataDir, a.address])
        XCTAssertEqual(join.status, 0, join.stderr)
        XCTAssertTrue(join.stdout.contains("joined via \(a.address)"), join.stdout)
        XCTAssertTrue(eventually(timeout: 20) { (a.members() ?? []).filter { $0.state == "alive" }.count == 2 })

        let members = try runWeft(["members", "--data-dir", a.dataDir, "--json"])
        XCTAssertEqual(members.status, 0)
        let parsed = try JSONSerialization.jsonObject(with: Data(members.stdout.utf8)) as? [[String: Any]]
        XCTAssertEqual(parsed?.count, 2)
        for m in parsed ?? [] {
            for key in ["id", "name", "address", "state", "incarnation"] { XCTAssertNotNil(m[key], "member JSON lacks \(key)") }
        }
        let status = try runWeft(["status", "--data-dir", a.dataDir, "--json"])
        let obj = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        for key in ["id", "name", "address", "cluster", "members", "drops"] { XCTAssertNotNil(obj?[key], "status JSON lacks \(key)") }

        let table = try runWeft(["members", "--data-dir", a.dataDir])
        XCTAssertTrue(table.stdout.hasPrefix("  NAME"), table.stdout)
        XCTAssertTrue(table.stdout.contains("jb"))

        // Join to an address where nothing listens reports the failure and exits non-zero.
        let nowhere = try runWeft(["join", "--data-dir", b.dataDir, "127.0.0.1:\(freePort())"])
        XCTAssertEqual(nowhere.status, 1)
        XCTAssertTrue(nowhere.stderr.contains("refused"), nowhere.stderr)

        // b was started without seeds, so it created its own address ring: meeting a's ring
        // must be reported, never merged.
        let warned = eventually(timeout: 20) {
            ((a.status()?.warnings ?? []) + (b.status()?.warnings ?? [])).contains { $0.contains("another address ring") }
        }
        XCTAssertTrue(warned, "separately created rings not reported: \(String(describing: a.status()?.warnings)) \(String(describing: b.status()?.warnings))")
        let aRanges = (try? a.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self))?.ranges ?? []
        let bID = b.status()?.id ?? "?"
        XCTAssertFalse(aRanges.contains { $0.owner == bID }, "b's ring leaked into a's")

        // Prometheus text format.
        let metrics = try httpGet(port: metricsPort, path: "/metrics")
        XCTAssertTrue(metrics.hasPrefix("HTTP/1.1 200"), metrics)
        XCTAssertTrue(metrics.contains("weft_messages_total"), metrics)
        XCTAssertTrue(metrics.contains("weft_members"), metrics)
        // The data plane's counters reach Prometheus too (the UDP socket carries gossip with --no-tun).
        XCTAssertTrue(eventually(timeout: 5) {
            ((try? self.httpGet(port: metricsPort, path: "/metrics")) ?? "").contains("weft_dataplane_udp_packets_total{direction=\"in\"}")
        }, "data-plane counters missing from /metrics")
    }

    private func httpGet(port: UInt16, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw CLIFailure("connect to metrics port failed") }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        _ = req.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

struct CLIFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
