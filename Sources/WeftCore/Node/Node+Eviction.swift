// Eviction (issue 9, item 5; docs/security.md "Eviction"): `weft evict NODE` bans an identity
// from the cluster with a record signed by the member that ran it; `--undo` lifts the ban with a
// newer record. Records are gossiped, carried in push-pull and persisted; every node derives the
// same set of evicted identities from the same records.

extension Node {
    /// A member's signed statement: `subject` is evicted (`evicted`), or no longer is.
    public struct Eviction: Equatable, Sendable, CustomStringConvertible {
        public var subject: NodeID
        /// The subject's name when the record was made (for `weft status` and `--undo NAME` on
        /// nodes that never knew it). At most 63 UTF-8 bytes.
        public var name: String
        /// Lamport-style: one more than the highest version the signer knew. The newer record
        /// about a subject wins.
        public var version: UInt64
        public var evicted: Bool
        /// The member that signed, and its public key (its node id derives from it).
        public var by: NodeID
        public var byKey: [UInt8]
        public var signature: [UInt8]

        public init(subject: NodeID, name: String, version: UInt64, evicted: Bool, by: NodeID, byKey: [UInt8], signature: [UInt8]) {
            self.subject = subject; self.name = name; self.version = version; self.evicted = evicted
            self.by = by; self.byKey = byKey; self.signature = signature
        }

        public var description: String {
            "\(evicted ? "evict" : "undo") \(name)(\(subject.short)) v\(version) by \(by.short)"
        }

        /// First byte of an eviction broadcast in gossip (IPAM messages and name records use
        /// other first bytes).
        public static let gossipTag: UInt8 = 0xE5
        /// Versions at or above this are refused (as incarnations are): no honest cluster gets
        /// there, and `version + 1` can never overflow.
        public static let maxVersion: UInt64 = 1 << 62
        /// A record more than this far above the highest version a node knows is refused: one
        /// forged record at 2^62 − 1 would otherwise make every later record impossible.
        public static let maxVersionJump: UInt64 = 1 << 20
        static let context = Array("weft-evict-v1\u{0}".utf8)

        /// Every drop reason the eviction paths count (metrics create them at zero).
        public static let dropReasons = [
            "eviction-bad-version", "eviction-version-jump", "eviction-by-subject", "eviction-unknown-signer",
            "eviction-bad-key", "eviction-bad-signature", "eviction-table-full", "malformed-eviction",
            "malformed-evictions", "push-pull-from-evicted", "evicted",
        ]

        /// What the signer signs: a context no other claim uses, subject, name, version, the
        /// verb, and the signer.
        public static func claim(subject: NodeID, name: String, version: UInt64, evicted: Bool, by: NodeID) -> [UInt8] {
            var w = ByteWriter(capacity: 128)
            w.raw(context)
            w.nodeID(subject)
            w.shortBytes(Membership.Update.truncatedName(name))
            w.u64(version)
            w.u8(evicted ? 1 : 0)
            w.nodeID(by)
            return w.bytes
        }

        public var claim: [UInt8] { Self.claim(subject: subject, name: name, version: version, evicted: evicted, by: by) }

        /// Whether this record about the same subject supersedes `other`: higher version; at
        /// equal versions a ban beats an undo, then the larger signer id (a total order, so
        /// every node keeps the same record).
        public func supersedes(_ other: Eviction) -> Bool {
            if version != other.version { return version > other.version }
            if evicted != other.evicted { return evicted }
            return by > other.by
        }

        func encode(into w: inout ByteWriter) {
            w.nodeID(subject)
            w.shortBytes(Membership.Update.truncatedName(name))
            w.u64(version)
            w.u8(evicted ? 1 : 0)
            w.nodeID(by)
            w.raw(byKey)
            w.raw(signature)
        }

        static func decode(_ r: inout ByteReader) throws(WireError) -> Eviction {
            let subject = try r.nodeID("subject")
            let nameBytes = try r.shortBytes("name")
            guard nameBytes.count <= 63, let name = String(validating: nameBytes, as: UTF8.self) else { throw .invalid("name") }
            let version = try r.u64("version")
            let verb = try r.u8("evicted")
            guard verb <= 1 else { throw .invalid("evicted") }
            let by = try r.nodeID("by")
            let key = try r.raw(Membership.Update.publicKeyBytes, "byKey")
            let signature = try r.raw(Membership.Update.signatureBytes, "signature")
            return Eviction(subject: subject, name: name, version: version, evicted: verb == 1, by: by, byKey: key, signature: signature)
        }

