import XCTest
@testable import WeftCore

final class MembershipCodecTests: XCTestCase {
    typealias M = Membership

    static func id(_ n: UInt64) -> NodeID { NodeID(high: 0xAB, low: n) }
    static func update(_ n: UInt64, state: M.MemberState = .alive, v6: Bool = false) -> M.Update {
        let ep = v6 ? Endpoint("[fd00::\(n)]:7946")! : Endpoint("10.0.0.\(n % 250 + 1):7946")!
        return M.Update(state: state, incarnation: 0x0102_0304_0506_0708 &+ n, id: id(n), from: id(n + 1),
                        address: ep, name: "host-\(n)-é", publicKey: [UInt8](repeating: UInt8(n & 0xff), count: 32),
                        signature: [UInt8](repeating: UInt8(0x40 | n & 0x3f), count: 64),
                        stateSignature: state == .alive ? [] : [UInt8](repeating: UInt8(0x80 | n & 0x3f), count: 64))
    }
    static var piggyback: M.Piggyback {
        M.Piggyback(updates: [update(1), update(2, state: .suspect, v6: true), update(3, state: .dead), update(4, state: .left)],
                    broadcasts: [M.AppBroadcast(origin: id(9), payload: [1, 2, 3]), M.AppBroadcast(origin: id(10), payload: [])])
    }
    static var allMessages: [M.Message] {
        [
            .ping(seq: 7, target: id(1), source: id(2), piggyback),
            .ping(seq: .max, target: id(1), source: id(2), M.Piggyback()),
            .pingReq(seq: 8, target: id(3), targetAddress: Endpoint("192.168.1.5:7000")!, source: id(4), wantNack: true, piggyback),
            .pingReq(seq: 9, target: id(3), targetAddress: Endpoint("[2001:db8::1]:7000")!, source: id(4), wantNack: false, M.Piggyback()),
            .ack(seq: 10, source: id(5), piggyback),
            .nack(seq: 11, source: id(6), M.Piggyback()),
            .gossip(source: id(7), piggyback),
        ]
    }
    static var pushPulls: [M.PushPull] {
        [
            M.PushPull(isReply: false, source: id(1), join: true, members: piggyback.updates, appState: [9, 8, 7]),
            M.PushPull(isReply: true, source: id(2), join: false, members: [], appState: []),
        ]
    }

    func testEveryMessageRoundTrips() throws {
        for m in Self.allMessages {
            let bytes = M.Codec.encode(m)
            XCTAssertEqual(bytes[0], M.wireVersion)
            XCTAssertEqual(bytes[1], m.type.rawValue)
            XCTAssertEqual(try M.Codec.decodeMessage(bytes), m)
            if m.piggyback.updates.isEmpty && m.piggyback.broadcasts.isEmpty {
                XCTAssertEqual(bytes.count, M.Codec.headerSize(m), "headerSize of \(m.type)")
                XCTAssertLessThanOrEqual(bytes.count, M.Codec.maxHeaderSize)
            }
        }
        for p in Self.pushPulls {
            XCTAssertEqual(try M.Codec.decodePushPull(M.Codec.encode(p), maxBytes: 1 << 20), p)
        }
    }

