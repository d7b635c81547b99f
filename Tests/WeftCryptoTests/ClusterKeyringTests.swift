import WeftCore
@testable import WeftCrypto
import XCTest

final class ClusterKeyringTests: XCTestCase {
    func testOneKeyFileIsAKeyringOfOneAndIsWrittenTheSameWay() throws {
        let k = ClusterKey.generate()
        let ring = try ClusterKeyring(text: k.text + "\n")
        XCTAssertEqual(ring.keys, [k])
        XCTAssertEqual(ring.clusterID, k.keyID)
        XCTAssertEqual(ring.text, k.text + "\n", "a cluster's first key alone is written as before keyrings")
    }

    func testFileFormRoundTripsWithTheClusterIDAfterTheFirstKeyIsGone() throws {
        let first = ClusterKey.generate(), second = ClusterKey.generate()
        var ring = ClusterKeyring(primary: first)
        XCTAssertTrue(try ring.install(second))
        XCTAssertFalse(try ring.install(second), "installing twice changes nothing")
        XCTAssertTrue(try ring.use(second))
        XCTAssertTrue(try ring.remove(first))
        XCTAssertEqual(ring.keys, [second])
        XCTAssertEqual(ring.clusterID, first.keyID, "the cluster keeps its id")
        let parsed = try ClusterKeyring(text: ring.text)
        XCTAssertEqual(parsed, ring)
        XCTAssertTrue(ring.text.hasPrefix("# cluster \(first.keyID)\n"))
    }

    func testRulesPrimaryCannotBeRemovedUseNeedsInstallLimitAndDuplicates() throws {
        let a = ClusterKey.generate(), b = ClusterKey.generate()
        var ring = ClusterKeyring(primary: a)
        XCTAssertThrowsError(try ring.remove(a)) { XCTAssertTrue("\($0)".contains("primary")) }
        XCTAssertThrowsError(try ring.use(b)) { XCTAssertTrue("\($0)".contains("not installed")) }
        XCTAssertFalse(try ring.remove(b), "removing a key that is not there changes nothing")
        for _ in 1..<ClusterKeyring.maxKeys { try ring.install(ClusterKey.generate()) }
        XCTAssertThrowsError(try ring.install(b)) { XCTAssertTrue("\($0)".contains("full")) }
        XCTAssertThrowsError(try ClusterKeyring(text: a.text + "\n" + a.text)) { XCTAssertTrue("\($0)".contains("twice")) }
        XCTAssertThrowsError(try ClusterKeyring(text: "# cluster zz\n" + a.text)) { XCTAssertTrue("\($0)".contains("line 1")) }
        XCTAssertThrowsError(try ClusterKeyring(text: "# just a comment\n\n")) { XCTAssertTrue("\($0)".contains("empty")) }
        XCTAssertThrowsError(try ClusterKeyring(text: a.text + "\nweft1:short")) { e in
            XCTAssertTrue("\(e)".contains("line 2"), "\(e)")
            XCTAssertFalse("\(e)".contains(a.text), "errors never echo a key")
        }
    }

    func testKeyByIDPrefix() throws {
        var ring = ClusterKeyring(primary: ClusterKey.generate())
        let b = ClusterKey.generate()
        try ring.install(b)
        XCTAssertEqual(ring.key(matching: b.keyID), b)
        XCTAssertEqual(ring.key(matching: String(b.keyID.prefix(12)).uppercased()), b)
        XCTAssertNil(ring.key(matching: "not-an-id"))
    }

    /// The sealer during a rotation: opens with every installed key, seals with the primary,
    /// and all copies change together.
    func testSealerOpensEveryInstalledKeySealsWithThePrimaryCopiesShareTheKeyring() throws {
        let old = ClusterKey.generate(), new = ClusterKey.generate()
        let oldOnly = GossipSealer(clusterKey: old)
        let newOnly = GossipSealer(clusterKey: new)
        let node = GossipSealer(clusterKey: old)
        let copy = node  // e.g. the TCP hello gate's
        let header: [UInt8] = [2, 1]
        var ring = ClusterKeyring(primary: old)
        try ring.install(new)
        node.setKeyring(ring)
        XCTAssertEqual(copy.keyCount, 2)
        XCTAssertEqual(try copy.open(newOnly.seal([1, 2, 3], header: header), headerLength: 2), [1, 2, 3])
        XCTAssertEqual(try copy.open(oldOnly.seal([4], header: header), headerLength: 2), [4])
        XCTAssertEqual(try oldOnly.open(copy.seal([5], header: header), headerLength: 2), [5], "still seals with the old primary")
        try ring.use(new)
        node.setKeyring(ring)
        XCTAssertEqual(try newOnly.open(copy.seal([6], header: header), headerLength: 2), [6])
        XCTAssertThrowsError(try oldOnly.open(copy.seal([6], header: header), headerLength: 2))
        try ring.remove(old)
        node.setKeyring(ring)
        XCTAssertThrowsError(try copy.open(oldOnly.seal([7], header: header), headerLength: 2)) {
            XCTAssertEqual($0 as? CryptoError, .authenticationFailed)
        }
        let sealed = newOnly.seal([8], header: header)
        var tampered = sealed; tampered[tampered.count - 1] ^= 1
        XCTAssertThrowsError(try copy.open(tampered, headerLength: 2))
    }
}
