import Logging
import NIOCore
import WeftAPI
import WeftCore
import WeftCrypto
import WeftStore

/// Address allocation inside the node runtime: the glue between the pure `IPAM.Instance`,
/// membership gossip (ring deltas ride on it; the full ring rides on push-pull), point-to-point
/// IPAM messages over the TCP port, SQLite, and the control socket.
extension NodeRuntime {
    /// Carries out the allocator's start-up directives (cluster creation, overlay address).
    func start(ipamDirectives: [IPAM.Directive]) {
        execute(ipam: ipamDirectives)
    }

    /// Claims the node's own overlay address once the ring arrives (joiners).
    func claimOverlayIfNeeded() {
        guard ipam.ring != nil, ipam.overlayAddress == nil, !ipam.hasLeft,
              !ipam.pending.contains(where: { $0.handle == IPAM.Instance.overlayHandle }) else { return }
        if let (_, d) = try? ipam.claimOverlayAddress(now: now) { execute(ipam: d) }
    }

    // MARK: - Inputs from membership

    /// The ring bytes to carry in a push-pull exchange.
    func ipamAppState() -> [UInt8] {
        execute(ipam: ipam.flushFreeHints())
        return ipam.fullStateMessage() ?? []
    }

    /// Ring data from gossip (`rebroadcast`: a piggybacked delta that was news is passed on,
    /// SWIM-style) or from a push-pull (the full ring).
    func onRingData(_ bytes: [UInt8], from: NodeID, rebroadcast: Bool) {
        let directives = ipam.onRingDelta(bytes, from: from, now: now)
        let wasNews = directives.contains {
            switch $0 {
            case .persist(.ringEntries), .persist(.holdings): return true
            default: return false
            }
        }
        execute(ipam: directives)
        if rebroadcast && wasNews { _ = instance.enqueueBroadcast(bytes, key: nil) }
    }

    /// Tells IPAM who is live and since when the others are dead or gone.
    func membersChangedForIPAM() {
        var live = Set<NodeID>()
        var deadSince: [NodeID: Instant] = [:]
        var left = Set<NodeID>()
        for m in instance.members {
            switch m.state {
            case .alive, .suspect: live.insert(m.id)
            case .dead: deadSince[m.id] = m.stateChangedAt
            case .left: deadSince[m.id] = m.stateChangedAt; left.insert(m.id)
            }
        }
        execute(ipam: ipam.onMembersChanged(live: live, deadSince: deadSince, left: left, now: now))
    }

    func tickIPAM(now t: Instant) {
        guard t - lastIPAMTick >= .milliseconds(200) else { return }
        lastIPAMTick = t
        claimOverlayIfNeeded()
        execute(ipam: ipam.onTick(now: t))
        configureOverlayIfNeeded()
    }

    /// A point-to-point IPAM message arrived on the TCP port.
    func onIPAMFrame(_ bytes: [UInt8], from: Endpoint?) {
        messages.increment("ipam-in")
        switch GossipEnvelope.open(bytes, expecting: .ipam, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
        case .success(let plain):
            guard plain.count > NodeID.byteCount, let sender = NodeID(bytes: plain.prefix(NodeID.byteCount)) else {
                drop("malformed-ipam", from: from)
                return
            }
            execute(ipam: ipam.onMessage(Array(plain.dropFirst(NodeID.byteCount)), from: sender, now: now))
        }
    }

    // MARK: - Directives

