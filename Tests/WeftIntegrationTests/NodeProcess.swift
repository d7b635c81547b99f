import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Locates the `weft` binary built next to the test bundle (or `$WEFT_BIN`).
enum WeftBinary {
    static var path: String {
        if let env = ProcessInfo.processInfo.environment["WEFT_BIN"], !env.isEmpty { return env }
        let testBinary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = testBinary.deletingLastPathComponent()
        // Linux: .build/<triple>/debug/weftPackageTests.xctest; macOS: …/weftPackageTests.xctest/Contents/MacOS/…
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("weft").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return "weft"
    }
}

/// The result of running a short `weft` command to completion.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
}

/// Runs `weft ARGS` and waits (at most `timeout` seconds; then it is killed).
/// Output goes to temporary files, so a chatty command can never block on a full pipe.
func runWeft(_ args: [String], timeout: Double = 30) throws -> CommandResult {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-cmd-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
    _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
    _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: WeftBinary.path)
    p.arguments = args
    p.standardOutput = try FileHandle(forWritingTo: outURL)
    p.standardError = try FileHandle(forWritingTo: errURL)
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    let out = (try? String(contentsOf: outURL, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOf: errURL, encoding: .utf8)) ?? ""
    return CommandResult(status: p.terminationStatus, stdout: out, stderr: err)
}

/// A port that is free for both UDP and TCP on 127.0.0.1 right now.
func freePort() -> UInt16 {
    for _ in 0..<200 {
        let port = UInt16.random(in: 20000...60000)
        if canBind(port, type: Int32(SOCK_STREAM.rawValue)) && canBind(port, type: Int32(SOCK_DGRAM.rawValue)) { return port }
    }
    return UInt16.random(in: 20000...60000)
}

private func canBind(_ port: UInt16, type: Int32) -> Bool {
    let fd = socket(AF_INET, type, 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    } == 0
}

/// A temporary directory removed when the test ends.
final class TempDir {
    let path: String
    init(_ label: String) {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("weft-it-\(label)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// A test case that runs `weft` processes: each test gets its own temp dir; every node made by
/// `node(_:extra:)` is killed by PID when the test ends (its log printed if the test failed),
/// then `cleanups` run in reverse, then the dir is removed.
class NodeProcessTestCase: XCTestCase {
    /// Names the temp dir (`weft-it-LABEL-…`).
    class var label: String { "nodes" }
    var root: TempDir!
    var nodes: [NodeProcess] = []
    var cleanups: [() -> Void] = []

    override func setUp() {
        root = TempDir(Self.label)
        nodes = []
        cleanups = []
    }

    override func tearDown() {
        for c in cleanups.reversed() { c() }
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(4000))") }
        }
        root.remove()
    }

    func node(_ name: String, extra: [String] = []) -> NodeProcess {
        let n = NodeProcess(name: name, root: root.path, extraArgs: extra)
        nodes.append(n)
        return n
    }
}

/// One `weft start --no-tun` process on 127.0.0.1, killed by PID when the test ends.
final class NodeProcess {
    let name: String
    let dataDir: String
    let port: UInt16
    private(set) var process: Process?
    private(set) var logPath: String
    var extraArgs: [String]

    var address: String { "127.0.0.1:\(port)" }
    var client: ControlClient { ControlClient(dataDir: dataDir, timeoutSeconds: 5) }

    init(name: String, root: String, port: UInt16 = freePort(), extraArgs: [String] = []) {
        self.name = name
        self.dataDir = root + "/" + name
        self.port = port
        self.extraArgs = extraArgs
        self.logPath = root + "/" + name + ".log"
    }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: WeftBinary.path)
        p.arguments = ["start", "--no-tun", "--data-dir", dataDir, "--listen", address, "--name", name,
                       "--profile", "fast", "--log-level", "debug"] + extraArgs
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
    }

    var pid: Int32? { process?.processIdentifier }
    var isRunning: Bool { process?.isRunning ?? false }

    func signal(_ sig: Int32) {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, sig)
    }

    /// Waits for the process to exit (bounded); returns its status, or nil if it is still running.
    @discardableResult
    func waitForExit(timeout: Double = 15) -> Int32? {
        guard let p = process else { return nil }
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { return nil }
        return p.terminationStatus
    }

    /// SIGKILL (if still running) and reap. Safe to call more than once.
    func kill9() {
        signal(SIGKILL)
        _ = waitForExit(timeout: 5)
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func status() -> API.Status? { try? client.call(API.Request(op: .status), as: API.Status.self) }
    func members() -> [API.MemberInfo]? { try? client.call(API.Request(op: .members), as: [API.MemberInfo].self) }

    /// Waits until the control socket answers.
    func waitReady(timeout: Double = 20) -> Bool {
        eventually(timeout: timeout) { self.status() != nil }
    }
}

/// Polls `condition` every 100 ms until it holds or `timeout` seconds pass.
func eventually(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(100_000)
    }
    return condition()
}

/// The answer of `http(_:_:port:)`: status, header block and body.
struct HTTPResponse { let status: Int; let headers: String; let body: String }

/// One HTTP/1.1 request to 127.0.0.1:`port` over a plain socket (bounded by a 5 s timeout).
func http(_ method: String, _ path: String, port: UInt16) throws -> HTTPResponse {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EIO) }
    defer { close(fd) }
    var tv = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    let rc = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
    let request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while received.count < 16 << 20 {
        let r = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if r <= 0 { break }
        received += buf[0..<r]
    }
    let text = String(decoding: received, as: UTF8.self)
    guard let split = text.range(of: "\r\n\r\n") else { throw POSIXError(.EBADMSG) }
    let head = String(text[..<split.lowerBound])
    let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
    return HTTPResponse(status: status, headers: head, body: String(text[split.upperBound...]))
}
