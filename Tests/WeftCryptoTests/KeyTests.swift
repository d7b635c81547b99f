import WeftCore
import XCTest

@testable import WeftCrypto

final class KeyTests: XCTestCase {
    override func setUpWithError() throws { try Sodium.initialize() }

    func testRandomnessDiffers() {
        XCTAssertEqual(Sodium.randomBytes(32).count, 32)
        XCTAssertNotEqual(Sodium.randomBytes(32), Sodium.randomBytes(32))
        XCTAssertEqual(Sodium.randomBytes(0), [])
        XCTAssertNotEqual(Sodium.randomUInt64(), Sodium.randomUInt64())
    }

    func testIdentityGenerationDiffersEachTime() {
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate()
        XCTAssertNotEqual(a.publicKey, b.publicKey)
        XCTAssertNotEqual(a.secretKey, b.secretKey)
        XCTAssertNotEqual(a.nodeID, b.nodeID)
        XCTAssertEqual(a.secretKey.count, 64)
        XCTAssertEqual(a.publicKey.bytes.count, 32)
    }

    func testNodeIDStableAndDerivedAsDocumented() throws {
        let pair = IdentityKeyPair.generate()
        let restored = try IdentityKeyPair(secretKey: SecretBytes(pair.secretKey.copyBytes()))
        XCTAssertEqual(restored.publicKey, pair.publicKey)
        XCTAssertEqual(restored.nodeID, pair.nodeID)
        XCTAssertEqual(pair.nodeID, pair.publicKey.nodeID)
        XCTAssertEqual(NodeIdentity.nodeID(forPublicKey: pair.publicKey.bytes), pair.nodeID)
        // Documented derivation: first 16 bytes of BLAKE2b-256("weft-node-id-v1" || pk).
        let digest = Blake2b.hash(Array("weft-node-id-v1".utf8) + pair.publicKey.bytes, outputLength: 32)
        XCTAssertEqual(pair.nodeID.bytes, Array(digest.prefix(16)))
        // Not simply the key's prefix.
        XCTAssertNotEqual(pair.nodeID.bytes, Array(pair.publicKey.bytes.prefix(16)))
        XCTAssertNil(NodeIdentity.nodeID(forPublicKey: Array(pair.publicKey.bytes.prefix(31))))
        XCTAssertNil(NodeIdentity.nodeID(forPublicKey: pair.publicKey.bytes + [0]))
    }

