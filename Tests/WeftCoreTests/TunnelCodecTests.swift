import WeftCore
import XCTest

final class TunnelCodecTests: XCTestCase {
    let key = Tunnel.PublicKey(bytes: Array(0..<32))!

    func testKindNumbersAreFixed() {
        XCTAssertEqual(Tunnel.MessageKind.handshakeInitiation.rawValue, 4)
        XCTAssertEqual(Tunnel.MessageKind.handshakeResponse.rawValue, 5)
        XCTAssertEqual(Tunnel.MessageKind.cookieReply.rawValue, 6)
        XCTAssertEqual(Tunnel.MessageKind.data.rawValue, 7)
        XCTAssertNil(Tunnel.kind(of: [1, 1]), "gossip kinds are not tunnel kinds")
        XCTAssertNil(Tunnel.kind(of: [2, 4]), "other versions are not routed")
        XCTAssertNil(Tunnel.kind(of: [1]))
    }

    func testOverheadAndMTU() {
        XCTAssertEqual(Tunnel.dataOverhead, 32)
        XCTAssertEqual(Tunnel.tunMTU(underlayMTU: 1500, ipv6Underlay: false), 1440)
        XCTAssertEqual(Tunnel.tunMTU(underlayMTU: 1500, ipv6Underlay: true), 1420)
    }

    func testInitiationRoundTrip() throws {
        let m = Tunnel.HandshakeInitiation(senderIndex: 0xDEAD_BEEF, ephemeral: key, encryptedStatic: Array(repeating: 1, count: 48),
                                           encryptedTimestamp: Array(repeating: 2, count: 28), mac1: Array(repeating: 3, count: 16),
                                           mac2: Array(repeating: 4, count: 16))
        let bytes = m.encoded
        XCTAssertEqual(bytes.count, 148)
        XCTAssertEqual(Array(bytes[0..<8]), [1, 4, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF])
        XCTAssertEqual(Array(bytes[116..<132]), Array(repeating: 3, count: 16))
        XCTAssertEqual(try Tunnel.HandshakeInitiation(decoding: bytes), m)
    }

    func testResponseRoundTrip() throws {
        let m = Tunnel.HandshakeResponse(senderIndex: 1, receiverIndex: 2, ephemeral: key, encryptedNothing: Array(repeating: 9, count: 16),
                                         mac1: Array(repeating: 3, count: 16), mac2: Array(repeating: 4, count: 16))
        let bytes = m.encoded
        XCTAssertEqual(bytes.count, 92)
        XCTAssertEqual(Array(bytes[0..<12]), [1, 5, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2])
        XCTAssertEqual(try Tunnel.HandshakeResponse(decoding: bytes), m)
    }

    func testCookieReplyRoundTrip() throws {
        let m = Tunnel.CookieReply(receiverIndex: 77, nonce: Array(repeating: 5, count: 24), encryptedCookie: Array(repeating: 6, count: 32))
        let bytes = m.encoded
        XCTAssertEqual(bytes.count, 64)
        XCTAssertEqual(try Tunnel.CookieReply(decoding: bytes), m)
    }

    func testDataHeaderRoundTrip() throws {
        var buffer = [UInt8](repeating: 0xFF, count: 40)
        let h = Tunnel.DataHeader(receiverIndex: 0x0102_0304, counter: 0x0A0B_0C0D_0E0F_1011)
        buffer.withUnsafeMutableBytes { h.write(to: $0) }
        XCTAssertEqual(Array(buffer[0..<16]), [1, 7, 0, 0, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x10, 0x11])
        XCTAssertEqual(try Tunnel.DataHeader(parsing: buffer), h)
    }

    func testRejectsBadInput() {
        let good = Tunnel.HandshakeInitiation(senderIndex: 1, ephemeral: key, encryptedStatic: Array(repeating: 1, count: 48),
                                              encryptedTimestamp: Array(repeating: 2, count: 28)).encoded
        XCTAssertThrowsError(try Tunnel.HandshakeInitiation(decoding: Array(good.dropLast()))) { XCTAssertEqual($0 as? WireError, .truncated("handshake initiation")) }
        XCTAssertThrowsError(try Tunnel.HandshakeInitiation(decoding: good + [0])) { XCTAssertEqual($0 as? WireError, .oversized("handshake initiation")) }
        var v = good; v[0] = 2
        XCTAssertThrowsError(try Tunnel.HandshakeInitiation(decoding: v)) { XCTAssertEqual($0 as? WireError, .unsupportedVersion(2)) }
        var k = good; k[1] = 99
        XCTAssertThrowsError(try Tunnel.HandshakeInitiation(decoding: k)) { XCTAssertEqual($0 as? WireError, .unknownType(99)) }
        var r = good; r[3] = 1
        XCTAssertThrowsError(try Tunnel.HandshakeInitiation(decoding: r)) { XCTAssertEqual($0 as? WireError, .invalid("reserved bytes")) }
        XCTAssertThrowsError(try Tunnel.HandshakeResponse(decoding: good)) // wrong size and kind
        XCTAssertThrowsError(try Tunnel.CookieReply(decoding: []))
        XCTAssertThrowsError(try Tunnel.DataHeader(parsing: [1, 7, 0, 0] + Array(repeating: 0, count: 27))) { XCTAssertEqual($0 as? WireError, .truncated("data packet")) }
        XCTAssertNoThrow(try Tunnel.DataHeader(parsing: [1, 7, 0, 0] + Array(repeating: 0, count: 28)), "empty keepalive is the minimum")
        XCTAssertThrowsError(try Tunnel.DataHeader(parsing: [1, 7, 0, 0] + Array(repeating: 0, count: 65_535 + 29))) { XCTAssertEqual($0 as? WireError, .oversized("data packet")) }
        XCTAssertThrowsError(try Tunnel.DataHeader(parsing: [1, 4, 0, 0] + Array(repeating: 0, count: 28)))
    }

    /// Random bytes (and random bytes with a plausible header) never trap a decoder or an
    /// instance, and never make an instance reply.
    func testFuzzDecodersAndInstance() {
        var rng = DeterministicRNG(seed: 0xF022)
        var pair = TunnelPair()
        pair.establish(now: at(1))
        for i in 0..<20_000 {
            let length = Int.random(in: 0...200, using: &rng)
            var bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            if i % 2 == 0 && length >= 2 {
                bytes[0] = 1
                bytes[1] = UInt8.random(in: 4...7, using: &rng)
                if length >= 4 { bytes[2] = 0; bytes[3] = 0 }
                if i % 4 == 0 {
                    let sizes = [148, 92, 64, 32, 48]
                    let n = sizes[Int.random(in: 0..<sizes.count, using: &rng)]
                    bytes = [1, bytes[1], 0, 0] + (0..<(n - 4)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                }
            }
            _ = try? Tunnel.HandshakeInitiation(decoding: bytes)
            _ = try? Tunnel.HandshakeResponse(decoding: bytes)
            _ = try? Tunnel.CookieReply(decoding: bytes)
            _ = try? Tunnel.DataHeader(parsing: bytes)
            for underLoad in [false, true] {
                let out = TunnelPair.receive(bytes, by: &pair.b, from: TunnelPair.endA, now: at(2), underLoad: underLoad)
                XCTAssertTrue(out.sent.isEmpty, "garbage got a reply (case \(i)): \(bytes)")
                XCTAssertTrue(out.delivered.isEmpty)
                XCTAssertEqual(out.drops.count, 1, "every garbage packet is dropped with exactly one reason")
            }
        }
    }
}
