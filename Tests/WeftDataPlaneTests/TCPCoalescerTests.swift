import WeftCore
import XCTest

@testable import WeftDataPlane

/// Receive coalescing (`TCPCoalescer`): what it writes to the TUN device, cut again by the
/// kernel's rules (`TUNOffload.segmentTCPv4`), is exactly what came in, flow by flow and in
/// order; a super-packet's headers and partial checksum are what the kernel expects; and runs
/// end where the kernel's GRO ends them.
final class TCPCoalescerTests: XCTestCase {
    typealias T = TUNOffloadTests

    /// One valid TCP/IPv4 packet (both checksums right): a super-segment cut with a gso size
    /// larger than its payload.
    static func tcpPacket(src: UInt8 = 7, dst: UInt8 = 9, sport: UInt16 = 0xc350, payload: [UInt8], tcpOptions: Int = 0,
                          id: UInt16, seq: UInt32, ack: UInt32 = 0x1234_5678, flags: UInt8 = 0x10, ttl: UInt8 = 64,
                          rng: inout SystemRandomNumberGenerator) -> [UInt8] {
        var p = T.superSegment(payload: payload, ipOptions: 0, tcpOptions: tcpOptions, id: id, seq: seq, flags: flags, rng: &rng)
        p[15] = src; p[19] = dst; p[8] = ttl
        p[20] = UInt8(sport >> 8); p[21] = UInt8(sport & 0xff)
        for k in 0..<4 { p[28 + k] = UInt8(truncatingIfNeeded: ack >> (24 - 8 * UInt32(k))) }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { scratch.deallocate() }
        var out: [UInt8] = []
        _ = p.withUnsafeBytes { TUNOffload.segmentTCPv4($0, gsoSize: 65_535, scratch: scratch) { out = Array($0) } }
        return out
    }

    /// The segments `TUNOffload.segmentTCPv4` cuts `packet` into (nil when it refuses).
    static func cut(_ packet: [UInt8], gso: Int) -> [[UInt8]]? {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { scratch.deallocate() }
        var out: [[UInt8]] = []
        let n = packet.withUnsafeBytes { TUNOffload.segmentTCPv4($0, gsoSize: gso, scratch: scratch) { out.append(Array($0)) } }
        return n == nil ? nil : out
    }

    /// What the coalescer emits for `packets` (framed in, frames out), flushing after every
    /// `flushEvery` inputs (nil: once at the end).
    static func run(_ packets: [[UInt8]], coalescer: TCPCoalescer, flushEvery: Int? = nil) -> [(VirtioNetHeader, [UInt8])] {
        var out: [(VirtioNetHeader, [UInt8])] = []
        let emit: (UnsafeRawBufferPointer) -> Void = { frame in
            out.append((VirtioNetHeader(frame)!, Array(frame[VirtioNetHeader.byteCount...])))
        }
        for (i, p) in packets.enumerated() {
            var framed = [UInt8](repeating: 0xee, count: VirtioNetHeader.byteCount) + p
            framed.withUnsafeMutableBytes { coalescer.add($0, emit) }
            if let k = flushEvery, (i + 1) % k == 0 { coalescer.flush(emit) }
        }
        coalescer.flush(emit)
        XCTAssertEqual(coalescer.pending, 0)
        return out
    }

