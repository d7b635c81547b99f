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

    /// IPAM v2 state: unconfirmed allocations (state 2), other nodes' registers, the own
    /// register version; all restored into the snapshot.
    func testHoldingsAndUnconfirmedRoundTrip() throws {
        let me = NodeID(high: 1, low: 2), other = NodeID(high: 3, low: 4)
        var node = IPAM.Instance(me: me, settings: .default, seed: 1)
        let store = try NodeStore(path: dbPath)
        try store.applyIPAM(persisted(node.createCluster(subnet: try IPAM.Subnet(parsing: "10.77.0.0/24"), now: .zero)))
        let r = try node.allocate(handle: "c1", now: .zero)
        try store.applyIPAM(persisted(r.directives))
        let h1 = IPAM.Holdings(version: 9, addresses: [0x0A4D_0010, 0x0A4D_0011])
        try store.applyIPAM([.unconfirmedAllocation(handle: "u1", address: 0x0A4D_0020), .holdings(owner: other, h1), .ownHoldingsVersion(41)])
        // A newer register replaces the old one entirely.
        let h2 = IPAM.Holdings(version: 10, addresses: [0x0A4D_0012], open: true)
        try store.applyIPAM([.holdings(owner: other, h2)])
        var snap = try XCTUnwrap(try NodeStore(path: dbPath).loadIPAMSnapshot())
        XCTAssertEqual(snap.holdings, [other: h2])
        XCTAssertEqual(snap.ownHoldingsVersion, 41)
        XCTAssertEqual(snap.unconfirmed, ["u1"])
        XCTAssertEqual(snap.allocations["u1"], 0x0A4D_0020)
        XCTAssertNotNil(snap.allocations["c1"])
        // Confirming (state 2 -> 0) keeps the row.
        try store.applyIPAM([.allocation(handle: "u1", address: 0x0A4D_0020)])
        snap = try XCTUnwrap(try NodeStore(path: dbPath).loadIPAMSnapshot())
        XCTAssertEqual(snap.unconfirmed, [])
        XCTAssertEqual(snap.allocations["u1"], 0x0A4D_0020)
        let restored = IPAM.Instance(me: me, settings: .default, seed: 2, restoring: snap)
        XCTAssertEqual(restored.holdings[other], h2)
        XCTAssertEqual(restored.ownHoldingsVersion, 41)
    }

    /// Registers are stored as a difference against the rows already there: after any sequence
    /// of registers for several owners (growing, shrinking, replaced, emptied; one given
    /// unsorted with a duplicate) what is read back is exactly the last register of each owner.
    func testHoldingsWrittenAsDifferencesReadBackExactly() throws {
        let store = try NodeStore(path: dbPath)
        var node = IPAM.Instance(me: NodeID(high: 1, low: 2), settings: .default, seed: 1)
        try store.applyIPAM(persisted(node.createCluster(subnet: try IPAM.Subnet(parsing: "10.77.0.0/24"), now: .zero)))
        let owners = (5...8).map { NodeID(high: UInt64($0), low: 1) }
        var last: [NodeID: IPAM.Holdings] = [:]
        var rng = SplitMix(seed: 42)
        for step in 0..<200 {
            let o = owners[Int(rng.next() % 4)]
            let count = Int(rng.next() % 40)
            var set = Set<UInt32>()
            for _ in 0..<count { set.insert(0x0A4D_0000 | UInt32(1 + rng.next() % 250)) }
            let h = IPAM.Holdings(version: UInt64(step + 1), addresses: set.sorted())
            try store.applyIPAM([.holdings(owner: o, h)])
            last[o] = h
        }
        let messy = IPAM.Holdings(version: 999, addresses: [0x0A4D_0009, 0x0A4D_0003, 0x0A4D_0009])
        try store.applyIPAM([.holdings(owner: owners[0], messy)])
        last[owners[0]] = IPAM.Holdings(version: 999, addresses: [0x0A4D_0003, 0x0A4D_0009])
        let snap = try XCTUnwrap(try NodeStore(path: dbPath).loadIPAMSnapshot())
        XCTAssertEqual(snap.holdings, last)
    }

    func testBadHoldingsRowsAreCorruption() throws {
        var node = IPAM.Instance(me: NodeID(high: 9, low: 9), settings: .default, seed: 1)
        let store = try NodeStore(path: dbPath)
        try store.applyIPAM(persisted(node.createCluster(subnet: .default, now: .zero)))
        try store.applyIPAM([.holdings(owner: NodeID(high: 1, low: 1), IPAM.Holdings(version: 1, addresses: [0x0A2A_0005]))])
        // An address outside the subnet.
        try DatabaseQueue(path: dbPath).write { db in
            try db.execute(sql: "INSERT INTO ipam_holding (owner, address) VALUES (?, ?)", arguments: [Data(NodeID(high: 1, low: 1).bytes), Int64(0x0B00_0000)])
        }
        XCTAssertThrowsError(try NodeStore(path: dbPath).loadIPAMSnapshot()) { error in
            guard case StoreError.corrupt(_, let detail) = error else { return XCTFail("expected corrupt, got \(error)") }
            XCTAssertTrue(detail.contains("outside"), detail)
        }
        // An unknown allocation state.
        try DatabaseQueue(path: dbPath).write { db in
            try db.execute(sql: "DELETE FROM ipam_holding")
            try db.execute(sql: "INSERT INTO ipam_allocation (handle, address, state) VALUES ('x', 1, 7)")
        }
        XCTAssertThrowsError(try NodeStore(path: dbPath).loadIPAMSnapshot()) { error in
            guard case StoreError.corrupt(_, let detail) = error else { return XCTFail("expected corrupt, got \(error)") }
            XCTAssertTrue(detail.contains("unknown state 7"), detail)
        }
    }
}

/// A small deterministic generator for the property test above.
private struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
