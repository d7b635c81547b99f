/// The kernel VXLAN data plane as pure values (docs/vxlan.md): what the kernel's forwarding
/// state must be, computed from the node's effects, and the operations that turn the kernel's
/// actual state (a dump) into it. No I/O here; `WeftKernelNet` speaks rtnetlink.
///
/// ```
///   .tunnelPeer(upsert/remove) ─┐                      desired Forwarding ─┐
///   .routes([Route])            ├─► VXLAN.Desired ───►                     ├─► diff ─► [Operation]
///   .overlayAddress             ┘                      actual (kernel dump)┘
/// ```
///
/// Forwarding on the VXLAN device, per other member M:
/// - FDB: `mac(M) dst <M's underlay IPv4>` (only while M is alive or suspect);
/// - neighbour: `gateway(M) lladdr mac(M)` (permanent), where `gateway(M)` is the first address
///   of the lowest ring range M owns;
/// - routes: every ring range M owns, split into CIDR blocks, `via gateway(M) onlink`.
/// Every node sets its device's MAC to `mac(self)`, derived from its node id, so no MAC has to
/// travel in gossip.
public enum VXLAN {
    /// VXLAN Network Identifier by default. Any 24-bit value works; 42 echoes 10.42.0.0/16 and
    /// differs from flannel's default (1), so a flannel VXLAN on the same underlay does not mix.
    public static let defaultVNI: UInt32 = 42
    /// The IANA VXLAN port (RFC 7348). Linux's own default (8472) predates the assignment.
    public static let defaultPort: UInt16 = 4789
    /// Outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14).
    public static let overheadIPv4 = 50
    /// The `rtm_protocol` of routes this node installs (unassigned in rt_protos), so a dump can
    /// tell them from anyone else's.
    public static let routeProtocol: UInt8 = 241
    public static let maxVNI: UInt32 = (1 << 24) - 1