    /// The packets the kernel makes of one frame: a GSO frame cut at its gso size, any other
    /// frame as it is. Checks a GSO frame's header and partial checksum on the way.
    static func expand(_ frame: (VirtioNetHeader, [UInt8]), context: String) -> [[UInt8]] {
        let (h, p) = frame
        guard h.gsoType == VirtioNetHeader.gsoTCPv4 else {
            XCTAssertEqual(h, VirtioNetHeader(), "a frame without GSO has an all-zero header: \(context)")
            return [p]
        }
        let ih = Int(p[0] & 0x0f) * 4, th = Int(p[ih + 12] >> 4) * 4
        XCTAssertEqual(h.flags, VirtioNetHeader.needsChecksum, context)
        XCTAssertEqual(Int(h.headerLength), ih + th, context)
        XCTAssertEqual(Int(h.checksumStart), ih, context)
        XCTAssertEqual(h.checksumOffset, 16, context)
        XCTAssertEqual(Int(T.u16(p, 2)), p.count, "total length: \(context)")
        XCTAssertLessThanOrEqual(p.count, 65_535, context)
        XCTAssertTrue(T.ipChecksumOK(p), "IPv4 checksum of the super-packet: \(context)")
        // The kernel completes the partial checksum: the result must verify.
        var completed = p
        XCTAssertTrue(completed.withUnsafeMutableBytes { TUNOffload.completeChecksum($0, start: ih, offset: 16) })
        XCTAssertTrue(T.tcpChecksumOK(completed), "TCP checksum once completed: \(context)")
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { scratch.deallocate() }
        var out: [[UInt8]] = []
        let n = p.withUnsafeBytes { TUNOffload.segmentTCPv4($0, gsoSize: Int(h.gsoSize), scratch: scratch) { out.append(Array($0)) } }
        XCTAssertNotNil(n, context)
        XCTAssertGreaterThan(out.count, 1, "a GSO frame holds two segments or more: \(context)")
        XCTAssertLessThanOrEqual(out.count, TCPCoalescer.maxSegments, context)
        return out
    }

    /// A flow: TCP by addresses and ports, anything else by addresses and protocol.
    static func flow(_ p: [UInt8]) -> [UInt8] {
        guard p.count >= 20 else { return p }
        if p[9] == 6, p.count >= 24, p[0] == 0x45 { return Array(p[9...9]) + Array(p[12..<24]) }
        return Array(p[9...9]) + Array(p[12..<20])
    }

    // MARK: properties

    func testCoalescingASegmentedSuperSegmentGivesItBack() throws {
        var rng = SystemRandomNumberGenerator()
        let coalescer = TCPCoalescer()
        for trial in 0..<300 {
            let tcpOptions = Int.random(in: 0...10, using: &rng)
            let headers = 40 + 4 * tcpOptions
            let gso = Int.random(in: 200...1460, using: &rng)
            let maxPayload = min(65_535 - headers, gso * TCPCoalescer.maxSegments)
            let length = Int.random(in: 1...maxPayload, using: &rng)
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let flags: UInt8 = [0x10, 0x18, 0x50, 0x58][trial % 4]  // ACK, +PSH, +ECE
            var original = T.superSegment(payload: payload, ipOptions: 0, tcpOptions: tcpOptions, id: UInt16.random(in: 0...UInt16.max, using: &rng),
                                          seq: UInt32.random(in: 0...UInt32.max, using: &rng), flags: flags, rng: &rng)
            original.withUnsafeMutableBytes { p in
                TUNOffload.store16(p, 10, 0)
                TUNOffload.store16(p, 10, ~TUNOffload.fold(TUNOffload.sum(UnsafeRawBufferPointer(rebasing: p[0..<20]))))
            }
            let segs = try XCTUnwrap(Self.cut(original, gso: gso))
            let frames = Self.run(segs, coalescer: coalescer)
            let context = "trial \(trial): \(segs.count) segments of \(gso)"
            XCTAssertEqual(frames.count, 1, "one write: \(context)")
            guard let (h, p) = frames.first else { continue }
            if segs.count == 1 {
                XCTAssertEqual(h, VirtioNetHeader(), context)
                XCTAssertEqual(p, segs[0], "a lone segment passes unchanged: \(context)")
                continue
            }
            XCTAssertEqual(Int(h.gsoSize), gso, context)
            XCTAssertEqual(p.count, original.count, context)
            // Byte for byte the original, but for the TCP checksum, which is left partial.
            XCTAssertEqual(Array(p[0..<36]), Array(original[0..<36]), "headers: \(context)")
            XCTAssertTrue(Array(p[38...]) == Array(original[38...]), "options and payload: \(context)")
            XCTAssertTrue(Self.expand(frames[0], context: context) == segs, "cut again, the same segments: \(context)")
        }
    }

