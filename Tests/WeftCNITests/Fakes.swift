import Foundation
import WeftAPI
@testable import WeftCNI

/// An in-memory node: the same handle always gets the same address; failures on demand.
final class FakeNode: NodeClient, @unchecked Sendable {
    private let lock = NSLock()
    private var _allocations: [String: String] = ["weft:overlay": "10.42.0.1"]
    private var next: UInt32 = 2
    var down = false
    var allocError: ControlClientError?
    var releaseError: ControlClientError?
    var overlayMTU: Int?
    var hasRing = true
    private(set) var allocCalls: [String] = []
    private(set) var allocNames: [String?] = []
    var dnsAddress: String?
    private(set) var releaseCalls: [String] = []

    var allocations: [String: String] { lock.withLock { _allocations } }

    func preload(handle: String, address: String) { lock.withLock { _allocations[handle] = address } }

    func status() throws(ControlClientError) -> API.Status {
        if down { throw .noNode(dataDir: "/fake") }
        return API.Status(id: "id", name: "n", address: "127.0.0.1:1", cluster: "c", incarnation: 1, version: "t", uptimeSeconds: 1,
                          members: [:], drops: [:], messages: [:], joined: false, warnings: [], overlayAddress: "10.42.0.1",
                          overlayMTU: overlayMTU, dnsAddress: dnsAddress, dnsDomain: dnsAddress == nil ? nil : "weft.internal")
    }

    func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation {
        if down { throw .noNode(dataDir: "/fake") }
        if let e = allocError { throw e }
        let address: String = lock.withLock {
            allocCalls.append(handle)
            allocNames.append(name)
            if let a = _allocations[handle] { return a }
            let a = IPv4(0x0A2A_0000 | next).description
            next += 1
            _allocations[handle] = a
            return a
        }
        return API.Allocation(handle: handle, address: address, prefixLength: 16, subnet: "10.42.0.0/16")
    }

    func release(handle: String) throws(ControlClientError) {
        if down { throw .noNode(dataDir: "/fake") }
        if let e = releaseError { throw e }
        let existed = lock.withLock { () -> Bool in
            releaseCalls.append(handle)
            return _allocations.removeValue(forKey: handle) != nil
        }
        if !existed { throw .remote(API.ErrorBody(code: .notFound, message: "no allocation for \(handle)")) }
    }

    func ipam() throws(ControlClientError) -> API.IPAMInfo {
        if down { throw .noNode(dataDir: "/fake") }
        let all = lock.withLock { _allocations.map { API.AllocationInfo(handle: $0.key, address: $0.value) }.sorted { $0.handle < $1.handle } }
        return API.IPAMInfo(subnet: hasRing ? "10.42.0.0/16" : nil, ranges: [], allocations: all, conflicts: [],
                            ownFree: 100, clusterFree: 100, pending: 0)
    }
}

/// An in-memory kernel: namespaces with links, addresses and routes; a veth's peer and the
/// routes over it vanish with it, as in Linux. `failOn` makes a named step fail.
final class FakeNetwork: NetworkOps, @unchecked Sendable {
    struct Container {
        var links: [String: LinkInfo] = ["lo": LinkInfo(index: 1, mtu: 65536, up: false, mac: "00:00:00:00:00:00", kind: "")]
        var addresses: [String: [IPv4CIDR]] = [:]
        var routes: [RouteInfo] = []
    }

    private let lock = NSLock()
    var namespaces: [String: Container] = [:]
    var hostLinks: [String: LinkInfo] = [:]
    var hostRoutes_: [RouteInfo] = []
    var proxyARP: Set<String> = []
    /// host link → (netns, ifname) of its peer
    var peers: [String: (String, String)] = [:]
    var failOn: Set<String> = []
    private var nextIndex = 10
    private(set) var calls: [String] = []

    private func locked<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    func addNamespace(_ path: String) { lock.withLock { namespaces[path] = Container() } }
    func removeNamespace(_ path: String) { lock.withLock { namespaces[path] = nil } }

    private func step(_ name: String) throws(NetworkError) {
        lock.withLock { calls.append(name) }
        if failOn.contains(name) { throw NetworkError(step: name, errno: 1, reason: "injected failure") }
    }

