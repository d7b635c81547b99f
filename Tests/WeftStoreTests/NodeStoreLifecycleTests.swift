import Foundation
import GRDB
import WeftCore
import XCTest

@testable import WeftStore

/// The store's part of the node lifecycle (docs/operations.md, "Lifecycle"): what counts as
/// "belonged to a cluster", the recorded leave, and the reset of a node that left to a joiner.
final class NodeStoreLifecycleTests: XCTestCase {
    private var dir = ""
    private var dbPath: String { dir + "/weft.db" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("weftlifecycle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func member(_ n: UInt8) -> StoredMember {
        StoredMember(id: NodeID(bytes: [UInt8](repeating: n, count: 16))!, name: "node-\(n)",
                     address: "127.0.0.1:\(7000 + Int(n))", publicKey: [UInt8](repeating: n, count: 32),
                     incarnation: 3, state: .alive, updatedAt: 1_700_000_000_000)
    }

    private func persisted(_ ds: [IPAM.Directive]) -> [IPAM.PersistChange] {
        ds.compactMap { if case .persist(let c) = $0 { return c } else { return nil } }
    }

    func testFreshDatabaseBelongsToNoCluster() throws {
        let e = try NodeStore(path: dbPath).clusterEvidence()
        XCTAssertEqual(e, NodeStore.ClusterEvidence(clusterID: nil, members: 0, ipamRows: 0, leftAt: nil))
        XCTAssertFalse(e.belongsToCluster)
    }

    func testAnyOfClusterIDMembersOrRingMeansItBelonged() throws {
        let s1 = try NodeStore(path: dir + "/a.db")
        try s1.setMeta(NodeStore.MetaKey.clusterID, "abcd")
        XCTAssertTrue(try s1.clusterEvidence().belongsToCluster)
        XCTAssertEqual(try s1.clusterEvidence().clusterID, "abcd")

        let s2 = try NodeStore(path: dir + "/b.db")
        try s2.upsertMember(member(1))
        XCTAssertEqual(try s2.clusterEvidence().members, 1)
        XCTAssertTrue(try s2.clusterEvidence().belongsToCluster)

        let s3 = try NodeStore(path: dir + "/c.db")
        var node = IPAM.Instance(me: NodeID(high: 1, low: 1), settings: .default, seed: 1)
        try s3.applyIPAM(persisted(node.createCluster(subnet: .default, now: .zero)))
        XCTAssertGreaterThan(try s3.clusterEvidence().ipamRows, 0)
        XCTAssertTrue(try s3.clusterEvidence().belongsToCluster)

        // Name and identity alone do not make a cluster member.
        let s4 = try NodeStore(path: dir + "/d.db")
        try s4.setMeta(NodeStore.MetaKey.nodeName, "n")
        try s4.saveIdentitySecret([UInt8](repeating: 9, count: 64))
        _ = try s4.nextIncarnation()
        XCTAssertFalse(try s4.clusterEvidence().belongsToCluster)
    }

    func testRecordedLeaveSurvivesReopen() throws {
        try NodeStore(path: dbPath).recordLeave(atMilliseconds: 1_764_000_000_123)
        XCTAssertEqual(try NodeStore(path: dbPath).clusterEvidence().leftAt, "1764000000123")
    }

    /// Keeps identity, incarnation, cluster id and name; drops members, every ipam_* row and the marker.
    func testResetToJoinerKeepsIdentityAndClearsTheRest() throws {
        let store = try NodeStore(path: dbPath)
        let secret = [UInt8](repeating: 7, count: 64)
        try store.saveIdentitySecret(secret)
        for _ in 0..<5 { _ = try store.nextIncarnation() }
        try store.setMeta(NodeStore.MetaKey.clusterID, "c1")
        try store.setMeta(NodeStore.MetaKey.nodeName, "me")
        try store.upsertMembers([member(1), member(2)])
        let me = NodeID(high: 4, low: 2)
        var node = IPAM.Instance(me: me, settings: .default, seed: 1)
        try store.applyIPAM(persisted(node.createCluster(subnet: .default, now: .zero)))
        try store.applyIPAM(persisted(try node.allocate(handle: "ctr", now: .zero).directives))
        XCTAssertNotNil(try store.loadIPAMSnapshot())
        try store.recordLeave(atMilliseconds: 42)

        try store.resetToJoiner()

        let reopened = try NodeStore(path: dbPath)
        XCTAssertEqual(try reopened.loadIdentitySecret(), secret)
        XCTAssertEqual(try reopened.currentIncarnation(), 5)
        XCTAssertEqual(try reopened.nextIncarnation(), 6, "a rejoin takes a higher incarnation than any used before")
        XCTAssertEqual(try reopened.meta(NodeStore.MetaKey.clusterID), "c1")
        XCTAssertEqual(try reopened.meta(NodeStore.MetaKey.nodeName), "me")
        XCTAssertEqual(try reopened.loadMembers(), [])
        XCTAssertNil(try reopened.loadIPAMSnapshot(), "no ring, no allocations, no overlay address")
        let e = try reopened.clusterEvidence()
        XCTAssertNil(e.leftAt)
        XCTAssertEqual(e.members, 0)
        XCTAssertEqual(e.ipamRows, 0)
        XCTAssertTrue(e.belongsToCluster, "the cluster id still ties the data dir to its cluster")
    }

    func testResetFindsIPAMTablesByNameWhateverTheirSchema() throws {
        let store = try NodeStore(path: dbPath)
        let tables = try DatabaseQueue(path: dbPath).read { try NodeStore.ipamTables($0) }
        XCTAssertFalse(tables.isEmpty)
        XCTAssertTrue(tables.allSatisfy { $0.hasPrefix("ipam_") }, "\(tables)")
        // A table that merely contains "ipam" elsewhere in its name is not touched.
        try DatabaseQueue(path: dbPath).write { db in
            try db.execute(sql: "CREATE TABLE notipam_x (v INTEGER)")
            try db.execute(sql: "INSERT INTO notipam_x VALUES (1)")
            try db.execute(sql: "CREATE TABLE ipamx (v INTEGER)")  // `_` is literal, not a wildcard
            try db.execute(sql: "INSERT INTO ipamx VALUES (1)")
        }
        try store.resetToJoiner()
        let counts = try DatabaseQueue(path: dbPath).read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM notipam_x"), try Int.fetchOne(db, sql: "SELECT count(*) FROM ipamx"))
        }
        XCTAssertEqual(counts.0, 1)
        XCTAssertEqual(counts.1, 1)
    }
}
