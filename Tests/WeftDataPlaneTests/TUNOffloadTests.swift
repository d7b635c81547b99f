import XCTest

@testable import WeftDataPlane

/// The pure TUN offload layer (`TUNOffload`, `VirtioNetHeader`): cutting a TCP/IPv4
/// super-segment is byte-exact against the original stream, every header field follows the
/// kernel's GSO rules, and every checksum verifies against an independent reference.
final class TUNOffloadTests: XCTestCase {
    // MARK: reference (16-bit words, RFC 1071, no shortcuts)

    static func referenceChecksum(_ bytes: [UInt8], pseudo: [UInt8] = []) -> UInt16 {
        let all = pseudo + bytes + (bytes.count % 2 == 1 ? [0] : [])
        var sum: UInt32 = 0
        for k in stride(from: 0, to: all.count, by: 2) {
            sum += UInt32(all[k]) << 8 | UInt32(all[k + 1])
            sum = (sum & 0xffff) + (sum >> 16)
        }
        return ~UInt16(sum)
    }

    /// True when the header's checksum verifies (sum over the header including it is 0xffff).
    static func ipChecksumOK(_ p: [UInt8]) -> Bool {
        referenceChecksum(Array(p[0..<(Int(p[0] & 0x0f) * 4)])) == 0
    }

    static func tcpChecksumOK(_ p: [UInt8]) -> Bool {
        let ih = Int(p[0] & 0x0f) * 4
        let tcp = Array(p[ih...])
        let pseudo = Array(p[12..<20]) + [0, 6, UInt8(tcp.count >> 8), UInt8(tcp.count & 0xff)]
        return referenceChecksum(tcp, pseudo: pseudo) == 0
    }

    static func u16(_ p: [UInt8], _ i: Int) -> UInt16 { UInt16(p[i]) << 8 | UInt16(p[i + 1]) }
    static func u32(_ p: [UInt8], _ i: Int) -> UInt32 { UInt32(u16(p, i)) << 16 | UInt32(u16(p, i + 2)) }

    /// A TCP/IPv4 super-segment with `ipOptions` and `tcpOptions` 32-bit words of options, the
    /// checksum fields filled with garbage (they are recomputed).
    static func superSegment(payload: [UInt8], ipOptions: Int, tcpOptions: Int, id: UInt16, seq: UInt32, flags: UInt8,
                             rng: inout SystemRandomNumberGenerator) -> [UInt8] {
        let ih = 20 + 4 * ipOptions, th = 20 + 4 * tcpOptions
        var p = [UInt8](repeating: 0, count: ih + th + payload.count)
        p[0] = 0x40 | UInt8(ih / 4); p[1] = 0x02  // ECT(0)
        let total = min(p.count, 65_535)
        p[2] = UInt8(total >> 8); p[3] = UInt8(total & 0xff)
        p[4] = UInt8(id >> 8); p[5] = UInt8(id & 0xff)
        p[6] = 0x40  // DF
        p[8] = 64; p[9] = 6
        p[10] = UInt8.random(in: 0...255, using: &rng); p[11] = UInt8.random(in: 0...255, using: &rng)
        p[12...15] = [10, 42, 1, 7]; p[16...19] = [10, 42, 2, 9]
        for k in 20..<ih { p[k] = 1 }  // NOP options
        p[ih] = 0xc3; p[ih + 1] = 0x50; p[ih + 2] = 0x00; p[ih + 3] = 0x50
        for k in 0..<4 { p[ih + 4 + k] = UInt8(truncatingIfNeeded: seq >> (24 - 8 * UInt32(k))) }
        p[ih + 8...ih + 11] = [0x12, 0x34, 0x56, 0x78]
        p[ih + 12] = UInt8(th / 4) << 4
        p[ih + 13] = flags
        p[ih + 14] = 0xfa; p[ih + 15] = 0xf0
        p[ih + 16] = UInt8.random(in: 0...255, using: &rng); p[ih + 17] = UInt8.random(in: 0...255, using: &rng)
        for k in 20..<th { p[ih + k] = UInt8(k) }  // options, kept verbatim
        p.replaceSubrange((ih + th)..., with: payload)
        return p
    }

