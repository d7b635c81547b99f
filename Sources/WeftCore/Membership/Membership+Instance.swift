extension Membership {
    /// The SWIM + Lifeguard membership state machine: a pure value that answers events (ticks,
    /// datagrams, push-pull messages, commands) with `Directive`s. No I/O, no clock, no global
    /// randomness; one instance is one node. See docs/membership.md for the protocol walk-through.
    public struct Instance: Sendable {
        // MARK: state

        public let settings: Settings
        public private(set) var myself: Member
        public private(set) var hasLeft: Bool = false
        /// Lifeguard local health score, 0 ..< awarenessMax; intervals are multiplied by score + 1.
        public private(set) var awareness: Int = 0

        /// Every known member including self. Change it only through `store(_:)`/`remove(_:)`,
        /// which keep `liveCount` current.
        private(set) var table: [NodeID: Member] = [:]
        /// Members alive or suspect, including self (Lifeguard's n), kept in step with `table`.
        public private(set) var liveCount = 0
        var rng: DeterministicRNG
        let identityCheck: @Sendable (NodeID, [UInt8]) -> Bool
        /// Signs our claims and verifies others' (Ed25519 in the daemon).
        let signer: ClaimSigner
        var verifiedCache = VerifiedCache()
        /// Signature work done so far (verifications, cache hits, signatures made).
        public private(set) var claimStats = ClaimStats()
        var queue = BroadcastQueue()
        var suspicions: [NodeID: Suspicion] = [:]

        /// Shuffled round-robin probe order over every other member (dead ones are skipped).
        var probeOrder: [NodeID] = []
        var probeIndex = 0
        var probe: Probe?
        var relays: [UInt32: Relay] = [:]
        /// Pings sent to check a dead that this node could not confirm yet (a lone accuser's):
        /// seq -> subject, incarnation, deadline. No ack by the deadline makes it our own dead.
        var confirmProbes: [UInt32: ConfirmProbe] = [:]
        var nextSeq: UInt32 = 0
        /// Set once a push-pull reply arrived; until then our requests carry the join flag.
        var hasExchangedState = false
        /// Identities evicted from the cluster (docs/security.md "Eviction"), never this node's:
        /// not in the table, and every update about them, accusation they sign, datagram and
        /// push-pull in their name is dropped. The node's eviction records decide the set.
        public private(set) var evicted: Set<NodeID> = []

        var nextProbeAt: Instant = .zero
        var nextGossipAt: Instant = .zero
        var nextPushPullAt: Instant = .zero
        var nextReprobeAt: Instant = .zero
        var nextForgetCheckAt: Instant = .zero

        struct Probe: Sendable {
            var seq: UInt32
            var target: NodeID
            var incarnation: UInt64
            var sentAt: Instant
            var timeoutAt: Instant
            var periodEnd: Instant
            var indirectSent = false
            var expectedNacks = 0
            var nacks = 0
            /// The verdict was postponed once because this node ran late (`noteLate`).
            var graced = false
        }

        struct ConfirmProbe: Sendable {
            var subject: NodeID
            var incarnation: UInt64
            var deadline: Instant
            /// Set once the direct ping timed out and the indirect pings went out.
            var indirectSent = false
            var graced = false
        }

        struct Relay: Sendable {
            var originSeq: UInt32
            var origin: Endpoint
            var nackAt: Instant?
            var expiresAt: Instant
        }

        /// Lifeguard suspicion: the timeout falls from `max` to `min` as independent confirmations
        /// arrive: timeout = max − (max − min) · log(c + 1) / log(k + 1), never below min.
        struct Suspicion: Sendable {
            var start: Instant
            var incarnation: UInt64
            var min: Duration
            var max: Duration
            var k: Int
            var confirmers: Set<NodeID>

            var timeout: Duration {
                guard k >= 1 else { return min }
                // The first accuser is in `confirmers` but is not a confirmation (memberlist).
                let c = Double(Swift.max(confirmers.count - 1, 0))
                let fraction = Math.ln(c + 1) / Math.ln(Double(k) + 1)
                let raw = Double(max.nanoseconds) - Double((max - min).nanoseconds) * fraction
                return .nanoseconds(Swift.max(Int64(raw), min.nanoseconds))
            }
            var deadline: Instant { start + timeout }
        }

        // MARK: creation

        /// - Parameters:
        ///   - myself: this node, state alive, with an incarnation never used before (the daemon
        ///     persists stored + 1 first). Its name is cut to 63 UTF-8 bytes.
        ///   - knownMembers: the store's members after a restart; suspects are loaded as alive
        ///     (their timers did not survive), dead and left stay so (and dead ones are re-probed).
        ///   - identityCheck: does this public key hash to this node id? Updates that fail are dropped.
        ///   - signer: signs our record, accusations and leave with our identity key, verifies
        ///     everyone else's. Both are required (no default), so no caller runs unverified by
        ///     omission; `.acceptAll` is spelled out only in unit tests that craft updates by hand.
        ///     Stored members are re-verified: a record whose signature fails is not loaded.
        public init(myself: Member, settings: Settings, seed: UInt64, now: Instant,
                    knownMembers: [Member] = [],
                    identityCheck: @escaping @Sendable (NodeID, [UInt8]) -> Bool,
                    signer: ClaimSigner) {
            var me = myself
            me.name = String(decoding: Update.truncatedName(me.name), as: UTF8.self)
            me.state = .alive
            me.stateChangedAt = now
            self.myself = me
            self.settings = settings
            self.rng = DeterministicRNG(seed: seed)
            self.identityCheck = identityCheck
            self.signer = signer
            signMyself()
            me = self.myself
            store(me)
            // Restarts re-verify: a stored record must still be the member's own (one that fails
            // is not loaded). One stored unsigned (before wire version 2) is kept but never
            // gossiped until the member's signed record arrives. Records first, so accusers'
            // keys are known when the stored accusations are checked.
            var loaded: [Member] = []
            for m in knownMembers where m.id != me.id {
                if !m.recordSignature.isEmpty {
                    guard identityCheck(m.id, m.publicKey),
                          verify(m.publicKey, Claims.record(of: m), m.recordSignature) else { continue }
                }
                loaded.append(m)
                store(m)
            }
            for var m in loaded {
                if m.state == .suspect { m.state = .alive }
                // A stored dead or left whose claim fails is alive until someone accuses it again.
                if !m.recordSignature.isEmpty && !storedClaimVerifies(m) {
                    m.state = .alive
                    m.stateBy = nil
                    m.stateSignature = []
                }
                store(m)
            }
            probeOrder = table.keys.filter { $0 != me.id }.sorted()
            probeOrder.shuffle(using: &rng)
            // Stagger the first probe so a cluster started at once does not probe in lockstep.
            let jitter = Duration.nanoseconds(Int64.random(in: 0...settings.probeInterval.nanoseconds, using: &rng))
            nextProbeAt = now + jitter
            nextGossipAt = now + settings.gossipInterval
            nextPushPullAt = now + settings.pushPullInterval.scaled(by: Double.random(in: 0.5...1, using: &rng))
            nextReprobeAt = now + settings.deadReprobeInterval.scaled(by: Double.random(in: 0.5...1, using: &rng))
            nextForgetCheckAt = now + settings.probeInterval * 10
            queue.enqueue(update: Update(me))
        }

        // MARK: queries

        /// Everyone known, including this node, sorted by id.
        public var members: [Member] { table.values.sorted { $0.id < $1.id } }

        /// The member with this id, if known.
        public func member(_ id: NodeID) -> Member? { table[id] }

        /// A member whose record (and state claim, unless alive) carries signatures.
        static func isGossipable(_ m: Member) -> Bool {
            m.recordSignature.count == Update.signatureBytes
                && (m.state == .alive || m.stateSignature.count == Update.signatureBytes)
        }

        /// Does a stored member's state claim (accusation or left) still verify? Alive needs none.
        mutating func storedClaimVerifies(_ m: Member) -> Bool {
            switch m.state {
            case .alive: return true
            case .left:
                return m.stateBy == m.id
                    && verify(m.publicKey, Claims.left(subject: m.id, incarnation: m.incarnation), m.stateSignature)
            case .suspect, .dead:
                guard let by = m.stateBy, by != m.id else { return false }
                let key = by == myself.id ? myself.publicKey : (table[by]?.publicKey ?? [])
                return verify(key, Claims.accusation(subject: m.id, incarnation: m.incarnation, accuser: by), m.stateSignature)
            }
        }

        static func isLive(_ m: Member?) -> Bool { m.map { $0.state == .alive || $0.state == .suspect } ?? false }

        mutating func store(_ m: Member) {
            let old = table.updateValue(m, forKey: m.id)
            liveCount += (Instance.isLive(m) ? 1 : 0) - (Instance.isLive(old) ? 1 : 0)
        }

        @discardableResult
        mutating func remove(_ id: NodeID) -> Member? {
            let old = table.removeValue(forKey: id)
            if Instance.isLive(old) { liveCount -= 1 }
            return old
        }

        /// Updates and broadcasts waiting to be piggybacked.
        public var pendingBroadcasts: Int { queue.count }

        /// The daemon calls `onTick(now:)` at or after this instant.
        public var nextWakeup: Instant {
            var t = nextGossipAt
            if !hasLeft {
                t = min(t, nextProbeAt, nextPushPullAt, nextReprobeAt, nextForgetCheckAt)
                if let p = probe { t = min(t, p.indirectSent ? p.periodEnd : p.timeoutAt) }
                for s in suspicions.values { t = min(t, s.deadline) }
                for r in relays.values { t = min(t, r.nackAt ?? r.expiresAt) }
                for c in confirmProbes.values { t = min(t, c.deadline) }
            }
            return t
        }

        var healthScale: Double { Double(awareness + 1) }

        var retransmitLimit: Int { settings.retransmitMultiplier * max(1, Math.bitLength(liveCount)) }

        // MARK: commands

        /// Contacts the seeds: a push-pull with each (full state both ways) and a gossip datagram
        /// carrying our alive record, so the seed learns of us even if TCP fails.
        public mutating func join(seeds: [Endpoint], now: Instant) -> [Directive] {
            var out: [Directive] = []
            guard !hasLeft else { return out }
            for seed in seeds where seed != myself.address {
                out.append(.pushPull(to: seed))
                let msg = Message.gossip(source: myself.id, Piggyback(updates: [Update(myself)]))
                out.append(.send(Codec.encode(msg), to: seed))
            }
            return out
        }

        /// Graceful leave: marks this node `left` (same incarnation: left beats every other
        /// state at equal incarnation), tells up to `max(3, indirectProbes)` live members
        /// directly and queues the news for gossip. Afterwards ticks only gossip.
        public mutating func leave(now: Instant) -> [Directive] {
            guard !hasLeft else { return [] }
            hasLeft = true
            let previous = myself.state
            myself.state = .left
            myself.stateChangedAt = now
            store(myself)
            myself.stateBy = myself.id
            myself.stateSignature = signClaim(Claims.left(subject: myself.id, incarnation: myself.incarnation))
            store(myself)
            probe = nil
            relays.removeAll()
            confirmProbes.removeAll()
            suspicions.removeAll()
            var out: [Directive] = [.memberChanged(myself, previous: previous)]
            let update = Update(myself)
            queue.enqueue(update: update)
            let msg = Codec.encode(Message.gossip(source: myself.id, Piggyback(updates: [update])))
            for id in sample(max(3, settings.indirectProbes), excluding: [], where: { $0.state == .alive }) {
                if let m = table[id] { out.append(.send(msg, to: m.address)) }
            }
            return out
        }

        /// Queues an application broadcast (IPAM deltas) for piggybacking. A newer broadcast with
        /// the same `key` replaces an older pending one. Returns false (and queues nothing) when
        /// the payload could never fit in a datagram.
        @discardableResult
        public mutating func enqueueBroadcast(_ payload: [UInt8], key: [UInt8]?) -> Bool {
            let b = AppBroadcast(origin: myself.id, payload: payload)
            guard b.encodedSize + Codec.maxHeaderSize <= settings.maxPayloadBytes else {
                return false
            }
            queue.enqueue(.app(b), key: key.map { .app($0) })
            return true
        }

        /// Sets the evicted identities (this node's own id is ignored: an evicted node is
        /// silenced by its `Node.Instance`). Newly evicted members are forgotten at once
        /// (`memberRemoved`), their suspicion and probe dropped; identities no longer evicted may
        /// be learned again from their own signed records.
        public mutating func setEvicted(_ ids: Set<NodeID>) -> [Directive] {
            let ids = ids.subtracting([myself.id])
            guard ids != evicted else { return [] }
            let added = ids.subtracting(evicted)
            evicted = ids
            var out: [Directive] = []
            for id in added.sorted() {
                suspicions[id] = nil
                if probe?.target == id { probe = nil }
                confirmProbes = confirmProbes.filter { $0.value.subject != id }
                if let m = remove(id) { out.append(.memberRemoved(m)) }
            }
            probeOrder.removeAll { added.contains($0) }
            probeIndex = min(probeIndex, probeOrder.count)
            return out
        }

        /// After this node's own eviction was undone: a new incarnation (persisted), so the
        /// members that forgot it learn its fresh record, and the join flag again.
        public mutating func rejoinAfterEviction() -> [Directive] {
            guard !hasLeft, let next = Membership.incarnation(after: myself.incarnation) else { return [] }
            hasExchangedState = false
            var out: [Directive] = []
            raiseIncarnation(to: next, &out)
            return out
        }

        /// Our record at incarnation `next`: signed, stored, persisted before anything is sent,
        /// and queued for gossip (a refutation, or a return after an eviction).
        mutating func raiseIncarnation(to next: UInt64, _ out: inout [Directive]) {
            myself.incarnation = next
            signMyself()
            store(myself)
            out.append(.persistIncarnation(next))
            out.append(.memberChanged(myself, previous: .alive))
            queue.enqueue(update: Update(myself))
        }

        // MARK: ticks

        public mutating func onTick(now: Instant) -> [Directive] {
            var out: [Directive] = []
            if !hasLeft {
                expireSuspicions(now: now, &out)
                runRelays(now: now, &out)
                runConfirmProbes(now: now, &out)
                runProbe(now: now, &out)
                if now >= nextPushPullAt {
                    let n = liveCount
                    let scale = n <= 32 ? 1.0 : Double(Math.bitLength(n - 1) - 5 + 1)
                    nextPushPullAt = now + settings.pushPullInterval.scaled(by: scale)
                    if let id = sample(1, excluding: [], where: { $0.state == .alive }).first, let m = table[id] {
                        out.append(.pushPull(to: m.address))
                    }
                }
                if now >= nextReprobeAt {
                    nextReprobeAt = now + settings.deadReprobeInterval
                    // table.count > liveCount exactly when some member is dead or left.
                    if table.count > liveCount, let id = sample(1, excluding: [], where: { $0.state == .dead }).first, let m = table[id] {
                        out.append(.pushPull(to: m.address))
                    }
                }
                if now >= nextForgetCheckAt {
                    nextForgetCheckAt = now + settings.probeInterval * 10
                    forget(now: now, &out)
                }
            }
            if now >= nextGossipAt {
                nextGossipAt = now + settings.gossipInterval
                gossip(&out)
            }
            return out
        }

        mutating func runProbe(now: Instant, _ out: inout [Directive]) {
            if var p = probe {
                if !p.indirectSent && now >= p.timeoutAt {
                    p.indirectSent = true
                    if let target = table[p.target] {
                        let helpers = sample(settings.indirectProbes, excluding: [p.target], where: { $0.state == .alive })
                        p.expectedNacks = helpers.count
                        for h in helpers {
                            guard let helper = table[h] else { continue }
                            let msg = Message.pingReq(seq: p.seq, target: p.target, targetAddress: target.address,
                                                      source: myself.id, wantNack: true, Piggyback())
                            out.append(.send(fill(msg), to: helper.address))
                        }
                    }
                    // A late tick is this node's own slowness, not evidence against the target:
                    // the helpers get their whole window from now (they used to be sent and
                    // judged in the same late tick, so a starved node suspected whoever it probed).
                    if !p.graced, now - p.timeoutAt > settings.lateThreshold {
                        p.graced = true
                        p.periodEnd = max(p.periodEnd, now + (settings.probeInterval - settings.probeTimeout).scaled(by: healthScale))
                        adjustAwareness(1)
                    }
                } else if p.indirectSent, !p.graced, now >= p.periodEnd, now - p.periodEnd > settings.lateThreshold {
                    // A late verdict waits `lateGrace` once, for answers not read yet.
                    p.graced = true
                    p.periodEnd = now + settings.lateGrace
                    adjustAwareness(1)
                }
                probe = p
                if now >= p.periodEnd {
                    probe = nil
                    probeFailed(p, now: now, &out)
                }
            }
            guard probe == nil, now >= nextProbeAt else { return }
            nextProbeAt = now + settings.probeInterval.scaled(by: healthScale)
            guard let target = nextProbeTarget() else { return }
            nextSeq &+= 1
            probe = Probe(seq: nextSeq, target: target.id, incarnation: target.incarnation, sentAt: now,
                          timeoutAt: now + settings.probeTimeout.scaled(by: healthScale),
                          periodEnd: nextProbeAt)
            // Buddy system: a ping to a suspect carries the suspicion, so it can refute.
            let extra = target.state == .suspect ? [Update(target)] : []
            out.append(.send(fill(.ping(seq: nextSeq, target: target.id, source: myself.id, Piggyback()), extra: extra),
                             to: target.address))
        }

        mutating func nextProbeTarget() -> Member? {
            for _ in 0..<probeOrder.count {
                if probeIndex >= probeOrder.count {
                    probeIndex = 0
                    probeOrder.shuffle(using: &rng)
                }
                let id = probeOrder[probeIndex]
                probeIndex += 1
                if let m = table[id], m.state == .alive || m.state == .suspect { return m }
            }
            return nil
        }

        /// No ack by the end of the period: Lifeguard awareness, then suspect the target.
        mutating func probeFailed(_ p: Probe, now: Instant, _ out: inout [Directive]) {
            // Missing nacks mean our own network is suspect, not only the target.
            if p.expectedNacks > 0 {
                if p.nacks < p.expectedNacks { adjustAwareness(p.expectedNacks - p.nacks) }
            } else {
                adjustAwareness(1)
            }
            guard let target = table[p.target], target.incarnation == p.incarnation,
                  target.state == .alive || target.state == .suspect else { return }
            apply(accusation(of: target, .suspect), now: now, viaPushPull: false, &out)
        }

        mutating func adjustAwareness(_ delta: Int) {
            awareness = min(max(awareness + delta, 0), settings.awarenessMax - 1)
        }

        /// A dead this node cannot take yet (one accuser, not us): probe the subject once now, as
        /// a SWIM probe does (a direct ping, then `indirectProbes` ping-reqs after the probe
        /// timeout); no ack by the end of the probe period is our own probe failing, which
        /// makes the dead final here (and us one more accuser for everyone else).
        mutating func startConfirmProbe(_ m: Member, now: Instant, _ out: inout [Directive]) {
            guard !confirmProbes.values.contains(where: { $0.subject == m.id }) else { return }
            nextSeq &+= 1
            confirmProbes[nextSeq] = ConfirmProbe(subject: m.id, incarnation: m.incarnation,
                                                  deadline: now + settings.probeTimeout.scaled(by: healthScale))
            out.append(.send(fill(.ping(seq: nextSeq, target: m.id, source: myself.id, Piggyback()), extra: [Update(m)]),
                             to: m.address))
        }

        mutating func runConfirmProbes(now: Instant, _ out: inout [Directive]) {
            let due = confirmProbes.filter { now >= $0.value.deadline }.sorted { $0.key < $1.key }
            for (seq, c) in due {
                guard let m = table[c.subject], m.state == .suspect, m.incarnation == c.incarnation else {
                    confirmProbes[seq] = nil
                    continue
                }
                if !c.indirectSent {
                    var next = c
                    next.indirectSent = true
                    next.deadline = now + (settings.probeInterval - settings.probeTimeout).scaled(by: healthScale)
                    confirmProbes[seq] = next
                    for h in sample(settings.indirectProbes, excluding: [m.id], where: { $0.state == .alive }) {
                        guard let helper = table[h] else { continue }
                        let msg = Message.pingReq(seq: seq, target: m.id, targetAddress: m.address, source: myself.id,
                                                  wantNack: false, Piggyback())
                        out.append(.send(fill(msg), to: helper.address))
                    }
                    continue
                }
                if !c.graced, now - c.deadline > settings.lateThreshold {
                    // Late (see runProbe): answers may be waiting unread; judge a little later.
                    var next = c
                    next.graced = true
                    next.deadline = now + settings.lateGrace
                    confirmProbes[seq] = next
                    adjustAwareness(1)
                    continue
                }
                confirmProbes[seq] = nil
                apply(accusation(of: m, .dead), now: now, viaPushPull: false, &out)
            }
        }

        mutating func runRelays(now: Instant, _ out: inout [Directive]) {
            for (seq, r) in relays {
                if let nackAt = r.nackAt, now >= nackAt {
                    relays[seq]?.nackAt = nil
                    out.append(.send(fill(.nack(seq: r.originSeq, source: myself.id, Piggyback())), to: r.origin))
                }
                if now >= r.expiresAt { relays[seq] = nil }
            }
        }

        mutating func expireSuspicions(now: Instant, _ out: inout [Directive]) {
            for (id, s) in suspicions where now >= s.deadline {
                suspicions[id] = nil
                guard let m = table[id], m.state == .suspect, m.incarnation == s.incarnation else { continue }
                apply(accusation(of: m, .dead), now: now, viaPushPull: false, &out)
            }
        }

        mutating func gossip(_ out: inout [Directive]) {
            guard !queue.isEmpty else { return }
            let targets = sample(settings.gossipFanout, excluding: [], where: { $0.state == .alive || $0.state == .suspect })
            for id in targets {
                guard let m = table[id], !queue.isEmpty else { break }
                out.append(.send(fill(.gossip(source: myself.id, Piggyback())), to: m.address))
            }
        }

        mutating func forget(now: Instant, _ out: inout [Directive]) {
            guard table.count > liveCount else { return }  // nobody dead or left
            var gone: [NodeID] = []
            for m in table.values where (m.state == .dead || m.state == .left) && m.id != myself.id
                && now - m.stateChangedAt >= settings.deadRetention {
                gone.append(m.id)
            }
            guard !gone.isEmpty else { return }
            for id in gone.sorted() {
                if let m = remove(id) { out.append(.memberRemoved(m)) }
                suspicions[id] = nil
            }
            let goneSet = Set(gone)
            probeOrder.removeAll { goneSet.contains($0) }
            probeIndex = min(probeIndex, probeOrder.count)
        }

        /// Encodes `msg` with as many pending piggyback items as fit in maxPayloadBytes.
        mutating func fill(_ msg: Message, extra: [Update] = []) -> [UInt8] {
            let budget = settings.maxPayloadBytes - Codec.headerSize(msg) - extra.reduce(0) { $0 + $1.encodedSize }
            var p = queue.take(budget: budget, limit: retransmitLimit)
            p.updates = extra + p.updates.filter { u in !extra.contains { $0.id == u.id } }
            let full: Message
            switch msg {
            case .ping(let s, let t, let src, _): full = .ping(seq: s, target: t, source: src, p)
            case .pingReq(let s, let t, let a, let src, let n, _):
                full = .pingReq(seq: s, target: t, targetAddress: a, source: src, wantNack: n, p)
            case .ack(let s, let src, _): full = .ack(seq: s, source: src, p)
            case .nack(let s, let src, _): full = .nack(seq: s, source: src, p)
            case .gossip(let src, _): full = .gossip(source: src, p)
            }
            return Codec.encode(full)
        }

        /// Up to `count` distinct random members (never self) passing `filter`.
        mutating func sample(_ count: Int, excluding: Set<NodeID>, where filter: (Member) -> Bool) -> [NodeID] {
            guard count > 0, !probeOrder.isEmpty else { return [] }
            var picked: [NodeID] = []
            var seen = excluding
            // Random tries first (cheap for big clusters), then a scan from a random offset.
            for _ in 0..<(count * 4 + 4) where picked.count < count {
                let id = probeOrder[Int.random(in: 0..<probeOrder.count, using: &rng)]
                if seen.contains(id) { continue }
                seen.insert(id)
                if let m = table[id], filter(m) { picked.append(id) }
            }
            if picked.count < count {
                let start = Int.random(in: 0..<probeOrder.count, using: &rng)
                for i in 0..<probeOrder.count where picked.count < count {
                    let id = probeOrder[(start + i) % probeOrder.count]
                    if seen.contains(id) { continue }
                    seen.insert(id)
                    if let m = table[id], filter(m) { picked.append(id) }
                }
            }
            return picked
        }

        // MARK: datagrams

        /// A plaintext datagram (after unsealing). Garbage yields `.dropped`, never a trap.
        public mutating func onDatagram(_ bytes: [UInt8], from: Endpoint, now: Instant) -> [Directive] {
            guard !hasLeft else { return [.dropped(.afterLeave)] }
            guard bytes.count <= settings.maxPayloadBytes else { return [.dropped(.oversized)] }
            let msg: Message
            do {
                msg = try Codec.decodeMessage(bytes)
            } catch {
                return [.dropped(Instance.reason(error))]
            }
            if evicted.contains(msg.source) { return [.dropped(.fromEvicted)] }
            var out: [Directive] = []
            let p = msg.piggyback
            for u in p.updates { apply(u, now: now, viaPushPull: false, &out) }
            for b in p.broadcasts where b.origin != myself.id { out.append(.deliver(b.payload, from: b.origin)) }

            switch msg {
            case .ping(let seq, let target, _, _):
                guard target == myself.id else { out.append(.dropped(.notForMe)); break }
                out.append(.send(fill(.ack(seq: seq, source: myself.id, Piggyback())), to: from))
            case .pingReq(let seq, let target, let address, _, let wantNack, _):
                nextSeq &+= 1
                // The nack must reach the origin before its period ends: 80 % of the probe timeout
                // (memberlist), unscaled, since the origin's window is probeInterval − probeTimeout.
                relays[nextSeq] = Relay(originSeq: seq, origin: from,
                                        nackAt: wantNack ? now + settings.probeTimeout.scaled(by: 0.8) : nil,
                                        expiresAt: now + settings.probeInterval.scaled(by: healthScale))
                out.append(.send(fill(.ping(seq: nextSeq, target: target, source: myself.id, Piggyback())), to: address))
            case .ack(let seq, let source, _):
                if confirmProbes[seq] != nil {
                    confirmProbes[seq] = nil  // it answers (directly or relayed): its refutation will follow
                } else if let r = relays.removeValue(forKey: seq) {
                    out.append(.send(fill(.ack(seq: r.originSeq, source: myself.id, Piggyback())), to: r.origin))
                } else if let pr = probe, pr.seq == seq {
                    probe = nil
                    if source == pr.target {
                        out.append(.probeRTT(now - pr.sentAt))
                        if now <= pr.timeoutAt { adjustAwareness(-1) }
                    }
                } else {
                    out.append(.dropped(.staleAck))
                }
            case .nack(let seq, _, _):
                if let pr = probe, pr.seq == seq { probe?.nacks += 1 } else { out.append(.dropped(.staleAck)) }
            case .gossip:
                break
            }
            return out
        }

        static func reason(_ e: WireError) -> DropReason {
            switch e {
            case .unsupportedVersion: return .unsupportedVersion
            case .unknownType: return .unknownType
            case .oversized: return .oversized
            default: return .malformed
            }
        }

        // MARK: push-pull

        /// Our full state for a push-pull request (join or periodic or dead re-probe).
        public mutating func makePushPull(appState: [UInt8], now: Instant) -> [UInt8] {
            Codec.encode(pushPullState(isReply: false, appState: appState))
        }

        func pushPullState(isReply: Bool, appState: [UInt8]) -> PushPull {
            // Only claims that can be verified: a record stored unsigned (before wire version 2)
            // waits for the member's own signed one.
            PushPull(isReply: isReply, source: myself.id, join: !isReply && !hasExchangedState,
                     members: members.filter(Instance.isGossipable).map { Update($0) }, appState: appState)
        }

        /// A push-pull message from `from`. Returns a reply when `bytes` was a request. The remote
        /// state is merged first, so a refutation it causes is already in the reply.
        public mutating func onPushPull(_ bytes: [UInt8], from: Endpoint, appState: [UInt8],
                                        now: Instant) -> (reply: [UInt8]?, directives: [Directive]) {
            guard !hasLeft else { return (nil, [.dropped(.afterLeave)]) }
            let pp: PushPull
            do {
                pp = try Codec.decodePushPull(bytes, maxBytes: settings.maxPushPullBytes)
            } catch {
                return (nil, [.dropped(Instance.reason(error))])
            }
            if evicted.contains(pp.source) { return (nil, [.dropped(.fromEvicted)]) }
            var out: [Directive] = []
            if pp.isReply { hasExchangedState = true }
            for u in pp.members { apply(u, now: now, viaPushPull: true, &out) }
            if !pp.appState.isEmpty && pp.source != myself.id { out.append(.mergeAppState(pp.appState, from: pp.source)) }
            let reply = pp.isReply ? nil : Codec.encode(pushPullState(isReply: true, appState: appState))
            return (reply, out)
        }

        // MARK: merging

        /// Applies one gossiped or pushed update (docs/membership.md "Signed claims"): a higher
        /// incarnation wins when the member signed that record; at equal incarnation the state
        /// order alive < suspect < dead < left decides, but suspect and dead are accusations
        /// (signed by their accuser), a dead is taken as such only when this node's own probing
        /// failed too or `deadQuorum` distinct members accuse, and left needs the member's own
        /// signature. Anything that does not verify is dropped and counted. Signatures are
        /// checked only for updates that would change something (re-gossip costs nothing).
        mutating func apply(_ incoming: Update, now: Instant, viaPushPull: Bool, _ out: inout [Directive]) {
            let u = incoming
            if evicted.contains(u.id) || (u.state != .alive && evicted.contains(u.from)) {
                out.append(.dropped(.evictedMember))
                return
            }
            let baseline = u.id == myself.id ? myself.incarnation : table[u.id]?.incarnation
            if let refused = Membership.refusal(incarnation: u.incarnation, known: baseline,
                                                maxJump: settings.maxIncarnationJump) {
                out.append(.dropped(refused))
                return
            }
            if u.id == myself.id {
                aboutMyself(u, now: now, &out)
                return
            }
            guard let known = table[u.id] else {
                learn(u, now: now, viaPushPull: viaPushPull, &out)
                return
            }
            guard u.incarnation >= known.incarnation else { return }
            let newer = u.incarnation > known.incarnation
            var record = known
            if newer {
                // A new record: only the member itself can have made it.
                if u.publicKey != known.publicKey {
                    guard identityCheck(u.id, u.publicKey) else { out.append(.dropped(.identityMismatch)); return }
                }
                guard verify(u.publicKey, Claims.record(of: u), u.signature) else {
                    out.append(.dropped(.badRecordSignature))
                    return
                }
            }
            // The first signed copy of a record stored unsigned (before wire version 2) is
            // adopted when it verifies; the update's state claim is weighed either way.
            let adopt = !newer && known.recordSignature.isEmpty && !u.signature.isEmpty
                && (u.publicKey == known.publicKey || identityCheck(u.id, u.publicKey))
                && verify(u.publicKey, Claims.record(of: u), u.signature)
            if newer || adopt {
                record.incarnation = u.incarnation
                record.name = u.name
                record.address = u.address
                record.publicKey = u.publicKey
                record.recordSignature = u.signature
            }
            let recordChanged = record != known

            switch u.state {
            case .alive:
                if newer {
                    commit(record, .alive, by: nil, signature: [], previous: known, now: now, &out)
                } else if recordChanged {
                    // The first signed copy of a record stored unsigned: keep the state.
                    commit(record, known.state, by: known.stateBy, signature: known.stateSignature,
                           previous: known, now: now, keepSuspicion: true, &out)
                }

            case .left:
                guard newer || known.state != .left else { return }
                guard u.from == u.id,
                      verify(record.publicKey, Claims.left(subject: u.id, incarnation: u.incarnation), u.stateSignature) else {
                    out.append(.dropped(.badLeftSignature))
                    if newer { commit(record, .alive, by: nil, signature: [], previous: known, now: now, &out) }
                    return
                }
                commit(record, .left, by: u.id, signature: u.stateSignature, previous: known, now: now, &out)

            case .suspect, .dead:
                if !newer && (known.state == .dead || known.state == .left) {
                    if recordChanged { commit(record, known.state, by: known.stateBy, signature: known.stateSignature,
                                              previous: known, now: now, &out) }
                    return
                }
                // Accusers of this member at this incarnation, as far as this node has verified.
                var suspicion = (!newer && known.state == .suspect) ? suspicions[u.id] : nil
                if let s = suspicion, s.incarnation != u.incarnation { suspicion = nil }
                let alreadyAccused = suspicion?.confirmers.contains(u.from) ?? false
                if alreadyAccused && (u.state == .suspect || !canDeclareDead(suspicion!.confirmers)) {
                    if recordChanged { commit(record, known.state, by: known.stateBy, signature: known.stateSignature,
                                              previous: known, now: now, &out) }
                    return  // nothing new (the common re-gossip case)
                }
                if let s = suspicion, u.state == .suspect, s.confirmers.count >= maxAccusers { return }
                guard checkAccusation(u, subjectKey: record.publicKey, &out) else {
                    if newer || recordChanged {
                        commit(record, .alive, by: nil, signature: [], previous: known, now: now, &out)
                    }
                    return
                }
                var accusers = suspicion?.confirmers ?? []
                accusers.insert(u.from)
                if u.state == .dead && canDeclareDead(accusers) {
                    commit(record, .dead, by: u.from, signature: u.stateSignature, previous: known, now: now, &out)
                    return
                }
                if var s = suspicion {
                    // An independent confirmation shrinks the Lifeguard timeout; spread it. At most
                    // maxAccusers accusers are kept: beyond that the timeout is at its minimum and
                    // dead is taken, and forged accusers cannot grow the set without bound.
                    s.confirmers.insert(u.from)
                    suspicions[u.id] = s
                    if recordChanged { commit(record, .suspect, by: known.stateBy, signature: known.stateSignature,
                                              previous: known, now: now, keepSuspicion: true, &out) }
                    let current = table[u.id] ?? record
                    queue.enqueue(update: forwarded(u, record: current))
                    if u.state == .dead { startConfirmProbe(current, now: now, &out) }
                    return
                }
                // A first accusation at this incarnation (a lone "dead" too): a suspicion the
                // member can refute.
                let m = commit(record, .suspect, by: u.from, signature: u.stateSignature, previous: known, now: now, &out)
                startSuspicion(m, by: u.from, now: now)
                if u.state == .dead {
                    queue.enqueue(update: forwarded(u, record: m))
                    startConfirmProbe(m, now: now, &out)
                }
                if u.from == myself.id {
                    // The accuser tells the accused directly so it can refute at once; later probes of
                    // a suspect carry the suspicion too (Lifeguard "buddy system").
                    let msg = Message.gossip(source: myself.id, Piggyback(updates: [Update(m)]))
                    out.append(.send(Codec.encode(msg), to: m.address))
                }
            }
        }

        /// A dead is taken as such when this node is among the accusers (its own probes failed or
        /// its own suspicion timed out) or `deadQuorum` distinct members accuse.
        func canDeclareDead(_ accusers: Set<NodeID>) -> Bool {
            accusers.contains(myself.id) || accusers.count >= deadQuorum
        }

        /// Distinct accusers that make a received "dead" final here without this node's own
        /// probing: `max(2, suspicionConfirmations)` (2 by default), so one member alone never
        /// can. A lone dead makes this node probe the subject itself (`startConfirmProbe`).
        public var deadQuorum: Int { max(2, settings.suspicionConfirmations) }

        /// Accusers kept per suspicion: enough for the Lifeguard minimum (K + 1) and the quorum.
        var maxAccusers: Int { max(settings.suspicionConfirmations + 1, deadQuorum) }

        /// The update `u` as re-gossiped: our record of the member with `u`'s accusation.
        func forwarded(_ u: Update, record: Member) -> Update {
            var f = Update(record)
            f.state = u.state
            f.from = u.from
            f.stateSignature = u.stateSignature
            return f
        }

        /// Stores `record` in `state` with its claim, reports it, and queues it for gossip.
        @discardableResult
        mutating func commit(_ record: Member, _ state: MemberState, by: NodeID?, signature: [UInt8],
                             previous known: Member, now: Instant, keepSuspicion: Bool = false,
                             _ out: inout [Directive]) -> Member {
            var m = record
            if m.state != state || m.incarnation != known.incarnation { m.stateChangedAt = now }
            m.state = state
            m.stateBy = by
            m.stateSignature = signature
            store(m)
            out.append(.memberChanged(m, previous: known.state))
            if !keepSuspicion { suspicions[m.id] = nil }
            queue.enqueue(update: Update(m))
            return m
        }

        /// A member this node did not know. Learned from alive or suspect news only (dead and
        /// left strangers need no record), and only from a record the member signed.
        mutating func learn(_ u: Update, now: Instant, viaPushPull: Bool, _ out: inout [Directive]) {
            guard u.state == .alive || u.state == .suspect else { return }
            guard identityCheck(u.id, u.publicKey) else { out.append(.dropped(.identityMismatch)); return }
            guard verify(u.publicKey, Claims.record(of: u), u.signature) else {
                out.append(.dropped(.badRecordSignature))
                return
            }
            var m = Member(id: u.id, name: u.name, address: u.address, publicKey: u.publicKey,
                           incarnation: u.incarnation, state: .alive, stateChangedAt: now, recordSignature: u.signature)
            // A suspect learned from a push-pull is recorded as alive (its timer is elsewhere).
            if u.state == .suspect && !viaPushPull && checkAccusation(u, subjectKey: u.publicKey, &out) {
                m.state = .suspect
                m.stateBy = u.from
                m.stateSignature = u.stateSignature
            }
            store(m)
            probeOrder.insert(u.id, at: Int.random(in: 0...probeOrder.count, using: &rng))
            // The cluster is growing: exchange full state soon (settings.catchUpPushPullDelay).
            // The spread comes from the new member's id, not the RNG, so schedules stay as they were.
            let soon = now + settings.catchUpPushPullDelay.scaled(by: 0.5 + Double(u.id.low % 1024) / 2048)
            if soon < nextPushPullAt { nextPushPullAt = soon }
            out.append(.memberChanged(m, previous: nil))
            if m.state == .suspect { startSuspicion(m, by: u.from, now: now) }
            queue.enqueue(update: Update(m))
        }

        /// Checks the accuser's signature on a suspect/dead update. The accuser must be a member
        /// this node knows (its key is needed), and never the subject itself.
        mutating func checkAccusation(_ u: Update, subjectKey: [UInt8], _ out: inout [Directive]) -> Bool {
            guard u.from != u.id else { out.append(.dropped(.badAccusation)); return false }
            let key: [UInt8]
            if u.from == myself.id {
                key = myself.publicKey
            } else if let accuser = table[u.from] {
                key = accuser.publicKey
            } else {
                out.append(.dropped(.unknownAccuser))
                return false
            }
            guard verify(key, Claims.accusation(subject: u.id, incarnation: u.incarnation, accuser: u.from),
                         u.stateSignature) else {
                out.append(.dropped(.badAccusation))
                return false
            }
            return true
        }

        /// One signature check, through the verified cache.
        mutating func verify(_ key: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool {
            guard key.count == Update.publicKeyBytes, signature.count == Update.signatureBytes else { return false }
            let k = VerifiedCache.Key(publicKey: key, message: message, signature: signature)
            if verifiedCache.contains(k) {
                claimStats.cacheHits += 1
                return true
            }
            claimStats.verifications += 1
            guard signer.verify(key, message, signature) else { return false }
            verifiedCache.insert(k)
            return true
        }

        /// Signs `message` with our identity key; our own claims go straight into the cache.
        mutating func signClaim(_ message: [UInt8]) -> [UInt8] {
            let sig = signer.sign(message)
            claimStats.signatures += 1
            verifiedCache.insert(VerifiedCache.Key(publicKey: myself.publicKey, message: message, signature: sig))
            return sig
        }

        /// Our accusation of `m` (suspect or dead), signed.
        mutating func accusation(of m: Member, _ state: MemberState) -> Update {
            var u = Update(m)
            u.state = state
            u.from = myself.id
            u.stateSignature = signClaim(Claims.accusation(subject: m.id, incarnation: m.incarnation, accuser: myself.id))
            return u
        }

        /// Re-signs our record (after a refutation, or at start).
        mutating func signMyself() {
            myself.recordSignature = signClaim(Claims.record(of: myself))
        }

        mutating func startSuspicion(_ m: Member, by accuser: NodeID, now: Instant) {
            let n = liveCount
            var k = settings.suspicionConfirmations
            if n - 2 < k { k = 0 }
            let scale = max(1, Math.log10(Double(max(n, 1))))
            let minT = settings.probeInterval.scaled(by: settings.suspicionAlpha * scale)
            let maxT = minT.scaled(by: settings.suspicionBeta)
            suspicions[m.id] = Suspicion(start: now, incarnation: m.incarnation, min: minT, max: maxT, k: k,
                                         confirmers: [accuser])
        }

        /// Someone spoke about us. Refute suspicion/death with a higher incarnation, but only
        /// for claims that verify: an accusation signed by a member we know, a left or an alive
        /// signed by our own key.
        mutating func aboutMyself(_ u: Update, now: Instant, _ out: inout [Directive]) {
            guard !hasLeft else { return }
            switch u.state {
            case .alive:
                // Only we raise our incarnation; an alive at or below ours is an old echo.
                guard u.incarnation > myself.incarnation else { return }
                guard verify(myself.publicKey, Claims.record(of: u), u.signature) else {
                    out.append(.dropped(.badRecordSignature))
                    return
                }
            case .suspect, .dead:
                guard u.incarnation >= myself.incarnation else { return }
                guard checkAccusation(u, subjectKey: myself.publicKey, &out) else { return }
            case .left:
                guard u.incarnation >= myself.incarnation else { return }
                guard verify(myself.publicKey, Claims.left(subject: u.id, incarnation: u.incarnation), u.stateSignature) else {
                    out.append(.dropped(.badLeftSignature))
                    return
                }
            }
            // `apply` refused anything above maxIncarnation; stay checked all the same.
            guard let next = Membership.incarnation(after: max(u.incarnation, myself.incarnation)) else {
                out.append(.dropped(.incarnationTooLarge))
                return
            }
            adjustAwareness(1)
            raiseIncarnation(to: next, &out)
        }
    }
}
