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
            if !batch.members.isEmpty {
                let statement = try db.cachedStatement(sql: """
                    INSERT INTO members (id, name, address, public_key, incarnation, state, updated_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET
                        name = excluded.name, address = excluded.address, public_key = excluded.public_key,
                        incarnation = excluded.incarnation, state = excluded.state, updated_at = excluded.updated_at
                    """)
                for m in batch.members {
                    try statement.execute(arguments: [
                        Data(m.id.bytes), m.name, m.address.description, Data(m.publicKey),
                        Int64(bitPattern: m.incarnation), Int64(m.state.rawValue), now,
                    ])
                }
            }
            for id in batch.forgotten {
                try db.execute(sql: "DELETE FROM members WHERE id = ?", arguments: [Data(id.bytes)])
            }
            try NodeStore.applyIPAM(batch.ipam, in: db)
        }
    }
}
