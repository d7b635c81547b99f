import WeftCore
import WeftDataPlane
import XCTest

final class RouteAndClassifyTests: XCTestCase {
    let p1 = NodeID(high: 1, low: 1), p2 = NodeID(high: 2, low: 2), p3 = NodeID(high: 3, low: 3)

    func testRouteLookupRangesAndMisses() {
        let t = RouteTable([
            RouteEntry(start: ipv4("10.42.128.0"), end: ipv4("10.42.255.255"), peer: p2),
            RouteEntry(start: ipv4("10.42.0.0"), end: ipv4("10.42.63.255"), peer: p1),
            RouteEntry(start: ipv4("10.42.100.0"), end: ipv4("10.42.100.0"), peer: p3),  // single address
            RouteEntry(start: ipv4("10.42.9.9"), end: ipv4("10.42.9.8"), peer: p3),      // start > end: ignored
        ])
        XCTAssertEqual(t.count, 3)
        XCTAssertEqual(t.lookup(ipv4("10.42.0.0")), p1, "first address of a range")
        XCTAssertEqual(t.lookup(ipv4("10.42.63.255")), p1, "last address (inclusive end)")
        XCTAssertEqual(t.lookup(ipv4("10.42.9.9")), p1, "the inverted entry did not shadow anything")
        XCTAssertNil(t.lookup(ipv4("10.42.64.0")), "gap after a range")
        XCTAssertNil(t.lookup(ipv4("10.42.99.255")))
        XCTAssertEqual(t.lookup(ipv4("10.42.100.0")), p3)
        XCTAssertNil(t.lookup(ipv4("10.42.100.1")))
        XCTAssertEqual(t.lookup(ipv4("10.42.200.7")), p2)
        XCTAssertEqual(t.lookup(ipv4("10.42.255.255")), p2)
        XCTAssertNil(t.lookup(ipv4("10.41.255.255")), "below every range")
        XCTAssertNil(t.lookup(ipv4("10.43.0.0")), "above every range")
        XCTAssertNil(RouteTable().lookup(ipv4("10.42.0.1")), "empty table")
        let edges = RouteTable([RouteEntry(start: 0, end: 0, peer: p1), RouteEntry(start: .max, end: .max, peer: p2)])
        XCTAssertEqual(edges.lookup(0), p1)
        XCTAssertEqual(edges.lookup(.max), p2)
        XCTAssertNil(edges.lookup(1))
    }

    func testRouteLookupAgreesWithLinearScan() {
        var rng = DeterministicRNG(seed: 42)
        // Non-overlapping random ranges.
        var routes: [RouteEntry] = []
        var cursor: UInt32 = 1000
        for i in 0..<200 {
            let gap = UInt32(rng.next() % 300), size = UInt32(rng.next() % 500)
            cursor += gap
            routes.append(RouteEntry(start: cursor, end: cursor + size, peer: NodeID(high: UInt64(i), low: 0)))
            cursor += size + 1
        }
        let table = RouteTable(routes.shuffled(using: &rng))
        for _ in 0..<5000 {
            let a = UInt32(rng.next() % UInt64(cursor + 2000))
            let expected = routes.first { $0.start <= a && a <= $0.end }?.peer
            XCTAssertEqual(table.lookup(a), expected, "address \(a)")
        }
    }

    func testRoutesSwapOnTheDataPlane() throws {
        let dp = try DataPlane(config: DataPlaneConfig(listen: Endpoint(address: .v4(0x7f00_0001), port: 0), tun: nil))
        defer { dp.stop() }
        dp.updateRoutes([RouteEntry(start: 10, end: 20, peer: p1)])
        XCTAssertEqual(dp.routes.map(\.peer), [p1])
        dp.updateRoutes([RouteEntry(start: 30, end: 40, peer: p2), RouteEntry(start: 0, end: 5, peer: p3)])
        XCTAssertEqual(dp.routes.map(\.peer), [p3, p2], "replaced wholesale and sorted by start")
        dp.updateRoutes([])
        XCTAssertTrue(dp.routes.isEmpty)
    }

    func testClassification() {
        XCTAssertEqual(PacketClass.classify([]), .control)
        XCTAssertEqual(PacketClass.classify([1]), .control)
        for kind: UInt8 in [1, 2, 3, 4, 5, 6, 16, 8, 255, 0] {
            XCTAssertEqual(PacketClass.classify([1, kind] + [UInt8](repeating: 0, count: 40)), .control, "kind \(kind)")
        }
        XCTAssertEqual(PacketClass.classify([2, 7] + [UInt8](repeating: 0, count: 40)), .control, "other version")
        var data: [UInt8] = [1, 7, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 1, 2] + [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(PacketClass.classify(data), .data(receiverIndex: 0xdead_beef, counter: 0x0102))
        XCTAssertEqual(PacketClass.classify(Array(data.prefix(31))), .malformedData, "shorter than header + tag")
        data[2] = 1
        XCTAssertEqual(PacketClass.classify(data), .malformedData, "reserved bytes")
        // The classifier agrees with the core's header parser on the happy path.
        let s = sealed([1, 2, 3], key: Tunnel.SendKey(secret: Tunnel.Secret([UInt8](repeating: 7, count: 32))),
                       receiverIndex: 77, counter: 99)
        let h = try? Tunnel.DataHeader(parsing: s)
        XCTAssertEqual(PacketClass.classify(s), .data(receiverIndex: h!.receiverIndex, counter: h!.counter))
    }

    func testInnerPacketCheck() {
        let ok = icmpEcho(from: ipv4("10.42.1.1"), to: ipv4("10.42.2.1"))
        XCTAssertEqual(InnerPacket.check(ok), .ipv4(destination: ipv4("10.42.2.1")))
        XCTAssertEqual(InnerPacket.check(ok + [0, 0]), .ipv4(destination: ipv4("10.42.2.1")), "trailing padding is fine")
        XCTAssertEqual(InnerPacket.check([0x60] + [UInt8](repeating: 0, count: 39)), .notIPv4, "IPv6")
        XCTAssertEqual(InnerPacket.check([]), .notIPv4)
        XCTAssertEqual(InnerPacket.check(Array(ok.prefix(19))), .malformed, "short header")
        XCTAssertEqual(InnerPacket.check(Array(ok.prefix(40))), .malformed, "total length beyond the packet")
        var badIHL = ok; badIHL[0] = 0x44
        XCTAssertEqual(InnerPacket.check(badIHL), .malformed, "IHL < 5")
    }

    func testDropNamesAreStable() {
        XCTAssertEqual(DataPlaneDrop.allCases.map(\.name), [
            "no-route", "no-session", "session-expired", "replayed-packet", "authentication-failed", "tun-write-failed",
            "tun-read-failed", "no-tun", "malformed", "not-ipv4", "too-large", "udp-send-failed", "udp-receive-failed",
            "wrong-inner-source",
        ])
        let c = DataPlaneCounters()
        XCTAssertEqual(c.drops("replayed-packet"), 0)
    }
}
