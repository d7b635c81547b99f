import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The command-line contract of docs/operations.md, run against the real `weft` binary:
/// exit 0 ok, 1 runtime failure, 2 usage error, for every command and flag; with `--json`, an
/// error is `{"ok": false, "error": {"code", "message"}}` on stdout and stderr stays empty.
final class CLIContractTests: XCTestCase {
    private var root: TempDir!
    private var started: [NodeProcess] = []

    override func setUp() { root = TempDir("cli") }
    override func tearDown() {
        for n in started { n.kill9() }
        root.remove()
    }

    // MARK: - Helpers

    private struct JSONError {
        let code: String
        let message: String
        let details: [String: String]
    }

    /// The `--json` error object on stdout (nil when stdout is not one).
    private func jsonError(_ r: CommandResult) -> JSONError? {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any],
              obj["ok"] as? Bool == false, let e = obj["error"] as? [String: Any],
              let code = e["code"] as? String, let message = e["message"] as? String else { return nil }
        return JSONError(code: code, message: message, details: e["details"] as? [String: String] ?? [:])
    }

    private func assertFails(
        _ r: CommandResult, status: Int32, message needle: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(r.status, status, "exit status; stderr: \(r.stderr) stdout: \(r.stdout)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains(needle), "stderr should say '\(needle)': \(r.stderr)", file: file, line: line)
        XCTAssertTrue(r.stderr.contains("Error: "), "one 'Error:' line: \(r.stderr)", file: file, line: line)
        for noise in ["Fatal error", "Stack dump", "NSCocoaErrorDomain", "failed: Not a directory"] {
            XCTAssertFalse(r.stderr.contains(noise), "no '\(noise)': \(r.stderr)", file: file, line: line)
        }
    }

    private func assertJSONFails(
        _ r: CommandResult, status: Int32, code: String, message needle: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        XCTAssertEqual(r.status, status, "exit status; stdout: \(r.stdout) stderr: \(r.stderr)", file: file, line: line)
        guard let e = jsonError(r) else { return XCTFail("stdout is not a JSON error object: \(r.stdout)", file: file, line: line) }
        XCTAssertEqual(e.code, code, file: file, line: line)
        XCTAssertTrue(e.message.contains(needle), "message should say '\(needle)': \(e.message)", file: file, line: line)
        XCTAssertEqual(r.stderr, "", "with --json nothing goes to stderr", file: file, line: line)
    }

    private func startNode(_ name: String, extra: [String] = []) throws -> NodeProcess {
        let n = NodeProcess(name: name, root: root.path, extraArgs: extra)
        started.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady(), "node \(name) did not start: \(n.log())")
        return n
    }

    // MARK: - Exit codes

    func testNoArgumentsIsAUsageError() throws {
        let r = try runWeft([])
        assertFails(r, status: 2, message: "no command given")
        XCTAssertTrue(r.stderr.contains("SUBCOMMANDS"), "the help goes with it: \(r.stderr)")
        assertJSONFails(try runWeft(["--json"]), status: 2, code: "usage", message: "Unknown option '--json'")
    }

    func testHelpAndVersionExitZeroWithExamples() throws {
        for cmd in ["start", "status", "members", "peers", "join", "leave", "alloc", "release", "ipam", "keygen"] {
            let r = try runWeft([cmd, "--help"])
            XCTAssertEqual(r.status, 0, cmd)
            XCTAssertTrue(r.stdout.contains("Example"), "\(cmd) --help shows examples: \(r.stdout)")
        }
        let v = try runWeft(["--version"])
        XCTAssertEqual(v.status, 0)
        XCTAssertFalse(v.stdout.isEmpty)
    }

    /// Every bad flag value of `weft start` is a usage error (2) that names the flag, and is found
    /// before the data dir is created.
    func testEveryBadStartFlagExitsTwoBeforeWritingAnything() throws {
        let dir = root.path + "/never"
        let keyDir = root.path + "/keydir"
        try FileManager.default.createDirectory(atPath: keyDir, withIntermediateDirectories: true)
        let emptyKey = root.path + "/empty.key"
        _ = FileManager.default.createFile(atPath: emptyKey, contents: Data())
        let cases: [([String], String)] = [
            (["--mtu", "100"], "--mtu"),
            (["--log-level", "loud"], "--log-level"),
            (["--profile", "slow"], "--profile"),
            (["--reclaim-after", "forever"], "--reclaim-after"),
            (["--tun-name", "a/b"], "--tun-name"),
            (["--subnet", "10.42.0.0/99"], "--subnet"),
            (["--name", ""], "--name must not be empty"),
            (["--name", "   "], "--name must not be empty"),
            (["--name", " padded"], "starts or ends with a space"),
            (["--listen", "localhost"], "--listen 'localhost' is not an address"),
            (["--listen", "127.0.0.1:99999"], "--listen"),
            (["--advertise", "nohost"], "--advertise 'nohost' is not an address"),
            (["--metrics-listen", "x"], "--metrics-listen"),
            (["--seed", "not an address", "--cluster-key-file", emptyKey], "--seed"),
            (["--cluster-key", "junk"], "--cluster-key is not a valid cluster key"),
            (["--cluster-key-file", keyDir], "it is a directory"),
            (["--cluster-key-file", emptyKey], "is empty"),
            (["--cluster-key-file", root.path + "/missing.key"], "does not exist"),
            (["--cluster-key", "weft1:x", "--cluster-key-file", emptyKey], "not both"),
            (["--bogus"], "Unknown option '--bogus'"),
            (["--mtu"], "Missing value for '--mtu"),
        ]
        for (args, needle) in cases {
            let r = try runWeft(["start", "--no-tun", "--data-dir", dir] + args)
            assertFails(r, status: 2, message: needle)
            XCTAssertFalse(r.stderr.contains("You don't have permission"), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir), "\(args) must fail before the data dir is created")
        }
        // A usage error of any command is 2 as well.
        assertFails(try runWeft(["frobnicate"]), status: 2, message: "Unexpected argument 'frobnicate'")
        assertFails(try runWeft(["join", "--data-dir", dir]), status: 2, message: "give at least one HOST:PORT")
        assertFails(try runWeft(["join", "--data-dir", dir, "nohost"]), status: 2, message: "'nohost' is not an address")
        assertFails(try runWeft(["status", "--data-dir", dir, "--frob"]), status: 2, message: "Unknown option")
    }

    /// Runtime failures are 1: `weft start` on a port in use, a data dir key file that is empty.
    func testStartRuntimeFailuresExitOne() throws {
        let n = try startNode("holder")
        assertFails(try runWeft(["start", "--no-tun", "--data-dir", root.path + "/other", "--listen", n.address]), status: 1, message: "already in use")
        let dir = root.path + "/emptykey"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: dir + "/cluster.key", contents: Data())
        let r = try runWeft(["start", "--no-tun", "--data-dir", dir, "--listen", "127.0.0.1:\(freePort())"])
        assertFails(r, status: 1, message: "cluster.key is empty")
        XCTAssertFalse(r.stderr.contains("permission"), r.stderr)
    }

    // MARK: - Talking to a node

    func testNoNodeStaleSocketAndFileDataDir() throws {
        let none = root.path + "/none"
        assertFails(try runWeft(["status", "--data-dir", none]), status: 1, message: "no weft node is running for data dir \(none)")
        assertJSONFails(try runWeft(["members", "--data-dir", none, "--json"]), status: 1, code: "not-running", message: "weft start --data-dir")

        // --data-dir naming a file is a usage error, not a raw connect() failure.
        let file = root.path + "/afile"
        _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
        assertFails(try runWeft(["status", "--data-dir", file]), status: 2, message: "is a file, not a directory")
        assertJSONFails(try runWeft(["peers", "--data-dir", file, "--json"]), status: 2, code: "usage", message: "is a file, not a directory")
        assertFails(try runWeft(["status", "--data-dir", file + "/sub"]), status: 2, message: "\(file) is a file, not a directory")
        // `weft start` too, before it writes anything.
        assertFails(try runWeft(["start", "--no-tun", "--data-dir", file]), status: 2, message: "is a file, not a directory: choose another --data-dir")
        assertFails(try runWeft(["start", "--no-tun", "--data-dir", file + "/sub"]), status: 2, message: "cannot exist")

        // After kill -9 the socket file stays: say so, instead of "no socket".
        let n = try startNode("killed")
        n.kill9()
        XCTAssertTrue(FileManager.default.fileExists(atPath: n.dataDir + "/weft.sock"), "kill -9 leaves the socket")
        let stale = try runWeft(["status", "--data-dir", n.dataDir])
        assertFails(stale, status: 1, message: "left over from a node that stopped without cleaning up")
        XCTAssertFalse(stale.stderr.contains("no socket"), stale.stderr)
        assertJSONFails(try runWeft(["status", "--data-dir", n.dataDir, "--json"]), status: 1, code: "not-running", message: "left over")
        // And a restart on that data dir replaces the stale socket.
        let again = NodeProcess(name: "killed", root: root.path, port: n.port)
        started.append(again)
        try again.start()
        XCTAssertTrue(again.waitReady(), again.log())
    }

    func testJoinFailuresAreOneWithAndWithoutJSON() throws {
        let n = try startNode("joiner")
        let dead = "127.0.0.1:\(freePort())"
        let plain = try runWeft(["join", "--data-dir", n.dataDir, dead])
        assertFails(plain, status: 1, message: "no address answered")
        XCTAssertTrue(plain.stderr.contains(dead), plain.stderr)
        let json = try runWeft(["join", "--data-dir", n.dataDir, "--json", dead])
        assertJSONFails(json, status: 1, code: "join-failed", message: "no address answered")
        XCTAssertNotNil(jsonError(json)?.details[dead], "details name the address and why: \(json.stdout)")

        // The node's own address: refused with the reason, as a usage error.
        let own = try runWeft(["join", "--data-dir", n.dataDir, n.address])
        assertFails(own, status: 2, message: "is this node's own address")
        XCTAssertFalse(own.stdout.contains("members known"), own.stdout)
        assertJSONFails(try runWeft(["join", "--data-dir", n.dataDir, "--json", n.address]), status: 2, code: "bad-request", message: "own address")
    }

    func testBlankHandlesAreRefusedByTheCommandAndTheNode() throws {
        let n = try startNode("handles")
        XCTAssertTrue(eventually(timeout: 10) { (try? n.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self))?.subnet != nil })
        for h in [" ", "   ", " lead", "trail "] {
            assertFails(try runWeft(["alloc", "--data-dir", n.dataDir, h]), status: 2, message: "space")
            assertJSONFails(try runWeft(["alloc", "--data-dir", n.dataDir, "--json", h]), status: 2, code: "usage", message: "space")
        }
        assertFails(try runWeft(["alloc", "--data-dir", n.dataDir, ""]), status: 2, message: "invalid handle: it is empty")
        assertFails(try runWeft(["release", "--data-dir", n.dataDir, "weft:overlay"]), status: 2, message: "belong to the node")
        // The node refuses them too (a client other than `weft`).
        do {
            _ = try n.client.call(API.Request(op: .alloc, handle: " "), as: API.Allocation.self)
            XCTFail("the node accepted a handle of one space")
        } catch {
            guard case .remote(let body) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(body.code, .badRequest)
            XCTAssertTrue(body.message.contains("blank"), body.message)
        }
        // A node error under --json keeps the node's code: releasing an unknown handle.
        assertJSONFails(try runWeft(["release", "--data-dir", n.dataDir, "--json", "never-held"]), status: 1, code: "not-found", message: "never-held")
        // And the good path is 0 with the result on stdout.
        let ok = try runWeft(["alloc", "--data-dir", n.dataDir, "--json", "c1"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.contains("\"address\""), ok.stdout)
    }

    // MARK: - Readable output

    /// Two nodes, one with a CJK name: members sorted by name with self marked, columns aligned
    /// by display width, the ring as a CIDR, the leave message in the singular.
    func testTablesSortMarkAndAlign() throws {
        let b = try startNode("zulu")
        let key = b.dataDir + "/cluster.key"
        let a = try startNode("节点", extra: ["--seed", b.address, "--cluster-key-file", key])
        XCTAssertTrue(eventually(timeout: 20) { (b.members()?.filter { $0.state == "alive" }.count ?? 0) == 2 }, b.log())

        let r = try runWeft(["members", "--data-dir", b.dataDir])
        XCTAssertEqual(r.status, 0, r.stderr)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 3, r.stdout)
        // Sorted by name (Unicode order: "zulu" before "节点"), this node marked with '*'.
        XCTAssertTrue(lines[1].contains("zulu") && lines[2].contains("节点"), "sorted by name: \(r.stdout)")
        XCTAssertTrue(lines[1].hasPrefix("* zulu"), "self marked: \(r.stdout)")
        XCTAssertFalse(lines[2].hasPrefix("*"), r.stdout)
        // The ID column starts at the same terminal column on every line (CJK = 2 columns).
        func idColumn(_ line: String, _ id: String) -> Int? {
            guard let range = line.range(of: id) else { return nil }
            return line[..<range.lowerBound].reduce(0) { $0 + ($1.unicodeScalars.first!.value >= 0x1100 ? 2 : 1) }
        }
        let ids = (b.members() ?? []).sorted { $0.name < $1.name }.map { String($0.id.prefix(12)) }
        XCTAssertEqual(ids.count, 2)
        XCTAssertEqual(idColumn(lines[1], ids[0]), idColumn(lines[2], ids[1]), "aligned:\n\(r.stdout)")
        XCTAssertEqual(idColumn(lines[0], "ID"), idColumn(lines[1], ids[0]), "header aligned:\n\(r.stdout)")

        let ipam = try runWeft(["ipam", "--data-dir", b.dataDir])
        XCTAssertEqual(ipam.status, 0, ipam.stderr)
        XCTAssertTrue(ipam.stdout.contains("RANGE"), ipam.stdout)
        XCTAssertTrue(ipam.stdout.range(of: #"10\.42\.\d+\.\d+/\d+"#, options: .regularExpression) != nil, "ranges as CIDR blocks: \(ipam.stdout)")
        XCTAssertNil(ipam.stdout.range(of: #"\b\d{10,}\b"#, options: .regularExpression), "no raw 64-bit versions: \(ipam.stdout)")

        let leave = try runWeft(["leave", "--data-dir", a.dataDir], timeout: 40)
        XCTAssertEqual(leave.status, 0, leave.stderr)
        XCTAssertTrue(leave.stdout.contains("told 1 member directly"), leave.stdout)
    }
}
