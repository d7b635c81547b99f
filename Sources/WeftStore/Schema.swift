import GRDB

/// The schema, as an append-only list of migrations. `NodeStore.schemaVersion` is the number
/// of entries, and is also written to `PRAGMA user_version` so a newer file is recognised
/// before anything touches it.
///
/// To change the schema, append one entry (never edit or reorder a released one), e.g.
///
///     ("v2-ipam", { db in
///         try db.execute(sql: "CREATE TABLE ipam_ranges (...)")
///         try db.execute(sql: "CREATE TABLE ipam_allocations (...)")
///     }),
///
/// Each migration runs in its own transaction together with the `user_version` bump.
enum Schema {
    static let migrations: [(id: String, apply: @Sendable (Database) throws -> Void)] = [
        ("v1-initial", { db in
            // Small key/value facts about this node: cluster id, node name, listen address,
            // created-at, ... Values are text; callers encode.
            try db.execute(sql: """
                CREATE TABLE meta (
                    key   TEXT PRIMARY KEY NOT NULL,
                    value TEXT NOT NULL
                ) WITHOUT ROWID
                """)
            // This node's own state: exactly one row (id = 1).
            //   identity_secret: the 64-byte libsodium Ed25519 secret key (NULL until saved)
            //   incarnation: highest incarnation ever used, stored as the UInt64 bit pattern
            try db.execute(sql: """
                CREATE TABLE local_node (
                    id              INTEGER PRIMARY KEY CHECK (id = 1),
                    identity_secret BLOB,
                    incarnation     INTEGER NOT NULL DEFAULT 0
                )
                """)
            try db.execute(sql: "INSERT INTO local_node (id, identity_secret, incarnation) VALUES (1, NULL, 0)")
            // Members as last known. incarnation is the UInt64 bit pattern; state is
            // Membership.MemberState.rawValue; updated_at is Unix milliseconds.
            try db.execute(sql: """
                CREATE TABLE members (
                    id          BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 16),
                    name        TEXT NOT NULL,
                    address     TEXT NOT NULL,
                    public_key  BLOB NOT NULL,
                    incarnation INTEGER NOT NULL,
                    state       INTEGER NOT NULL,
                    updated_at  INTEGER NOT NULL
                ) WITHOUT ROWID
                """)
        }),
    ]

    static var version: Int { migrations.count }

    static func migrator() -> DatabaseMigrator {
        var m = DatabaseMigrator()
        for (index, migration) in migrations.enumerated() {
            let version = index + 1
            let apply = migration.apply
            m.registerMigration(migration.id) { db in
                try apply(db)
                try db.execute(sql: "PRAGMA user_version = \(version)")
            }
        }
        return m
    }
}
