import Foundation
import Prometheus
import WeftAPI
import WeftCore
import WeftDataPlane

/// Every Prometheus family the node exports, in one place: name, help, type and label names
/// (`NodeMetrics.families`, listed in docs/operations.md "Metrics"), plus the small methods the
/// runtime calls to bump them. Every family is registered at start with all its known label
/// values at zero, so rates and alerts work before the first event.
///
/// Confined to the node runtime actor (like the rest of its state); the registry it writes to is
/// thread-safe and is read by the `/metrics` handler.
struct NodeMetrics {
    /// The process's registry (one node per process), served at `/metrics`.
    static let registry = PrometheusCollectorRegistry()

    enum Kind: String, Sendable { case counter, gauge, histogram }

    struct Family: Sendable {
        let name: String
        let type: Kind
        let labels: [String]
        let help: String
    }

    enum Direction: String, Sendable, CaseIterable {
        /// Received by this node (from the network; for the TUN device: read from it).
        case `in`
        /// Sent by this node (to the network; for the TUN device: written to it).
        case out
    }

    /// Control-plane message types: the membership datagram types, full-state exchanges and
    /// point-to-point IPAM messages (both over TCP).
    enum MessageType: String, Sendable, CaseIterable {
        case ping, pingReq = "ping-req", ack, nack, gossip
        case pushPull = "push-pull", ipam, unknown

        init(membership plaintext: [UInt8]) {
            guard plaintext.count >= 2, let t = Membership.MessageType(rawValue: plaintext[1]) else { self = .unknown; return }
            switch t {
            case .ping: self = .ping
            case .pingReq: self = .pingReq
            case .ack: self = .ack
            case .nack: self = .nack
            case .gossip: self = .gossip
            case .pushPullRequest, .pushPullReply: self = .pushPull
            }
        }
    }

    // MARK: - The families

    static let messages = Family(name: "weft_messages_total", type: .counter, labels: ["type", "direction"],
        help: "Control-plane messages by type (ping, ping-req, ack, nack, gossip, push-pull, ipam, unknown) and direction (in, out).")
    static let datagrams = Family(name: "weft_control_datagrams_total", type: .counter, labels: ["direction"],
        help: "UDP datagrams the node runtime received or sent itself: sealed gossip and tunnel handshakes (not the data plane's fast path).")
    static let drops = Family(name: "weft_dropped_packets_total", type: .counter, labels: ["reason"],
        help: "Control-plane packets and messages dropped, by reason (unauthenticated, malformed, tunnel-*, ipam-*, ...).")
    static let members = Family(name: "weft_members", type: .gauge, labels: ["state"],
        help: "Members by state (alive, suspect, dead, left) as this node sees them, itself included.")
    static let probeRTT = Family(name: "weft_probe_rtt_seconds", type: .histogram, labels: [],
        help: "Round-trip time of direct membership probes (ping to ack).")
    static let udpPackets = Family(name: "weft_dataplane_udp_packets_total", type: .counter, labels: ["direction"],
        help: "Datagrams received on / sent from the node's UDP socket, tunnel data and control alike.")
    static let udpBytes = Family(name: "weft_dataplane_udp_bytes_total", type: .counter, labels: ["direction"],
        help: "Bytes of the datagrams received on / sent from the node's UDP socket.")
    static let tunPackets = Family(name: "weft_dataplane_tun_packets_total", type: .counter, labels: ["direction"],
        help: "Packets read from (in) / written to (out) the TUN device.")
    static let dataPlaneDrops = Family(name: "weft_dataplane_dropped_packets_total", type: .counter, labels: ["reason"],
        help: "Packets the data plane dropped (or, for no-session, handed to the handshake queue), by reason.")
    static let peerBytes = Family(name: "weft_peer_bytes_total", type: .counter, labels: ["peer", "peer_name", "direction"],
        help: "Tunnel payload bytes received from (in) / sent to (out) each peer.")
    static let peerPackets = Family(name: "weft_peer_packets_total", type: .counter, labels: ["peer", "peer_name", "direction"],
        help: "Tunnel packets received from (in) / sent to (out) each peer.")
    static let peerHandshakeAge = Family(name: "weft_peer_last_handshake_age_seconds", type: .gauge, labels: ["peer", "peer_name"],
        help: "Seconds since the last completed handshake with each peer (absent until the first one).")
    static let peers = Family(name: "weft_peers", type: .gauge, labels: ["state"],
        help: "Tunnel peers by state (idle, handshaking, established, rekeying, failing).")
    static let ipamAddresses = Family(name: "weft_ipam_addresses", type: .gauge, labels: ["scope", "state"],
        help: "Overlay addresses by state (free, used) in this node's ranges (scope=node) and in the whole ring as last gossiped (scope=cluster).")
    static let ipamAllocations = Family(name: "weft_ipam_allocations", type: .gauge, labels: ["state"],
        help: "This node's allocations: held, pending (waiting for space from a peer), conflict (range taken over while away).")
    static let buildInfo = Family(name: "weft_build_info", type: .gauge, labels: ["version"],
        help: "Always 1; the version label is the weft build.")
    static let startTime = Family(name: "weft_start_time_seconds", type: .gauge, labels: [],
        help: "Unix time at which this node started.")

