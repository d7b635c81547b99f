import WeftCore
import XCTest

@testable import WeftCrypto

/// The pair keys and tags that authenticate point-to-point IPAM frames
/// (`Membership.ClaimSigner.ed25519(identity:)`).
final class PairKeyTests: XCTestCase {
    func testBothEndsDeriveTheSameKeyAndNoOtherPairDoes() throws {
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate(), c = IdentityKeyPair.generate()
        let sa = Membership.ClaimSigner.ed25519(identity: a), sb = Membership.ClaimSigner.ed25519(identity: b)
        let sc = Membership.ClaimSigner.ed25519(identity: c)
        let ab = try XCTUnwrap(sa.pairKey(b.publicKey.bytes)), ba = try XCTUnwrap(sb.pairKey(a.publicKey.bytes))
        XCTAssertEqual(ab, ba, "a and b derive one key")
        XCTAssertEqual(ab.count, 32)
        let ac = try XCTUnwrap(sa.pairKey(c.publicKey.bytes)), cb = try XCTUnwrap(sc.pairKey(b.publicKey.bytes))
        XCTAssertNotEqual(ab, ac)
        XCTAssertNotEqual(ab, cb, "c cannot compute the key a and b share")
        // Not the raw X25519 output: the tunnel handshake's static DH of the same identities.
        let raw = try XCTUnwrap(X25519.sharedSecret(secretKey: a.x25519SecretKey(), publicKey: XCTUnwrap(b.publicKey.x25519())))
        raw.withUnsafeBytes { XCTAssertNotEqual(Array($0), ab) }
    }

    func testTagsCheckOnlyUnderTheirKeyAndMessage() throws {
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate(), c = IdentityKeyPair.generate()
        let sa = Membership.ClaimSigner.ed25519(identity: a), sb = Membership.ClaimSigner.ed25519(identity: b)
        let key = try XCTUnwrap(sa.pairKey(b.publicKey.bytes))
        let other = try XCTUnwrap(sa.pairKey(c.publicKey.bytes))
        let message = Array("weft-ipam-frame-v2\u{0} a request".utf8)
        let tag = sa.mac(key, message)
        XCTAssertEqual(tag.count, Membership.ClaimSigner.macBytes)
        XCTAssertTrue(sb.checkMAC(key, message, tag), "b checks a's tag with the key it derives")
        XCTAssertFalse(sb.checkMAC(other, message, tag), "another pair's key")
        XCTAssertFalse(sb.checkMAC(key, message + [0], tag), "a longer message")
        for i in 0..<tag.count {
            var flipped = tag; flipped[i] ^= 0x01
            XCTAssertFalse(sb.checkMAC(key, message, flipped), "bit flipped in byte \(i)")
        }
        XCTAssertFalse(sb.checkMAC(key, message, Array(tag.prefix(16))), "a short tag")
        XCTAssertFalse(sb.checkMAC(key, message, []), "no tag")
    }

    func testKeysThatYieldNoSecretAreRefused() {
        let s = Membership.ClaimSigner.ed25519(identity: IdentityKeyPair.generate())
        XCTAssertNil(s.pairKey([UInt8](repeating: 0, count: 31)), "short key")
        XCTAssertNil(s.pairKey([1] + [UInt8](repeating: 0, count: 31)), "the identity point (small order)")
        XCTAssertNil(s.pairKey([UInt8](repeating: 0xff, count: 32)), "not a point")
    }
}
