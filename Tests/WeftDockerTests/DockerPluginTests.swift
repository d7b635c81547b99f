import Foundation
import WeftAPI
import WeftCNI
import XCTest
@testable import WeftDocker

/// A node that hands out 10.42.1.N under handles, like the real one (same handle, same address).
final class FakeNode: NodeClient, @unchecked Sendable {
    let lock = NSLock()
    var held: [String: String] = [:]
    var names: [String: String] = [:]
    var down = false
    var calls: [String] = []

    func status() throws(ControlClientError) -> API.Status {
        lock.lock(); defer { lock.unlock() }
        if down { throw .noNode(dataDir: "/x", reason: .noSocket) }
        return API.Status(id: "n", name: "a", address: "x:1", cluster: "c", incarnation: 1, version: "t", uptimeSeconds: 1,
                          members: [:], drops: [:], messages: [:], joined: true, warnings: [], overlayAddress: "10.42.0.1", overlayMTU: 1380)
    }
    func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation {
        lock.lock(); defer { lock.unlock() }
        if down { throw .noNode(dataDir: "/x", reason: .noSocket) }
        calls.append("alloc \(handle) \(name ?? "-")")
        if let name { names[handle] = name }
        if let a = held[handle] { return API.Allocation(handle: handle, address: a, prefixLength: 16, subnet: "10.42.0.0/16") }
        // The lowest free address, as a released address is soon handed out again.
        var n = 2
        while held.values.contains("10.42.1.\(n)") { n += 1 }
        let a = "10.42.1.\(n)"
        held[handle] = a
        return API.Allocation(handle: handle, address: a, prefixLength: 16, subnet: "10.42.0.0/16")
    }
    func release(handle: String) throws(ControlClientError) {
        lock.lock(); defer { lock.unlock() }
        if down { throw .noNode(dataDir: "/x", reason: .noSocket) }
        calls.append("release \(handle)")
        guard held.removeValue(forKey: handle) != nil else { throw .remote(API.ErrorBody(code: .notFound, message: "no such handle")) }
    }
    func ipam() throws(ControlClientError) -> API.IPAMInfo {
        lock.lock(); defer { lock.unlock() }
        if down { throw .noNode(dataDir: "/x", reason: .noSocket) }
        var all = held.map { API.AllocationInfo(handle: $0.key, address: $0.value) }
        all.append(API.AllocationInfo(handle: "weft:self", address: "10.42.0.1"))
        return API.IPAMInfo(subnet: "10.42.0.0/16", ranges: [], allocations: all, conflicts: [], ownFree: 1, clusterFree: 1, pending: 0)
    }
}

final class FakeKernel: NetworkOps, @unchecked Sendable {
    let lock = NSLock()
    var links: [String: Int] = [:]  // name -> mtu
    var routes: [String: String] = [:]  // address -> link
    var failCreate = false
    func netnsExists(_ netns: String) -> Bool { true }
    func hostLink(_ name: String) throws(NetworkError) -> LinkInfo? {
        lock.lock(); defer { lock.unlock() }
        return links[name].map { LinkInfo(index: 1, mtu: $0, up: true, mac: "", kind: "veth") }
    }
    func containerLink(netns: String, name: String) throws(NetworkError) -> LinkInfo? { nil }
    func createVeth(hostName: String, containerName: String, netns: String, mtu: Int) throws(NetworkError) {
        lock.lock(); defer { lock.unlock() }
        if failCreate { throw NetworkError(step: "creating veth \(hostName)", errno: 17, reason: "File exists") }
        XCTAssertEqual(netns, "/proc/self/ns/net")
        links[hostName] = mtu; links[containerName] = mtu
    }
    func configureContainer(netns: String, ifname: String, address: IPv4CIDR, routes: [IPv4CIDR]) throws(NetworkError) {}
    func configureHost(link name: String, address: IPv4) throws(NetworkError) {
        lock.lock(); defer { lock.unlock() }
        routes[address.description] = name
    }
    func deleteHostLink(_ name: String) throws(NetworkError) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard links.removeValue(forKey: name) != nil else { return false }
        links.removeValue(forKey: "wfp" + name.dropFirst(3))
        routes = routes.filter { $0.value != name }
        return true
    }
    func containerAddresses(netns: String, ifname: String) throws(NetworkError) -> [IPv4CIDR] { [] }
    func containerRoutes(netns: String) throws(NetworkError) -> [RouteInfo] { [] }
    func hostRoutes() throws(NetworkError) -> [RouteInfo] { [] }
}

