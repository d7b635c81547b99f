import XCTest
@testable import WeftCore

/// The pure half of the kernel VXLAN data plane: desired state from the node's effects, and
/// the diff that turns the kernel's dump into it.
final class VXLANTests: XCTestCase {
    let a = NodeID(high: 0xA1A2_A3A4_A5A6_A7A8, low: 1)
    let b = NodeID(high: 0xB1B2_B3B4_B5B6_B7B8, low: 2)
    func ep(_ last: UInt32) -> Endpoint { Endpoint(address: .v4(0xC633_6400 | last), port: 7946) }
    func upsert(_ id: NodeID, _ last: UInt32) -> Node.Effect {
        .tunnelPeer(.upsert(id: id, publicKey: [], endpoint: ep(last), restarted: false))
    }

    func testMACIsLocallyAdministeredUnicastFromTheNodeID() {
        let m = VXLAN.mac(for: a)
        XCTAssertEqual(m.bytes, [0x02, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5])
        XCTAssertEqual(m.bytes[0] & 0x01, 0, "unicast")
        XCTAssertEqual(m.bytes[0] & 0x02, 0x02, "locally administered")
        XCTAssertNotEqual(VXLAN.mac(for: a), VXLAN.mac(for: b))
        XCTAssertEqual(m.description, "02:a1:a2:a3:a4:a5")
    }

    func testCIDRSplitting() {
        func s(_ x: UInt32, _ y: UInt32) -> [String] { VXLAN.cidrs(start: x, end: y).map { "\(IPAM.format($0.address))/\($0.prefixLength)" } }
        XCTAssertEqual(s(0x0A2A_0000, 0x0A2A_FFFF), ["10.42.0.0/16"])
        XCTAssertEqual(s(0x0A2A_0001, 0x0A2A_0006), ["10.42.0.1/32", "10.42.0.2/31", "10.42.0.4/31", "10.42.0.6/32"])
        XCTAssertEqual(s(0x0A2A_4000, 0x0A2A_BFFF), ["10.42.64.0/18", "10.42.128.0/18"])
        XCTAssertEqual(s(0, UInt32.max), ["0.0.0.0/0"])
        XCTAssertEqual(s(UInt32.max, UInt32.max), ["255.255.255.255/32"])
        XCTAssertEqual(s(5, 4), [])
        // Every split covers its range exactly, without overlap (a sweep of ranges).
        var rng = DeterministicRNG(seed: 3)
        for _ in 0..<500 {
            let x = UInt32(truncatingIfNeeded: rng.next()) & 0xFFFF, y = x + (UInt32(truncatingIfNeeded: rng.next()) & 0x3FFF)
            var next = UInt64(x)
            for (addr, len) in VXLAN.cidrs(start: x, end: y) {
                XCTAssertEqual(UInt64(addr), next)
                let size = UInt64(1) << (32 - UInt64(len))
                XCTAssertEqual(UInt64(addr) % size, 0, "aligned")
                next += size
            }
            XCTAssertEqual(next, UInt64(y) + 1)
        }
    }

    func testDesiredStateFollowsEffects() {
        var d = VXLAN.Desired()
        XCTAssertTrue(d.apply(upsert(a, 2)))
        XCTAssertFalse(d.apply(upsert(a, 2)), "the same upsert changes nothing")
        XCTAssertTrue(d.apply(upsert(b, 3)))
        XCTAssertTrue(d.apply(.routes([
            Node.Route(start: 0x0A2A_4000, end: 0x0A2A_7FFF, peer: a),
            Node.Route(start: 0x0A2A_8000, end: 0x0A2A_8005, peer: b),
            Node.Route(start: 0x0A2A_C000, end: 0x0A2A_FFFF, peer: a),
        ])))
        XCTAssertFalse(d.apply(.membersChanged))
        let f = d.forwarding
        XCTAssertEqual(f.fdb, [VXLAN.FDBEntry(mac: VXLAN.mac(for: a), vtep: 0xC633_6402), VXLAN.FDBEntry(mac: VXLAN.mac(for: b), vtep: 0xC633_6403)])
        // One neighbour per owner: the first address of its lowest range.
        XCTAssertEqual(f.neighbours, [VXLAN.Neighbour(address: 0x0A2A_4000, mac: VXLAN.mac(for: a)),
                                      VXLAN.Neighbour(address: 0x0A2A_8000, mac: VXLAN.mac(for: b))])
        XCTAssertEqual(Set(f.routes.map(\.description)), [
            "10.42.64.0/18 via 10.42.64.0 onlink", "10.42.192.0/18 via 10.42.64.0 onlink",
            "10.42.128.0/30 via 10.42.128.0 onlink", "10.42.128.4/31 via 10.42.128.0 onlink",
        ])
        // A dead member loses its FDB entry; its ranges keep their routes until the ring moves them.
        XCTAssertTrue(d.apply(.tunnelPeer(.remove(id: b))))
        XCTAssertEqual(d.forwarding.fdb.count, 1)
        XCTAssertEqual(d.forwarding.routes.count, 4)
        // An IPv6 underlay is not programmed (and is reported).
        XCTAssertTrue(d.apply(.tunnelPeer(.upsert(id: b, publicKey: [], endpoint: Endpoint(address: .v6([UInt8](repeating: 0, count: 15) + [1]), port: 1), restarted: false))))
        XCTAssertEqual(d.unsupported, [b])
        XCTAssertEqual(d.forwarding.fdb.count, 1)
        XCTAssertTrue(d.apply(.overlayAddress(0x0A2A_0001, prefixLength: 16)))
        XCTAssertEqual(d.overlay?.address, 0x0A2A_0001)
    }

