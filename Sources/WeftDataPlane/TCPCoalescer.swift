// Receive-side coalescing (issue 12, item 2): the inverse of `TUNOffload.segmentTCPv4`. The
// receive thread opens one tunnel datagram after another; consecutive in-order TCP/IPv4
// segments of one flow are appended into one super-packet and written to the TUN device with a
// virtio-net header (GSO TCPv4, checksum partial), so the receiving host's stack handles one
// large packet where it would have handled up to ~45. The rules are the kernel's own GRO rules
// (net/ipv4/tcp_offload.c, tcp_gro_receive), narrowed where narrowing keeps the inverse exact:
// docs/dataplane.md §2. Pure: no I/O, no allocation after init.

import Glibc

/// Coalesces inner packets into TUN writes. One per receive thread (not thread-safe).
///
/// Each input comes **framed**: ``VirtioNetHeader/byteCount`` bytes the coalescer may overwrite,
/// then the packet. `emit` gets framed bytes too (header, then packet), ready for one `write`
/// to a TUN device opened with `IFF_VNET_HDR`. A packet that cannot join a run is emitted as it
/// came, behind an all-zero header; a run of one is emitted unchanged; a run of two or more gets
/// its IPv4 total length and header checksum rewritten, its TCP checksum field set to the
/// pseudo-header sum (the kernel completes it, `NEEDS_CSUM`), and a header with `gso_type`
/// TCPv4, `gso_size` the first segment's payload and `hdr_len` the IPv4 + TCP header bytes.
///
/// Per flow the output keeps the input order: a packet of a flow whose run it cannot join
/// first flushes that run. Packets of different flows may leave in another order than they
/// came (as with the kernel's GRO); ``flush(_:)`` at the end of every receive batch bounds how
/// long a run waits.
public final class TCPCoalescer {
    /// Runs open at once (flows interleaved within one batch); the oldest is flushed to make room.
    public let maxFlows: Int
    /// Largest IPv4 packet a run may grow to.
    public static let maxPacket = 65_535
    /// Segments per run at most (the kernel's GRO stops at 64 too: `MAX_GRO_SKBS`-like bound).
    public static let maxSegments = 64

    struct Run {
        var active = false
        var src: UInt32 = 0, dst: UInt32 = 0, ports: UInt32 = 0
        var length = 0            // IPv4 packet bytes so far
        var headers = 0           // IPv4 + TCP header bytes
        var segments = 0
        var gsoSize = 0           // payload of the first segment
        var nextSeq: UInt32 = 0
        var nextID: UInt16 = 0
        var closed = false        // a short segment or PSH ended it
        var age: UInt64 = 0
    }

    private var runs: [Run]
    private let buffers: UnsafeMutableRawBufferPointer
    private let stride: Int
    private var clock: UInt64 = 0

    /// Super-packets emitted (runs of two or more) and the segments in them, since init.
    public private(set) var coalescedWrites: UInt64 = 0
    public private(set) var coalescedSegments: UInt64 = 0

