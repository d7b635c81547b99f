extension Node {
    /// The node: owns the membership and IPAM instances and every rule between them. Every input
    /// takes `now` and returns ``Effect``s; every durable change of an input is committed through
    /// ``NodeStorage`` as one batch before its effects are returned (or the input is undone).
    public struct Instance: Sendable {
        public internal(set) var membership: Membership.Instance
        public internal(set) var ipam: IPAM.Instance
        /// Name records of every node's containers (docs/dns.md).
        public internal(set) var dns = DNS.Records()
        /// Names asked for with allocations that are still pending, by handle.
        var pendingNames: [String: String] = [:]
        public let settings: Settings
        public let storage: any NodeStorage
        public internal(set) var phase: Phase = .running
        /// True once another member answered this node since it started (push-pull reply or an
        /// authenticated datagram), restored members included.
        public private(set) var joined = false
        /// True once a full-state exchange with another member was merged since this start
        /// (our push-pull answered, or theirs received). Seeds are retried until then, not only
        /// until `joined`: a datagram from the seed makes a node joined but teaches it only the
        /// seed, and a joiner whose push-pull the seed refused as busy then waited for its
        /// periodic push-pull to learn the rest (up to 75 s for 100 nodes on one seed).
        public internal(set) var synced = false
        /// Seeds to retry until one answers.
        public private(set) var seeds: [Endpoint] = []
        /// Why each seed did not answer (cleared when it does).
        public private(set) var seedProblems: [String: String] = [:]
        /// Data-plane routes as last announced.
        public internal(set) var routes: [Route] = []
        /// Warnings about other members' rings, by key (one per member).
        public private(set) var ipamWarnings: [String: String] = [:]
        /// Inputs undone because their commit failed, and the last failure.
        public private(set) var storageFailures = 0
        public private(set) var lastStorageError: String?
        /// Why the cluster refused this node (phase `.refused`).
        public internal(set) var refusal: String?
        /// A push-pull with a member on this node's data plane was merged since this start: a
        /// later answer from a node on another data plane is that node's mistake, not ours.
        var dataPlaneConfirmed = false

        var nextSeedRetry: Instant?
        var seedRetryDelay: Duration
        var seedRound = 0
        var seedFailedRound: [Endpoint: Int] = [:]
        /// The next seed retry was brought forward because a seed answered "busy": it does not
        /// double the back-off (a busy seed is up; a silent one may not be).
        var seedRetryIsBusy = false
        var lastIPAMTick: Instant = .zero
        var tunnelIncarnations: [NodeID: UInt64] = [:]
        var announcedOverlay: UInt32?
        /// Overlay address claims that failed in a row, and when the next may start
        /// (`Settings.overlayRetryInitial`).
        var overlayClaimFailures = 0
        var overlayClaimNotBefore: Instant?
        /// The route table must be computed at the next settle (at start, before any change).
        var routesStale = true
        /// The nodes with a reserved /32 in the last computed route table (`affectsRoutes`).
        var reservedRouteOwners: Set<NodeID> = []
        var loggedMismatches: Set<String> = []
        /// When this node last ran a push-pull because members came back from the dead.
        var lastHealExchange: Instant?
        /// Started with no member known: a first join, where a clash of names refuses the node.
        let firstJoin: Bool
        /// Eviction records loaded from the store, verified and applied at start.
        var storedEvictions: [Node.Eviction]
        /// Point-to-point IPAM frames carry `frameCounterBase + frameSeq` (signed), so a captured
        /// frame is refused when replayed: per sender, one sliding window (`SenderReplayGuard`,
        /// as gossip datagrams have). The base must exceed every counter an earlier run of this
        /// node used: the daemon passes its wall clock in nanoseconds at start.
        let frameCounterBase: UInt64
        var frameSeq: UInt64 = 0
        var ipamReplay = SenderReplayGuard()
        /// MAC tags made for, and checked on, point-to-point IPAM frames (one each per frame),
        /// and the pair keys derived for them. Exported with the membership's `claimStats` as
        /// `weft_signatures_total`.
        public private(set) var ipamFrameStats = Membership.ClaimStats()
        /// Pair keys per peer (`pairKey(_:publicKey:)`), with the member key each was derived for.
        var pairKeys: [NodeID: (publicKey: [UInt8], key: [UInt8])] = [:]
        /// Every eviction record this node keeps (`Node+Eviction.swift`).
        public internal(set) var evictions = Node.Evictions()
        /// The other identities evicted now, and when this node learned it (IPAM counts an
        /// evicted owner as dead since then, so its space is reclaimed under the usual rules).
        var evictedSince: [NodeID: Instant] = [:]
        /// The record that evicted this node (phase `.evicted`), nil otherwise.
        public internal(set) var evictedBy: Node.Eviction?
        /// While evicted: former peers asked, one every `seedRetryMax`, whether it was undone.
        var evictedContacts: [Endpoint] = []
        var nextEvictedAsk: Instant?
        var evictedAskIndex = 0

        public var me: NodeID { membership.myself.id }
        public var name: String { membership.myself.name }

        /// A node built from its restored (or fresh) instances. Call ``start(seeds:ipamStartup:now:)``
        /// next: it commits the start-up state and returns the first effects.
        /// - Parameter frameCounterBase: larger than any IPAM frame counter an earlier run of
        ///   this identity sent (the daemon: its wall clock in ns; the simulator: the restart count
        ///   shifted left by 48).
        /// - Parameter evictions: the stored eviction records; re-verified by ``start(seeds:ipamStartup:now:)``.
        public init(membership: Membership.Instance, ipam: IPAM.Instance, records: [DNS.Records.Key: DNS.Records.Record] = [:],
                    evictions: [Node.Eviction] = [], settings: Settings = .default, storage: any NodeStorage, frameCounterBase: UInt64) {
            self.storedEvictions = evictions
            self.frameCounterBase = frameCounterBase
            self.membership = membership
            self.ipam = ipam
            self.dns.merge(records)
            self.settings = settings
            self.storage = storage
            self.seedRetryDelay = settings.seedRetryInitial
            self.firstJoin = membership.members.allSatisfy { $0.id == membership.myself.id }
        }

        // MARK: - Queries

        /// The earliest instant at which ``onTick(now:)`` has work.
        public var nextWakeup: Instant {
            if phase == .evicted { return nextEvictedAsk ?? membership.nextWakeup }
            var w = membership.nextWakeup
            if ipam.settings.ownWakeup {
                // The allocator's own wake-up, at most one tick interval after the last tick.
                if let t = ipam.nextTimer { w = min(w, max(t, lastIPAMTick + settings.ipamTick)) }
            } else if ipam.ring != nil || !ipam.pending.isEmpty {
                w = min(w, lastIPAMTick + settings.ipamTick)
            }
            // Seeds are retried only while running (a node that left or was refused must not
            // ask to be woken for a retry it will never make: that was a busy loop).
            if let s = nextSeedRetry, !synced, !seeds.isEmpty, phase == .running { w = min(w, s) }
            if let t = overlayClaimNotBefore, phase == .running, ipam.ring != nil, ipam.overlayAddress == nil { w = min(w, t) }
            return w
        }

        /// Member counts by state.
        public var memberCounts: [Membership.MemberState: Int] {
            var counts: [Membership.MemberState: Int] = [:]
            for m in membership.members { counts[m.state, default: 0] += 1 }
            return counts
        }

        /// Warnings for `weft status`: seeds that do not answer, rings that were refused,
        /// conflicts, storage failures.
        public var warnings: [String] {
            var out: [String] = []
            if let e = evictedWarning { out.append(e) }
            if !seeds.isEmpty && !joined {
                let detail = seedProblems.map { "\($0.key): \($0.value)" }.sorted().joined(separator: "; ")
                out.append("no seed answered yet (\(detail.isEmpty ? "waiting" : detail)): check the cluster key and the seed addresses")
            }
            out += ipamWarnings.keys.sorted().compactMap { ipamWarnings[$0] }
            if !ipam.conflicts.isEmpty {
                out.append("\(ipam.conflicts.count) allocation(s) are in conflict (their range was taken over while this node was away): see `weft ipam`")
            }
            if let e = lastStorageError {
                out.append("\(storageFailures) change(s) could not be written to the database (last: \(e)); they were undone: check the disk")
            }
            return out
        }

        // MARK: - Start

        /// Commits the start-up state (a created ring, the overlay address claim), tells IPAM who
        /// is live among the restored members, sets up tunnel peers and routes, and contacts the
        /// seeds. Throws when the start-up state cannot be committed (the daemon refuses to start).
        public mutating func start(seeds: [Endpoint], ipamStartup: [IPAM.Directive], now: Instant) throws(StorageFailure) -> [Effect] {
            self.seeds = seeds.filter { $0 != membership.myself.address }
            lastIPAMTick = now
            let result = transact(now: now) { node, w in
                // Stored eviction records are checked again (a tampered database must not evict
                // anyone), after the restored members whose keys they need.
                let stored = node.storedEvictions
                node.storedEvictions = []
                node.evictionRecords(stored, &w, now: now)
                w.batch.evictions = []  // already stored
                node.run(ipam: ipamStartup, &w, now: now)
                w.membersChanged = true
                for m in node.membership.members where m.id != node.me { w.changed[m.id] = m }
                if !node.seeds.isEmpty && node.phase == .running {
                    node.run(node.membership.join(seeds: node.seeds, now: now), &w, now: now)
                    node.nextSeedRetry = now + node.seedRetryDelay
                    node.seedRound += 1
                }
            }
            if let failure = result.failure { throw failure }
            return result.effects
        }

        // MARK: - Inputs from the network

        /// An authenticated membership datagram (the interpreter opened the envelope).
        public mutating func onGossip(_ plaintext: [UInt8], from: Endpoint, now: Instant) -> [Effect] {
            if phase == .evicted { return [.dropped("evicted")] }
            return transact(now: now) { node, w in
                node.heard(from)
                node.run(node.membership.onDatagram(plaintext, from: from, now: now), &w, now: now)
            }.effects
        }

        /// Our side of a push-pull exchange (join, periodic, dead re-probe).
        public mutating func makePushPullRequest(now: Instant) -> [UInt8] {
            let app = ipamAppState()
            return membership.makePushPull(appState: app, now: now)
        }

        /// A push-pull request arrived over TCP. Returns the reply to send, nil to close without
        /// answering (also when the change it caused could not be committed).
        public mutating func onPushPullRequest(_ plaintext: [UInt8], from: Endpoint, now: Instant) -> (reply: [UInt8]?, effects: [Effect]) {
            if phase == .evicted { return (nil, [.dropped("evicted")]) }
            if let (reply, effects) = refuseEvicted(request: plaintext) { return (reply, effects) }
            if let (reply, effects) = refuseOtherDataPlane(request: plaintext, from: from, now: now) { return (reply, effects) }
            var reply: [UInt8]?
            let r = transact(now: now) { node, w in
                let app = node.ipamAppState()
                let (rep, ds) = node.membership.onPushPull(plaintext, from: from, appState: app, now: now)
                node.run(ds, &w, now: now)
                if rep != nil { node.synced = true }
                reply = rep
            }
            return (r.failure == nil ? reply : nil, r.effects)
        }

        /// The answer to our push-pull request to `from`.
        public mutating func onPushPullReply(_ plaintext: [UInt8], from: Endpoint, now: Instant) -> [Effect] {
            var before: [Effect] = []
            if phase == .evicted {
                // Only the eviction records count; if they readmit this node, the rest of the
                // reply is merged as usual.
                before = evictedReply(plaintext, now: now)
                if phase == .evicted { return before }
            }
            return before + mergePushPullReply(plaintext, from: from, now: now)
        }

        mutating func mergePushPullReply(_ plaintext: [UInt8], from: Endpoint, now: Instant) -> [Effect] {
            if let effects = refuseOtherDataPlane(reply: plaintext, from: from, now: now) { return effects }
            return transact(now: now) { node, w in
                node.heard(from)
                let app = node.ipamAppState()
                let (_, ds) = node.membership.onPushPull(plaintext, from: from, appState: app, now: now)
                if node.membership.hasExchangedState { node.synced = true }  // set once a reply merged
                node.run(ds, &w, now: now)
                node.checkNameClash(&w, now: now)
            }.effects
        }

        /// Our push-pull to `to` failed (`reason` says how, for `weft status`). `busy`: the
        /// peer is up and said so but had no room for the connection (its connection limits,
        /// e.g. a hundred nodes joining through one seed at once): while not `synced`, the seeds
        /// are tried again after `busyRetryDelay` instead of the doubling back-off, which had
        /// pushed such joiners 16–30 s out and made a 100-node start take up to 75 s.
        public mutating func onPushPullFailed(to: Endpoint, reason: String, busy: Bool = false, now: Instant) -> [Effect] {
            guard seeds.contains(to), phase != .evicted else { return [] }
            seedProblems[to.description] = reason
            seedFailedRound[to] = seedRound
            if busy, !synced, phase == .running {
                let soon = now + busyRetryDelay()
                if nextSeedRetry.map({ soon < $0 }) ?? true {
                    nextSeedRetry = soon
                    seedRetryIsBusy = true
                }
                return []
            }
            guard !joined, seeds.allSatisfy({ seedFailedRound[$0] == seedRound }) else { return [] }
            let detail = seeds.map { "\($0): \(seedProblems[$0.description] ?? "?")" }.joined(separator: "; ")
            return [.log(Log(.error, "no seed answered: check the cluster key (--cluster-key-file) and the seed addresses; retrying",
                             event: "join-failed", ["seeds": detail]))]
        }

        /// A point-to-point IPAM frame: `version ‖ sender ‖ counter ‖ message ‖ tag`
        /// (`ipamFrameClaim`). The cluster key only proves the frame comes from some key holder;
        /// the tag — a MAC under the key only the sender and this node can derive from their
        /// identities (`ClaimSigner.pairKey`, with the sender's key from its signed member
        /// record) — proves which member sent it, and the counter that it is not a replay.
        /// Without them any key holder could ask a member, in another member's name, to donate
        /// its space, vote, or acknowledge a write, or replay a member's real request
        /// (docs/security.md). A MAC, not a signature: only the recipient checks a frame, and a
        /// tag costs a hash where an Ed25519 signature and its check cost two scalar
        /// multiplications (docs/benchmarks.md, stop 25).
        public mutating func onIPAMFrame(_ plaintext: [UInt8], now: Instant) -> [Effect] {
            if phase == .evicted { return [.dropped("evicted")] }
            let tagBytes = Membership.ClaimSigner.macBytes
            guard let version = plaintext.first else { return [.dropped("malformed-ipam")] }
            guard version == Self.ipamFrameVersion else { return [.dropped("ipam-unsupported-frame-version")] }
            var r = ByteReader(plaintext)
            guard plaintext.count > 1 + NodeID.byteCount + 8 + tagBytes, (try? r.u8("version")) != nil,
                  let sender = try? r.nodeID("sender"), let counter = try? r.u64("counter"),
                  let message = try? r.raw(r.remaining - tagBytes, "message") else {
                return [.dropped("malformed-ipam")]
            }
            guard sender != me, let member = membership.member(sender) else { return [.dropped("ipam-unknown-sender")] }
            guard let key = pairKey(sender, publicKey: member.publicKey) else { return [.dropped("ipam-bad-key")] }
            ipamFrameStats.verifications += 1
            guard membership.signer.checkMAC(key, Self.ipamFrameClaim(sender: sender, recipient: me, counter: counter, message: message),
                                             Array(plaintext.suffix(tagBytes))) else {
                return [.dropped("ipam-bad-signature")]
            }
            if let refusal = ipamReplay.check(sender: sender, counter: counter) { return [.dropped("ipam-" + refusal.rawValue)] }
            return transact(now: now) { node, w in
                node.run(ipam: node.ipam.onMessage(message, from: sender, now: now), &w, now: now)
            }.effects
        }

        /// The first byte of every point-to-point IPAM frame. Version 1 (before stop 25) had no
        /// such byte and an Ed25519 signature where version 2 has a MAC.
        public static let ipamFrameVersion: UInt8 = 2
        static let ipamFrameContext = Array("weft-ipam-frame-v2\u{0}".utf8)

        /// The sender a frame names (the runtime compares it with a datagram envelope's), or nil
        /// when the frame is too short or of another version.
        public static func ipamFrameSender(_ frame: [UInt8]) -> NodeID? {
            guard frame.first == ipamFrameVersion else { return nil }
            var r = ByteReader(frame)
            _ = try? r.u8("version")
            return try? r.nodeID("sender")
        }

        /// The IPAM message inside a frame (unauthenticated: for tests and traces), or nil when
        /// the frame is too short or of another version.
        public static func ipamFrameMessage(_ frame: [UInt8]) -> [UInt8]? {
            let head = 1 + NodeID.byteCount + 8, tag = Membership.ClaimSigner.macBytes
            guard frame.first == ipamFrameVersion, frame.count > head + tag else { return nil }
            return Array(frame[head..<(frame.count - tag)])
        }

        /// What the sender of a point-to-point IPAM frame authenticates: a context no other
        /// claim uses, the sender, the recipient (a frame captured on its way to one member is
        /// worthless at another), the counter (a replay to the same one is refused) and the
        /// message.
        public static func ipamFrameClaim(sender: NodeID, recipient: NodeID, counter: UInt64, message: [UInt8]) -> [UInt8] {
            var w = ByteWriter(capacity: ipamFrameContext.count + 40 + message.count)
            w.raw(ipamFrameContext); w.nodeID(sender); w.nodeID(recipient); w.u64(counter); w.raw(message)
            return w.bytes
        }

        /// A point-to-point IPAM frame: `version ‖ sender ‖ counter ‖ message ‖ tag`.
        public static func ipamFrame(sender: NodeID, counter: UInt64, message: [UInt8], tag: [UInt8]) -> [UInt8] {
            var w = ByteWriter(capacity: 25 + message.count + tag.count)
            w.u8(ipamFrameVersion); w.nodeID(sender); w.u64(counter); w.raw(message); w.raw(tag)
            return w.bytes
        }

        /// An authenticated point-to-point IPAM frame from this node to `recipient` (the next
        /// counter), or nil when no pair key can be derived for it (unknown, or its key yields none).
        mutating func ipamFrame(_ message: [UInt8], to recipient: NodeID) -> [UInt8]? {
            guard let member = membership.member(recipient), let key = pairKey(recipient, publicKey: member.publicKey) else { return nil }
            let counter = frameCounterBase &+ frameSeq
            frameSeq &+= 1
            ipamFrameStats.signatures += 1
            let tag = membership.signer.mac(key, Self.ipamFrameClaim(sender: me, recipient: recipient, counter: counter, message: message))
            return Self.ipamFrame(sender: me, counter: counter, message: message, tag: tag)
        }

        /// The key shared with member `id` under `publicKey`, derived once per peer key and kept
        /// (at most `maxPairKeys`; the cache starts over beyond that rather than grow).
        mutating func pairKey(_ id: NodeID, publicKey: [UInt8]) -> [UInt8]? {
            if let cached = pairKeys[id], cached.publicKey == publicKey { return cached.key }
            ipamFrameStats.pairKeys += 1
            guard let key = membership.signer.pairKey(publicKey) else { return nil }
            if pairKeys.count >= Self.maxPairKeys { pairKeys.removeAll(keepingCapacity: true) }
            pairKeys[id] = (publicKey, key)
            return key
        }

        static let maxPairKeys = 4096

        // MARK: - Timers

        /// Runs every timer that is due: membership probes and gossip, the allocator's timers,
        /// and seed retries while no seed has answered.
        public mutating func onTick(now: Instant) -> [Effect] {
            if phase == .evicted { return evictedTick(now: now) }
            return transact(now: now) { node, w in
                if node.membership.nextWakeup <= now {
                    node.run(node.membership.onTick(now: now), &w, now: now)
                }
                if now - node.lastIPAMTick >= node.settings.ipamTick {
                    node.lastIPAMTick = now
                    node.run(ipam: node.ipam.onTick(now: now), &w, now: now)
                }
                if !node.synced, !node.seeds.isEmpty, let due = node.nextSeedRetry, now >= due, node.phase == .running {
                    if node.seedRetryIsBusy {
                        node.seedRetryIsBusy = false
                    } else {
                        node.seedRetryDelay = min(node.seedRetryDelay * 2, node.settings.seedRetryMax)
                    }
                    node.nextSeedRetry = now + node.seedRetryDelay
                    node.seedRound += 1
                    node.run(node.membership.join(seeds: node.seeds, now: now), &w, now: now)
                }
            }.effects
        }

        // MARK: - Control requests

        /// `weft join`: contact `endpoints` now (remembered as seeds with `remember`). Returns the
        /// targets (the interpreter runs the push-pulls and reports each back) and the effects.
        public mutating func join(_ endpoints: [Endpoint], remember: Bool, now: Instant) -> (targets: [Endpoint], effects: [Effect]) {
            guard phase != .evicted else { return ([], []) }
            let targets = endpoints.filter { $0 != membership.myself.address }
            if remember {
                for e in targets where !seeds.contains(e) { seeds.append(e) }
                if nextSeedRetry == nil { nextSeedRetry = now + seedRetryDelay }
            }
            let effects = transact(now: now) { node, w in
                let ds = node.membership.join(seeds: targets, now: now).filter {
                    if case .pushPull = $0 { return false } else { return true }
                }
                node.run(ds, &w, now: now)
            }.effects
            return (targets, effects)
        }

        /// Allocates an address for `handle`: `.allocated` at once, or `.pending` (an
        /// `.allocated`/`.allocationFailed` effect follows). Committed before it answers.
        public mutating func allocate(handle: String, name: String? = nil, now: Instant) -> (result: Result<IPAM.AllocationOutcome, AllocateError>, effects: [Effect]) {
            if let name, let problem = Instance.validate(name: name) { return (.failure(.invalidName(problem)), []) }
            if phase == .evicted { return (.failure(.evicted(evictedWarning ?? "this node was evicted from the cluster")), []) }
            var outcome: Result<IPAM.AllocationOutcome, AllocateError> = .failure(.allocation(.notInCluster))
            let r = transact(now: now) { node, w in
                do throws(IPAM.AllocationError) {
                    let (o, ds) = try node.ipam.allocate(handle: handle, now: now)
                    node.run(ipam: ds, &w, now: now)
                    outcome = .success(o)
                    if let name {
                        switch o {
                        case .allocated(let a): node.nameRecord(handle: handle, name: name, address: a, &w)
                        case .pending: node.pendingNames[handle] = name
                        }
                    }
                } catch {
                    outcome = .failure(.allocation(error))
                }
            }
            if let f = r.failure { return (.failure(.storage(f)), r.effects) }
            return (outcome, r.effects)
        }

        /// Why an allocation or release did not happen.
        public enum AllocateError: Error, Equatable, Sendable, CustomStringConvertible {
            case allocation(IPAM.AllocationError)
            case invalidName(String)
            case storage(StorageFailure)
            /// This node was evicted from the cluster (the message says by whom and what to do).
            case evicted(String)
            public var description: String {
                switch self {
                case .allocation(let e): return e.description
                case .invalidName(let why): return why
                case .evicted(let why): return why
                case .storage(let f): return f.description
                }
            }
        }

        /// Releases `handle` (or forgets its conflict). Returns the address it had.
        public mutating func release(handle: String, now: Instant) -> (result: Result<UInt32?, AllocateError>, effects: [Effect]) {
            let address = ipam.allocations[handle] ?? ipam.conflicts[handle]
            var outcome: Result<UInt32?, AllocateError> = .success(address)
            let r = transact(now: now) { node, w in
                do throws(IPAM.AllocationError) {
                    node.run(ipam: try node.ipam.release(handle: handle, now: now), &w, now: now)
                    node.pendingNames[handle] = nil
                    node.unnameRecord(handle: handle, &w)
                } catch {
                    outcome = .failure(.allocation(error))
                }
            }
            if let f = r.failure { return (.failure(.storage(f)), r.effects) }
            return (outcome, r.effects)
        }

        /// Why a manual reclaim did not happen.
        public enum ReclaimError: Error, Equatable, Sendable, CustomStringConvertible {
            case noMatch(String)
            case ambiguous(String, Int)
            case refused(IPAM.ReclaimError)
            case storage(StorageFailure)
            public var description: String {
                switch self {
                case .noMatch(let t): return "no member or range owner matches '\(t)': see `weft members` and `weft ipam`"
                case .ambiguous(let t, let n): return "'\(t)' matches \(n) nodes: give more of the id (see `weft members` and `weft ipam`)"
                case .refused(let e): return e.description
                case .storage(let f): return f.description
                }
            }
        }

        /// `weft ipam reclaim NODE`: `nodeText` is a name, an id or an id prefix. Returns the node
        /// and the number of ranges and addresses taken over.
        public mutating func reclaim(_ nodeText: String, force: Bool = false, now: Instant) -> (result: Result<(node: NodeID, ranges: Int, addresses: UInt64), ReclaimError>, effects: [Effect]) {
            let text = nodeText.lowercased()
            var candidates = Set<NodeID>()
            for m in membership.members where m.id.hex.hasPrefix(text) || m.name == nodeText { candidates.insert(m.id) }
            for o in ipam.ring?.owners ?? [] where o.hex.hasPrefix(text) { candidates.insert(o) }
            guard !text.isEmpty, !candidates.isEmpty else { return (.failure(.noMatch(nodeText)), []) }
            guard candidates.count == 1, let node = candidates.first else { return (.failure(.ambiguous(nodeText, candidates.count)), []) }
            let before = ipam.ring?.entries.filter { $0.owner == node } ?? []
            var refused: IPAM.ReclaimError?
            let r = transact(now: now) { n, w in
                do throws(IPAM.ReclaimError) { n.run(ipam: try n.ipam.reclaim(node, force: force, now: now), &w, now: now) } catch { refused = error }
            }
            if let f = r.failure { return (.failure(.storage(f)), r.effects) }
            if let refused { return (.failure(.refused(refused)), r.effects) }
            var addresses: UInt64 = 0
            if let ring = ipam.ring {
                for e in before { if let i = ring.index(ofToken: e.token) { addresses += UInt64(ring.size(ofEntryAt: i)) } }
            }
            return (.success((node, before.count, addresses)), r.effects)
        }

        /// Graceful, permanent departure: hand every range to live peers, announce `left`.
        /// The interpreter keeps ticking for a grace period (gossip carries the news), pushes the
        /// new ring to a live peer, and stops.
        public mutating func leave(now: Instant) -> (handoverPeers: [Endpoint], effects: [Effect]) {
            let peers = membership.members.filter { $0.id != me && $0.state == .alive }.prefix(2).map(\.address)
            let effects = transact(now: now) { node, w in
                node.run(ipam: node.ipam.leave(now: now), &w, now: now)
                for k in node.dns.entries.keys.sorted() where k.owner == node.me { node.unnameRecord(handle: k.handle, &w) }
                node.run(node.membership.leave(now: now), &w, now: now)
                node.phase = .left
            }.effects
            return (Array(peers), effects)
        }

        // MARK: - The composition rules

        /// Collects one input's durable changes and effects.
        struct Work {
            var batch = Batch()
            var effects: [Effect] = []
            var membersChanged = false
            var changed: [NodeID: Membership.Member] = [:]
            /// Members that came back from the dead in this input (a healed partition).
            var returned: [Membership.Member] = []
        }

        /// Runs `body`, settles the cross-protocol consequences, and commits the batch. On a
        /// failed commit every change of the input is undone and only the failure is reported.
        mutating func transact(now: Instant, _ body: (inout Instance, inout Work) -> Void) -> (effects: [Effect], failure: StorageFailure?) {
            // The snapshot for the undo below shares every buffer with `self`, so whatever the
            // input mutates is copied once (copy-on-write). The two largest and busiest parts
            // are left out of it: the gossip retransmit queue (its undo drops the items queued
            // since `mark`) and the cache of verified signatures (a memo of a pure function,
            // true either way). At n = 100 copying them on every datagram was the node's
            // hottest path (docs/benchmarks.md, 100 real processes).
            var saved = self
            let mark = membership.queue.mark
            saved.membership.queue = .init()
            saved.membership.verifiedCache = .init(capacity: 0)
            var w = Work()
            body(&self, &w)
            settle(&w, now: now)
            if phase == .evicted {
                // An evicted node sends nothing but its push-pull asking whether it was readmitted.
                w.effects.removeAll {
                    switch $0 {
                    case .sendGossip, .sendIPAM, .sendIPAMDatagram: return true
                    default: return false
                    }
                }
            }
            guard !w.batch.isEmpty else { return (w.effects, nil) }
            do {
                try storage.commit(w.batch)
            } catch {
                let failure = StorageFailure("\(error)")
                let count = storageFailures + 1
                var queue = membership.queue
                queue.discard(after: mark)
                let cache = membership.verifiedCache
                self = saved
                membership.queue = queue
                membership.verifiedCache = cache
                storageFailures = count
                lastStorageError = failure.detail
                return ([.dropped("storage-error"),
                         .log(Log(.error, "cannot commit the node's state; the change was undone", event: "store-error", ["error": failure.detail]))],
                        failure)
            }
            return (w.effects, nil)
        }

        /// After an input: membership news reaches IPAM and the tunnels; ring news reaches the
        /// routes; the overlay address is claimed once a ring exists and announced once taken.
        mutating func settle(_ w: inout Work, now: Instant) {
            if w.membersChanged {
                var live = Set<NodeID>()
                var deadSince: [NodeID: Instant] = [:]
                var left = Set<NodeID>()
                for m in membership.members {
                    switch m.state {
                    case .alive, .suspect: live.insert(m.id)
                    case .dead: deadSince[m.id] = m.stateChangedAt
                    case .left: deadSince[m.id] = m.stateChangedAt; left.insert(m.id)
                    }
                }
                // An evicted owner counts as dead since this node learned of the eviction while
                // it still owns ranges: its heir reclaims them under the usual rules (after
                // reclaim-after, with a quorum, fenced), or an operator runs `weft ipam reclaim`.
                if !evictedSince.isEmpty, let owners = ipam.ring?.owners {
                    let owning = Set(owners)
                    for (id, since) in evictedSince where owning.contains(id) && !live.contains(id) { deadSince[id] = since }
                }
                run(ipam: ipam.onMembersChanged(live: live, deadSince: deadSince, left: left, now: now), &w, now: now)
                w.effects.append(.membersChanged)
            }
            for id in w.changed.keys.sorted() where id != me && evictedSince[id] == nil && phase != .evicted {
                if let m = w.changed[id] { syncTunnelPeer(m, &w) }
            }
            if let t = overlayClaimNotBefore, now >= t { overlayClaimNotBefore = nil }  // the wait is over (and no longer a wake-up)
            if phase == .running, ipam.ring != nil, ipam.overlayAddress == nil, !ipam.hasLeft, overlayClaimNotBefore == nil,
               !ipam.pending.contains(where: { $0.handle == IPAM.Instance.overlayHandle }),
               let (_, ds) = try? ipam.claimOverlayAddress(now: now) {
                run(ipam: ds, &w, now: now)
            }
            healExchange(&w, now: now)
            if w.membersChanged || !w.batch.dns.isEmpty || w.batch.ipam.contains(where: { if case .cluster = $0 { return true } else { return false } }) {
                w.effects.append(.zoneChanged)
            }
            // Routes depend only on the ring and the registers (docs/node.md): recomputed when an
            // input changed those, not on every member change or own allocation (at n = 1000
            // that was O(ring + registers) per input, the simulator's hottest path).
            if routesStale || w.batch.ipam.contains(where: affectsRoutes) {
                routesStale = false
                updateRoutes(&w)
            }
            if let a = ipam.overlayAddress, a != announcedOverlay, let subnet = ipam.ring?.subnet {
                announcedOverlay = a
                w.effects.append(.overlayAddress(a, prefixLength: Int(subnet.prefixLength)))
                w.effects.append(.log(Log(.notice, "overlay address assigned", event: "overlay-address", ["address": IPAM.format(a)])))
            }
        }

        /// After a busy seed: `seedRetryInitial` × a factor in [0.25, 1) drawn from a hash of
        /// this node and the round, so joiners refused together do not come back together.
        func busyRetryDelay() -> Duration {
            let spread = IPAM.Instance.rendezvous(me, NodeID(high: UInt64(truncatingIfNeeded: seedRound), low: 0x6275_7379_7365_6564))
            return settings.seedRetryInitial * (0.25 + 0.75 * Double(spread % 1024) / 1024)
        }

        /// The overlay claim failed: wait `overlayRetryInitial · 2^(failures−1)` (at most
        /// `overlayRetryMax`), times a factor in [0.5, 1) drawn from a hash of this node and the
        /// failure count, so nodes that failed together do not retry together.
        mutating func overlayClaimFailed(now: Instant) {
            overlayClaimFailures = min(overlayClaimFailures + 1, 32)
            var delay = settings.overlayRetryInitial
            for _ in 1..<overlayClaimFailures where delay < settings.overlayRetryMax { delay = delay * 2 }
            delay = min(delay, settings.overlayRetryMax)
            let spread = IPAM.Instance.rendezvous(me, NodeID(high: UInt64(overlayClaimFailures), low: 0x6f76_6572_6c61_7921))
            overlayClaimNotBefore = now + delay * (0.5 + Double(spread % 1024) / 2048)
        }

        /// A member came back from the dead: a partition healed. Exchange full state with one of
        /// the returning members at once (at most once per `healExchangeInterval`), so both
        /// sides' rings and member lists meet in one round trip instead of waiting for the
        /// periodic push-pull (at n = 100 that took ~2 minutes; docs/benchmarks.md).
        mutating func healExchange(_ w: inout Work, now: Instant) {
            guard !w.returned.isEmpty, phase == .running else { return }
            if let last = lastHealExchange, now - last < settings.healExchangeInterval { return }
            // Spread the exchanges: each node picks by a hash of (itself, candidate).
            let pick = w.returned.min { IPAM.Instance.rendezvous(me, $0.id) < IPAM.Instance.rendezvous(me, $1.id) }!
            lastHealExchange = now
            w.effects.append(.pushPull(to: pick.address))
        }

        /// Another member answered: the node is joined; a seed that answered has no problem.
        mutating func heard(_ from: Endpoint) {
            if from != membership.myself.address { joined = true }
            if seeds.contains(from) {
                seedProblems[from.description] = nil
                seedRetryDelay = settings.seedRetryInitial
            }
        }

        /// The ring bytes for a push-pull (pending free hints are folded in first).
        mutating func ipamAppState() -> [UInt8] {
            _ = ipam.flushFreeHints()  // the full ring carries the hints; the delta is not needed
            return Instance.packAppState(ipam: ipam.fullStateMessage() ?? [], dns: DNS.Records.encode(dns.entries),
                                         dataPlane: settings.dataPlane == Node.encryptedDataPlane ? nil : settings.dataPlane,
                                         evictions: evictionPart())
        }

        /// A first join into a cluster where a live member already uses this node's name.
        mutating func checkNameClash(_ w: inout Work, now: Instant) {
            guard firstJoin, phase == .running else { return }
            // The same name at the same address is this host coming back under a new identity
            // (its database was lost): a replacement, not a clash.
            guard let other = membership.members.first(where: {
                $0.id != me && $0.name == name && $0.address != membership.myself.address
                    && ($0.state == .alive || $0.state == .suspect)
            }) else { return }
            let message = "another member (\(other.id.short) at \(other.address)) already uses the name '\(name)': start this node with --name and a name of its own"
            refusal = message
            phase = .refused
            run(ipam: ipam.leave(now: now), &w, now: now)
            run(membership.leave(now: now), &w, now: now)
            w.effects.append(.log(Log(.error, message, event: "name-clash", ["other": other.id.short])))
            w.effects.append(.stop(.refused, message: message))
        }

        mutating func run(_ directives: [Membership.Directive], _ w: inout Work, now: Instant) {
            for d in directives {
                switch d {
                case .send(let bytes, let to):
                    w.effects.append(.sendGossip(bytes, to: to))
                case .pushPull(let to):
                    w.effects.append(.pushPull(to: to))
                case .memberChanged(let m, let previous):
                    w.batch.members.removeAll { $0.id == m.id }
                    w.batch.members.append(m)
                    w.changed[m.id] = m
                    w.membersChanged = true
                    if m.id != me && m.state == .alive { joined = true }
                    if m.id != me && m.state == .alive && previous == .dead { w.returned.append(m) }
                    let level: Log.Level = (m.state == .dead || m.state == .suspect) ? .warning : .info
                    w.effects.append(.log(Log(level, "member \(m.state)", event: "member-\(m.state)", [
                        "member": m.id.short, "memberName": m.name, "addr": m.address.description,
                        "incarnation": "\(m.incarnation)", "previous": previous?.description ?? "none",
                    ])))
                case .memberRemoved(let m):
                    w.batch.members.removeAll { $0.id == m.id }
                    w.batch.forgotten.append(m.id)
                    w.membersChanged = true
                    w.effects.append(.log(Log(.info, "member forgotten", event: "member-forgotten", ["member": m.id.short, "memberName": m.name])))
                case .persistIncarnation(let inc):
                    w.batch.incarnation = inc
                case .deliver(let bytes, let from):
                    if bytes.first == DNS.Records.tag {
                        recordData(bytes, rebroadcast: true, &w)
                    } else if bytes.first == Node.Eviction.gossipTag {
                        if let e = Node.Eviction.decode(broadcast: bytes) {
                            evictionRecords([e], &w, now: now)
                        } else {
                            w.effects.append(.dropped("malformed-eviction"))
                        }
                    } else {
                        ringData(bytes, from: from, rebroadcast: true, &w, now: now)
                    }
                case .mergeAppState(let bytes, let from):
                    if let parts = Instance.unpackAppState(bytes) {
                        // Evictions first: a ring entry or name record of an identity evicted in
                        // the same exchange is then already judged by the new rules.
                        if let list = Node.Eviction.decode(list: parts.evictions) {
                            evictionRecords(list, &w, now: now)
                        } else {
                            w.effects.append(.dropped("malformed-evictions"))
                        }
                        if !parts.ipam.isEmpty { ringData(parts.ipam, from: from, rebroadcast: false, &w, now: now) }
                        recordData(parts.dns, rebroadcast: false, &w)
                    } else if !bytes.isEmpty {
                        ringData(bytes, from: from, rebroadcast: false, &w, now: now)
                    }
                case .dropped(let reason):
                    w.effects.append(.dropped(reason.rawValue))
                case .probeRTT(let rtt):
                    w.effects.append(.probeRTT(rtt))
                }
            }
        }

        /// Ring data from gossip or push-pull. A piggybacked broadcast that was news (it changed
        /// durable state here) is passed on, SWIM-style; old news stops here.
        mutating func ringData(_ bytes: [UInt8], from: NodeID, rebroadcast: Bool, _ w: inout Work, now: Instant) {
            let directives = ipam.onRingDelta(bytes, from: from, now: now)
            let wasNews = directives.contains { if case .persist = $0 { return true } else { return false } }
            run(ipam: directives, &w, now: now)
            if rebroadcast && wasNews { _ = membership.enqueueBroadcast(bytes, key: IPAM.Message.gossipKey(encoded: bytes, singleItemOnly: true)) }
        }

        mutating func run(ipam directives: [IPAM.Directive], _ w: inout Work, now: Instant) {
            for d in directives {
                switch d {
                case .persist(let change):
                    w.batch.ipam.append(change)
                case .broadcast(let bytes):
                    _ = membership.enqueueBroadcast(bytes, key: IPAM.Message.gossipKey(encoded: bytes, singleItemOnly: false))
                case .send(let bytes, let to):
                    guard let m = membership.member(to) else {
                        w.effects.append(.dropped("ipam-unknown-peer"))
                        continue
                    }
                    guard let frame = ipamFrame(bytes, to: to) else {
                        w.effects.append(.dropped("ipam-bad-key"))
                        continue
                    }
                    if frame.count <= membership.settings.maxPayloadBytes, IPAM.Message.Kind.of(encoded: bytes)?.isResentUntilAnswered == true {
                        w.effects.append(.sendIPAMDatagram(frame, to: to, endpoint: m.address))
                    } else {
                        w.effects.append(.sendIPAM(frame, to: to, endpoint: m.address))
                    }
                case .allocated(let handle, let address):
                    if handle == IPAM.Instance.overlayHandle { overlayClaimFailures = 0; overlayClaimNotBefore = nil }
                    if let name = pendingNames.removeValue(forKey: handle) { nameRecord(handle: handle, name: name, address: address, &w) }
                    w.effects.append(.allocated(handle: handle, address: address))
                case .allocationFailed(let handle, let error):
                    if handle == IPAM.Instance.overlayHandle { overlayClaimFailed(now: now) }
                    pendingNames[handle] = nil
                    w.effects.append(.allocationFailed(handle: handle, error: error))
                case .conflict(let c):
                    w.effects.append(.log(Log(.error, "allocation lost to a takeover", event: "ipam-conflict", [
                        "handle": c.handle, "address": IPAM.format(c.address), "owner": c.owner.short,
                    ])))
                case .rejected(let from, let reason):
                    w.effects.append(.dropped("ipam-rejected"))
                    if case .ring(let e) = reason, case .differentCluster = e {
                        // Reported once per member: every gossip round would repeat it.
                        let key = "cluster:\(from.short)"
                        if ipamWarnings[key] != nil { continue }
                        ipamWarnings[key] =
                            "member \(from.short) belongs to another address ring created separately with the same cluster key (\(e)); its addresses were not merged: give it its own key or move its data dir aside and rejoin with --seed"
                    }
                    w.effects.append(.log(Log(.warning, "IPAM input refused", event: "ipam-rejected", ["from": from.short, "reason": reason.description])))
                case .log(let e):
                    if e.event == "ipam.cluster.mismatch", let f = e.fields["from"] {
                        if loggedMismatches.contains(f) { continue }
                        loggedMismatches.insert(f)
                    }
                    let level: Log.Level = switch e.level {
                    case .debug: .debug
                    case .info: .info
                    case .warning: .warning
                    case .error: .error
                    }
                    w.effects.append(.log(Log(level, "ipam \(e.event)", event: e.event, e.fields)))
                }
            }
        }

        /// A member appeared, moved or changed state: keep the tunnel peers in step. A higher
        /// incarnation usually means the peer restarted and lost its sessions: start over, so
        /// the next packet triggers a fresh handshake instead of going into a forgotten session.
        mutating func syncTunnelPeer(_ m: Membership.Member, _ w: inout Work) {
            switch m.state {
            case .alive, .suspect:
                let restarted = tunnelIncarnations[m.id].map { m.incarnation > $0 } ?? false
                tunnelIncarnations[m.id] = m.incarnation
                w.effects.append(.tunnelPeer(.upsert(id: m.id, publicKey: m.publicKey, endpoint: m.address, restarted: restarted)))
            case .dead, .left:
                tunnelIncarnations[m.id] = nil
                w.effects.append(.tunnelPeer(.remove(id: m.id)))
            }
        }

        /// Whether a persisted change can change the route table. Another node's register
        /// matters only when it holds an address outside its owner's ranges (a reserved /32,
        /// rule 10) or held one at the last computation: at n = 100 every voter stored a register
        /// per allocation, and recomputing every reserved route for each was the cluster's
        /// hottest function (docs/benchmarks.md, stop 20).
        func affectsRoutes(_ c: IPAM.PersistChange) -> Bool {
            switch c {
            case .cluster, .ringEntries, .conflicted, .release: return true
            case .holdings(let owner, let h):
                if reservedRouteOwners.contains(owner) { return true }
                guard let ring = ipam.ring else { return false }
                return h.addresses.contains { ring.owner(of: $0) != owner }
            case .allocation, .unconfirmedAllocation, .ownHoldingsVersion: return false  // inside own ranges
            }
        }

        /// The data plane's routes: every range owned by another node, adjacent ranges of one
        /// owner merged; and every address another node's containers still hold inside a range
        /// that is not theirs (a returning node's conflicts, reserved after a takeover) routes
        /// to its holder as a /32, so those containers stay reachable (docs/ipam.md, rule 10).
        mutating func updateRoutes(_ w: inout Work) {
            guard let (table, owners) = computeRoutes() else { return }
            reservedRouteOwners = owners
            guard table != routes else { return }
            routes = table
            w.effects.append(.routes(table))
        }

        /// The route table from scratch (ranges of other owners, adjacent ones merged, with the
        /// reserved /32s cut in), and the owners of those /32s. Nil without a ring. The oracle
        /// of the whole-node simulator compares it with the announced `routes`, so a change that
        /// `affectsRoutes` wrongly skipped shows up as a failing seed.
        public func computeRoutes() -> (table: [Route], reservedOwners: Set<NodeID>)? {
            guard let ring = ipam.ring else { return nil }
            let reserved = ipam.reservedRoutes()
            let sortedReserved = reserved.keys.sorted()
            var table: [Route] = []
            func add(_ start: UInt32, _ end: UInt32, _ peer: NodeID) {
                guard peer != me, start <= end else { return }
                if let last = table.last, last.peer == peer, UInt64(last.end) + 1 == UInt64(start) {
                    table[table.count - 1].end = end
                } else {
                    table.append(Route(start: start, end: end, peer: peer))
                }
            }
            var k = 0
            for (i, e) in ring.entries.enumerated() {
                let endX = ring.end(ofEntryAt: i)  // exclusive, UInt64: no overflow at the top
                var from = UInt64(e.token)
                while k < sortedReserved.count, UInt64(sortedReserved[k]) < from { k += 1 }
                while k < sortedReserved.count, UInt64(sortedReserved[k]) < endX {
                    let a = sortedReserved[k]
                    if UInt64(a) > from { add(UInt32(from), a - 1, e.owner) }
                    add(a, a, reserved[a]!)
                    from = UInt64(a) + 1
                    k += 1
                }
                if from < endX { add(UInt32(from), UInt32(endX - 1), e.owner) }
            }
            return (table, Set(reserved.values))
        }
    }
}