        /// One record as a gossip broadcast: `0xE5 ‖ record`.
        public var broadcast: [UInt8] {
            var w = ByteWriter(capacity: 200)
            w.u8(Self.gossipTag)
            encode(into: &w)
            return w.bytes
        }

        /// The record of a broadcast, or nil when it is not a well-formed one.
        public static func decode(broadcast bytes: [UInt8]) -> Eviction? {
            guard bytes.first == gossipTag else { return nil }
            var r = ByteReader(bytes, offset: 1)
            guard let e = try? decode(&r), r.remaining == 0 else { return nil }
            return e
        }

        /// Records as a push-pull app-state part: `count u16 ‖ records`.
        public static func encode(list: [Eviction]) -> [UInt8] {
            var w = ByteWriter(capacity: 2 + list.count * 200)
            let n = min(list.count, Evictions.maxRecords)
            w.u8(UInt8(n >> 8)); w.u8(UInt8(n & 0xFF))
            for e in list.prefix(n) { e.encode(into: &w) }
            return w.bytes
        }

        /// The records of an app-state part; nil when malformed or longer than
        /// `Evictions.maxRecords`.
        public static func decode(list bytes: [UInt8]) -> [Eviction]? {
            if bytes.isEmpty { return [] }
            var r = ByteReader(bytes)
            guard let hi = try? r.u8("count"), let lo = try? r.u8("count") else { return nil }
            let n = Int(hi) << 8 | Int(lo)
            guard n <= Evictions.maxRecords else { return nil }
            var out: [Eviction] = []
            out.reserveCapacity(n)
            for _ in 0..<n {
                guard let e = try? decode(&r) else { return nil }
                out.append(e)
            }
            return r.remaining == 0 ? out : nil
        }
    }

    /// Every eviction record a node keeps: the newest per subject (undone ones too, so a stale
    /// ban arriving later cannot bring an eviction back). A join-semilattice: merging in any
    /// order gives the same table.
    public struct Evictions: Equatable, Sendable {
        /// Subjects kept at most (a cluster has far fewer members; a flood of forged subjects
        /// stops here and is counted).
        public static let maxRecords = 1024
        public private(set) var records: [NodeID: Eviction] = [:]
        /// The highest version of any record kept.
        public private(set) var maxVersion: UInt64 = 0

        public init(_ list: [Eviction] = []) {
            for e in list { _ = merge(e) }
        }

        public enum Merge: Equatable, Sendable { case stored, old, full }

        /// Keeps `e` when it supersedes the record about its subject (or is the first one and
        /// there is room). The caller verified it.
        public mutating func merge(_ e: Eviction) -> Merge {
            if let old = records[e.subject] {
                guard e.supersedes(old) else { return .old }
            } else if records.count >= Self.maxRecords {
                return .full
            }
            records[e.subject] = e
            maxVersion = max(maxVersion, e.version)
            return .stored
        }

        /// Whether `e` would change the table (checked before its signature, so re-gossip of a
        /// known record costs no verification).
        public func isNews(_ e: Eviction) -> Bool {
            guard let old = records[e.subject] else { return true }
            return e.supersedes(old)
        }

        /// The identities evicted now, each with the record that evicted it. Records are applied
        /// in (version, signer, subject) order, and one signed by an identity that is evicted at
        /// that point is skipped: of two members that evicted each other at the same version
        /// the one with the smaller id wins, everywhere. A pure function of `records`.
        public var effective: [NodeID: Eviction] {
            let ordered = records.values.sorted {
                ($0.version, $0.by, $0.subject) < ($1.version, $1.by, $1.subject)
            }
            var out: [NodeID: Eviction] = [:]
            for e in ordered where out[e.by] == nil {
                out[e.subject] = e.evicted ? e : nil
            }
            return out
        }
    }
}