    /// Carries out IPAM directives in order. Consecutive `persist` changes are committed in one
    /// SQLite transaction before anything after them happens.
    func execute(ipam directives: [IPAM.Directive]) {
        var batch: [IPAM.PersistChange] = []
        func flush() {
            guard !batch.isEmpty else { return }
            do { try store.applyIPAM(batch) } catch {
                logger.error("cannot persist address allocation state", metadata: ["event": "store-error", "error": .string(error.description)])
            }
            batch.removeAll()
        }
        var ringChanged = false
        defer {
            if ringChanged { updateRoutes() }
        }
        for d in directives {
            if case .persist(let change) = d {
                if case .ringEntries = change { ringChanged = true }
                batch.append(change)
                continue
            }
            flush()
            switch d {
            case .persist: break
            case .broadcast(let bytes):
                _ = instance.enqueueBroadcast(bytes, key: nil)
            case .send(let bytes, let to):
                sendIPAM(bytes, to: to)
            case .allocated(let handle, let address):
                if handle == IPAM.Instance.overlayHandle {
                    logger.notice("overlay address assigned", metadata: ["event": "overlay-address", "address": .string(IPAM.format(address))])
                    configureOverlayIfNeeded()
                }
                resume(handle, .success(address))
            case .allocationFailed(let handle, let error):
                resume(handle, .failure(error))
            case .conflict(let c):
                logger.error("allocation lost to a takeover", metadata: [
                    "event": "ipam-conflict", "handle": .string(c.handle), "address": .string(IPAM.format(c.address)), "owner": .string(c.owner.short),
                ])
            case .rejected(let from, let reason):
                drops.increment("ipam-rejected")
                if case .ring(let e) = reason, case .differentCluster = e {
                    // Reported once per member: every gossip round would repeat it.
                    let key = "cluster:\(from.short)"
                    if ipamWarnings[key] != nil { continue }
                    ipamWarnings[key] =
                        "member \(from.short) belongs to another address ring created separately with the same cluster key (\(e)); its addresses were not merged: give it its own key or move its data dir aside and rejoin"
                }
                logger.warning("IPAM input refused", metadata: ["event": "ipam-rejected", "from": .string(from.short), "reason": .string(reason.description)])
            case .log(let e):
                if e.event == "ipam.cluster.mismatch", let f = e.fields["from"] {
                    if loggedMismatches.contains(f) { continue }
                    loggedMismatches.insert(f)
                }
                var md: Logger.Metadata = ["event": .string(e.event)]
                for (k, v) in e.fields { md[k] = .string(v) }
                let level: Logger.Level = switch e.level {
                case .debug: .debug
                case .info: .info
                case .warning: .warning
                case .error: .error
                }
                logger.log(level: level, "ipam \(e.event)", metadata: md)
            }
        }
        flush()
    }

    private func resume(_ handle: String, _ result: Result<UInt32, IPAM.AllocationError>) {
        guard let waiters = waitingAllocations.removeValue(forKey: handle) else { return }
        for w in waiters { w.resume(returning: result) }
    }

    /// Sends an IPAM message to a member over TCP (reliable; messages can exceed a datagram).
    private func sendIPAM(_ bytes: [UInt8], to: NodeID) {
        guard let member = instance.members.first(where: { $0.id == to }), let address = try? member.address.socketAddress() else {
            drops.increment("ipam-unknown-peer")
            return
        }
        let frame = GossipEnvelope.seal(identity.keyPair.nodeID.bytes + bytes, kind: .ipam, with: sealer)
        messages.increment("ipam-out")
        let group = self.group
        let logger = self.logger
        Task {
            do {
                _ = try await framedExchange(group: group, to: address, request: frame, maxFrame: 64, timeout: .seconds(5))
            } catch FramedExchangeError.closedWithoutAnswer {
                // Expected: IPAM messages are one-way; the receiver closes after reading.
            } catch {
                logger.debug("IPAM message not delivered", metadata: ["event": "ipam-send-failed", "to": .string(to.short), "error": "\(error)"])
            }
        }
    }

    // MARK: - Control operations

    func allocate(_ handle: String) async -> Result<API.Allocation, API.ErrorBody> {
        let outcome: IPAM.AllocationOutcome
        do {
            let (o, directives) = try ipam.allocate(handle: handle, now: now)
            execute(ipam: directives)  // persists before we answer
            outcome = o
        } catch {
            return .failure(Self.apiError(error))
        }
        let address: UInt32
        switch outcome {
        case .allocated(let a):
            address = a
        case .pending:
            let result = await withCheckedContinuation { c in waitingAllocations[handle, default: []].append(c) }
            switch result {
            case .success(let a): address = a
            case .failure(let e): return .failure(Self.apiError(e))
            }
        }
        guard let subnet = ipam.ring?.subnet else {
            return .failure(API.ErrorBody(code: .notReady, message: "this node has no address ring yet: try again shortly"))
        }
        return .success(API.Allocation(handle: handle, address: IPAM.format(address), prefixLength: Int(subnet.prefixLength), subnet: subnet.description))
    }