    func segments(_ packet: [UInt8], gso: Int) -> [[UInt8]]? {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 65_536, alignment: 16)
        defer { scratch.deallocate() }
        var out: [[UInt8]] = []
        let n = packet.withUnsafeBytes { TUNOffload.segmentTCPv4($0, gsoSize: gso, scratch: scratch) { out.append(Array($0)) } }
        if let n { XCTAssertEqual(n, out.count) } else { XCTAssertTrue(out.isEmpty, "nothing handed on for a refused packet") }
        return n == nil ? nil : out
    }

    // MARK: properties

    func testSplittingIsByteExactAndEverySegmentIsAValidPacket() throws {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<300 {
            let ipOptions = trial % 7 == 0 ? Int.random(in: 1...10, using: &rng) : 0
            let tcpOptions = Int.random(in: 0...10, using: &rng)
            let headers = 40 + 4 * (ipOptions + tcpOptions)
            let gso = Int.random(in: 1...1460, using: &rng)
            let length = trial % 10 == 0 ? Int.random(in: 0...3, using: &rng) : Int.random(in: 0...(65_535 - headers), using: &rng)
            let payload = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let id = UInt16.random(in: 0...UInt16.max, using: &rng), seq = trial % 3 == 0 ? UInt32.max - UInt32.random(in: 0...20_000, using: &rng) : UInt32.random(in: 0...UInt32.max, using: &rng)
            let flags = UInt8.random(in: 0...255, using: &rng)
            let packet = Self.superSegment(payload: payload, ipOptions: ipOptions, tcpOptions: tcpOptions, id: id, seq: seq, flags: flags, rng: &rng)
            let ih = 20 + 4 * ipOptions, th = 20 + 4 * tcpOptions
            let segs = try XCTUnwrap(segments(packet, gso: gso), "trial \(trial)")
            XCTAssertEqual(segs.count, length == 0 ? 1 : (length + gso - 1) / gso, "trial \(trial)")
            var joined: [UInt8] = []
            for (i, s) in segs.enumerated() {
                let context = "trial \(trial) segment \(i)/\(segs.count) gso \(gso)"
                let body = Array(s[(ih + th)...])
                XCTAssertLessThanOrEqual(body.count, gso, context)
                if i + 1 < segs.count { XCTAssertEqual(body.count, gso, "only the last segment is short: \(context)") }
                XCTAssertEqual(Int(Self.u16(s, 2)), s.count, "IPv4 total length: \(context)")
                XCTAssertEqual(Self.u16(s, 4), id &+ UInt16(truncatingIfNeeded: i), "IPv4 ID: \(context)")
                XCTAssertTrue(Self.ipChecksumOK(s), "IPv4 checksum: \(context)")
                XCTAssertTrue(Self.tcpChecksumOK(s), "TCP checksum: \(context)")
                XCTAssertEqual(Self.u32(s, ih + 4), seq &+ UInt32(joined.count), "sequence: \(context)")
                var want = flags
                if i + 1 < segs.count { want &= ~0x09 }
                if i > 0 { want &= ~0x80 }
                XCTAssertEqual(s[ih + 13], want, "flags: \(context)")
                // Everything else in the headers is the original's.
                XCTAssertEqual(Array(s[0..<2]), Array(packet[0..<2]), context)
                XCTAssertEqual(Array(s[6..<10]), Array(packet[6..<10]), context)
                XCTAssertEqual(Array(s[12..<(ih + 4)]), Array(packet[12..<(ih + 4)]), context)
                XCTAssertEqual(Array(s[(ih + 8)..<(ih + 13)]), Array(packet[(ih + 8)..<(ih + 13)]), context)
                XCTAssertEqual(Array(s[(ih + 14)..<(ih + 16)]), Array(packet[(ih + 14)..<(ih + 16)]), context)
                XCTAssertEqual(Array(s[(ih + 18)..<(ih + th)]), Array(packet[(ih + 18)..<(ih + th)]), context)
                joined += body
            }
            XCTAssertEqual(joined, payload, "trial \(trial): the segments' payloads are the stream")
        }
    }

    func testAFullSizeSuperSegmentAtTheTunnelMSS() throws {
        var rng = SystemRandomNumberGenerator()
        // TUN MTU 1440 → MSS 1400: a 64 KiB write becomes 47 packets of at most 1440 bytes.
        let payload = (0..<(65_535 - 52)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let packet = Self.superSegment(payload: payload, ipOptions: 0, tcpOptions: 3, id: 0xffff, seq: 0xffff_ff00, flags: 0x18, rng: &rng)
        let segs = try XCTUnwrap(segments(packet, gso: 1388))
        XCTAssertEqual(segs.count, 48)
        XCTAssertTrue(segs.allSatisfy { $0.count <= 1440 })
        XCTAssertEqual(Self.u16(segs[1], 4), 0, "the IPv4 ID wraps")
        XCTAssertEqual(segs.filter { $0[20 + 13] & 0x08 != 0 }.count, 1, "PSH once, on the last")
        XCTAssertTrue(segs.last![20 + 13] & 0x08 != 0)
    }

    func testWhatIsNotATCPv4SuperSegmentIsRefusedUntouched() {
        var rng = SystemRandomNumberGenerator()
        let good = Self.superSegment(payload: [UInt8](repeating: 7, count: 3000), ipOptions: 0, tcpOptions: 0, id: 1, seq: 1, flags: 0x10, rng: &rng)
        XCTAssertNotNil(segments(good, gso: 1000))
        var v6 = good; v6[0] = 0x65
        var udp = good; udp[9] = 17
        var fragment = good; fragment[6] = 0x20  // MF
        var offset = good; offset[7] = 0x01
        var shortIHL = good; shortIHL[0] = 0x44
        var longTCP = good; longTCP[20 + 12] = 0xf0; longTCP.removeSubrange(40...)  // data offset 60 in a 40-byte packet
        for (name, p, gso) in [("IPv6", v6, 1000), ("UDP", udp, 1000), ("MF", fragment, 1000), ("offset", offset, 1000),
                               ("IHL 4", shortIHL, 1000), ("TCP header past the end", longTCP, 1000), ("gso 0", good, 0),
                               ("too short", Array(good.prefix(39)), 1000), ("empty", [], 1000)] {
            XCTAssertNil(segments(p, gso: gso), name)
        }
        // A segment bigger than the scratch buffer is refused, not overrun.
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 1000, alignment: 16)
        defer { scratch.deallocate() }
        let n = good.withUnsafeBytes { TUNOffload.segmentTCPv4($0, gsoSize: 1400, scratch: scratch) { _ in XCTFail("called") } }
        XCTAssertNil(n)
        // Random bytes never trap.
        for _ in 0..<2000 {
            let junk = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = segments(junk, gso: Int.random(in: 0...100, using: &rng))
        }
    }

    func testPartialChecksumsAreCompletedAsTheKernelExpects() throws {
        var rng = SystemRandomNumberGenerator()
        for trial in 0..<200 {
            // A UDP/IPv4 datagram whose checksum field holds only the pseudo-header sum.
            let body = (0..<Int.random(in: 0...1400, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let udpLength = 8 + body.count
            var p = [UInt8](repeating: 0, count: 20 + udpLength)
            p[0] = 0x45; p[9] = 17
            p[12...15] = [10, 42, 1, 1]; p[16...19] = [10, 42, UInt8(trial % 250), 2]
            p[20...23] = [0x13, 0x88, 0x00, 0x35]
            p[24] = UInt8(udpLength >> 8); p[25] = UInt8(udpLength & 0xff)
            p.replaceSubrange(28..., with: body)
            let pseudo = Array(p[12..<20]) + [0, 17, UInt8(udpLength >> 8), UInt8(udpLength & 0xff)]
            let full = Self.referenceChecksum(Array(p[20...]), pseudo: pseudo)
            let partial = ~Self.referenceChecksum(pseudo)  // folded, not complemented
            p[26] = UInt8(partial >> 8); p[27] = UInt8(partial & 0xff)
            let ok = p.withUnsafeMutableBytes { TUNOffload.completeChecksum($0, start: 20, offset: 6) }
            XCTAssertTrue(ok)
            XCTAssertEqual(Self.u16(p, 26), full, "trial \(trial)")
        }
        var small = [UInt8](repeating: 0, count: 30)
        XCTAssertFalse(small.withUnsafeMutableBytes { TUNOffload.completeChecksum($0, start: 20, offset: 9) }, "field past the end")
        XCTAssertFalse(small.withUnsafeMutableBytes { TUNOffload.completeChecksum($0, start: 40, offset: 0) })
        XCTAssertEqual(small, [UInt8](repeating: 0, count: 30), "nothing written")
    }

    func testSumMatchesTheReferenceAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        for length in 0..<80 {
            let bytes = (0..<(length + 3)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            for start in 0..<3 {
                let slice = Array(bytes[start..<(start + length)])
                let mine = slice.withUnsafeBytes { ~TUNOffload.fold(TUNOffload.sum($0)) }
                XCTAssertEqual(mine, Self.referenceChecksum(slice), "length \(length) start \(start)")
            }
        }
    }

    func testVirtioHeaderRoundTrip() throws {
        let h = VirtioNetHeader(flags: 1, gsoType: 1, headerLength: 52, gsoSize: 1388, checksumStart: 20, checksumOffset: 16)
        let bytes = h.bytes
        XCTAssertEqual(bytes.count, 10)
        XCTAssertEqual(bytes.withUnsafeBytes { VirtioNetHeader($0) }, h)
        XCTAssertNil([UInt8](repeating: 0, count: 9).withUnsafeBytes { VirtioNetHeader($0) })
    }
}
