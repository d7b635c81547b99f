import Foundation
import WeftAPI
import WeftCNI

/// Finds the name of the container an endpoint belongs to (dockerd's API in production).
public protocol ContainerNameSource: Sendable {
    /// The container's name (without Docker's leading '/'), or nil when not (yet) known.
    func containerName(endpointID: String) -> String?
}

/// Docker's remote NetworkDriver and IpamDriver (docs/docker.md): a function from
/// (method path, JSON body) to (HTTP status, JSON body). The node client, the kernel calls and
/// the name lookup are injected so every decision is tested without Docker or root.
public final class DockerPlugin: Sendable {
    /// Handles this plugin creates start with this; the plugin only ever releases such handles.
    public static let handlePrefix = "docker:"
    /// The pool every weft network gets. Docker refuses a local network whose pool overlaps a
    /// host route, and the node's TUN routes the whole cluster subnet: a pool of 0.0.0.0/0
    /// overlaps nothing Docker checks, and the real prefix comes with each address.
    public static let poolV4 = "0.0.0.0/0"
    public static let poolID = "weft-v4"

    let node: any NodeClient
    let network: any NetworkOps
    let names: (any ContainerNameSource)?
    let log: @Sendable (String) -> Void
    /// Runs the background naming step (a thread in production, inline in tests).
    let background: @Sendable (@escaping @Sendable () -> Void) -> Void
    /// Attempts and pause of the naming step (dockerd shows the endpoint once the container runs).
    let nameAttempts: Int
    let namePause: Double
    /// The handles this process allocated and has not released, by address. Naming re-issues
    /// `alloc` for a handle, which would re-create it if it had been released meanwhile (a
    /// `docker run --rm` container can be gone before dockerd shows its name): a release and a
    /// naming step therefore run under this lock, and naming only touches handles still here.
    private let state = State()
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var handleByAddress: [String: String] = [:]
        /// Releases Docker asked for while the node was down: (address, handle if known).
        var pendingReleases: [(address: String, handle: String?)] = []
        var retrying = false
    }

    public init(node: any NodeClient, network: any NetworkOps, names: (any ContainerNameSource)?,
                nameAttempts: Int = 40, namePause: Double = 0.25,
                log: @escaping @Sendable (String) -> Void = { _ in },
                background: @escaping @Sendable (@escaping @Sendable () -> Void) -> Void = { work in Thread.detachNewThread(work) }) {
        self.node = node; self.network = network; self.names = names; self.log = log
        self.background = background; self.nameAttempts = nameAttempts; self.namePause = namePause
    }

    /// An error Docker shows to the user: `{"Err": "..."}`, HTTP 500 for a failed call.
    public struct Failure: Error, Equatable {
        public var status: Int
        public var message: String
        public init(_ message: String, status: Int = 500) { self.status = status; self.message = message }
    }

    public static func errorBody(_ message: String) -> String { JSON.object([("Err", .string(message))]).text }

    /// Answers one call: `path` is `/Plugin.Activate`, `/NetworkDriver.Join`, …
    public func handle(method: String, path: String, body: [UInt8]) -> (status: Int, body: String) {
        guard method == "POST" else {
            return (405, Self.errorBody("weft docker-plugin answers POST only (got \(method) \(path)); it is Docker's remote network/IPAM plugin"))
        }
        let call = String(path.dropFirst())
        guard let handler = route(call) else {
            return (404, Self.errorBody("weft docker-plugin does not implement \(call.isEmpty ? "/" : call)"))
        }
        let request: JSON
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            request = .object([])
        } else {
            do { request = try JSON.parse(body) } catch {
                return (400, Self.errorBody("\(call): the request body is not JSON: \(error.description)"))
            }
            guard request.isObject else { return (400, Self.errorBody("\(call): the request body must be a JSON object")) }
        }
        do {
            let reply = try handler(request)
            return (200, reply.text)
        } catch let f as Failure {
            log("\(call) error: \(f.message)")
            return (f.status, Self.errorBody(f.message))
        } catch {
            log("\(call) error: \(error)")
            return (500, Self.errorBody("\(call) failed: \(error)"))
        }
    }

    /// The handler of a call, or nil for a call this plugin does not answer.
    func route(_ call: String) -> ((JSON) throws -> JSON)? {
        let empty: (JSON) throws -> JSON = { _ in .object([]) }
        switch call {
        case "Plugin.Activate": return { _ in .object([("Implements", .array([.string("NetworkDriver"), .string("IpamDriver")]))]) }
        case "NetworkDriver.GetCapabilities": return { _ in .object([("Scope", .string("local")), ("ConnectivityScope", .string("global"))]) }
        case "NetworkDriver.CreateNetwork": return createNetwork
        case "NetworkDriver.CreateEndpoint": return createEndpoint
        case "NetworkDriver.DeleteEndpoint": return deleteEndpoint
        case "NetworkDriver.EndpointOperInfo": return { _ in .object([("Value", .object([]))]) }
        case "NetworkDriver.Join": return join
        case "NetworkDriver.DeleteNetwork", "NetworkDriver.Leave", "NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete",
             "NetworkDriver.ProgramExternalConnectivity", "NetworkDriver.RevokeExternalConnectivity", "IpamDriver.ReleasePool":
            return empty
        case "IpamDriver.GetCapabilities": return { _ in .object([("RequiresMACAddress", .bool(false)), ("RequiresRequestReplay", .bool(false))]) }
        case "IpamDriver.GetDefaultAddressSpaces":
            return { _ in .object([("LocalDefaultAddressSpace", .string("weft")), ("GlobalDefaultAddressSpace", .string("weft"))]) }
        case "IpamDriver.RequestPool": return requestPool
        case "IpamDriver.RequestAddress": return requestAddress
        case "IpamDriver.ReleaseAddress": return releaseAddress
        default: return nil
        }
    }

    /// Every call this plugin answers (the rest get 404, which Docker tolerates).
    public static let methods = [
        "Plugin.Activate", "NetworkDriver.GetCapabilities", "NetworkDriver.CreateNetwork", "NetworkDriver.DeleteNetwork",
        "NetworkDriver.CreateEndpoint", "NetworkDriver.DeleteEndpoint", "NetworkDriver.EndpointOperInfo", "NetworkDriver.Join",
        "NetworkDriver.Leave", "NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete", "NetworkDriver.ProgramExternalConnectivity",
        "NetworkDriver.RevokeExternalConnectivity", "IpamDriver.GetCapabilities", "IpamDriver.GetDefaultAddressSpaces",
        "IpamDriver.RequestPool", "IpamDriver.ReleasePool", "IpamDriver.RequestAddress", "IpamDriver.ReleaseAddress",
    ]

    // MARK: - Names

    /// Host end `wfd` + 10 hex digits of a 64-bit FNV-1a hash of the endpoint id; the container
    /// end is created as `wfp` + the same digits and renamed by Docker when it moves it.
    public static func vethNames(endpointID: String) -> (host: String, peer: String) {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in endpointID.utf8 { h ^= UInt64(b); h = h &* 0x0000_0100_0000_01b3 }
        let hex = String(h, radix: 16)
        let digits = String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(10))
        return ("wfd" + digits, "wfp" + digits)
    }

    /// A Docker container name as a DNS label: leading '/' dropped, lower case, '_' and '.'
    /// become '-', at most 63 bytes; nil when nothing usable is left.
    public static func dnsLabel(_ containerName: String) -> String? {
        var s = containerName.hasPrefix("/") ? String(containerName.dropFirst()) : containerName
        s = String(s.lowercased().map { $0 == "_" || $0 == "." ? "-" : $0 })
        s = String(s.prefix(63))
        while s.hasSuffix("-") { s.removeLast() }
        guard !s.isEmpty, !s.hasPrefix("-"),
              s.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") })
        else { return nil }
        return s
    }

    static func id(_ request: JSON, _ key: String, _ call: String) throws -> String {
        guard let v = request[key]?.stringValue, !v.isEmpty else { throw Failure("\(call): the request has no \(key)", status: 400) }
        guard v.utf8.count <= 128, v.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }) else {
            throw Failure("\(call): \(key) '\(v.prefix(80))' is not a Docker id (letters and digits)", status: 400)
        }
        return v
    }

    // MARK: - NetworkDriver

    func createNetwork(_ r: JSON) throws -> JSON {
        _ = try Self.id(r, "NetworkID", "CreateNetwork")
        if let v6 = r["IPv6Data"]?.arrayValue, !v6.isEmpty {
            throw Failure("weft networks are IPv4 only: create the network without --ipv6")
        }
        for d in r["IPv4Data"]?.arrayValue ?? [] where d["Pool"]?.stringValue != Self.poolV4 {
            throw Failure("the weft driver needs weft addresses: create the network with --ipam-driver weft (got pool \(d["Pool"]?.stringValue ?? "none"))")
        }
        return .object([])
    }

    func createEndpoint(_ r: JSON) throws -> JSON {
        let eid = try Self.id(r, "EndpointID", "CreateEndpoint")
        guard let cidr = r["Interface"]?["Address"]?.stringValue, !cidr.isEmpty,
              let address = IPv4CIDR(cidr), address.address.value != 0
        else { throw Failure("CreateEndpoint: Docker gave no IPv4 address: create the network with --ipam-driver weft", status: 400) }
        if let v6 = r["Interface"]?["AddressIPv6"]?.stringValue, !v6.isEmpty {
            throw Failure("weft networks are IPv4 only: the endpoint has an IPv6 address \(v6)")
        }
        let mtu: Int
        do { mtu = try node.status().overlayMTU ?? 1420 } catch { throw Self.nodeFailure(error, "creating the endpoint's interface") }
        let (host, peer) = Self.vethNames(endpointID: eid)
        do throws(NetworkError) {
            _ = try network.deleteHostLink(host)  // a leftover of an earlier try; its peer goes with it
            try network.createVeth(hostName: host, containerName: peer, netns: "/proc/self/ns/net", mtu: mtu)
            try network.configureHost(link: host, address: address.address)
        } catch {
            _ = try? network.deleteHostLink(host)
            throw Failure("CreateEndpoint: \(error.description)")
        }
        log("endpoint \(eid.prefix(12)) address \(cidr) veth \(host)/\(peer) mtu \(mtu)")
        nameLater(endpointID: eid, address: address.address.description)
        // Docker supplied the address: the reply must not change the interface.
        return .object([])
    }

    func deleteEndpoint(_ r: JSON) throws -> JSON {
        let eid = try Self.id(r, "EndpointID", "DeleteEndpoint")
        let (host, _) = Self.vethNames(endpointID: eid)
        do throws(NetworkError) { _ = try network.deleteHostLink(host) } catch {
            throw Failure("DeleteEndpoint: \(error.description)")
        }
        return .object([])
    }

    func join(_ r: JSON) throws -> JSON {
        let eid = try Self.id(r, "EndpointID", "Join")
        let (host, peer) = Self.vethNames(endpointID: eid)
        let present: Bool
        do throws(NetworkError) {
            let p = try network.hostLink(peer), h = try network.hostLink(host)
            present = p != nil && h != nil
        } catch {
            throw Failure("Join: \(error.description)")
        }
        guard present else { throw Failure("Join: the endpoint's interface \(peer) is missing (was CreateEndpoint answered by this plugin?)") }
        // No gateway: the container's address carries the cluster prefix, so the kernel routes
        // the whole subnet out of eth0 and the host end answers ARP by proxy (as with weft-cni).
        return .object([
            ("InterfaceName", .object([("SrcName", .string(peer)), ("DstPrefix", .string("eth"))])),
            ("DisableGatewayService", .bool(true)),
        ])
    }

    // MARK: - IpamDriver

    func requestPool(_ r: JSON) throws -> JSON {
        if r["V6"]?.boolValue == true {
            throw Failure("weft networks are IPv4 only: create the network without --ipv6")
        }
        if let pool = r["Pool"]?.stringValue, !pool.isEmpty {
            throw Failure("weft picks addresses from the cluster subnet: create the network without --subnet (got \(pool))")
        }
        return .object([("PoolID", .string(Self.poolID)), ("Pool", .string(Self.poolV4)), ("Data", .object([]))])
    }

    func requestAddress(_ r: JSON) throws -> JSON {
        if r["Options"]?["RequestAddressType"]?.stringValue == "com.docker.network.gateway" {
            // Recorded by Docker for `network inspect` only (no gateway service runs): the node's
            // own overlay address, where a container reaches its node (and its DNS resolver).
            let status: API.Status
            do { status = try node.status() } catch { throw Self.nodeFailure(error, "creating the network") }
            let subnet: String?
            do { subnet = try node.ipam().subnet } catch { throw Self.nodeFailure(error, "creating the network") }
            guard let own = status.overlayAddress, let s = subnet, let c = IPv4CIDR(s) else {
                throw Failure("the weft node is not ready (it has no overlay address yet): try again shortly")
            }
            return .object([("Address", .string("\(own)/\(c.prefix)")), ("Data", .object([]))])
        }
        if let want = r["Address"]?.stringValue, !want.isEmpty {
            throw Failure("weft chooses container addresses: run the container without --ip (asked for \(want))")
        }
        let handle = Self.handlePrefix + Self.nonce()
        let allocation: API.Allocation
        do { allocation = try node.alloc(handle: handle, name: nil) } catch {
            if case .timeout = error { background { [node] in _ = try? node.release(handle: handle) } }
            throw Self.nodeFailure(error, "allocating an address")
        }
        guard let ip = IPv4(allocation.address), (1...32).contains(allocation.prefixLength) else {
            _ = try? node.release(handle: handle)
            throw Failure("the weft node answered with an unusable allocation \(allocation.address)/\(allocation.prefixLength)")
        }
        state.lock.withLock { state.handleByAddress[ip.description] = handle }
        log("allocated \(ip)/\(allocation.prefixLength) handle \(handle)")
        return .object([("Address", .string("\(ip)/\(allocation.prefixLength)")), ("Data", .object([]))])
    }

    func releaseAddress(_ r: JSON) throws -> JSON {
        guard let text = r["Address"]?.stringValue, let ip = IPv4(text.split(separator: "/").first.map(String.init) ?? "") else {
            throw Failure("ReleaseAddress: the request has no IPv4 Address", status: 400)
        }
        state.lock.lock()
        defer { state.lock.unlock() }
        let known = state.handleByAddress.removeValue(forKey: ip.description)
        let info: API.IPAMInfo
        do { info = try node.ipam() } catch {
            switch error {
            case .noNode, .timeout:
                // `docker rm` goes on whatever we answer; rather than leave the address held, the
                // plugin releases it itself once the node is back.
                state.pendingReleases.append((ip.description, known))
                log("the weft node is down: the release of \(ip) is deferred until it answers again")
                if !state.retrying {
                    state.retrying = true
                    background { [self] in
                        while !retryPendingReleases() { Thread.sleep(forTimeInterval: 1) }
                    }
                }
                return .object([])
            default:
                throw Self.nodeFailure(error, "releasing \(ip)")
            }
        }
        // Only this plugin's handles: the gateway (the node's own address) and anything else stay.
        for a in info.allocations where a.handle.hasPrefix(Self.handlePrefix) && a.address == ip.description {
            do { try node.release(handle: a.handle) } catch {
                if case .remote(let b) = error, b.code == .notFound { continue }
                throw Self.nodeFailure(error, "releasing \(ip)")
            }
            log("released \(ip) handle \(a.handle)")
        }
        return .object([])
    }

    /// Tries the deferred releases; true when none is left (then the retry loop ends). An entry
    /// with a known handle releases exactly that handle; one without (the plugin restarted in
    /// between) releases the `docker:` handle holding the address: while the node was down nobody
    /// could be given that address, since the node still held it.
    public func retryPendingReleases() -> Bool {
        state.lock.lock()
        defer { state.lock.unlock() }
        var left: [(address: String, handle: String?)] = []
        for p in state.pendingReleases {
            do {
                if let h = p.handle {
                    do { try node.release(handle: h) } catch {
                        guard case .remote(let b) = error, b.code == .notFound else { throw error }
                    }
                } else {
                    for a in try node.ipam().allocations where a.handle.hasPrefix(Self.handlePrefix) && a.address == p.address {
                        try node.release(handle: a.handle)
                    }
                }
                log("released \(p.address) (deferred while the node was down)")
            } catch {
                left.append(p)
            }
        }
        state.pendingReleases = left
        if left.isEmpty { state.retrying = false }
        return left.isEmpty
    }

    // MARK: - Helpers

    /// Gives the allocation its container's DNS name once dockerd shows which container the
    /// endpoint belongs to (Docker's calls never carry the name). Re-allocating the same handle
    /// with a name keeps the address and adds the record, which then goes with the release.
    func nameLater(endpointID: String, address: String) {
        guard let names else { return }
        // The handle now, so a later container that gets this address (after a release) is never
        // named by this step. After a plugin restart the node's list says which handle it is.
        var known = state.lock.withLock { state.handleByAddress[address] }
        if known == nil, let found = try? node.ipam().allocations.first(where: { $0.handle.hasPrefix(Self.handlePrefix) && $0.address == address })?.handle {
            state.lock.withLock { if state.handleByAddress[address] == nil { state.handleByAddress[address] = found } }
            known = found
        }
        guard let handle = known else { log("naming: \(address) is not allocated by this plugin"); return }
        background { [self] in
            for attempt in 0..<nameAttempts {
                if attempt > 0 { Thread.sleep(forTimeInterval: namePause) }
                if state.lock.withLock({ state.handleByAddress[address] != handle }) { return }  // released meanwhile
                guard let raw = names.containerName(endpointID: endpointID) else { continue }
                guard let label = Self.dnsLabel(raw) else { log("container \(raw) has no usable DNS name"); return }
                state.lock.lock()
                defer { state.lock.unlock() }
                guard state.handleByAddress[address] == handle else { return }
                do {
                    _ = try node.alloc(handle: handle, name: label)
                    log("named \(address) \(label)")
                } catch {
                    log("naming \(label) (\(address)) failed: \(error)")
                }
                return
            }
            log("no container name found for endpoint \(endpointID.prefix(12)) (\(address)); it has no DNS name")
        }
    }

    static func nonce() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let h = String(g.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - h.count) + h
        }.joined()
    }

    /// A node failure as a message for the Docker user.
    static func nodeFailure(_ e: ControlClientError, _ what: String) -> Failure {
        switch e {
        case .noNode:
            return Failure("no weft node is running (\(what) needs one): start it with `weft start`, then retry; \(e.description)")
        case .timeout:
            return Failure("the weft node did not answer in time while \(what): check `weft status`; \(e.description)")
        case .remote(let b):
            switch b.code {
            case .notReady: return Failure("the weft node is not ready (\(what)): try again shortly; \(b.message)")
            case .exhausted: return Failure("no free address in the weft cluster (\(what)): \(b.message)")
            default: return Failure("the weft node refused \(what) (\(b.code.rawValue)): \(b.message)")
            }
        default:
            return Failure("talking to the weft node failed while \(what): \(e.description)")
        }
    }
}
