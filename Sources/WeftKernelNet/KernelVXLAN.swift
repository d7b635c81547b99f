#if canImport(Glibc)
import Glibc
#endif
import WeftCore

/// The kernel VXLAN device of one node and its forwarding state, programmed over rtnetlink
/// (docs/vxlan.md). The device is created at start (a leftover of a killed node with the same
/// name is deleted first), its forwarding entries are reconciled declaratively against a
/// kernel dump, and deleting the device at stop takes every FDB entry, neighbour and route on
/// it along. Call from one thread at a time (the node runtime actor).
public final class KernelVXLAN: @unchecked Sendable {
    public struct Config: Equatable, Sendable {
        public var name: String
        public var vni: UInt32
        public var port: UInt16
        /// This node's underlay IPv4 (the local VTEP).
        public var local: UInt32
        public var mtu: Int
        public var mac: VXLAN.MAC
        public init(name: String, vni: UInt32, port: UInt16, local: UInt32, mtu: Int, mac: VXLAN.MAC) {
            self.name = name; self.vni = vni; self.port = port; self.local = local; self.mtu = mtu; self.mac = mac
        }
    }

    public let config: Config
    let socket: RTNetlinkSocket
    public private(set) var index: Int32 = 0
    public private(set) var address: (address: UInt32, prefixLength: Int)?

    public init(config: Config) throws(KernelNetError) {
        self.config = config
        self.socket = try RTNetlinkSocket()
    }

    /// The interface index of `name`, or nil when there is none.
    public func linkIndex(_ name: String) throws(KernelNetError) -> Netlink.Link? {
        let answer: [Netlink.Message]
        do throws(KernelNetError) {
            answer = try socket.call(Netlink.getLink(name: name), what: "look up link \(name)")
        } catch {
            if error.errno == ENODEV { return nil }
            throw error
        }
        guard let m = answer.first else { return nil }
        do { return try Netlink.link(m) } catch { throw KernelNetError("look up link \(name) (\(error))", errno: 0) }
    }

    /// Creates the device (replacing a leftover of the same name), brings it up, and turns on
    /// IPv4 forwarding in this network namespace (containers behind this node are routed).
    public func create() throws(KernelNetError) {
        if let old = try linkIndex(config.name) {
            try socket.call(Netlink.deleteLink(index: old.index), what: "delete the leftover device \(config.name)")
        }
        let c = config
        try socket.call(Netlink.createVXLAN(name: c.name, vni: c.vni, port: c.port, local: c.local, mtu: c.mtu, mac: c.mac),
                        what: "create VXLAN device \(c.name) (vni \(c.vni), port \(c.port))")
        guard let link = try linkIndex(c.name) else { throw KernelNetError("VXLAN device \(c.name) vanished after creation", errno: ENODEV) }
        index = link.index
        try socket.call(Netlink.setUp(index: index), what: "bring \(c.name) up")
        let fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC)
        if fd >= 0 {
            _ = write(fd, "1", 1)
            close(fd)
        }
    }

    /// Gives the device this node's overlay address (the previous one is removed).
    public func setAddress(_ a: UInt32, prefixLength: Int) throws(KernelNetError) {
        if let old = address, old.address == a, old.prefixLength == prefixLength { return }
        if let old = address {
            _ = try? socket.call(Netlink.address(false, index: index, address: old.address, prefixLength: old.prefixLength), what: "remove the old address")
        }
        try socket.call(Netlink.address(true, index: index, address: a, prefixLength: prefixLength),
                        what: "add \(IPAM.format(a))/\(prefixLength) to \(config.name)")
        address = (a, prefixLength)
    }

    /// The forwarding entries this node put on the device (routes with its protocol, permanent
    /// neighbours and FDB entries with a destination).
    public func dump() throws(KernelNetError) -> VXLAN.Forwarding {
        var f = VXLAN.Forwarding()
        do {
            for m in try socket.call(Netlink.dumpRoutes(), what: "dump routes") {
                if let r = try Netlink.ownRoute(m, index: index) { f.routes.insert(r) }
            }
            for m in try socket.call(Netlink.dumpNeighbours(family: Netlink.AF_INET), what: "dump neighbours") {
                if let n = try Netlink.ownNeighbour(m, index: index), n.family == Netlink.AF_INET {
                    f.neighbours.insert(VXLAN.Neighbour(address: n.address, mac: n.mac))
                }
            }
            for m in try socket.call(Netlink.dumpNeighbours(family: Netlink.AF_BRIDGE), what: "dump the FDB") {
                if let n = try Netlink.ownNeighbour(m, index: index), n.family == Netlink.AF_BRIDGE {
                    f.fdb.insert(VXLAN.FDBEntry(mac: n.mac, vtep: n.address))
                }
            }
        } catch let e as KernelNetError {
            throw e
        } catch {
            throw KernelNetError("decode a dump (\(error))", errno: 0)
        }
        return f
    }

    /// One operation against the kernel.
    public func apply(_ op: VXLAN.Operation) throws(KernelNetError) {
        let request: Netlink.Request
        switch op {
        case .addFDB(let e): request = Netlink.fdb(true, index: index, entry: e)
        case .removeFDB(let e): request = Netlink.fdb(false, index: index, entry: e)
        case .addNeighbour(let n): request = Netlink.neighbour(true, index: index, entry: n)
        case .removeNeighbour(let n): request = Netlink.neighbour(false, index: index, entry: n)
        case .addRoute(let r): request = Netlink.route(true, index: index, route: r)
        case .removeRoute(let r): request = Netlink.route(false, index: index, route: r)
        }
        try socket.call(request, what: op.description)
    }

    /// Dumps the kernel's state, applies the difference to `desired`. Returns what was applied
    /// and what failed (a failed operation is retried by the next reconciliation).
    public func reconcile(_ desired: VXLAN.Forwarding) throws(KernelNetError) -> (applied: [VXLAN.Operation], failed: [KernelNetError]) {
        let ops = VXLAN.diff(desired: desired, actual: try dump())
        var applied: [VXLAN.Operation] = [], failed: [KernelNetError] = []
        for op in ops {
            do throws(KernelNetError) { try apply(op); applied.append(op) } catch { failed.append(error) }
        }
        return (applied, failed)
    }

    /// The device's counters from the kernel (nil when it cannot be read).
    public func counters() -> Netlink.LinkCounters? {
        (try? linkIndex(config.name))??.counters
    }

    /// Deletes the device: its address, FDB entries, neighbours and routes go with it.
    public func destroy() throws(KernelNetError) {
        guard let link = try linkIndex(config.name) else { return }
        try socket.call(Netlink.deleteLink(index: link.index), what: "delete \(config.name)")
        index = 0
        address = nil
    }
}
