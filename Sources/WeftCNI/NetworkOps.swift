/// An IPv4 address as a host-order number ("10.42.0.5" ⇄ 0x0A2A0005).
public struct IPv4: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let o = UInt8(p) else { return nil }
            v = v << 8 | UInt32(o)
        }
        value = v
    }

    public var description: String { "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)" }
    public static func < (a: IPv4, b: IPv4) -> Bool { a.value < b.value }
}

/// An IPv4 prefix such as 10.42.0.0/16 (or an address with its prefix length, 10.42.0.5/16).
public struct IPv4CIDR: Hashable, Sendable, CustomStringConvertible {
    public var address: IPv4
    public var prefix: Int
    public init(_ address: IPv4, _ prefix: Int) { self.address = address; self.prefix = prefix }

    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = IPv4(String(parts[0])), let p = Int(parts[1]), (0...32).contains(p) else { return nil }
        address = a; prefix = p
    }

    public var description: String { "\(address)/\(prefix)" }
    /// The network part only (10.42.0.5/16 → 10.42.0.0/16).
    public var network: IPv4CIDR {
        IPv4CIDR(IPv4(prefix == 0 ? 0 : address.value & ~(UInt32.max >> UInt32(prefix))), prefix)
    }
    public static let defaultRoute = IPv4CIDR(IPv4(0), 0)
}

/// What the plugin reads back about a link.
public struct LinkInfo: Equatable, Sendable {
    public var index: Int
    public var mtu: Int
    public var up: Bool
    /// "aa:bb:cc:dd:ee:ff".
    public var mac: String
    /// "veth", "dummy", … or "" when the kernel reports none.
    public var kind: String
    public init(index: Int, mtu: Int, up: Bool, mac: String, kind: String) {
        self.index = index; self.mtu = mtu; self.up = up; self.mac = mac; self.kind = kind
    }
}

/// A main-table IPv4 route: destination, and the link it leaves by.
public struct RouteInfo: Equatable, Sendable {
    public var destination: IPv4CIDR
    public var gateway: IPv4?
    public var linkIndex: Int
    public init(destination: IPv4CIDR, gateway: IPv4? = nil, linkIndex: Int) {
        self.destination = destination; self.gateway = gateway; self.linkIndex = linkIndex
    }
}

/// A failed kernel call: which step, and the errno text.
public struct NetworkError: Error, Equatable, Sendable, CustomStringConvertible {
    public var step: String
    public var errno: Int32
    public var reason: String
    public init(step: String, errno: Int32, reason: String) { self.step = step; self.errno = errno; self.reason = reason }
    public var description: String { "\(step): \(reason)" }
}

/// The kernel side of the plugin, small enough to fake in tests.
///
/// "Host" calls act in the plugin's own network namespace (the runtime's); "container" calls act
/// in the namespace at `netns`. Every call is idempotent where it can be: creating what exists
/// replaces it, deleting what is missing is not an error.
public protocol NetworkOps: Sendable {
    /// Whether `netns` can be opened.
    func netnsExists(_ netns: String) -> Bool
    func hostLink(_ name: String) throws(NetworkError) -> LinkInfo?
    func containerLink(netns: String, name: String) throws(NetworkError) -> LinkInfo?
    /// A veth pair: `hostName` here, `containerName` in `netns`, both with `mtu`.
    func createVeth(hostName: String, containerName: String, netns: String, mtu: Int) throws(NetworkError)
    /// In the container: lo up, `address` on `ifname`, `ifname` up, then `routes` via `ifname`.
    func configureContainer(netns: String, ifname: String, address: IPv4CIDR, routes: [IPv4CIDR]) throws(NetworkError)
    /// Here: `name` up, proxy ARP on it (proxy_delay 0), IPv4 forwarding on, `address`/32 via `name`.
    func configureHost(link name: String, address: IPv4) throws(NetworkError)
    /// Deletes a host link (its veth peer goes with it). Returns false when it did not exist.
    @discardableResult func deleteHostLink(_ name: String) throws(NetworkError) -> Bool
    func containerAddresses(netns: String, ifname: String) throws(NetworkError) -> [IPv4CIDR]
    func containerRoutes(netns: String) throws(NetworkError) -> [RouteInfo]
    func hostRoutes() throws(NetworkError) -> [RouteInfo]
}
