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
        ("v2-ipam", { db in
            // The IPAM ring this node belongs to (docs/ipam.md): exactly one row once the node
            // created or joined a cluster. creator is a NodeID; nonce the UInt64 bit pattern.
            try db.execute(sql: """
                CREATE TABLE ipam_cluster (
                    id            INTEGER PRIMARY KEY CHECK (id = 1),
                    creator       BLOB NOT NULL CHECK (length(creator) = 16),
                    nonce         INTEGER NOT NULL,
                    subnet_base   INTEGER NOT NULL,
                    subnet_prefix INTEGER NOT NULL
                )
                """)
            // Ring entries by token (first address of the range); version fits in a signed
            // 64-bit integer (< 2^62 by construction).
            try db.execute(sql: """
                CREATE TABLE ipam_ring (
                    token   INTEGER PRIMARY KEY NOT NULL,
                    owner   BLOB NOT NULL CHECK (length(owner) = 16),
                    version INTEGER NOT NULL,
                    free    INTEGER NOT NULL
                )
                """)
            // This node's allocations: handle -> address; state 0 = active, 1 = in conflict
            // (the range was taken over while this node was away; kept so an operator sees it).
            try db.execute(sql: """
                CREATE TABLE ipam_allocation (
                    handle  TEXT PRIMARY KEY NOT NULL,
                    address INTEGER NOT NULL UNIQUE,
                    state   INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID
                """)
        }),
        ("v3-ipam-holdings", { db in
            // IPAM v2 (docs/ipam.md): other nodes' holdings registers (every address their
            // containers may use; never handed out here). One row per owner with its version
            // (UInt64 bit pattern) and open flag (1 = it allocates without confirmation), one
            // row per held address.
            try db.execute(sql: """
                CREATE TABLE ipam_holdings (
                    owner   BLOB PRIMARY KEY NOT NULL CHECK (length(owner) = 16),
                    version INTEGER NOT NULL,
                    open    INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID
                """)
            try db.execute(sql: """
                CREATE TABLE ipam_holding (
                    owner   BLOB NOT NULL CHECK (length(owner) = 16),
                    address INTEGER NOT NULL,
                    PRIMARY KEY (owner, address)
                ) WITHOUT ROWID
                """)
            // This node's own register version (its addresses are the ipam_allocation rows).
            // ipam_allocation.state gains the value 2: allocated, waiting for confirmation.
            try db.execute(sql: """
                CREATE TABLE ipam_self (
                    id               INTEGER PRIMARY KEY CHECK (id = 1),
                    holdings_version INTEGER NOT NULL
                )
                """)
        }),
        ("v4-dns-records", { db in
            // Name records (docs/dns.md): every node's container names, keyed by owner and
            // allocation handle, with the owner's version (UInt64 bit pattern) and a tombstone flag.
            try db.execute(sql: """
                CREATE TABLE dns_record (
                    owner   BLOB NOT NULL CHECK (length(owner) = 16),
                    handle  TEXT NOT NULL,
                    version INTEGER NOT NULL,
                    deleted INTEGER NOT NULL CHECK (deleted IN (0, 1)),
                    name    TEXT NOT NULL,
                    address INTEGER NOT NULL,
                    PRIMARY KEY (owner, handle)
                ) WITHOUT ROWID
                """)
        }),
        ("v5-member-claims", { db in
            // Signed membership claims (issue 9, docs/membership.md): the member's signature of
            // its record, and the state claim (accuser or leaving member, and its signature), so
            // a restart re-verifies what it loads. Empty for rows written before.
            try db.execute(sql: "ALTER TABLE members ADD COLUMN record_signature BLOB NOT NULL DEFAULT x''")
            try db.execute(sql: "ALTER TABLE members ADD COLUMN state_by BLOB")
            try db.execute(sql: "ALTER TABLE members ADD COLUMN state_signature BLOB NOT NULL DEFAULT x''")
        }),
        ("v6-evictions", { db in
            // Eviction records (issue 9, docs/security.md "Eviction"): the newest signed record
            // per evicted (or readmitted) identity, re-verified at start.
            try db.execute(sql: """
                CREATE TABLE eviction (
                    subject   BLOB NOT NULL PRIMARY KEY CHECK (length(subject) = 16),
                    name      TEXT NOT NULL,
                    version   INTEGER NOT NULL,
                    evicted   INTEGER NOT NULL CHECK (evicted IN (0, 1)),
                    by_id     BLOB NOT NULL CHECK (length(by_id) = 16),
                    by_key    BLOB NOT NULL CHECK (length(by_key) = 32),
                    signature BLOB NOT NULL CHECK (length(signature) = 64)
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
