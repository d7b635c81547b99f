import WeftAPI
import XCTest
@testable import WeftCNI

/// The plugin as a function of (environment, stdin) with a fake node and a fake kernel.
final class PluginTests: XCTestCase {
    var net = FakeNetwork()
    var node = FakeNode()
    let ns1 = "/run/netns/c1"
    let ns2 = "/run/netns/c2"

    override func setUp() {
        net = FakeNetwork()
        node = FakeNode()
        net.addNamespace(ns1)
        net.addNamespace(ns2)
    }

    var plugin: Plugin {
        let n = node
        return Plugin(network: net, client: { _ in n })
    }

    func env(_ cmd: String, cid: String = "c1", netns: String? = nil, ifname: String = "eth0") -> [String: String] {
        ["CNI_COMMAND": cmd, "CNI_CONTAINERID": cid, "CNI_NETNS": netns ?? "/run/netns/\(cid)", "CNI_IFNAME": ifname,
         "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": "IgnoreUnknown=1"]
    }

    func conf(_ extra: String = "", version: String = "1.0.0") -> [UInt8] {
        let tail = extra.isEmpty ? "" : ", " + extra
        return Array(#"{"cniVersion":"\#(version)","name":"weftnet","type":"weft-cni","dataDir":"/var/lib/weft"\#(tail)}"#.utf8)
    }

    @discardableResult
    func run(_ env: [String: String], _ stdin: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> (Plugin.Output, JSON) {
        let out = plugin.run(environment: env, stdin: stdin)
        let json = out.stdout.isEmpty ? JSON.null : ((try? JSON.parse(out.stdout)) ?? .string("UNPARSEABLE: \(out.stdout)"))
        if case .string(let s) = json, s.hasPrefix("UNPARSEABLE") { XCTFail(s, file: file, line: line) }
        return (out, json)
    }

    func assertError(_ out: (Plugin.Output, JSON), _ code: Int, contains text: String = "", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(out.0.exitCode, 1, "exit code; stdout \(out.0.stdout)", file: file, line: line)
        XCTAssertEqual(out.1["code"]?.intValue, code, "code; stdout \(out.0.stdout)", file: file, line: line)
        XCTAssertNotNil(out.1["cniVersion"]?.stringValue, file: file, line: line)
        if !text.isEmpty {
            let all = (out.1["msg"]?.stringValue ?? "") + " " + (out.1["details"]?.stringValue ?? "")
            XCTAssertTrue(all.contains(text), "\(all) should contain \(text)", file: file, line: line)
        }
    }

    func add(_ cid: String = "c1", extra: String = "", version: String = "1.0.0") -> JSON {
        let (out, json) = run(env("ADD", cid: cid), conf(extra, version: version))
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        return json
    }

    func withPrev(_ result: JSON, _ extra: String = "") -> [UInt8] {
        conf((extra.isEmpty ? "" : extra + ", ") + #""prevResult":"# + result.text)
    }

    // MARK: - VERSION

    func testVersionEchoesInputVersionAndListsSupported() {
        let (out, json) = run(["CNI_COMMAND": "VERSION"], Array(#"{"cniVersion":"0.4.0"}"#.utf8))
        XCTAssertEqual(out.exitCode, 0)
        XCTAssertEqual(json["cniVersion"], .string("0.4.0"))
        XCTAssertEqual(json["supportedVersions"], .array(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].map { .string($0) }))
        let (out2, json2) = run(["CNI_COMMAND": "VERSION"], [])
        XCTAssertEqual(out2.exitCode, 0)
        XCTAssertEqual(json2["cniVersion"], .string("1.0.0"))
    }

    // MARK: - Environment and config errors

    func testMissingOrUnknownCommandIsError4() {
        assertError(run([:], conf()), 4, contains: "CNI_COMMAND")
        assertError(run(["CNI_COMMAND": "FROB"], conf()), 4, contains: "FROB")
    }

    func testMissingVariablesAreNamed() {
        var e = env("ADD")
        e["CNI_NETNS"] = nil
        e["CNI_IFNAME"] = ""
        assertError(run(e, conf()), 4, contains: "CNI_NETNS, CNI_IFNAME")
        var d = env("DEL")
        d["CNI_CONTAINERID"] = nil
        assertError(run(d, conf()), 4, contains: "CNI_CONTAINERID")
        XCTAssertTrue(node.allocCalls.isEmpty && net.calls.isEmpty)
    }

    func testInvalidInterfaceNameAndContainerID() {
        assertError(run(env("ADD", ifname: "a/b"), conf()), 4, contains: "CNI_IFNAME")
        assertError(run(env("ADD", ifname: "averyverylongname"), conf()), 4, contains: "15")
        assertError(run(env("ADD", cid: "-bad", netns: ns1), conf()), 4, contains: "CNI_CONTAINERID")
    }

    func testMalformedJSONIsError6() {
        assertError(run(env("ADD"), Array("{not json".utf8)), 6)
        assertError(run(env("ADD"), Array("[1,2]".utf8)), 6, contains: "not a JSON object")
        assertError(run(env("ADD"), []), 6)
        XCTAssertTrue(node.allocCalls.isEmpty)
    }

    func testUnknownOrMissingVersionIsError1() {
        let out = run(env("ADD"), conf(version: "9.9.9"))
        assertError(out, 1, contains: "9.9.9")
        XCTAssertEqual(out.1["cniVersion"], .string("1.0.0"), "errors for unknown versions are written in a version the runtime reads")
        assertError(run(env("ADD"), Array(#"{"name":"x","type":"weft-cni"}"#.utf8)), 1, contains: "cniVersion")
        assertError(run(env("ADD"), conf(version: "0.2.0")), 1)
    }

    func testBadConfigKeysAreError7() {
        assertError(run(env("ADD"), conf(#""mtu":"big""#)), 7, contains: "mtu")
        assertError(run(env("ADD"), conf(#""mtu":100"#)), 7, contains: "mtu")
        assertError(run(env("ADD"), conf(#""defaultRoute":"yes""#)), 7, contains: "defaultRoute")
        assertError(run(env("ADD"), conf(#""dataDir":"relative""#)), 7, contains: "dataDir")
        assertError(run(env("ADD"), Array(#"{"cniVersion":"1.0.0","type":"weft-cni"}"#.utf8)), 7, contains: "name")
        assertError(run(env("ADD"), Array(#"{"cniVersion":"1.0.0","name":"a:b","type":"weft-cni"}"#.utf8)), 7, contains: "':'")
        XCTAssertTrue(node.allocCalls.isEmpty)
    }

    func testErrorsCarryTheInputVersion() {
        node.down = true
        let out = run(env("ADD"), conf(version: "0.4.0"))
        assertError(out, 11)
        XCTAssertEqual(out.1["cniVersion"], .string("0.4.0"))
    }

    // MARK: - ADD

    func testAddBuildsResultAndWiring() throws {
        let r = add()
        let host = Naming.hostInterface(containerID: "c1", ifname: "eth0")
        XCTAssertEqual(r["cniVersion"], .string("1.0.0"))
        let ifaces = try XCTUnwrap(r["interfaces"]?.arrayValue)
        XCTAssertEqual(ifaces.count, 2)
        XCTAssertEqual(ifaces[0]["name"], .string(host))
        XCTAssertNil(ifaces[0]["sandbox"], "the host interface has no sandbox")
        XCTAssertEqual(ifaces[1]["name"], .string("eth0"))
        XCTAssertEqual(ifaces[1]["sandbox"], .string(ns1))
        XCTAssertEqual(ifaces[1]["mac"], .string(net.namespaces[ns1]!.links["eth0"]!.mac))
        XCTAssertEqual(r["ips"], .array([.object([("address", .string("10.42.0.2/16")), ("interface", .number(1))])]))
        XCTAssertEqual(r["routes"], .array([.object([("dst", .string("10.42.0.0/16"))])]))
        XCTAssertEqual(r["dns"], .object([]))
        XCTAssertNil(ifaces[0]["mtu"], "mtu is a 1.1.0 field")
        // wiring
        XCTAssertEqual(net.hostLinks[host]?.mtu, 1420, "no TUN on the node: 1420")
        XCTAssertEqual(net.namespaces[ns1]!.links["eth0"]?.mtu, 1420)
        XCTAssertEqual(net.namespaces[ns1]!.links["eth0"]?.up, true)
        XCTAssertEqual(net.namespaces[ns1]!.links["lo"]?.up, true)
        XCTAssertEqual(net.hostLinks[host]?.up, true)
        XCTAssertTrue(net.proxyARP.contains(host))
        XCTAssertEqual(net.hostRoutes_.map(\.destination), [IPv4CIDR("10.42.0.2/32")!])
        XCTAssertEqual(node.allocCalls, ["cni:weftnet:c1:eth0"])
    }

    func testAddNamesTheContainerAndHandsOutTheNodesResolver() throws {
        node.dnsAddress = "10.42.0.1:53"
        var e = env("ADD", cid: "c1")
        e["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAMESPACE=x;K8S_POD_NAME=My_Web.1"
        let (out, r) = run(e, conf())
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(node.allocNames.last, "my-web-1", "podman's container name, made a DNS label")
        XCTAssertEqual(r["dns"], .object([("nameservers", .array([.string("10.42.0.1")])), ("search", .array([.string("weft.internal")]))]))
        // No usable name: allocate without one; a resolver on another port cannot go in resolv.conf.
        node.dnsAddress = "127.0.0.1:5353"
        var e2 = env("ADD", cid: "c2")
        e2["CNI_ARGS"] = "K8S_POD_NAME=___"
        let (out2, r2) = run(e2, conf())
        XCTAssertEqual(out2.exitCode, 0, out2.stdout)
        XCTAssertEqual(node.allocNames.last, .some(nil))
        XCTAssertEqual(r2["dns"], .object([]))
        XCTAssertEqual(Plugin.containerName(args: "IgnoreUnknown=1"), nil)
        XCTAssertEqual(Plugin.containerName(args: "K8S_POD_NAME=" + String(repeating: "a", count: 80))?.count, 63)
    }

    func testAddUsesNodeMTUAndConfigOverride() {
        node.overlayMTU = 1380
        _ = add("c1")
        XCTAssertEqual(net.namespaces[ns1]!.links["eth0"]?.mtu, 1380)
        _ = add("c2", extra: #""mtu":1300"#)
        XCTAssertEqual(net.namespaces[ns2]!.links["eth0"]?.mtu, 1300)
    }

    func testAddDefaultRoute() {
        let r = add(extra: #""defaultRoute":true"#)
        XCTAssertEqual(r["routes"]?.arrayValue?.count, 2)
        XCTAssertTrue(net.namespaces[ns1]!.routes.contains { $0.destination == .defaultRoute })
    }

    func testResultShapePerVersion() throws {
        let old = add("c1", version: "0.4.0")
        XCTAssertEqual(old["ips"]?.arrayValue?.first?["version"], .string("4"))
        let new = add("c2", version: "1.1.0")
        XCTAssertNil(new["ips"]?.arrayValue?.first?["version"])
        XCTAssertEqual(new["interfaces"]?.arrayValue?.first?["mtu"], .number(1420))
    }

    func testRepeatedAddIsIdempotent() {
        let first = add()
        let second = add()
        XCTAssertEqual(first, second)
        XCTAssertEqual(net.calls.filter { $0 == "createVeth" }.count, 1, "the second ADD reuses the veth")
        XCTAssertEqual(node.allocations.count, 2, "overlay + one container")
    }

    func testAddFailsOnForeignInterfaceWithoutAllocating() {
        net.namespaces[ns1]!.links["eth0"] = LinkInfo(index: 5, mtu: 1500, up: true, mac: "02:00:00:00:00:05", kind: "dummy")
        assertError(run(env("ADD"), conf()), 102, contains: "already exists")
        XCTAssertTrue(node.allocCalls.isEmpty)
    }

    func testAddReplacesStaleHostLink() {
        let host = Naming.hostInterface(containerID: "c1", ifname: "eth0")
        net.hostLinks[host] = LinkInfo(index: 99, mtu: 1500, up: false, mac: "02:00:00:00:00:99", kind: "veth")
        _ = add()
        XCTAssertNotEqual(net.hostLinks[host]?.index, 99)
        XCTAssertNotNil(net.namespaces[ns1]!.links["eth0"])
    }

    func testAddWithNodeDownIsTryAgainLater() {
        node.down = true
        assertError(run(env("ADD"), conf()), 11, contains: "no weft node")
        XCTAssertTrue(net.hostLinks.isEmpty)
    }

    func testAddWithNodeNotReadyIsTryAgainLater() {
        node.allocError = .remote(API.ErrorBody(code: .notReady, message: "starting"))
        assertError(run(env("ADD"), conf()), 11, contains: "starting")
        XCTAssertTrue(net.hostLinks.isEmpty)
    }

    func testAddExhausted() {
        node.allocError = .remote(API.ErrorBody(code: .exhausted, message: "no space"))
        assertError(run(env("ADD"), conf()), 101, contains: "no space")
    }

    func testAddMissingNetnsIsContainerUnknown() {
        assertError(run(env("ADD", cid: "c3"), conf()), 3, contains: "/run/netns/c3")
        XCTAssertTrue(node.allocCalls.isEmpty)
    }

    func testAddRollsBackOnEveryFailingStep() {
        for stepName in ["createVeth", "configureContainer", "configureHost"] {
            setUp()
            net.failOn = [stepName]
            assertError(run(env("ADD"), conf()), 103, contains: "injected")
            XCTAssertTrue(net.hostLinks.isEmpty, "\(stepName): veth deleted")
            XCTAssertNil(net.namespaces[ns1]!.links["eth0"], "\(stepName): no half-made container end")
            XCTAssertTrue(net.hostRoutes_.isEmpty, "\(stepName): no host route")
            XCTAssertEqual(node.allocations.keys.sorted(), ["weft:overlay"], "\(stepName): address released")
        }
    }

    func testAddAppendsToPrevResult() throws {
        let prev = try JSON.parse(#"{"cniVersion":"1.0.0","interfaces":[{"name":"x0"}],"ips":[{"address":"192.168.9.9/24","interface":0}],"routes":[],"dns":{"nameservers":["10.0.0.53"]}}"#)
        let (out, r) = run(env("ADD"), withPrev(prev))
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(r["interfaces"]?.arrayValue?.count, 3)
        XCTAssertEqual(r["ips"]?.arrayValue?.last?["interface"], .number(2))
        XCTAssertEqual(r["dns"]?["nameservers"], .array([.string("10.0.0.53")]))
    }

    // MARK: - DEL

    func testDelReleasesAndDeletesAndIsIdempotent() {
        _ = add()
        let (out, _) = run(env("DEL"), conf())
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(out.stdout, "")
        XCTAssertTrue(net.hostLinks.isEmpty)
        XCTAssertNil(net.namespaces[ns1]!.links["eth0"])
        XCTAssertEqual(node.allocations.keys.sorted(), ["weft:overlay"])
        let (again, _) = run(env("DEL"), conf())
        XCTAssertEqual(again.exitCode, 0, again.stdout)
    }

    func testDelWithoutNetnsOrWithNetnsGone() {
        _ = add("c1")
        _ = add("c2")
        var e = env("DEL", cid: "c1")
        e["CNI_NETNS"] = ""
        XCTAssertEqual(run(e, conf()).0.exitCode, 0)
        net.removeNamespace(ns2)
        XCTAssertEqual(run(env("DEL", cid: "c2"), conf()).0.exitCode, 0)
        XCTAssertEqual(node.allocations.keys.sorted(), ["weft:overlay"])
        XCTAssertTrue(net.hostLinks.isEmpty)
    }

    func testDelWithNodeDownCleansLinksAndSucceedsWithWarning() {
        _ = add()
        node.down = true
        let (out, _) = run(env("DEL"), conf())
        XCTAssertEqual(out.exitCode, 0)
        XCTAssertTrue(net.hostLinks.isEmpty)
        XCTAssertEqual(out.stderr.count, 1)
        XCTAssertTrue(out.stderr[0].contains("stays allocated"))
    }

    func testDelWithNodeNotReadyAsksForRetry() {
        _ = add()
        node.releaseError = .remote(API.ErrorBody(code: .notReady, message: "starting"))
        assertError(run(env("DEL"), conf()), 11)
        XCTAssertTrue(net.hostLinks.isEmpty, "links are removed even so")
    }

    func testDelReportsLinkFailureAfterReleasing() {
        _ = add()
        net.failOn = ["deleteHostLink"]
        assertError(run(env("DEL"), conf()), 103)
        XCTAssertEqual(node.allocations.keys.sorted(), ["weft:overlay"])
    }

    // MARK: - CHECK

    func testCheckPassesAfterAdd() {
        let r = add(extra: #""defaultRoute":true"#)
        let (out, _) = run(env("CHECK"), withPrev(r, #""defaultRoute":true"#))
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(out.stdout, "")
    }

    func testCheckFailsWhenContainerInterfaceRemoved() {
        let r = add()
        net.deleteContainerLink(netns: ns1, name: "eth0")
        assertError(run(env("CHECK"), withPrev(r)), 104, contains: "eth0 was removed")
    }

    func testCheckFailsWhenAddressOrHostRouteOrAllocationMissing() {
        let r = add()
        net.namespaces[ns1]!.addresses["eth0"] = []
        assertError(run(env("CHECK"), withPrev(r)), 104, contains: "address 10.42.0.2/16 is missing")
        setUp()
        let r2 = add()
        net.hostRoutes_ = []
        assertError(run(env("CHECK"), withPrev(r2)), 104, contains: "host route")
        setUp()
        let r3 = add()
        try? node.release(handle: "cni:weftnet:c1:eth0")
        assertError(run(env("CHECK"), withPrev(r3)), 104, contains: "no longer holds")
    }

    func testCheckNeedsPrevResult() {
        _ = add()
        assertError(run(env("CHECK"), conf()), 7, contains: "prevResult")
    }

    // MARK: - GC

    func testStaleSelection() {
        let all = [
            API.AllocationInfo(handle: "weft:overlay", address: "10.42.0.1"),
            API.AllocationInfo(handle: "cni:weftnet:keep:eth0", address: "10.42.0.2"),
            API.AllocationInfo(handle: "cni:weftnet:gone:eth0", address: "10.42.0.3"),
            API.AllocationInfo(handle: "cni:weftnet:keep:net1", address: "10.42.0.4"),
            API.AllocationInfo(handle: "cni:othernet:gone:eth0", address: "10.42.0.5"),
            API.AllocationInfo(handle: "manual-handle", address: "10.42.0.6"),
            API.AllocationInfo(handle: "cni:weftnet:bad", address: "10.42.0.7"),
        ]
        let stale = Plugin.staleAllocations(all, network: "weftnet", valid: [PluginConfig.Attachment(containerID: "keep", ifname: "eth0")])
        XCTAssertEqual(stale.map(\.handle), ["cni:weftnet:gone:eth0", "cni:weftnet:keep:net1"])
    }

    func testGCReleasesStaleAndDeletesTheirVeths() {
        _ = add("c1")
        _ = add("c2")
        node.preload(handle: "cni:othernet:c9:eth0", address: "10.42.0.99")
        let (out, _) = run(["CNI_COMMAND": "GC", "CNI_PATH": "/opt/cni/bin"],
                           conf(#""cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}]"#, version: "1.1.0"))
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(node.allocations.keys.sorted(), ["cni:othernet:c9:eth0", "cni:weftnet:c1:eth0", "weft:overlay"])
        XCTAssertNotNil(net.hostLinks[Naming.hostInterface(containerID: "c1", ifname: "eth0")])
        XCTAssertNil(net.hostLinks[Naming.hostInterface(containerID: "c2", ifname: "eth0")])
    }

    func testGCRefusesWithoutValidAttachmentsAndNeedsTheNode() {
        _ = add("c1")
        assertError(run(["CNI_COMMAND": "GC"], conf(version: "1.1.0")), 7, contains: "valid-attachments")
        XCTAssertEqual(node.allocations.count, 2)
        node.down = true
        assertError(run(["CNI_COMMAND": "GC"], conf(#""cni.dev/valid-attachments":[]"#, version: "1.1.0")), 11)
    }

    // MARK: - STATUS

    func testStatus() {
        XCTAssertEqual(run(["CNI_COMMAND": "STATUS"], conf(version: "1.1.0")).0.exitCode, 0)
        node.hasRing = false
        assertError(run(["CNI_COMMAND": "STATUS"], conf(version: "1.1.0")), 50, contains: "address ring")
        node.hasRing = true
        node.down = true
        assertError(run(["CNI_COMMAND": "STATUS"], conf(version: "1.1.0")), 50, contains: "no weft node")
    }

    func testLogLineNamesCommandAndOutcome() {
        let (out, _) = run(env("ADD"), conf(#""logFile":"/tmp/x.log""#))
        XCTAssertEqual(out.logFile, "/tmp/x.log")
        XCTAssertTrue(out.logLine.contains("cmd=ADD") && out.logLine.contains("ok"))
    }
}
