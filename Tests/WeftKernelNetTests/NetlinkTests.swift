import WeftCore
import XCTest
@testable import WeftKernelNet

/// The rtnetlink codec: requests byte for byte as the kernel reads them (host order is little
/// endian on every platform Weft builds for), and decoding that never traps on bad input.
final class NetlinkTests: XCTestCase {
    let mac = VXLAN.MAC([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE])!

    func testHeaderAndFDBRequestLayout() {
        let entry = VXLAN.FDBEntry(mac: mac, vtep: 0xC633_6402)  // 198.51.100.2
        let bytes = Netlink.fdb(true, index: 7, entry: entry).bytes(sequence: 9)
        // nlmsghdr: len 48, RTM_NEWNEIGH (28), REQUEST|ACK|CREATE|REPLACE (0x505), seq 9, pid 0
        XCTAssertEqual(Array(bytes[0..<16]), [48, 0, 0, 0, 28, 0, 0x05, 0x05, 9, 0, 0, 0, 0, 0, 0, 0])
        // ndmsg: AF_BRIDGE, pad, pad16, ifindex 7, state NUD_PERMANENT, flags NTF_SELF, type 0
        XCTAssertEqual(Array(bytes[16..<28]), [7, 0, 0, 0, 7, 0, 0, 0, 0x80, 0, 0x02, 0])
        // NDA_LLADDR (2): len 10, 6 bytes + 2 padding; NDA_DST (1): len 8, network order
        XCTAssertEqual(Array(bytes[28..<40]), [10, 0, 2, 0, 0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0, 0])
        XCTAssertEqual(bytes.count, 40 + 8)
        XCTAssertEqual(Array(bytes[40..<48]), [8, 0, 1, 0, 198, 51, 100, 2])
    }

    func testDeleteUsesDelTypeWithoutCreateFlags() {
        let r = Netlink.route(false, index: 3, route: VXLAN.Route(destination: 0x0A2A_4000, prefixLength: 18, gateway: 0x0A2A_4000))
        XCTAssertEqual(r.type, Netlink.RTM_DELROUTE)
        XCTAssertEqual(r.flags, Netlink.NLM_F_REQUEST | Netlink.NLM_F_ACK)
        let add = Netlink.route(true, index: 3, route: VXLAN.Route(destination: 0x0A2A_4000, prefixLength: 18, gateway: 0x0A2A_4000))
        XCTAssertEqual(add.type, Netlink.RTM_NEWROUTE)
        XCTAssertNotEqual(add.flags & Netlink.NLM_F_REPLACE, 0)
        // rtmsg: AF_INET, /18, src 0, tos 0, main table, protocol 241, universe, unicast, ONLINK
        XCTAssertEqual(Array(add.body[0..<12]), [2, 18, 0, 0, 254, 241, 0, 1, 4, 0, 0, 0])
    }

    func testCreateVXLANNestsLinkInfo() throws {
        let req = Netlink.createVXLAN(name: "weft0", vni: 42, port: 4789, local: 0xC633_6401, mtu: 1450, mac: mac)
        XCTAssertEqual(req.flags, Netlink.NLM_F_REQUEST | Netlink.NLM_F_ACK | Netlink.NLM_F_CREATE | Netlink.NLM_F_EXCL)
        let attrs = try Netlink.attributes(req.body, skip: 16)
        XCTAssertEqual(attrs[Netlink.IFLA_IFNAME], Array("weft0".utf8) + [0])
        XCTAssertEqual(attrs[Netlink.IFLA_MTU], [0xAA, 0x05, 0, 0])
        XCTAssertEqual(attrs[Netlink.IFLA_ADDRESS], mac.bytes)
        let info = try Netlink.attributes(try XCTUnwrap(attrs[Netlink.IFLA_LINKINFO]), skip: 0)
        XCTAssertEqual(info[Netlink.IFLA_INFO_KIND], Array("vxlan".utf8))
        let data = try Netlink.attributes(try XCTUnwrap(info[Netlink.IFLA_INFO_DATA]), skip: 0)
        XCTAssertEqual(data[Netlink.IFLA_VXLAN_ID], [42, 0, 0, 0])
        XCTAssertEqual(data[Netlink.IFLA_VXLAN_PORT], [0x12, 0xB5], "port in network order")
        XCTAssertEqual(data[Netlink.IFLA_VXLAN_LOCAL], [198, 51, 100, 1])
        XCTAssertEqual(data[Netlink.IFLA_VXLAN_LEARNING], [0])
    }

