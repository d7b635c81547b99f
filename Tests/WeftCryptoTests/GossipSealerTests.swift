import XCTest

@testable import WeftCrypto

final class GossipSealerTests: XCTestCase {
    override func setUpWithError() throws { try Sodium.initialize() }

    let key = ClusterKey.generate()
    let header: [UInt8] = [0x57, 0x01, 0x00, 0x2a]
    let plaintext = Array("ping seq=42 from node a".utf8)

    func testOverheadFitsTheDatagramBudget() {
        XCTAssertEqual(GossipSealer.overhead, 40)
        XCTAssertLessThanOrEqual(GossipSealer.overhead, 64)
        let sealer = GossipSealer(clusterKey: key)
        let big = Sodium.randomBytes(1136)
        XCTAssertEqual(sealer.seal(big, header: []).count, 1136 + GossipSealer.overhead)
        XCTAssertLessThanOrEqual(sealer.seal(big, header: Array(repeating: 0, count: 24)).count, 1200)
    }

    func testRoundTripAndLayout() throws {
        let sealer = GossipSealer(clusterKey: key)
        let sealed = sealer.seal(plaintext, header: header)
        XCTAssertEqual(sealed.count, header.count + 24 + plaintext.count + 16)
        XCTAssertEqual(Array(sealed.prefix(header.count)), header, "header travels in clear")
        XCTAssertNil(sealed.firstRange(of: plaintext), "plaintext must not appear")
        XCTAssertEqual(try sealer.open(sealed, headerLength: header.count), plaintext)
        // Another sealer from the same key (another node) opens it too.
        XCTAssertEqual(try GossipSealer(clusterKey: ClusterKey(text: key.text)).open(sealed, headerLength: header.count), plaintext)
    }

    func testEmptyPlaintextAndEmptyHeader() throws {
        let sealer = GossipSealer(clusterKey: key)
        XCTAssertEqual(try sealer.open(sealer.seal([], header: []), headerLength: 0), [])
        XCTAssertEqual(try sealer.open(sealer.seal([], header: header), headerLength: header.count), [])
        XCTAssertEqual(try sealer.open(sealer.seal(plaintext, header: []), headerLength: 0), plaintext)
    }

    func testSealsDifferEachTime() {
        let sealer = GossipSealer(clusterKey: key)
        let a = sealer.seal(plaintext, header: header), b = sealer.seal(plaintext, header: header)
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a[4..<28], b[4..<28], "nonces differ")
    }

    func testWrongKeyFails() {
        let sealed = GossipSealer(clusterKey: key).seal(plaintext, header: header)
        XCTAssertThrowsError(try GossipSealer(clusterKey: .generate()).open(sealed, headerLength: header.count)) {
            XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
        }
    }

    func testEveryFlippedBitFails() {
        let sealer = GossipSealer(clusterKey: key)
        let sealed = sealer.seal(plaintext, header: header)
        // Every byte: header (AD), nonce, ciphertext, tag.
        for i in 0..<sealed.count {
            for bit in [0, 7] {
                var bad = sealed
                bad[i] ^= UInt8(1 << bit)
                XCTAssertThrowsError(try sealer.open(bad, headerLength: header.count), "byte \(i) bit \(bit)") {
                    XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
                }
            }
        }
    }

    func testWrongHeaderLengthFails() {
        let sealer = GossipSealer(clusterKey: key)
        let sealed = sealer.seal(plaintext, header: header)
        for h in [0, 3, 5] {
            XCTAssertThrowsError(try sealer.open(sealed, headerLength: h)) {
                XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
            }
        }
    }

    func testTruncationFails() {
        let sealer = GossipSealer(clusterKey: key)
        let sealed = sealer.seal(plaintext, header: header)
        for cut in 1..<sealed.count {
            let short = Array(sealed.prefix(sealed.count - cut))
            XCTAssertThrowsError(try sealer.open(short, headerLength: header.count), "cut \(cut)") { error in
                let e = error as? CryptoError
                if short.count < header.count + GossipSealer.overhead {
                    guard case .malformed = e else { return XCTFail("cut \(cut): \(error)") }
                } else {
                    XCTAssertEqual(e, .authenticationFailed, "cut \(cut)")
                }
            }
        }
        XCTAssertThrowsError(try sealer.open([], headerLength: 0))
        XCTAssertThrowsError(try sealer.open(sealed, headerLength: -1)) { error in
            guard case .malformed = error as? CryptoError else { return XCTFail("\(error)") }
        }
        XCTAssertThrowsError(try sealer.open(sealed, headerLength: sealed.count + 1))
        XCTAssertThrowsError(try sealer.open(sealed, headerLength: Int.max)) { error in
            guard case .malformed = error as? CryptoError else { return XCTFail("\(error)") }
        }
    }
}
