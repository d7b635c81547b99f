import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `/metrics` of a real node, parsed by Prometheus' reference parser (Python prometheus_client,
/// installed by bootstrap/setup) and checked against the naming conventions
/// (tests/metrics/check_metrics.py), plus what the parser cannot see: HEAD, 404, every family
/// at zero from the start, drops counted with their reason.
final class MetricsTests: XCTestCase {
    private var root: TempDir!
    private var started: [NodeProcess] = []

    override func setUp() { root = TempDir("metrics") }
    override func tearDown() {
        for n in started { n.kill9() }
        root.remove()
    }

    /// The families a fresh node must expose, with their type and label names.
    static let expected: [String: (type: String, labels: [String])] = [
        "weft_messages_total": ("counter", ["direction", "type"]),
        "weft_control_datagrams_total": ("counter", ["direction"]),
        "weft_dropped_packets_total": ("counter", ["reason"]),
        "weft_members": ("gauge", ["state"]),
        "weft_probe_rtt_seconds": ("histogram", []),
        "weft_signatures_total": ("counter", ["claim", "op"]),
        "weft_dataplane_udp_packets_total": ("counter", ["direction"]),
        "weft_dataplane_udp_bytes_total": ("counter", ["direction"]),
        "weft_dataplane_tun_packets_total": ("counter", ["direction"]),
        "weft_dataplane_dropped_packets_total": ("counter", ["reason"]),
        "weft_peers": ("gauge", ["state"]),
        "weft_ipam_addresses": ("gauge", ["scope", "state"]),
        "weft_ipam_allocations": ("gauge", ["state"]),
        "weft_build_info": ("gauge", ["version"]),
        "weft_start_time_seconds": ("gauge", []),
    ]

    /// Families that exist only with tunnel peers (none with --no-tun).
    static let peerFamilies = ["weft_peer_bytes_total", "weft_peer_packets_total", "weft_peer_last_handshake_age_seconds"]

