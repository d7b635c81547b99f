import Logging
import Metrics
import NIOCore
import NIOPosix
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDataPlane
import WeftStore

/// The interpreter of the pure `Node.Instance` (docs/node.md). Every input (datagram,
/// push-pull frame, IPAM frame, timer, control request) enters through this actor, goes to the
/// node, and the returned effects are carried out here: seal and send, open TCP, program the
/// data plane, answer waiting requests, log, count. No protocol rule lives here.
///
/// Threading: NIO's event loop threads only move bytes; they forward into this actor, which
/// serializes all state changes. Sends go back out through the data plane or NIO channels,
/// which are safe from any thread.
actor NodeRuntime {
    struct Identity: Sendable {
        let keyPair: IdentityKeyPair
        let advertise: Endpoint
        let clusterID: String
    }

    var node: Node.Instance
    let identity: Identity
    let settings: Membership.Settings
    let sealer: GossipSealer
    /// Membership datagrams: version 2, with this node's id and a replay counter (docs/protocol.md).
    let datagramSealer: GossipEnvelope.DatagramSealer
    let datagramOpener: GossipEnvelope.DatagramOpener
    /// The TCP port's admission control (connection limits, hello gate), for its refusal counts.
    var tcpAdmission: TCPAdmission?
    let logger: Logger
    let group: any EventLoopGroup
    let clock = ContinuousClock()
    let origin: ContinuousClock.Instant
    let startedAt: ContinuousClock.Instant

    /// The UDP socket (gossip + tunnels) and, unless --no-tun, the TUN device: `DataPlane`,
    /// or its twin in tests (the `PacketPlane` seam).
    var dataPlane: (any PacketPlane)?
    /// Encrypted tunnels to other members; nil with --no-tun (no TUN, so nothing to carry).
    var tunnel: Tunnel.Instance<SodiumTunnelSuite>?
    /// MTU of the TUN device (underlay MTU minus the exact encapsulation overhead, or --mtu).
    var tunMTU: Int = 1420
    /// `--no-tun-offload` was not given (so an encrypted plane without offload means the kernel refused it).
    var tunOffloadAsked = true
    /// The overlay address the TUN device carries, once configured.
    var tunAddress: UInt32?
    /// The overlay address the node announced, waiting for the TUN device (attach).
    var pendingOverlay: (address: UInt32, prefixLength: Int)?
    /// Why the last attempt to put the overlay address on the TUN failed (nil: none failed).
    var overlayProblem: String?
    var lastDataPlaneReport: Instant = .zero
    /// `--data-plane vxlan`: the kernel carries the packets; fed every effect (NodeRuntime+VXLAN).
    var kernelForwarding: (any KernelForwarding)?
    var lastKernelResync: Instant = .zero
    /// Every Prometheus family and the counts `weft status` shows (NodeMetrics.swift).
    var metrics = NodeMetrics()
    /// Probes, failed-to-open sources and peers' self-reports for `weft doctor` (NodeRuntime+Doctor.swift).
    var operatorState = OperatorState()
    /// The cluster keys this node accepts (primary first) and the file that keeps them
    /// (`cluster.key`); `weft keys` changes them at run time (NodeRuntime+Keys.swift).
    var keyring: ClusterKeyring?
    var keyFile: String?
    /// Nonces of `weft keys` requests taken in the last few minutes: a replay is refused.
    var keysNoncesSeen: [UInt64: Instant] = [:]

    var plannedWake: Instant?
    var sleeper: Task<Void, Never>?
    var stopped = false
    /// True once `start` has run: the data plane, the tunnels and DNS are attached. Sockets are
    /// bound before that (a bind failure must leave the data dir as it was), so a peer's
    /// push-pull or an operator's request can arrive first; the node must not take it in then,
    /// or the routes, tunnel peers and overlay address it produces would reach no data plane
    /// and never be announced again (the vxlan and Docker restart failures in stop 17's CI).
    var serving = false
    /// The drop reason of an input refused while `serving` is false.
    static let notStarted = "not-started"
    /// Called once when the node must stop on its own (refused by the cluster): the message.
    var onRefused: (@Sendable (String) -> Void)?

    /// The resolver's zone snapshot and forwarding (nil with --dns-listen off).
    var dns: DNSService?
    var dnsListen: NodeOptions.DNSListen = .off
    /// Where the resolver listens, once bound; channels to close at stop.
    var dnsAddress: Endpoint?
    var dnsChannels: [any Channel] = []
    var dnsProblem: String?

    /// Outgoing IPAM frames, bounded (one connection per peer, 32 in all; `Outbox`).
    var ipamOutbox = Outbox<(bytes: [UInt8], address: SocketAddress)>()
    /// Control requests waiting for a pending allocation, by handle.
    var waitingAllocations: [String: [CheckedContinuation<Result<UInt32, IPAM.AllocationError>, Never>]] = [:]

    init(node: Node.Instance, identity: Identity, settings: Membership.Settings, sealer: GossipSealer,
         logger: Logger, group: any EventLoopGroup) {
        self.node = node
        self.identity = identity
        self.settings = settings
        self.sealer = sealer
        self.datagramSealer = GossipEnvelope.DatagramSealer(sender: identity.keyPair.nodeID, sealer: sealer, base: WallClock.nanoseconds())
        self.datagramOpener = GossipEnvelope.DatagramOpener(sealer: sealer)
        self.logger = logger
        self.group = group
        let now = clock.now
        // Instants start at 1 s so that `.zero` never means "now".
        self.origin = now - .seconds(1)
        self.startedAt = now
    }

    var now: Instant { Instant(nanoseconds: (clock.now - origin).nanoseconds) }

    /// Wires the data plane and tunnels, then starts the node: its start-up state is committed
    /// (or the start fails), tunnel peers and routes are programmed, seeds are contacted.
    func start(dataPlane: any PacketPlane, tunnel: Tunnel.Instance<SodiumTunnelSuite>?, tunMTU: Int,
               seeds: [Endpoint], ipamStartup: [IPAM.Directive], dns: DNSService?, dnsListen: NodeOptions.DNSListen,
               tunOffloadAsked: Bool = true,
               onRefused: @escaping @Sendable (String) -> Void) throws(Node.StorageFailure) {
        self.dataPlane = dataPlane
        self.tunOffloadAsked = tunOffloadAsked
        self.tunnel = tunnel
        self.tunMTU = tunMTU
        self.onRefused = onRefused
        self.dns = dns
        self.dnsListen = dns == nil ? .off : dnsListen
        if case .address(let e) = dnsListen, dns != nil { dnsAddress = e }
        perform(try node.start(seeds: seeds, ipamStartup: ipamStartup, now: now))
        dns?.update(node.zone)
        serving = true
    }

    /// Serves DNS on the overlay address's port 53 once the TUN device carries it.
    func startOverlayDNS(address: UInt32) async {
        guard let dns, dnsListen == .overlay, dnsAddress == nil else { return }
        let e = Endpoint(address: .v4(address), port: 53)
        do {
            dnsChannels = try await DNSServer.bind(e, service: dns, group: group)
            dnsAddress = e
            dnsProblem = nil
            logger.notice("DNS served", metadata: ["event": "dns-up", "address": .string(e.description), "domain": .string(node.settings.dnsDomain.description)])
        } catch {
            dnsProblem = "the cluster DNS cannot listen on \(e) (\(error)): free that port or start with --dns-listen IP:PORT"
            logger.error("cannot serve DNS", metadata: ["event": "dns-error", "address": .string(e.description), "error": "\(error)"])
        }
    }

    // MARK: - Inputs

    /// A UDP datagram arrived on the gossip port.
    func onDatagram(_ bytes: [UInt8], from: Endpoint) {
        guard !stopped else { return }
        guard serving else { return metrics.drop(reason: Self.notStarted) }
        metrics.datagram(.in)
        if bytes.count >= 2, bytes[0] == GossipEnvelope.version, (4...7).contains(bytes[1]) {
            onTunnelDatagram(bytes, from: from)
            return
        }
        if bytes.count >= 2, bytes[0] == GossipEnvelope.version, bytes[1] == GossipEnvelope.Kind.operatorProbe.rawValue {
            onOperatorProbe(bytes, from: from)
            return
        }
        switch datagramOpener.open(bytes) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
        case .success(let (sender, kind, plain)):
            if kind == .ipamDatagram {
                metrics.message(.ipam, direction: .in)
                // The frame names its sender again (authenticated); the envelope's must be the same.
                guard Node.Instance.ipamFrameSender(plain) == sender else {
                    return drop("ipam-sender-mismatch", from: from)
                }
                perform(node.onIPAMFrame(plain, now: now))
                return
            }
            metrics.membershipMessage(plain, direction: .in)
            perform(node.onGossip(plain, from: from, now: now))
        }
    }

    /// A framed request arrived on the TCP port: a push-pull request (kind 2) or a point-to-point
    /// IPAM message (kind 16). Returns the sealed reply, or nil to close without answering.
    func onTCPRequest(_ bytes: [UInt8], from: Endpoint?) -> [UInt8]? {
        guard !stopped else { return nil }
        guard serving else {
            metrics.drop(reason: Self.notStarted)
            return nil  // the peer retries; this node starts in a moment
        }
        if bytes.count >= 2, bytes[1] == GossipEnvelope.Kind.ipam.rawValue {
            metrics.message(.ipam, direction: .in)
            switch GossipEnvelope.open(bytes, expecting: .ipam, with: sealer) {
            case .failure(let f): drop(f.reason.rawValue, from: from)
            case .success(let plain): perform(node.onIPAMFrame(plain, now: now))
            }
            return nil
        }
        metrics.message(.pushPull, direction: .in)
        switch GossipEnvelope.open(bytes, expecting: .pushPullRequest, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
            return nil
        case .success(let plain):
            let (reply, effects) = node.onPushPullRequest(plain, from: from ?? identity.advertise, now: now)
            perform(effects)
            guard let reply else { return nil }
            return GossipEnvelope.seal(reply, kind: .pushPullReply, with: sealer)
        }
    }

    /// The timer loop: ticks the node whenever it asks, the tunnels whenever they ask, and
    /// reports the data plane's counters once a second.
    func runTimers() async {
        while !stopped {
            let t = now
            if node.nextWakeup <= t {
                perform(node.onTick(now: t))
                continue
            }
            if let w = tunnel?.nextWakeup, w <= t {
                tickTunnel(now: t)
                continue
            }
            reportDataPlane(now: t)
            resyncKernelForwarding(now: t)
            var wake = min(node.nextWakeup, t + .milliseconds(500))
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
        let (targets, effects) = node.join(endpoints, remember: remember, now: now)
        perform(effects)
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
        if targets.isEmpty {
            failed[identity.advertise.description] = "that is this node's own address: give another member's HOST:PORT"
        } else if !joinedVia.isEmpty {
            logger.info("joined the cluster", metadata: ["event": "joined", "via": .string(joinedVia.sorted().joined(separator: ",")), "members": .stringConvertible(node.membership.members.count)])
        }
        return API.JoinResult(joined: joinedVia.sorted(), failed: failed, members: node.membership.members.count)
    }

    /// Graceful, permanent departure: hand the ranges over, announce `left`, keep gossiping for
    /// a grace period so the news travels, then the daemon stops.
    func leave() async -> API.LeaveResult {
        let (peers, effects) = node.leave(now: now)
        let notified = Set(effects.compactMap { e -> Endpoint? in
            if case .sendGossip(_, let to) = e { return to } else { return nil }
        }).count
        perform(effects)
        for (handle, _) in waitingAllocations { resume(handle, .failure(.notInCluster)) }
        // At least one peer gets the new ring over TCP before the departure is announced widely.
        for p in peers { _ = await pushPull(with: p) }
        logger.notice("leaving the cluster", metadata: ["event": "leave", "notified": .stringConvertible(notified)])
        let deadline = clock.now + settings.probeInterval * 2
        while clock.now < deadline {
            try? await Task.sleep(for: settings.probeInterval / 4)
            perform(node.onTick(now: now))
        }
        return API.LeaveResult(notified: notified)
    }

    func stop() {
        stopped = true
        sleeper?.cancel()
        for c in dnsChannels { c.close(promise: nil) }
        dnsChannels = []
        kernelForwarding?.stop()
        kernelForwarding = nil
    }

    // MARK: - Queries

    func setTCPAdmission(_ a: TCPAdmission) { tcpAdmission = a }

    func status() -> API.Status {
        if let tcpAdmission { metrics.tcpRefusals(tcpAdmission.refusalCounts) }
        var counts: [String: Int] = [:]
        for s in Membership.MemberState.allCases { counts[s.description] = 0 }
        for (s, n) in node.memberCounts { counts[s.description] = n }
        let me = node.membership.myself
        let evictedBy: API.EvictionInfo? = node.evictedBy.map { evictionInfo($0) }
        let evictedMembers: [API.EvictionInfo] = node.evictedMembers.map { evictionInfo($0) }
        let overlayMTU: Int? = kernelForwarding?.mtu ?? (tunnel == nil ? nil : tunMTU)
        let tunName: String? = kernelForwarding?.deviceName ?? (tunnel == nil ? nil : dataPlane?.tunName)
        let planeLabel: String = kernelForwarding?.label ?? (tunnel == nil ? "none (--no-tun)" : "encrypted")
        let warnings: [String] = node.warnings + (dnsProblem.map { [$0] } ?? [])
        return API.Status(
            id: me.id.hex, name: me.name, address: me.address.description, cluster: identity.clusterID,
            incarnation: me.incarnation, version: WeftVersion.current,
            uptimeSeconds: (clock.now - startedAt).seconds, members: counts,
            drops: metrics.dropCounts, messages: metrics.messageCounts, joined: node.joined,
            warnings: warnings,
            overlayAddress: node.ipam.overlayAddress.map { IPAM.format($0) },
            overlayMTU: overlayMTU, tunName: tunName,
            dnsAddress: dnsAddress?.description, dnsDomain: dns == nil ? nil : node.settings.dnsDomain.description,
            dnsRecords: node.dns.entries.values.filter { !$0.deleted }.count,
            dataPlane: planeLabel, phase: node.phase.rawValue, evictedBy: evictedBy, evictedMembers: evictedMembers,
            tunOffload: kernelForwarding != nil || tunnel == nil ? nil : Self.tunOffloadLabel(on: dataPlane?.tunOffload ?? false, asked: tunOffloadAsked)
        )
    }

    /// `weft status`'s "tun offload" row (`API.Status.tunOffload`).
    static func tunOffloadLabel(on: Bool, asked: Bool) -> String {
        on ? "on" : asked ? "off (the kernel refused it)" : "off (--no-tun-offload)"
    }

    func evictionInfo(_ e: Node.Eviction) -> API.EvictionInfo {
        let byName = e.by == node.me ? node.name : (node.membership.member(e.by)?.name ?? node.evictions.records[e.by]?.name ?? "")
        return API.EvictionInfo(id: e.subject.hex, name: e.name, by: e.by.hex, byName: byName, version: e.version)
    }

    /// `weft evict NODE [--undo]`.
    func evict(_ nodeText: String, undo: Bool) -> Result<API.EvictResult, API.ErrorBody> {
        let (result, effects) = node.evict(nodeText, undo: undo, now: now)
        perform(effects)
        switch result {
        case .success(let r):
            return .success(API.EvictResult(node: r.node.hex, name: r.name, evicted: !undo))
        case .failure(let e):
            let code: API.ErrorCode = switch e {
            case .noMatch, .notEvicted: .notFound
            case .ambiguous, .isSelf: .badRequest
            case .alreadyEvicted, .tableFull: .conflict
            case .notRunning: node.phase == .evicted ? .evicted : .notReady
            case .storage: .internal
            }
            return .failure(API.ErrorBody(code: code, message: e.description))
        }
    }

    /// Member id → name, for tables that show owners and peers by name.
    func memberNames() -> [NodeID: String] {
        Dictionary(node.membership.members.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
    }

    func members() -> [API.MemberInfo] {
        let t = now
        let me = identity.keyPair.nodeID
        return node.membership.members.map { m in
            API.MemberInfo(
                id: m.id.hex, name: m.name, address: m.address.description, state: m.state.description,
                incarnation: m.incarnation,
                sinceSeconds: m.stateChangedAt == .zero ? 0 : max(0, (t - m.stateChangedAt).seconds),
                isSelf: m.id == me
            )
        }
    }

    // MARK: - Effects

    /// Carries out the node's effects in order.
    func perform(_ effects: [Node.Effect]) {
        forwardToKernel(effects)
        for e in effects {
            switch e {
            case .sendGossip(let bytes, let to):
                send(bytes, to: to)
            case .pushPull(let to):
                Task { _ = await self.pushPull(with: to) }
            case .sendIPAM(let bytes, let to, let endpoint):
                sendIPAM(bytes, to: to, endpoint: endpoint)
            case .sendIPAMDatagram(let bytes, _, let endpoint):
                sendIPAMDatagram(bytes, to: endpoint)
            case .allocated(let handle, let address):
                resume(handle, .success(address))
            case .allocationFailed(let handle, let error):
                resume(handle, .failure(error))
            case .tunnelPeer(let change):
                apply(change)
            case .routes(let routes):
                dataPlane?.updateRoutes(routes.map { RouteEntry(start: $0.start, end: $0.end, peer: $0.peer) })
            case .overlayAddress(let address, let prefixLength):
                pendingOverlay = (address, prefixLength)
                configureOverlayIfNeeded()
            case .dropped(let reason):
                metrics.drop(reason: reason)
            case .probeRTT(let rtt):
                metrics.probeRTT(rtt)
            case .membersChanged:
                metrics.members(node.memberCounts)
            case .zoneChanged:
                dns?.update(node.zone)
            case .log(let l):
                log(l)
            case .stop(let phase, let message):
                if phase == .refused, let onRefused {
                    self.onRefused = nil
                    onRefused(message)
                }
            }
        }
        if let planned = plannedWake, node.nextWakeup < planned {
            plannedWake = nil
            sleeper?.cancel()
        }
    }

    func log(_ l: Node.Log) {
        var md: Logger.Metadata = ["event": .string(LogEvents.name(l.event))]
        for (k, v) in l.fields { md[k] = .string(v) }
        let level: Logger.Level = switch l.level {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        }
        logger.log(level: level, "\(l.message)", metadata: md)
    }

    func send(_ plaintext: [UInt8], to: Endpoint) {
        guard let dataPlane else {
            metrics.drop(reason: "unsendable")
            return
        }
        metrics.membershipMessage(plaintext, direction: .out)
        let sealed = datagramSealer.seal(plaintext)
        metrics.datagram(.out)
        dataPlane.send(sealed, to: to)
    }

    /// One full-state exchange with `target`, reported to the node. Returns nil on success, or
    /// why it failed.
    func pushPull(with target: Endpoint) async -> String? {
        let (problem, busy) = await exchange(with: target)
        if let problem { perform(node.onPushPullFailed(to: target, reason: problem, busy: busy, now: now)) }
        return problem
    }

    /// Nil on success, else why not; `busy` when the peer answered `Framing.busyMarker`.
    private func exchange(with target: Endpoint) async -> (problem: String?, busy: Bool) {
        guard let address = try? target.socketAddress() else { return ("not a usable address", false) }
        let request = GossipEnvelope.seal(node.makePushPullRequest(now: now), kind: .pushPullRequest, with: sealer)
        metrics.message(.pushPull, direction: .out)
        let reply: [UInt8]
        do {
            reply = try await framedExchange(
                group: group, to: address, request: request,
                maxFrame: DaemonLimits.maxPushPullFrame, timeout: .seconds(5), replyGate: .hello(sealer: sealer)
            )
        } catch let e as FramedExchangeError {
            if case .busy = e { return (e.description, true) }
            if case .closedWithoutAnswer = e {
                return ("closed the connection without answering: it does not accept this node's cluster key\(keyIDs.count == 1 ? "" : "s") (\(keyIDs.joined(separator: ", "))) — another cluster's, or a key the cluster has since removed (`weft keys list` on a member shows its keys; copy cluster.key from a member's data dir over this node's and restart)", false)
            }
            return (e.description, false)
        } catch {
            return (Self.describe(error), false)
        }
        switch GossipEnvelope.open(reply, expecting: .pushPullReply, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: target)
            return ("its answer could not be authenticated with this node's cluster keys (\(keyIDs.joined(separator: ", "))): compare `weft keys list` on both", false)
        case .success(let plain):
            perform(node.onPushPullReply(plain, from: target, now: now))
            return (nil, false)
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

    func drop(_ reason: String, from: Endpoint?) {
        metrics.drop(reason: reason)
        operatorState.dropped(reason, from: from, at: now)
        logger.debug("dropped packet", metadata: ["event": "drop", "reason": .string(reason), "from": .string(from?.description ?? "?")])
    }
}

/// Limits on what the daemon accepts from the network and the control socket.
enum DaemonLimits {
    /// A full-state exchange carries every member (~130 bytes each) plus application state.
    static let maxPushPullFrame = Membership.Settings.default.maxPushPullBytes + 128
}
