extension DNS {
    /// The cluster's name records as a CRDT: each node owns the records of its own containers.
    /// A record is keyed by (owner, handle) and carries the owner's version counter; merge keeps
    /// the higher version per key (ties: a tombstone wins, then the larger name/address, so
    /// merge is a join of a total order — commutative, associative, idempotent). Removal is a
    /// tombstone, so a removed name cannot come back from an old copy. Records of owners that
    /// are not live are kept but not served, and are served again when the owner returns.
    public struct Records: Sendable, Equatable {
        public struct Key: Hashable, Sendable, Comparable {
            public var owner: NodeID
            public var handle: String
            public init(owner: NodeID, handle: String) { self.owner = owner; self.handle = handle }
            public static func < (a: Key, b: Key) -> Bool { (a.owner, a.handle) < (b.owner, b.handle) }
        }

        public struct Record: Sendable, Equatable {
            public var version: UInt64
            /// One DNS label, lower case (empty in a tombstone).
            public var name: String
            public var address: UInt32
            public var deleted: Bool
            public init(version: UInt64, name: String, address: UInt32, deleted: Bool) {
                self.version = version; self.name = name; self.address = address; self.deleted = deleted
            }

            /// The total order merge takes the maximum of.
            func beats(_ o: Record) -> Bool {
                if version != o.version { return version > o.version }
                if deleted != o.deleted { return deleted }
                if name != o.name { return name > o.name }
                return address > o.address
            }
        }

        public private(set) var entries: [Key: Record] = [:]

        public init() {}

        /// The highest version this owner used (the next change takes one more).
        public func lastVersion(of owner: NodeID) -> UInt64 {
            entries.filter { $0.key.owner == owner }.map(\.value.version).max() ?? 0
        }

        /// Merges remote records; returns the ones that changed here (the news to pass on).
        @discardableResult
        public mutating func merge(_ remote: [Key: Record]) -> [Key: Record] {
            var changed: [Key: Record] = [:]
            for (k, r) in remote {
                if let mine = entries[k], !r.beats(mine) { continue }
                entries[k] = r
                changed[k] = r
            }
            return changed
        }

        /// The owner names a container: a new version of its record.
        public mutating func set(owner: NodeID, handle: String, name: String, address: UInt32) -> (Key, Record) {
            let key = Key(owner: owner, handle: handle)
            let r = Record(version: lastVersion(of: owner) + 1, name: name.lowercased(), address: address, deleted: false)
            entries[key] = r
            return (key, r)
        }

        /// The owner removes a container's record: a tombstone. Nil when there was none.
        public mutating func remove(owner: NodeID, handle: String) -> (Key, Record)? {
            let key = Key(owner: owner, handle: handle)
            guard let old = entries[key], !old.deleted else { return nil }
            let r = Record(version: lastVersion(of: owner) + 1, name: "", address: 0, deleted: true)
            entries[key] = r
            return (key, r)
        }

        /// The served view: live owners' records, by name (addresses sorted) and by address.
        public func zoneData(live: Set<NodeID>) -> (names: [String: [UInt32]], reverse: [UInt32: String]) {
            var names: [String: [UInt32]] = [:]
            var reverse: [UInt32: String] = [:]
            for (k, r) in entries where !r.deleted && live.contains(k.owner) {
                names[r.name, default: []].append(r.address)
                if let other = reverse[r.address], other < r.name { continue }
                reverse[r.address] = r.name
            }
            for n in names.keys { names[n]!.sort() }
            return (names, reverse)
        }

        // MARK: Wire

        /// The first byte of every records message: it tells DNS apart from IPAM on the shared
        /// application channel (IPAM messages start with their version byte, 1).
        public static let tag: UInt8 = 0xD1
        /// Records per message at most, checked before anything is allocated.
        public static let maxRecords = 1 << 16

        /// `tag | count u32 | count × (owner 16 | handle len u8, bytes | version u64 | flags u8 |
        /// name len u8, bytes | address u32)`.
        public static func encode(_ records: [Key: Record]) -> [UInt8] {
            var w: [UInt8] = [tag]
            func u32(_ v: UInt32) { for s in [24, 16, 8, 0] { w.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
            func u64(_ v: UInt64) { u32(UInt32(truncatingIfNeeded: v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
            u32(UInt32(records.count))
            for (k, r) in records.sorted(by: { $0.key < $1.key }) {
                w += k.owner.bytes
                let h = Array(k.handle.utf8.prefix(255)); w.append(UInt8(h.count)); w += h
                u64(r.version)
                w.append(r.deleted ? 1 : 0)
                let n = Array(r.name.utf8.prefix(63)); w.append(UInt8(n.count)); w += n
                u32(r.address)
            }
            return w
        }

        public static func decode(_ bytes: [UInt8]) throws(WireError) -> [Key: Record] {
            var i = 0
            func need(_ n: Int, _ what: String) throws(WireError) {
                guard n >= 0, bytes.count - i >= n else { throw .truncated(what) }
            }
            func u8() throws(WireError) -> UInt8 { try need(1, "records"); defer { i += 1 }; return bytes[i] }
            func u32() throws(WireError) -> UInt32 {
                try need(4, "records")
                defer { i += 4 }
                return UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16 | UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
            }
            guard try u8() == tag else { throw .unsupported("not a records message") }
            let count = Int(try u32())
            // Each record is at least 16 + 1 + 8 + 1 + 1 + 4 bytes: refuse counts the bytes cannot hold.
            guard count <= maxRecords, count <= (bytes.count - i) / 31 else { throw .tooLong(count) }
            var out: [Key: Record] = [:]
            for _ in 0..<count {
                try need(16, "owner")
                guard let owner = NodeID(bytes: bytes[i..<(i + 16)]) else { throw .truncated("owner") }
                i += 16
                let hl = Int(try u8()); try need(hl, "handle")
                guard let handle = String(validating: bytes[i..<(i + hl)], as: UTF8.self) else { throw .badLabel("handle is not UTF-8") }
                i += hl
                let version = UInt64(try u32()) << 32 | UInt64(try u32())
                let flags = try u8()
                guard flags <= 1 else { throw .unsupported("record flags \(flags)") }
                let nl = Int(try u8()); try need(nl, "name")
                guard let name = String(validating: bytes[i..<(i + nl)], as: UTF8.self) else { throw .badLabel("name is not UTF-8") }
                i += nl
                let address = try u32()
                if flags == 0, let problem = Name.labelProblem(name) { throw .badLabel("record name \(problem)") }
                let r = Record(version: version, name: name.lowercased(), address: address, deleted: flags == 1)
                let k = Key(owner: owner, handle: handle)
                if let seen = out[k], !r.beats(seen) { continue }
                out[k] = r
            }
            guard i == bytes.count else { throw .unsupported("\(bytes.count - i) trailing bytes") }
            return out
        }
    }
}
