extension IPAM {
    /// Every IPAM message on the wire. Big-endian; the layout is an append-only contract.
    ///
    /// ```
    ///  0        1        2
    ///  +--------+--------+----------------------------------------------+
    ///  | ver=1  |  type  | body (by type)                               |
    ///  +--------+--------+----------------------------------------------+
    ///
    ///  cluster   = creator NodeID (16) | nonce u64 (8)                      24 bytes
    ///  subnet    = base u32 (4) | prefix length u8 (1) -- /8.../30           5 bytes
    ///  entries   = count u32 | count x entry
    ///  entry     = token u32 | owner NodeID (16) | version u64 | free u32  32 bytes
    ///  addresses = count u32 | count x address u32 (strictly increasing, inside the subnet)
    ///  register  = owner NodeID (16) | version u64 | flags u8 | addresses  29 + 4n bytes
    ///              flags bit 0 = open (the owner allocates without confirmation); others 0
    ///  registers = count u32 | count x register (owners strictly increasing)
    ///
    ///  type 1  ringFull        cluster subnet entries              (whole ring; v1 push-pull)
    ///  type 2  ringDelta       cluster subnet entries              (changed entries; gossip)
    ///  type 3  ringRequest     (empty)                             (ask for the full state)
    ///  type 4  donationRequest cluster wanted u32                  (ask for free space)
    ///  type 5  donationGrant   cluster subnet entries              (the entries that moved)
    ///  type 6  donationDeny    cluster                             (no free run to give)
    ///  type 7  holdings        cluster subnet registers            (changed registers; gossip)
    ///  type 8  fullState       cluster subnet entries registers    (ring + every register; push-pull)
    ///  type 9  holdingsWrite   cluster subnet register pending:addresses entries
    ///                                                              (confirm new addresses)
    ///  type 10 holdingsAck     cluster owner NodeID version u64    (the write was stored)
    ///  type 11 holdingsNack    cluster subnet owner NodeID version u64 refused:addresses entries
    ///                                                              (refused; the voter's ring)
    ///  type 12 takeover        cluster subnet dead NodeID entries  (phase 1 of a reclaim)
    ///  type 13 takeoverAck     cluster subnet register             (the dead node's register as stored)
    /// ```
    /// Type numbers never change; new messages take new numbers. Decoders reject a wrong
    /// version, unknown types, short input, trailing bytes and invalid fields with `WireError`;
    /// every count is checked against the bytes present before anything is allocated.
    public enum Message: Equatable, Sendable {
        case ringFull(Ring)
        case ringDelta(cluster: ClusterID, subnet: Subnet, entries: [Entry])
        case ringRequest
        case donationRequest(cluster: ClusterID, wanted: UInt32)
        case donationGrant(cluster: ClusterID, subnet: Subnet, entries: [Entry])
        case donationDeny(cluster: ClusterID)
        /// Registers that changed (gossip, coalesced per tick).
        case holdings(cluster: ClusterID, subnet: Subnet, registers: [OwnedHoldings])
        /// The whole state: ring and every register known (push-pull application state).
        case fullState(ring: Ring, registers: [OwnedHoldings])
        /// An owner asks a voter to store its register; `pending` (a subset of the register's
        /// addresses) are the unconfirmed ones the voter must check; `entries` are the owner's
        /// ring entries covering them.
        case holdingsWrite(cluster: ClusterID, subnet: Subnet, owner: NodeID, holdings: Holdings, pending: [UInt32], entries: [Entry])
        case holdingsAck(cluster: ClusterID, owner: NodeID, version: UInt64)
        /// The voter refused `refused` (a range the owner does not own in the voter's ring, or
        /// an address another node holds); `entries` are the voter's entries covering them.
        case holdingsNack(cluster: ClusterID, subnet: Subnet, owner: NodeID, version: UInt64, refused: [UInt32], entries: [Entry])
        case takeover(cluster: ClusterID, subnet: Subnet, dead: NodeID, entries: [Entry])
        case takeoverAck(cluster: ClusterID, subnet: Subnet, dead: NodeID, holdings: Holdings)

        public static let version: UInt8 = 1

        /// Explicit, never-reused type numbers.
        public enum Kind: UInt8, Sendable, CaseIterable {
            case ringFull = 1, ringDelta = 2, ringRequest = 3, donationRequest = 4, donationGrant = 5, donationDeny = 6
            case holdings = 7, fullState = 8, holdingsWrite = 9, holdingsAck = 10, holdingsNack = 11
            case takeover = 12, takeoverAck = 13

            /// Lost in transit costs only time: the sender resends it (a holdings write, a
            /// takeover) every `Settings.resendInterval` until it is answered, or it is the answer
            /// (ack, nack) to such a message, whose loss makes the sender resend. These may travel
            /// as datagrams (docs/ipam.md "Transport"); every other kind goes over TCP.
            public var isResentUntilAnswered: Bool {
                switch self {
                case .holdingsWrite, .holdingsAck, .holdingsNack, .takeover, .takeoverAck: return true
                default: return false
                }
            }