    func testAnyInputComesOutFlowByFlowInOrderAndIntact() {
        // Interleaved flows, some segments lost, repeated, reordered, short, pushed, pure acks,
        // FIN, changed TTL or ID, and non-TCP packets: whatever the coalescer makes of it, cut
        // again by the kernel's rules, is the input, flow by flow, byte for byte.
        var sys = SystemRandomNumberGenerator()
        var coalesced: UInt64 = 0
        for trial in 0..<200 {
            let seed = UInt64.random(in: 0...UInt64.max, using: &sys)
            var rng = DeterministicRNG(seed: seed)
            struct Flow { var seq: UInt32; var id: UInt16; var gso: Int; var options: Int; var ack: UInt32; var sport: UInt16 }
            var flows = (0..<Int.random(in: 1...4, using: &rng)).map { k in
                Flow(seq: UInt32.random(in: 0...UInt32.max, using: &rng), id: UInt16.random(in: 0...UInt16.max, using: &rng),
                     gso: Int.random(in: 100...1400, using: &rng), options: [0, 3][Int.random(in: 0...1, using: &rng)],
                     ack: 1, sport: UInt16(1000 + k))
            }
            var input: [[UInt8]] = []
            for _ in 0..<Int.random(in: 1...300, using: &rng) {
                let f = Int.random(in: 0..<flows.count, using: &rng)
                let roll = Int.random(in: 0..<100, using: &rng)
                var len = flows[f].gso, flags: UInt8 = 0x10, ttl: UInt8 = 64
                var advance = true
                switch roll {
                case 0..<60: break
                case 60..<66: len = Int.random(in: 1..<flows[f].gso, using: &rng)
                case 66..<70: flags = 0x18
                case 70..<73: len = 0
                case 73..<75: flags = 0x11
                case 75..<78: flows[f].seq &+= UInt32(flows[f].gso)  // a segment lost
                case 78..<81: if let last = input.last { input.append(last); continue }
                case 81..<83: ttl = 63
                case 83..<85: flows[f].id &+= 5
                case 85..<87: flows[f].ack &+= 1000
                case 87..<89: advance = false; flows[f].seq &-= UInt32(flows[f].gso)  // a retransmission
                case 89..<93:
                    var udp = [UInt8](repeating: 0, count: 28 + len)
                    udp[0] = 0x45; udp[9] = 17; udp[2] = UInt8(udp.count >> 8); udp[3] = UInt8(udp.count & 0xff)
                    udp[12...15] = [10, 42, 1, 7]; udp[16...19] = [10, 42, 2, 9]
                    input.append(udp); continue
                case 93..<95:
                    var frag = Self.tcpPacket(payload: [1, 2, 3], id: 1, seq: 1, rng: &sys)
                    frag[6] |= 0x20; input.append(frag); continue
                default:
                    var bad = Self.tcpPacket(sport: flows[f].sport, payload: [UInt8](repeating: 9, count: len), id: flows[f].id,
                                             seq: flows[f].seq, ack: flows[f].ack, rng: &sys)
                    bad[11] ^= 0xff  // a wrong IPv4 checksum: never joins a run
                    input.append(bad); continue
                }
                let payload = (0..<len).map { _ in UInt8.random(in: 0...255, using: &rng) }
                input.append(Self.tcpPacket(sport: flows[f].sport, payload: payload, tcpOptions: flows[f].options, id: flows[f].id,
                                            seq: flows[f].seq, ack: flows[f].ack, flags: flags, ttl: ttl, rng: &sys))
                flows[f].id &+= 1
                if advance { flows[f].seq &+= UInt32(len) } else { flows[f].seq &+= UInt32(2 * flows[f].gso) }
            }
            let coalescer = TCPCoalescer(maxFlows: Int.random(in: 1...4, using: &rng))
            let frames = Self.run(input, coalescer: coalescer, flushEvery: Bool.random(using: &rng) ? Int.random(in: 1...64, using: &rng) : nil)
            let context = "trial \(trial) seed \(seed)"
            let output = frames.flatMap { Self.expand($0, context: context) }
            XCTAssertEqual(output.count, input.count, "nothing lost or made up: \(context)")
            let keys = Set(input.map(Self.flow))
            for key in keys {
                XCTAssertTrue(output.filter { Self.flow($0) == key } == input.filter { Self.flow($0) == key }, "one flow, in order, byte-exact: \(context)")
            }
            XCTAssertLessThanOrEqual(frames.count, input.count, context)
            coalesced += coalescer.coalescedWrites
        }
        XCTAssertGreaterThan(coalesced, 100, "runs do form")
    }

    // MARK: edges

