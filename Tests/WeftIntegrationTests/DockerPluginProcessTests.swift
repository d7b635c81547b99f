import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// `weft docker-plugin` as a process beside a `--no-tun` node (no root: the calls that need no
/// kernel changes): the IPAM calls allocate and release through the node, bad input gets JSON
/// errors, a stopped node is a clear error, SIGTERM removes the socket. The veth calls and Docker
/// itself are covered by tests/e2e/docker-two-hosts.sh.
final class DockerPluginProcessTests: XCTestCase {
    private var root: TempDir!
    private var node: NodeProcess!
    private var plugin: Process?

    override func setUp() { root = TempDir("dockerplugin") }
    override func tearDown() {
        if let p = plugin, p.isRunning { kill(p.processIdentifier, SIGKILL); p.waitUntilExit() }
        if let n = node, n.isRunning { n.kill9() }
        root.remove()
    }

    /// One raw exchange on the plugin socket; returns (status, body).
    func raw(_ socketPath: String, _ request: [UInt8]) -> (Int, String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in socketPath.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { return (-1, "connect failed") }
        var tv = timeval(tv_sec: 15, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
            let text = String(decoding: out, as: UTF8.self)
            if let r = text.range(of: "\r\n\r\n"), let cl = text.range(of: "Content-Length: "),
               let len = Int(text[cl.upperBound...].prefix(while: { $0.isNumber })),
               text[r.upperBound...].utf8.count >= len { break }
        }
        let text = String(decoding: out, as: UTF8.self)
        let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return (status, body)
    }

    func post(_ socketPath: String, _ method: String, _ body: String) -> (Int, String) {
        raw(socketPath, Array("POST /\(method) HTTP/1.1\r\nHost: plugin\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)".utf8))
    }

    func testIPAMCallsThroughTheNodeAndCleanErrors() throws {
        node = NodeProcess(name: "dk", root: root.path)
        try node.start()
        XCTAssertTrue(node.waitReady(), node.log())
        XCTAssertTrue(eventually(timeout: 15) { node.status()?.overlayAddress != nil }, "no overlay address: \(node.log())")
        let sock = root.path + "/p.sock"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: WeftBinary.path)
        p.arguments = ["docker-plugin", "--data-dir", node.dataDir, "--socket", sock, "--docker-host", "", "--log-file", root.path + "/plugin.log"]
        try p.run()
        plugin = p
        XCTAssertTrue(eventually(timeout: 10) { FileManager.default.fileExists(atPath: sock) }, "plugin socket missing")

        XCTAssertEqual(post(sock, "Plugin.Activate", "").1, #"{"Implements":["NetworkDriver","IpamDriver"]}"#)
        let (gs, gw) = post(sock, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#)
        XCTAssertEqual(gs, 200); XCTAssertTrue(gw.contains("\(node.status()?.overlayAddress ?? "?")/16"), gw)
        let (s, b) = post(sock, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Address":"","Options":null}"#)
        XCTAssertEqual(s, 200, b)
        let address = try XCTUnwrap(b.split(separator: "\"").dropFirst(3).first.map(String.init)).split(separator: "/").first.map(String.init)
        let held = try node.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self).allocations
        XCTAssertTrue(held.contains { $0.handle.hasPrefix("docker:") && $0.address == address }, "\(held) lacks \(address ?? "?")")
        XCTAssertEqual(post(sock, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"\#(address ?? "")"}"#).0, 200)
        let after = try node.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self).allocations
        XCTAssertFalse(after.contains { $0.handle.hasPrefix("docker:") }, "\(after)")

        XCTAssertEqual(raw(sock, Array("\u{1}\u{2}garbage\r\n\r\n".utf8)).0, 400)
        XCTAssertEqual(post(sock, "NetworkDriver.Nope", "{}").0, 404)
        let (hs, hb) = raw(sock, Array("POST /IpamDriver.RequestAddress HTTP/1.1\r\nContent-Length: 50000000\r\n\r\n".utf8))
        XCTAssertEqual(hs, 413); XCTAssertTrue(hb.contains("\"Err\""), hb)
        XCTAssertEqual(post(sock, "Plugin.Activate", "").0, 200, "still answering after bad input")
        XCTAssertTrue(node.isRunning)

        node.signal(SIGTERM)
        _ = node.waitForExit()
        let (ds, db) = post(sock, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":{}}"#)
        XCTAssertEqual(ds, 500); XCTAssertTrue(db.contains("no weft node is running"), db)

        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: sock), "SIGTERM removes the socket")
    }

    func testUsageErrors() throws {
        let r = try runWeft(["docker-plugin", "--socket", "relative.sock"])
        XCTAssertEqual(r.status, 2); XCTAssertTrue(r.stderr.contains("--socket must be an absolute path"), r.stderr)
        let h = try runWeft(["docker-plugin", "--help"])
        XCTAssertEqual(h.status, 0); XCTAssertTrue(h.stdout.contains("Example"))
        // A path that is not a socket: exit 1, the file is left alone.
        let file = root.path + "/not-a-socket"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        let f = try runWeft(["docker-plugin", "--socket", file, "--data-dir", root.path + "/none"], timeout: 10)
        XCTAssertEqual(f.status, 1, f.stderr); XCTAssertTrue(f.stderr.contains("is not a socket"), f.stderr)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "x")
    }
}