    func testNodeIDKnownAnswerForFixedSeed() throws {
        // Pins the derivation so it can never change silently (IDs are persisted and gossiped).
        let pair = try IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 7, count: 32)))
        let again = try IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 7, count: 32)))
        XCTAssertEqual(pair.nodeID, again.nodeID)
        XCTAssertEqual(pair.secretKey, again.secretKey)
        XCTAssertEqual(pair.nodeID.hex, NodeIDVector.seed7)
    }

    func testNodeIdentityMatches() {
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate()
        XCTAssertTrue(NodeIdentity.matches(a.nodeID, publicKey: a.publicKey.bytes))
        XCTAssertFalse(NodeIdentity.matches(a.nodeID, publicKey: b.publicKey.bytes))
        XCTAssertFalse(NodeIdentity.matches(a.nodeID, publicKey: []))
    }

    func testSignVerify() {
        let pair = IdentityKeyPair.generate(), other = IdentityKeyPair.generate()
        let message = Array("alive inc=7".utf8)
        let sig = pair.sign(message)
        XCTAssertEqual(sig.count, 64)
        XCTAssertTrue(pair.publicKey.verify(sig, of: message))
        XCTAssertFalse(other.publicKey.verify(sig, of: message), "another key must not verify")
        XCTAssertFalse(pair.publicKey.verify(sig, of: message + [0]), "changed message")
        for i in [0, 31, 32, 63] {
            var bad = sig
            bad[i] ^= 0x01
            XCTAssertFalse(pair.publicKey.verify(bad, of: message), "flipped signature byte \(i)")
        }
        XCTAssertFalse(pair.publicKey.verify(Array(sig.prefix(63)), of: message))
        XCTAssertFalse(pair.publicKey.verify([], of: message))
        // Empty message signs and verifies too.
        XCTAssertTrue(pair.publicKey.verify(pair.sign([]), of: []))
    }

    func testRestoreRejectsWrongLengthAndInconsistentKey() throws {
        XCTAssertThrowsError(try IdentityKeyPair(secretKey: SecretBytes([UInt8](repeating: 1, count: 32)))) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeyLength(expected: 64, got: 32))
        }
        var bytes = IdentityKeyPair.generate().secretKey.copyBytes()
        bytes[40] ^= 0xff  // damage the embedded public half
        XCTAssertThrowsError(try IdentityKeyPair(secretKey: SecretBytes(bytes))) { error in
            guard case .malformed = error as? CryptoError else { return XCTFail("got \(error)") }
        }
    }

    func testPublicKeyLength() {
        XCTAssertThrowsError(try PublicKey(bytes: [1, 2, 3])) {
            XCTAssertEqual($0 as? CryptoError, .invalidKeyLength(expected: 32, got: 3))
        }
        XCTAssertNoThrow(try PublicKey(bytes: [UInt8](repeating: 9, count: 32)))
    }

    func testX25519ConversionAgreesBothWays() throws {
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate()
        let aPub = try XCTUnwrap(a.publicKey.x25519()), bPub = try XCTUnwrap(b.publicKey.x25519())
        // The converted public key is the base-point multiple of the converted secret.
        XCTAssertEqual(X25519.publicKey(secretKey: a.x25519SecretKey()), aPub)
        XCTAssertEqual(X25519.publicKey(secretKey: b.x25519SecretKey()), bPub)
        let ab = try XCTUnwrap(X25519.sharedSecret(secretKey: a.x25519SecretKey(), publicKey: bPub))
        let ba = try XCTUnwrap(X25519.sharedSecret(secretKey: b.x25519SecretKey(), publicKey: aPub))
        XCTAssertEqual(ab, ba)
        let c = IdentityKeyPair.generate()
        let ac = try XCTUnwrap(X25519.sharedSecret(secretKey: a.x25519SecretKey(), publicKey: XCTUnwrap(c.publicKey.x25519())))
        XCTAssertNotEqual(ab, ac)
        XCTAssertEqual(a.x25519SecretKey(), a.x25519SecretKey(), "conversion is deterministic")
    }

    func testX25519RejectsInvalidPoints() throws {
        // The identity point (small order) must not convert, and a zero DH result is refused.
        var identity = [UInt8](repeating: 0, count: 32)
        identity[0] = 1
        XCTAssertNil(try PublicKey(bytes: identity).x25519())
        XCTAssertNil(X25519.sharedSecret(secretKey: SecretBytes.random(count: 32), publicKey: [UInt8](repeating: 0, count: 32)))
    }

    func testSecretBytesRedactedAndConstantTimeEquality() {
        let s = SecretBytes([1, 2, 3, 4])
        XCTAssertEqual(s.description, "<redacted 4 bytes>")
        XCTAssertEqual("\(s)", "<redacted 4 bytes>")
        XCTAssertEqual(String(reflecting: s), "<redacted 4 bytes>")
        XCTAssertFalse("\(IdentityKeyPair.generate())".contains("0x"))
        XCTAssertEqual(s, SecretBytes([1, 2, 3, 4]))
        XCTAssertNotEqual(s, SecretBytes([1, 2, 3, 5]))
        XCTAssertNotEqual(s, SecretBytes([1, 2, 3]))
        XCTAssertEqual(SecretBytes([]), SecretBytes([]))
        XCTAssertEqual(s.copyBytes(), [1, 2, 3, 4])
        XCTAssertEqual(s.withUnsafeBytes { Array($0) }, [1, 2, 3, 4])
        XCTAssertNotEqual(SecretBytes.random(count: 32), SecretBytes.random(count: 32))
    }

    func testConstantTimeEqual() {
        XCTAssertTrue(constantTimeEqual([1, 2, 3], [1, 2, 3]))
        XCTAssertFalse(constantTimeEqual([1, 2, 3], [1, 2, 4]))
        XCTAssertFalse(constantTimeEqual([1, 2, 3], [1, 2]))
        XCTAssertTrue(constantTimeEqual([], []))
        XCTAssertFalse(constantTimeEqual([], [0]))
    }

    func testCryptoErrorDescriptions() {
        XCTAssertEqual(CryptoError.invalidKeyLength(expected: 32, got: 3).description, "key has 3 bytes, expected 32")
        XCTAssertTrue(CryptoError.authenticationFailed.description.contains("authentication failed"))
    }
}

enum NodeIDVector {
    // Node ID of the Ed25519 key from seed 07 07 .. 07 (32 bytes), pinned when the derivation was
    // written; it must never change.
    static let seed7 = "cf60e184cd0e133b7a2808e19a4512cc"
}