extension Node.Instance {
    /// Why `weft evict` did not happen.
    public enum EvictError: Error, Equatable, Sendable, CustomStringConvertible {
        case noMatch(String)
        case ambiguous(String, Int)
        case isSelf
        case alreadyEvicted(String)
        case notEvicted(String)
        case notRunning(String)
        case tableFull
        case storage(Node.StorageFailure)
        public var description: String {
            switch self {
            case .noMatch(let t): return "no member matches '\(t)': see `weft members` (and `weft status` for evicted ones)"
            case .ambiguous(let t, let n): return "'\(t)' matches \(n) nodes: give more of the id (see `weft members`)"
            case .isSelf: return "a node cannot evict itself: run `weft leave` on it, or `weft evict` from another member"
            case .alreadyEvicted(let n): return "\(n) is already evicted (undo with `weft evict --undo \(n)`)"
            case .notEvicted(let n): return "\(n) is not evicted: nothing to undo"
            case .notRunning(let why): return why
            case .tableFull: return "this node keeps \(Node.Evictions.maxRecords) eviction records at most and has no room for another"
            case .storage(let f): return f.description
            }
        }
    }

    /// What `weft status` and a refused allocation say while this node is evicted.
    var evictedWarning: String? {
        guard let e = evictedBy else { return nil }
        return "this node was evicted from the cluster by \(membership.member(e.by)?.name ?? e.by.short) (\(e.by.short)): it is cut off until a member runs `weft evict --undo \(name)`"
    }

    /// The identities this node treats as evicted now (never itself), with the record.
    public var evictedMembers: [Node.Eviction] {
        evictedSince.keys.sorted().compactMap { evictions.records[$0] }
    }

    /// `weft evict NODE` (or `--undo`): `nodeText` is a name, an id or an id prefix of a member
    /// (of an evicted identity, for `undo`). Signs a record one version above every one known,
    /// commits it, applies it here and gossips it.
    public mutating func evict(_ nodeText: String, undo: Bool = false, now: Instant) -> (result: Result<(node: NodeID, name: String), EvictError>, effects: [Node.Effect]) {
        guard phase == .running else {
            return (.failure(.notRunning(phase == .evicted ? "this node is itself evicted: it cannot evict or readmit members" : "this node is not running (\(phase.rawValue))")), [])
        }
        let text = nodeText.lowercased()
        var candidates: [NodeID: String] = [:]
        if undo {
            for e in evictedMembers where e.subject.hex.hasPrefix(text) || e.name == nodeText { candidates[e.subject] = e.name }
        } else {
            for m in membership.members where m.id.hex.hasPrefix(text) || m.name == nodeText { candidates[m.id] = m.name }
            for e in evictedMembers where e.subject.hex.hasPrefix(text) || e.name == nodeText { candidates[e.subject] = e.name }
        }
        guard !text.isEmpty, !candidates.isEmpty else {
            if undo, membership.members.contains(where: { $0.id.hex.hasPrefix(text) || $0.name == nodeText }) {
                return (.failure(.notEvicted(nodeText)), [])
            }
            return (.failure(.noMatch(nodeText)), [])
        }
        guard candidates.count == 1, let (subject, name) = candidates.first else { return (.failure(.ambiguous(nodeText, candidates.count)), []) }
        if subject == me { return (.failure(.isSelf), []) }
        if !undo && evictedSince[subject] != nil { return (.failure(.alreadyEvicted(name)), []) }
        guard evictions.maxVersion + 1 < Node.Eviction.maxVersion else { return (.failure(.tableFull), []) }
        if evictions.records[subject] == nil && evictions.records.count >= Node.Evictions.maxRecords { return (.failure(.tableFull), []) }
        let version = evictions.maxVersion + 1
        let signature = membership.signer.sign(Node.Eviction.claim(subject: subject, name: name, version: version, evicted: !undo, by: me))
        let record = Node.Eviction(subject: subject, name: name, version: version, evicted: !undo, by: me,
                                   byKey: membership.myself.publicKey, signature: signature)
        let r = transact(now: now) { node, w in
            node.evictionRecords([record], verified: true, &w, now: now)
        }
        if let f = r.failure { return (.failure(.storage(f)), r.effects) }
        return (.success((subject, name)), r.effects)
    }

