import Foundation
import GRDB
import WeftCore

extension NodeStore {
    /// Commits IPAM changes in one transaction, in order. Called before the daemon answers the
    /// request that produced them (an allocation is durable before its address is handed out).
    public func applyIPAM(_ changes: [IPAM.PersistChange]) throws(StoreError) {
        guard !changes.isEmpty else { return }
        try write { db in try NodeStore.applyIPAM(changes, in: db) }
    }

    /// The statements of `applyIPAM`, inside the caller's transaction (also used by `commit`).
    static func applyIPAM(_ changes: [IPAM.PersistChange], in db: Database) throws {
        do {
            for change in changes {
                switch change {
                case .cluster(let cluster, let subnet):
                    try db.execute(sql: """
                        INSERT INTO ipam_cluster (id, creator, nonce, subnet_base, subnet_prefix) VALUES (1, ?, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET creator = excluded.creator, nonce = excluded.nonce,
                            subnet_base = excluded.subnet_base, subnet_prefix = excluded.subnet_prefix
                        """, arguments: [Data(cluster.creator.bytes), Int64(bitPattern: cluster.nonce), Int64(subnet.base), Int64(subnet.prefixLength)])
                case .ringEntries(let entries):
                    for e in entries {
                        try db.execute(sql: """
                            INSERT INTO ipam_ring (token, owner, version, free) VALUES (?, ?, ?, ?)
                            ON CONFLICT(token) DO UPDATE SET owner = excluded.owner, version = excluded.version, free = excluded.free
                            """, arguments: [Int64(e.token), Data(e.owner.bytes), Int64(bitPattern: e.version), Int64(e.free)])
                    }
                case .allocation(let handle, let address):
                    try db.execute(sql: """
                        INSERT INTO ipam_allocation (handle, address, state) VALUES (?, ?, 0)
                        ON CONFLICT(handle) DO UPDATE SET address = excluded.address, state = 0
                        """, arguments: [handle, Int64(address)])
                case .unconfirmedAllocation(let handle, let address):
                    try db.execute(sql: """
                        INSERT INTO ipam_allocation (handle, address, state) VALUES (?, ?, 2)
                        ON CONFLICT(handle) DO UPDATE SET address = excluded.address, state = 2
                        """, arguments: [handle, Int64(address)])
                case .holdings(let owner, let h):
                    let o = Data(owner.bytes)
                    try db.execute(sql: """
                        INSERT INTO ipam_holdings (owner, version, open) VALUES (?, ?, ?)
                        ON CONFLICT(owner) DO UPDATE SET version = excluded.version, open = excluded.open
                        """, arguments: [o, Int64(bitPattern: h.version), h.open ? 1 : 0])
                    try writeHolding(owner: o, addresses: h.addresses, in: db)
                case .ownHoldingsVersion(let v):
                    try db.execute(sql: """
                        INSERT INTO ipam_self (id, holdings_version) VALUES (1, ?)
                        ON CONFLICT(id) DO UPDATE SET holdings_version = excluded.holdings_version
                        """, arguments: [Int64(bitPattern: v)])
                case .release(let handle):
                    try db.execute(sql: "DELETE FROM ipam_allocation WHERE handle = ?", arguments: [handle])
                case .conflicted(let handle, let address):
                    try db.execute(sql: """
                        INSERT INTO ipam_allocation (handle, address, state) VALUES (?, ?, 1)
                        ON CONFLICT(handle) DO UPDATE SET address = excluded.address, state = 1
                        """, arguments: [handle, Int64(address)])
                }
            }
        }
    }

    /// Makes the stored addresses of `owner` equal to `addresses` (sorted, as `Holdings`
    /// keeps them) by writing only the difference. A register changes by one or two addresses
    /// per allocation, and every voter stores it on every write it acknowledges: deleting and
    /// re-inserting all of an owner's rows made each allocation cost O(its owner's holdings)
    /// row writes on every voter (docs/benchmarks.md, stop 20). Cached statements: no re-parse.
    static func writeHolding(owner o: Data, addresses given: [UInt32], in db: Database) throws {
        // `Holdings` promises sorted and distinct; the merge below relies on it, so make sure.
        var addresses = given
        if zip(given, given.dropFirst()).contains(where: { $0 >= $1 }) { addresses = Array(Set(given)).sorted() }
        var stored: [Int64] = []
        let select = try db.cachedStatement(sql: "SELECT address FROM ipam_holding WHERE owner = ? ORDER BY address")
        let rows = try Row.fetchCursor(select, arguments: [o])
        while let row = try rows.next() { stored.append(row[0]) }
        let insert = try db.cachedStatement(sql: "INSERT INTO ipam_holding (owner, address) VALUES (?, ?)")
        let delete = try db.cachedStatement(sql: "DELETE FROM ipam_holding WHERE owner = ? AND address = ?")
        // One merge walk over the two sorted lists.
        var i = 0, j = 0
        while i < stored.count || j < addresses.count {
            let want = j < addresses.count ? Int64(addresses[j]) : nil
            let have = i < stored.count ? stored[i] : nil
            if let have, want == nil || have < want! {
                try delete.execute(arguments: [o, have]); i += 1
            } else if let want, have == nil || want < have! {
                try insert.execute(arguments: [o, want]); j += 1
            } else {
                i += 1; j += 1
            }
        }
    }