    public init(maxFlows: Int = 8) {
        self.maxFlows = max(1, maxFlows)
        stride = VirtioNetHeader.byteCount + Self.maxPacket + 1
        buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: self.maxFlows * stride, alignment: 64)
        runs = Array(repeating: Run(), count: self.maxFlows)
    }

    deinit { buffers.deallocate() }

    /// Runs waiting for ``flush(_:)``.
    public var pending: Int { runs.reduce(0) { $0 + ($1.active ? 1 : 0) } }

    /// Takes one framed packet (see the type's documentation). Emits at once what cannot wait:
    /// a packet that can join no run (not TCP/IPv4, IP options, a fragment, SYN/FIN/RST/URG/CWR,
    /// no payload, a total length that disagrees with the bytes), after flushing its flow's run;
    /// a run it closes or displaces.
    public func add(_ framed: UnsafeMutableRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        let h = VirtioNetHeader.byteCount
        guard framed.count > h else { return }
        let p = UnsafeRawBufferPointer(rebasing: framed[h...])
        guard let seg = Segment(p) else {
            if let key = Segment.flowKey(p), let r = find(key) { emitRun(r, emit) }
            emitSingle(framed, emit)
            return
        }
        if let r = find((seg.src, seg.dst, seg.ports)) {
            if canAppend(seg, p, to: r) {
                append(seg, p, to: r)
                if runs[r].closed { emitRun(r, emit) }
                return
            }
            emitRun(r, emit)
        }
        start(seg, p, emit)
    }

    /// Emits every open run, oldest first.
    public func flush(_ emit: (UnsafeRawBufferPointer) -> Void) {
        while let r = oldest() { emitRun(r, emit) }
    }

    // MARK: - Runs

    private func find(_ key: (UInt32, UInt32, UInt32)) -> Int? {
        for i in 0..<maxFlows where runs[i].active && runs[i].src == key.0 && runs[i].dst == key.1 && runs[i].ports == key.2 {
            return i
        }
        return nil
    }

    private func oldest() -> Int? {
        var best: Int? = nil
        for i in 0..<maxFlows where runs[i].active {
            if best == nil || runs[i].age < runs[best!].age { best = i }
        }
        return best
    }

    private func packetBuffer(_ r: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: buffers[(r * stride + VirtioNetHeader.byteCount)..<((r + 1) * stride)])
    }

    private func start(_ seg: Segment, _ p: UnsafeRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        var slot = runs.firstIndex { !$0.active }
        if slot == nil, let o = oldest() { emitRun(o, emit); slot = o }
        let r = slot!
        packetBuffer(r).baseAddress!.copyMemory(from: p.baseAddress!, byteCount: p.count)
        clock &+= 1
        runs[r] = Run(active: true, src: seg.src, dst: seg.dst, ports: seg.ports, length: p.count, headers: seg.headers,
                      segments: 1, gsoSize: seg.payload, nextSeq: seg.seq &+ UInt32(seg.payload), nextID: seg.id &+ 1,
                      closed: seg.push, age: clock)
        if seg.push { emitRun(r, emit) }
    }

    private func canAppend(_ seg: Segment, _ p: UnsafeRawBufferPointer, to r: Int) -> Bool {
        let run = runs[r]
        guard !run.closed, run.segments < Self.maxSegments, seg.headers == run.headers,
              seg.seq == run.nextSeq, seg.id == run.nextID, seg.payload <= run.gsoSize,
              run.length + seg.payload <= Self.maxPacket else { return false }
        let head = UnsafeRawBufferPointer(packetBuffer(r))
        let ip = seg.ipHeader
        // Everything segmentation copies from the head must already equal it, so that cutting
        // the run again gives back exactly these packets. IPv4: TOS, flags, TTL (the kernel's
        // inet_gro_receive asks for less); TCP: acknowledgment, data offset, flags apart from
        // PSH, window, urgent pointer and byte-identical options (tcp_gro_receive).
        guard p[1] == head[1], p[6] == head[6], p[8] == head[8] else { return false }  // TOS, flags, TTL
        guard memcmp(p.baseAddress! + ip + 8, head.baseAddress! + ip + 8, 5) == 0,   // ack, data offset
              (p[ip + 13] | 0x08) == (head[ip + 13] | 0x08),                         // flags but PSH
              memcmp(p.baseAddress! + ip + 14, head.baseAddress! + ip + 14, 2) == 0,  // window
              memcmp(p.baseAddress! + ip + 18, head.baseAddress! + ip + 18, 2) == 0   // urgent pointer
        else { return false }
        let options = seg.headers - ip - 20
        if options > 0, memcmp(p.baseAddress! + ip + 20, head.baseAddress! + ip + 20, options) != 0 { return false }
        return true
    }

    private func append(_ seg: Segment, _ p: UnsafeRawBufferPointer, to r: Int) {
        let buf = packetBuffer(r)
        (buf.baseAddress! + runs[r].length).copyMemory(from: p.baseAddress! + seg.headers, byteCount: seg.payload)
        runs[r].length += seg.payload
        runs[r].segments += 1
        runs[r].nextSeq = seg.seq &+ UInt32(seg.payload)
        runs[r].nextID = seg.id &+ 1
        if seg.push { buf[seg.ipHeader + 13] |= 0x08 }
        // A shorter segment can only be the last (every segment but the last carries gso_size).
        if seg.push || seg.payload < runs[r].gsoSize { runs[r].closed = true }
    }

    private func emitRun(_ r: Int, _ emit: (UnsafeRawBufferPointer) -> Void) {
        let run = runs[r]
        runs[r].active = false
        let frame = UnsafeMutableRawBufferPointer(rebasing: buffers[(r * stride)..<(r * stride + VirtioNetHeader.byteCount + run.length)])
        let pkt = UnsafeMutableRawBufferPointer(rebasing: frame[VirtioNetHeader.byteCount...])
        var header = VirtioNetHeader()
        if run.segments > 1 {
            let ip = Int(pkt[0] & 0x0f) * 4
            TUNOffload.store16(pkt, 2, UInt16(run.length))
            TUNOffload.store16(pkt, 10, 0)
            TUNOffload.store16(pkt, 10, ~TUNOffload.fold(TUNOffload.sum(UnsafeRawBufferPointer(rebasing: pkt[0..<ip]))))
            let pseudo = TUNOffload.sum(UnsafeRawBufferPointer(rebasing: pkt[12..<20]), initial: 6 &+ UInt64(run.length - ip))
            TUNOffload.store16(pkt, ip + 16, TUNOffload.fold(pseudo))
            header = VirtioNetHeader(flags: VirtioNetHeader.needsChecksum, gsoType: VirtioNetHeader.gsoTCPv4,
                                     headerLength: UInt16(run.headers), gsoSize: UInt16(run.gsoSize),
                                     checksumStart: UInt16(ip), checksumOffset: 16)
            coalescedWrites &+= 1
            coalescedSegments &+= UInt64(run.segments)
        }
        header.store(into: frame)
        emit(UnsafeRawBufferPointer(frame))
    }

    private func emitSingle(_ framed: UnsafeMutableRawBufferPointer, _ emit: (UnsafeRawBufferPointer) -> Void) {
        VirtioNetHeader().store(into: framed)
        emit(UnsafeRawBufferPointer(framed))
    }

    /// What the coalescer needs of a TCP/IPv4 packet that may join a run.
    struct Segment {
        var src: UInt32, dst: UInt32, ports: UInt32
        var ipHeader: Int, headers: Int, payload: Int
        var seq: UInt32, id: UInt16, push: Bool

        /// Nil unless: IPv4 without options, total length equal to the bytes, header checksum
        /// right, not a fragment, TCP with ACK and no flag but PSH/ECE besides, some payload.
        init?(_ p: UnsafeRawBufferPointer) {
            guard p.count >= 40, p[0] == 0x45, p[9] == 6, Int(TUNOffload.load16(p, 2)) == p.count,
                  TUNOffload.load16(p, 6) & 0x3fff == 0,
                  TUNOffload.fold(TUNOffload.sum(UnsafeRawBufferPointer(rebasing: p[0..<20]))) == 0xffff else { return nil }
            let tcp = Int(p[32] >> 4) * 4
            let flags = p[33]
            guard tcp >= 20, 20 + tcp < p.count, flags & ~UInt8(0x58) == 0, flags & 0x10 != 0 else { return nil }
            src = TUNOffload.load32(p, 12); dst = TUNOffload.load32(p, 16); ports = TUNOffload.load32(p, 20)
            ipHeader = 20; headers = 20 + tcp; payload = p.count - headers
            seq = TUNOffload.load32(p, 24); id = TUNOffload.load16(p, 4); push = flags & 0x08 != 0
        }

        /// The flow of any TCP/IPv4 first fragment (to flush its run before it passes alone).
        static func flowKey(_ p: UnsafeRawBufferPointer) -> (UInt32, UInt32, UInt32)? {
            guard p.count >= 20, p[0] >> 4 == 4, p[9] == 6, TUNOffload.load16(p, 6) & 0x1fff == 0 else { return nil }
            let ip = Int(p[0] & 0x0f) * 4
            guard ip >= 20, ip + 4 <= p.count else { return nil }
            return (TUNOffload.load32(p, 12), TUNOffload.load32(p, 16), TUNOffload.load32(p, ip))
        }
    }
}

extension VirtioNetHeader {
    /// Writes the 10 bytes at the start of `frame` (which must hold them).
    func store(into frame: UnsafeMutableRawBufferPointer) {
        frame[0] = flags; frame[1] = gsoType
        frame.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
        frame.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
        frame.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
        frame.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
    }
}