    /// Why a received record is refused, or nil when it verifies. The signer must be a member
    /// this node knows (or an identity in its eviction table, which was one), never the
    /// subject, and its key must derive its id.
    mutating func refusal(of e: Node.Eviction) -> String? {
        if e.version == 0 || e.version >= Node.Eviction.maxVersion { return "eviction-bad-version" }
        if e.version > evictions.maxVersion, e.version - evictions.maxVersion > Node.Eviction.maxVersionJump { return "eviction-version-jump" }
        if e.by == e.subject { return "eviction-by-subject" }
        guard e.by == me || membership.member(e.by) != nil || evictions.records[e.by] != nil else { return "eviction-unknown-signer" }
        guard membership.identityCheck(e.by, e.byKey) else { return "eviction-bad-key" }
        guard membership.signer.verify(e.byKey, e.claim, e.signature) else { return "eviction-bad-signature" }
        return nil
    }

    /// Eviction records from gossip, a push-pull, the store or `evict`: the new ones that verify
    /// are kept, persisted, gossiped on, and applied.
    mutating func evictionRecords(_ list: [Node.Eviction], verified: Bool = false, _ w: inout Work, now: Instant) {
        var changed = false
        var waiting = list.filter { evictions.isNews($0) }
        // A record whose signer is known only through another record of the same batch (an
        // identity evicted later, whose member entry is gone) is tried again after the rest.
        var progress = true
        while !waiting.isEmpty && progress {
            progress = false
            var unknownSigner: [Node.Eviction] = []
            for e in waiting where evictions.isNews(e) {
                if !verified, let why = refusal(of: e) {
                    if why == "eviction-unknown-signer" { unknownSigner.append(e) } else { w.effects.append(.dropped(why)) }
                    continue
                }
                switch evictions.merge(e) {
                case .stored:
                    changed = true
                    progress = true
                    w.batch.evictions.append(e)
                    _ = membership.enqueueBroadcast(e.broadcast, key: [Node.Eviction.gossipTag] + e.subject.bytes)
                case .old: break
                case .full: w.effects.append(.dropped("eviction-table-full"))
                }
            }
            waiting = unknownSigner
        }
        for _ in waiting { w.effects.append(.dropped("eviction-unknown-signer")) }
        if changed { applyEvictions(&w, now: now) }
    }

    /// Brings membership, tunnels, IPAM and the phase in step with the effective evictions.
    mutating func applyEvictions(_ w: inout Work, now: Instant) {
        let effective = evictions.effective
        if let mine = effective[me] {
            if evictedBy == nil { becomeEvicted(mine, &w, now: now) } else { evictedBy = mine }
        } else if evictedBy != nil {
            evictionUndone(&w, now: now)
        }
        let others = Set(effective.keys).subtracting([me])
        let before = Set(evictedSince.keys)
        guard others != before else { return }
        for id in others.subtracting(before).sorted() {
            evictedSince[id] = now
            tunnelIncarnations[id] = nil
            w.changed[id] = nil
            w.effects.append(.tunnelPeer(.remove(id: id)))
            let e = effective[id]!
            w.effects.append(.log(Node.Log(.warning, "member evicted", event: "member-evicted", [
                "member": id.short, "memberName": e.name, "by": e.by.short, "version": "\(e.version)",
            ])))
        }
        for id in before.subtracting(others).sorted() {
            evictedSince[id] = nil
            let e = evictions.records[id]
            w.effects.append(.log(Node.Log(.notice, "member eviction undone", event: "member-readmitted", [
                "member": id.short, "memberName": e?.name ?? "", "by": e?.by.short ?? "",
            ])))
        }
        run(membership.setEvicted(others), &w, now: now)
        w.membersChanged = true
    }

