import XCTest
@testable import WeftCore

final class IPAMMessageTests: XCTestCase {
    let cluster = IPAM.ClusterID(creator: ipamNode(7), nonce: 0xDEAD_BEEF)

    func samples() -> [IPAM.Message] {
        var ring = IPAM.Ring(cluster: cluster, subnet: .default)
        ring.insert(IPAM.Entry(token: 0x0A2A_8000, owner: ipamNode(9), version: 3, free: 100))
        return [.ringFull(ring),
                .ringDelta(cluster: cluster, subnet: .default, entries: [ring.entries[1]]),
                .ringRequest,
                .donationRequest(cluster: cluster, wanted: 16),
                .donationGrant(cluster: cluster, subnet: .default, entries: ring.entries),
                .donationDeny(cluster: cluster)] + v2Samples(ring)
    }

    func v2Samples(_ ring: IPAM.Ring) -> [IPAM.Message] {
        let regs = [IPAM.OwnedHoldings(owner: ipamNode(3), holdings: IPAM.Holdings(version: 4, addresses: [0x0A2A_0001, 0x0A2A_0009])),
                    IPAM.OwnedHoldings(owner: ipamNode(9), holdings: IPAM.Holdings(version: 1, addresses: []))]
        let h = IPAM.Holdings(version: 12, addresses: [0x0A2A_8001, 0x0A2A_8002, 0x0A2A_8005])
        return [.holdings(cluster: cluster, subnet: .default, registers: regs),
                .fullState(ring: ring, registers: regs),
                .holdingsWrite(cluster: cluster, subnet: .default, owner: ipamNode(9), holdings: h, pending: [0x0A2A_8005], entries: [ring.entries[1]]),
                .holdingsAck(cluster: cluster, owner: ipamNode(9), version: 12),
                .holdingsNack(cluster: cluster, subnet: .default, owner: ipamNode(9), version: 12, refused: [0x0A2A_8005], entries: [ring.entries[1]]),
                .takeover(cluster: cluster, subnet: .default, dead: ipamNode(9), entries: [ring.entries[1]]),
                .takeoverAck(cluster: cluster, subnet: .default, dead: ipamNode(9), holdings: h)]
    }

    func testEveryKindHasASample() {
        XCTAssertEqual(Set(samples().map(\.kind)), Set(IPAM.Message.Kind.allCases))
    }

    /// Every proper prefix of every message is refused (never a trap).
    func testEveryTruncationIsRefused() {
        for m in samples() {
            let bytes = m.encoded()
            for n in 0..<bytes.count {
                XCTAssertThrowsError(try IPAM.Message(decoding: Array(bytes.prefix(n))), "\(m.kind) cut at \(n)")
            }
        }
    }

    func testV2LayoutAndValidation() throws {
        // holdingsAck: 2 + 24 + 16 + 8 bytes.
        XCTAssertEqual(IPAM.Message.holdingsAck(cluster: cluster, owner: ipamNode(9), version: 12).encoded().count, 50)
        // A register: owner 16 + version 8 + flags 1 + count 4 + 4 per address.
        let one = IPAM.Message.holdings(cluster: cluster, subnet: .default,
                                        registers: [IPAM.OwnedHoldings(owner: ipamNode(3), holdings: IPAM.Holdings(version: 1, addresses: [0x0A2A_0001]))])
        XCTAssertEqual(one.encoded().count, 2 + 24 + 5 + 4 + 29 + 4)
        func refused(_ m: IPAM.Message, _ why: String, file: StaticString = #filePath, line: UInt = #line) {
            XCTAssertThrowsError(try IPAM.Message(decoding: m.encoded()), why, file: file, line: line)
        }
        let reg = { (a: [UInt32]) in IPAM.OwnedHoldings(owner: ipamNode(3), holdings: IPAM.Holdings(version: 1, addresses: a)) }
        refused(.holdings(cluster: cluster, subnet: .default, registers: [reg([5, 6])]), "addresses outside the subnet")
        var flags = one.encoded(); flags[2 + 24 + 5 + 4 + 24] = 2
        XCTAssertThrowsError(try IPAM.Message(decoding: flags)) { XCTAssertEqual($0 as? WireError, .invalid("register flags 2: only bit 0 (open) is defined")) }
        let open = IPAM.Message.holdings(cluster: cluster, subnet: .default,
                                         registers: [IPAM.OwnedHoldings(owner: ipamNode(3), holdings: IPAM.Holdings(version: 1, addresses: [], open: true))])
        XCTAssertEqual(try IPAM.Message(decoding: open.encoded()), open)
        refused(.holdings(cluster: cluster, subnet: .default, registers: [reg([0x0A2A_0002, 0x0A2A_0001])]), "unsorted addresses")
        refused(.holdings(cluster: cluster, subnet: .default, registers: [reg([0x0A2A_0002, 0x0A2A_0002])]), "duplicate addresses")
        refused(.holdings(cluster: cluster, subnet: .default, registers: [reg([]), reg([])]), "owners not strictly increasing")
        refused(.holdings(cluster: cluster, subnet: .default,
                          registers: [IPAM.OwnedHoldings(owner: ipamNode(3), holdings: IPAM.Holdings(version: IPAM.Ring.maxVersion + 1, addresses: []))]), "version too large")
        refused(.holdingsWrite(cluster: cluster, subnet: .default, owner: ipamNode(3), holdings: IPAM.Holdings(version: 1, addresses: [0x0A2A_0001]),
                               pending: [0x0A2A_0002], entries: []), "pending not in the register")
        // Huge counts with nothing behind them are refused before allocating.
        var w = ByteWriter(); w.u8(1); w.u8(7); w.nodeID(cluster.creator); w.u64(1); w.u32(0x0A2A_0000); w.u8(16); w.u32(0xFFFF)
        XCTAssertThrowsError(try IPAM.Message(decoding: w.bytes)) { XCTAssertEqual($0 as? WireError, .truncated("registers")) }
        var w2 = ByteWriter(); w2.u8(1); w2.u8(7); w2.nodeID(cluster.creator); w2.u64(1); w2.u32(0x0A2A_0000); w2.u8(16); w2.u32(0xFFFF_FFFF)
        XCTAssertThrowsError(try IPAM.Message(decoding: w2.bytes)) { XCTAssertEqual($0 as? WireError, .oversized("register count 4294967295")) }
        var w3 = ByteWriter(); w3.u8(1); w3.u8(7); w3.nodeID(cluster.creator); w3.u64(1); w3.u32(0x0A2A_0000); w3.u8(30)
        w3.u32(1); w3.nodeID(ipamNode(1)); w3.u64(1); w3.u8(0); w3.u32(5)
        XCTAssertThrowsError(try IPAM.Message(decoding: w3.bytes)) { XCTAssertEqual($0 as? WireError, .oversized("register count 5 (subnet 10.42.0.0/30)")) }
    }