    static let dataPlaneInfo = Family(name: "weft_data_plane_info", type: .gauge, labels: ["mode"],
        help: "Always 1; the mode label is the data plane: encrypted, or vxlan (unencrypted).")
    static let vxlanBytes = Family(name: "weft_vxlan_device_bytes_total", type: .counter, labels: ["direction"],
        help: "Bytes the kernel's VXLAN device received (in) / sent (out), with --data-plane vxlan.")
    static let vxlanPackets = Family(name: "weft_vxlan_device_packets_total", type: .counter, labels: ["direction"],
        help: "Packets the kernel's VXLAN device received (in) / sent (out), with --data-plane vxlan.")

    static let signatures = Family(name: "weft_signatures_total", type: .counter, labels: ["claim", "op"],
        help: "Claim authentication work by claim (member: Ed25519-signed membership claims; ipam-frame: point-to-point IPAM frames, tagged with a MAC under a pair key) and op (sign, verify; cached: a member claim already verified; pair-key: an IPAM pair key derived, one X25519).")

    static let families: [Family] = [
        messages, datagrams, drops, members, probeRTT, signatures, udpPackets, udpBytes, tunPackets, dataPlaneDrops,
        peerBytes, peerPackets, peerHandshakeAge, peers, ipamAddresses, ipamAllocations, buildInfo, startTime,
        dataPlaneInfo, vxlanBytes, vxlanPackets,
    ]

    /// Control-plane drop reasons known in advance (created at zero); others appear when they happen.
    static let knownDropReasons: [String] =
        ["short-packet", "unsupported-envelope-version", "unexpected-kind", "unauthenticated"]
        + Membership.DropReason.allCases.map(NodeMetrics.label)
        + ["unsendable", "malformed-ipam", "ipam-rejected", "ipam-unknown-peer", "ipam-send-queue-full", "ipam-send-expired", "ipam-unknown-sender", "ipam-bad-signature", "ipam-bad-key", "ipam-unsupported-frame-version", "ipam-sender-mismatch", "tunnel-disabled", "tunnel-bad-member-key"]
        + ["storage-error", "dns-records-malformed", "replayed", "replay-too-old", "frame-length-mismatch"]
        + SenderReplayGuard.Refusal.allCases.map { "ipam-" + $0.rawValue }  // Node.Instance.onIPAMFrame
        + [NodeRuntime.notStarted]  // inputs that arrived while the node was still starting
        + Node.Eviction.dropReasons  // eviction records refused, inputs of or to an evicted node
        + ["malformed-probe"]  // `weft doctor`'s probes and operator frames (NodeRuntime+Doctor.swift)
        + TCPRefusal.allCases.map(\.rawValue)
        + ([.unknownPeer, .unknownReceiverIndex, .badMAC1, .rateLimited, .handshakeFailed, .replayedInitiation,
            .initiationCollision, .noEndpoint, .sessionExpired, .counterExhausted, .authenticationFailed,
            .replayedPacket, .queueOverflow, .packetTooLarge, .sessionHandedOff, .badCookieReply] as [Tunnel.DropReason]).map { "tunnel-" + $0.name }

    /// Families whose series exist only per tunnel peer (none until there is one).
    static let peerFamilyNames: Set<String> = [peerBytes.name, peerPackets.name, peerHandshakeAge.name]

    static let peerStates = ["idle", "handshaking", "established", "rekeying", "failing"]

    // MARK: - State

