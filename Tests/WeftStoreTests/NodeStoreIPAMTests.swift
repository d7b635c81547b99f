import Foundation
import GRDB
import WeftCore
import XCTest

@testable import WeftStore

/// IPAM persistence: what the allocator asks to persist comes back identical after a reopen,
/// and a damaged ring is refused as corruption rather than loaded.
final class NodeStoreIPAMTests: XCTestCase {
    private var dir = ""
    private var dbPath: String { dir + "/weft.db" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("weftipamstore-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    private func persisted(_ ds: [IPAM.Directive]) -> [IPAM.PersistChange] {
        ds.compactMap { if case .persist(let c) = $0 { return c } else { return nil } }
    }

    func testNoRingBeforeCreateOrJoin() throws {
        XCTAssertNil(try NodeStore(path: dbPath).loadIPAMSnapshot())
    }

    func testSnapshotRoundTripsAcrossReopen() throws {
        let me = NodeID(high: 1, low: 2)
        var node = IPAM.Instance(me: me, settings: .default, seed: 1)
        let store = try NodeStore(path: dbPath)
        try store.applyIPAM(persisted(node.createCluster(subnet: try IPAM.Subnet(parsing: "10.77.0.0/24"), now: .zero)))
        var addresses: [String: UInt32] = [:]
        for i in 0..<20 {
            let (outcome, ds) = try node.allocate(handle: "c\(i)", now: .zero)
            try store.applyIPAM(persisted(ds))
            if case .allocated(let a) = outcome { addresses["c\(i)"] = a }
        }
        try store.applyIPAM(persisted(try node.release(handle: "c3", now: .zero)))
        addresses["c3"] = nil
        try store.applyIPAM([.conflicted(handle: "lost", address: 0x0A4D_00FE)])

        let reopened = try NodeStore(path: dbPath)
        let snap = try XCTUnwrap(try reopened.loadIPAMSnapshot())
        XCTAssertEqual(snap.ring, node.ring, "ring restored exactly")
        XCTAssertEqual(snap.allocations.filter { $0.key.hasPrefix("c") }, addresses)
        XCTAssertEqual(snap.conflicts, ["lost": 0x0A4D_00FE])
        let restored = IPAM.Instance(me: me, settings: .default, seed: 2, restoring: snap)
        XCTAssertEqual(restored.allocations["c5"], addresses["c5"], "restored allocator serves the same address")
    }

    func testDamagedRingIsCorruption() throws {
        var node = IPAM.Instance(me: NodeID(high: 9, low: 9), settings: .default, seed: 1)
        let store = try NodeStore(path: dbPath)
        try store.applyIPAM(persisted(node.createCluster(subnet: .default, now: .zero)))
        // A token outside the subnet breaks the ring's invariants.
        try DatabaseQueue(path: dbPath).write { db in
            try db.execute(sql: "INSERT INTO ipam_ring (token, owner, version, free) VALUES (?, ?, 1, 1)",
                           arguments: [Int64(0x0B00_0000), Data([UInt8](repeating: 1, count: 16))])
        }
        XCTAssertThrowsError(try NodeStore(path: dbPath).loadIPAMSnapshot()) { error in
            guard case StoreError.corrupt(let path, _) = error else { return XCTFail("expected corrupt, got \(error)") }
            XCTAssertEqual(path, self.dbPath)
        }
    }
}
