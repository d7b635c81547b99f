import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `weft doctor` against real `weft start --no-tun` processes on 127.0.0.1: a healthy cluster is
/// all ok (exit 0); a member whose UDP port is blocked (an iptables rule on lo for that one port)
/// and a stopped member fail with the right hint (exit 1); a node with another cluster key that
/// sends to a member shows up as a key mismatch.
final class DoctorTests: NodeProcessTestCase {
    override class var label: String { "doctor" }

    /// Starts `names.count` nodes joined through the first; waits until all see all alive.
    private func cluster(_ names: [String]) throws -> [NodeProcess] {
        let first = node(names[0])
        try first.start()
        XCTAssertTrue(first.waitReady(), first.log())
        var all = [first]
        for name in names.dropFirst() {
            let n = node(name, extra: ["--seed", first.address, "--cluster-key-file", first.dataDir + "/cluster.key"])
            try n.start()
            all.append(n)
        }
        for n in all { XCTAssertTrue(n.waitReady(), n.log()) }
        let converged = eventually(timeout: 30) {
            all.allSatisfy { n in
                let m = n.members() ?? []
                return m.count == all.count && m.allSatisfy { $0.state == "alive" }
            }
        }
        XCTAssertTrue(converged, "the cluster did not converge: \(all.map { "\($0.name): \(($0.members() ?? []).map { "\($0.name)=\($0.state)" })" })")
        return all
    }

