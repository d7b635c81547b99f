import Foundation
import GRDB
import WeftCore

/// The node's persistent state in one SQLite file (WAL mode): its identity secret, its
/// incarnation, the members it knows and a few facts in `meta`. See docs/storage.md.
///
/// Thread safety: all methods may be called from any thread or task concurrently. Writes are
/// serialized by GRDB's `DatabasePool` (one writer connection, each call one transaction);
/// reads run on a small pool of reader connections and see the last committed write. Calls
/// are synchronous and block the calling thread for a few milliseconds (fsync with
/// `synchronous = FULL`); from async code, call them off the hot path (they are rare: start-up,
/// incarnation bumps, membership changes).
///
/// Failures are thrown as ``StoreError`` and never trap: a failed write leaves the previous
/// committed state in place and the node can keep running.
public final class NodeStore: Sendable {
    /// The schema version this build writes (= number of migrations, = `PRAGMA user_version`).
    public static var schemaVersion: Int { Schema.version }

    /// The database file's path, as given.
    public let path: String
    private let pool: DatabasePool

    /// Opens (creating if needed) the database at `path`.
    ///
    /// - Creates the file with mode 0600 (SQLite gives the `-wal` and `-shm` files the same
    ///   mode); an existing file is tightened to 0600 when we own it.
    /// - Refuses a file whose `user_version` (or migration list) is newer than this build.
    /// - Runs `PRAGMA quick_check` and refuses a damaged file.
    /// - Applies pending migrations.
    public convenience init(path: String) throws(StoreError) {
        try self.init(path: path, prepareConnection: nil)
    }