    func testTypeNumbersNeverChange() {
        XCTAssertEqual(M.MessageType.allCases.map(\.rawValue), [1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(M.wireVersion, 2)
        // A golden vector: ack seq 1 from id(5), nothing piggybacked.
        let golden: [UInt8] = [2, 3, 0, 0, 0, 1] + Self.id(5).bytes + [0, 0]
        XCTAssertEqual(M.Codec.encode(M.Message.ack(seq: 1, source: Self.id(5), M.Piggyback())), golden)
    }

    func testUpdateEncodedSizeIsExactForShortNames() {
        for u in [Self.update(1), Self.update(2, v6: true)] {
            var w = ByteWriter()
            M.Codec.writeUpdate(u, &w)
            XCTAssertEqual(w.count, u.encodedSize)
        }
    }

    func testEveryTruncationIsRejected() {
        for m in Self.allMessages {
            let bytes = M.Codec.encode(m)
            for n in 0..<bytes.count {
                XCTAssertThrowsError(try M.Codec.decodeMessage(Array(bytes.prefix(n))), "\(m.type) prefix \(n)")
            }
        }
        for p in Self.pushPulls {
            let bytes = M.Codec.encode(p)
            for n in 0..<bytes.count {
                XCTAssertThrowsError(try M.Codec.decodePushPull(Array(bytes.prefix(n)), maxBytes: 1 << 20))
            }
        }
    }

    func testGarbageIsRejectedWithTypedErrors() {
        let ping = M.Codec.encode(Self.allMessages[0])
        func err(_ b: [UInt8]) -> WireError? {
            do { _ = try M.Codec.decodeMessage(b, maxBytes: 1136); return nil } catch { return error }
        }
        XCTAssertEqual(err([]), .truncated("version"))
        XCTAssertEqual(err([1] + ping.dropFirst()), .unsupportedVersion(1))
        XCTAssertEqual(err([2, 99]), .unknownType(99))
        XCTAssertEqual(err(ping + [0]), .trailingBytes(1))
        XCTAssertEqual(err([UInt8](repeating: 1, count: 1137)), .oversized("datagram of 1137 bytes"))
        XCTAssertNotNil(err([2, 6] + [UInt8](repeating: 0, count: 30)))  // push-pull type in a datagram
        // A bad state byte inside the first update (offset: 2 + 4 + 16 + 16 + 1 count).
        var badState = ping; badState[39] = 9
        XCTAssertEqual(err(badState), .invalid("update state 9"))
        // Bad pingReq flags.
        var pr = M.Codec.encode(Self.allMessages[3]); pr[2 + 4 + 16 + 19 + 16] = 2
        XCTAssertEqual(err(pr), .invalid("pingReq flags 2"))
        // A name longer than 63 bytes.
        var w = ByteWriter()
        w.u8(2); w.u8(5); w.nodeID(Self.id(1)); w.u8(1)
        w.u8(0); w.u64(1); w.nodeID(Self.id(2)); w.nodeID(Self.id(2)); w.endpoint(Endpoint("1.2.3.4:5")!)
        w.shortBytes([UInt8](repeating: 65, count: 64)); w.raw([UInt8](repeating: 0, count: 32)); w.u8(0)
        XCTAssertEqual(err(w.bytes), .oversized("update name of 64 bytes"))
        // A push-pull announcing more members than its bytes can hold, and one over the size cap.
        var pp = ByteWriter()
        pp.u8(2); pp.u8(6); pp.nodeID(Self.id(1)); pp.u8(0); pp.u32(.max); pp.u32(0)
        XCTAssertThrowsError(try M.Codec.decodePushPull(pp.bytes, maxBytes: 1 << 20))
        let big = M.Codec.encode(Self.pushPulls[0])
        XCTAssertEqual(caught { try M.Codec.decodePushPull(big, maxBytes: big.count - 1) } as? WireError,
                       .oversized("push-pull of \(big.count) bytes"))
    }

    /// Random bytes and random mutations of valid messages: decoders throw or succeed, never trap,
    /// and whatever decodes re-encodes to the same bytes.
    func testDecoderFuzz() {
        var rng = DeterministicRNG(seed: 0xF022)
        let valid = Self.allMessages.map { M.Codec.encode($0) }
        var decoded = 0
        for round in 0..<30_000 {
            var b: [UInt8]
            if round % 2 == 0 {
                b = (0..<Int.random(in: 0...300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if round % 4 == 0 && b.count > 2 { b[0] = M.wireVersion; b[1] = UInt8.random(in: 1...5, using: &rng) }
            } else {
                b = valid[Int.random(in: 0..<valid.count, using: &rng)]
                for _ in 0..<Int.random(in: 1...4, using: &rng) {
                    b[Int.random(in: 0..<b.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
                }
            }
            if let m = try? M.Codec.decodeMessage(b) {
                decoded += 1
                XCTAssertEqual(M.Codec.encode(m), b, "seed=0xF022 round=\(round)")
            }
            _ = try? M.Codec.decodePushPull(b, maxBytes: 1 << 16)
        }
        XCTAssertGreaterThan(decoded, 100, "mutations should sometimes stay valid")
    }

    func testMathLogIsAccurate() {
        for x in [0.001, 0.5, 1, 2, 3, 10, 100, 1000, 12345.678] {
            let expected: Double
            switch x {
            case 1: expected = 0
            case 10: expected = 2.302585092994046
            case 100: expected = 4.605170185988092
            case 2: expected = 0.6931471805599453
            default: expected = M.Math.ln(x)
            }
            XCTAssertEqual(M.Math.ln(x), expected, accuracy: 1e-12)
            XCTAssertEqual(M.Math.ln(x) + M.Math.ln(3), M.Math.ln(x * 3), accuracy: 1e-9)
        }
        XCTAssertEqual(M.Math.log10(1000), 3, accuracy: 1e-12)
        XCTAssertEqual(M.Math.bitLength(100), 7)
        XCTAssertEqual(M.Math.bitLength(1), 1)
        XCTAssertEqual(M.Math.bitLength(0), 0)
    }

    func testSettingsValidate() throws {
        try M.Settings.default.validate()
        try M.Settings.fast.validate()
        var s = M.Settings.default
        s.probeTimeout = .seconds(2)
        XCTAssertThrowsError(try s.validate()) { e in
            let err = e as? M.SettingsError
            XCTAssertEqual(err?.field, "probeTimeout")
            XCTAssertTrue("\(e)".contains("probeTimeout") && "\(e)".contains("allowed"))
        }
        s = .default; s.maxPayloadBytes = 100
        XCTAssertEqual(caught { try s.validate() } as? M.SettingsError,
                       M.SettingsError(field: "maxPayloadBytes", allowed: "256 ... 65000"))
    }
}

func caught<T>(_ body: () throws -> T) -> (any Error)? {
    do { _ = try body(); return nil } catch { return error }
}
