import Foundation
import GRDB
import WeftCore

extension NodeStore: NodeStorage {
    /// One input's durable changes (members, forgotten members, incarnation, IPAM) in one SQLite
    /// transaction: all or nothing. `Node.Instance` calls it before any effect of the input leaves.
    public func commit(_ batch: Node.Batch) throws {
        guard !batch.isEmpty else { return }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        try write { db in
            if let inc = batch.incarnation {
                try db.execute(sql: "UPDATE local_node SET incarnation = MAX(incarnation, ?) WHERE id = 1",
                               arguments: [Int64(bitPattern: inc)])
            }
            try NodeStore.upsertMembers(batch.members.map {
                StoredMember(id: $0.id, name: $0.name, address: $0.address.description, publicKey: $0.publicKey,
                             incarnation: $0.incarnation, state: $0.state, updatedAt: now,
                             recordSignature: $0.recordSignature, stateBy: $0.stateBy, stateSignature: $0.stateSignature)
            }, in: db)
            for id in batch.forgotten {
                try db.execute(sql: "DELETE FROM members WHERE id = ?", arguments: [Data(id.bytes)])
            }
            try NodeStore.applyIPAM(batch.ipam, in: db)
            if !batch.evictions.isEmpty {
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO eviction (subject, name, version, evicted, by_id, by_key, signature) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(subject) DO UPDATE SET name = excluded.name, version = excluded.version, evicted = excluded.evicted,
                        by_id = excluded.by_id, by_key = excluded.by_key, signature = excluded.signature
                    """)
                for e in batch.evictions {
                    try statement.execute(arguments: [Data(e.subject.bytes), e.name, Int64(bitPattern: e.version), e.evicted ? 1 : 0,
                                                      Data(e.by.bytes), Data(e.byKey), Data(e.signature)])
                }
            }
            if !batch.dns.isEmpty {
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO dns_record (owner, handle, version, deleted, name, address) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(owner, handle) DO UPDATE SET version = excluded.version, deleted = excluded.deleted,
                        name = excluded.name, address = excluded.address
                    """)
                for (k, r) in batch.dns {
                    try statement.execute(arguments: [Data(k.owner.bytes), k.handle, Int64(bitPattern: r.version),
                                                      r.deleted ? 1 : 0, r.name, Int64(r.address)])
                }
            }
        }
    }

    /// Every stored eviction record (their signatures are checked again by the node at start).
    public func loadEvictions() throws(StoreError) -> [Node.Eviction] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT subject, name, version, evicted, by_id, by_key, signature FROM eviction ORDER BY subject").map { row in
                let subject: Data = row["subject"]
                let by: Data = row["by_id"]
                let key: Data = row["by_key"]
                let signature: Data = row["signature"]
                let version: Int64 = row["version"]
                let evicted: Int64 = row["evicted"]
                guard let s = NodeID(bytes: Array(subject)), let b = NodeID(bytes: Array(by)) else {
                    throw StoreError.corrupt(path: self.path, detail: "eviction: a row is not a valid record")
                }
                return Node.Eviction(subject: s, name: row["name"], version: UInt64(bitPattern: version), evicted: evicted == 1,
                                     by: b, byKey: Array(key), signature: Array(signature))
            }
        }
    }

    /// Every stored name record. Rows that break the rules (a name that is not a DNS label, an
    /// address out of range) are corruption.
    public func loadRecords() throws(StoreError) -> [DNS.Records.Key: DNS.Records.Record] {
        try read { db in
            var out: [DNS.Records.Key: DNS.Records.Record] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT owner, handle, version, deleted, name, address FROM dns_record") {
                let ownerBytes: Data = row["owner"]
                let address: Int64 = row["address"]
                let name: String = row["name"]
                let deleted: Int64 = row["deleted"]
                guard let owner = NodeID(bytes: Array(ownerBytes)), (0...Int64(UInt32.max)).contains(address),
                      deleted == 1 || DNS.Name.labelProblem(name) == nil else {
                    throw StoreError.corrupt(path: self.path, detail: "dns_record: a row is not a valid record")
                }
                let version: Int64 = row["version"]
                out[DNS.Records.Key(owner: owner, handle: row["handle"])] =
                    DNS.Records.Record(version: UInt64(bitPattern: version), name: name, address: UInt32(address), deleted: deleted == 1)
            }
            return out
        }
    }
}