struct FixedNames: ContainerNameSource {
    var map: [String: String]
    func containerName(endpointID: String) -> String? { map[endpointID] }
}

final class DockerPluginTests: XCTestCase {
    func makePlugin(_ node: FakeNode, _ kernel: FakeKernel, names: [String: String] = [:]) -> DockerPlugin {
        DockerPlugin(node: node, network: kernel, names: FixedNames(map: names), nameAttempts: 1, namePause: 0,
                     background: { work in work() })
    }

    func call(_ p: DockerPlugin, _ method: String, _ body: String) -> (Int, JSON) {
        let (s, b) = p.handle(method: "POST", path: "/" + method, body: Array(body.utf8))
        guard let j = try? JSON.parse(b) else { XCTFail("reply is not JSON: \(b)"); return (s, .null) }
        return (s, j)
    }

    func testActivateAndCapabilities() {
        let p = makePlugin(FakeNode(), FakeKernel())
        XCTAssertEqual(call(p, "Plugin.Activate", "").1["Implements"], .array([.string("NetworkDriver"), .string("IpamDriver")]))
        XCTAssertEqual(call(p, "NetworkDriver.GetCapabilities", "{}").1["Scope"]?.stringValue, "local")
        let (_, pool) = call(p, "IpamDriver.RequestPool", #"{"AddressSpace":"weft","Pool":"","SubPool":"","Options":{},"V6":false}"#)
        XCTAssertEqual(pool["Pool"]?.stringValue, "0.0.0.0/0")
        XCTAssertEqual(pool["PoolID"]?.stringValue, DockerPlugin.poolID)
        for m in ["NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete", "NetworkDriver.ProgramExternalConnectivity",
                  "NetworkDriver.RevokeExternalConnectivity", "NetworkDriver.Leave", "IpamDriver.ReleasePool", "NetworkDriver.DeleteNetwork"] {
            XCTAssertEqual(call(p, m, "{}").0, 200, m)
        }
    }

    func testRefusals() {
        let p = makePlugin(FakeNode(), FakeKernel())
        let (s1, e1) = call(p, "IpamDriver.RequestPool", #"{"Pool":"172.30.0.0/16","V6":false}"#)
        XCTAssertEqual(s1, 500); XCTAssertTrue(e1["Err"]?.stringValue?.contains("--subnet") == true)
        XCTAssertTrue(call(p, "IpamDriver.RequestPool", #"{"V6":true}"#).1["Err"]?.stringValue?.contains("IPv4 only") == true)
        XCTAssertTrue(call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Address":"10.42.9.9"}"#).1["Err"]?.stringValue?.contains("--ip") == true)
        let (_, e2) = call(p, "NetworkDriver.CreateNetwork", #"{"NetworkID":"abc","IPv4Data":[{"Pool":"172.17.0.0/16"}]}"#)
        XCTAssertTrue(e2["Err"]?.stringValue?.contains("--ipam-driver weft") == true)
        XCTAssertEqual(call(p, "NetworkDriver.CreateNetwork", #"{"NetworkID":"abc","IPv4Data":[{"Pool":"0.0.0.0/0"}]}"#).0, 200)
        XCTAssertEqual(call(p, "NetworkDriver.CreateEndpoint", #"{"NetworkID":"n","EndpointID":"../etc","Interface":{"Address":"10.42.1.2/16"}}"#).0, 400)
        XCTAssertEqual(call(p, "NetworkDriver.CreateEndpoint", #"{"NetworkID":"n","EndpointID":"e1","Interface":{}}"#).0, 400)
    }

    func testMalformedAndUnknown() {
        let p = makePlugin(FakeNode(), FakeKernel())
        let (s, e) = call(p, "NetworkDriver.Join", "{not json")
        XCTAssertEqual(s, 400); XCTAssertTrue(e["Err"]?.stringValue?.contains("not JSON") == true)
        XCTAssertEqual(call(p, "NetworkDriver.Join", "[1,2]").0, 400)
        let (s2, e2) = call(p, "NetworkDriver.Frobnicate", "{}")
        XCTAssertEqual(s2, 404); XCTAssertTrue(e2["Err"]?.stringValue?.contains("does not implement") == true)
        let (s3, b3) = p.handle(method: "GET", path: "/Plugin.Activate", body: [])
        XCTAssertEqual(s3, 405); XCTAssertTrue(b3.contains("\"Err\""))
    }

    /// The whole life of one container as Docker 20.10 calls it.
    func testContainerLifecycle() throws {
        let node = FakeNode(), kernel = FakeKernel()
        let p = makePlugin(node, kernel, names: ["e1": "/Web_1.x"])
        let (_, gw) = call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Address":"","Options":{"RequestAddressType":"com.docker.network.gateway"}}"#)
        XCTAssertEqual(gw["Address"]?.stringValue, "10.42.0.1/16")
        let (s, a) = call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Address":"","Options":{}}"#)
        XCTAssertEqual(s, 200)
        let cidr = try XCTUnwrap(a["Address"]?.stringValue)
        XCTAssertEqual(cidr, "10.42.1.2/16")
        let handle = try XCTUnwrap(node.held.first(where: { $0.value == "10.42.1.2" })?.key)
        XCTAssertTrue(handle.hasPrefix("docker:"))
        let (s2, ep) = call(p, "NetworkDriver.CreateEndpoint", #"{"NetworkID":"n","EndpointID":"e1","Interface":{"Address":"\#(cidr)","AddressIPv6":"","MacAddress":""}}"#)
        XCTAssertEqual(s2, 200); XCTAssertEqual(ep, .object([]))
        let (host, peer) = DockerPlugin.vethNames(endpointID: "e1")
        XCTAssertEqual(kernel.links[host], 1380); XCTAssertEqual(kernel.links[peer], 1380)
        XCTAssertEqual(kernel.routes["10.42.1.2"], host)
        XCTAssertEqual(node.names[handle], "web-1-x", "the container name became a DNS label on the same handle")
        XCTAssertEqual(node.held[handle], "10.42.1.2", "naming kept the address")
        let (s3, j) = call(p, "NetworkDriver.Join", #"{"NetworkID":"n","EndpointID":"e1","SandboxKey":"/var/run/docker/netns/x","Options":{}}"#)
        XCTAssertEqual(s3, 200)
        XCTAssertEqual(j["InterfaceName"]?["SrcName"]?.stringValue, peer)
        XCTAssertEqual(j["InterfaceName"]?["DstPrefix"]?.stringValue, "eth")
        XCTAssertEqual(j["DisableGatewayService"]?.boolValue, true)
        XCTAssertEqual(call(p, "NetworkDriver.DeleteEndpoint", #"{"NetworkID":"n","EndpointID":"e1"}"#).0, 200)
        XCTAssertNil(kernel.links[host]); XCTAssertNil(kernel.routes["10.42.1.2"])
        XCTAssertEqual(call(p, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"10.42.1.2"}"#).0, 200)
        XCTAssertNil(node.held[handle])
        // Twice, and the gateway (the node's own address, not ours): no error, nothing released.
        XCTAssertEqual(call(p, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"10.42.1.2"}"#).0, 200)
        XCTAssertEqual(call(p, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"10.42.0.1"}"#).0, 200)
        XCTAssertFalse(node.calls.contains("release weft:self"))
        XCTAssertEqual(call(p, "NetworkDriver.DeleteEndpoint", #"{"NetworkID":"n","EndpointID":"e1"}"#).0, 200, "DeleteEndpoint is idempotent")
    }

    /// A `docker run --rm` container can be released before dockerd shows its name: the late
    /// naming step must not re-create the released handle (it would leak the address).
    func testLateNamingNeverRecreatesAReleasedAddress() throws {
        final class Deferred: @unchecked Sendable { var work: [@Sendable () -> Void] = [] }
        let node = FakeNode(), kernel = FakeKernel(), later = Deferred()
        let p = DockerPlugin(node: node, network: kernel, names: FixedNames(map: ["e1": "short"]), nameAttempts: 1, namePause: 0,
                             background: { later.work.append($0) })
        let cidr = try XCTUnwrap(call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":null}"#).1["Address"]?.stringValue)
        XCTAssertEqual(call(p, "NetworkDriver.CreateEndpoint", #"{"EndpointID":"e1","Interface":{"Address":"\#(cidr)"}}"#).0, 200)
        XCTAssertEqual(call(p, "NetworkDriver.DeleteEndpoint", #"{"EndpointID":"e1"}"#).0, 200)
        XCTAssertEqual(call(p, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"10.42.1.2"}"#).0, 200)
        // The address goes to the next container before the first one's naming step runs.
        XCTAssertEqual(call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":{}}"#).1["Address"]?.stringValue, "10.42.1.2/16")
        for w in later.work { w() }
        XCTAssertFalse(node.calls.contains { $0.hasSuffix(" short") }, "named a released or foreign handle: \(node.calls)")
        XCTAssertEqual(node.held.count, 1, "only the second container's address is held")
    }

    /// `docker rm` while the node is down: Docker is told yes, and the plugin releases the
    /// address itself once the node answers again.
    func testReleaseWhileTheNodeIsDownIsDeferred() throws {
        final class Deferred: @unchecked Sendable { var work: [@Sendable () -> Void] = [] }
        let node = FakeNode(), later = Deferred()
        let p = DockerPlugin(node: node, network: FakeKernel(), names: nil, background: { later.work.append($0) })
        _ = call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":{}}"#)
        XCTAssertEqual(node.held.count, 1)
        node.down = true
        XCTAssertEqual(call(p, "IpamDriver.ReleaseAddress", #"{"PoolID":"weft-v4","Address":"10.42.1.2"}"#).0, 200)
        XCTAssertEqual(later.work.count, 1, "one retry loop started")
        XCTAssertFalse(p.retryPendingReleases(), "still down")
        XCTAssertEqual(node.held.count, 1)
        node.down = false
        XCTAssertTrue(p.retryPendingReleases())
        XCTAssertTrue(node.held.isEmpty, "released once the node is back: \(node.held)")
    }

    func testNodeDownIsAClearError() {
        let node = FakeNode(); node.down = true
        let p = makePlugin(node, FakeKernel())
        let (s, e) = call(p, "IpamDriver.RequestAddress", #"{"PoolID":"weft-v4","Options":{}}"#)
        XCTAssertEqual(s, 500)
        XCTAssertTrue(e["Err"]?.stringValue?.contains("no weft node is running") == true, "\(e)")
        XCTAssertTrue(call(p, "NetworkDriver.CreateEndpoint", #"{"EndpointID":"e1","Interface":{"Address":"10.42.1.2/16"}}"#).1["Err"]?.stringValue?.contains("weft start") == true)
    }

    func testFailedVethCreationLeavesNothing() {
        let kernel = FakeKernel(); kernel.failCreate = true
        let p = makePlugin(FakeNode(), kernel)
        let (s, e) = call(p, "NetworkDriver.CreateEndpoint", #"{"EndpointID":"e1","Interface":{"Address":"10.42.1.2/16"}}"#)
        XCTAssertEqual(s, 500); XCTAssertTrue(e["Err"]?.stringValue?.contains("creating veth") == true)
        XCTAssertTrue(kernel.links.isEmpty)
        XCTAssertTrue(call(p, "NetworkDriver.Join", #"{"EndpointID":"e1"}"#).1["Err"]?.stringValue?.contains("missing") == true)
    }

    func testNamesAndLabels() {
        XCTAssertEqual(DockerPlugin.dnsLabel("/My_App.v2"), "my-app-v2")
        XCTAssertNil(DockerPlugin.dnsLabel("/_"))
        XCTAssertNil(DockerPlugin.dnsLabel("/ünï"))
        XCTAssertEqual(DockerPlugin.dnsLabel(String(repeating: "a", count: 80))?.count, 63)
        let (h, q) = DockerPlugin.vethNames(endpointID: "abc")
        XCTAssertEqual(h.count, 13); XCTAssertEqual(q.count, 13)
        XCTAssertTrue(h.hasPrefix("wfd")); XCTAssertEqual(h.dropFirst(3), q.dropFirst(3))
        XCTAssertNotEqual(DockerPlugin.vethNames(endpointID: "abd").host, h)
        let list = try! JSON.parse(#"[{"Names":["/other"],"NetworkSettings":{"Networks":{"bridge":{"EndpointID":"x"}}}},{"Names":["/web"],"NetworkSettings":{"Networks":{"weft":{"EndpointID":"e1"}}}}]"#)
        XCTAssertEqual(DockerdNames.name(in: list, endpointID: "e1"), "web")
        XCTAssertNil(DockerdNames.name(in: list, endpointID: "e2"))
        XCTAssertNil(DockerdNames.name(in: .string("garbage"), endpointID: "e1"))
    }
}

final class HTTPParserTests: XCTestCase {
    func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

    func testContentLengthAndKeepAlive() {
        let raw = "POST /Plugin.Activate HTTP/1.1\r\nHost: plugin\r\nContent-Length: 2\r\nAccept: application/json\r\n\r\n{}POST /X HTTP/1.1\r\n"
        guard case .request(let r, let used) = HTTPParser.parse(bytes(raw)) else { return XCTFail() }
        XCTAssertEqual(r.method, "POST"); XCTAssertEqual(r.path, "/Plugin.Activate"); XCTAssertEqual(r.body, bytes("{}"))
        XCTAssertTrue(r.keepAlive); XCTAssertEqual(r.header("ACCEPT"), "application/json")
        XCTAssertEqual(HTTPParser.parse(Array(bytes(raw)[used...])), .incomplete, "the next request is not complete yet")
        guard case .request(let r2, _) = HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nConnection: close\r\n\r\n")) else { return XCTFail() }
        XCTAssertFalse(r2.keepAlive); XCTAssertEqual(r2.body, [])
        guard case .request(let r3, _) = HTTPParser.parse(bytes("POST /a HTTP/1.0\r\n\r\n")) else { return XCTFail() }
        XCTAssertFalse(r3.keepAlive)
    }

    func testIncompleteBody() {
        XCTAssertEqual(HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\"")), .incomplete)
        XCTAssertEqual(HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nContent-Le")), .incomplete)
        XCTAssertEqual(HTTPParser.parse([]), .incomplete)
    }

    func testChunked() {
        let raw = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n"
        guard case .request(let r, let used) = HTTPParser.parse(bytes(raw)) else { return XCTFail("\(HTTPParser.parse(bytes(raw)))") }
        XCTAssertEqual(String(decoding: r.body, as: UTF8.self), #"{"a":1}"#); XCTAssertEqual(used, raw.utf8.count)
        XCTAssertEqual(HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"")), .incomplete)
        if case .invalid(let s, _) = HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")) { XCTAssertEqual(s, 400) } else { XCTFail() }
        if case .invalid(let s, _) = HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n")) { XCTAssertEqual(s, 501) } else { XCTFail() }
        if case .invalid(let s, _) = HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffff\r\n")) { XCTAssertEqual(s, 413) } else { XCTFail() }
    }

    func testGarbageAndLimits() {
        for g in ["\u{0}\u{1}\u{2}garbage", "hello world\r\n\r\n", "GET\r\n\r\n", "POST nopath HTTP/1.1\r\n\r\n", "POST /a HTTP/2\r\n\r\n",
                  "POST /a HTTP/1.1\r\nbad header\r\n\r\n", "POST /a HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "POST /a HTTP/1.1\r\nContent-Length: 1x\r\n\r\n"] {
            guard case .invalid(let s, let why) = HTTPParser.parse(bytes(g)) else { XCTFail("accepted \(g.debugDescription)"); continue }
            XCTAssertEqual(s, 400, g.debugDescription); XCTAssertFalse(why.isEmpty)
        }
        if case .invalid(let s, _) = HTTPParser.parse(bytes("POST /a HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")) { XCTAssertEqual(s, 413) } else { XCTFail() }
        let huge = "POST /a HTTP/1.1\r\nX: " + String(repeating: "a", count: 20000)
        if case .invalid(let s, _) = HTTPParser.parse(bytes(huge)) { XCTAssertEqual(s, 431) } else { XCTFail() }
        if case .invalid(let s, _) = HTTPParser.parse([0xff, 0xfe] + bytes(" /a HTTP/1.1\r\n\r\n")) { XCTAssertEqual(s, 400) } else { XCTFail() }
    }

    func testResponse() {
        let r = String(decoding: HTTPParser.response(status: 404, body: #"{"Err":"x"}"#, close: true), as: UTF8.self)
        XCTAssertTrue(r.hasPrefix("HTTP/1.1 404 Not Found\r\n"))
        XCTAssertTrue(r.contains("Content-Length: 11\r\n")); XCTAssertTrue(r.contains("Connection: close\r\n"))
        XCTAssertTrue(r.hasSuffix("\r\n\r\n{\"Err\":\"x\"}"))
    }
}
