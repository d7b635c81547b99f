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
        var queue = BroadcastQueue()
        var suspicions: [NodeID: Suspicion] = [:]

        /// Shuffled round-robin probe order over every other member (dead ones are skipped).
        var probeOrder: [NodeID] = []
        var probeIndex = 0
        var probe: Probe?
        var relays: [UInt32: Relay] = [:]
        var nextSeq: UInt32 = 0
        /// Set once a push-pull reply arrived; until then our requests carry the join flag.
        var hasExchangedState = false

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
        public init(myself: Member, settings: Settings, seed: UInt64, now: Instant,
                    knownMembers: [Member] = [],
                    identityCheck: @escaping @Sendable (NodeID, [UInt8]) -> Bool = { _, _ in true }) {
            var me = myself
            me.name = String(decoding: Update.truncatedName(me.name), as: UTF8.self)
            me.state = .alive
            me.stateChangedAt = now
            self.myself = me
            self.settings = settings
            self.rng = DeterministicRNG(seed: seed)
            self.identityCheck = identityCheck
            store(me)
            for var m in knownMembers where m.id != me.id {
                if m.state == .suspect { m.state = .alive }
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
            probe = nil
            relays.removeAll()
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

        // MARK: ticks

        public mutating func onTick(now: Instant) -> [Directive] {
            var out: [Directive] = []
            if !hasLeft {
                expireSuspicions(now: now, &out)
                runRelays(now: now, &out)
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
            let extra = target.state == .suspect ? [Update(target, from: myself.id)] : []
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
            var accusation = Update(target, from: myself.id)
            accusation.state = .suspect
            apply(accusation, now: now, viaPushPull: false, &out)
        }

        mutating func adjustAwareness(_ delta: Int) {
            awareness = min(max(awareness + delta, 0), settings.awarenessMax - 1)
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
                var dead = Update(m, from: myself.id)
                dead.state = .dead
                apply(dead, now: now, viaPushPull: false, &out)
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
                if let r = relays.removeValue(forKey: seq) {
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
            PushPull(isReply: isReply, source: myself.id, join: !isReply && !hasExchangedState,
                     members: members.map { Update($0) }, appState: appState)
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
            var out: [Directive] = []
            if pp.isReply { hasExchangedState = true }
            for u in pp.members { apply(u, now: now, viaPushPull: true, &out) }
            if !pp.appState.isEmpty && pp.source != myself.id { out.append(.mergeAppState(pp.appState, from: pp.source)) }
            let reply = pp.isReply ? nil : Codec.encode(pushPullState(isReply: true, appState: appState))
            return (reply, out)
        }

        // MARK: merging

        /// Applies one gossiped or pushed update: higher incarnation wins; at equal incarnation
        /// the state order alive < suspect < dead < left decides (see `MemberState`).
        mutating func apply(_ incoming: Update, now: Instant, viaPushPull: Bool, _ out: inout [Directive]) {
            var u = incoming
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
                // Unknown members are learned from alive/suspect news only; dead/left strangers
                // need no record.
                guard u.state == .alive || u.state == .suspect else { return }
                guard identityCheck(u.id, u.publicKey) else { out.append(.dropped(.identityMismatch)); return }
                if viaPushPull && u.state == .suspect { u.state = .alive }
                let m = Member(id: u.id, name: u.name, address: u.address, publicKey: u.publicKey,
                               incarnation: u.incarnation, state: u.state, stateChangedAt: now)
                store(m)
                probeOrder.insert(u.id, at: Int.random(in: 0...probeOrder.count, using: &rng))
                out.append(.memberChanged(m, previous: nil))
                if u.state == .suspect { startSuspicion(m, by: u.from, now: now) }
                queue.enqueue(update: u)
                return
            }
            if u.publicKey != known.publicKey {
                guard identityCheck(u.id, u.publicKey) else { out.append(.dropped(.identityMismatch)); return }
            }
            // memberlist: a pushed "dead" is only a suspicion here, so the accused can refute.
            if viaPushPull && u.state == .dead && known.state != .dead { u.state = .suspect }

            if u.incarnation == known.incarnation && u.state == .suspect && known.state == .suspect {
                // An independent confirmation shrinks the Lifeguard timeout; spread it if new.
                // At most k + 1 confirmers are kept: beyond that the timeout is already at its
                // minimum, and forged accusers cannot grow the set without bound.
                if var s = suspicions[u.id], s.confirmers.count <= s.k, s.confirmers.insert(u.from).inserted {
                    suspicions[u.id] = s
                    queue.enqueue(update: u)
                }
                return
            }
            let newer = u.incarnation > known.incarnation
                || (u.incarnation == known.incarnation && u.state.rawValue > known.state.rawValue)
            guard newer else { return }

            var m = known
            m.incarnation = u.incarnation
            m.state = u.state
            m.stateChangedAt = now
            if u.state == .alive || u.incarnation > known.incarnation {
                m.name = u.name
                m.address = u.address
                m.publicKey = u.publicKey
            }
            store(m)
            out.append(.memberChanged(m, previous: known.state))
            queue.enqueue(update: Update(m, from: u.from))
            suspicions[u.id] = nil
            if m.state == .suspect {
                startSuspicion(m, by: u.from, now: now)
            }
            if m.state == .suspect && u.from == myself.id {
                // The accuser tells the accused directly so it can refute at once; later probes of
                // a suspect carry the suspicion too (Lifeguard "buddy system").
                let msg = Message.gossip(source: myself.id, Piggyback(updates: [Update(m, from: u.from)]))
                out.append(.send(Codec.encode(msg), to: m.address))
            }
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

        /// Someone spoke about us. Refute suspicion/death with a higher incarnation.
        mutating func aboutMyself(_ u: Update, now: Instant, _ out: inout [Directive]) {
            guard !hasLeft else { return }
            switch u.state {
            case .alive:
                // Only we raise our incarnation; an alive at or below ours is an old echo.
                guard u.incarnation > myself.incarnation else { return }
            case .suspect, .dead, .left:
                guard u.incarnation >= myself.incarnation else { return }
            }
            // `apply` refused anything above maxIncarnation; stay checked all the same.
            guard let next = Membership.incarnation(after: max(u.incarnation, myself.incarnation)) else {
                out.append(.dropped(.incarnationTooLarge))
                return
            }
            myself.incarnation = next
            store(myself)
            adjustAwareness(1)
            out.append(.persistIncarnation(myself.incarnation))
            out.append(.memberChanged(myself, previous: .alive))
            queue.enqueue(update: Update(myself))
        }
    }
}