    /// An Ethernet address.
    public struct MAC: Hashable, Comparable, Sendable, CustomStringConvertible {
        public let bytes: [UInt8]
        public init?(_ bytes: [UInt8]) {
            guard bytes.count == 6 else { return nil }
            self.bytes = bytes
        }
        public var description: String {
            bytes.map { b in
                let s = String(b, radix: 16)
                return s.count == 1 ? "0" + s : s
            }.joined(separator: ":")
        }
        public static func < (a: MAC, b: MAC) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }
    }

    /// The MAC a node gives its VXLAN device: locally administered unicast (0x02), then the first
    /// 5 bytes of its node id (ids are BLAKE2b outputs: a collision in 40 bits is negligible).
    public static func mac(for id: NodeID) -> MAC {
        var b: [UInt8] = [0x02]
        for i in 0..<5 { b.append(UInt8(truncatingIfNeeded: id.high >> (56 - 8 * UInt64(i)))) }
        return MAC(b)!
    }

    public struct FDBEntry: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var mac: MAC
        /// The remote VTEP (underlay IPv4).
        public var vtep: UInt32
        public init(mac: MAC, vtep: UInt32) { self.mac = mac; self.vtep = vtep }
        public var description: String { "\(mac) dst \(IPAM.format(vtep))" }
        public static func < (a: Self, b: Self) -> Bool { (a.mac, a.vtep) < (b.mac, b.vtep) }
    }

    public struct Neighbour: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var address: UInt32
        public var mac: MAC
        public init(address: UInt32, mac: MAC) { self.address = address; self.mac = mac }
        public var description: String { "\(IPAM.format(address)) lladdr \(mac)" }
        public static func < (a: Self, b: Self) -> Bool { (a.address, a.mac) < (b.address, b.mac) }
    }

    public struct Route: Hashable, Comparable, Sendable, CustomStringConvertible {
        public var destination: UInt32
        public var prefixLength: UInt8
        public var gateway: UInt32
        public init(destination: UInt32, prefixLength: UInt8, gateway: UInt32) {
            self.destination = destination; self.prefixLength = prefixLength; self.gateway = gateway
        }
        public var description: String { "\(IPAM.format(destination))/\(prefixLength) via \(IPAM.format(gateway)) onlink" }
        public static func < (a: Self, b: Self) -> Bool {
            (a.destination, a.prefixLength, a.gateway) < (b.destination, b.prefixLength, b.gateway)
        }
    }

    /// The forwarding entries on the VXLAN device (desired, or dumped from the kernel).
    public struct Forwarding: Equatable, Sendable {
        public var fdb: Set<FDBEntry>
        public var neighbours: Set<Neighbour>
        public var routes: Set<Route>
        public init(fdb: Set<FDBEntry> = [], neighbours: Set<Neighbour> = [], routes: Set<Route> = []) {
            self.fdb = fdb; self.neighbours = neighbours; self.routes = routes
        }
        public static let empty = Forwarding()
        public var count: Int { fdb.count + neighbours.count + routes.count }
    }

    /// One change to the kernel's state.
    public enum Operation: Equatable, Sendable, CustomStringConvertible {
        case addFDB(FDBEntry), removeFDB(FDBEntry)
        case addNeighbour(Neighbour), removeNeighbour(Neighbour)
        case addRoute(Route), removeRoute(Route)
        public var description: String {
            switch self {
            case .addFDB(let e): "fdb add \(e)"
            case .removeFDB(let e): "fdb del \(e)"
            case .addNeighbour(let n): "neigh add \(n)"
            case .removeNeighbour(let n): "neigh del \(n)"
            case .addRoute(let r): "route add \(r)"
            case .removeRoute(let r): "route del \(r)"
            }
        }
    }

    /// What turns `actual` into `desired`: removals first (routes, neighbours, FDB — nothing
    /// points at an entry after it is gone), then additions (FDB, neighbours, routes — every
    /// route finds its neighbour and FDB entry in place). Each group sorted, so the result is
    /// deterministic. Equal states give no operations.
    public static func diff(desired: Forwarding, actual: Forwarding) -> [Operation] {
        var ops: [Operation] = []
        ops += actual.routes.subtracting(desired.routes).sorted().map { .removeRoute($0) }
        ops += actual.neighbours.subtracting(desired.neighbours).sorted().map { .removeNeighbour($0) }
        ops += actual.fdb.subtracting(desired.fdb).sorted().map { .removeFDB($0) }
        ops += desired.fdb.subtracting(actual.fdb).sorted().map { .addFDB($0) }
        ops += desired.neighbours.subtracting(actual.neighbours).sorted().map { .addNeighbour($0) }
        ops += desired.routes.subtracting(actual.routes).sorted().map { .addRoute($0) }
        return ops
    }

    /// The inclusive range `start...end` as the fewest CIDR blocks, in address order.
    public static func cidrs(start: UInt32, end: UInt32) -> [(address: UInt32, prefixLength: UInt8)] {
        guard start <= end else { return [] }
        var out: [(UInt32, UInt8)] = []
        var a = UInt64(start)
        let last = UInt64(end)
        while a <= last {
            // The largest block aligned at `a` that stays within the range.
            var size: UInt64 = a == 0 ? 1 << 32 : a & (~a &+ 1)
            while a + size - 1 > last { size >>= 1 }
            out.append((UInt32(truncatingIfNeeded: a), UInt8(32 - size.trailingZeroBitCount)))
            a += size
        }
        return out
    }

    /// The desired kernel state, kept from the node's effects. The interpreter feeds it every
    /// effect (`apply`) and reconciles the kernel when it changed.
    public struct Desired: Equatable, Sendable {
        /// Live members' underlay IPv4 addresses (the VTEPs), from `.tunnelPeer`.
        public private(set) var vteps: [NodeID: UInt32] = [:]
        /// Members whose underlay address is not IPv4 (VXLAN here is IPv4 only): not programmed.
        public private(set) var unsupported: Set<NodeID> = []
        /// The route table as the node last announced it.
        public private(set) var routes: [Node.Route] = []
        /// This node's overlay address and prefix, from `.overlayAddress`.
        public private(set) var overlay: (address: UInt32, prefixLength: Int)? {
            get { overlayAddress.map { ($0, overlayPrefix) } }
            set { overlayAddress = newValue?.address; overlayPrefix = newValue?.prefixLength ?? 0 }
        }
        var overlayAddress: UInt32?
        var overlayPrefix = 0

        public init() {}

        /// Takes in one effect. True when the desired state changed.
        @discardableResult
        public mutating func apply(_ effect: Node.Effect) -> Bool {
            let before = self
            switch effect {
            case .tunnelPeer(.upsert(let id, _, let endpoint, _)):
                if case .v4(let a) = endpoint.address {
                    vteps[id] = a
                    unsupported.remove(id)
                } else {
                    vteps[id] = nil
                    unsupported.insert(id)
                }
            case .tunnelPeer(.remove(let id)):
                vteps[id] = nil
                unsupported.remove(id)
            case .routes(let r):
                routes = r
            case .overlayAddress(let a, let p):
                overlay = (a, p)
            default:
                break
            }
            return self != before
        }

        /// The forwarding entries these members and routes need.
        public var forwarding: Forwarding {
            var f = Forwarding()
            for (id, vtep) in vteps { f.fdb.insert(FDBEntry(mac: mac(for: id), vtep: vtep)) }
            var gateway: [NodeID: UInt32] = [:]
            for r in routes where gateway[r.peer].map({ r.start < $0 }) ?? true { gateway[r.peer] = r.start }
            for (peer, g) in gateway { f.neighbours.insert(Neighbour(address: g, mac: mac(for: peer))) }
            for r in routes {
                guard let g = gateway[r.peer] else { continue }
                for (a, len) in cidrs(start: r.start, end: r.end) {
                    f.routes.insert(Route(destination: a, prefixLength: len, gateway: g))
                }
            }
            return f
        }

        public static func == (a: Desired, b: Desired) -> Bool {
            a.vteps == b.vteps && a.unsupported == b.unsupported && a.routes == b.routes
                && a.overlayAddress == b.overlayAddress && a.overlayPrefix == b.overlayPrefix
        }
    }

    /// Nil when valid, else what is wrong (flag names as `weft start` spells them).
    public static func validate(vni: UInt32, port: UInt16, gossipPort: UInt16) -> String? {
        if vni == 0 || vni > maxVNI { return "--vxlan-vni must be between 1 and \(maxVNI) (got \(vni))" }
        if port == 0 { return "--vxlan-port must be between 1 and 65535" }
        if port == gossipPort {
            return "--vxlan-port \(port) is the gossip port of --listen: choose another (default \(defaultPort))"
        }
        return nil
    }
}
