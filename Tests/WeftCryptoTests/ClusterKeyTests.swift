import WeftCore
import XCTest

@testable import WeftCrypto

final class ClusterKeyTests: XCTestCase {
    override func setUpWithError() throws { try Sodium.initialize() }

    func testTextRoundTrip() throws {
        let key = ClusterKey.generate()
        let text = key.text
        XCTAssertTrue(text.hasPrefix("weft1:"))
        XCTAssertEqual(text.count, 50)
        XCTAssertEqual(try ClusterKey(text: text), key)
        XCTAssertEqual(try ClusterKey(text: text).text, text)
        XCTAssertNotEqual(ClusterKey.generate(), key)
    }

    func testWhitespaceTolerated() throws {
        let key = ClusterKey.generate()
        for wrapped in [key.text + "\n", "  " + key.text + " \r\n", "\t" + key.text + "\n\n"] {
            XCTAssertEqual(try ClusterKey(text: wrapped), key)
        }
    }

    func testBadTextRejectedWithMessage() {
        let good = ClusterKey.generate().text
        let body = String(good.dropFirst(6))
        let cases: [(String, String)] = [
            ("", "empty"),
            ("   \n", "empty"),
            (body, "does not start with"),
            ("weft2:" + body, "does not start with"),
            ("weft1:", "nothing after"),
            ("weft1:!!!!not-base64!!!!", "not valid base64"),
            ("weft1:" + String(body.dropLast(4)), "holds 30 bytes"),   // too short (but valid base64)
            ("weft1:" + "AAAA" + body, "holds 35 bytes"),             // too long
            ("weft1:" + body + "x", "not valid base64"),
            ("weft1:" + String(body.prefix(20)) + " " + String(body.dropFirst(20)), "not valid base64"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try ClusterKey(text: text), "accepted \(text.debugDescription)") { error in
                guard case .invalidKeyText(let why) = error as? CryptoError else { return XCTFail("got \(error)") }
                XCTAssertTrue(why.contains(expected), "\(text.debugDescription): \(why)")
                XCTAssertTrue(why.contains("weft keygen"), why)
                XCTAssertFalse(why.contains(body), "the error must not echo the key")
            }
        }
    }

    func testRawBytesLength() {
        XCTAssertThrowsError(try ClusterKey(bytes: SecretBytes([1]))) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeyLength(expected: 32, got: 1))
        }
    }

    func testClusterID() throws {
        let key = ClusterKey.generate()
        let id = key.clusterID
        XCTAssertEqual(id.count, 16)
        XCTAssertTrue(id.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertEqual(try ClusterKey(text: key.text).clusterID, id, "stable")
        XCTAssertNotEqual(ClusterKey.generate().clusterID, id)
        // Not a prefix of the key in any obvious encoding.
        let raw = try rawBytes(key)
        XCTAssertFalse(Hex.encode(raw).hasPrefix(id))
        XCTAssertFalse(key.text.contains(id))
        XCTAssertFalse(Hex.encode(raw).contains(id))
        XCTAssertFalse(key.description.contains(String(key.text.dropFirst(6))))
        XCTAssertTrue(key.description.contains(id))
    }

    func testDeriveKnownAnswerFromLibsodiumVectors() throws {
        // libsodium test/default/kdf.exp: master key 00 01 .. 1f, context "KDF test",
        // subkey id 32, output length 32.
        let master = try ClusterKey(bytes: SecretBytes((0..<32).map { UInt8($0) }))
        let sub = master.derive(context: "KDF test", subkeyID: 32)
        XCTAssertEqual(sub.withUnsafeBytes { Hex.encode($0) },
                       "154b291f11196737f8b7f491e4ca11764e0227d34f94295408a869f007aa8618")
    }

    func testDeriveSeparatesContextsAndIDs() {
        let key = ClusterKey.generate()
        let a = key.derive(context: "weftgosp", subkeyID: 1)
        XCTAssertEqual(a.count, 32)
        XCTAssertEqual(a, key.derive(context: "weftgosp", subkeyID: 1))
        XCTAssertNotEqual(a, key.derive(context: "weftgosp", subkeyID: 2))
        XCTAssertNotEqual(a, key.derive(context: "weftclid", subkeyID: 1))
        XCTAssertNotEqual(a, ClusterKey.generate().derive(context: "weftgosp", subkeyID: 1))
    }

    private func rawBytes(_ key: ClusterKey) throws -> [UInt8] {
        // Decode the printed form independently of ClusterKey (standard base64).
        let body = Array(key.text.dropFirst(6).utf8)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var bits = 0, acc = 0
        var out: [UInt8] = []
        for c in body where c != UInt8(ascii: "=") {
            let v = try XCTUnwrap(alphabet.firstIndex(of: c))
            acc = (acc << 6) | v
            bits += 6
            if bits >= 8 { bits -= 8; out.append(UInt8((acc >> bits) & 0xff)) }
        }
        XCTAssertEqual(out.count, 32)
        return out
    }
}
