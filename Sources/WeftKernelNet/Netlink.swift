import WeftCore

/// rtnetlink messages as bytes (`netlink(7)`, `rtnetlink(7)`): building requests and decoding
/// answers and dumps. Pure: no socket here (`RTNetlinkSocket` sends them). Decoding is bounded:
/// every length is checked against what is left, so a malformed buffer is an error, never a trap.
/// Integers are in host byte order except addresses and the VXLAN port (network order), as the
/// kernel expects.
public enum Netlink {
    // Message types and flags (linux/netlink.h, linux/rtnetlink.h).
    public static let NLMSG_ERROR: UInt16 = 2
    public static let NLMSG_DONE: UInt16 = 3
    public static let RTM_NEWLINK: UInt16 = 16, RTM_DELLINK: UInt16 = 17, RTM_GETLINK: UInt16 = 18
    public static let RTM_NEWADDR: UInt16 = 20, RTM_DELADDR: UInt16 = 21, RTM_GETADDR: UInt16 = 22
    public static let RTM_NEWROUTE: UInt16 = 24, RTM_DELROUTE: UInt16 = 25, RTM_GETROUTE: UInt16 = 26
    public static let RTM_NEWNEIGH: UInt16 = 28, RTM_DELNEIGH: UInt16 = 29, RTM_GETNEIGH: UInt16 = 30
    public static let NLM_F_REQUEST: UInt16 = 0x1, NLM_F_MULTI: UInt16 = 0x2, NLM_F_ACK: UInt16 = 0x4
    public static let NLM_F_DUMP: UInt16 = 0x300
    public static let NLM_F_REPLACE: UInt16 = 0x100, NLM_F_EXCL: UInt16 = 0x200, NLM_F_CREATE: UInt16 = 0x400

    public static let AF_INET: UInt8 = 2, AF_BRIDGE: UInt8 = 7
    // Link attributes (linux/if_link.h).
    public static let IFLA_ADDRESS: UInt16 = 1, IFLA_IFNAME: UInt16 = 3, IFLA_MTU: UInt16 = 4
    public static let IFLA_LINKINFO: UInt16 = 18, IFLA_STATS64: UInt16 = 23
    public static let IFLA_INFO_KIND: UInt16 = 1, IFLA_INFO_DATA: UInt16 = 2
    public static let IFLA_VXLAN_ID: UInt16 = 1, IFLA_VXLAN_LOCAL: UInt16 = 4, IFLA_VXLAN_LEARNING: UInt16 = 7
    public static let IFLA_VXLAN_PORT: UInt16 = 15
    public static let IFF_UP: UInt32 = 0x1
    // Addresses, routes, neighbours.
    public static let IFA_ADDRESS: UInt16 = 1, IFA_LOCAL: UInt16 = 2
    public static let RTA_DST: UInt16 = 1, RTA_OIF: UInt16 = 4, RTA_GATEWAY: UInt16 = 5, RTA_TABLE: UInt16 = 15
    public static let RT_TABLE_MAIN: UInt8 = 254, RTN_UNICAST: UInt8 = 1, RT_SCOPE_UNIVERSE: UInt8 = 0
    public static let RTNH_F_ONLINK: UInt32 = 0x4
    public static let NDA_DST: UInt16 = 1, NDA_LLADDR: UInt16 = 2
    public static let NUD_PERMANENT: UInt16 = 0x80, NTF_SELF: UInt8 = 0x02

    public static let headerLength = 16

    /// A request before its sequence number is known.
    public struct Request: Equatable, Sendable {
        public var type: UInt16
        public var flags: UInt16
        /// The fixed family header (ifinfomsg, ifaddrmsg, rtmsg, ndmsg) and the attributes.
        public var body: [UInt8]
        public init(type: UInt16, flags: UInt16, body: [UInt8]) { self.type = type; self.flags = flags; self.body = body }

        /// The full message with its netlink header.
        public func bytes(sequence: UInt32) -> [UInt8] {
            var w = Writer()
            w.u32(UInt32(headerLength + body.count))
            w.u16(type)
            w.u16(flags)
            w.u32(sequence)
            w.u32(0)
            w.raw(body)
            return w.bytes
        }
    }

