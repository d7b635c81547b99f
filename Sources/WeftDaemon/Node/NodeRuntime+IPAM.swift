import Logging
import NIOCore
import WeftAPI
import WeftCore
import WeftCrypto

/// Address allocation as the control socket sees it: requests go to the pure node, answers come
/// back as effects (a pending allocation waits for its `.allocated` effect).
extension NodeRuntime {
    func resume(_ handle: String, _ result: Result<UInt32, IPAM.AllocationError>) {
        guard let waiters = waitingAllocations.removeValue(forKey: handle) else { return }
        for w in waiters { w.resume(returning: result) }
    }

    /// Sends a point-to-point IPAM frame over TCP (reliable; frames can exceed a datagram),
    /// through the bounded outbox: one connection at a time per peer, 32 in all.
    func sendIPAM(_ bytes: [UInt8], to: NodeID, endpoint: Endpoint) {
        guard let address = try? endpoint.socketAddress() else {
            metrics.drop(reason: "ipam-unknown-peer")
            return
        }
        let frame = GossipEnvelope.seal(bytes, kind: .ipam, with: sealer)
        metrics.message(.ipam, direction: .out)
        let before = (ipamOutbox.overflowed, ipamOutbox.expired)
        let starts = ipamOutbox.enqueue((frame, address), to: to, now: now)
        countOutboxDrops(since: before)
        for s in starts { startIPAMConnection(s) }
    }

    /// A small IPAM frame the allocator resends until answered, in one replay-protected
    /// datagram (kind 20) on the gossip socket.
    func sendIPAMDatagram(_ frame: [UInt8], to endpoint: Endpoint) {
        guard let dataPlane else { return metrics.drop(reason: "unsendable") }
        metrics.message(.ipam, direction: .out)
        metrics.datagram(.out)
        dataPlane.send(datagramSealer.seal(frame, kind: .ipamDatagram), to: endpoint)
    }

    private func countOutboxDrops(since before: (Int, Int)) {
        for _ in before.0..<max(before.0, ipamOutbox.overflowed) { metrics.drop(reason: "ipam-send-queue-full") }
        for _ in before.1..<max(before.1, ipamOutbox.expired) { metrics.drop(reason: "ipam-send-expired") }
    }

    private func startIPAMConnection(_ s: Outbox<(bytes: [UInt8], address: SocketAddress)>.Start) {
        let group = self.group
        let logger = self.logger
        Task {
            do {
                _ = try await framedExchange(group: group, to: s.item.address, request: s.item.bytes, maxFrame: 64, timeout: .seconds(5))
            } catch FramedExchangeError.closedWithoutAnswer {
                // Expected: IPAM messages are one-way; the receiver closes after reading.
            } catch {
                logger.debug("IPAM message not delivered", metadata: ["event": "ipam-send-failed", "to": .string(s.peer.short), "error": "\(error)"])
            }
            self.ipamConnectionEnded(s.peer)
        }
    }

    private func ipamConnectionEnded(_ peer: NodeID) {
        let before = (ipamOutbox.overflowed, ipamOutbox.expired)
        let starts = ipamOutbox.finished(peer, now: now)
        countOutboxDrops(since: before)
        for s in starts { startIPAMConnection(s) }
    }

    // MARK: - Control operations

    func allocate(_ handle: String, name: String? = nil) async -> Result<API.Allocation, API.ErrorBody> {
        let (result, effects) = node.allocate(handle: handle, name: name, now: now)
        perform(effects)  // committed before we answer
        let address: UInt32
        switch result {
        case .failure(.storage(let f)):
            return .failure(API.ErrorBody(code: .internal, message: f.description))
        case .failure(.invalidName(let why)):
            return .failure(API.ErrorBody(code: .badRequest, message: why))
        case .failure(.evicted(let why)):
            return .failure(API.ErrorBody(code: .evicted, message: why))
        case .failure(.allocation(let e)):
            return .failure(Self.apiError(e))
        case .success(.allocated(let a)):
            address = a
        case .success(.pending):
            let r = await withCheckedContinuation { c in waitingAllocations[handle, default: []].append(c) }
            switch r {
            case .success(let a): address = a
            case .failure(let e): return .failure(Self.apiError(e))
            }
        }
        guard let subnet = node.ipam.ring?.subnet else {
            return .failure(API.ErrorBody(code: .notReady, message: "this node has no address ring yet: try again shortly"))
        }
        return .success(API.Allocation(handle: handle, address: IPAM.format(address), prefixLength: Int(subnet.prefixLength), subnet: subnet.description))
    }

    func release(_ handle: String) -> Result<API.AllocationInfo, API.ErrorBody> {
        let (result, effects) = node.release(handle: handle, now: now)
        perform(effects)
        switch result {
        case .failure(.storage(let f)): return .failure(API.ErrorBody(code: .internal, message: f.description))
        case .failure(.invalidName(let why)): return .failure(API.ErrorBody(code: .badRequest, message: why))
        case .failure(.evicted(let why)): return .failure(API.ErrorBody(code: .evicted, message: why))
        case .failure(.allocation(let e)): return .failure(Self.apiError(e))
        case .success(let address): return .success(API.AllocationInfo(handle: handle, address: address.map { IPAM.format($0) } ?? ""))
        }
    }

    func ipamInfo() -> API.IPAMInfo {
        let names = memberNames()
        let ipam = node.ipam
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

    func reclaim(_ nodeText: String, force: Bool = false) -> Result<API.ReclaimResult, API.ErrorBody> {
        let (result, effects) = node.reclaim(nodeText, force: force, now: now)
        perform(effects)
        switch result {
        case .success(let r):
            return .success(API.ReclaimResult(node: r.node.hex, ranges: r.ranges, addresses: r.addresses))
        case .failure(let e):
            let code: API.ErrorCode = switch e {
            case .noMatch, .ambiguous: .notFound
            case .storage: .internal
            case .refused(.nodeIsAlive): .conflict
            case .refused(.ownsNothing): .notFound
            case .refused(.isSelf), .refused(.notInCluster): .badRequest
            case .refused(.partitioned): .notReady
            case .refused(.inProgress), .refused(.holdingsUnknown): .conflict
            }
            return .failure(API.ErrorBody(code: code, message: e.description))
        }
    }

    static func apiError(_ e: IPAM.AllocationError) -> API.ErrorBody {
        let code: API.ErrorCode = switch e {
        case .invalidHandle: .badRequest
        case .notInCluster, .noSpaceObtained: .notReady
        case .outOfSpace: .exhausted
        case .unknownHandle: .notFound
        case .handleInConflict: .conflict
        case .partitioned, .unconfirmed: .notReady
        }
        return API.ErrorBody(code: code, message: e.description)
    }
}
