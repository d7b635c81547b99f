extension IPAM {
    /// One node's allocator: its view of the ring, its own allocations, and the requests it has
    /// in flight. A pure value: every input takes `now`, every effect is a returned ``Directive``.
    ///
    /// ```
    ///   (no ring) --createCluster--> owns whole subnet ----+
    ///       |                                              |  allocate / release (local)
    ///       +--onRingDelta(ringFull)--> member, owns 0 --donationRequest--> peer
    ///                                        ^        <--donationGrant---  (half its largest free run)
    ///   leave: every owned range handed to live peers; reclaim: heir takes a dead member's ranges
    /// ```
    public struct Instance: Sendable {
        /// The handle under which a node keeps its own overlay address.
        public static let overlayHandle = "weft:overlay"
        /// A takeover (reclaim) raises versions by this much, so it dominates any updates the
        /// presumed-dead owner made in isolation (it would need 2^32 of them to win back).
        public static let takeoverStride: UInt64 = 1 << 32

        public let me: NodeID
        public let settings: Settings
        public private(set) var ring: Ring?
        /// Active allocations: handle -> address. Every address here is owned by `me` in `ring`.
        public private(set) var allocations: [String: UInt32] = [:]
        /// Allocations that lost their range to another owner: handle -> address.
        public private(set) var conflicts: [String: UInt32] = [:]
        /// Handles waiting for space, oldest first, with when they started waiting.
        public private(set) var pending: [(handle: String, since: Instant)] = []
        /// True after `leave`: the node allocates nothing more.
        public private(set) var hasLeft = false

        /// Allocations waiting for a quorum of voters (quorum mode, docs/ipam.md rule 2):
        /// handle -> the own holdings version that first carried it, when it started, who acked.
        public private(set) var unconfirmed: [String: Confirmation] = [:]
        /// The latest holdings register heard of every other node (never this node's own).
        public private(set) var holdings: [NodeID: Holdings] = [:]
        /// Version of this node's own register; its addresses are `allocations` ∪ `conflicts`.
        public private(set) var ownHoldingsVersion: UInt64 = 0

        /// An allocation in flight to the voters.
        public struct Confirmation: Equatable, Sendable {
            /// The own-holdings version of the first write that carried it.
            public var version: UInt64
            /// When confirmation started (nil right after a restart: set on the next tick).
            public var since: Instant?
            /// Voters (other than this node) that acknowledged a write of version >= `version`.
            public var acks: Set<NodeID>
        }

        /// A reclaim between its two phases (rule 6).
        struct Takeover: Sendable {
            var entries: [Entry]
            var startedAt: Instant
            /// When the takeover last went to the voters (resent every `resendInterval`).
            var sentAt: Instant
            var acks: [NodeID: Holdings]
            var force: Bool
            var reason: String
        }

        /// Every address this node holds (allocations, unconfirmed included, and conflicts).
        var holder: [UInt32: String] = [:]
        /// `holder.keys` sorted, cached by `ownRegister()`, dropped by `bumpOwnHoldings` (every
        /// change of `holder` bumps).
        var ownSorted: [UInt32]? = nil
        /// How many other nodes' stored registers hold each address.
        var othersHeld: [UInt32: Int] = [:]
        /// Addresses a voter refused for a reason the ring does not show (another node holds
        /// them); skipped until the instant stored.
        var blocked: [UInt32: Instant] = [:]
        var takeovers: [NodeID: Takeover] = [:]
        var lastTakeoverAbort: [NodeID: Instant] = [:]
        var ownHoldingsDirty = false
        var dirtyRegisters: Set<NodeID> = []
        var writeNeeded = false
        /// When the last holdings write went out (resent after `resendDelay`).
        var writeSentAt: Instant? = nil
        /// Resends of the current write so far: each waits twice as long as the one before.
        var writeResends = 0
        var live: Set<NodeID> = []
        var deadSince: [NodeID: Instant] = [:]
        var left: Set<NodeID> = []
        var voterSet: Set<NodeID>
        var reachableSet: Set<NodeID>
        var request: (to: NodeID, sentAt: Instant)? = nil
        var refused: Set<NodeID> = []
        var cursor: UInt32 = 0
        /// Tokens of own entries whose free hint changed since the last tick. Allocations and
        /// releases only update the hint; one coalesced delta goes out per tick, so a burst of
        /// container starts costs one gossip message, not one per container. Ownership changes
        /// (donation, leave, reclaim) are broadcast at once.
        var dirty: Set<UInt32> = []
        var rng: DeterministicRNG

        /// A node with no state yet (first start, before it creates or joins a cluster).
        public init(me: NodeID, settings: Settings = .default, seed: UInt64) {
            self.me = me
            self.settings = settings
            self.rng = DeterministicRNG(seed: seed)
            self.voterSet = [me]
            self.reachableSet = [me]
        }

        /// What survives a restart. The daemon rebuilds it from SQLite.
        public struct Snapshot: Equatable, Sendable {
            public var ring: Ring?
            /// Every allocation, confirmed or not (`unconfirmed` names the latter).
            public var allocations: [String: UInt32]
            public var conflicts: [String: UInt32]
            /// Handles of `allocations` still waiting for confirmation (state 2 in SQLite).
            public var unconfirmed: Set<String>
            /// Other nodes' registers.
            public var holdings: [NodeID: Holdings]
            /// The version of this node's own register.
            public var ownHoldingsVersion: UInt64
            public init(ring: Ring?, allocations: [String: UInt32], conflicts: [String: UInt32],
                        unconfirmed: Set<String> = [], holdings: [NodeID: Holdings] = [:], ownHoldingsVersion: UInt64 = 0) {
                self.ring = ring; self.allocations = allocations; self.conflicts = conflicts
                self.unconfirmed = unconfirmed; self.holdings = holdings; self.ownHoldingsVersion = ownHoldingsVersion
            }
        }

        public var snapshot: Snapshot {
            Snapshot(ring: ring, allocations: allocations, conflicts: conflicts, unconfirmed: Set(unconfirmed.keys),
                     holdings: holdings, ownHoldingsVersion: ownHoldingsVersion)
        }

        /// A node restarting with its persisted state. Allocations the restored ring says are no
        /// longer ours are moved to conflicts on the first ring update. Conflicts stay reserved
        /// (never handed out again), other nodes' registers stay reserved, and unconfirmed
        /// allocations resume confirming on the next tick (or time out).
        public init(me: NodeID, settings: Settings = .default, seed: UInt64, restoring s: Snapshot) {
            self.init(me: me, settings: settings, seed: seed)
            ring = s.ring
            allocations = s.allocations
            conflicts = s.conflicts
            ownHoldingsVersion = s.ownHoldingsVersion
            for (h, a) in allocations { holder[a] = h }
            for (h, a) in conflicts { holder[a] = h }
            for h in s.unconfirmed where allocations[h] != nil {
                unconfirmed[h] = Confirmation(version: s.ownHoldingsVersion, since: nil, acks: [])
            }
            for (n, h) in s.holdings where n != me { setRegister(n, h) }
        }

        // MARK: Queries

        /// Who owns `address` in this node's view (data plane lookup). O(log ranges).
        public func owner(of address: UInt32) -> NodeID? { ring?.owner(of: address) }

        /// Free addresses in ranges this node owns.
        public var ownFree: UInt64 {
            guard let ring else { return 0 }
            var total: UInt64 = 0
            for e in ring.entries where e.owner == me { total += UInt64(e.free) }
            return total
        }

        /// This node's overlay address, once taken and confirmed (nil while it waits for the voters).
        public var overlayAddress: UInt32? {
            unconfirmed[Instance.overlayHandle] == nil ? allocations[Instance.overlayHandle] : nil
        }

        /// The full state (ring and every register known, this node's own included), encoded,
        /// for push-pull exchanges and answering joiners.
        public func fullStateMessage() -> [UInt8]? { fullState().map { $0.encoded() } }

        /// The full state as a message (the simulator delivers it without encoding).
        public func fullState() -> Message? {
            guard let ring else { return nil }
            return .fullState(ring: ring, registers: allRegisters())
        }

        /// This node's own register: its allocations (confirmed or not) and conflicts.
        public var ownHoldings: Holdings {
            Holdings(version: ownHoldingsVersion, addresses: ownSorted ?? holder.keys.sorted(), open: !quorumMode && !hasLeft)
        }

        /// `ownHoldings`, sorting the own addresses at most once per change.
        mutating func ownRegister() -> Holdings {
            if ownSorted == nil { ownSorted = holder.keys.sorted() }
            return ownHoldings
        }

        /// Every register known, own included, sorted by owner.
        public func allRegisters() -> [OwnedHoldings] {
            var regs = holdings.map { OwnedHoldings(owner: $0.key, holdings: $0.value) }
            regs.append(OwnedHoldings(owner: me, holdings: ownHoldings))
            return regs.sorted { $0.owner < $1.owner }
        }

        /// Allocations acknowledged to their callers (not waiting for confirmation).
        public var confirmedAllocations: [String: UInt32] { allocations.filter { unconfirmed[$0.key] == nil } }

        /// Voters in this node's view: every member it knows that has not left (alive, suspect
        /// or dead), itself included.
        public var voters: Set<NodeID> { voterSet }
        /// Reachable voters: alive or suspect, itself included.
        public var reachableVoters: Set<NodeID> { reachableSet }
        /// The majority of `voters`.
        public var quorum: Int { voters.count / 2 + 1 }
        /// Quorum mode: automatic reclaim is on (`reclaimAfter != nil`) and there are at least
        /// three voters. Then new allocations need confirmation and reclaims are fenced.
        public var quorumMode: Bool { settings.reclaimAfter != nil && voters.count >= 3 }
        var confirming: Bool { quorumMode && !settings.unsafeSkipConfirmation }

        /// Routes for reserved addresses (rule 10): every address in node n's register that lies
        /// in a range owned by someone else routes to n (a /32), so containers of a node that
        /// lost its range stay reachable. This node's own conflicts map to `me`.
        public func reservedRoutes() -> [UInt32: NodeID] {
            guard let ring else { return [:] }
            var out: [UInt32: NodeID] = [:]
            for reg in allRegisters() {
                for a in reg.holdings.addresses {
                    if let o = ring.owner(of: a), o != reg.owner { out[a] = reg.owner }
                }
            }
            return out
        }

        /// A register retired by `reclaim(force: true)`: empty, at a version of at least the
        /// takeover stride (an owner's own versions grow by one per change and never get there).
        func isRetired(_ node: NodeID) -> Bool {
            guard let h = holdings[node] else { return false }
            return h.addresses.isEmpty && h.version >= Instance.takeoverStride && !live.contains(node)
        }

        /// True when `address` may not be handed out or donated here: this node holds it (an
        /// allocation or a conflict), another node's register holds it, or a voter refused it.
        func isReserved(_ address: UInt32) -> Bool {
            if let h = holder[address] {
                if !settings.debugHandOutConflicts || conflicts[h] == nil { return true }
            }
            return othersHeld[address] != nil || blocked[address] != nil
        }

        /// Every reserved address, sorted (for counting per range).
        func reservedSorted() -> [UInt32] {
            var all = settings.debugHandOutConflicts ? Set(allocations.values) : Set(holder.keys)
            all.formUnion(othersHeld.keys)
            all.formUnion(blocked.keys)
            return all.sorted()
        }

        /// The heir of a dead member: among the live members (and this node), the one with the
        /// highest rendezvous hash of (dead, candidate). Every node with the same view of who is
        /// alive picks the same heir, and the load of several deaths spreads over the cluster.
        public func heir(of dead: NodeID) -> NodeID? {
            var best: (NodeID, UInt64)? = nil
            for c in live.union([me]) where c != dead {
                let h = Instance.rendezvous(dead, c)
                if best == nil || h > best!.1 || (h == best!.1 && c < best!.0) { best = (c, h) }
            }
            return best?.0
        }

        static func rendezvous(_ a: NodeID, _ b: NodeID) -> UInt64 {
            func mix(_ x: UInt64) -> UInt64 {
                var z = x &+ 0x9E37_79B9_7F4A_7C15
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
            return mix(mix(mix(mix(a.high) ^ a.low) ^ b.high) ^ b.low)
        }

        // MARK: Cluster lifecycle

        /// Creates a new cluster in which this node owns the whole subnet, and takes its overlay
        /// address at once (no quorum wait). Does nothing if this node already has a ring.
        public mutating func createCluster(subnet: Subnet, now: Instant) -> [Directive] {
            guard ring == nil else { return [.log(LogEvent(.warning, "ipam.create.ignored", ["reason": "already in a cluster"]))] }
            let cluster = ClusterID(creator: me, nonce: rng.next())
            let r = Ring(cluster: cluster, subnet: subnet)
            ring = r
            var out: [Directive] = [.persist(.cluster(cluster, subnet)), .persist(.ringEntries(r.entries)),
                                    .log(LogEvent(.info, "ipam.cluster.created", ["ring": "\(cluster)", "subnet": "\(subnet)"]))]
            if let (_, d) = try? claimOverlayAddress(now: now) { out += d }
            return out
        }

        // MARK: Allocation

        /// Handles with this prefix belong to the node itself (its overlay address); callers
        /// such as the CNI plugin cannot allocate or release them.
        public static let reservedHandlePrefix = "weft:"

        /// Checks a handle: 1...256 bytes of UTF-8 without control characters, and not in the
        /// reserved `weft:` namespace unless `allowReserved`.
        public static func validate(handle: String, allowReserved: Bool = false) throws(AllocationError) {
            if !allowReserved && handle.hasPrefix(reservedHandlePrefix) {
                throw .invalidHandle("the prefix '\(reservedHandlePrefix)' is reserved for the node itself")
            }
            let n = handle.utf8.count
            guard n >= 1 else { throw .invalidHandle("empty; use 1 to 256 bytes of printable text") }
            guard n <= 256 else { throw .invalidHandle("\(n) bytes long; at most 256 bytes") }
            for s in handle.unicodeScalars where s.value < 0x20 || (s.value >= 0x7F && s.value <= 0x9F) {
                throw .invalidHandle("contains control character U+\(String(s.value, radix: 16, uppercase: true)); use printable text")
            }
        }

        /// Allocates an address for `handle` from this node's own ranges, locally. The same
        /// handle gets the same address until released. If this node has no free address but
        /// the cluster has, the handle waits (`.pending`) while a donation is requested.
        public mutating func allocate(handle: String, now: Instant) throws(AllocationError) -> (outcome: AllocationOutcome, directives: [Directive]) {
            try Instance.validate(handle: handle)
            return try allocateValidated(handle: handle, now: now)
        }

        mutating func allocateValidated(handle: String, now: Instant) throws(AllocationError) -> (outcome: AllocationOutcome, directives: [Directive]) {
            if let a = allocations[handle] { return (unconfirmed[handle] == nil ? .allocated(a) : .pending, []) }
            guard conflicts[handle] == nil else { throw .handleInConflict(handle) }
            guard !hasLeft else { throw .notInCluster }
            if pending.contains(where: { $0.handle == handle }) { return (.pending, []) }
            guard let ring else {
                pending.append((handle, now))
                return (.pending, [.log(LogEvent(.info, "ipam.allocate.waiting", ["handle": handle, "reason": "no ring yet"]))])
            }
            if confirming {
                let r = reachableVoters.count, n = voters.count
                if r < quorum { throw .partitioned(reachable: r, voters: n) }
            }
            var out: [Directive] = []
            if let a = takeAddress(handle: handle, now: now, into: &out) {
                out += requestSpaceIfLow(now: now)
                if unconfirmed[handle] != nil {
                    out += sendHoldingsWrites(now: now)
                    return (.pending, out)
                }
                return (.allocated(a), out)
            }
            // Nothing here: is there space anywhere in the cluster?
            let others = ring.entries.contains { $0.owner != me && $0.free > 0 }
            guard others else { throw .outOfSpace }
            pending.append((handle, now))
            out += requestSpace(now: now)
            return (.pending, out)
        }

        /// Takes this node's overlay address under the reserved handle. If the old one was lost
        /// to another owner (a conflict already reported), the conflict is dropped and a fresh
        /// address is taken, so a returning node can get back onto the overlay.
        public mutating func claimOverlayAddress(now: Instant) throws(AllocationError) -> (outcome: AllocationOutcome, directives: [Directive]) {
            // All or nothing: when no new address can be had (partitioned, no space), the old
            // conflict stays as it was — memory must not run ahead of what the directives persist.
            let saved = self
            var out: [Directive] = []
            if let old = conflicts.removeValue(forKey: Instance.overlayHandle) {
                holder[old] = nil
                out.append(.persist(.release(handle: Instance.overlayHandle)))
                bumpOwnHoldings(into: &out)
            }
            do {
                let r = try allocateValidated(handle: Instance.overlayHandle, now: now)
                return (r.outcome, out + r.directives)
            } catch {
                self = saved
                throw error
            }
        }

        /// Releases `handle`'s address (or forgets its conflict, which frees the address for the
        /// range's owner once the new register reaches it). Unknown handle: error, nothing changes.
        public mutating func release(handle: String, now: Instant) throws(AllocationError) -> [Directive] {
            try Instance.validate(handle: handle)
            if let a = conflicts.removeValue(forKey: handle) {
                holder[a] = nil
                var out: [Directive] = [.persist(.release(handle: handle))]
                bumpOwnHoldings(into: &out)
                return out
            }
            if let i = pending.firstIndex(where: { $0.handle == handle }) {
                pending.remove(at: i)
                return [.allocationFailed(handle: handle, error: .unknownHandle(handle))]
            }
            guard allocations[handle] != nil else { throw .unknownHandle(handle) }
            var out: [Directive] = []
            let wasUnconfirmed = unconfirmed[handle] != nil
            dropAllocation(handle, into: &out)
            if wasUnconfirmed { out.append(.allocationFailed(handle: handle, error: .unknownHandle(handle))) }
            return out
        }

        /// Removes an allocation (confirmed or not): persists the release, frees the address in
        /// its range's free hint, and bumps the own register.
        mutating func dropAllocation(_ handle: String, into out: inout [Directive]) {
            guard let a = allocations.removeValue(forKey: handle) else { return }
            unconfirmed[handle] = nil
            holder[a] = nil
            out.append(.persist(.release(handle: handle)))
            if let ring, let i = ring.index(containing: a), ring.entries[i].owner == me {
                var e = ring.entries[i]
                e.free += 1; e.version += 1
                self.ring!.replace(e)
                out.append(.persist(.ringEntries([e])))
                dirty.insert(e.token)
            }
            bumpOwnHoldings(into: &out)
        }

        /// The own register changed: a new version, persisted, gossiped on the next tick.
        mutating func bumpOwnHoldings(into out: inout [Directive]) {
            ownSorted = nil
            ownHoldingsVersion += 1
            ownHoldingsDirty = true
            out.append(.persist(.ownHoldingsVersion(ownHoldingsVersion)))
        }

        /// Finds a free, unreserved address in own ranges (skipping ranges of a takeover still in
        /// its first phase); records it (unconfirmed in quorum mode); appends persist directives
        /// and marks the entry's free hint for the next tick's gossip.
        mutating func takeAddress(handle: String, now: Instant, into out: inout [Directive]) -> UInt32? {
            guard var ring else { return nil }
            let mine = ring.entries.indices.filter { ring.entries[$0].owner == me && ring.entries[$0].free > 0 }
            if mine.isEmpty { return nil }
            // Start at the range holding the cursor (or the first with space) and scan forward.
            let startK = mine.firstIndex { UInt64(cursor) < ring.end(ofEntryAt: $0) } ?? 0
            for step in 0..<mine.count {
                let i = mine[(startK + step) % mine.count]
                let lo = UInt64(ring.entries[i].token), hi = ring.end(ofEntryAt: i)
                let from = (step == 0 && UInt64(cursor) > lo && UInt64(cursor) < hi) ? UInt64(cursor) : lo
                func scan(_ x: UInt64, _ y: UInt64) -> UInt32? {
                    var a = x
                    while a < y {
                        let c = UInt32(a)
                        if !ring.subnet.isReserved(c) && !isReserved(c) { return c }
                        a += 1
                    }
                    return nil
                }
                if let a = scan(from, hi) ?? scan(lo, from) {
                    allocations[handle] = a
                    holder[a] = handle
                    cursor = a &+ 1
                    var e = ring.entries[i]
                    e.free = e.free > 0 ? e.free - 1 : 0
                    e.version += 1
                    ring.replace(e)
                    self.ring = ring
                    bumpOwnHoldings(into: &out)
                    if confirming {
                        unconfirmed[handle] = Confirmation(version: ownHoldingsVersion, since: now, acks: [])
                        writeNeeded = true
                        out += [.persist(.unconfirmedAllocation(handle: handle, address: a)), .persist(.ringEntries([e]))]
                    } else {
                        out += [.persist(.allocation(handle: handle, address: a)), .persist(.ringEntries([e]))]
                    }
                    dirty.insert(e.token)
                    return a
                }
                // The free hint was stale: fix it so the next call skips this range.
                var e = ring.entries[i]
                if e.free != 0 {
                    e.free = 0; e.version += 1; ring.replace(e); self.ring = ring
                    out += [.persist(.ringEntries([e]))]
                }
            }
            return nil
        }

        // MARK: Confirmation (owner side)

        /// Sends the own register to the reachable voters that have not acknowledged all
        /// unconfirmed allocations yet. The write names the unconfirmed addresses and carries the
        /// own ring entries covering them (a voter with a stale ring learns of a donation).
        ///
        /// A first write (`widen` false) goes to only as many of those voters as the missing
        /// acks need plus a margin (`need + 2 + need / 8`), picked by a hash of this node, the
        /// voter and the register version, so the load spreads; a resend (`widen`) goes to every
        /// voter still missing. At n = 100 that is 58 writes and acks instead of 98 per
        /// allocation. Safety does not depend on who is asked: a confirmation still needs `Q − 1`
        /// distinct acks (docs/ipam.md "Transport").
        mutating func sendHoldingsWrites(now: Instant, widen: Bool = false) -> [Directive] {
            writeNeeded = false
            writeResends = widen ? writeResends + 1 : 0
            guard let ring, !unconfirmed.isEmpty else { return [] }
            var waitingOn: Set<NodeID> = []
            let targets = reachableVoters.subtracting([me])
            var need = 0
            for c in unconfirmed.values {
                let missing = targets.subtracting(c.acks)
                waitingOn.formUnion(missing)
                need = max(need, quorum - 1 - c.acks.count)
            }
            if waitingOn.isEmpty { return [] }
            var chosen = waitingOn.sorted()
            let margin = need + 2 + need / 8
            if !widen && chosen.count > margin {
                let salt = NodeID(high: ownHoldingsVersion, low: me.low)
                chosen = Array(chosen.sorted { Instance.rendezvous(salt, $0) < Instance.rendezvous(salt, $1) }.prefix(margin)).sorted()
            }
            let pendingAddresses = unconfirmed.keys.compactMap { allocations[$0] }.sorted()
            var tokens: Set<UInt32> = []
            var entries: [Entry] = []
            for a in pendingAddresses {
                if let i = ring.index(containing: a), tokens.insert(ring.entries[i].token).inserted { entries.append(ring.entries[i]) }
            }
            entries.sort { $0.token < $1.token }
            let bytes = Message.holdingsWrite(cluster: ring.cluster, subnet: ring.subnet, owner: me, holdings: ownRegister(),
                                              pending: pendingAddresses, entries: entries).encoded()
            writeSentAt = now
            return chosen.map { .send(bytes, to: $0) }
        }

        /// How long after the last holdings write a resend goes out: `resendInterval`, doubled
        /// after each resend of the same write (1 s, 2 s, 4 s by default). A voter that has not
        /// answered is more often slow than gone; resending to every missing voter each second
        /// multiplied the load on a busy cluster until nobody answered in time (docs/benchmarks.md,
        /// stop 24). `confirmTimeout` still bounds the wait.
        var resendDelay: Duration { settings.resendInterval * (1 << min(writeResends, 3)) }

        /// Acknowledges every unconfirmed allocation that now has `Q-1` acks.
        mutating func confirmReady() -> [Directive] {
            var out: [Directive] = []
            let need = quorum - 1
            for (h, c) in unconfirmed.sorted(by: { $0.key < $1.key }) where !confirming || c.acks.count >= need {
                guard let a = allocations[h] else { unconfirmed[h] = nil; continue }
                unconfirmed[h] = nil
                out += [.persist(.allocation(handle: h, address: a)), .allocated(handle: h, address: a)]
            }
            return out
        }

        /// An unconfirmed allocation lost its range or was refused: drop it, and serve the handle
        /// again from the remaining space (it waits as pending).
        mutating func requeue(_ handle: String, now: Instant, reason: String, into out: inout [Directive]) {
            guard let a = allocations[handle] else { return }
            dropAllocation(handle, into: &out)
            pending.append((handle, now))
            out.append(.log(LogEvent(.warning, "ipam.allocation.unconfirmed-dropped", ["handle": handle, "address": IPAM.format(a), "reason": reason])))
        }

        // MARK: Registers

        /// Stores another node's register (no version check), keeping `othersHeld` in step.
        /// Returns true when an added or removed address lies in a range this node owns (its
        /// free hints must then be recomputed). Walks the two sorted lists once.
        @discardableResult
        mutating func setRegister(_ owner: NodeID, _ h: Holdings) -> Bool {
            let old = holdings[owner]?.addresses ?? []
            holdings[owner] = h
            var touchesMine = false
            func mine(_ a: UInt32) -> Bool { ring?.owner(of: a) == me }
            var i = 0, j = 0
            let new = h.addresses
            while i < old.count || j < new.count {
                if j == new.count || (i < old.count && old[i] < new[j]) {
                    let a = old[i]; i += 1
                    if let n = othersHeld[a], n > 1 { othersHeld[a] = n - 1 } else { othersHeld[a] = nil }
                    if !touchesMine && mine(a) { touchesMine = true }
                } else if i == old.count || new[j] < old[i] {
                    let a = new[j]; j += 1
                    othersHeld[a, default: 0] += 1
                    if !touchesMine && mine(a) { touchesMine = true }
                } else {
                    i += 1; j += 1
                }
            }
            return touchesMine
        }

        /// Merges remote registers: higher version wins; a register of this node newer than its
        /// own (a forced reclaim) makes it jump its own version above. Returns persist directives.
        mutating func mergeRegisters(_ regs: [OwnedHoldings], now: Instant) -> [Directive] {
            var out: [Directive] = []
            var changed = false
            for reg in regs {
                if reg.owner == me {
                    if reg.holdings.version >= ownHoldingsVersion && reg.holdings != ownRegister() {
                        ownHoldingsVersion = reg.holdings.version
                        bumpOwnHoldings(into: &out)
                        writeNeeded = !unconfirmed.isEmpty
                        out.append(.log(LogEvent(.warning, "ipam.holdings.refuted", ["version": "\(reg.holdings.version)"])))
                    }
                    continue
                }
                if let old = holdings[reg.owner], !reg.holdings.beats(old) { continue }
                if setRegister(reg.owner, reg.holdings) { changed = true }
                out.append(.persist(.holdings(owner: reg.owner, reg.holdings)))
            }
            if changed { out += reconcile(now: now) }
            return out
        }

        // MARK: Donation (requester side)

        mutating func requestSpaceIfLow(now: Instant) -> [Directive] {
            guard ownFree < UInt64(settings.lowWaterMark) else { return [] }
            return requestSpace(now: now)
        }

        /// Sends a donation request to the live member with the most free space, unless one is
        /// already in flight.
        mutating func requestSpace(now: Instant) -> [Directive] {
            guard let ring, !hasLeft else { return [] }
            if let r = request, now - r.sentAt < settings.requestTimeout, live.contains(r.to) { return [] }
            let free = ring.freeByOwner()
            let candidates = free.filter { $0.key != me && $0.value > 0 && live.contains($0.key) && !refused.contains($0.key) }
            guard let best = candidates.max(by: { ($0.value, $1.key) < ($1.value, $0.key) }) else {
                request = nil
                return []
            }
            request = (best.key, now)
            let wanted = max(settings.lowWaterMark, 1)
            return [.send(Message.donationRequest(cluster: ring.cluster, wanted: wanted).encoded(), to: best.key),
                    .log(LogEvent(.debug, "ipam.donation.requested", ["to": best.key.short, "their_free": "\(best.value)"]))]
        }

        /// Serves waiting handles from own space; fails them if the cluster is out of space.
        mutating func servePending(now: Instant) -> [Directive] {
            var out: [Directive] = []
            guard let ring, !pending.isEmpty else { return out }
            if confirming && reachableVoters.count < quorum { return out }  // wait (or time out) until a quorum is back
            while let p = pending.first {
                guard let a = takeAddress(handle: p.handle, now: now, into: &out) else { break }
                pending.removeFirst()
                if unconfirmed[p.handle] == nil { out.append(.allocated(handle: p.handle, address: a)) }
            }
            if writeNeeded { out += sendHoldingsWrites(now: now) }
            if !pending.isEmpty {
                let anySpace = ring.entries.contains { $0.owner != me && $0.free > 0 }
                if !anySpace && ownFree == 0 {
                    for p in pending { out.append(.allocationFailed(handle: p.handle, error: .outOfSpace)) }
                    pending.removeAll()
                } else {
                    out += requestSpace(now: now)
                }
            } else {
                out += requestSpaceIfLow(now: now)
            }
            return out
        }

        // MARK: Donation (donor side)

        /// The largest run of addresses inside one own range that holds no allocation, no
        /// conflict, no address of another node's register and no network/broadcast address:
        /// (entry index, start, end exclusive). Reserved addresses are never donated (rule 1).
        func largestFreeRun() -> (index: Int, start: UInt64, end: UInt64)? {
            guard let ring else { return nil }
            var best: (Int, UInt64, UInt64)? = nil
            var byEntry: [Int: [UInt32]] = [:]
            for a in reservedSorted() { if let i = ring.index(containing: a) { byEntry[i, default: []].append(a) } }
            for i in ring.entries.indices where ring.entries[i].owner == me {
                let lo = UInt64(ring.entries[i].token), hi = ring.end(ofEntryAt: i)
                var blocked = byEntry[i] ?? []
                if ring.subnet.isReserved(UInt32(lo)) { blocked.append(UInt32(lo)) }
                if hi == ring.subnet.end { blocked.append(ring.subnet.last) }
                blocked.sort()
                var start = lo
                for stopAt in blocked.map({ UInt64($0) }) + [hi] {
                    let stop = min(stopAt, hi)
                    if stop > start && (best == nil || stop - start > best!.2 - best!.1) { best = (i, start, stop) }
                    start = max(start, stop + 1)
                }
            }
            return best.map { (index: $0.0, start: $0.1, end: $0.2) }
        }

        /// Number of addresses in [lo, hi) that may be handed out, minus the reserved ones.
        func usable(_ lo: UInt64, _ hi: UInt64) -> UInt32 {
            let n = usableIgnoringHolds(lo, hi)
            guard n > 0 else { return 0 }
            var held: UInt32 = 0
            for a in reservedSorted() where UInt64(a) >= lo && UInt64(a) < hi && !(ring?.subnet.isReserved(a) ?? false) { held += 1 }
            return n - min(n, held)
        }

        /// Splits the upper half (at least one address) of the largest free run off to `to`.
        mutating func donate(to: NodeID) -> [Entry]? {
            guard let run = largestFreeRun(), var ring else { return nil }
            let length = run.end - run.start
            let give = max(1, length / 2)
            let d = run.end - give
            let i = run.index
            let old = ring.entries[i]
            let entryEnd = ring.end(ofEntryAt: i)
            var changed: [Entry] = []
            let v = old.version + 1
            if run.end < entryEnd {
                // The part after the donated run stays ours under a new token.
                let tail = Entry(token: UInt32(run.end), owner: me, version: v, free: 0)
                ring.insert(tail)
                changed.append(tail)
            }
            let granted = Entry(token: UInt32(d), owner: to, version: v, free: 0)
            if d == UInt64(old.token) {
                ring.replace(granted)
            } else {
                ring.insert(granted)
                changed.append(Entry(token: old.token, owner: me, version: v, free: 0))
                ring.replace(changed.last!)
            }
            changed.append(granted)
            self.ring = ring
            // Recompute the free hints of the touched entries now that the boundaries moved.
            var result: [Entry] = []
            for e in changed {
                let k = self.ring!.index(ofToken: e.token)!
                var x = self.ring!.entries[k]
                let hi = self.ring!.end(ofEntryAt: k)
                x.free = e.owner == me ? usable(UInt64(x.token), hi) : usableIgnoringHolds(UInt64(x.token), hi)
                self.ring!.replace(x)
                result.append(x)
            }
            return result.sorted { $0.token < $1.token }
        }

        func usableIgnoringHolds(_ lo: UInt64, _ hi: UInt64) -> UInt32 {
            guard let ring, hi > lo else { return 0 }
            var n = hi - lo
            if UInt64(ring.subnet.base) >= lo && UInt64(ring.subnet.base) < hi { n -= 1 }
            if UInt64(ring.subnet.last) >= lo && UInt64(ring.subnet.last) < hi && n > 0 { n -= 1 }
            return UInt32(n)
        }

        // MARK: Inputs

        /// Ring data piggybacked on gossip or exchanged in push-pull (full state, ring or delta).
        public mutating func onRingDelta(_ bytes: [UInt8], from: NodeID, now: Instant) -> [Directive] {
            onMessage(bytes, from: from, now: now)
        }

        /// A point-to-point IPAM message (or gossip data: both decode the same way).
        public mutating func onMessage(_ bytes: [UInt8], from: NodeID, now: Instant) -> [Directive] {
            let message: Message
            do { message = try Message(decoding: bytes) } catch { return [.rejected(from: from, reason: .wire(error))] }
            return onMessage(message, from: from, now: now)
        }

        func mismatch(_ c: ClusterID, _ s: Subnet?, from: NodeID) -> [Directive]? {
            guard let ring else { return [] }
            if c != ring.cluster {
                let error = RingError.differentCluster(ours: ring.cluster, theirs: c)
                return [.rejected(from: from, reason: .ring(error)), .log(LogEvent(.error, "ipam.cluster.mismatch", ["from": from.short, "reason": error.description]))]
            }
            if let s, s != ring.subnet { return [.rejected(from: from, reason: .ring(.differentSubnet(ours: ring.subnet, theirs: s)))] }
            return nil
        }

        /// The decoded form of ``onMessage(_:from:now:)-(([UInt8],_,_))`` (used by the simulator).
        public mutating func onMessage(_ message: Message, from: NodeID, now: Instant) -> [Directive] {
            switch message {
            case .ringFull(let r):
                guard ring != nil else { return adopt(r, from: from, now: now) }
                return absorb(entries: r.entries, cluster: r.cluster, subnet: r.subnet, from: from, now: now)
            case .fullState(let r, let regs):
                guard ring != nil else {
                    var out = adopt(r, from: from, now: now)
                    if ring != nil { out += mergeRegisters(regs, now: now); out += servePending(now: now) }
                    return out
                }
                if let bad = mismatch(r.cluster, r.subnet, from: from) { return bad }
                var out = absorb(entries: r.entries, cluster: r.cluster, subnet: r.subnet, from: from, now: now)
                out += mergeRegisters(regs, now: now)
                return out
            case .ringDelta(let c, let s, let e):
                guard ring != nil else { return [.send(Message.ringRequest.encoded(), to: from)] }
                return absorb(entries: e, cluster: c, subnet: s, from: from, now: now)
            case .holdings(let c, let s, let regs):
                guard ring != nil else { return [.send(Message.ringRequest.encoded(), to: from)] }
                if let bad = mismatch(c, s, from: from) { return bad }
                return mergeRegisters(regs, now: now)
            case .donationGrant(let c, let s, let e):
                guard ring != nil else { return [.send(Message.ringRequest.encoded(), to: from)] }
                if request?.to == from { request = nil }
                refused.removeAll()
                return absorb(entries: e, cluster: c, subnet: s, from: from, now: now)
            case .ringRequest:
                guard let m = fullStateMessage() else { return [] }
                return [.send(m, to: from)]
            case .donationRequest(let c, _):
                guard let ring else { return [] }
                if let bad = mismatch(c, nil, from: from) { return bad }
                guard from != me, !hasLeft, let granted = donate(to: from) else {
                    return [.send(Message.donationDeny(cluster: ring.cluster).encoded(), to: from)]
                }
                let bytes = Message.donationGrant(cluster: ring.cluster, subnet: ring.subnet, entries: granted).encoded()
                return [.persist(.ringEntries(granted)), .send(bytes, to: from),
                        .broadcast(Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: granted).encoded()),
                        .log(LogEvent(.info, "ipam.donation.granted", ["to": from.short, "entries": "\(granted.count)"]))]
            case .donationDeny(let c):
                guard let ring, c == ring.cluster else { return [] }
                refused.insert(from)
                if request?.to == from { request = nil }
                return servePending(now: now)
            case .holdingsWrite(let c, let s, let owner, let h, let pendingAddresses, let e):
                guard ring != nil, !hasLeft else { return [] }
                if let bad = mismatch(c, s, from: from) { return bad }
                guard owner == from, owner != me else { return [] }
                return onHoldingsWrite(owner: owner, holdings: h, pending: pendingAddresses, entries: e, now: now)
            case .holdingsAck(let c, let owner, let version):
                guard ring != nil else { return [] }
                if let bad = mismatch(c, nil, from: from) { return bad }
                guard owner == me, from != me, voters.contains(from) else { return [] }
                for (h, var conf) in unconfirmed where conf.version <= version {
                    conf.acks.insert(from)
                    unconfirmed[h] = conf
                }
                return confirmReady()
            case .holdingsNack(let c, let s, let owner, let version, let refusedAddresses, let e):
                guard ring != nil else { return [] }
                if let bad = mismatch(c, s, from: from) { return bad }
                guard owner == me else { return [] }
                var out = absorb(entries: e, cluster: c, subnet: s, from: from, now: now, serve: false)
                // Unconfirmed allocations the ring does not explain: another node holds them.
                for a in refusedAddresses {
                    guard let h = holder[a], let conf = unconfirmed[h], conf.version <= version else { continue }
                    blocked[a] = now + settings.pendingTimeout
                    requeue(h, now: now, reason: "refused by \(from.short)", into: &out)
                }
                out += servePending(now: now)
                return out
            case .takeover(let c, let s, let dead, let e):
                guard ring != nil, !hasLeft else { return [] }
                if let bad = mismatch(c, s, from: from) { return bad }
                var out = absorb(entries: e, cluster: c, subnet: s, from: from, now: now)
                guard let ring else { return out }
                // Ack only if the fence holds here: none of those ranges is the dead node's now.
                for x in e { if let i = ring.index(ofToken: x.token), ring.entries[i].owner == dead { return out } }
                let stored = dead == me ? ownHoldings : (holdings[dead] ?? .empty)
                out.append(.send(Message.takeoverAck(cluster: ring.cluster, subnet: ring.subnet, dead: dead, holdings: stored).encoded(), to: from))
                return out
            case .takeoverAck(let c, let s, let dead, let h):
                guard ring != nil else { return [] }
                if let bad = mismatch(c, s, from: from) { return bad }
                guard var t = takeovers[dead], from != me, voters.contains(from) else { return [] }
                if let old = t.acks[from], !h.beats(old) { return [] }
                t.acks[from] = h
                takeovers[dead] = t
                if t.acks.count >= quorum - 1 { return completeTakeover(dead, now: now) }
                return []
            }
        }

        /// Voter side of a holdings write (rule 4): merge the carried entries, then accept iff
        /// every unconfirmed address lies in a range the owner owns here and in no other node's
        /// register (nor this node's own).
        mutating func onHoldingsWrite(owner: NodeID, holdings h: Holdings, pending pendingAddresses: [UInt32], entries e: [Entry], now: Instant) -> [Directive] {
            var out: [Directive] = []
            if !e.isEmpty {
                out += absorb(entries: e, cluster: ring!.cluster, subnet: ring!.subnet, from: owner, now: now)
                if out.contains(where: { if case .rejected = $0 { return true }; return false }) { return out }
            }
            let ring = self.ring!
            let ownerHas = holdings[owner]
            var refusedAddresses: [UInt32] = []
            for a in pendingAddresses {
                let heldByOwner = ownerHas?.contains(a) == true ? 1 : 0
                if ring.owner(of: a) != owner || holder[a] != nil || (othersHeld[a] ?? 0) - heldByOwner > 0 { refusedAddresses.append(a) }
            }
            if !refusedAddresses.isEmpty {
                var tokens: Set<UInt32> = []
                var covering: [Entry] = []
                for a in refusedAddresses {
                    if let i = ring.index(containing: a), tokens.insert(ring.entries[i].token).inserted { covering.append(ring.entries[i]) }
                }
                covering.sort { $0.token < $1.token }
                out.append(.send(Message.holdingsNack(cluster: ring.cluster, subnet: ring.subnet, owner: owner, version: h.version,
                                                      refused: refusedAddresses, entries: covering).encoded(), to: owner))
                return out
            }
            if ownerHas == nil || h.beats(ownerHas!) {
                let touchesMine = setRegister(owner, h)
                out.append(.persist(.holdings(owner: owner, h)))
                if touchesMine { out += reconcile(now: now) }
            }
            let stored = holdings[owner]!
            if pendingAddresses.allSatisfy({ stored.contains($0) }) {
                out.append(.send(Message.holdingsAck(cluster: ring.cluster, owner: owner, version: h.version).encoded(), to: owner))
            } else {
                // A newer register without these addresses is stored (e.g. after a forced
                // reclaim): tell the owner, so it writes again above that version.
                out.append(.send(Message.holdings(cluster: ring.cluster, subnet: ring.subnet,
                                                  registers: [OwnedHoldings(owner: owner, holdings: stored)]).encoded(), to: owner))
            }
            return out
        }

        /// First ring this node hears: join that cluster.
        mutating func adopt(_ r: Ring, from: NodeID, now: Instant) -> [Directive] {
            guard !hasLeft else { return [] }
            ring = r
            var out: [Directive] = [.persist(.cluster(r.cluster, r.subnet)), .persist(.ringEntries(r.entries)),
                                    .log(LogEvent(.info, "ipam.cluster.joined", ["ring": "\(r.cluster)", "from": from.short]))]
            bumpOwnHoldings(into: &out)  // publish a register at once, so heirs know this node's addresses
            out += reconcile(now: now)
            if pending.isEmpty && ownFree == 0 {
                out += requestSpace(now: now)  // get a first range before the first container asks
            } else {
                out += servePending(now: now)
            }
            return out
        }

        /// Merges remote entries and then brings local state in line with the new ring.
        mutating func absorb(entries: [Entry], cluster: ClusterID, subnet: Subnet, from: NodeID, now: Instant, serve: Bool = true) -> [Directive] {
            let delta: [Entry]
            do { delta = try ring!.merge(entries: entries, cluster: cluster, subnet: subnet) } catch {
                var out: [Directive] = [.rejected(from: from, reason: .ring(error))]
                if case .differentCluster = error {
                    out.append(.log(LogEvent(.error, "ipam.cluster.mismatch", ["from": from.short, "reason": error.description])))
                }
                return out
            }
            if delta.isEmpty { return [] }
            var out: [Directive] = [.persist(.ringEntries(delta))]
            // Own free hints change only if an own range changed (owner or boundaries).
            let r = ring!
            let touchesMine = delta.contains { e in
                if e.owner == me { return true }
                guard let i = r.index(ofToken: e.token) else { return true }
                return i > 0 && r.entries[i - 1].owner == me
            }
            out += reconcile(now: now, recount: touchesMine)
            if serve { out += servePending(now: now) }
            return out
        }

        /// After the ring (or a register) changed under us (rule 5): a confirmed allocation in a
        /// range we no longer own becomes a conflict (still held, so still reserved everywhere);
        /// an unconfirmed one is dropped and its handle waits for another address. Free hints of
        /// own entries are recomputed (and gossiped if they moved).
        mutating func reconcile(now: Instant, recount: Bool = true) -> [Directive] {
            guard let ring else { return [] }
            var out: [Directive] = []
            let lost = allocations.filter { ring.owner(of: $0.value) != me }
            for (h, a) in lost.sorted(by: { $0.value < $1.value }) {
                let owner = ring.owner(of: a)
                if owner != me {
                    if unconfirmed[h] != nil {
                        requeue(h, now: now, reason: "range now owned by \((owner ?? me).short)", into: &out)
                        continue
                    }
                    allocations[h] = nil
                    conflicts[h] = a
                    let c = Conflict(handle: h, address: a, owner: owner ?? me)
                    out += [.persist(.conflicted(handle: h, address: a)), .conflict(c),
                            .log(LogEvent(.warning, "ipam.allocation.conflict", ["handle": h, "address": IPAM.format(a), "owner": c.owner.short]))]
                }
            }
            guard recount || !out.isEmpty else { return out }
            var fixed: [Entry] = []
            var held: [Int: UInt32] = [:]
            func count(_ a: UInt32) { if !ring.subnet.isReserved(a), let i = self.ring!.index(containing: a) { held[i, default: 0] += 1 } }
            // Each reserved address once: own holdings, then others' and refused ones not already counted.
            for a in holder.keys where !settings.debugHandOutConflicts || allocations[holder[a]!] == a { count(a) }
            for a in othersHeld.keys where holder[a] == nil { count(a) }
            for a in blocked.keys where holder[a] == nil && othersHeld[a] == nil { count(a) }
            for i in self.ring!.entries.indices where self.ring!.entries[i].owner == me {
                let r = self.ring!
                let n = usableIgnoringHolds(UInt64(r.entries[i].token), r.end(ofEntryAt: i))
                let want = n - min(n, held[i] ?? 0)
                if r.entries[i].free != want {
                    var e = r.entries[i]
                    e.free = want; e.version += 1
                    fixed.append(e)
                }
            }
            for e in fixed { self.ring!.replace(e) }
            if !fixed.isEmpty {
                out.append(.persist(.ringEntries(fixed)))
                for e in fixed { dirty.insert(e.token) }
            }
            return out
        }

        /// The membership view changed: who is alive now (excluding or including this node),
        /// since when each member that is dead or left has been so, and which members have left
        /// for good (`left`: they are no longer voters; a dead member still is).
        public mutating func onMembersChanged(live: Set<NodeID>, deadSince: [NodeID: Instant], left: Set<NodeID> = [], now: Instant) -> [Directive] {
            self.live = live.subtracting([me]).subtracting(left)
            self.deadSince = deadSince
            self.left = left.subtracting([me])
            let wasQuorum = quorumMode
            // A dead member whose register was retired by a forced reclaim (the operator said the
            // host is gone for good) no longer counts: lost databases would otherwise grow the
            // voter set until no majority is left.
            voterSet = self.live.union(deadSince.keys.filter { !isRetired($0) }).subtracting(self.left).union([me])
            reachableSet = self.live.union([me])
            var out: [Directive] = []
            // The register says whether this node confirms its allocations: republish on change.
            if ring != nil && !hasLeft && wasQuorum != quorumMode { bumpOwnHoldings(into: &out) }
            refused = refused.intersection(self.live)
            if let r = request, !self.live.contains(r.to) { request = nil }
            if !confirming && !unconfirmed.isEmpty { out += confirmReady() }  // fewer than 3 voters now: no confirmation needed
            if ring != nil && !pending.isEmpty { out += requestSpace(now: now) }
            return out
        }

        /// When ``onTick(now:)`` next has work: `.zero` when it has work at every tick (a
        /// retry or resend is outstanding, news waits to be flushed, space is low), the earliest
        /// deadline when only timers wait (a donation request's timeout, a blocked address's
        /// release, a dead member's reclaim this node is heir to), nil when nothing at all is
        /// timed. The node ticks the allocator at most every `Node.Settings.ipamTick` and no
        /// earlier than this, so an idle allocator costs no wake-ups (issue 8: it used to be
        /// polled five times a second). Inputs (members, messages, requests) recompute it.
        public var nextTimer: Instant? {
            guard let ring, !hasLeft else { return nil }
            if !dirty.isEmpty || ownHoldingsDirty || !dirtyRegisters.isEmpty { return .zero }
            if !unconfirmed.isEmpty || !takeovers.isEmpty || !pending.isEmpty { return .zero }
            if ownFree < UInt64(settings.lowWaterMark) && request == nil {
                // Polls for a donor only while one could give (the same test requestSpace makes).
                let free = ring.freeByOwner()
                if free.contains(where: { $0.key != me && $0.value > 0 && live.contains($0.key) && !refused.contains($0.key) }) { return .zero }
            }
            var t: Instant? = nil
            func earliest(_ x: Instant) { t = min(t ?? x, x) }
            if let r = request { earliest(r.sentAt + settings.requestTimeout) }
            for d in blocked.values { earliest(d) }
            if let reclaimAfter = settings.reclaimAfter, reachableVoters.count >= quorum {
                for dead in ring.owners where dead != me && !live.contains(dead) && takeovers[dead] == nil {
                    guard let since = deadSince[dead], heir(of: dead) == me, !(holdings[dead] ?? .empty).open else { continue }
                    earliest(since + reclaimAfter)
                }
            }
            return t
        }

        /// Timers: retries donation requests and holdings writes, expires waiting and unconfirmed
        /// allocations, runs and retries fenced reclaims of members dead for `reclaimAfter` when
        /// this node is their heir, and gossips changed free hints and registers.
        public mutating func onTick(now: Instant) -> [Directive] {
            guard let ring, !hasLeft else { return [] }
            var out: [Directive] = []
            blocked = blocked.filter { $0.value > now }
            // Confirmation: time out, or resend.
            if !confirming { out += confirmReady() }
            for (h, var c) in unconfirmed.sorted(by: { $0.key < $1.key }) {
                guard let since = c.since else { c.since = now; unconfirmed[h] = c; writeNeeded = true; continue }
                if now - since >= settings.confirmTimeout {
                    let r = reachableVoters.count, n = voters.count
                    dropAllocation(h, into: &out)
                    // A real partition says so; otherwise say how many acks were missing.
                    let error: AllocationError = r < quorum ? .partitioned(reachable: r, voters: n) : .unconfirmed(acks: c.acks.count, needed: quorum - 1)
                    out += [.allocationFailed(handle: h, error: error),
                            .log(LogEvent(.warning, "ipam.allocation.unconfirmed", ["handle": h, "reachable": "\(r)", "voters": "\(n)", "acks": "\(c.acks.count)", "needed": "\(quorum - 1)"]))]
                }
            }
            if !unconfirmed.isEmpty && (writeNeeded || writeSentAt.map { now - $0 >= resendDelay } ?? true) {
                out += sendHoldingsWrites(now: now, widen: !writeNeeded)
            }
            // Reclaims in phase 1: complete (outside quorum mode), abort, or resend.
            for (dead, t) in takeovers.sorted(by: { $0.key < $1.key }) {
                if !quorumMode || t.acks.count >= quorum - 1 { out += completeTakeover(dead, now: now); continue }
                if now - t.startedAt >= settings.confirmTimeout {
                    takeovers[dead] = nil
                    lastTakeoverAbort[dead] = now
                    out.append(.log(LogEvent(.warning, "ipam.reclaim.aborted", ["node": dead.short, "acks": "\(t.acks.count)", "needed": "\(quorum - 1)"])))
                } else if now - t.sentAt >= settings.resendInterval {
                    var t = t
                    t.sentAt = now
                    takeovers[dead] = t
                    let bytes = Message.takeover(cluster: ring.cluster, subnet: ring.subnet, dead: dead, entries: t.entries).encoded()
                    for v in reachableVoters.subtracting([me]).subtracting(t.acks.keys).sorted() { out.append(.send(bytes, to: v)) }
                }
            }
            if let reclaimAfter = settings.reclaimAfter, reachableVoters.count >= quorum {
                for dead in ring.owners.sorted() where dead != me && !live.contains(dead) && takeovers[dead] == nil {
                    guard let since = deadSince[dead], now - since >= reclaimAfter, heir(of: dead) == me else { continue }
                    // A node that allocated without confirmation may hold addresses nobody saw.
                    guard !(holdings[dead] ?? .empty).open else { continue }
                    if let a = lastTakeoverAbort[dead], a == now { continue }
                    out += startTakeover(dead, force: false, now: now, reason: "dead for \((now - since).seconds)s")
                }
            }
            let expired = pending.filter { now - $0.since >= settings.pendingTimeout }
            if !expired.isEmpty {
                pending.removeAll { now - $0.since >= settings.pendingTimeout }
                for p in expired { out.append(.allocationFailed(handle: p.handle, error: .noSpaceObtained)) }
            }
            if let r = request, now - r.sentAt >= settings.requestTimeout {
                refused.insert(r.to)
                request = nil
            }
            if !pending.isEmpty || ownFree < UInt64(settings.lowWaterMark) {
                if request == nil && !pending.isEmpty && refused.count >= live.count { refused.removeAll() }
                if !pending.isEmpty { out += servePending(now: now) } else { out += requestSpaceIfLow(now: now) }
            }
            out += flushFreeHints()
            return out
        }

        /// One delta with the current entries of all own tokens whose free hint changed, and one
        /// holdings message with the registers that changed (own, and those a reclaim set).
        /// Called by `onTick`; the daemon may also call it right before a push-pull.
        public mutating func flushFreeHints() -> [Directive] {
            guard let ring else { return [] }
            var out: [Directive] = []
            if !dirty.isEmpty {
                let changed = dirty.sorted().compactMap { t in ring.index(ofToken: t).map { ring.entries[$0] } }
                dirty.removeAll()
                if !changed.isEmpty {
                    out.append(.broadcast(Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: changed).encoded()))
                }
            }
            if ownHoldingsDirty || !dirtyRegisters.isEmpty {
                var regs = dirtyRegisters.compactMap { n in holdings[n].map { OwnedHoldings(owner: n, holdings: $0) } }
                if ownHoldingsDirty { regs.append(OwnedHoldings(owner: me, holdings: ownRegister())) }
                regs.sort { $0.owner < $1.owner }
                ownHoldingsDirty = false
                dirtyRegisters.removeAll()
                out.append(.broadcast(Message.holdings(cluster: ring.cluster, subnet: ring.subnet, registers: regs).encoded()))
            }
            return out
        }

        // MARK: Leave and reclaim

        /// Hands every owned range to live peers (round robin by ID), releases all local
        /// allocations and conflicts (the register becomes empty, version + 1, broadcast) and
        /// stops allocating. With no live peer the space stays with this node and is reclaimed
        /// by its heir after `reclaimAfter`.
        public mutating func leave(now: Instant) -> [Directive] {
            guard let ring, !hasLeft else { return [] }
            hasLeft = true
            var out: [Directive] = []
            for h in allocations.keys.sorted() { out.append(.persist(.release(handle: h))) }
            for h in conflicts.keys.sorted() { out.append(.persist(.release(handle: h))) }
            for h in unconfirmed.keys.sorted() { out.append(.allocationFailed(handle: h, error: .notInCluster)) }
            allocations.removeAll(); conflicts.removeAll(); holder.removeAll(); unconfirmed.removeAll()
            takeovers.removeAll()
            bumpOwnHoldings(into: &out)
            ownHoldingsDirty = false
            out.append(.broadcast(Message.holdings(cluster: ring.cluster, subnet: ring.subnet,
                                                   registers: [OwnedHoldings(owner: me, holdings: ownHoldings)]).encoded()))
            for p in pending { out.append(.allocationFailed(handle: p.handle, error: .notInCluster)) }
            pending.removeAll()
            let heirs = live.sorted()
            guard !heirs.isEmpty else {
                out.append(.log(LogEvent(.warning, "ipam.leave.stranded", ["reason": "no live peer; space waits for reclaim"])))
                return out
            }
            var moved: [Entry] = []
            var k = 0
            for i in ring.entries.indices where ring.entries[i].owner == me {
                var e = ring.entries[i]
                e.owner = heirs[k % heirs.count]; k += 1
                e.version += 1
                e.free = usableIgnoringHolds(UInt64(e.token), ring.end(ofEntryAt: i))
                moved.append(e)
            }
            for e in moved { self.ring!.replace(e) }
            if moved.isEmpty { return out }
            let bytes = Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: moved).encoded()
            out.append(.persist(.ringEntries(moved)))
            for h in Set(moved.map(\.owner)).sorted() { out.append(.send(bytes, to: h)) }
            out += [.broadcast(bytes), .log(LogEvent(.info, "ipam.leave.handover", ["ranges": "\(moved.count)", "heirs": "\(min(heirs.count, moved.count))"]))]
            return out
        }

        /// Manual reclaim (`weft ipam reclaim [--force] NODE`): this node takes over every range
        /// of `node`. Refused for live members, and in quorum mode when this node does not reach
        /// a majority of the voters. In quorum mode it runs the fenced two-phase takeover: the
        /// returned directives are phase 1; phase 2 follows when `Q-1` voters answered (or the
        /// attempt is dropped after `confirmTimeout`). `force` also drops the node's register
        /// (its reserved addresses become free): only for a host gone for good whose containers
        /// are certainly dead. Without force its reserved addresses wait until it returns.
        public mutating func reclaim(_ node: NodeID, force: Bool = false, now: Instant) throws(ReclaimError) -> [Directive] {
            guard let ring, !hasLeft else { throw .notInCluster }
            guard node != me else { throw .isSelf }
            guard !live.contains(node) else { throw .nodeIsAlive(node) }
            let holds = !(holdings[node]?.addresses.isEmpty ?? true)
            guard ring.owners.contains(node) || (force && holds) else { throw .ownsNothing(node) }
            if !force && (holdings[node] ?? .empty).open { throw .holdingsUnknown(node) }
            // Forced: the operator says the host is gone with its containers, so there is no owner
            // left to fence: no quorum is needed (that is what lets a cluster that lost several
            // databases recover), and the takeover completes at once.
            if quorumMode && !force {
                let r = reachableVoters.count
                guard r >= quorum else { throw .partitioned(reachable: r, voters: voters.count) }
            }
            if quorumMode {
                if var t = takeovers[node] {
                    guard force && !t.force else { throw .inProgress(node) }
                    t.force = true
                    takeovers[node] = t
                    return completeTakeover(node, now: now)
                }
            }
            return startTakeover(node, force: force, now: now, reason: force ? "manual, forced" : "manual")
        }

        /// Phase 1 (rule 6): the takeover entries (owner me, version + stride) go to every
        /// reachable voter; outside quorum mode phase 2 follows at once.
        mutating func startTakeover(_ dead: NodeID, force: Bool, now: Instant, reason: String) -> [Directive] {
            guard let ring else { return [] }
            var entries: [Entry] = []
            for e in ring.entries where e.owner == dead {
                entries.append(Entry(token: e.token, owner: me, version: e.version &+ Instance.takeoverStride, free: 0))
            }
            takeovers[dead] = Takeover(entries: entries, startedAt: now, sentAt: now, acks: [:], force: force, reason: reason)
            if !quorumMode || force { return completeTakeover(dead, now: now) }
            let bytes = Message.takeover(cluster: ring.cluster, subnet: ring.subnet, dead: dead, entries: entries).encoded()
            var out: [Directive] = [.log(LogEvent(.info, "ipam.reclaim.fencing", ["node": dead.short, "ranges": "\(entries.count)", "reason": reason]))]
            for v in reachableVoters.subtracting([me]).sorted() { out.append(.send(bytes, to: v)) }
            return out
        }

        /// Phase 2: store the dead node's register (the highest version seen, own copy included;
        /// forced: an empty one at version + 2^32), then commit and broadcast the takeover.
        mutating func completeTakeover(_ dead: NodeID, now: Instant) -> [Directive] {
            guard let t = takeovers.removeValue(forKey: dead), let ring else { return [] }
            var out: [Directive] = []
            var best = holdings[dead] ?? .empty
            for h in t.acks.values where h.beats(best) { best = h }
            if best.open && !t.force {
                lastTakeoverAbort[dead] = now
                return [.log(LogEvent(.warning, "ipam.reclaim.unsafe", ["node": dead.short, "reason": "it allocated without confirmation; use reclaim --force if the host is gone"]))]
            }
            if t.force { best = Holdings(version: best.version &+ Instance.takeoverStride, addresses: []) }
            if holdings[dead] != best {
                setRegister(dead, best)
                dirtyRegisters.insert(dead)
                out.append(.persist(.holdings(owner: dead, best)))
            }
            var taken: [Entry] = []
            for x in t.entries {
                guard let i = ring.index(ofToken: x.token), ring.entries[i].owner == dead else { continue }
                var e = ring.entries[i]
                e.owner = me
                e.version = max(x.version, e.version &+ Instance.takeoverStride)
                taken.append(e)
            }
            for e in taken { self.ring!.replace(e) }
            for k in taken.indices {
                let i = self.ring!.index(ofToken: taken[k].token)!
                taken[k].free = usable(UInt64(taken[k].token), self.ring!.end(ofEntryAt: i))
                self.ring!.replace(taken[k])
            }
            if !taken.isEmpty {
                out += [.persist(.ringEntries(taken)),
                        .broadcast(Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: taken).encoded())]
            }
            out.append(.log(LogEvent(.warning, "ipam.reclaim", ["node": dead.short, "ranges": "\(taken.count)", "reason": t.reason,
                                                                 "reserved": "\(best.addresses.count)", "acks": "\(t.acks.count)"])))
            refused.remove(dead)
            out += reconcile(now: now)
            out += servePending(now: now)
            return out
        }
    }
}
