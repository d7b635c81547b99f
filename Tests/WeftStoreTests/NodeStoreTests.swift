import Foundation
import GRDB
import WeftCore
import XCTest

@testable import WeftStore

final class NodeStoreTests: XCTestCase {
    private var dir: String = ""
    private var dbPath: String { dir + "/weft.db" }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("weftstore-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        chmod(dir, 0o700)
        try? FileManager.default.removeItem(atPath: dir)
    }

    private func member(_ n: UInt8, incarnation: UInt64 = 1, state: Membership.MemberState = .alive) -> StoredMember {
        StoredMember(id: NodeID(bytes: [UInt8](repeating: n, count: 16))!, name: "node-\(n)",
                     address: "10.0.0.\(n):7946", publicKey: [UInt8](repeating: n &+ 100, count: 32),
                     incarnation: incarnation, state: state, updatedAt: 1_700_000_000_000 + Int64(n))
    }

    private func mode(_ path: String) throws -> Int {
        let attrs = try FileManager.default.attributesOfItem(atPath: path)
        return (attrs[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    // MARK: Opening

    func testFreshOpenCreatesPrivateFile() throws {
        let store = try NodeStore(path: dbPath)
        try store.setMeta("k", "v")  // forces the WAL file into existence
        XCTAssertEqual(try mode(dbPath), 0o600)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: dbPath + suffix) {
            XCTAssertEqual(try mode(dbPath + suffix), 0o600, suffix)
        }
        XCTAssertEqual(NodeStore.schemaVersion, 6, "v1 initial + v2 ipam + v3 ipam holdings + v4 dns records + v5 member claims + v6 evictions")
        let version = try DatabaseQueue(path: dbPath).read { try Int.fetchOne($0, sql: "PRAGMA user_version") }
        XCTAssertEqual(version, NodeStore.schemaVersion)
    }

    func testExistingLooseFileIsTightened() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: dbPath, contents: nil, attributes: [.posixPermissions: 0o644]))
        _ = try NodeStore(path: dbPath)
        XCTAssertEqual(try mode(dbPath), 0o600)
    }

    func testReopenIsIdempotent() throws {
        for _ in 0..<3 { _ = try NodeStore(path: dbPath) }
        XCTAssertEqual(try NodeStore(path: dbPath).loadMembers(), [])
    }

    // MARK: Identity

    func testIdentityRoundTripAcrossReopen() throws {
        let secret = (0..<64).map { UInt8($0 * 3 & 0xff) }
        do {
            let store = try NodeStore(path: dbPath)
            XCTAssertNil(try store.loadIdentitySecret())
            try store.saveIdentitySecret(secret)
            XCTAssertEqual(try store.loadIdentitySecret(), secret)
        }
        XCTAssertEqual(try NodeStore(path: dbPath).loadIdentitySecret(), secret)
        let replacement = [UInt8](repeating: 9, count: 64)
        try NodeStore(path: dbPath).saveIdentitySecret(replacement)
        XCTAssertEqual(try NodeStore(path: dbPath).loadIdentitySecret(), replacement)
    }

    // MARK: Incarnation

    func testNextIncarnationStrictlyIncreasesAcrossReopen() throws {
        var seen: [UInt64] = []
        do {
            let store = try NodeStore(path: dbPath)
            XCTAssertEqual(try store.currentIncarnation(), 0)
            seen.append(try store.nextIncarnation())
            seen.append(try store.nextIncarnation())
        }
        seen.append(try NodeStore(path: dbPath).nextIncarnation())
        seen.append(try NodeStore(path: dbPath).nextIncarnation())
        XCTAssertEqual(seen, [1, 2, 3, 4])
        XCTAssertEqual(try NodeStore(path: dbPath).currentIncarnation(), 4)
    }

    func testSaveIncarnationNeverLowers() throws {
        do {
            let store = try NodeStore(path: dbPath)
            try store.saveIncarnation(10)
            XCTAssertEqual(try store.currentIncarnation(), 10)
            try store.saveIncarnation(5)
            XCTAssertEqual(try store.currentIncarnation(), 10)
            try store.saveIncarnation(10)
            XCTAssertEqual(try store.currentIncarnation(), 10)
        }
        let store = try NodeStore(path: dbPath)
        XCTAssertEqual(try store.currentIncarnation(), 10)
        XCTAssertEqual(try store.nextIncarnation(), 11)
        try store.saveIncarnation(3)
        XCTAssertEqual(try store.nextIncarnation(), 12)
        // Values above Int64.max survive (stored as the bit pattern) and compare as unsigned.
        try store.saveIncarnation(UInt64(Int64.max) + 5)
        try store.saveIncarnation(7)
        XCTAssertEqual(try store.currentIncarnation(), UInt64(Int64.max) + 5)
        XCTAssertEqual(try store.nextIncarnation(), UInt64(Int64.max) + 6)
    }

    func testIncarnationExhaustionThrowsInsteadOfWrapping() throws {
        let store = try NodeStore(path: dbPath)
        try store.saveIncarnation(.max)
        XCTAssertThrowsError(try store.nextIncarnation())
        XCTAssertEqual(try store.currentIncarnation(), .max)
    }

    func testConcurrentNextIncarnationNeverRepeats() throws {
        let store = try NodeStore(path: dbPath)
        let results = LockedArray()
        DispatchQueue.concurrentPerform(iterations: 40) { _ in
            if let value = try? store.nextIncarnation() { results.append(value) }
        }
        let values = results.values
        XCTAssertEqual(values.count, 40)
        XCTAssertEqual(Set(values), Set(1...40))
    }

    // MARK: Members

    /// Schema v5: the member's record signature and the state claim survive a reopen (so a
    /// restart can re-verify them); a row without them loads with empty signatures.
    func testMemberClaimsRoundTripAcrossReopen() throws {
        var dead = member(4, incarnation: 3, state: .dead)
        dead.recordSignature = [UInt8](repeating: 0xA1, count: 64)
        dead.stateBy = member(5).id
        dead.stateSignature = [UInt8](repeating: 0xB2, count: 64)
        try NodeStore(path: dbPath).upsertMembers([dead, member(6)])
        let loaded = try NodeStore(path: dbPath).loadMembers()
        XCTAssertEqual(loaded, [dead, member(6)])
        XCTAssertEqual(loaded[1].recordSignature, [])
        XCTAssertNil(loaded[1].stateBy)
    }

    func testMembersUpsertLoadDeleteAcrossReopen() throws {
        do {
            let store = try NodeStore(path: dbPath)
            XCTAssertEqual(try store.loadMembers(), [])
            try store.upsertMember(member(2))
            try store.upsertMembers([member(1), member(3, incarnation: .max, state: .dead)])
            XCTAssertEqual(try store.loadMembers(), [member(1), member(2), member(3, incarnation: .max, state: .dead)])
        }
        do {
            let store = try NodeStore(path: dbPath)
            XCTAssertEqual(try store.loadMembers().count, 3)
            var changed = member(2, incarnation: 9, state: .suspect)
            changed.address = "[fd00::2]:7000"
            changed.name = "renamed"
            try store.upsertMember(changed)
            try store.deleteMember(member(1).id)
            try store.deleteMember(member(42).id)  // unknown: no error
        }
        let loaded = try NodeStore(path: dbPath).loadMembers()
        var expected2 = member(2, incarnation: 9, state: .suspect)
        expected2.address = "[fd00::2]:7000"
        expected2.name = "renamed"
        XCTAssertEqual(loaded, [expected2, member(3, incarnation: .max, state: .dead)])
        try NodeStore(path: dbPath).upsertMembers([])
        for state in Membership.MemberState.allCases {
            try NodeStore(path: dbPath).upsertMember(member(50, state: state))
            XCTAssertEqual(try NodeStore(path: dbPath).loadMembers().last?.state, state)
        }
    }

    func testUnreadableMemberRowIsCorruptNotACrash() throws {
        try NodeStore(path: dbPath).upsertMember(member(1))
        try DatabaseQueue(path: dbPath).write { try $0.execute(sql: "UPDATE members SET state = 9") }
        XCTAssertThrowsError(try NodeStore(path: dbPath).loadMembers()) { error in
            guard case .corrupt(let path, let detail) = error as? StoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(path, dbPath)
            XCTAssertTrue(detail.contains("unknown state 9"), detail)
        }
        try DatabaseQueue(path: dbPath).write { try $0.execute(sql: "UPDATE members SET state = 0, name = x'00ff'") }
        XCTAssertThrowsError(try NodeStore(path: dbPath).loadMembers())
    }

    func testFailedWriteThrowsAndLeavesStateIntact() throws {
        do {
            let store = try NodeStore(path: dbPath)
            try store.upsertMember(member(1))
            _ = try store.nextIncarnation()
        }
        let pages = try DatabaseQueue(path: dbPath).read { try Int.fetchOne($0, sql: "PRAGMA page_count") ?? 0 }
        XCTAssertGreaterThan(pages, 3)
        // Simulate a full disk: the file may not grow beyond its current size.
        let store = try NodeStore(path: dbPath, prepareConnection: { db in
            try db.execute(sql: "PRAGMA max_page_count = \(pages + 2)")
        })
        let batch = (2...250).map { n -> StoredMember in
            var m = member(UInt8(n))
            m.name = String(repeating: "n", count: 200)
            return m
        }
        XCTAssertThrowsError(try store.upsertMembers(batch)) { error in
            guard let e = error as? StoreError, case .io(let detail) = e else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains(dbPath), detail)
            XCTAssertTrue(e.description.contains("disk space"), e.description)
        }
        // All or nothing, and the store is still usable.
        XCTAssertEqual(try store.loadMembers(), [member(1)])
        XCTAssertEqual(try store.nextIncarnation(), 2)
        XCTAssertEqual(try NodeStore(path: dbPath).loadMembers(), [member(1)])
        XCTAssertEqual(try NodeStore(path: dbPath).currentIncarnation(), 2)
    }

    // MARK: Meta

    func testMetaRoundTrip() throws {
        do {
            let store = try NodeStore(path: dbPath)
            XCTAssertNil(try store.meta(NodeStore.MetaKey.clusterID))
            try store.setMeta(NodeStore.MetaKey.clusterID, "0123456789abcdef")
            try store.setMeta(NodeStore.MetaKey.nodeName, "host-a")
            try store.setMeta(NodeStore.MetaKey.nodeName, "host-b")
            try store.setMeta("empty", "")
        }
        let store = try NodeStore(path: dbPath)
        XCTAssertEqual(try store.meta(NodeStore.MetaKey.clusterID), "0123456789abcdef")
        XCTAssertEqual(try store.meta(NodeStore.MetaKey.nodeName), "host-b")
        XCTAssertEqual(try store.meta("empty"), "")
        try store.setMeta(NodeStore.MetaKey.nodeName, nil)
        XCTAssertNil(try store.meta(NodeStore.MetaKey.nodeName))
        try store.setMeta("never-set", nil)
        XCTAssertNil(try NodeStore(path: dbPath).meta(NodeStore.MetaKey.nodeName))
    }

    // MARK: Damage and refusal

    private func assertCorrupt(_ body: @autoclosure () throws -> Any, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { error in
            guard let e = error as? StoreError, case .corrupt(let path, _) = e else {
                return XCTFail("expected .corrupt, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(path, dbPath, file: file, line: line)
            XCTAssertTrue(e.description.contains(dbPath), e.description, file: file, line: line)
            XCTAssertTrue(e.description.contains("weft start") && e.description.contains("--seed"), e.description, file: file, line: line)
            XCTAssertFalse(e.description.contains("\n"), file: file, line: line)
        }
    }

    func testGarbageFileIsCorrupt() throws {
        var rng = DeterministicRNG(seed: 42)
        let garbage = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &rng) }
        try Data(garbage).write(to: URL(fileURLWithPath: dbPath))
        assertCorrupt(try NodeStore(path: dbPath))
        // And the garbage is left in place for the operator to inspect.
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: dbPath)), Data(garbage))
    }

    func testTextFileIsCorrupt() throws {
        try Data(String(repeating: "weft1:not a database\n", count: 300).utf8).write(to: URL(fileURLWithPath: dbPath))
        assertCorrupt(try NodeStore(path: dbPath))
    }

    /// A real database with some rows, closed and checkpointed; returns its size.
    private func makePopulatedDatabase() throws -> Int {
        do {
            let store = try NodeStore(path: dbPath)
            try store.saveIdentitySecret([UInt8](repeating: 1, count: 64))
            try store.upsertMembers((1...200).map { member(UInt8($0)) })
            try store.setMeta("k", String(repeating: "x", count: 5000))
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dbPath + "-wal"), "WAL should be checkpointed on close")
        let size = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: dbPath)[.size] as? NSNumber).intValue
        XCTAssertGreaterThan(size, 4 * 4096)
        return size
    }

    func testDamagedPagesAreCorrupt() throws {
        let size = try makePopulatedDatabase()
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: dbPath))
        var rng = DeterministicRNG(seed: 7)
        try handle.seek(toOffset: 4096)
        try handle.write(contentsOf: Data((4096..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }))
        try handle.close()
        assertCorrupt(try NodeStore(path: dbPath))
    }

    func testTruncatedDatabaseIsCorrupt() throws {
        let size = try makePopulatedDatabase()
        XCTAssertEqual(truncate(dbPath, off_t(size / 2 + 100)), 0)
        assertCorrupt(try NodeStore(path: dbPath))
    }

    func testDamagedHeaderIsCorrupt() throws {
        _ = try makePopulatedDatabase()
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: dbPath))
        try handle.seek(toOffset: 0)
        try handle.write(contentsOf: Data("This is not SQLite".utf8))
        try handle.close()
        assertCorrupt(try NodeStore(path: dbPath))
    }

    func testNewerSchemaIsRefused() throws {
        try NodeStore(path: dbPath).setMeta("k", "v")
        try DatabaseQueue(path: dbPath).writeWithoutTransaction {
            try $0.execute(sql: "PRAGMA user_version = \(NodeStore.schemaVersion + 1)")
        }
        XCTAssertThrowsError(try NodeStore(path: dbPath)) { error in
            guard let e = error as? StoreError, case .newerSchema(let path, let version) = e else { return XCTFail("\(error)") }
            XCTAssertEqual(path, dbPath)
            XCTAssertEqual(version, NodeStore.schemaVersion + 1)
            XCTAssertTrue(e.description.contains(dbPath) && e.description.contains("newer"), e.description)
        }
        // Untouched: still refused, and the data is still there.
        XCTAssertThrowsError(try NodeStore(path: dbPath))
        let value = try DatabaseQueue(path: dbPath).read { try String.fetchOne($0, sql: "SELECT value FROM meta WHERE key = 'k'") }
        XCTAssertEqual(value, "v")
    }

    func testUnknownMigrationIsRefused() throws {
        try NodeStore(path: dbPath).setMeta("k", "v")
        try DatabaseQueue(path: dbPath).write {
            try $0.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        }
        XCTAssertThrowsError(try NodeStore(path: dbPath)) { error in
            guard case .newerSchema = error as? StoreError else { return XCTFail("\(error)") }
        }
    }

    func testMissingDirectoryCannotOpen() throws {
        let path = dir + "/does/not/exist/weft.db"
        XCTAssertThrowsError(try NodeStore(path: path)) { error in
            guard let e = error as? StoreError, case .cannotOpen(let p, let detail) = e else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertTrue(detail.contains("does not exist"), detail)
            XCTAssertTrue(e.description.contains(path) && e.description.contains("writable"), e.description)
        }
    }

    func testDirectoryInPlaceOfFileCannotOpen() throws {
        try FileManager.default.createDirectory(atPath: dbPath, withIntermediateDirectories: false)
        XCTAssertThrowsError(try NodeStore(path: dbPath)) { error in
            guard case .cannotOpen(let p, _) = error as? StoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, dbPath)
        }
        XCTAssertThrowsError(try NodeStore(path: "")) { error in
            guard case .cannotOpen = error as? StoreError else { return XCTFail("\(error)") }
        }
    }

    func testFileUnderARegularFileCannotOpen() throws {
        // Works even as root, unlike permission bits.
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/plain", contents: Data([1])))
        let path = dir + "/plain/weft.db"
        XCTAssertThrowsError(try NodeStore(path: path)) { error in
            guard case .cannotOpen(let p, let detail) = error as? StoreError else { return XCTFail("\(error)") }
            XCTAssertEqual(p, path)
            XCTAssertTrue(detail.contains("Not a directory"), detail)
        }
    }

    func testUnwritableDirectoryCannotOpen() throws {
        try XCTSkipIf(geteuid() == 0, "running as root: directory permission bits do not stop root")
        XCTAssertEqual(chmod(dir, 0o500), 0)
        XCTAssertThrowsError(try NodeStore(path: dbPath)) { error in
            guard let e = error as? StoreError, case .cannotOpen(_, let detail) = e else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("not writable"), detail)
            XCTAssertTrue(e.description.contains(dbPath), e.description)
        }
    }

    func testErrorDescriptionsAreOneActionableLine() {
        let errors: [StoreError] = [
            .corrupt(path: "/x/weft.db", detail: "file is not a database"),
            .cannotOpen(path: "/x/weft.db", detail: "Permission denied"),
            .newerSchema(path: "/x/weft.db", version: 7),
            .io("disk I/O error"),
        ]
        for e in errors {
            XCTAssertFalse(e.description.contains("\n"))
            XCTAssertTrue(e.description.contains(":"), e.description)
        }
        XCTAssertEqual(errors[0].description,
                       "the database /x/weft.db is damaged (file is not a database): stop the node and run `weft start` on this data dir again, which prints the exact recovery commands (move the database with its -wal/-shm aside, then rejoin as a new member with --seed HOST:PORT of a live member)")
    }
}