            /// The kind of an encoded message (its second byte), if it is one.
            public static func of(encoded bytes: [UInt8]) -> Kind? {
                guard bytes.count >= 2, bytes[0] == Message.version else { return nil }
                return Kind(rawValue: bytes[1])
            }
        }

        public static let entryBytes = 32
        /// At most this many registers in one message (one per member).
        public static let maxRegisters = 1 << 16

        public var kind: Kind {
            switch self {
            case .ringFull: return .ringFull
            case .ringDelta: return .ringDelta
            case .ringRequest: return .ringRequest
            case .donationRequest: return .donationRequest
            case .donationGrant: return .donationGrant
            case .donationDeny: return .donationDeny
            case .holdings: return .holdings
            case .fullState: return .fullState
            case .holdingsWrite: return .holdingsWrite
            case .holdingsAck: return .holdingsAck
            case .holdingsNack: return .holdingsNack
            case .takeover: return .takeover
            case .takeoverAck: return .takeoverAck
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
            case .holdings(let c, let s, let regs):
                Message.write(c, &w); Message.write(s, &w); Message.write(regs, &w)
            case .fullState(let ring, let regs):
                Message.write(ring.cluster, &w); Message.write(ring.subnet, &w); Message.write(ring.entries, &w); Message.write(regs, &w)
            case .holdingsWrite(let c, let s, let owner, let h, let pending, let e):
                Message.write(c, &w); Message.write(s, &w); Message.write(OwnedHoldings(owner: owner, holdings: h), &w)
                Message.write(addresses: pending, &w); Message.write(e, &w)
            case .holdingsAck(let c, let owner, let v):
                Message.write(c, &w); w.nodeID(owner); w.u64(v)
            case .holdingsNack(let c, let s, let owner, let v, let refused, let e):
                Message.write(c, &w); Message.write(s, &w); w.nodeID(owner); w.u64(v)
                Message.write(addresses: refused, &w); Message.write(e, &w)
            case .takeover(let c, let s, let dead, let e):
                Message.write(c, &w); Message.write(s, &w); w.nodeID(dead); Message.write(e, &w)
            case .takeoverAck(let c, let s, let dead, let h):
                Message.write(c, &w); Message.write(s, &w); Message.write(OwnedHoldings(owner: dead, holdings: h), &w)
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
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r), e = try Message.readEntries(&r, subnet: s)
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
            case .holdings:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r)
                self = .holdings(cluster: c, subnet: s, registers: try Message.readRegisters(&r, subnet: s))
            case .fullState:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r), e = try Message.readEntries(&r)
                let ring: Ring
                do { ring = try Ring(cluster: c, subnet: s, entries: e) } catch { throw .invalid("ring: \(error)") }
                self = .fullState(ring: ring, registers: try Message.readRegisters(&r, subnet: s))
            case .holdingsWrite:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r)
                let reg = try Message.readRegister(&r, subnet: s)
                let pending = try Message.readAddresses(&r, subnet: s, what: "pending")
                var k = 0
                for p in pending {
                    while k < reg.holdings.addresses.count && reg.holdings.addresses[k] < p { k += 1 }
                    guard k < reg.holdings.addresses.count && reg.holdings.addresses[k] == p else {
                        throw .invalid("pending address \(IPAM.format(p)) not in the register")
                    }
                }
                let e = try Message.readEntries(&r, subnet: s)
                self = .holdingsWrite(cluster: c, subnet: s, owner: reg.owner, holdings: reg.holdings, pending: pending, entries: e)
            case .holdingsAck:
                let c = try Message.readCluster(&r)
                let owner = try r.nodeID("owner"), version = try r.u64("version")
                self = .holdingsAck(cluster: c, owner: owner, version: version)
            case .holdingsNack:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r)
                let owner = try r.nodeID("owner"), version = try r.u64("version")
                let refused = try Message.readAddresses(&r, subnet: s, what: "refused")
                let e = try Message.readEntries(&r, subnet: s)
                self = .holdingsNack(cluster: c, subnet: s, owner: owner, version: version, refused: refused, entries: e)
            case .takeover:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r)
                let dead = try r.nodeID("dead")
                self = .takeover(cluster: c, subnet: s, dead: dead, entries: try Message.readEntries(&r, subnet: s))
            case .takeoverAck:
                let c = try Message.readCluster(&r), s = try Message.readSubnet(&r)
                let reg = try Message.readRegister(&r, subnet: s)
                self = .takeoverAck(cluster: c, subnet: s, dead: reg.owner, holdings: reg.holdings)
            }
            try r.expectEnd()
        }

        static func write(_ c: ClusterID, _ w: inout ByteWriter) { w.nodeID(c.creator); w.u64(c.nonce) }
        static func write(_ s: Subnet, _ w: inout ByteWriter) { w.u32(s.base); w.u8(s.prefixLength) }
        static func write(_ entries: [Entry], _ w: inout ByteWriter) {
            w.u32(UInt32(entries.count))
            for e in entries { w.u32(e.token); w.nodeID(e.owner); w.u64(e.version); w.u32(e.free) }
        }
        static func write(addresses: [UInt32], _ w: inout ByteWriter) {
            w.u32(UInt32(addresses.count))
            for a in addresses { w.u32(a) }
        }
        static func write(_ reg: OwnedHoldings, _ w: inout ByteWriter) {
            w.nodeID(reg.owner); w.u64(reg.holdings.version); w.u8(reg.holdings.open ? 1 : 0)
            write(addresses: reg.holdings.addresses, &w)
        }
        static func write(_ regs: [OwnedHoldings], _ w: inout ByteWriter) {
            w.u32(UInt32(regs.count))
            for reg in regs { write(reg, &w) }
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
        /// Entries of a delta: validated as a subset of a ring over `subnet`.
        static func readEntries(_ r: inout ByteReader, subnet: Subnet) throws(WireError) -> [Entry] {
            let e = try readEntries(&r)
            do { try Ring.validate(e, subnet: subnet, full: false) } catch { throw .invalid("entries: \(error)") }
            return e
        }
        static func readAddresses(_ r: inout ByteReader, subnet: Subnet, what: String) throws(WireError) -> [UInt32] {
            let count = Int(try r.u32("\(what) count"))
            guard UInt64(count) <= UInt64(subnet.size) else { throw .oversized("\(what) count \(count) (subnet \(subnet))") }
            guard count * 4 <= r.remaining else { throw .truncated(what) }
            var out: [UInt32] = []
            out.reserveCapacity(count)
            var previous: UInt32? = nil
            for _ in 0..<count {
                let a = try r.u32("address")
                guard subnet.contains(a) else { throw .invalid("\(what) address \(IPAM.format(a)) outside \(subnet)") }
                if let p = previous, a <= p { throw .invalid("\(what) addresses not strictly increasing at \(IPAM.format(a))") }
                previous = a
                out.append(a)
            }
            return out
        }
        static func readRegister(_ r: inout ByteReader, subnet: Subnet) throws(WireError) -> OwnedHoldings {
            let owner = try r.nodeID("register owner"), version = try r.u64("register version")
            guard version <= Ring.maxVersion else { throw .invalid("register version \(version) too large") }
            let flags = try r.u8("register flags")
            guard flags & ~1 == 0 else { throw .invalid("register flags \(flags): only bit 0 (open) is defined") }
            let a = try readAddresses(&r, subnet: subnet, what: "register")
            return OwnedHoldings(owner: owner, holdings: Holdings(version: version, addresses: a, open: flags & 1 != 0))
        }
        static func readRegisters(_ r: inout ByteReader, subnet: Subnet) throws(WireError) -> [OwnedHoldings] {
            let count = Int(try r.u32("register count"))
            guard count <= maxRegisters else { throw .oversized("register count \(count)") }
            guard count * 29 <= r.remaining else { throw .truncated("registers") }
            var out: [OwnedHoldings] = []
            out.reserveCapacity(count)
            for _ in 0..<count {
                let reg = try readRegister(&r, subnet: subnet)
                if let p = out.last, reg.owner <= p.owner { throw .invalid("register owners not strictly increasing") }
                out.append(reg)
            }
            return out
        }
    }
}