    func testRoundTrip() throws {
        for m in samples() {
            let bytes = m.encoded()
            XCTAssertEqual(bytes[0], 1)
            XCTAssertEqual(bytes[1], m.kind.rawValue)
            XCTAssertEqual(try IPAM.Message(decoding: bytes), m)
        }
    }

    func testKnownLayout() throws {
        // ringRequest is exactly [version, type].
        XCTAssertEqual(IPAM.Message.ringRequest.encoded(), [1, 3])
        // A one-entry delta: 2 + 24 + 5 + 4 + 32 bytes.
        let d = samples()[1].encoded()
        XCTAssertEqual(d.count, 67)
        XCTAssertEqual(Array(d[26..<31]), [10, 42, 0, 0, 16])
        XCTAssertEqual(Array(d[31..<35]), [0, 0, 0, 1])
    }

    func testRejectsGarbage() {
        XCTAssertThrowsError(try IPAM.Message(decoding: [])) { XCTAssertEqual($0 as? WireError, .truncated("version")) }
        XCTAssertThrowsError(try IPAM.Message(decoding: [2, 1])) { XCTAssertEqual($0 as? WireError, .unsupportedVersion(2)) }
        XCTAssertThrowsError(try IPAM.Message(decoding: [1, 0])) { XCTAssertEqual($0 as? WireError, .unknownType(0)) }
        XCTAssertThrowsError(try IPAM.Message(decoding: [1, 3, 0])) { XCTAssertEqual($0 as? WireError, .trailingBytes(1)) }
        var full = samples()[0].encoded()
        full.removeLast()
        XCTAssertThrowsError(try IPAM.Message(decoding: full))
        // Huge entry count with no bytes behind it: refused before allocating.
        var w = ByteWriter(); w.u8(1); w.u8(2); w.nodeID(cluster.creator); w.u64(1); w.u32(0x0A2A_0000); w.u8(16); w.u32(0xFFFF_FFFF)
        XCTAssertThrowsError(try IPAM.Message(decoding: w.bytes)) { XCTAssertEqual($0 as? WireError, .oversized("entry count 4294967295")) }
        // Subnet with host bits, prefix /31, and a full ring not starting at the base.
        var s1 = samples()[1].encoded(); s1[29] = 1
        XCTAssertThrowsError(try IPAM.Message(decoding: s1))
        var s2 = samples()[1].encoded(); s2[30] = 31
        XCTAssertThrowsError(try IPAM.Message(decoding: s2))
        var s3 = samples()[0].encoded(); s3[38] = 5  // first token's last byte
        XCTAssertThrowsError(try IPAM.Message(decoding: s3))
        XCTAssertThrowsError(try IPAM.Message(decoding: [1, 4] + IPAM.Message.Kind.allZeroCluster + [0, 0, 0, 0]))
    }

    /// Deterministic fuzz: random mutations of valid messages never trap; whatever decodes
    /// re-encodes to the same bytes.
    func testFuzzDecoder() {
        var rng = DeterministicRNG(seed: 2026)
        let seeds = samples().map { $0.encoded() }
        var decoded = 0
        var kinds: Set<UInt8> = []
        for _ in 0..<40_000 {
            var b = seeds.randomElement(using: &rng)!
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                switch Int.random(in: 0..<4, using: &rng) {
                case 0 where !b.isEmpty: b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                case 1 where !b.isEmpty: b.removeLast(Int.random(in: 1...min(8, b.count), using: &rng))
                case 2: b.append(UInt8.random(in: 0...255, using: &rng))
                default: if b.count > 2 { b.remove(at: Int.random(in: 0..<b.count, using: &rng)) }
                }
            }
            if let m = try? IPAM.Message(decoding: b) {
                decoded += 1
                kinds.insert(m.kind.rawValue)
                XCTAssertEqual(m.encoded(), b)
            }
        }
        XCTAssertGreaterThan(decoded, 0)
        XCTAssertGreaterThanOrEqual(kinds.count, 10, "mutations of most kinds still decode: \(kinds.sorted())")
    }
}

extension IPAM.Message.Kind {
    static let allZeroCluster = [UInt8](repeating: 0, count: 24)
}
