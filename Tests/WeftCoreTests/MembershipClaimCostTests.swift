import XCTest
import WeftCrypto
@testable import WeftCore

/// What signed claims cost (numbers in docs/benchmarks.md "Signed membership claims"): Ed25519
/// signatures and verifications per second on one core, a cache hit, and updates per datagram.
final class MembershipClaimCostTests: XCTestCase {
    typealias M = Membership

    func testVerificationRateCacheAndDatagramBudget() {
        let keys = IdentityKeyPair.generate()
        let signer = M.ClaimSigner.ed25519(identity: keys)
        var m = M.Member(id: keys.nodeID, name: "host-00001", address: Endpoint("192.168.1.10:7946")!,
                         publicKey: keys.publicKey.bytes, incarnation: 7, state: .alive)
        let message = M.Claims.record(of: m)
        let clock = ContinuousClock()
        let n = 2000
        var sig: [UInt8] = []
        let signTime = clock.measure { for _ in 0..<n { sig = signer.sign(message) } }
        var ok = 0
        let verifyTime = clock.measure { for _ in 0..<n where signer.verify(keys.publicKey.bytes, message, sig) { ok += 1 } }
        XCTAssertEqual(ok, n)
        var bad = sig; bad[0] ^= 1
        XCTAssertFalse(signer.verify(keys.publicKey.bytes, message, bad))
        m.recordSignature = sig

        // Through the instance: one verification, then cache hits.
        var inst = M.Instance(myself: m, settings: .fast, seed: 1, now: .zero,
                              identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) }, signer: signer)
        let before = inst.claimStats
        let cachedTime = clock.measure { for _ in 0..<n { XCTAssertTrue(inst.verify(keys.publicKey.bytes, message, sig)) } }
        XCTAssertEqual(inst.claimStats.verifications - before.verifications, 0, "our own record was cached when signed")
        XCTAssertEqual(inst.claimStats.cacheHits - before.cacheHits, n)

        func us(_ d: Duration) -> Double { Double(d.components.attoseconds) / 1e12 + Double(d.components.seconds) * 1e6 }
        let perVerify = us(verifyTime) / Double(n), perSign = us(signTime) / Double(n), perHit = us(cachedTime) / Double(n)
        print("claims cost: sign \(Int(perSign)) µs (\(Int(1e6 / perSign))/s), verify \(Int(perVerify)) µs (\(Int(1e6 / perVerify))/s per core), cache hit \(String(format: "%.2f", perHit)) µs")
        XCTAssertGreaterThan(1e6 / perVerify, 500, "Ed25519 verification is far slower than expected")
        XCTAssertLessThan(perHit, perVerify, "a cache hit must be cheaper than a verification")

        // Datagram budget: 10-byte names, IPv4, a gossip datagram.
        let alive = M.Update(m)
        var accusation = alive; accusation.state = .suspect; accusation.stateSignature = sig
        XCTAssertEqual(alive.encodedSize, 145 + 10)
        XCTAssertEqual(accusation.encodedSize, 209 + 10)
        let budget = M.Settings.fast.maxPayloadBytes - M.Codec.headerSize(.gossip(source: m.id, M.Piggyback()))
        print("claims cost: update \(alive.encodedSize) B alive / \(accusation.encodedSize) B accusation (was 91 B); per datagram \(budget / alive.encodedSize) alive or \(budget / accusation.encodedSize) accusations (was \(budget / 91))")
        XCTAssertEqual(budget / alive.encodedSize, 7)
        XCTAssertEqual(budget / accusation.encodedSize, 5)
    }
}