    /// deploy/grafana/weft.json is valid JSON and queries only families the node exports.
    func testGrafanaDashboardUsesExportedFamilies() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("deploy/grafana/weft.json").path
        let data = try XCTUnwrap(FileManager.default.contents(atPath: path), "missing \(path)")
        let dash = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let panels = try XCTUnwrap(dash["panels"] as? [[String: Any]])
        let exprs = panels.flatMap { ($0["targets"] as? [[String: Any]] ?? []).compactMap { $0["expr"] as? String } }
        XCTAssertGreaterThan(exprs.count, 10)
        let known = Set(Self.expected.keys).union(Self.peerFamilies)
        var used = Set<String>()
        let regex = try NSRegularExpression(pattern: "weft_[a-z_]+")
        for e in exprs {
            for m in regex.matches(in: e, range: NSRange(e.startIndex..., in: e)) {
                var name = String(e[Range(m.range, in: e)!])
                for suffix in ["_bucket", "_sum", "_count"] where name.hasSuffix(suffix) && !known.contains(name) {
                    name = String(name.dropLast(suffix.count))
                }
                XCTAssertTrue(known.contains(name), "the dashboard queries \(name), which the node does not export")
                used.insert(name)
            }
        }
        for f in ["weft_members", "weft_dataplane_udp_bytes_total", "weft_peer_bytes_total", "weft_ipam_addresses", "weft_probe_rtt_seconds"] {
            XCTAssertTrue(used.contains(f), "the dashboard shows \(f)")
        }
    }

    func testMetricsFollowPrometheusConventions() throws {
        let metricsPort = freePort()
        let n = NodeProcess(name: "m", root: root.path, extraArgs: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        started.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady(), n.log())

        // Fresh node: every family is there, counters at zero, before anything happened.
        let first = try http("GET", "/metrics", port: metricsPort)
        XCTAssertEqual(first.status, 200, first.body)
        XCTAssertTrue(first.headers.lowercased().contains("content-type: text/plain; version=0.0.4"), first.headers)
        let fresh = try check(first.body)
        for (name, want) in Self.expected {
            guard let fam = fresh.families[name] else { XCTFail("missing family \(name)"); continue }
            XCTAssertEqual(fam.type, want.type, name)
            XCTAssertEqual(fam.labels, want.labels, name)
            XCTAssertFalse(fam.help.isEmpty, name)
            XCTAssertFalse(fam.samples.isEmpty, "\(name) has series from the start")
        }
        XCTAssertEqual(fresh.value("weft_dropped_packets_total", ["reason": "unauthenticated"]), 0, "drop series exist at zero")
        XCTAssertEqual(fresh.value("weft_dataplane_dropped_packets_total", ["reason": "no-route"]), 0)
        XCTAssertEqual(fresh.families["weft_build_info"]?.samples.first?.value, 1)
        // The node signed its own member record; no IPAM frame went anywhere yet.
        XCTAssertGreaterThanOrEqual(fresh.value("weft_signatures_total", ["claim": "member", "op": "sign"]) ?? 0, 1)
        XCTAssertEqual(fresh.value("weft_signatures_total", ["claim": "ipam-frame", "op": "verify"]), 0)
        XCTAssertNotNil(fresh.families["weft_dropped_packets_total"]?.samples.first { $0.labels["reason"] == "stale-ack" }, "kebab-case reasons")
        // No old names: one unit per family, direction a label.
        XCTAssertNil(fresh.families["weft_dataplane_total"], "the mixed-unit family is gone")
        XCTAssertFalse(first.body.contains("counter=\""), "no label called counter")
        XCTAssertFalse(first.body.contains("type=\"udp-in\""), "datagrams are not a message type")

        // The cluster creator owns the whole ring: node free + used = 2^16.
        XCTAssertTrue(eventually(timeout: 10) { (try? self.check(http("GET", "/metrics", port: metricsPort).body))?.value("weft_ipam_allocations", ["state": "held"]) == 1 })
        let ring = try check(try http("GET", "/metrics", port: metricsPort).body)
        let free = ring.value("weft_ipam_addresses", ["scope": "node", "state": "free"]) ?? -1
        let used = ring.value("weft_ipam_addresses", ["scope": "node", "state": "used"]) ?? -1
        XCTAssertEqual(free + used, 65536, "free \(free) + used \(used)")
        XCTAssertGreaterThan(free, 60000)

        // A datagram the node cannot open is counted under its reason.
        sendUDP(Array(repeating: 0x01, count: 1) + Array(repeating: 0, count: 40), port: n.port)
        XCTAssertTrue(eventually(timeout: 5) {
            guard let m = try? self.check(http("GET", "/metrics", port: metricsPort).body) else { return false }
            let control = m.families["weft_dropped_packets_total"]?.samples.reduce(0) { $0 + $1.value } ?? 0
            let data = m.families["weft_dataplane_dropped_packets_total"]?.samples.reduce(0) { $0 + $1.value } ?? 0
            return control + data >= 1
        }, "a garbage datagram shows up in a drop counter")

        // HEAD answers the headers only; other paths are 404.
        let head = try http("HEAD", "/metrics", port: metricsPort)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body, "")
        XCTAssertTrue(head.headers.contains("Content-Length: "), head.headers)
        XCTAssertEqual(try http("GET", "/nope", port: metricsPort).status, 404)
        XCTAssertEqual(try http("POST", "/metrics", port: metricsPort).status, 405)
    }

    /// Two nodes: per-peer series appear only with tunnels (--no-tun has none), and the members
    /// gauge follows the cluster.
    func testMembersGaugeFollowsTheCluster() throws {
        let metricsPort = freePort()
        let a = NodeProcess(name: "a", root: root.path, extraArgs: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        started.append(a)
        try a.start()
        XCTAssertTrue(a.waitReady(), a.log())
        let b = NodeProcess(name: "b", root: root.path, extraArgs: ["--seed", a.address, "--cluster-key-file", a.dataDir + "/cluster.key"])
        started.append(b)
        try b.start()
        XCTAssertTrue(b.waitReady(), b.log())
        XCTAssertTrue(eventually(timeout: 20) {
            (try? self.check(http("GET", "/metrics", port: metricsPort).body))?.value("weft_members", ["state": "alive"]) == 2
        })
        let m = try check(try http("GET", "/metrics", port: metricsPort).body)
        XCTAssertGreaterThan(m.value("weft_messages_total", ["type": "ping", "direction": "out"]) ?? 0, 0)
        XCTAssertGreaterThan(m.value("weft_messages_total", ["type": "push-pull", "direction": "in"]) ?? 0, 0, "b's join was a push-pull to a")
        XCTAssertGreaterThan(m.families["weft_probe_rtt_seconds"]?.samples.first { $0.name == "weft_probe_rtt_seconds_count" }?.value ?? 0, 0)
        XCTAssertEqual(m.value("weft_peers", ["state": "established"]), 0, "--no-tun: no tunnels")
    }

    // MARK: - Helpers

    struct Sample { let name: String; let labels: [String: String]; let value: Double }
    struct Family { let type: String; let help: String; let labels: [String]; let samples: [Sample] }
    struct Parsed {
        let families: [String: Family]
        /// The value of the sample of `family` (its own name) with exactly `labels`.
        func value(_ family: String, _ labels: [String: String]) -> Double? {
            families[family]?.samples.first { $0.labels == labels }?.value
        }
    }

    /// Runs tests/metrics/check_metrics.py on `text`; fails on any convention problem.
    private func check(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Parsed {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("tests/metrics/check_metrics.py").path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", script]
        let input = Pipe(), output = Pipe()
        p.standardInput = input
        p.standardOutput = output
        p.standardError = FileHandle.standardError
        try p.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        if p.terminationStatus == 3 {
            throw XCTSkip("python3 has no prometheus_client: run bootstrap/setup (pip install prometheus_client)")
        }
        XCTAssertEqual(p.terminationStatus, 0, "check_metrics.py failed", file: file, line: line)
        let obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], file: file, line: line)
        let problems = obj["problems"] as? [String] ?? ["no problems list"]
        XCTAssertEqual(problems, [], "Prometheus convention problems:\n" + problems.joined(separator: "\n"), file: file, line: line)
        var families: [String: Family] = [:]
        for (name, raw) in obj["families"] as? [String: [String: Any]] ?? [:] {
            let samples = (raw["samples"] as? [[Any]] ?? []).compactMap { s -> Sample? in
                guard s.count == 3, let n = s[0] as? String, let l = s[1] as? [String: String], let v = s[2] as? Double else { return nil }
                return Sample(name: n, labels: l, value: v)
            }
            families[name] = Family(type: raw["type"] as? String ?? "", help: raw["help"] as? String ?? "",
                                    labels: raw["labels"] as? [String] ?? [], samples: samples)
        }
        // What the Python parser is lenient about: every # TYPE has its # HELP.
        let lines = text.split(separator: "\n")
        for t in lines where t.hasPrefix("# TYPE ") {
            let name = t.split(separator: " ")[2]
            XCTAssertTrue(lines.contains { $0.hasPrefix("# HELP \(name) ") }, "\(name) has # HELP", file: file, line: line)
        }
        return Parsed(families: families)
    }


    private func sendUDP(_ bytes: [UInt8], port: UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
    }
}