private final class LockedArray: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [UInt64] = []
    func append(_ v: UInt64) { lock.lock(); storage.append(v); lock.unlock() }
    var values: [UInt64] { lock.lock(); defer { lock.unlock() }; return storage }
}

final class NodeStoreCommitTests: XCTestCase {
    func testCommitIsOneTransactionAndRecordsRoundTrip() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-commit-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStore(path: dir + "/weft.db")
        let owner = NodeID(high: 7, low: 7)
        var batch = Node.Batch()
        batch.dns[DNS.Records.Key(owner: owner, handle: "c1")] = DNS.Records.Record(version: 3, name: "db", address: 0x0A2A_0005, deleted: false)
        batch.dns[DNS.Records.Key(owner: owner, handle: "c2")] = DNS.Records.Record(version: 4, name: "", address: 0, deleted: true)
        batch.incarnation = 9
        try store.commit(batch)
        XCTAssertEqual(try store.loadRecords(), batch.dns)
        XCTAssertEqual(try store.currentIncarnation(), 9)
        let reopened = try NodeStore(path: dir + "/weft.db")
        XCTAssertEqual(try reopened.loadRecords().count, 2)
        // A batch that fails half-way changes nothing: its last statement breaks the UNIQUE
        // constraint on addresses, so the record and the incarnation before it are rolled back.
        var first = Node.Batch()
        first.ipam = [.allocation(handle: "h1", address: 0x0A2A_0009)]
        try store.commit(first)
        var bad = Node.Batch()
        bad.dns[DNS.Records.Key(owner: owner, handle: "c3")] = DNS.Records.Record(version: 5, name: "web", address: 1, deleted: false)
        bad.incarnation = 12
        bad.ipam = [.allocation(handle: "h2", address: 0x0A2A_0009)]
        XCTAssertThrowsError(try store.commit(bad))
        XCTAssertEqual(try store.currentIncarnation(), 9, "nothing of the failed batch was kept")
        XCTAssertNil(try store.loadRecords()[DNS.Records.Key(owner: owner, handle: "c3")])
    }

    /// Eviction records round-trip, an undo replaces the ban of its subject, and a row that
    /// cannot be a record (a short signer id) is refused by the schema. (A forged signature is
    /// the node's to refuse at start: `NodeEvictionSimTests`.)
    func testEvictionsRoundTripAndReplacePerSubject() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-evict-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try NodeStore(path: dir + "/weft.db")
        let (s1, s2, by) = (NodeID(high: 1, low: 1), NodeID(high: 2, low: 2), NodeID(high: 3, low: 3))
        func record(_ subject: NodeID, _ version: UInt64, _ evicted: Bool) -> Node.Eviction {
            Node.Eviction(subject: subject, name: "host-\(subject.low)", version: version, evicted: evicted, by: by,
                          byKey: [UInt8](repeating: 7, count: 32), signature: [UInt8](repeating: UInt8(version), count: 64))
        }
        var batch = Node.Batch()
        batch.evictions = [record(s1, 1, true), record(s2, 2, true)]
        try store.commit(batch)
        XCTAssertEqual(try store.loadEvictions(), batch.evictions)
        var undo = Node.Batch()
        undo.evictions = [record(s1, 3, false)]
        try store.commit(undo)
        let reopened = try NodeStore(path: dir + "/weft.db")
        XCTAssertEqual(try reopened.loadEvictions(), [record(s1, 3, false), record(s2, 2, true)])
        XCTAssertThrowsError(try DatabaseQueue(path: dir + "/weft.db").write {
            try $0.execute(sql: "UPDATE eviction SET by_id = x'00' WHERE subject = ?", arguments: [Data(s2.bytes)])
        }, "the schema refuses a signer id that is not 16 bytes")
    }
}