extension IPAM.Message {
    /// The gossip key of a broadcast ring delta or holdings message (docs/ipam.md "Transport"):
    /// a newer message with the same key replaces an older one still in the retransmit queue,
    /// so a stream of updates about the same tokens or owners costs one queue item, not one per
    /// update. The key is the kind and the sorted tokens (deltas) or owners (holdings) the
    /// message covers. Replacing is safe exactly when the newer message is at least as new for
    /// every item it covers:
    /// - the allocator's own broadcasts always carry the current entries and registers
    ///   (`flushFreeHints`), so any size is keyed (`singleItemOnly: false`);
    /// - a passed-on broadcast is passed on because it was news, which says only that *some*
    ///   item advanced; so it is keyed only when it covers a single item (`singleItemOnly: true`).
    /// Every other message (and anything that does not decode) is not keyed.
    public static func gossipKey(encoded bytes: [UInt8], singleItemOnly: Bool) -> [UInt8]? {
        guard let kind = Kind.of(encoded: bytes), kind == .ringDelta || kind == .holdings,
              let message = try? IPAM.Message(decoding: bytes) else { return nil }
        var key: [UInt8] = [0x49, kind.rawValue]  // "I": the allocator's keys, apart from other broadcasts
        switch message {
        case .ringDelta(_, _, let entries):
            guard !entries.isEmpty, !singleItemOnly || entries.count == 1 else { return nil }
            for t in entries.map(\.token).sorted() {
                key += [UInt8(t >> 24), UInt8(t >> 16 & 0xff), UInt8(t >> 8 & 0xff), UInt8(t & 0xff)]
            }
        case .holdings(_, _, let registers):
            guard !registers.isEmpty, !singleItemOnly || registers.count == 1 else { return nil }
            for o in registers.map(\.owner).sorted() { key += o.bytes }
        default:
            return nil
        }
        return key
    }
}
