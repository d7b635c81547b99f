// Fuzz target: what `weft docker-plugin` reads from its socket — the bounded HTTP/1.1 parser
// (`HTTPParser.parse`) and every plugin call on an arbitrary body (`DockerPlugin.handle`, over
// WeftCNI's JSON parser) against a node and a kernel that always succeed. Input: byte 0 even →
// the bytes are a raw HTTP stream (every request in it is handled); odd → byte 1 picks a call
// from `DockerPlugin.methods`, the rest is its body.
import WeftAPI

struct FuzzNode: NodeClient {
    func status() throws(ControlClientError) -> API.Status {
        API.Status(id: "n", name: "f", address: "x:1", cluster: "c", incarnation: 1, version: "f", uptimeSeconds: 0,
                   members: [:], drops: [:], messages: [:], joined: true, warnings: [], overlayAddress: "10.42.0.1", overlayMTU: 1400)
    }
    func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation {
        API.Allocation(handle: handle, address: "10.42.0.9", prefixLength: 16, subnet: "10.42.0.0/16")
    }
    func release(handle: String) throws(ControlClientError) {}
    func ipam() throws(ControlClientError) -> API.IPAMInfo {
        API.IPAMInfo(subnet: "10.42.0.0/16", ranges: [], allocations: [API.AllocationInfo(handle: "docker:x", address: "10.42.0.9")],
                     conflicts: [], ownFree: 1, clusterFree: 1, pending: 0)
    }
}

struct FuzzKernel: NetworkOps {
    func netnsExists(_ netns: String) -> Bool { true }
    func hostLink(_ name: String) throws(NetworkError) -> LinkInfo? { LinkInfo(index: 1, mtu: 1400, up: true, mac: "", kind: "veth") }
    func containerLink(netns: String, name: String) throws(NetworkError) -> LinkInfo? { nil }
    func createVeth(hostName: String, containerName: String, netns: String, mtu: Int) throws(NetworkError) {}
    func configureContainer(netns: String, ifname: String, address: IPv4CIDR, routes: [IPv4CIDR]) throws(NetworkError) {}
    func configureHost(link name: String, address: IPv4) throws(NetworkError) {}
    func deleteHostLink(_ name: String) throws(NetworkError) -> Bool { true }
    func containerAddresses(netns: String, ifname: String) throws(NetworkError) -> [IPv4CIDR] { [] }
    func containerRoutes(netns: String) throws(NetworkError) -> [RouteInfo] { [] }
    func hostRoutes() throws(NetworkError) -> [RouteInfo] { [] }
}

let plugin = DockerPlugin(node: FuzzNode(), network: FuzzKernel(), names: nil, background: { _ in })

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDockerPlugin(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    if mode & 1 == 0 {
        var buffer = Array(bytes.dropFirst())
        for _ in 0..<16 {
            guard case .request(let r, let used) = HTTPParser.parse(buffer) else { break }
            precondition(used > 0 && used <= buffer.count, "the parser consumed \(used) of \(buffer.count) bytes")
            let (status, body) = plugin.handle(method: r.method, path: r.path, body: r.body)
            precondition(status == 200 || body.hasPrefix("{\"Err\":"), "an error reply without Err: \(body)")
            _ = HTTPParser.response(status: status, body: body)
            buffer.removeFirst(used)
        }
    } else if bytes.count >= 2 {
        let methods = DockerPlugin.methods
        let (status, body) = plugin.handle(method: "POST", path: "/" + methods[Int(bytes[1]) % methods.count], body: Array(bytes.dropFirst(2)))
        precondition(status == 200 || body.hasPrefix("{\"Err\":"), "an error reply without Err: \(body)")
    }
    return 0
}
