import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Bad input to the `weft` command: one clear line, non-zero exit, never a stack trace.
final class CommandErrorTests: XCTestCase {
    private var root: TempDir!
    private var started: [NodeProcess] = []

    override func setUp() { root = TempDir("errors") }
    override func tearDown() {
        for n in started { n.kill9() }
        root.remove()
    }

    private func assertCleanError(_ r: CommandResult, contains needle: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertNotEqual(r.status, 0, "expected failure; stdout: \(r.stdout)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(needle), "stderr should mention '\(needle)': \(r.stderr)", file: file, line: line)
        XCTAssertFalse(r.stderr.contains("Fatal error") || r.stderr.contains("Stack dump") || r.stderr.contains("Backtrace"), "no crash output: \(r.stderr)", file: file, line: line)
    }

    func testNoNodeRunning() throws {
        let r = try runWeft(["status", "--data-dir", root.path + "/none"])
        assertCleanError(r, contains: "no weft node is running")
        // With --json the error is a JSON object on stdout (CLIContractTests has the details).
        let env = try runWeft(["members", "--data-dir", root.path + "/none2", "--json"])
        XCTAssertEqual(env.status, 1)
        XCTAssertTrue(env.stdout.contains("weft start --data-dir"), env.stdout)
    }

    func testBadAddresses() throws {
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/a", "--listen", "localhost"]), contains: "is not an address")
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/b", "--listen", "127.0.0.1:99999"]), contains: "is not an address")
        assertCleanError(
            try runWeft(["start", "--no-tun", "--data-dir", root.path + "/c", "--listen", "127.0.0.1:\(freePort())", "--seed", "not an address", "--cluster-key", try keygen()]),
            contains: "is not an address")
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/d", "--log-level", "loud"]), contains: "--log-level")
    }

    func testPortInUse() throws {
        let n = NodeProcess(name: "holder", root: root.path)
        started.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady())
        let r = try runWeft(["start", "--no-tun", "--data-dir", root.path + "/other", "--listen", n.address])
        assertCleanError(r, contains: "already in use")
        // A second node on the same data dir is refused too.
        let same = try runWeft(["start", "--no-tun", "--data-dir", n.dataDir, "--listen", "127.0.0.1:\(freePort())"])
        assertCleanError(same, contains: "already running")
        XCTAssertNotNil(n.status(), "the running node is unaffected")
    }

    func testUnreadableAndInvalidKeys() throws {
        let port = "127.0.0.1:\(freePort())"
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/k1", "--listen", port, "--cluster-key-file", root.path + "/missing.key"]),
                         contains: "cannot read cluster key file")
        let bad = root.path + "/bad.key"
        try "hello".write(toFile: bad, atomically: true, encoding: .utf8)
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/k2", "--listen", port, "--cluster-key-file", bad]),
                         contains: "does not hold a valid key")
        assertCleanError(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/k3", "--listen", port, "--seed", "127.0.0.1:1"]),
                         contains: "--cluster-key-file")
    }

    func testCorruptDatabase() throws {
        let dir = root.path + "/corrupt"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        _ = FileManager.default.createFile(atPath: dir + "/weft.db", contents: garbage)
        let r = try runWeft(["start", "--no-tun", "--data-dir", dir, "--listen", "127.0.0.1:\(freePort())"])
        assertCleanError(r, contains: "weft.db")
        XCTAssertEqual(FileManager.default.contents(atPath: dir + "/weft.db"), garbage, "the damaged file is left as it was")
    }

    func testMalformedControlRequestsLeaveNodeRunning() throws {
        let n = NodeProcess(name: "ctl", root: root.path)
        started.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady())
        let garbage = try n.client.exchange(Array("{not json".utf8))
        let obj = try JSONSerialization.jsonObject(with: Data(garbage)) as? [String: Any]
        XCTAssertEqual(obj?["ok"] as? Bool, false)
        XCTAssertEqual((obj?["error"] as? [String: Any])?["code"] as? String, "bad-request")
        let unknown = try n.client.exchange(Array(#"{"v":1,"op":"explode"}"#.utf8))
        XCTAssertTrue(String(decoding: unknown, as: UTF8.self).contains("bad-request"))
        let future = try n.client.exchange(Array(#"{"v":99,"op":"status"}"#.utf8))
        XCTAssertTrue(String(decoding: future, as: UTF8.self).contains("unsupported-version"))
        XCTAssertNotNil(n.status(), "the node keeps serving after bad requests")
    }

    /// Without the right to create a TUN device, `weft start` says exactly what is missing.
    func testTUNWithoutRootSaysWhatIsMissing() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to run the command as an unprivileged user (runuser)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/runuser") || FileManager.default.isExecutableFile(atPath: "/sbin/runuser") else {
            throw XCTSkip("runuser (util-linux) is not installed")
        }
        let dir = root.path + "/unpriv"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        chmod(root.path, 0o755)
        chown(dir, 65534, 65534)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/runuser")
        p.arguments = ["-u", "nobody", "--", WeftBinary.path, "start", "--data-dir", dir + "/d", "--listen", "127.0.0.1:\(freePort())"]
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let data = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertNotEqual(p.terminationStatus, 0)
        XCTAssertTrue(text.contains("needs root") && text.contains("--no-tun"), text)
    }

    private func keygen() throws -> String {
        let r = try runWeft(["keygen"])
        XCTAssertEqual(r.status, 0)
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
