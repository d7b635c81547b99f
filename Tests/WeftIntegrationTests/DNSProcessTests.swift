import Foundation
import WeftAPI
import XCTest

/// The cluster DNS with real processes and real `dig` (Debian dnsutils): names from `weft alloc
/// --name` on one node answered by another node's resolver, removal, a dead node's names going
/// and coming back, a restart keeping names, forwarding to a test-made upstream on 127.0.0.1
/// (never the machine's own resolver), SERVFAIL when the upstream is gone, bad queries.
final class DNSProcessTests: XCTestCase {
    var root: TempDir!
    var nodes: [NodeProcess] = []
    var upstream: Process?

    override func setUp() { root = TempDir("dns") }
    override func tearDown() {
        for n in nodes { n.kill9() }
        if let u = upstream, u.isRunning { kill(u.processIdentifier, SIGKILL); u.waitUntilExit() }
        if (testRun?.totalFailureCount ?? 0) > 0 { for n in nodes { print("---- \(n.name) ----\n\(n.log().suffix(3000))") } }
        root.remove()
    }

    func haveDig() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/dig") else {
            throw XCTSkip("dig (dnsutils) is not installed: bootstrap/setup installs it")
        }
    }

    /// `dig` against 127.0.0.1:port; returns its output (+short unless `full`).
    func dig(_ port: UInt16, _ args: [String], full: Bool = false) -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
        p.arguments = ["@127.0.0.1", "-p", "\(port)", "+tries=1", "+time=3"] + (full ? [] : ["+short"]) + args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try? p.run()
        p.waitUntilExit()
        return String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    /// A fake upstream on 127.0.0.1 that answers every A question with 192.0.2.7 (a test range).
    func startUpstream(_ port: UInt16) throws {
        let script = """
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", \(port))); s.settimeout(120)
        while True:
            try: d, a = s.recvfrom(4096)
            except Exception: break
            e = 12
            while d[e] != 0: e += d[e] + 1
            q = d[12:e + 5]
            s.sendto(d[:2] + b"\\x81\\x80\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x00" + q + b"\\xc0\\x0c\\x00\\x01\\x00\\x01\\x00\\x00\\x00\\x3c\\x00\\x04" + bytes([192, 0, 2, 7]), a)
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        try p.run()
        upstream = p
        Thread.sleep(forTimeInterval: 0.3)
    }

    func node(_ name: String, dns: UInt16, upstream: UInt16, extra: [String] = []) -> NodeProcess {
        let n = NodeProcess(name: name, root: root.path,
                            extraArgs: ["--dns-listen", "127.0.0.1:\(dns)", "--dns-upstream", "127.0.0.1:\(upstream)"] + extra)
        nodes.append(n)
        return n
    }

    func weft(_ n: NodeProcess, _ args: [String]) throws -> CommandResult {
        try runWeft(args + ["--data-dir", n.dataDir])
    }

    func testNamesAcrossNodesForwardingAndBadInput() throws {
        try haveDig()
        let upPort = freePort(), dnsA = freePort(), dnsB = freePort()
        try startUpstream(upPort)
        let a = node("a", dns: dnsA, upstream: upPort)
        try a.start()
        XCTAssertTrue(a.waitReady())
        let b = node("b", dns: dnsB, upstream: upPort, extra: ["--seed", a.address, "--cluster-key-file", a.dataDir + "/cluster.key"])
        try b.start()
        XCTAssertTrue(b.waitReady())
        XCTAssertTrue(eventually(timeout: 15) { b.status()?.overlayAddress != nil })

        let r1 = try weft(a, ["alloc", "c1", "--name", "db"])
        XCTAssertEqual(r1.status, 0, r1.stderr)
        let r2 = try weft(b, ["alloc", "c2", "--name", "db"])
        XCTAssertEqual(r2.status, 0, r2.stderr)
        let addrA = String(r1.stdout.split(separator: "/")[0]), addrB = String(r2.stdout.split(separator: "/")[0])
        // Both containers named db, from either node's resolver, in either order (rotated).
        XCTAssertTrue(eventually(timeout: 10) { Set(self.dig(dnsB, ["db.weft.internal"]).split(separator: "\n").map(String.init)) == [addrA, addrB] })
        XCTAssertEqual(Set(dig(dnsA, ["db.weft.internal"]).split(separator: "\n").map(String.init)), [addrA, addrB])
        var firsts = Set<String>()
        for _ in 0..<6 { firsts.insert(String(dig(dnsA, ["db.weft.internal"]).split(separator: "\n").first ?? "")) }
        XCTAssertEqual(firsts.count, 2, "several containers of one name are answered round robin")
        XCTAssertEqual(dig(dnsA, ["+tcp", "db.weft.internal"]).split(separator: "\n").count, 2, "TCP answers too")
        XCTAssertTrue(dig(dnsB, ["-x", addrA]).contains("db.weft.internal."), "PTR for overlay addresses")
        let nx = dig(dnsA, ["nothere.weft.internal"], full: true)
        XCTAssertTrue(nx.contains("status: NXDOMAIN") && nx.contains("flags: qr aa"), nx)
        XCTAssertEqual(dig(dnsA, ["example.test"]).trimmingCharacters(in: .whitespacesAndNewlines), "192.0.2.7", "forwarded to the upstream")
        // weft dns and weft status tell the same.
        let list = try weft(b, ["dns", "--json"])
        let records = try JSONDecoder().decode([API.DNSRecord].self, from: Data(list.stdout.utf8))
        XCTAssertEqual(Set(records.map(\.address)), [addrA, addrB])
        XCTAssertTrue(records.allSatisfy { $0.fqdn == "db.weft.internal" && $0.served })
        XCTAssertEqual(b.status()?.dnsRecords, 2)
        XCTAssertEqual(b.status()?.dnsAddress, "127.0.0.1:\(dnsB)")
        // Invalid names are refused before anything is allocated.
        let bad = try weft(a, ["alloc", "c3", "--name", "no_good"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertTrue(bad.stderr.contains("invalid name"), bad.stderr)
        // Removal reaches the other node.
        XCTAssertEqual(try weft(a, ["release", "c1"]).status, 0)
        XCTAssertTrue(eventually(timeout: 10) { self.dig(dnsB, ["db.weft.internal"]).trimmingCharacters(in: .whitespacesAndNewlines) == addrB })
        // A service name outside containers.
        XCTAssertEqual(try weft(b, ["dns", "add", "registry", "10.42.250.1"]).status, 0)
        XCTAssertTrue(eventually(timeout: 10) { self.dig(dnsA, ["registry.weft.internal"]).contains("10.42.250.1") })
        // A killed node's names go when it is declared dead; its restart brings them back.
        b.kill9()
        XCTAssertTrue(eventually(timeout: 20) { self.dig(dnsA, ["db.weft.internal"], full: true).contains("NXDOMAIN") }, "dead node's names still served")
        try b.start()
        XCTAssertTrue(b.waitReady())
        XCTAssertTrue(eventually(timeout: 15) { self.dig(dnsA, ["db.weft.internal"]).contains(addrB) }, "names come back with their node")
        XCTAssertTrue(dig(dnsB, ["registry.weft.internal"]).contains("10.42.250.1"), "a restart keeps the node's names")
        // The upstream gone: SERVFAIL, and the node keeps answering cluster names.
        kill(upstream!.processIdentifier, SIGKILL); upstream!.waitUntilExit()
        let sf = dig(dnsA, ["example.test"], full: true)
        XCTAssertTrue(sf.contains("status: SERVFAIL"), sf)
        XCTAssertTrue(dig(dnsA, ["db.weft.internal"]).contains(addrB))
        // Garbage: FORMERR or silence, never a crash.
        let sock = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sock) }
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET); sin.sin_port = dnsA.bigEndian; sin.sin_addr.s_addr = inet_addr("127.0.0.1")
        for junk in [[UInt8](repeating: 0xFF, count: 40), [0x12, 0x34, 0x01], [UInt8](repeating: 0xC0, count: 600)] {
            let sent = withUnsafePointer(to: &sin) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                    junk.withUnsafeBytes { buf in sendto(sock, buf.baseAddress, buf.count, 0, sa, socklen_t(MemoryLayout<sockaddr_in>.size)) }
                }
            }
            XCTAssertEqual(sent, junk.count)
        }
        XCTAssertTrue(dig(dnsA, ["db.weft.internal"]).contains(addrB), "the resolver survived bad queries")
        XCTAssertTrue(a.isRunning)
    }
}
