import XCTest
@testable import WeftCore

final class IPAMSubnetTests: XCTestCase {
    func testParsesDefault() throws {
        let s = try IPAM.Subnet(parsing: "10.42.0.0/16")
        XCTAssertEqual(s.base, 0x0A2A_0000)
        XCTAssertEqual(s.size, 65536)
        XCTAssertEqual(s.description, "10.42.0.0/16")
        XCTAssertTrue(s.contains(0x0A2A_FFFF))
        XCTAssertFalse(s.contains(0x0A2B_0000))
        XCTAssertFalse(s.contains(0x0A29_FFFF))
        XCTAssertTrue(s.isReserved(0x0A2A_0000))
        XCTAssertTrue(s.isReserved(0x0A2A_FFFF))
        XCTAssertFalse(s.isReserved(0x0A2A_0001))
    }

    func testEdgePrefixes() throws {
        XCTAssertEqual(try IPAM.Subnet(parsing: "10.0.0.0/8").size, 1 << 24)
        XCTAssertEqual(try IPAM.Subnet(parsing: "10.0.0.4/30").size, 4)
        let top = try IPAM.Subnet(parsing: "255.0.0.0/8")
        XCTAssertEqual(top.end, 1 << 32)
        XCTAssertTrue(top.contains(UInt32.max))
    }

    func testRejectsMalformed() {
        for text in ["", "10.42.0.0", "10.42.0.0/", "/16", "10.42.0/16", "10.42.0.0/16/1", "10.42.0.256/24",
                     "10.42.0.0/x", "10.42.0.0/-8", "10.42.0.0/016", "a.b.c.d/16", " 10.42.0.0/16", "::1/64"] {
            XCTAssertThrowsError(try IPAM.Subnet(parsing: text), text) { e in
                guard case .malformed = e as? IPAM.SubnetError else { return XCTFail("\(text): \(e)") }
                XCTAssertTrue("\(e)".contains("a.b.c.d/n"))
            }
        }
    }

    func testRejectsPrefixOutsideRange() {
        for (text, n) in [("10.0.0.0/7", 7), ("10.42.0.0/31", 31), ("10.42.0.1/32", 32), ("0.0.0.0/0", 0)] {
            XCTAssertThrowsError(try IPAM.Subnet(parsing: text)) { e in
                XCTAssertEqual(e as? IPAM.SubnetError, .prefixOutOfRange(n))
                XCTAssertTrue("\(e)".contains("/8 to /30"), "\(e)")
            }
        }
    }

    func testRejectsHostBits() {
        XCTAssertThrowsError(try IPAM.Subnet(parsing: "10.42.1.0/16")) { e in
            XCTAssertEqual(e as? IPAM.SubnetError, .hostBitsSet(given: "10.42.1.0", network: "10.42.0.0"))
            XCTAssertTrue("\(e)".contains("10.42.0.0"))
        }
        XCTAssertThrowsError(try IPAM.Subnet(base: 0x0A2A_0001, prefixLength: 30))
    }
}