    private let registry: PrometheusCollectorRegistry
    /// In-memory copies for `weft status` (`drops`, `messages`).
    private(set) var dropCounts: [String: UInt64] = [:]
    private(set) var messageCounts: [String: UInt64] = [:]
    private var counters: [String: Counter] = [:]
    private var gauges: [String: Gauge] = [:]
    private var dataPlaneSeries: String?
    private let rtt: DurationHistogram
    /// Last values seen of counters kept elsewhere (data plane, tunnels), to export their growth.
    private var lastSeen: [String: UInt64] = [:]
    private var peerSeries: [String: (counters: [Counter], handshake: Gauge?)] = [:]

    init(registry: PrometheusCollectorRegistry = NodeMetrics.registry, version: String = WeftVersion.current) {
        self.registry = registry
        rtt = registry.makeDurationHistogram(
            descriptor: Self.descriptor(Self.probeRTT),
            buckets: [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
                      .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2)]
        )
        for t in MessageType.allCases { for d in Direction.allCases { touch(Self.messages, [("type", t.rawValue), ("direction", d.rawValue)]) } }
        for d in Direction.allCases {
            touch(Self.datagrams, [("direction", d.rawValue)])
            touch(Self.udpPackets, [("direction", d.rawValue)])
            touch(Self.udpBytes, [("direction", d.rawValue)])
            touch(Self.tunPackets, [("direction", d.rawValue)])
        }
        for r in Self.knownDropReasons { touch(Self.drops, [("reason", r)]); dropCounts[r] = 0 }
        for r in DataPlaneDrop.allCases { touch(Self.dataPlaneDrops, [("reason", r.name)]) }
        signatures(member: .init(), ipamFrame: .init())  // every claim/op series at zero
        for s in Membership.MemberState.allCases { _ = gauge(Self.members, [("state", s.description)]) }
        for s in Self.peerStates { _ = gauge(Self.peers, [("state", s)]) }
        for scope in ["node", "cluster"] { for state in ["free", "used"] { _ = gauge(Self.ipamAddresses, [("scope", scope), ("state", state)]) } }
        for s in ["held", "pending", "conflict"] { _ = gauge(Self.ipamAllocations, [("state", s)]) }
        gauge(Self.buildInfo, [("version", version)]).set(to: 1)
        dataPlaneMode("encrypted")
        for d in Direction.allCases {
            touch(Self.vxlanBytes, [("direction", d.rawValue)])
            touch(Self.vxlanPackets, [("direction", d.rawValue)])
        }
        gauge(Self.startTime, []).set(Date().timeIntervalSince1970)
    }

    // MARK: - Bumps (called by the runtime)

    /// A control-plane message of `type` went `direction`.
    mutating func message(_ type: MessageType, direction: Direction) {
        messageCounts["\(type.rawValue)-\(direction.rawValue)", default: 0] &+= 1
        counter(Self.messages, [("type", type.rawValue), ("direction", direction.rawValue)]).increment()
    }

    /// A membership datagram (its plaintext decides the type) went `direction`.
    mutating func membershipMessage(_ plaintext: [UInt8], direction: Direction) {
        message(MessageType(membership: plaintext), direction: direction)
    }

    /// A UDP datagram handled by the runtime itself.
    mutating func datagram(_ direction: Direction) {
        messageCounts["udp-\(direction.rawValue)", default: 0] &+= 1
        counter(Self.datagrams, [("direction", direction.rawValue)]).increment()
    }

    mutating func drop(reason raw: String) {
        // The node passes membership reasons as their raw names (`staleAck`): one kebab-case label.
        let reason = raw.contains(where: \.isUppercase) ? Self.kebab(raw) : raw
        dropCounts[reason, default: 0] &+= 1
        counter(Self.drops, [("reason", reason)]).increment()
    }

    /// A membership drop, its reason in the same kebab-case as every other label value.
    mutating func drop(membership reason: Membership.DropReason) { drop(reason: Self.label(reason)) }

    /// `staleAck` → `stale-ack`.
    static func label(_ reason: Membership.DropReason) -> String { kebab(reason.rawValue) }

    /// `staleAck` → `stale-ack`.
    static func kebab(_ name: String) -> String {
        var out = ""
        for ch in name {
            if ch.isUppercase { out += "-" + ch.lowercased() } else { out.append(ch) }
        }
        return out
    }

    mutating func members(_ counts: [Membership.MemberState: Int]) {
        for s in Membership.MemberState.allCases { gauge(Self.members, [("state", s.description)]).set(Double(counts[s, default: 0])) }
    }

    func probeRTT(_ rtt: Duration) { self.rtt.record(rtt) }

    /// Which data plane runs: exactly one series, at 1 (a previous mode's series is removed).
    mutating func dataPlaneMode(_ mode: String) {
        if let old = dataPlaneSeries, old != mode {
            let key = Self.seriesKey(Self.dataPlaneInfo, [("mode", old)])
            if let g = gauges.removeValue(forKey: key) { registry.unregisterGauge(g) }
        }
        dataPlaneSeries = mode
        gauge(Self.dataPlaneInfo, [("mode", mode)]).set(to: 1)
    }

    /// The kernel VXLAN device's counters (their growth since the last call is added).
    mutating func vxlanDevice(rxBytes: UInt64, txBytes: UInt64, rxPackets: UInt64, txPackets: UInt64) {
        grow(Self.vxlanBytes, [("direction", "in")], to: rxBytes)
        grow(Self.vxlanBytes, [("direction", "out")], to: txBytes)
        grow(Self.vxlanPackets, [("direction", "in")], to: rxPackets)
        grow(Self.vxlanPackets, [("direction", "out")], to: txPackets)
    }

    /// The data plane's own atomic counters: their growth since the last call is added.
    mutating func dataPlane(_ c: DataPlaneCounters) {
        grow(Self.udpPackets, [("direction", "in")], to: c.udpInPackets)
        grow(Self.udpPackets, [("direction", "out")], to: c.udpOutPackets)
        grow(Self.udpBytes, [("direction", "in")], to: c.udpInBytes)
        grow(Self.udpBytes, [("direction", "out")], to: c.udpOutBytes)
        grow(Self.tunPackets, [("direction", "in")], to: c.tunIn)
        grow(Self.tunPackets, [("direction", "out")], to: c.tunOut)
        for (reason, v) in c.drops { grow(Self.dataPlaneDrops, [("reason", reason)], to: v) }
    }

    // MARK: - Refreshed at scrape time

    /// Per-peer traffic and handshake age, and peers by state; series of vanished peers are removed.
    mutating func peers(_ list: [API.PeerInfo]) {
        var byState: [String: Int] = [:]
        var present = Set<String>()
        for p in list {
            byState[p.state, default: 0] += 1
            let id = String(p.id.prefix(16))
            let key = id + "/" + p.name
            present.insert(key)
            let base = [("peer", id), ("peer_name", p.name)]
            grow(Self.peerBytes, base + [("direction", "in")], to: p.rxBytes)
            grow(Self.peerBytes, base + [("direction", "out")], to: p.txBytes)
            grow(Self.peerPackets, base + [("direction", "in")], to: p.rxPackets)
            grow(Self.peerPackets, base + [("direction", "out")], to: p.txPackets)
            var handshake = peerSeries[key]?.handshake
            if let age = p.lastHandshake {
                if handshake == nil { handshake = gauge(Self.peerHandshakeAge, base) }
                handshake?.set(age)
            }
            peerSeries[key] = (["in", "out"].flatMap { d in
                [counter(Self.peerBytes, base + [("direction", d)]), counter(Self.peerPackets, base + [("direction", d)])]
            }, handshake)
        }
        for (key, series) in peerSeries where !present.contains(key) {
            for c in series.counters { registry.unregisterCounter(c) }
            if let g = series.handshake { registry.unregisterGauge(g) }
            peerSeries[key] = nil
            // Forget the series and remembered totals too, so a returning peer starts afresh.
            let tag = "peer=\(key.split(separator: "/").first ?? ""),peer_name=\(key.split(separator: "/", maxSplits: 1).dropFirst().first ?? ""),"
            counters = counters.filter { !$0.key.contains(tag) }
            gauges = gauges.filter { !$0.key.contains(tag) && !$0.key.hasSuffix(String(tag.dropLast()) + "}") }
            lastSeen = lastSeen.filter { !$0.key.contains(tag) }
        }
        for s in Self.peerStates { gauge(Self.peers, [("state", s)]).set(Double(byState[s, default: 0])) }
    }

    /// Address space gauges from the ring as `weft ipam` shows it.
    mutating func ipam(_ info: API.IPAMInfo, me: String) {
        var nodeSize: UInt64 = 0, clusterSize: UInt64 = 0
        for r in info.ranges {
            clusterSize += UInt64(r.size)
            if r.owner == me { nodeSize += UInt64(r.size) }
        }
        gauge(Self.ipamAddresses, [("scope", "node"), ("state", "free")]).set(Double(info.ownFree))
        gauge(Self.ipamAddresses, [("scope", "node"), ("state", "used")]).set(Double(nodeSize &- min(nodeSize, info.ownFree)))
        gauge(Self.ipamAddresses, [("scope", "cluster"), ("state", "free")]).set(Double(info.clusterFree))
        gauge(Self.ipamAddresses, [("scope", "cluster"), ("state", "used")]).set(Double(clusterSize &- min(clusterSize, info.clusterFree)))
        gauge(Self.ipamAllocations, [("state", "held")]).set(Double(info.allocations.count))
        gauge(Self.ipamAllocations, [("state", "pending")]).set(Double(info.pending))
        gauge(Self.ipamAllocations, [("state", "conflict")]).set(Double(info.conflicts.count))
    }

    /// The registry's text exposition, as `/metrics` serves it.
    static func exposition() -> String { registry.emitToString() }

    // MARK: - Helpers

    static func descriptor(_ f: Family) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: f.name, unitName: "", helpText: f.help)
    }

    private static func seriesKey(_ f: Family, _ labels: [(String, String)]) -> String {
        f.name + "{" + labels.map { "\($0.0)=\($0.1)" }.joined(separator: ",") + "}"
    }

    private mutating func touch(_ f: Family, _ labels: [(String, String)]) { _ = counter(f, labels) }

    private mutating func counter(_ f: Family, _ labels: [(String, String)]) -> Counter {
        let key = Self.seriesKey(f, labels)
        if let c = counters[key] { return c }
        let c = registry.makeCounter(descriptor: Self.descriptor(f), labels: labels)
        counters[key] = c
        return c
    }

    private mutating func gauge(_ f: Family, _ labels: [(String, String)]) -> Gauge {
        let key = Self.seriesKey(f, labels)
        if let g = gauges[key] { return g }
        let g = labels.isEmpty ? registry.makeGauge(descriptor: Self.descriptor(f)) : registry.makeGauge(descriptor: Self.descriptor(f), labels: labels)
        gauges[key] = g
        return g
    }

    /// The signature counters kept by the pure node (membership claims and IPAM frames).
    mutating func signatures(member: Membership.ClaimStats, ipamFrame: Membership.ClaimStats) {
        for (claim, s) in [("member", member), ("ipam-frame", ipamFrame)] {
            grow(Self.signatures, [("claim", claim), ("op", "sign")], to: UInt64(max(0, s.signatures)))
            grow(Self.signatures, [("claim", claim), ("op", "verify")], to: UInt64(max(0, s.verifications)))
        }
        grow(Self.signatures, [("claim", "member"), ("op", "cached")], to: UInt64(max(0, member.cacheHits)))
        grow(Self.signatures, [("claim", "ipam-frame"), ("op", "pair-key")], to: UInt64(max(0, ipamFrame.pairKeys)))
    }

    /// The TCP port's refusals (kept by `TCPAdmission` itself) as drop counters.
    mutating func tcpRefusals(_ counts: [String: UInt64]) {
        for (reason, value) in counts {
            grow(Self.drops, [("reason", reason)], to: value)
            dropCounts[reason] = value
        }
    }

    /// Adds the growth of an externally kept counter; a value lower than the last one means the
    /// source restarted from zero (a new session), so all of it is growth.
    private mutating func grow(_ f: Family, _ labels: [(String, String)], to value: UInt64) {
        let key = Self.seriesKey(f, labels)
        let last = lastSeen[key] ?? 0
        let delta = value >= last ? value - last : value
        lastSeen[key] = value
        let c = counter(f, labels)
        if delta > 0 { c.increment(by: Int64(truncatingIfNeeded: delta)) }
    }
}

extension NodeRuntime {
    /// Brings the scrape-time families (peers, IPAM) up to date; called by `/metrics` before it
    /// renders the registry.
    func refreshMetrics() {
        metrics.ipam(ipamInfo(), me: identity.keyPair.nodeID.hex)
        if let tcpAdmission { metrics.tcpRefusals(tcpAdmission.refusalCounts) }
        metrics.signatures(member: node.membership.claimStats, ipamFrame: node.ipamFrameStats)
        metrics.peers(peers())
    }
}