    /// A dump as the kernel sends it: our route, someone else's, an ACK-less DONE.
    func testDecodesRouteAndNeighbourDumps() throws {
        let ours = VXLAN.Route(destination: 0x0A2A_8000, prefixLength: 17, gateway: 0x0A2A_8000)
        var buffer = Netlink.route(true, index: 5, route: ours).bytes(sequence: 1)
        buffer[4] = UInt8(Netlink.RTM_NEWROUTE)  // answers carry RTM_NEWROUTE
        var other = Netlink.route(true, index: 5, route: ours)
        other.body[5] = 4  // proto static: not ours
        buffer += other.bytes(sequence: 1)
        buffer += Netlink.route(true, index: 6, route: ours).bytes(sequence: 1)  // another device
        let done = Netlink.Request(type: Netlink.NLMSG_DONE, flags: 0, body: [0, 0, 0, 0]).bytes(sequence: 1)
        buffer += done
        let messages = try Netlink.messages(buffer)
        XCTAssertEqual(messages.count, 4)
        XCTAssertEqual(try Netlink.ownRoute(messages[0], index: 5), ours)
        XCTAssertNil(try Netlink.ownRoute(messages[1], index: 5), "another protocol's route is not ours")
        XCTAssertNil(try Netlink.ownRoute(messages[2], index: 5), "another device's route is not ours")
        XCTAssertEqual(messages[3].type, Netlink.NLMSG_DONE)

        let n = VXLAN.Neighbour(address: 0x0A2A_8000, mac: mac)
        let nm = try Netlink.messages(Netlink.neighbour(true, index: 5, entry: n).bytes(sequence: 2))
        let decoded = try XCTUnwrap(try Netlink.ownNeighbour(nm[0], index: 5))
        XCTAssertEqual(decoded.family, Netlink.AF_INET)
        XCTAssertEqual(decoded.address, n.address)
        XCTAssertEqual(decoded.mac, mac)
        let fm = try Netlink.messages(Netlink.fdb(true, index: 5, entry: VXLAN.FDBEntry(mac: mac, vtep: 0xC633_6403)).bytes(sequence: 3))
        let fdb = try XCTUnwrap(try Netlink.ownNeighbour(fm[0], index: 5))
        XCTAssertEqual(fdb.family, Netlink.AF_BRIDGE)
        XCTAssertEqual(fdb.address, 0xC633_6403)
        XCTAssertNil(try Netlink.ownNeighbour(fm[0], index: 4))
    }

    func testErrorAndLinkDecoding() throws {
        var w = Netlink.Writer()
        w.i32(-17)  // -EEXIST
        let err = try Netlink.messages(Netlink.Request(type: Netlink.NLMSG_ERROR, flags: 0, body: w.bytes + [UInt8](repeating: 0, count: 16)).bytes(sequence: 4))
        XCTAssertEqual(try Netlink.errorCode(err[0]), 17)

        var link = Netlink.Writer()
        link.u8(0); link.u8(0); link.u16(1); link.i32(12); link.u32(1); link.u32(0)
        link.attribute(Netlink.IFLA_IFNAME, string: "weft0")
        link.attribute(Netlink.IFLA_MTU, u32: 1450)
        var stats = Netlink.Writer()
        for v in [UInt64(10), 20, 1000, 2000, 0, 0, 1, 2] { stats.u32(UInt32(v & 0xFFFF_FFFF)); stats.u32(UInt32(v >> 32)) }
        link.attribute(Netlink.IFLA_STATS64, stats.bytes + [UInt8](repeating: 0, count: 8 * 16))
        let m = try Netlink.messages(Netlink.Request(type: Netlink.RTM_NEWLINK, flags: 0, body: link.bytes).bytes(sequence: 5))
        let l = try Netlink.link(m[0])
        XCTAssertEqual(l.index, 12)
        XCTAssertEqual(l.name, "weft0")
        XCTAssertEqual(l.mtu, 1450)
        XCTAssertEqual(l.counters?.rxPackets, 10)
        XCTAssertEqual(l.counters?.txBytes, 2000)
        XCTAssertEqual(l.counters?.txDropped, 2)
    }

    func testMalformedInputIsAnErrorNotATrap() {
        // Length below the header, beyond the buffer, a short trailing piece.
        XCTAssertThrowsError(try Netlink.messages([4, 0, 0, 0] + [UInt8](repeating: 0, count: 12)))
        XCTAssertThrowsError(try Netlink.messages([200, 0, 0, 0] + [UInt8](repeating: 0, count: 12)))
        XCTAssertThrowsError(try Netlink.messages([UInt8](repeating: 0, count: 5)))
        XCTAssertThrowsError(try Netlink.attributes([3, 0, 1, 0], skip: 0), "attribute shorter than its header")
        XCTAssertThrowsError(try Netlink.attributes([255, 0, 1, 0, 1], skip: 0), "attribute longer than the buffer")
        XCTAssertThrowsError(try Netlink.attributes([1, 2], skip: 12), "payload shorter than its fixed header")
        let short = Netlink.Message(type: Netlink.RTM_NEWROUTE, flags: 0, sequence: 0, payload: [2, 3])
        XCTAssertThrowsError(try Netlink.ownRoute(short, index: 1))
        XCTAssertThrowsError(try Netlink.errorCode(Netlink.Message(type: 2, flags: 0, sequence: 0, payload: [1])))

        // Random buffers and every truncation of a real message: an answer or an error, never a trap.
        var rng = DeterministicRNG(seed: 7)
        let real = Netlink.createVXLAN(name: "weft0", vni: 42, port: 4789, local: 1, mtu: 1450, mac: mac).bytes(sequence: 1)
        for cut in 0...real.count {
            let piece = Array(real[0..<cut])
            if let ms = try? Netlink.messages(piece) { for m in ms { _ = try? Netlink.link(m) } }
        }
        for _ in 0..<5000 {
            let n = Int(rng.next() % 96)
            var b = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            if b.count >= 4, rng.next() % 2 == 0 { b[0] = UInt8(b.count); b[1] = 0; b[2] = 0; b[3] = 0 }
            if let ms = try? Netlink.messages(b) {
                for m in ms {
                    _ = try? Netlink.link(m)
                    _ = try? Netlink.ownRoute(m, index: 1)
                    _ = try? Netlink.ownNeighbour(m, index: 1)
                    _ = try? Netlink.errorCode(m)
                }
            }
            _ = try? Netlink.attributes(b, skip: 0)
        }
    }
}
