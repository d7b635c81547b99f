import XCTest
@testable import WeftCNI

final class NamingTests: XCTestCase {
    func testHostInterfaceIsShortStableAndDistinct() {
        let a = Naming.hostInterface(containerID: String(repeating: "ab", count: 32), ifname: "eth0")
        XCTAssertEqual(a, Naming.hostInterface(containerID: String(repeating: "ab", count: 32), ifname: "eth0"))
        XCTAssertEqual(a.count, 13)
        XCTAssertTrue(a.hasPrefix("wft"))
        XCTAssertNil(Naming.invalidInterfaceName(a))
        XCTAssertNotEqual(a, Naming.hostInterface(containerID: String(repeating: "ab", count: 32), ifname: "eth1"))
        var seen = Set<String>()
        for i in 0..<5000 { seen.insert(Naming.hostInterface(containerID: "c\(i)", ifname: "eth0")) }
        XCTAssertEqual(seen.count, 5000)
    }

    func testHandleRoundTripAndForeignHandles() {
        let h = Naming.handle(network: "net", containerID: "abc.1-2", ifname: "eth0")
        XCTAssertEqual(h, "cni:net:abc.1-2:eth0")
        let p = Naming.parseHandle(h)
        XCTAssertEqual(p?.network, "net")
        XCTAssertEqual(p?.containerID, "abc.1-2")
        XCTAssertEqual(p?.ifname, "eth0")
        XCTAssertNil(Naming.parseHandle("weft:overlay"))
        XCTAssertNil(Naming.parseHandle("cni:a:b"))
        XCTAssertNil(Naming.parseHandle("cni:a::c"))
        XCTAssertLessThanOrEqual(Naming.handle(network: String(repeating: "n", count: 32), containerID: String(repeating: "c", count: 200), ifname: "fifteencharsxxx").utf8.count, 256)
    }

    func testNameRules() {
        XCTAssertNil(Naming.invalidInterfaceName("eth0"))
        XCTAssertNotNil(Naming.invalidInterfaceName(".."))
        XCTAssertNotNil(Naming.invalidInterfaceName("a b"))
        XCTAssertNotNil(Naming.invalidInterfaceName("a:b"))
        XCTAssertNil(Naming.invalidContainerID(String(repeating: "f", count: 64)))
        XCTAssertNotNil(Naming.invalidContainerID("a:b"))
        XCTAssertNotNil(Naming.invalidContainerID("_a"))
        XCTAssertNotNil(Naming.invalidNetworkName(""))
    }
}

final class JSONTests: XCTestCase {
    func testRoundTripKeepsOrderAndEscapes() throws {
        let text = #"{"b":1,"a":[true,false,null,"x\"y\\z\n\u00e9\ud83d\ude00"],"c":{"d":-2.5,"e":1e3}}"#
        let v = try JSON.parse(text)
        XCTAssertEqual(v["a"]?.arrayValue?[3], .string("x\"y\\z\né😀"))
        XCTAssertEqual(v["c"]?["e"]?.intValue, 1000)
        XCTAssertEqual(v.text, #"{"b":1,"a":[true,false,null,"x\"y\\z\né😀"],"c":{"d":-2.5,"e":1000}}"#)
        XCTAssertEqual(try JSON.parse(v.text), v)
    }

    func testRejectsMalformed() {
        for bad in ["", "{", "{\"a\"}", "[1,]", "tru", "{\"a\":1}x", "\"\u{01}\"", "\"\\ud800\""] {
            XCTAssertThrowsError(try JSON.parse(bad), bad)
        }
    }

    func testCIDR() {
        XCTAssertEqual(IPv4CIDR("10.42.3.7/16")?.network.description, "10.42.0.0/16")
        XCTAssertEqual(IPv4CIDR("0.0.0.0/0"), .defaultRoute)
        XCTAssertNil(IPv4CIDR("10.42.0.1/33"))
        XCTAssertNil(IPv4("10.42.0"))
        XCTAssertNil(IPv4("1.2.3.256"))
    }
}
