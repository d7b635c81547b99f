import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// The status page (`GET /` on the metrics listener) of a real 3-node cluster, loaded in headless
/// Chromium after its script ran: the members and the ring segments it draws are what
/// `weft members --json` and `weft ipam --json` say. The screenshot is kept (path printed).
final class StatusPageTests: XCTestCase {
    private var root: TempDir!
    private var nodes: [NodeProcess] = []

    override func setUp() { root = TempDir("page") }
    override func tearDown() {
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(4000))") }
        }
        root.remove()
    }

    static var chromium: String? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Where test artifacts go: $WEFT_TEST_ARTIFACTS, else .build/test-artifacts in the package.
    static var artifactDir: String {
        if let d = ProcessInfo.processInfo.environment["WEFT_TEST_ARTIFACTS"], !d.isEmpty { return d }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent(".build/test-artifacts").path
    }

    func testStatusPageShowsMembersAndRingInChromium() throws {
        guard let chromium = Self.chromium else {
            print("SKIP: chromium is not installed (bootstrap/setup installs the Debian package)")
            throw XCTSkip("chromium is not installed (bootstrap/setup installs the Debian package)")
        }
        let metricsPort = freePort()
        let a = NodeProcess(name: "a", root: root.path, extraArgs: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        nodes.append(a)
        try a.start()
        XCTAssertTrue(a.waitReady(), a.log())
        for name in ["b", "c"] {
            let n = NodeProcess(name: name, root: root.path, extraArgs: ["--seed", a.address, "--cluster-key-file", a.dataDir + "/cluster.key"])
            nodes.append(n)
            try n.start()
            XCTAssertTrue(n.waitReady(), n.log())
        }
        // Converged: all alive, and the ring has settled (every node owns space, no change for 2 s).
        func ipam() -> API.IPAMInfo? { try? a.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self) }
        var last: [API.RangeInfo] = []
        var stableSince = Date()
        let settled = eventually(timeout: 40) {
            guard let m = a.members(), m.count == 3, m.allSatisfy({ $0.state == "alive" }), let i = ipam() else { return false }
            if i.ranges != last || Set(i.ranges.map(\.owner)).count < 3 || i.ranges.contains(where: { $0.ownerName == "?" }) {
                last = i.ranges
                stableSince = Date()
                return false
            }
            return Date().timeIntervalSince(stableSince) > 2
        }
        XCTAssertTrue(settled, "the cluster did not settle: \(String(describing: a.members())) \(last)")

        let url = "http://127.0.0.1:\(metricsPort)/"
        let profile = root.path + "/chromium-profile"
        try FileManager.default.createDirectory(atPath: profile, withIntermediateDirectories: true)
        // No network but 127.0.0.1: names resolve to nothing, anything else goes to a dead proxy.
        let common = [
            "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-extensions", "--disable-default-apps",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
            "--virtual-time-budget=5000", "--window-size=1280,1000",
        ]
        let dom = try runTool(chromium, common + ["--dump-dom", url], timeout: 90)
        XCTAssertEqual(dom.status, 0, "chromium --dump-dom failed: \(dom.stderr.suffix(2000))")
        let html = dom.stdout
        // What the CLI says, right after.
        let membersCLI = try runWeft(["members", "--json", "--data-dir", a.dataDir])
        let ipamCLI = try runWeft(["ipam", "--json", "--data-dir", a.dataDir])
        XCTAssertEqual(membersCLI.status, 0)
        XCTAssertEqual(ipamCLI.status, 0)
        let members = try JSONDecoder().decode([API.MemberInfo].self, from: Data(membersCLI.stdout.utf8))
        let ring = try JSONDecoder().decode(API.IPAMInfo.self, from: Data(ipamCLI.stdout.utf8))

        XCTAssertTrue(html.contains("data-updated="), "the page's script never drew an answer: \(html.suffix(1500))")
        let rows = try Self.elements(html, tag: "tr", cls: "member")
        XCTAssertEqual(rows.count, members.count, "one row per member")
        XCTAssertEqual(Set(rows.map { [$0["data-id"] ?? "", $0["data-name"] ?? "", $0["data-state"] ?? ""] }),
                       Set(members.map { [$0.id, $0.name, $0.state] }), "the page's members are `weft members --json`")
        let segments = try Self.elements(html, tag: "path", cls: "segment")
        XCTAssertEqual(segments.count, ring.ranges.count, "one ring segment per range")
        XCTAssertEqual(segments.map { [$0["data-start"] ?? "", $0["data-end"] ?? "", $0["data-owner"] ?? "", $0["data-owner-name"] ?? ""] },
                       ring.ranges.map { [$0.start, $0.end, $0.owner, $0.ownerName] }, "the page's ring is `weft ipam --json`")
        XCTAssertEqual(Set(segments.compactMap { $0["data-owner-name"] }), ["a", "b", "c"], "a ring of three owners")
        XCTAssertFalse(html.contains("src=\"http"), "no external assets")
        XCTAssertFalse(html.contains("href=\"http"), "no external assets")

        // The screenshot, kept as an artifact.
        try FileManager.default.createDirectory(atPath: Self.artifactDir, withIntermediateDirectories: true)
        let shot = Self.artifactDir + "/status-page.png"
        try? FileManager.default.removeItem(atPath: shot)
        let s = try runTool(chromium, common + ["--screenshot=\(shot)", url], timeout: 90)
        XCTAssertEqual(s.status, 0, "chromium --screenshot failed: \(s.stderr.suffix(2000))")
        let png = try XCTUnwrap(FileManager.default.contents(atPath: shot), "no screenshot at \(shot)")
        XCTAssertGreaterThan(png.count, 10_000, "the screenshot is not a drawn page")
        XCTAssertEqual(Array(png.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "a PNG")
        print("status page screenshot: \(shot)")
    }

    /// The routes without a browser: `/` is one self-contained HTML document, `/status.json` is
    /// the node state in the CLI's JSON shapes, `HEAD` has no body, unknown paths 404.
    func testPageAndStatusJSONRoutes() throws {
        let metricsPort = freePort()
        let a = NodeProcess(name: "a", root: root.path, extraArgs: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        nodes.append(a)
        try a.start()
        XCTAssertTrue(a.waitReady(), a.log())

        let page = try http("GET", "/", port: metricsPort)
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.headers.lowercased().contains("content-type: text/html; charset=utf-8"), page.headers)
        XCTAssertTrue(page.body.hasPrefix("<!doctype html>"))
        XCTAssertTrue(page.body.contains("<svg id=\"ring\""))
        XCTAssertTrue(page.body.contains("fetch(\"/status.json\""))
        for external in ["src=", "href=", "@import", "url("] {
            XCTAssertFalse(page.body.contains(external), "no external assets (\(external))")
        }
        let head = try http("HEAD", "/", port: metricsPort)
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.body, "")
        XCTAssertEqual(try http("GET", "/nope", port: metricsPort).status, 404)
        XCTAssertEqual(try http("POST", "/status.json", port: metricsPort).status, 405)

        let json = try http("GET", "/status.json", port: metricsPort)
        XCTAssertEqual(json.status, 200)
        XCTAssertTrue(json.headers.lowercased().contains("content-type: application/json"), json.headers)
        let s = try JSONDecoder().decode(API.StatusPage.self, from: Data(json.body.utf8))
        let status = try XCTUnwrap(a.status())
        XCTAssertEqual(s.status.id, status.id)
        XCTAssertEqual(s.status.name, "a")
        XCTAssertNotNil(s.status.dataPlaneDrops, "the data plane's drops are in it")
        XCTAssertEqual(s.members.map(\.id), (a.members() ?? []).map(\.id))
        XCTAssertEqual(s.ipam.subnet, "10.42.0.0/16")
        XCTAssertEqual(s.peers, [], "--no-tun: no tunnels")
    }


    /// The attributes of every `<tag class="cls …" …>` in `html` (the DOM Chromium dumped).
    static func elements(_ html: String, tag: String, cls: String) throws -> [[String: String]] {
        let open = try NSRegularExpression(pattern: "<\(tag)\\s([^>]*)>")
        let attr = try NSRegularExpression(pattern: #"([a-zA-Z-]+)="([^"]*)""#)
        let ns = html as NSString
        var out: [[String: String]] = []
        for m in open.matches(in: html, range: NSRange(location: 0, length: ns.length)) {
            let body = ns.substring(with: m.range(at: 1))
            var attrs: [String: String] = [:]
            let bns = body as NSString
            for a in attr.matches(in: body, range: NSRange(location: 0, length: bns.length)) {
                attrs[bns.substring(with: a.range(at: 1))] = unescape(bns.substring(with: a.range(at: 2)))
            }
            if (attrs["class"] ?? "").split(separator: " ").contains(Substring(cls)) { out.append(attrs) }
        }
        return out
    }

    static func unescape(_ s: String) -> String {
        s.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&lt;", with: "<")
            .replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}