    func testRunsEndWhereTheKernelsGROEndsThem() {
        var rng = SystemRandomNumberGenerator()
        let c = TCPCoalescer()
        func seg(_ i: Int, len: Int = 1000, flags: UInt8 = 0x10) -> [UInt8] {
            Self.tcpPacket(payload: [UInt8](repeating: UInt8(i & 0xff), count: len), id: UInt16(100 + i), seq: UInt32(5000 + (len == 1000 || len == 10 ? 1000 : len) * i), flags: flags, rng: &rng)
        }
        func counts(_ frames: [(VirtioNetHeader, [UInt8])]) -> [Int] {
            frames.map { $0.0.gsoType == 0 ? 1 : ($0.1.count - 40 + Int($0.0.gsoSize) - 1) / Int($0.0.gsoSize) }
        }
        // PSH joins, then ends the run: the next segment starts another.
        XCTAssertEqual(counts(Self.run([seg(0), seg(1), seg(2, flags: 0x18), seg(3), seg(4)], coalescer: c)), [3, 2])
        // A short segment is the last of its run.
        XCTAssertEqual(counts(Self.run([seg(0), seg(1, len: 10)], coalescer: c)), [2])
        XCTAssertEqual(counts(Self.run([seg(0), seg(1, len: 10), seg(2)], coalescer: c)).reduce(0, +), 3)
        // A longer segment than the first never joins (gso_size is the first's payload).
        XCTAssertEqual(counts(Self.run([seg(0, len: 500), Self.tcpPacket(payload: [UInt8](repeating: 1, count: 600), id: 101, seq: 5500, rng: &rng)], coalescer: c)), [1, 1])
        // FIN, SYN, RST, URG, CWR pass alone, after their flow's run.
        for flags: UInt8 in [0x11, 0x12, 0x14, 0x30, 0x90] {
            XCTAssertEqual(counts(Self.run([seg(0), seg(1), seg(2, flags: flags)], coalescer: c)), [2, 1], "flags \(flags)")
        }
        // At most 64 segments, at most 65,535 bytes.
        XCTAssertEqual(counts(Self.run((0..<100).map { seg($0, len: 100) }, coalescer: c)), [64, 36])
        let big = Self.run((0..<50).map { seg($0, len: 1400) }, coalescer: c)
        XCTAssertTrue(big.allSatisfy { $0.1.count <= 65_535 })
        XCTAssertEqual(counts(big).reduce(0, +), 50)
        XCTAssertEqual(counts(big).first, 46, "46 × 1400 + 40 fits, 47 does not")
    }

    func testOneWriteCarriesTheFlowsOfABatch() {
        var rng = SystemRandomNumberGenerator()
        let c = TCPCoalescer(maxFlows: 8)
        var input: [[UInt8]] = []
        for i in 0..<40 {
            for f in 0..<4 {
                input.append(Self.tcpPacket(sport: UInt16(2000 + f), payload: [UInt8](repeating: UInt8(f), count: 1388), tcpOptions: 3,
                                            id: UInt16(i), seq: UInt32(i * 1388), rng: &rng))
            }
        }
        let frames = Self.run(input, coalescer: c)
        XCTAssertEqual(frames.count, 4, "four interleaved flows, four writes")
        XCTAssertEqual(c.coalescedSegments, 160)
        // With room for one flow, interleaving defeats coalescing but loses nothing.
        let one = TCPCoalescer(maxFlows: 1)
        let out = Self.run(input, coalescer: one).flatMap { Self.expand($0, context: "one flow") }
        XCTAssertTrue(out == input)
    }

    func testJunkNeverTrapsAndPassesUnchanged() {
        var rng = SystemRandomNumberGenerator()
        let c = TCPCoalescer(maxFlows: 2)
        for _ in 0..<3000 {
            var junk = (0..<Int.random(in: 0...120, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if Bool.random(using: &rng), junk.count >= 40 { junk[0] = 0x45; junk[9] = 6 }
            let frames = Self.run([junk], coalescer: c)
            if junk.isEmpty { XCTAssertTrue(frames.isEmpty); continue }
            XCTAssertEqual(frames.count, 1)
            XCTAssertEqual(frames.first?.1, junk)
            XCTAssertEqual(frames.first?.0, VirtioNetHeader())
        }
        // A framed buffer with no packet at all is ignored.
        var tiny = [UInt8](repeating: 0, count: VirtioNetHeader.byteCount)
        tiny.withUnsafeMutableBytes { c.add($0) { _ in XCTFail("emitted") } }
    }
}