    /// `prepareConnection` runs on every new connection after Weft's own settings; tests use it
    /// to simulate a full disk (`PRAGMA max_page_count`).
    init(path: String, prepareConnection: (@Sendable (Database) throws -> Void)?) throws(StoreError) {
        self.path = path
        guard !path.isEmpty else { throw .cannotOpen(path: path, detail: "empty path") }
        try NodeStore.createPrivateFile(path)

        var config = Configuration()
        config.busyMode = .timeout(5)          // another process (a `weft` CLI) may hold a lock briefly
        config.label = "weft.store"
        config.prepareDatabase { db in
            // Incarnations must never go backwards, even across a power cut.
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        if let prepareConnection { config.prepareDatabase(prepareConnection) }
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch {
            throw NodeStore.classify(error, path: path, opening: true)
        }
        self.pool = pool

        let migrator = Schema.migrator()
        do {
            try pool.read { db in
                let version = try Int.fetchOne(db, sql: "PRAGMA user_version") ?? 0
                if version > Schema.version {
                    throw StoreError.newerSchema(path: path, version: version)
                }
                if try migrator.hasBeenSuperseded(db) {
                    throw StoreError.newerSchema(path: path, version: max(version, Schema.version + 1))
                }
                let problems = try String.fetchAll(db, sql: "PRAGMA quick_check(5)")
                if problems != ["ok"] {
                    let detail = problems.prefix(3).joined(separator: "; ")
                    throw StoreError.corrupt(path: path, detail: "integrity check failed: \(detail)")
                }
            }
            try migrator.migrate(pool)
            // Schema sanity: the one-row table must have its row.
            _ = try pool.read { db in try NodeStore.localRow(db, path: path) }
        } catch {
            throw NodeStore.classify(error, path: path, opening: true)
        }
    }

    // MARK: Identity

    /// The stored 64-byte Ed25519 secret key (libsodium form), or nil if none was saved yet.
    /// The returned array is an unmanaged copy: wrap it in `SecretBytes` and drop it.
    public func loadIdentitySecret() throws(StoreError) -> [UInt8]? {
        try read { db in
            let row = try NodeStore.localRow(db, path: self.path)
            let value: DatabaseValue = row["identity_secret"]
            if value.isNull { return nil }
            guard let data = Data.fromDatabaseValue(value) else {
                throw StoreError.corrupt(path: self.path, detail: "identity secret is not a blob")
            }
            return [UInt8](data)
        }
    }

    /// Stores (or replaces) the identity secret key bytes.
    public func saveIdentitySecret(_ secret: [UInt8]) throws(StoreError) {
        try write { db in
            try db.execute(sql: "UPDATE local_node SET identity_secret = ? WHERE id = 1", arguments: [Data(secret)])
            guard db.changesCount == 1 else {
                throw StoreError.corrupt(path: self.path, detail: "the local_node row is missing")
            }
        }
    }

    // MARK: Incarnation

    /// The stored incarnation (0 if never set), without changing it.
    public func currentIncarnation() throws(StoreError) -> UInt64 {
        try read { db in try NodeStore.incarnation(try NodeStore.localRow(db, path: self.path), path: self.path) }
    }

    /// Atomically reads the stored incarnation, adds one, persists and returns it (1 on a fresh
    /// database). Call it at every start so a restarted node never reuses an incarnation.
    public func nextIncarnation() throws(StoreError) -> UInt64 {
        try write { db in
            let current = try NodeStore.incarnation(try NodeStore.localRow(db, path: self.path), path: self.path)
            guard current < UInt64.max else {
                throw StoreError.corrupt(path: self.path, detail: "incarnation is at its maximum")
            }
            let next = current + 1
            try db.execute(sql: "UPDATE local_node SET incarnation = ? WHERE id = 1",
                           arguments: [Int64(bitPattern: next)])
            return next
        }
    }

    /// Raises the stored incarnation to `value`; a lower or equal value changes nothing.
    public func saveIncarnation(_ value: UInt64) throws(StoreError) {
        try write { db in
            let current = try NodeStore.incarnation(try NodeStore.localRow(db, path: self.path), path: self.path)
            if value > current {
                try db.execute(sql: "UPDATE local_node SET incarnation = ? WHERE id = 1",
                               arguments: [Int64(bitPattern: value)])
            }
        }
    }

    // MARK: Members

    /// Every stored member, ordered by ID.
    public func loadMembers() throws(StoreError) -> [StoredMember] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, name, address, public_key, incarnation, state, updated_at,
                       record_signature, state_by, state_signature
                FROM members ORDER BY id
                """).map { try NodeStore.member($0, path: self.path) }
        }
    }

    /// Inserts or replaces the member with `m.id`.
    public func upsertMember(_ m: StoredMember) throws(StoreError) {
        try upsertMembers([m])
    }

    /// Inserts or replaces all of `ms` in one transaction: all or nothing.
    public func upsertMembers(_ ms: [StoredMember]) throws(StoreError) {
        if ms.isEmpty { return }
        try write { db in try NodeStore.upsertMembers(ms, in: db) }
    }

    /// The statements of `upsertMembers`, inside the caller's transaction (also used by `commit`).
    static func upsertMembers(_ ms: [StoredMember], in db: Database) throws {
        let statement = try db.cachedStatement(sql: """
            INSERT INTO members (id, name, address, public_key, incarnation, state, updated_at,
                                 record_signature, state_by, state_signature)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET
                name = excluded.name, address = excluded.address, public_key = excluded.public_key,
                incarnation = excluded.incarnation, state = excluded.state, updated_at = excluded.updated_at,
                record_signature = excluded.record_signature, state_by = excluded.state_by,
                state_signature = excluded.state_signature
            """)
        for m in ms {
            try statement.execute(arguments: [
                Data(m.id.bytes), m.name, m.address, Data(m.publicKey),
                Int64(bitPattern: m.incarnation), Int64(m.state.rawValue), m.updatedAt,
                Data(m.recordSignature), m.stateBy.map { Data($0.bytes) }, Data(m.stateSignature),
            ])
        }
    }

    /// Removes the member; removing an unknown ID is not an error.
    public func deleteMember(_ id: NodeID) throws(StoreError) {
        try write { db in
            try db.execute(sql: "DELETE FROM members WHERE id = ?", arguments: [Data(id.bytes)])
        }
    }

    // MARK: Meta

    /// Well-known `meta` keys. Any other key may be used too.
    public enum MetaKey {
        public static let clusterID = "cluster_id"
        public static let nodeName = "node_name"
        public static let listenAddress = "listen_address"
        public static let createdAt = "created_at"
        /// Set when `weft leave` completed (Unix milliseconds as text): the next start rejoins
        /// as a new member (see `resetToJoiner()`), then the key is removed.
        public static let leftAt = "left_at"
    }

    // MARK: Lifecycle

    /// What the database says about this node's past in a cluster (docs/operations.md,
    /// "Lifecycle"). Read-only.
    public struct ClusterEvidence: Equatable, Sendable {
        /// `meta.cluster_id`: the cluster whose key this node last started with.
        public var clusterID: String?
        /// Rows in `members` (other nodes this node has seen; may include itself).
        public var members: Int
        /// Rows in the address-allocation tables (every table named `ipam_*`).
        public var ipamRows: Int
        /// `meta.left_at`: when a `weft leave` completed, if it did and the node has not rejoined since.
        public var leftAt: String?

        /// True when the data dir belonged to a cluster: it names one, knows members, or holds a ring.
        public var belongsToCluster: Bool { clusterID != nil || members > 0 || ipamRows > 0 }

        public init(clusterID: String?, members: Int, ipamRows: Int, leftAt: String?) {
            self.clusterID = clusterID; self.members = members; self.ipamRows = ipamRows; self.leftAt = leftAt
        }
    }

    public func clusterEvidence() throws(StoreError) -> ClusterEvidence {
        let path = self.path
        return try read { db in
            func text(_ key: String) throws -> String? {
                guard let v = try DatabaseValue.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]), !v.isNull else { return nil }
                guard let t = String.fromDatabaseValue(v) else { throw StoreError.corrupt(path: path, detail: "meta value for \(key) is not text") }
                return t
            }
            let members = try Int.fetchOne(db, sql: "SELECT count(*) FROM members") ?? 0
            var ipamRows = 0
            for table in try NodeStore.ipamTables(db) {
                ipamRows += try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table.quotedDatabaseIdentifier)") ?? 0
            }
            return ClusterEvidence(clusterID: try text(MetaKey.clusterID), members: members, ipamRows: ipamRows, leftAt: try text(MetaKey.leftAt))
        }
    }

    /// Records that `weft leave` completed (`meta.left_at` = Unix milliseconds).
    public func recordLeave(atMilliseconds ms: Int64) throws(StoreError) {
        try setMeta(MetaKey.leftAt, String(ms))
    }

    /// Turns a node that left into a fresh joiner, in one transaction: keeps its identity,
    /// incarnation, cluster id and name; forgets every member, all address-allocation state
    /// (every `ipam_*` table: ring, allocations, overlay address) and the `left_at` marker.
    public func resetToJoiner() throws(StoreError) {
        try write { db in
            try db.execute(sql: "DELETE FROM members")
            for table in try NodeStore.ipamTables(db) {
                try db.execute(sql: "DELETE FROM \(table.quotedDatabaseIdentifier)")
            }
            try db.execute(sql: "DELETE FROM dns_record")
            try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [MetaKey.leftAt])
        }
    }

    /// The address-allocation tables, by name (`ipam_*`), whatever the IPAM schema version.
    static func ipamTables(_ db: Database) throws -> [String] {
        try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'ipam\\_%' ESCAPE '\\' ORDER BY name")
    }

    /// The value stored under `key`, or nil.
    public func meta(_ key: String) throws(StoreError) -> String? {
        try read { db in
            let value = try DatabaseValue.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key])
            guard let value, !value.isNull else { return nil }
            guard let text = String.fromDatabaseValue(value) else {
                throw StoreError.corrupt(path: self.path, detail: "meta value for \(key) is not text")
            }
            return text
        }
    }

    /// Stores `value` under `key`; nil deletes the key.
    public func setMeta(_ key: String, _ value: String?) throws(StoreError) {
        try write { db in
            if let value {
                try db.execute(sql: "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                               arguments: [key, value])
            } else {
                try db.execute(sql: "DELETE FROM meta WHERE key = ?", arguments: [key])
            }
        }
    }

    // MARK: Plumbing

    func read<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.read(body) } catch { throw NodeStore.classify(error, path: path, opening: false) }
    }

    func write<T>(_ body: (Database) throws -> T) throws(StoreError) -> T {
        do { return try pool.write(body) } catch { throw NodeStore.classify(error, path: path, opening: false) }
    }

    /// Maps any error to the taxonomy: damage is `.corrupt`, trouble while opening is
    /// `.cannotOpen`, anything later is `.io`.
    static func classify(_ error: any Error, path: String, opening: Bool) -> StoreError {
        if let e = error as? StoreError { return e }
        if let e = error as? DatabaseError {
            let detail = e.message ?? "SQLite error \(e.resultCode.rawValue)"
            switch e.resultCode {
            case .SQLITE_CORRUPT, .SQLITE_NOTADB:
                return .corrupt(path: path, detail: detail)
            default:
                return opening ? .cannotOpen(path: path, detail: detail) : .io("\(path): \(detail)")
            }
        }
        return opening ? .cannotOpen(path: path, detail: "\(error)") : .io("\(path): \(error)")
    }

    /// Creates the file 0600 before SQLite sees it (SQLite would use 0644 and the umask), or
    /// tightens an existing one. Reports a missing or unwritable directory clearly.
    private static func createPrivateFile(_ path: String) throws(StoreError) {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            var detail = String(cString: strerror(code))
            if code == ENOENT || code == ENOTDIR { detail += ": the directory does not exist" }
            if code == EACCES || code == EROFS || code == EPERM { detail += ": the file or directory is not writable by this user" }
            throw .cannotOpen(path: path, detail: detail)
        }
        defer { close(fd) }
        var st = stat()
        if fstat(fd, &st) == 0 {
            if (st.st_mode & S_IFMT) != S_IFREG {
                throw .cannotOpen(path: path, detail: "not a regular file")
            }
            if st.st_mode & 0o077 != 0 && st.st_uid == geteuid() {
                _ = fchmod(fd, 0o600)
            }
        }
    }

    private static func localRow(_ db: Database, path: String) throws -> Row {
        guard let row = try Row.fetchOne(db, sql: "SELECT identity_secret, incarnation FROM local_node WHERE id = 1") else {
            throw StoreError.corrupt(path: path, detail: "the local_node row is missing")
        }
        return row
    }

    private static func incarnation(_ row: Row, path: String) throws -> UInt64 {
        guard let value = Int64.fromDatabaseValue(row["incarnation"]) else {
            throw StoreError.corrupt(path: path, detail: "stored incarnation is not an integer")
        }
        return UInt64(bitPattern: value)
    }

    private static func member(_ row: Row, path: String) throws -> StoredMember {
        func bad(_ what: String) -> StoreError { .corrupt(path: path, detail: "members: \(what)") }
        guard let idData = Data.fromDatabaseValue(row["id"]), let id = NodeID(bytes: [UInt8](idData)) else {
            throw bad("an id is not 16 bytes")
        }
        guard let name = String.fromDatabaseValue(row["name"]),
              let address = String.fromDatabaseValue(row["address"]),
              let key = Data.fromDatabaseValue(row["public_key"]),
              let incarnation = Int64.fromDatabaseValue(row["incarnation"]),
              let updatedAt = Int64.fromDatabaseValue(row["updated_at"]),
              let stateRaw = Int64.fromDatabaseValue(row["state"]) else {
            throw bad("row \(id) has a column of the wrong type")
        }
        guard let raw = UInt8(exactly: stateRaw), let state = Membership.MemberState(rawValue: raw) else {
            throw bad("row \(id) has unknown state \(stateRaw)")
        }
        let recordSignature = Data.fromDatabaseValue(row["record_signature"]).map { [UInt8]($0) } ?? []
        let stateSignature = Data.fromDatabaseValue(row["state_signature"]).map { [UInt8]($0) } ?? []
        var stateBy: NodeID? = nil
        if let by = Data.fromDatabaseValue(row["state_by"]) {
            guard let b = NodeID(bytes: [UInt8](by)) else { throw bad("row \(id) has a state_by that is not 16 bytes") }
            stateBy = b
        }
        return StoredMember(id: id, name: name, address: address, publicKey: [UInt8](key),
                            incarnation: UInt64(bitPattern: incarnation), state: state, updatedAt: updatedAt,
                            recordSignature: recordSignature, stateBy: stateBy, stateSignature: stateSignature)
    }
}