    private func mac(_ i: Int) -> String { String(format: "02:00:00:00:00:%02x", i) }

    func netnsExists(_ netns: String) -> Bool { lock.withLock { namespaces[netns] != nil } }

    func hostLink(_ name: String) throws(NetworkError) -> LinkInfo? { lock.withLock { hostLinks[name] } }

    func containerLink(netns: String, name: String) throws(NetworkError) -> LinkInfo? {
        try locked { () throws(NetworkError) -> LinkInfo? in
            guard let c = namespaces[netns] else { throw NetworkError(step: "entering \(netns)", errno: 2, reason: "No such file or directory") }
            return c.links[name]
        }
    }

    func createVeth(hostName: String, containerName: String, netns: String, mtu: Int) throws(NetworkError) {
        try step("createVeth")
        try locked { () throws(NetworkError) in
            guard namespaces[netns] != nil else { throw NetworkError(step: "createVeth", errno: 2, reason: "no netns") }
            guard hostLinks[hostName] == nil, namespaces[netns]!.links[containerName] == nil else {
                throw NetworkError(step: "createVeth", errno: 17, reason: "File exists")
            }
            nextIndex += 2
            hostLinks[hostName] = LinkInfo(index: nextIndex, mtu: mtu, up: false, mac: mac(nextIndex), kind: "veth")
            namespaces[netns]!.links[containerName] = LinkInfo(index: nextIndex + 1, mtu: mtu, up: false, mac: mac(nextIndex + 1), kind: "veth")
            peers[hostName] = (netns, containerName)
        }
    }

    func configureContainer(netns: String, ifname: String, address: IPv4CIDR, routes: [IPv4CIDR]) throws(NetworkError) {
        try step("configureContainer")
        try locked { () throws(NetworkError) in
            guard var c = namespaces[netns], var l = c.links[ifname] else { throw NetworkError(step: "configureContainer", errno: 19, reason: "no device") }
            c.links["lo"]!.up = true
            l.up = true
            c.links[ifname] = l
            if !(c.addresses[ifname] ?? []).contains(address) {
                c.addresses[ifname, default: []].append(address)
                c.routes.append(RouteInfo(destination: address.network, linkIndex: l.index))
            }
            for r in routes where !c.routes.contains(where: { $0.destination == r }) {
                c.routes.append(RouteInfo(destination: r, linkIndex: l.index))
            }
            namespaces[netns] = c
        }
    }

    func configureHost(link name: String, address: IPv4) throws(NetworkError) {
        try step("configureHost")
        lock.withLock {
            hostLinks[name]?.up = true
            proxyARP.insert(name)
            let dst = IPv4CIDR(address, 32)
            hostRoutes_.removeAll { $0.destination == dst }
            hostRoutes_.append(RouteInfo(destination: dst, linkIndex: hostLinks[name]!.index))
        }
    }

    func deleteHostLink(_ name: String) throws(NetworkError) -> Bool {
        try step("deleteHostLink")
        return lock.withLock {
            guard let l = hostLinks.removeValue(forKey: name) else { return false }
            hostRoutes_.removeAll { $0.linkIndex == l.index }
            proxyARP.remove(name)
            if let (ns, ifname) = peers.removeValue(forKey: name), var c = namespaces[ns], let cl = c.links.removeValue(forKey: ifname) {
                c.addresses[ifname] = nil
                c.routes.removeAll { $0.linkIndex == cl.index }
                namespaces[ns] = c
            }
            return true
        }
    }

    /// Deletes the container end (its host peer goes too), like `ip -n X link del eth0`.
    func deleteContainerLink(netns: String, name: String) {
        let host = lock.withLock { peers.first(where: { $0.value.0 == netns && $0.value.1 == name })?.key }
        if let host { _ = try? deleteHostLink(host) }
    }

    func containerAddresses(netns: String, ifname: String) throws(NetworkError) -> [IPv4CIDR] {
        lock.withLock { namespaces[netns]?.addresses[ifname] ?? [] }
    }

    func containerRoutes(netns: String) throws(NetworkError) -> [RouteInfo] { lock.withLock { namespaces[netns]?.routes ?? [] } }

    func hostRoutes() throws(NetworkError) -> [RouteInfo] { lock.withLock { hostRoutes_ } }
}
