extension Node.Instance {
    /// The application state a push-pull carries: the IPAM ring, the name records, the data
    /// plane's name and the eviction records, each length-prefixed behind one tag byte
    /// (`docs/protocol.md`).
    ///
    /// `0xA5 | ipam length u32 | ipam | records length u32 | records [| mode length u32 | mode [| evictions length u32 | evictions]]`
    ///
    /// The last two parts are sent only when needed (an empty mode is the default data plane),
    /// so a default cluster without evictions sends what it always did. Parts after the fourth
    /// are ignored (room for later ones).
    static let appStateTag: UInt8 = 0xA5

    static func packAppState(ipam: [UInt8], dns: [UInt8], dataPlane: String? = nil, evictions: [UInt8]? = nil) -> [UInt8] {
        var parts = [ipam, dns]
        if dataPlane != nil || evictions != nil { parts.append(Array((dataPlane ?? "").utf8)) }
        if let evictions { parts.append(evictions) }
        var w: [UInt8] = [appStateTag]
        for part in parts {
            let n = UInt32(part.count)
            w += [UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
            w += part
        }
        return w
    }

    /// The parts of a packed app state, or nil when it is not one (an older node's bare ring).
    /// `dataPlane` is nil when the sender runs the default (encrypted) data plane; `evictions`
    /// is empty when the sender sent none.
    static func unpackAppState(_ bytes: [UInt8]) -> (ipam: [UInt8], dns: [UInt8], dataPlane: String?, evictions: [UInt8])? {
        guard bytes.first == appStateTag else { return nil }
        var i = 1
        var parts: [[UInt8]] = []
        while parts.count < 2 || (i < bytes.count && parts.count < 8) {
            guard bytes.count - i >= 4 else { return nil }
            let n = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            i += 4
            guard bytes.count - i >= n else { return nil }
            parts.append(Array(bytes[i..<(i + n)]))
            i += n
        }
        guard i == bytes.count else { return nil }
        var mode: String?
        if parts.count >= 3, !parts[2].isEmpty {
            guard parts[2].count <= 32, let s = String(validating: parts[2], as: UTF8.self) else { return nil }
            mode = s
        }
        return (parts[0], parts[1], mode, parts.count >= 4 ? parts[3] : [])
    }

    /// The zone this node serves: live members' records (this node included).
    public var zone: DNS.Zone {
        var live: Set<NodeID> = [me]
        for m in membership.members where m.state == .alive || m.state == .suspect { live.insert(m.id) }
        let (names, reverse) = dns.zoneData(live: live)
        return DNS.Zone(domain: settings.dnsDomain, names: names, reverse: reverse, subnet: ipam.ring?.subnet)
    }

    /// Names this node's own container `handle` at `address`: recorded, persisted, gossiped.
    mutating func nameRecord(handle: String, name: String, address: UInt32, _ w: inout Work) {
        let key = DNS.Records.Key(owner: me, handle: handle)
        if let r = dns.entries[key], !r.deleted, r.name == name.lowercased(), r.address == address { return }
        let (k, r) = dns.set(owner: me, handle: handle, name: name, address: address)
        publish([k: r], &w)
    }

    /// The container is gone: a tombstone for its record, if it had one.
    mutating func unnameRecord(handle: String, _ w: inout Work) {
        guard let (k, r) = dns.remove(owner: me, handle: handle) else { return }
        publish([k: r], &w)
    }

    mutating func publish(_ records: [DNS.Records.Key: DNS.Records.Record], _ w: inout Work) {
        for (k, r) in records { w.batch.dns[k] = r }
        _ = membership.enqueueBroadcast(DNS.Records.encode(records), key: nil)
    }

    /// Records from gossip or a push-pull: merged; news is persisted and passed on.
    mutating func recordData(_ bytes: [UInt8], rebroadcast: Bool, _ w: inout Work) {
        let remote: [DNS.Records.Key: DNS.Records.Record]
        do { remote = try DNS.Records.decode(bytes) } catch {
            w.effects.append(.dropped("dns-records-malformed"))
            return
        }
        // Nobody else may speak for this node's own records.
        let news = dns.merge(remote.filter { $0.key.owner != me })
        guard !news.isEmpty else { return }
        for (k, r) in news { w.batch.dns[k] = r }
        if rebroadcast { _ = membership.enqueueBroadcast(bytes, key: nil) }
    }

    /// Checks a container name before anything is allocated.
    public static func validate(name: String) -> String? {
        DNS.Name.labelProblem(name).map { "invalid name '\(name)': \($0) (a DNS label: letters, digits and '-', 1 to 63 bytes)" }
    }
}

extension Node.Instance {
    /// Why a name could not be added or removed.
    public enum NameError: Error, Equatable, Sendable, CustomStringConvertible {
        case invalid(String)
        case notFound(String)
        case storage(Node.StorageFailure)
        public var description: String {
            switch self {
            case .invalid(let w): return w
            case .notFound(let n): return "this node has no record '\(n)' added with `weft dns add` (container names go with their container)"
            case .storage(let f): return f.description
            }
        }
        public var isNotFound: Bool { if case .notFound = self { return true } else { return false } }
        public var isStorage: Bool { if case .storage = self { return true } else { return false } }
    }

    static func serviceHandle(_ name: String, _ address: UInt32) -> String { "dns:\(name.lowercased()):\(IPAM.format(address))" }

    /// `weft dns add NAME ADDRESS`: a name for a service outside containers, owned by this node.
    public mutating func addName(_ name: String, address: UInt32, now: Instant) -> (result: Result<Void, NameError>, effects: [Node.Effect]) {
        if let problem = Node.Instance.validate(name: name) { return (.failure(.invalid(problem)), []) }
        let r = transact(now: now) { node, w in
            node.nameRecord(handle: Node.Instance.serviceHandle(name, address), name: name, address: address, &w)
        }
        if let f = r.failure { return (.failure(.storage(f)), r.effects) }
        return (.success(()), r.effects)
    }

    /// `weft dns remove NAME [ADDRESS]`: removes names added with `addName`.
    public mutating func removeName(_ name: String, address: UInt32?, now: Instant) -> (result: Result<Void, NameError>, effects: [Node.Effect]) {
        let n = name.lowercased()
        let keys = dns.entries.filter { k, r in
            k.owner == me && k.handle.hasPrefix("dns:") && !r.deleted && r.name == n && (address == nil || r.address == address)
        }.keys.sorted()
        guard !keys.isEmpty else { return (.failure(.notFound(name)), []) }
        let r = transact(now: now) { node, w in
            for k in keys { node.unnameRecord(handle: k.handle, &w) }
        }
        if let f = r.failure { return (.failure(.storage(f)), r.effects) }
        return (.success(()), r.effects)
    }
}
