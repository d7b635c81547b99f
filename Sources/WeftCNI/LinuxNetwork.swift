import CWeftCNIShim
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `NetworkOps` over rtnetlink (the C shim) and /proc/sys. Container calls use a netlink socket
/// created inside the container's namespace by a short-lived thread, so this process never
/// changes namespace itself.
public struct LinuxNetwork: NetworkOps {
    public init() {}

    private static func fail(_ step: String, _ rc: Int32) -> NetworkError {
        let e = -rc
        return NetworkError(step: step, errno: e, reason: String(cString: strerror(e)))
    }

    /// Runs `body` with a netlink socket in the host namespace (nil) or in `netns`.
    private func withSocket<T>(_ netns: String?, _ body: (Int32) throws(NetworkError) -> T) throws(NetworkError) -> T {
        let fd = netns.map { p in p.withCString { weft_nl_open_in_netns($0) } } ?? weft_nl_open()
        guard fd >= 0 else { throw Self.fail(netns.map { "entering network namespace \($0)" } ?? "opening a netlink socket", fd) }
        defer { weft_nl_close(fd) }
        return try body(fd)
    }

    private func link(_ fd: Int32, _ name: String) throws(NetworkError) -> LinkInfo? {
        var l = weft_link()
        let rc = name.withCString { weft_nl_link_get(fd, $0, &l) }
        if rc < 0 { throw Self.fail("reading link \(name)", rc) }
        if rc == 0 { return nil }
        let macBytes = withUnsafeBytes(of: l.mac) { Array($0.prefix(Int(l.mac_len))) }
        let mac = macBytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined(separator: ":")
        let kind = withUnsafeBytes(of: l.kind) { raw in
            String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
        return LinkInfo(index: Int(l.index), mtu: Int(l.mtu), up: l.flags & UInt32(IFF_UP) != 0, mac: mac, kind: kind)
    }

    private func requireLink(_ fd: Int32, _ name: String) throws(NetworkError) -> LinkInfo {
        guard let l = try link(fd, name) else { throw NetworkError(step: "finding link \(name)", errno: ENODEV, reason: "no such device") }
        return l
    }

    public func netnsExists(_ netns: String) -> Bool {
        let fd = netns.withCString { weft_netns_open($0) }
        if fd >= 0 { close(fd); return true }
        return false
    }

    public func hostLink(_ name: String) throws(NetworkError) -> LinkInfo? {
        try withSocket(nil) { fd throws(NetworkError) in try link(fd, name) }
    }

    public func containerLink(netns: String, name: String) throws(NetworkError) -> LinkInfo? {
        try withSocket(netns) { fd throws(NetworkError) in try link(fd, name) }
    }

    public func createVeth(hostName: String, containerName: String, netns: String, mtu: Int) throws(NetworkError) {
        let nsfd = netns.withCString { weft_netns_open($0) }
        guard nsfd >= 0 else { throw Self.fail("opening network namespace \(netns)", nsfd) }
        defer { close(nsfd) }
        try withSocket(nil) { fd throws(NetworkError) in
            let rc = hostName.withCString { h in containerName.withCString { c in weft_nl_veth_create(fd, h, c, nsfd, Int32(mtu)) } }
            if rc < 0 { throw Self.fail("creating veth \(hostName) with peer \(containerName) in \(netns)", rc) }
        }
    }

    public func configureContainer(netns: String, ifname: String, address: IPv4CIDR, routes: [IPv4CIDR]) throws(NetworkError) {
        try withSocket(netns) { fd throws(NetworkError) in
            let lo = try requireLink(fd, "lo")
            var rc = weft_nl_link_set(fd, Int32(lo.index), 1, 0)
            if rc < 0 { throw Self.fail("setting lo up in \(netns)", rc) }
            let l = try requireLink(fd, ifname)
            rc = weft_nl_addr_add(fd, Int32(l.index), address.address.value.bigEndian, Int32(address.prefix))
            if rc < 0 && rc != -EEXIST { throw Self.fail("adding \(address) to \(ifname) in \(netns)", rc) }
            rc = weft_nl_link_set(fd, Int32(l.index), 1, 0)
            if rc < 0 { throw Self.fail("setting \(ifname) up in \(netns)", rc) }
            for r in routes {
                rc = weft_nl_route_replace(fd, Int32(l.index), r.network.address.value.bigEndian, Int32(r.prefix), 0)
                if rc < 0 { throw Self.fail("adding route \(r) dev \(ifname) in \(netns)", rc) }
            }
        }
    }

    public func configureHost(link name: String, address: IPv4) throws(NetworkError) {
        try withSocket(nil) { fd throws(NetworkError) in
            let l = try requireLink(fd, name)
            var rc = weft_nl_link_set(fd, Int32(l.index), 1, 0)
            if rc < 0 { throw Self.fail("setting \(name) up", rc) }
            try Self.sysctl("net/ipv4/conf/\(name)/proxy_arp", "1")
            try Self.sysctl("net/ipv4/neigh/\(name)/proxy_delay", "0")
            if Self.readSysctl("net/ipv4/ip_forward") != "1" { try Self.sysctl("net/ipv4/ip_forward", "1") }
            rc = weft_nl_route_replace(fd, Int32(l.index), address.value.bigEndian, 32, 0)
            if rc < 0 { throw Self.fail("adding route \(address)/32 dev \(name)", rc) }
        }
    }

    public func deleteHostLink(_ name: String) throws(NetworkError) -> Bool {
        try withSocket(nil) { fd throws(NetworkError) in
            guard let l = try link(fd, name) else { return false }
            let rc = weft_nl_link_del(fd, Int32(l.index))
            if rc == -ENODEV { return false }
            if rc < 0 { throw Self.fail("deleting link \(name)", rc) }
            return true
        }
    }

    public func containerAddresses(netns: String, ifname: String) throws(NetworkError) -> [IPv4CIDR] {
        try withSocket(netns) { fd throws(NetworkError) in
            let l = try requireLink(fd, ifname)
            var buf = [weft_addr](repeating: weft_addr(), count: 64)
            let n = weft_nl_addr_list(fd, Int32(l.index), &buf, Int32(buf.count))
            if n < 0 { throw Self.fail("listing addresses of \(ifname) in \(netns)", n) }
            return buf.prefix(Int(n)).map { IPv4CIDR(IPv4(UInt32(bigEndian: $0.addr)), Int($0.prefix)) }
        }
    }

    private func routes(_ fd: Int32, _ where_: String) throws(NetworkError) -> [RouteInfo] {
        var buf = [weft_route](repeating: weft_route(), count: 1024)
        let n = weft_nl_route_list(fd, &buf, Int32(buf.count))
        if n < 0 { throw Self.fail("listing routes \(where_)", n) }
        return buf.prefix(Int(n)).map {
            RouteInfo(destination: IPv4CIDR(IPv4(UInt32(bigEndian: $0.dst)), Int($0.prefix)),
                      gateway: $0.gw == 0 ? nil : IPv4(UInt32(bigEndian: $0.gw)), linkIndex: Int($0.oif))
        }
    }

    public func containerRoutes(netns: String) throws(NetworkError) -> [RouteInfo] {
        try withSocket(netns) { fd throws(NetworkError) in try routes(fd, "in \(netns)") }
    }

    public func hostRoutes() throws(NetworkError) -> [RouteInfo] {
        try withSocket(nil) { fd throws(NetworkError) in try routes(fd, "on the host") }
    }

    // MARK: - sysctl

    static func readSysctl(_ key: String) -> String? {
        let fd = open("/proc/sys/" + key, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buf = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buf, buf.count)
        guard n > 0 else { return nil }
        return String(decoding: buf.prefix(n), as: UTF8.self).filter { !$0.isWhitespace }
    }

    static func sysctl(_ key: String, _ value: String) throws(NetworkError) {
        let path = "/proc/sys/" + key
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw fail("opening \(path)", -errno) }
        defer { close(fd) }
        let bytes = Array(value.utf8)
        let n = write(fd, bytes, bytes.count)
        if n != bytes.count { throw fail("writing \(value) to \(path)", n < 0 ? -errno : -EIO) }
    }
}