    /// The stored IPAM state, or nil when this node never created or joined a ring.
    /// The ring is re-validated on the way in; a ring that breaks the invariants is `.corrupt`.
    public func loadIPAMSnapshot() throws(StoreError) -> IPAM.Instance.Snapshot? {
        let path = self.path
        return try read { db -> IPAM.Instance.Snapshot? in
            guard let row = try Row.fetchOne(db, sql: "SELECT creator, nonce, subnet_base, subnet_prefix FROM ipam_cluster WHERE id = 1") else {
                return nil
            }
            func bad(_ what: String) -> StoreError { .corrupt(path: path, detail: "ipam: \(what)") }
            guard let creatorData = Data.fromDatabaseValue(row["creator"]), let creator = NodeID(bytes: [UInt8](creatorData)),
                  let nonce = Int64.fromDatabaseValue(row["nonce"]),
                  let base = Int64.fromDatabaseValue(row["subnet_base"]), let baseU = UInt32(exactly: base),
                  let prefix = Int64.fromDatabaseValue(row["subnet_prefix"]), let prefixU = UInt8(exactly: prefix)
            else { throw bad("the cluster row has a column of the wrong type") }
            let subnet: IPAM.Subnet
            do { subnet = try IPAM.Subnet(base: baseU, prefixLength: prefixU) } catch { throw bad("stored subnet: \(error)") }
            let cluster = IPAM.ClusterID(creator: creator, nonce: UInt64(bitPattern: nonce))

            var entries: [IPAM.Entry] = []
            for r in try Row.fetchAll(db, sql: "SELECT token, owner, version, free FROM ipam_ring ORDER BY token") {
                guard let token = Int64.fromDatabaseValue(r["token"]), let t = UInt32(exactly: token),
                      let ownerData = Data.fromDatabaseValue(r["owner"]), let owner = NodeID(bytes: [UInt8](ownerData)),
                      let version = Int64.fromDatabaseValue(r["version"]),
                      let free = Int64.fromDatabaseValue(r["free"]), let f = UInt32(exactly: free)
                else { throw bad("a ring row has a column of the wrong type") }
                entries.append(IPAM.Entry(token: t, owner: owner, version: UInt64(bitPattern: version), free: f))
            }
            let ring: IPAM.Ring?
            if entries.isEmpty {
                ring = nil
            } else {
                do { ring = try IPAM.Ring(cluster: cluster, subnet: subnet, entries: entries) } catch { throw bad("stored ring: \(error)") }
            }
            var allocations: [String: UInt32] = [:]
            var conflicts: [String: UInt32] = [:]
            var unconfirmed: Set<String> = []
            for r in try Row.fetchAll(db, sql: "SELECT handle, address, state FROM ipam_allocation") {
                guard let handle = String.fromDatabaseValue(r["handle"]),
                      let address = Int64.fromDatabaseValue(r["address"]), let a = UInt32(exactly: address),
                      let state = Int64.fromDatabaseValue(r["state"])
                else { throw bad("an allocation row has a column of the wrong type") }
                switch state {
                case 0: allocations[handle] = a
                case 1: conflicts[handle] = a
                case 2: allocations[handle] = a; unconfirmed.insert(handle)
                default: throw bad("allocation '\(handle)' has unknown state \(state) (0 active, 1 conflict, 2 unconfirmed)")
                }
            }
            // Other nodes' registers: validated like wire data (sorted by the query, in the subnet).
            var holdings: [NodeID: IPAM.Holdings] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT owner, version, open FROM ipam_holdings") {
                guard let od = Data.fromDatabaseValue(r["owner"]), let owner = NodeID(bytes: [UInt8](od)),
                      let v = Int64.fromDatabaseValue(r["version"]), let open = Int64.fromDatabaseValue(r["open"])
                else { throw bad("a holdings row has a column of the wrong type") }
                holdings[owner] = IPAM.Holdings(version: UInt64(bitPattern: v), addresses: [], open: open != 0)
            }
            for r in try Row.fetchAll(db, sql: "SELECT owner, address FROM ipam_holding ORDER BY owner, address") {
                guard let od = Data.fromDatabaseValue(r["owner"]), let owner = NodeID(bytes: [UInt8](od)),
                      let address = Int64.fromDatabaseValue(r["address"]), let a = UInt32(exactly: address)
                else { throw bad("a holding row has a column of the wrong type") }
                guard holdings[owner] != nil else { throw bad("held address \(IPAM.format(a)) of \(owner.short) has no register row") }
                holdings[owner]!.addresses.append(a)
            }
            for (owner, h) in holdings {
                if let why = h.violation(in: subnet) { throw bad("register of \(owner.short): \(why)") }
            }
            var ownVersion: UInt64 = 0
            if let v = try Int64.fetchOne(db, sql: "SELECT holdings_version FROM ipam_self WHERE id = 1") { ownVersion = UInt64(bitPattern: v) }
            return IPAM.Instance.Snapshot(ring: ring, allocations: allocations, conflicts: conflicts, unconfirmed: unconfirmed,
                                          holdings: holdings, ownHoldingsVersion: ownVersion)
        }
    }
}