    /// This node was evicted: it stops gossiping, probing, allocating and tunnelling, keeps its
    /// state (nothing is lost), says so in `weft status`, and asks a former peer every
    /// `seedRetryMax` whether the eviction was undone.
    mutating func becomeEvicted(_ e: Node.Eviction, _ w: inout Work, now: Instant) {
        evictedBy = e
        guard phase == .running else { return }
        phase = .evicted
        var contacts = seeds
        for m in membership.members where m.id != me && m.id != e.subject && (m.state == .alive || m.state == .suspect) && !contacts.contains(m.address) {
            contacts.append(m.address)
        }
        evictedContacts = Array(contacts.prefix(16))
        nextEvictedAsk = now + settings.seedRetryMax
        for id in tunnelIncarnations.keys.sorted() { w.effects.append(.tunnelPeer(.remove(id: id))) }
        tunnelIncarnations = [:]
        w.changed = [:]
        if !routes.isEmpty {
            routes = []
            w.effects.append(.routes([]))
        }
        let signer = membership.member(e.by)?.name ?? e.by.short
        let message = "this node was evicted from the cluster by \(signer) (\(e.by.short)): it is cut off and its identity cannot rejoin until a member runs `weft evict --undo \(name)`; to join as a new member instead, stop it, move its data dir aside and start it with --seed"
        w.effects.append(.log(Node.Log(.error, message, event: "evicted", ["by": e.by.short, "version": "\(e.version)"])))
    }

    /// This node's eviction was undone: back to running with a new incarnation, contacting its
    /// seeds and former peers.
    mutating func evictionUndone(_ w: inout Work, now: Instant) {
        evictedBy = nil
        guard phase == .evicted else { return }
        phase = .running
        run(membership.rejoinAfterEviction(), &w, now: now)
        routesStale = true
        w.membersChanged = true
        for m in membership.members where m.id != me { w.changed[m.id] = m }
        synced = false
        seedRetryDelay = settings.seedRetryInitial
        if !seeds.isEmpty { nextSeedRetry = now + seedRetryDelay }
        for e in evictedContacts.prefix(4) { w.effects.append(.pushPull(to: e)) }
        nextEvictedAsk = nil
        w.effects.append(.log(Node.Log(.notice, "this node's eviction was undone: rejoining", event: "readmitted", [:])))
    }

    /// A push-pull request from an evicted identity: not merged; answered with only this node
    /// and the eviction records, so the evicted node learns why (or that it was readmitted).
    /// Nil when the requester is not evicted.
    mutating func refuseEvicted(request plaintext: [UInt8]) -> (reply: [UInt8]?, effects: [Node.Effect])? {
        guard !evictedSince.isEmpty,
              let pp = try? Membership.Codec.decodePushPull(plaintext, maxBytes: membership.settings.maxPushPullBytes),
              evictedSince[pp.source] != nil else { return nil }
        let app = Self.packAppState(ipam: [], dns: [], dataPlane: settings.dataPlane == Node.encryptedDataPlane ? nil : settings.dataPlane,
                                    evictions: evictionPart())
        let reply = Membership.Codec.encode(Membership.PushPull(
            isReply: true, source: me, join: false, members: [Membership.Update(membership.myself)], appState: app))
        return (reply, [.dropped("push-pull-from-evicted")])
    }

    /// The eviction records for a push-pull (nil when there are none: the part is left out).
    func evictionPart() -> [UInt8]? {
        guard !evictions.records.isEmpty else { return nil }
        return Node.Eviction.encode(list: evictions.records.keys.sorted().map { evictions.records[$0]! })
    }

    /// While evicted: a push-pull reply may carry the undo. Only its eviction records are read.
    mutating func evictedReply(_ plaintext: [UInt8], now: Instant) -> [Node.Effect] {
        guard let pp = try? Membership.Codec.decodePushPull(plaintext, maxBytes: membership.settings.maxPushPullBytes),
              let parts = Self.unpackAppState(pp.appState) else { return [.dropped("evicted")] }
        guard let list = Node.Eviction.decode(list: parts.evictions) else { return [.dropped("malformed-evictions")] }
        return transact(now: now) { node, w in node.evictionRecords(list, &w, now: now) }.effects
    }

    /// The evicted node's only timer: ask one former peer whether the eviction was undone.
    mutating func evictedTick(now: Instant) -> [Node.Effect] {
        guard let due = nextEvictedAsk, now >= due else { return [] }
        nextEvictedAsk = now + settings.seedRetryMax
        guard !evictedContacts.isEmpty else { return [] }
        let target = evictedContacts[evictedAskIndex % evictedContacts.count]
        evictedAskIndex &+= 1
        return [.pushPull(to: target)]
    }
}
