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

        var holder: [UInt32: String] = [:]
        var live: Set<NodeID> = []
        var deadSince: [NodeID: Instant] = [:]
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
        }

        /// What survives a restart. The daemon rebuilds it from SQLite.
        public struct Snapshot: Equatable, Sendable {
            public var ring: Ring?
            public var allocations: [String: UInt32]
            public var conflicts: [String: UInt32]
            public init(ring: Ring?, allocations: [String: UInt32], conflicts: [String: UInt32]) {
                self.ring = ring; self.allocations = allocations; self.conflicts = conflicts
            }
        }

        public var snapshot: Snapshot { Snapshot(ring: ring, allocations: allocations, conflicts: conflicts) }

        /// A node restarting with its persisted state. Allocations the restored ring says are no
        /// longer ours are moved to conflicts on the first ring update.
        public init(me: NodeID, settings: Settings = .default, seed: UInt64, restoring s: Snapshot) {
            self.init(me: me, settings: settings, seed: seed)
            ring = s.ring
            allocations = s.allocations
            conflicts = s.conflicts
            for (h, a) in allocations { holder[a] = h }
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

        /// This node's overlay address, if taken.
        public var overlayAddress: UInt32? { allocations[Instance.overlayHandle] }

        /// The encoded full ring, for push-pull exchanges and answering joiners.
        public func fullStateMessage() -> [UInt8]? { ring.map { Message.ringFull($0).encoded() } }

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
                                    .log(LogEvent(.info, "ipam.cluster.created", ["cluster": "\(cluster)", "subnet": "\(subnet)"]))]
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
            if let a = allocations[handle] { return (.allocated(a), []) }
            guard conflicts[handle] == nil else { throw .handleInConflict(handle) }
            guard !hasLeft else { throw .notInCluster }
            if pending.contains(where: { $0.handle == handle }) { return (.pending, []) }
            guard let ring else {
                pending.append((handle, now))
                return (.pending, [.log(LogEvent(.info, "ipam.allocate.waiting", ["handle": handle, "reason": "no ring yet"]))])
            }
            var out: [Directive] = []
            if let a = takeAddress(handle: handle, into: &out) {
                out += requestSpaceIfLow(now: now)
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
            var out: [Directive] = []
            if conflicts.removeValue(forKey: Instance.overlayHandle) != nil {
                out.append(.persist(.release(handle: Instance.overlayHandle)))
            }
            let r = try allocateValidated(handle: Instance.overlayHandle, now: now)
            return (r.outcome, out + r.directives)
        }

        /// Releases `handle`'s address (or forgets its conflict). Unknown handle: error, nothing changes.
        public mutating func release(handle: String, now: Instant) throws(AllocationError) -> [Directive] {
            try Instance.validate(handle: handle)
            if conflicts.removeValue(forKey: handle) != nil { return [.persist(.release(handle: handle))] }
            if let i = pending.firstIndex(where: { $0.handle == handle }) {
                pending.remove(at: i)
                return [.allocationFailed(handle: handle, error: .unknownHandle(handle))]
            }
            guard let a = allocations.removeValue(forKey: handle) else { throw .unknownHandle(handle) }
            holder[a] = nil
            var out: [Directive] = [.persist(.release(handle: handle))]
            if let ring, let i = ring.index(containing: a), ring.entries[i].owner == me {
                var e = ring.entries[i]
                e.free += 1; e.version += 1
                self.ring!.replace(e)
                out.append(.persist(.ringEntries([e])))
                dirty.insert(e.token)
            }
            return out
        }

        /// Finds a free address in own ranges; records it; appends persist directives and marks
        /// the entry's free hint for the next tick's gossip.
        mutating func takeAddress(handle: String, into out: inout [Directive]) -> UInt32? {
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
                        if !ring.subnet.isReserved(c) && holder[c] == nil { return c }
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
                    out += [.persist(.allocation(handle: handle, address: a)), .persist(.ringEntries([e]))]
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
            while let p = pending.first {
                guard let a = takeAddress(handle: p.handle, into: &out) else { break }
                pending.removeFirst()
                out.append(.allocated(handle: p.handle, address: a))
            }
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

        /// The largest run of addresses inside one own range that holds no allocation and no
        /// reserved address: (entry index, start, end exclusive).
        func largestFreeRun() -> (index: Int, start: UInt64, end: UInt64)? {
            guard let ring else { return nil }
            var best: (Int, UInt64, UInt64)? = nil
            var byEntry: [Int: [UInt32]] = [:]
            for a in holder.keys { if let i = ring.index(containing: a) { byEntry[i, default: []].append(a) } }
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

        /// Number of addresses in [lo, hi) that may be handed out, minus those held here.
        func usable(_ lo: UInt64, _ hi: UInt64) -> UInt32 {
            let n = usableIgnoringHolds(lo, hi)
            guard n > 0 else { return 0 }
            var held: UInt32 = 0
            for a in holder.keys where UInt64(a) >= lo && UInt64(a) < hi { held += 1 }
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

        /// Ring data piggybacked on gossip or exchanged in push-pull (full ring or delta).
        public mutating func onRingDelta(_ bytes: [UInt8], from: NodeID, now: Instant) -> [Directive] {
            onMessage(bytes, from: from, now: now)
        }

        /// A point-to-point IPAM message (or ring data: both decode the same way).
        public mutating func onMessage(_ bytes: [UInt8], from: NodeID, now: Instant) -> [Directive] {
            let message: Message
            do { message = try Message(decoding: bytes) } catch { return [.rejected(from: from, reason: .wire(error))] }
            return onMessage(message, from: from, now: now)
        }

        /// The decoded form of ``onMessage(_:from:now:)-(([UInt8],_,_))`` (used by the simulator).
        public mutating func onMessage(_ message: Message, from: NodeID, now: Instant) -> [Directive] {
            switch message {
            case .ringFull(let r):
                guard ring != nil else { return adopt(r, from: from, now: now) }
                return absorb(entries: r.entries, cluster: r.cluster, subnet: r.subnet, from: from, now: now)
            case .ringDelta(let c, let s, let e):
                guard ring != nil else { return [.send(Message.ringRequest.encoded(), to: from)] }
                return absorb(entries: e, cluster: c, subnet: s, from: from, now: now)
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
                guard c == ring.cluster else {
                    return [.rejected(from: from, reason: .ring(.differentCluster(ours: ring.cluster, theirs: c)))]
                }
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
            }
        }

        /// First ring this node hears: join that cluster.
        mutating func adopt(_ r: Ring, from: NodeID, now: Instant) -> [Directive] {
            guard !hasLeft else { return [] }
            ring = r
            var out: [Directive] = [.persist(.cluster(r.cluster, r.subnet)), .persist(.ringEntries(r.entries)),
                                    .log(LogEvent(.info, "ipam.cluster.joined", ["cluster": "\(r.cluster)", "from": from.short]))]
            out += reconcile(now: now)
            if pending.isEmpty && ownFree == 0 {
                out += requestSpace(now: now)  // get a first range before the first container asks
            } else {
                out += servePending(now: now)
            }
            return out
        }

        /// Merges remote entries and then brings local state in line with the new ring.
        mutating func absorb(entries: [Entry], cluster: ClusterID, subnet: Subnet, from: NodeID, now: Instant) -> [Directive] {
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
            out += reconcile(now: now)
            out += servePending(now: now)
            return out
        }

        /// After the ring changed under us: allocations in ranges we no longer own become
        /// conflicts; free hints of our own entries are recomputed (and gossiped if they moved).
        mutating func reconcile(now: Instant) -> [Directive] {
            guard let ring else { return [] }
            var out: [Directive] = []
            for (h, a) in allocations.sorted(by: { $0.value < $1.value }) {
                let owner = ring.owner(of: a)
                if owner != me {
                    allocations[h] = nil
                    holder[a] = nil
                    conflicts[h] = a
                    let c = Conflict(handle: h, address: a, owner: owner ?? me)
                    out += [.persist(.conflicted(handle: h, address: a)), .conflict(c),
                            .log(LogEvent(.warning, "ipam.allocation.conflict", ["handle": h, "address": IPAM.format(a), "owner": c.owner.short]))]
                }
            }
            var fixed: [Entry] = []
            var held: [Int: UInt32] = [:]
            for a in holder.keys { if let i = ring.index(containing: a) { held[i, default: 0] += 1 } }
            for i in ring.entries.indices where ring.entries[i].owner == me {
                let n = usableIgnoringHolds(UInt64(ring.entries[i].token), ring.end(ofEntryAt: i))
                let want = n - min(n, held[i] ?? 0)
                if ring.entries[i].free != want {
                    var e = ring.entries[i]
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

        /// The membership view changed: who is alive now (excluding or including this node) and
        /// since when each member that is dead or left has been so.
        public mutating func onMembersChanged(live: Set<NodeID>, deadSince: [NodeID: Instant], now: Instant) -> [Directive] {
            self.live = live.subtracting([me])
            self.deadSince = deadSince
            refused = refused.intersection(self.live)
            if let r = request, !self.live.contains(r.to) { request = nil }
            if ring != nil && !pending.isEmpty { return requestSpace(now: now) }
            return []
        }

        /// Timers: retries donation requests, expires waiting allocations, reclaims space of
        /// members dead for `reclaimAfter` when this node is their heir.
        public mutating func onTick(now: Instant) -> [Directive] {
            guard let ring, !hasLeft else { return [] }
            var out: [Directive] = []
            for dead in ring.owners.sorted() where dead != me && !live.contains(dead) {
                guard let since = deadSince[dead], now - since >= settings.reclaimAfter, heir(of: dead) == me else { continue }
                out += takeOver(dead, now: now, reason: "dead for \((now - since).seconds)s")
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
                out += pending.isEmpty ? requestSpaceIfLow(now: now) : requestSpace(now: now)
            }
            out += flushFreeHints()
            return out
        }

        /// One delta with the current entries of all own tokens whose free hint changed.
        /// Called by `onTick`; the daemon may also call it right before a push-pull.
        public mutating func flushFreeHints() -> [Directive] {
            guard let ring, !dirty.isEmpty else { return [] }
            let changed = dirty.sorted().compactMap { t in ring.index(ofToken: t).map { ring.entries[$0] } }
            dirty.removeAll()
            if changed.isEmpty { return [] }
            return [.broadcast(Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: changed).encoded())]
        }

        // MARK: Leave and reclaim

        /// Hands every owned range to live peers (round robin by ID), releases all local
        /// allocations and stops allocating. With no live peer the space stays with this node
        /// and is reclaimed by its heir after `reclaimAfter`.
        public mutating func leave(now: Instant) -> [Directive] {
            guard let ring, !hasLeft else { return [] }
            hasLeft = true
            var out: [Directive] = []
            for h in allocations.keys.sorted() { out.append(.persist(.release(handle: h))) }
            allocations.removeAll(); holder.removeAll()
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

        /// Manual reclaim (`weft ipam reclaim NODE`): this node takes over every range of `node`
        /// now. Refused for live members. If admins run it on several nodes at once the ring's
        /// tie-break keeps one owner per range and the others report conflicts.
        public mutating func reclaim(_ node: NodeID, now: Instant) throws(ReclaimError) -> [Directive] {
            guard let ring, !hasLeft else { throw .notInCluster }
            guard node != me else { throw .isSelf }
            guard !live.contains(node) else { throw .nodeIsAlive(node) }
            guard ring.owners.contains(node) else { throw .ownsNothing(node) }
            return takeOver(node, now: now, reason: "manual")
        }

        mutating func takeOver(_ dead: NodeID, now: Instant, reason: String) -> [Directive] {
            guard let ring else { return [] }
            var taken: [Entry] = []
            for i in ring.entries.indices where ring.entries[i].owner == dead {
                var e = ring.entries[i]
                e.owner = me
                e.version = e.version &+ Instance.takeoverStride
                e.free = usable(UInt64(e.token), ring.end(ofEntryAt: i))
                taken.append(e)
            }
            if taken.isEmpty { return [] }
            for e in taken { self.ring!.replace(e) }
            var out: [Directive] = [.persist(.ringEntries(taken)),
                                    .broadcast(Message.ringDelta(cluster: ring.cluster, subnet: ring.subnet, entries: taken).encoded()),
                                    .log(LogEvent(.warning, "ipam.reclaim", ["node": dead.short, "ranges": "\(taken.count)", "reason": reason]))]
            refused.remove(dead)
            out += servePending(now: now)
            return out
        }
    }
}