    func testDiffOrdersRemovalsBeforeAdditionsAndIsEmptyWhenEqual() {
        var d = VXLAN.Desired()
        d.apply(upsert(a, 2)); d.apply(upsert(b, 3))
        d.apply(.routes([Node.Route(start: 0x0A2A_4000, end: 0x0A2A_7FFF, peer: a)]))
        let desired = d.forwarding
        XCTAssertEqual(VXLAN.diff(desired: desired, actual: desired), [])
        let fromNothing = VXLAN.diff(desired: desired, actual: .empty)
        XCTAssertEqual(fromNothing.map(\.description), [
            "fdb add \(VXLAN.mac(for: a)) dst 198.51.100.2", "fdb add \(VXLAN.mac(for: b)) dst 198.51.100.3",
            "neigh add 10.42.64.0 lladdr \(VXLAN.mac(for: a))", "route add 10.42.64.0/18 via 10.42.64.0 onlink",
        ])
        XCTAssertEqual(VXLAN.diff(desired: .empty, actual: desired).map(\.description), [
            "route del 10.42.64.0/18 via 10.42.64.0 onlink", "neigh del 10.42.64.0 lladdr \(VXLAN.mac(for: a))",
            "fdb del \(VXLAN.mac(for: a)) dst 198.51.100.2", "fdb del \(VXLAN.mac(for: b)) dst 198.51.100.3",
        ])

        // A donation: b takes 10.42.96.0/19 from a. Only the moved block changes; a stale
        // entry someone left in the kernel goes.
        d.apply(.routes([Node.Route(start: 0x0A2A_4000, end: 0x0A2A_5FFF, peer: a), Node.Route(start: 0x0A2A_6000, end: 0x0A2A_7FFF, peer: b)]))
        var actual = desired
        actual.fdb.insert(VXLAN.FDBEntry(mac: VXLAN.MAC([2, 0, 0, 0, 0, 9])!, vtep: 0xC633_6409))
        let ops = VXLAN.diff(desired: d.forwarding, actual: actual)
        XCTAssertEqual(ops.map(\.description), [
            "route del 10.42.64.0/18 via 10.42.64.0 onlink",
            "fdb del 02:00:00:00:00:09 dst 198.51.100.9",
            "neigh add 10.42.96.0 lladdr \(VXLAN.mac(for: b))",
            "route add 10.42.64.0/19 via 10.42.64.0 onlink", "route add 10.42.96.0/19 via 10.42.96.0 onlink",
        ])
        // Applying the operations to the actual state gives the desired state.
        var applied = actual
        for op in ops {
            switch op {
            case .addFDB(let e): applied.fdb.insert(e)
            case .removeFDB(let e): applied.fdb.remove(e)
            case .addNeighbour(let n): applied.neighbours.insert(n)
            case .removeNeighbour(let n): applied.neighbours.remove(n)
            case .addRoute(let r): applied.routes.insert(r)
            case .removeRoute(let r): applied.routes.remove(r)
            }
        }
        XCTAssertEqual(applied, d.forwarding)
    }

    func testValidation() {
        XCTAssertNil(VXLAN.validate(vni: 42, port: 4789, gossipPort: 7946))
        XCTAssertNotNil(VXLAN.validate(vni: 0, port: 4789, gossipPort: 7946))
        XCTAssertNotNil(VXLAN.validate(vni: 1 << 24, port: 4789, gossipPort: 7946))
        XCTAssertEqual(VXLAN.validate(vni: 42, port: 7946, gossipPort: 7946)?.contains("gossip port"), true)
    }

    func testAppStateCarriesTheDataPlaneOnlyWhenNotTheDefault() {
        let plain = Node.Instance.packAppState(ipam: [1, 2], dns: [3])
        XCTAssertEqual(Node.Instance.unpackAppState(plain)?.dataPlane, nil)
        XCTAssertEqual(Node.Instance.unpackAppState(plain)?.ipam, [1, 2])
        let vx = Node.Instance.packAppState(ipam: [1, 2], dns: [3], dataPlane: "vxlan")
        XCTAssertEqual(Node.Instance.unpackAppState(vx)?.dataPlane, "vxlan")
        XCTAssertEqual(Node.Instance.unpackAppState(vx)?.dns, [3])
        XCTAssertNil(Node.Instance.unpackAppState(vx.dropLast()), "a truncated part is malformed")
        XCTAssertNil(Node.Instance.unpackAppState(vx + [0]), "trailing bytes are malformed")
        XCTAssertNil(Node.Instance.unpackAppState(Node.Instance.packAppState(ipam: [], dns: [], dataPlane: String(repeating: "x", count: 33))))
    }
}