    func release(_ handle: String) -> Result<API.AllocationInfo, API.ErrorBody> {
        let address = ipam.allocations[handle] ?? ipam.conflicts[handle]
        do {
            execute(ipam: try ipam.release(handle: handle, now: now))
        } catch {
            return .failure(Self.apiError(error))
        }
        return .success(API.AllocationInfo(handle: handle, address: address.map { IPAM.format($0) } ?? ""))
    }

    func ipamInfo() -> API.IPAMInfo {
        let names = memberNames()
        var ranges: [API.RangeInfo] = []
        var clusterFree: UInt64 = 0
        if let ring = ipam.ring {
            for (i, e) in ring.entries.enumerated() {
                let end = ring.end(ofEntryAt: i)  // exclusive
                ranges.append(API.RangeInfo(
                    start: IPAM.format(e.token), end: IPAM.format(UInt32(end - 1)), owner: e.owner.hex,
                    ownerName: names[e.owner] ?? "?", version: e.version, free: e.free, size: ring.size(ofEntryAt: i)
                ))
                clusterFree += UInt64(e.free)
            }
        }
        func infos(_ d: [String: UInt32]) -> [API.AllocationInfo] {
            d.sorted { $0.value < $1.value }.map { API.AllocationInfo(handle: $0.key, address: IPAM.format($0.value)) }
        }
        return API.IPAMInfo(
            subnet: ipam.ring?.subnet.description, ranges: ranges, allocations: infos(ipam.allocations),
            conflicts: infos(ipam.conflicts), ownFree: ipam.ownFree, clusterFree: clusterFree, pending: ipam.pending.count
        )
    }

    func reclaim(_ nodeText: String) -> Result<API.ReclaimResult, API.ErrorBody> {
        let text = nodeText.lowercased()
        var candidates = Set<NodeID>()
        for m in instance.members where m.id.hex.hasPrefix(text) || m.name == nodeText { candidates.insert(m.id) }
        for o in ipam.ring?.owners ?? [] where o.hex.hasPrefix(text) { candidates.insert(o) }
        guard !text.isEmpty, candidates.count == 1, let node = candidates.first else {
            let why = candidates.isEmpty ? "no member or range owner matches '\(nodeText)'" : "'\(nodeText)' matches \(candidates.count) nodes: give more of the id"
            return .failure(API.ErrorBody(code: .notFound, message: "\(why): see `weft members` and `weft ipam`"))
        }
        let before = ipam.ring?.entries.filter { $0.owner == node } ?? []
        do {
            execute(ipam: try ipam.reclaim(node, now: now))
        } catch {
            let code: API.ErrorCode = switch error {
            case .nodeIsAlive: .conflict
            case .ownsNothing: .notFound
            case .isSelf, .notInCluster: .badRequest
            case .partitioned: .notReady
            case .inProgress, .holdingsUnknown: .conflict
            }
            return .failure(API.ErrorBody(code: code, message: error.description))
        }
        var addresses: UInt64 = 0
        if let ring = ipam.ring {
            for e in before { if let i = ring.index(ofToken: e.token) { addresses += UInt64(ring.size(ofEntryAt: i)) } }
        }
        return .success(API.ReclaimResult(node: node.hex, ranges: before.count, addresses: addresses))
    }

    /// Before a leave: hand every range to live peers and make sure at least one peer has the
    /// new ring over TCP before membership announces the departure.
    func leaveIPAM() async {
        execute(ipam: ipam.leave(now: now))
        let peers = instance.members.filter { $0.id != identity.keyPair.nodeID && $0.state == .alive }.prefix(2)
        for p in peers { _ = await pushPull(with: p.address) }
        for (handle, _) in waitingAllocations { resume(handle, .failure(.notInCluster)) }
    }

    static func apiError(_ e: IPAM.AllocationError) -> API.ErrorBody {
        let code: API.ErrorCode = switch e {
        case .invalidHandle: .badRequest
        case .notInCluster, .noSpaceObtained: .notReady
        case .outOfSpace: .exhausted
        case .unknownHandle: .notFound
        case .handleInConflict: .conflict
        case .partitioned: .notReady
        }
        return API.ErrorBody(code: code, message: e.description)
    }
}
