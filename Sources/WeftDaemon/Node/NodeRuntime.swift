import Logging
import Metrics
import NIOCore
import NIOPosix
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDataPlane
import WeftStore

/// The node's single owner of protocol state. Every input (datagram, push-pull frame, timer,
/// control request) enters through this actor, is handed to the pure `Membership.Instance`, and
/// the returned directives are carried out here: seal and send, persist, log, count.
///
/// Threading: NIO's event loop threads only move bytes; they forward into this actor, which
/// serializes all state changes. Sends go back out through `Channel.writeAndFlush`, which is
/// safe from any thread.
actor NodeRuntime {
    struct Identity: Sendable {
        let keyPair: IdentityKeyPair
        let advertise: Endpoint
        let clusterID: String
    }

    var instance: Membership.Instance
    let identity: Identity
    let settings: Membership.Settings
    let store: NodeStore
    let sealer: GossipSealer
    let logger: Logger
    let group: any EventLoopGroup
    let clock = ContinuousClock()
    let origin: ContinuousClock.Instant
    let startedAt: ContinuousClock.Instant

    /// The UDP socket (gossip + tunnels) and, unless --no-tun, the TUN device.
    var dataPlane: DataPlane?
    /// Encrypted tunnels to other members; nil with --no-tun (no TUN, so nothing to carry).
    var tunnel: Tunnel.Instance<SodiumTunnelSuite>?
    /// MTU of the TUN device (underlay MTU minus the exact encapsulation overhead, or --mtu).
    var tunMTU: Int = 1420
    /// The overlay address the TUN device carries, once configured.
    var tunAddress: UInt32?
    var lastDataPlaneReport: Instant = .zero
    var lastRoutes: [RouteEntry] = []
    /// The incarnation each tunnel peer had when its sessions were made (restart detection).
    var tunnelIncarnations: [NodeID: UInt64] = [:]
    /// Every Prometheus family and the counts `weft status` shows (NodeMetrics.swift).
    var metrics = NodeMetrics()

    var joined = false
    var seedProblems: [String: String] = [:]
    var seeds: [Endpoint] = []
    var nextSeedRetry: ContinuousClock.Instant?
    var seedRetryDelay: Duration = .seconds(2)
    var plannedWake: Instant?
    var sleeper: Task<Void, Never>?
    var stopped = false

    // IPAM (see NodeRuntime+IPAM.swift)
    var ipam: IPAM.Instance
    var waitingAllocations: [String: [CheckedContinuation<Result<UInt32, IPAM.AllocationError>, Never>]] = [:]
    var ipamWarnings: [String: String] = [:]
    /// Members whose separately created ring was already logged (logged once, not per gossip round).
    var loggedMismatches: Set<String> = []
    var lastIPAMTick: Instant = .zero

    init(
        instance: Membership.Instance, ipam: IPAM.Instance, identity: Identity, settings: Membership.Settings,
        store: NodeStore, sealer: GossipSealer, logger: Logger, group: any EventLoopGroup
    ) {
        self.instance = instance
        self.ipam = ipam
        self.identity = identity
        self.settings = settings
        self.store = store
        self.sealer = sealer
        self.logger = logger
        self.group = group
        let now = clock.now
        // Instants start at 1 s so that `.zero` never means "now".
        self.origin = now - .seconds(1)
        self.startedAt = now
    }

    var now: Instant { Instant(nanoseconds: (clock.now - origin).nanoseconds) }

    func attach(dataPlane: DataPlane, tunnel: Tunnel.Instance<SodiumTunnelSuite>?, tunMTU: Int) {
        self.dataPlane = dataPlane
        self.tunnel = tunnel
        self.tunMTU = tunMTU
        for m in instance.members where m.id != identity.keyPair.nodeID { syncTunnelPeer(m) }
        updateRoutes()
        configureOverlayIfNeeded()
    }

    // MARK: - Inputs

    /// A UDP datagram arrived on the gossip port.
    func onDatagram(_ bytes: [UInt8], from: Endpoint) {
        guard !stopped else { return }
        metrics.datagram(.in)
        if bytes.count >= 2, bytes[0] == GossipEnvelope.version, (4...7).contains(bytes[1]) {
            onTunnelDatagram(bytes, from: from)
            return
        }
        switch GossipEnvelope.open(bytes, expecting: .datagram, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
        case .success(let plain):
            markHeard(from)
            metrics.membershipMessage(plain, direction: .in)
            execute(instance.onDatagram(plain, from: from, now: now))
        }
    }

    /// A framed request arrived on the TCP port: a push-pull request (kind 2) or a point-to-point
    /// IPAM message (kind 16). Returns the sealed reply, or nil to close without answering.
    func onTCPRequest(_ bytes: [UInt8], from: Endpoint?) -> [UInt8]? {
        guard !stopped else { return nil }
        if bytes.count >= 2, bytes[1] == GossipEnvelope.Kind.ipam.rawValue {
            onIPAMFrame(bytes, from: from)
            return nil
        }
        metrics.message(.pushPull, direction: .in)
        switch GossipEnvelope.open(bytes, expecting: .pushPullRequest, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
            return nil
        case .success(let plain):
            let source = from ?? identity.advertise
            let (reply, directives) = instance.onPushPull(plain, from: source, appState: ipamAppState(), now: now)
            execute(directives)
            guard let reply else { return nil }
            return GossipEnvelope.seal(reply, kind: .pushPullReply, with: sealer)
        }
    }

    /// The timer loop: calls `onTick` whenever the instance asks, and retries seeds until joined.
    func runTimers() async {
        while !stopped {
            let t = now
            if instance.nextWakeup <= t {
                execute(instance.onTick(now: t))
                continue
            }
            if let w = tunnel?.nextWakeup, w <= t {
                tickTunnel(now: t)
                continue
            }
            retrySeedsIfDue()
            tickIPAM(now: t)
            reportDataPlane(now: t)
            var wake = min(instance.nextWakeup, t + .milliseconds(500))
            if let w = tunnel?.nextWakeup { wake = min(wake, w) }
            plannedWake = wake
            let sleepFor = wake - t
            let task = Task<Void, Never> { try? await Task.sleep(for: sleepFor) }
            sleeper = task
            await task.value
            sleeper = nil
        }
    }

    // MARK: - Join and leave

    /// Contacts `endpoints` with a full-state exchange each (in parallel) and reports the outcome.
    func join(_ endpoints: [Endpoint], remember: Bool) async -> API.JoinResult {
        let targets = endpoints.filter { $0 != identity.advertise }
        if remember {
            for e in targets where !seeds.contains(e) { seeds.append(e) }
        }
        execute(instance.join(seeds: targets, now: now).filter {
            if case .pushPull = $0 { return false } else { return true }
        })
        var joinedVia: [String] = []
        var failed: [String: String] = [:]
        await withTaskGroup(of: (Endpoint, String?).self) { group in
            for target in targets {
                group.addTask { (target, await self.pushPull(with: target)) }
            }
            for await (target, problem) in group {
                if let problem { failed[target.description] = problem } else { joinedVia.append(target.description) }
            }
        }
        for (e, why) in failed { seedProblems[e] = why }
        for e in joinedVia { seedProblems[e] = nil }
        if !targets.isEmpty && joinedVia.isEmpty {
            logger.error(
                "no seed answered: check the cluster key (--cluster-key-file) and the seed addresses; retrying",
                metadata: ["event": "join-failed", "seeds": .string(failed.map { "\($0.key): \($0.value)" }.sorted().joined(separator: "; "))]
            )
        } else if !joinedVia.isEmpty {
            logger.info("joined the cluster", metadata: ["event": "joined", "via": .string(joinedVia.sorted().joined(separator: ",")), "members": .stringConvertible(instance.members.count)])
        }
        return API.JoinResult(joined: joinedVia.sorted(), failed: failed, members: instance.members.count)
    }

    /// Graceful, permanent departure: announce `left`, keep gossiping for a grace period, stop.
    func leave() async -> API.LeaveResult {
        await leaveIPAM()
        let directives = instance.leave(now: now)
        let notified = Set(directives.compactMap { d -> Endpoint? in
            if case .send(_, let to) = d { return to } else { return nil }
        }).count
        execute(directives)
        logger.notice("leaving the cluster", metadata: ["event": "leave", "notified": .stringConvertible(notified)])
        // Let the piggybacked `left` update travel for a couple of probe periods.
        let deadline = clock.now + settings.probeInterval * 2
        while clock.now < deadline {
            try? await Task.sleep(for: settings.probeInterval / 4)
            execute(instance.onTick(now: now))
        }
        return API.LeaveResult(notified: notified)
    }

    func stop() {
        stopped = true
        sleeper?.cancel()
    }

    // MARK: - Queries

    func status() -> API.Status {
        var counts: [String: Int] = [:]
        for s in Membership.MemberState.allCases { counts[s.description] = 0 }
        for m in instance.members { counts[m.state.description, default: 0] += 1 }
        var warnings: [String] = []
        if !seeds.isEmpty && !joined {
            let detail = seedProblems.map { "\($0.key): \($0.value)" }.sorted().joined(separator: "; ")
            warnings.append("no seed answered yet (\(detail.isEmpty ? "waiting" : detail)): check the cluster key and the seed addresses")
        }
        warnings += ipamWarnings.keys.sorted().compactMap { ipamWarnings[$0] }
        if !ipam.conflicts.isEmpty {
            warnings.append("\(ipam.conflicts.count) allocation(s) are in conflict (their range was taken over while this node was away): see `weft ipam`")
        }
        let me = instance.myself
        return API.Status(
            id: me.id.hex, name: me.name, address: me.address.description, cluster: identity.clusterID,
            incarnation: me.incarnation, version: WeftVersion.current,
            uptimeSeconds: (clock.now - startedAt).seconds, members: counts,
            drops: metrics.dropCounts, messages: metrics.messageCounts, joined: joined, warnings: warnings,
            overlayAddress: ipam.overlayAddress.map { IPAM.format($0) },
            overlayMTU: tunnel == nil ? nil : tunMTU, tunName: tunnel == nil ? nil : dataPlane?.tunName
        )
    }

    /// Member id → name, for tables that show owners and peers by name.
    func memberNames() -> [NodeID: String] {
        Dictionary(instance.members.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    func members() -> [API.MemberInfo] {
        let t = now
        let me = identity.keyPair.nodeID
        return instance.members.map { m in
            API.MemberInfo(
                id: m.id.hex, name: m.name, address: m.address.description, state: m.state.description,
                incarnation: m.incarnation,
                sinceSeconds: m.stateChangedAt == .zero ? 0 : max(0, (t - m.stateChangedAt).seconds),
                isSelf: m.id == me
            )
        }
    }

    // MARK: - Directives

    func execute(_ directives: [Membership.Directive]) {
        for d in directives {
            switch d {
            case .send(let bytes, let to):
                send(bytes, to: to)
            case .pushPull(let to):
                Task { _ = await self.pushPull(with: to) }
            case .memberChanged(let m, let previous):
                memberChanged(m, previous: previous)
            case .memberRemoved(let m):
                do { try store.deleteMember(m.id) } catch {
                    logger.error("cannot delete forgotten member", metadata: ["event": "store-error", "member": .string(m.id.short), "error": "\(error)"])
                }
                logger.info("member forgotten", metadata: ["event": "member-forgotten", "member": .string(m.id.short), "memberName": .string(m.name)])
            case .persistIncarnation(let inc):
                do { try store.saveIncarnation(inc) } catch {
                    logger.error("cannot persist incarnation", metadata: ["event": "store-error", "error": "\(error)"])
                }
            case .deliver(let bytes, let from):
                onRingData(bytes, from: from, rebroadcast: true)
            case .mergeAppState(let bytes, let from):
                if !bytes.isEmpty { onRingData(bytes, from: from, rebroadcast: false) }
            case .dropped(let reason):
                metrics.drop(membership: reason)
            case .probeRTT(let rtt):
                metrics.probeRTT(.nanoseconds(rtt.nanoseconds))
            }
        }
        if let planned = plannedWake, instance.nextWakeup < planned {
            plannedWake = nil
            sleeper?.cancel()
        }
    }

    func send(_ plaintext: [UInt8], to: Endpoint) {
        guard let dataPlane else {
            metrics.drop(reason: "unsendable")
            return
        }
        metrics.membershipMessage(plaintext, direction: .out)
        let sealed = GossipEnvelope.seal(plaintext, kind: .datagram, with: sealer)
        metrics.datagram(.out)
        dataPlane.send(sealed, to: to)
    }

    /// One full-state exchange with `target`. Returns nil on success, or why it failed.
    func pushPull(with target: Endpoint) async -> String? {
        guard let address = try? target.socketAddress() else { return "not a usable address" }
        let request = GossipEnvelope.seal(instance.makePushPull(appState: ipamAppState(), now: now), kind: .pushPullRequest, with: sealer)
        metrics.message(.pushPull, direction: .out)
        let reply: [UInt8]
        do {
            reply = try await framedExchange(
                group: group, to: address, request: request,
                maxFrame: DaemonLimits.maxPushPullFrame, timeout: .seconds(5)
            )
        } catch let e as FramedExchangeError {
            if case .closedWithoutAnswer = e {
                return "closed the connection without answering (different cluster key?)"
            }
            return e.description
        } catch {
            return Self.describe(error)
        }
        switch GossipEnvelope.open(reply, expecting: .pushPullReply, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: target)
            return "its answer could not be authenticated (different cluster key?)"
        case .success(let plain):
            markHeard(target)
            let (_, directives) = instance.onPushPull(plain, from: target, appState: ipamAppState(), now: now)
            execute(directives)
            return nil
        }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? IOError {
            switch e.errnoCode {
            case ECONNREFUSED: return "connection refused (is a node listening there?)"
            case EHOSTUNREACH, ENETUNREACH: return "unreachable"
            default: return e.description
            }
        }
        if let e = error as? ChannelError, case .connectTimeout = e { return "connect timed out" }
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first { return describe(first.error) }
            return "cannot connect"
        }
        return "\(error)"
    }

    func memberChanged(_ m: Membership.Member, previous: Membership.MemberState?) {
        let stored = StoredMember(
            id: m.id, name: m.name, address: m.address.description, publicKey: m.publicKey,
            incarnation: m.incarnation, state: m.state, updatedAt: WallClock.milliseconds()
        )
        do { try store.upsertMember(stored) } catch {
            logger.error("cannot persist member", metadata: ["event": "store-error", "member": .string(m.id.short), "error": "\(error)"])
        }
        if m.id != identity.keyPair.nodeID && m.state == .alive { joined = true }
        let level: Logger.Level = (m.state == .dead || m.state == .suspect) ? .warning : .info
        logger.log(level: level, "member \(m.state)", metadata: [
            "event": "member-\(m.state)", "member": .string(m.id.short), "memberName": .string(m.name),
            "addr": .string(m.address.description), "incarnation": .stringConvertible(m.incarnation),
            "previous": .string(previous?.description ?? "none"),
        ])
        var counts: [Membership.MemberState: Int] = [:]
        for member in instance.members { counts[member.state, default: 0] += 1 }
        metrics.members(counts)
        membersChangedForIPAM()
        if m.id != identity.keyPair.nodeID { syncTunnelPeer(m) }
    }

    func markHeard(_ from: Endpoint?) {
        guard let from else { return }
        if seeds.contains(from) { seedProblems[from.description] = nil }
    }

    func drop(_ reason: String, from: Endpoint?) {
        metrics.drop(reason: reason)
        logger.debug("dropped packet", metadata: ["event": "drop", "reason": .string(reason), "from": .string(from?.description ?? "?")])
    }

    func retrySeedsIfDue() {
        guard !seeds.isEmpty, !joined else { return }
        let t = clock.now
        guard let due = nextSeedRetry else {
            nextSeedRetry = t + seedRetryDelay
            return
        }
        guard t >= due else { return }
        seedRetryDelay = min(seedRetryDelay * 2, .seconds(30))
        nextSeedRetry = t + seedRetryDelay
        let targets = seeds
        Task { _ = await self.join(targets, remember: false) }
    }
}

/// Limits on what the daemon accepts from the network and the control socket.
enum DaemonLimits {
    /// A full-state exchange carries every member (~130 bytes each) plus application state.
    static let maxPushPullFrame = Membership.Settings.default.maxPushPullBytes + 64
}