    /// A fake CNI install: an executable `weft-cni` and a conflist naming it.
    private func cniDirs() throws -> [String] {
        let bin = root.path + "/cni-bin", conf = root.path + "/cni-conf"
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: bin + "/weft-cni", contents: Data("#!/bin/sh\n".utf8), attributes: [.posixPermissions: 0o755])
        let conflist = #"{"cniVersion": "1.0.0", "name": "weft", "plugins": [{"type": "weft-cni"}]}"#
        _ = FileManager.default.createFile(atPath: conf + "/weft.conflist", contents: Data(conflist.utf8))
        return ["--cni-bin-dir", bin, "--cni-conf-dir", conf]
    }

    private func doctor(_ n: NodeProcess, _ extra: [String] = []) throws -> (CommandResult, API.DoctorReport) {
        let r = try runWeft(["doctor", "--json", "--data-dir", n.dataDir] + extra, timeout: 60)
        let report = try JSONDecoder().decode(API.DoctorReport.self, from: Data(r.stdout.utf8))
        return (r, report)
    }

    private func find(_ report: API.DoctorReport, _ subject: String, _ check: String) -> [API.DoctorCheck] {
        report.checks.filter { $0.subject == subject && $0.check == check }
    }

    func testHealthyClusterIsAllOK() throws {
        let all = try cluster(["a", "b", "c"])
        let cni = try cniDirs()
        let (r, report) = try doctor(all[0], cni)
        let bad = report.checks.filter { $0.status != "ok" }
        XCTAssertEqual(r.status, 0, "doctor must exit 0 on a healthy cluster: \(bad)\n\(r.stderr)")
        XCTAssertEqual(bad, [], "every check is ok on a healthy cluster")
        XCTAssertTrue(report.ok)
        XCTAssertEqual(report.summary["fail"], 0)
        for member in ["b", "c"] {
            for check in ["member-state", "tcp-out", "tcp-in", "udp-out", "udp-in", "mtu", "clock", "tunnel"] {
                XCTAssertEqual(find(report, member, check).count, 1, "one \(check) line for \(member)")
            }
            let skew = try XCTUnwrap(find(report, member, "clock").first?.values?["skewMs"])
            XCTAssertLessThan(abs(skew), 500, "one host: the clocks agree")
        }
        for check in ["membership", "key-mismatch", "ipam", "cni-plugin", "cni-config"] {
            XCTAssertFalse(find(report, "a", check).isEmpty, "a \(check) line for this node")
        }
        // Without a CNI install the CNI lines warn (not fail): exit still 0.
        let (r2, report2) = try doctor(all[1], ["--cni-bin-dir", root.path + "/none", "--cni-conf-dir", root.path + "/none"])
        XCTAssertEqual(r2.status, 0)
        XCTAssertEqual(find(report2, "b", "cni-plugin").first?.status, "warn")
        XCTAssertEqual(find(report2, "b", "cni-config").first?.status, "warn")
        // The human form: one line per check, a summary, exit 0.
        let text = try runWeft(["doctor", "--data-dir", all[2].dataDir] + cni, timeout: 60)
        XCTAssertEqual(text.status, 0, text.stdout + text.stderr)
        XCTAssertTrue(text.stdout.contains("member a ("), text.stdout)
        XCTAssertTrue(text.stdout.contains(" 0 fail"), text.stdout)
        // Every drop counter is in `weft status`: control plane, TCP admission, DNS, data plane.
        let status = try XCTUnwrap(all[0].status())
        for k in ["unauthenticated", "tcp-unauthenticated", "dns-dropped", "dns-upstream-failed"] { XCTAssertNotNil(status.drops[k], "drops has \(k)") }
        XCTAssertEqual(status.dataPlaneDrops?["not-ipv4"], 0, "dataPlaneDrops has every data-plane reason")
        let human = try runWeft(["status", "--data-dir", all[0].dataDir])
        XCTAssertTrue(human.stdout.contains("\ndata drops "), human.stdout)
        // `weft peers` on a --no-tun node says so (not a guess between two causes).
        let peers = try runWeft(["peers", "--data-dir", all[0].dataDir])
        XCTAssertEqual(peers.status, 0)
        XCTAssertEqual(peers.stdout, "no tunnels: this node runs with --no-tun (control plane only, nothing to carry)\n")
    }

    func testBlockedUDPAndStoppedMemberFailWithTheRightHint() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root for an iptables rule on lo (blocking one member's UDP port)") }
        guard let iptables = ["/usr/sbin/iptables", "/sbin/iptables"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            throw XCTSkip("iptables is not installed (bootstrap/setup installs it)")
        }
        let all = try cluster(["a", "b", "c"])
        let (a, b, c) = (all[0], all[1], all[2])
        // Only datagrams to c's port on loopback: nothing else on the host is touched.
        let rule = ["INPUT", "-i", "lo", "-p", "udp", "-d", "127.0.0.1", "--dport", String(c.port), "-j", "DROP", "-m", "comment", "--comment", "weft-doctor-test"]
        let add = try runTool(iptables, ["-I"] + rule)
        XCTAssertEqual(add.status, 0, "iptables -I failed: \(add.stderr)")
        cleanups.append { _ = try? runTool(iptables, ["-D"] + rule) }
        b.signal(SIGTERM)
        XCTAssertNotNil(b.waitForExit(timeout: 15), "b did not stop")

        let (r, report) = try doctor(a, try cniDirs())
        XCTAssertEqual(r.status, 1, "a failed check exits 1: \(report.checks.filter { $0.status != "ok" })")
        XCTAssertFalse(report.ok)
        // c: UDP into it is blocked; TCP both ways and UDP from it still work.
        let udpOut = try XCTUnwrap(find(report, "c", "udp-out").first, "\(report.checks)")
        XCTAssertEqual(udpOut.status, "fail", "\(udpOut)")
        XCTAssertTrue(udpOut.hint.contains("allow UDP port \(c.port)"), udpOut.hint)
        XCTAssertEqual(find(report, "c", "tcp-out").first?.status, "ok")
        XCTAssertEqual(find(report, "c", "tcp-in").first?.status, "ok")
        XCTAssertEqual(find(report, "c", "udp-in").first?.status, "ok")
        // b: stopped, so nothing listens on its TCP port.
        let tcp = try XCTUnwrap(find(report, "b", "tcp-out").first, "\(report.checks)")
        XCTAssertEqual(tcp.status, "fail")
        XCTAssertTrue(tcp.message.contains("refused"), tcp.message)
        XCTAssertTrue(tcp.hint.contains("is weft running there"), tcp.hint)
        // The human form names the failing checks and their hints.
        let text = try runWeft(["doctor", "--data-dir", a.dataDir], timeout: 60)
        XCTAssertEqual(text.status, 1)
        XCTAssertTrue(text.stdout.contains("fail  udp-out"), text.stdout)
        XCTAssertTrue(text.stdout.contains("-> allow UDP port \(c.port)"), text.stdout)

        // Once a has found b dead, the member line itself fails and says what to do.
        XCTAssertTrue(eventually(timeout: 40) { a.members()?.first { $0.name == "b" }?.state == "dead" }, "a never saw b dead")
        let (r3, report3) = try doctor(a, try cniDirs())
        XCTAssertEqual(r3.status, 1)
        let state = try XCTUnwrap(find(report3, "b", "member-state").first)
        XCTAssertEqual(state.status, "fail", "\(state)")
        XCTAssertTrue(state.hint.contains("start it again") && state.hint.contains("weft ipam reclaim b"), state.hint)
    }

    func testWrongKeyNodeIsAKeyMismatch() throws {
        let all = try cluster(["a", "b"])
        let a = all[0]
        // A node with its own key that knows a as a seed: everything it sends a fails to open.
        let keyFile = root.path + "/other.key"
        let key = try runWeft(["keygen"])
        XCTAssertEqual(key.status, 0)
        _ = FileManager.default.createFile(atPath: keyFile, contents: Data(key.stdout.utf8), attributes: [.posixPermissions: 0o600])
        let x = node("x", extra: ["--seed", a.address, "--cluster-key-file", keyFile])
        try x.start()
        XCTAssertTrue(x.waitReady(), x.log())
        var report: API.DoctorReport?
        let seen = eventually(timeout: 20) {
            report = try? self.doctor(a).1
            return report.map { self.find($0, "a", "key-mismatch").contains { $0.status != "ok" } } ?? false
        }
        XCTAssertTrue(seen, "no key mismatch reported: \(report?.checks.filter { $0.check == "key-mismatch" } ?? [])")
        let lines = find(report!, "a", "key-mismatch").filter { $0.status != "ok" }
        XCTAssertTrue(lines.contains { $0.message.contains("from \(x.address) failed to open") && $0.status == "fail" },
                      "the mismatch names the sender's address and fails: \(lines)")
        XCTAssertFalse(report!.ok, "a key mismatch is a failed check")
        XCTAssertTrue(lines.allSatisfy { $0.hint.contains("cluster") }, "\(lines)")
        // The healthy member is not blamed.
        XCTAssertEqual(find(report!, "b", "tcp-out").first?.status, "ok")
    }
}

/// Runs a system tool (iptables, chromium) to completion, at most `timeout` seconds (then it is
/// killed). Output goes to temporary files, so a chatty tool never blocks on a full pipe.
func runTool(_ path: String, _ args: [String], timeout: Double = 30) throws -> CommandResult {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-tool-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: path)
    p.arguments = args
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    return CommandResult(status: p.terminationStatus,
                         stdout: (try? String(contentsOf: outURL, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOf: errURL, encoding: .utf8)) ?? "")
}