    /// A little writer for the fixed headers and attributes.
    public struct Writer: Sendable {
        public private(set) var bytes: [UInt8] = []
        public init() {}
        public mutating func u8(_ v: UInt8) { bytes.append(v) }
        public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v) { bytes += $0 } }
        public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v) { bytes += $0 } }
        public mutating func i32(_ v: Int32) { u32(UInt32(bitPattern: v)) }
        public mutating func raw(_ b: [UInt8]) { bytes += b }
        public mutating func pad() { while bytes.count % 4 != 0 { bytes.append(0) } }
        /// One attribute: length (header + payload, unpadded), type, payload, padding to 4.
        public mutating func attribute(_ type: UInt16, _ payload: [UInt8]) {
            u16(UInt16(4 + payload.count))
            u16(type)
            raw(payload)
            pad()
        }
        public mutating func attribute(_ type: UInt16, u32 v: UInt32) { attribute(type, withUnsafeBytes(of: v) { Array($0) }) }
        public mutating func attribute(_ type: UInt16, string s: String) { attribute(type, Array(s.utf8) + [0]) }
        public mutating func attribute(_ type: UInt16, ipv4 a: UInt32) { attribute(type, ipv4Bytes(a)) }
        /// A nested attribute holding what `body` writes.
        public mutating func nested(_ type: UInt16, _ body: (inout Writer) -> Void) {
            var inner = Writer()
            body(&inner)
            attribute(type, inner.bytes)
        }
    }

    static func ipv4Bytes(_ a: UInt32) -> [UInt8] { [UInt8(a >> 24), UInt8((a >> 16) & 0xFF), UInt8((a >> 8) & 0xFF), UInt8(a & 0xFF)] }
    static func ipv4(_ b: [UInt8]) -> UInt32? {
        guard b.count == 4 else { return nil }
        return UInt32(b[0]) << 24 | UInt32(b[1]) << 16 | UInt32(b[2]) << 8 | UInt32(b[3])
    }

    // MARK: - Requests

    static func ifinfomsg(_ w: inout Writer, index: Int32 = 0, flags: UInt32 = 0, change: UInt32 = 0) {
        w.u8(0); w.u8(0); w.u16(0); w.i32(index); w.u32(flags); w.u32(change)
    }

    /// `ip link add NAME mtu MTU address MAC type vxlan id VNI local LOCAL dstport PORT nolearning`.
    public static func createVXLAN(name: String, vni: UInt32, port: UInt16, local: UInt32, mtu: Int, mac: VXLAN.MAC) -> Request {
        var w = Writer()
        ifinfomsg(&w)
        w.attribute(IFLA_IFNAME, string: name)
        w.attribute(IFLA_MTU, u32: UInt32(truncatingIfNeeded: mtu))
        w.attribute(IFLA_ADDRESS, mac.bytes)
        w.nested(IFLA_LINKINFO) { li in
            li.attribute(IFLA_INFO_KIND, Array("vxlan".utf8))
            li.nested(IFLA_INFO_DATA) { d in
                d.attribute(IFLA_VXLAN_ID, u32: vni)
                d.attribute(IFLA_VXLAN_LOCAL, ipv4: local)
                d.attribute(IFLA_VXLAN_PORT, [UInt8(port >> 8), UInt8(port & 0xFF)])
                d.attribute(IFLA_VXLAN_LEARNING, [0])
            }
        }
        return Request(type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body: w.bytes)
    }

    /// `ip link set dev INDEX up`.
    public static func setUp(index: Int32) -> Request {
        var w = Writer()
        ifinfomsg(&w, index: index, flags: IFF_UP, change: IFF_UP)
        return Request(type: RTM_NEWLINK, flags: NLM_F_REQUEST | NLM_F_ACK, body: w.bytes)
    }

    /// `ip link del INDEX`.
    public static func deleteLink(index: Int32) -> Request {
        var w = Writer()
        ifinfomsg(&w, index: index)
        return Request(type: RTM_DELLINK, flags: NLM_F_REQUEST | NLM_F_ACK, body: w.bytes)
    }

    /// `ip link show NAME` (answers one RTM_NEWLINK, or an error ENODEV).
    public static func getLink(name: String) -> Request {
        var w = Writer()
        ifinfomsg(&w)
        w.attribute(IFLA_IFNAME, string: name)
        return Request(type: RTM_GETLINK, flags: NLM_F_REQUEST, body: w.bytes)
    }

    /// `ip addr add|del ADDRESS/PREFIX dev INDEX`.
    public static func address(_ add: Bool, index: Int32, address: UInt32, prefixLength: Int) -> Request {
        var w = Writer()
        w.u8(AF_INET); w.u8(UInt8(truncatingIfNeeded: prefixLength)); w.u8(0); w.u8(RT_SCOPE_UNIVERSE); w.u32(UInt32(bitPattern: index))
        w.attribute(IFA_LOCAL, ipv4: address)
        w.attribute(IFA_ADDRESS, ipv4: address)
        return Request(type: add ? RTM_NEWADDR : RTM_DELADDR,
                       flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0), body: w.bytes)
    }

    static func ndmsg(_ w: inout Writer, family: UInt8, index: Int32, state: UInt16, flags: UInt8) {
        w.u8(family); w.u8(0); w.u16(0); w.i32(index); w.u16(state); w.u8(flags); w.u8(0)
    }

    /// `bridge fdb replace|del MAC dev INDEX dst VTEP self permanent`.
    public static func fdb(_ add: Bool, index: Int32, entry: VXLAN.FDBEntry) -> Request {
        var w = Writer()
        ndmsg(&w, family: AF_BRIDGE, index: index, state: NUD_PERMANENT, flags: NTF_SELF)
        w.attribute(NDA_LLADDR, entry.mac.bytes)
        w.attribute(NDA_DST, ipv4: entry.vtep)
        return Request(type: add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                       flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0), body: w.bytes)
    }

    /// `ip neigh replace|del ADDRESS lladdr MAC dev INDEX nud permanent`.
    public static func neighbour(_ add: Bool, index: Int32, entry: VXLAN.Neighbour) -> Request {
        var w = Writer()
        ndmsg(&w, family: AF_INET, index: index, state: NUD_PERMANENT, flags: 0)
        w.attribute(NDA_DST, ipv4: entry.address)
        w.attribute(NDA_LLADDR, entry.mac.bytes)
        return Request(type: add ? RTM_NEWNEIGH : RTM_DELNEIGH,
                       flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0), body: w.bytes)
    }

    /// `ip route replace|del DEST/LEN via GATEWAY dev INDEX onlink proto 241`.
    public static func route(_ add: Bool, index: Int32, route r: VXLAN.Route) -> Request {
        var w = Writer()
        w.u8(AF_INET); w.u8(r.prefixLength); w.u8(0); w.u8(0)
        w.u8(RT_TABLE_MAIN); w.u8(VXLAN.routeProtocol); w.u8(RT_SCOPE_UNIVERSE); w.u8(RTN_UNICAST)
        w.u32(RTNH_F_ONLINK)
        w.attribute(RTA_DST, ipv4: r.destination)
        w.attribute(RTA_GATEWAY, ipv4: r.gateway)
        w.attribute(RTA_OIF, u32: UInt32(bitPattern: index))
        return Request(type: add ? RTM_NEWROUTE : RTM_DELROUTE,
                       flags: NLM_F_REQUEST | NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_REPLACE : 0), body: w.bytes)
    }

    /// Dumps: every IPv4 route, every neighbour of `family` (AF_INET neighbours, AF_BRIDGE FDB).
    public static func dumpRoutes() -> Request {
        var w = Writer()
        w.u8(AF_INET); for _ in 0..<7 { w.u8(0) }; w.u32(0)
        return Request(type: RTM_GETROUTE, flags: NLM_F_REQUEST | NLM_F_DUMP, body: w.bytes)
    }

    public static func dumpNeighbours(family: UInt8) -> Request {
        var w = Writer()
        ndmsg(&w, family: family, index: 0, state: 0, flags: 0)
        return Request(type: RTM_GETNEIGH, flags: NLM_F_REQUEST | NLM_F_DUMP, body: w.bytes)
    }

    // MARK: - Decoding

    public enum DecodeError: Error, Equatable, CustomStringConvertible {
        case truncated(String)
        public var description: String {
            switch self { case .truncated(let what): "malformed netlink message: \(what)" }
        }
    }

    public struct Message: Equatable, Sendable {
        public var type: UInt16
        public var flags: UInt16
        public var sequence: UInt32
        /// Everything after the 16-byte header.
        public var payload: [UInt8]
    }

    static func u16(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt16 {
        var v: UInt16 = 0
        withUnsafeMutableBytes(of: &v) { for i in 0..<2 { $0[i] = b[b.startIndex + at + i] } }
        return v
    }
    static func u32(_ b: ArraySlice<UInt8>, _ at: Int) -> UInt32 {
        var v: UInt32 = 0
        withUnsafeMutableBytes(of: &v) { for i in 0..<4 { $0[i] = b[b.startIndex + at + i] } }
        return v
    }

    /// The messages in one datagram from the kernel.
    public static func messages(_ buffer: [UInt8]) throws(DecodeError) -> [Message] {
        var out: [Message] = []
        var i = 0
        while buffer.count - i >= headerLength {
            let s = buffer[i...]
            let length = Int(u32(s, 0))
            guard length >= headerLength, length <= buffer.count - i else {
                throw .truncated("message length \(length) with \(buffer.count - i) bytes left")
            }
            out.append(Message(type: u16(s, 4), flags: u16(s, 6), sequence: u32(s, 8),
                               payload: Array(buffer[(i + headerLength)..<(i + length)])))
            let aligned = (length + 3) & ~3
            i += min(aligned, buffer.count - i)
        }
        guard i == buffer.count else { throw .truncated("\(buffer.count - i) trailing bytes") }
        return out
    }

    /// The attributes after a fixed header of `skip` bytes: type (nested flag cleared) → payload.
    public static func attributes(_ payload: [UInt8], skip: Int) throws(DecodeError) -> [UInt16: [UInt8]] {
        guard payload.count >= skip else { throw .truncated("header of \(skip) bytes, got \(payload.count)") }
        var out: [UInt16: [UInt8]] = [:]
        var i = skip
        while payload.count - i >= 4 {
            let s = payload[i...]
            let length = Int(u16(s, 0))
            let type = u16(s, 2) & 0x3FFF
            guard length >= 4, length <= payload.count - i else {
                throw .truncated("attribute length \(length) with \(payload.count - i) bytes left")
            }
            if out[type] == nil { out[type] = Array(payload[(i + 4)..<(i + length)]) }
            i += min((length + 3) & ~3, payload.count - i)
        }
        return out
    }

    /// The errno of an NLMSG_ERROR (0 is an acknowledgement).
    public static func errorCode(_ m: Message) throws(DecodeError) -> Int32 {
        guard m.payload.count >= 4 else { throw .truncated("error message of \(m.payload.count) bytes") }
        return -Int32(bitPattern: u32(m.payload[...], 0))
    }

    public struct Link: Equatable, Sendable {
        public var index: Int32
        public var flags: UInt32
        public var name: String?
        public var mtu: UInt32?
        public var mac: VXLAN.MAC?
        public var counters: LinkCounters?
    }

    public struct LinkCounters: Equatable, Sendable {
        public var rxPackets: UInt64, txPackets: UInt64, rxBytes: UInt64, txBytes: UInt64
        public var rxErrors: UInt64, txErrors: UInt64, rxDropped: UInt64, txDropped: UInt64
    }

    public static func link(_ m: Message) throws(DecodeError) -> Link {
        guard m.payload.count >= 16 else { throw .truncated("ifinfomsg of \(m.payload.count) bytes") }
        let attrs = try attributes(m.payload, skip: 16)
        let p = m.payload[...]
        var l = Link(index: Int32(bitPattern: u32(p, 4)), flags: u32(p, 8))
        if let n = attrs[IFLA_IFNAME] { l.name = String(decoding: n.prefix { $0 != 0 }, as: UTF8.self) }
        if let v = attrs[IFLA_MTU], v.count == 4 { l.mtu = u32(v[...], 0) }
        if let v = attrs[IFLA_ADDRESS] { l.mac = VXLAN.MAC(v) }
        if let s = attrs[IFLA_STATS64], s.count >= 64 {
            func at(_ k: Int) -> UInt64 { UInt64(u32(s[...], 8 * k)) | UInt64(u32(s[...], 8 * k + 4)) << 32 }
            l.counters = LinkCounters(rxPackets: at(0), txPackets: at(1), rxBytes: at(2), txBytes: at(3),
                                      rxErrors: at(4), txErrors: at(5), rxDropped: at(6), txDropped: at(7))
        }
        return l
    }

    /// A route of this node on device `index` (main table, our protocol, a gateway), or nil.
    public static func ownRoute(_ m: Message, index: Int32) throws(DecodeError) -> VXLAN.Route? {
        guard m.type == RTM_NEWROUTE else { return nil }
        guard m.payload.count >= 12 else { throw .truncated("rtmsg of \(m.payload.count) bytes") }
        let attrs = try attributes(m.payload, skip: 12)
        let p = m.payload
        guard p[0] == AF_INET, p[5] == VXLAN.routeProtocol else { return nil }
        let table = attrs[RTA_TABLE].flatMap { $0.count == 4 ? u32($0[...], 0) : nil } ?? UInt32(p[4])
        guard table == UInt32(RT_TABLE_MAIN), let oif = attrs[RTA_OIF], oif.count == 4,
              Int32(bitPattern: u32(oif[...], 0)) == index,
              let gw = attrs[RTA_GATEWAY].flatMap(ipv4) else { return nil }
        let dst = attrs[RTA_DST].flatMap(ipv4) ?? 0
        return VXLAN.Route(destination: dst, prefixLength: p[1], gateway: gw)
    }

    /// A permanent neighbour (AF_INET) or FDB entry (AF_BRIDGE) on device `index`, or nil.
    public static func ownNeighbour(_ m: Message, index: Int32) throws(DecodeError) -> (family: UInt8, address: UInt32, mac: VXLAN.MAC)? {
        guard m.type == RTM_NEWNEIGH else { return nil }
        guard m.payload.count >= 12 else { throw .truncated("ndmsg of \(m.payload.count) bytes") }
        let attrs = try attributes(m.payload, skip: 12)
        let p = m.payload[...]
        guard Int32(bitPattern: u32(p, 4)) == index, u16(p, 8) & NUD_PERMANENT != 0,
              let dst = attrs[NDA_DST].flatMap(ipv4), let mac = attrs[NDA_LLADDR].flatMap(VXLAN.MAC.init) else { return nil }
        return (p[p.startIndex], dst, mac)
    }
}
