extension IPAM {
    /// Every IPAM message on the wire. Big-endian; the layout is an append-only contract.
    ///
    /// ```
    ///  0        1        2
    ///  +--------+--------+----------------------------------------------+
    ///  | ver=1  |  type  | body (by type)                               |
    ///  +--------+--------+----------------------------------------------+
    ///
    ///  cluster  = creator NodeID (16) | nonce u64 (8)                       24 bytes
    ///  subnet   = base u32 (4) | prefix length u8 (5) -- /8.../30          5 bytes
    ///  entries  = count u32 | count x entry
    ///  entry    = token u32 | owner NodeID (16) | version u64 | free u32   32 bytes
    ///
    ///  type 1 ringFull        cluster subnet entries   (whole ring; push-pull, joiners)
    ///  type 2 ringDelta       cluster subnet entries   (changed entries; gossip piggyback)
    ///  type 3 ringRequest     (empty)                  (a node without a ring asks for one)
    ///  type 4 donationRequest cluster wanted u32       (ask a peer to give up free space)
    ///  type 5 donationGrant   cluster subnet entries   (the ring entries that moved the space)
    ///  type 6 donationDeny    cluster                  (the peer has no free run to give)
    /// ```
    /// Type numbers never change; new messages take new numbers. Decoders reject a wrong
    /// version, unknown types, short input, trailing bytes and invalid fields with `WireError`.
    public enum Message: Equatable, Sendable {
        case ringFull(Ring)
        case ringDelta(cluster: ClusterID, subnet: Subnet, entries: [Entry])
        case ringRequest
        case donationRequest(cluster: ClusterID, wanted: UInt32)
        case donationGrant(cluster: ClusterID, subnet: Subnet, entries: [Entry])
        case donationDeny(cluster: ClusterID)

        public static let version: UInt8 = 1

        /// Explicit, never-reused type numbers.
        public enum Kind: UInt8, Sendable {
            case ringFull = 1, ringDelta = 2, ringRequest = 3, donationRequest = 4, donationGrant = 5, donationDeny = 6
        }

        public static let entryBytes = 32

        public var kind: Kind {
            switch self {
            case .ringFull: return .ringFull
            case .ringDelta: return .ringDelta
            case .ringRequest: return .ringRequest
            case .donationRequest: return .donationRequest
            case .donationGrant: return .donationGrant
            case .donationDeny: return .donationDeny
            }
        }

        public func encoded() -> [UInt8] {
            var w = ByteWriter(capacity: 64)
            w.u8(Message.version)
            w.u8(kind.rawValue)
            switch self {
            case .ringFull(let ring):
                Message.write(ring.cluster, &w); Message.write(ring.subnet, &w); Message.write(ring.entries, &w)
            case .ringDelta(let c, let s, let e), .donationGrant(let c, let s, let e):
                Message.write(c, &w); Message.write(s, &w); Message.write(e, &w)
            case .ringRequest:
                break
            case .donationRequest(let c, let wanted):
                Message.write(c, &w); w.u32(wanted)
            case .donationDeny(let c):
                Message.write(c, &w)
            }
            return w.bytes
        }

        public init(decoding bytes: [UInt8]) throws(WireError) {
            var r = ByteReader(bytes)
            let v = try r.u8("version")
            guard v == Message.version else { throw .unsupportedVersion(v) }
            let t = try r.u8("type")
            guard let kind = Kind(rawValue: t) else { throw .unknownType(t) }
            switch kind {
            case .ringFull:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r), e = try Message.readEntries(&r)
                do { self = .ringFull(try Ring(cluster: c, subnet: s, entries: e)) } catch { throw .invalid("ring: \(error)") }
            case .ringDelta, .donationGrant:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r), e = try Message.readEntries(&r)
                do { try Ring.validate(e, subnet: s, full: false) } catch { throw .invalid("entries: \(error)") }
                self = kind == .ringDelta ? .ringDelta(cluster: c, subnet: s, entries: e) : .donationGrant(cluster: c, subnet: s, entries: e)
            case .ringRequest:
                self = .ringRequest
            case .donationRequest:
                let c = try Message.readCluster(&r)
                let wanted = try r.u32("wanted")
                guard wanted > 0 else { throw .invalid("wanted 0") }
                self = .donationRequest(cluster: c, wanted: wanted)
            case .donationDeny:
                self = .donationDeny(cluster: try Message.readCluster(&r))
            }
            try r.expectEnd()
        }

        static func write(_ c: ClusterID, _ w: inout ByteWriter) { w.nodeID(c.creator); w.u64(c.nonce) }
        static func write(_ s: Subnet, _ w: inout ByteWriter) { w.u32(s.base); w.u8(s.prefixLength) }
        static func write(_ entries: [Entry], _ w: inout ByteWriter) {
            w.u32(UInt32(entries.count))
            for e in entries { w.u32(e.token); w.nodeID(e.owner); w.u64(e.version); w.u32(e.free) }
        }

        static func readCluster(_ r: inout ByteReader) throws(WireError) -> ClusterID {
            ClusterID(creator: try r.nodeID("cluster creator"), nonce: try r.u64("cluster nonce"))
        }
        static func readSubnet(_ r: inout ByteReader) throws(WireError) -> Subnet {
            let base = try r.u32("subnet base"), prefix = try r.u8("subnet prefix")
            do { return try Subnet(base: base, prefixLength: prefix) } catch { throw .invalid("subnet: \(error)") }
        }
        static func readEntries(_ r: inout ByteReader) throws(WireError) -> [Entry] {
            let count = Int(try r.u32("entry count"))
            guard count <= Ring.maxEntries else { throw .oversized("entry count \(count)") }
            guard count * entryBytes <= r.remaining else { throw .truncated("entries") }
            var out: [Entry] = []
            out.reserveCapacity(count)
            for _ in 0..<count {
                out.append(Entry(token: try r.u32("token"), owner: try r.nodeID("owner"),
                                 version: try r.u64("version"), free: try r.u32("free")))
            }
            return out
        }
    }
}
