import Foundation
import Logging
import WeftAPI
import WeftCore
import WeftCrypto

/// `weft doctor` and the peers' overlay addresses (docs/operations.md, "weft doctor").
///
/// The node probes each member itself, so what is checked is the real path between the two
/// daemons' sockets:
///
/// 1. a small and a full-size UDP probe datagram (kind 19, sealed with the gossip key) from this
///    node's UDP port to the member's advertised address;
/// 2. a TCP frame (kind 17, sealed like every TCP frame) to the member's advertised address. The
///    member answers (kind 18) after it has (a) waited up to 1 s for the two UDP probes, (b) sent
///    its own two UDP probes back to this node's advertised address, and (c) opened a TCP
///    connection back to it (an `echo` frame); the answer says which of its probes arrived, what
///    its TCP connection back found, its wall clock when the frame arrived, its TUN MTU and its
///    overlay address;
/// 3. this node then waits up to 1 s for the member's UDP probes.
///
/// So UDP and TCP are each checked in both directions, the full-size probe (TUN MTU + 32 bytes,
/// the largest tunnel datagram) shows whether packets of the TUN's MTU get through, and the clock
/// skew is the member's clock minus the midpoint of the round trip (less the member's own waiting).
enum OperatorWire {
    /// A TCP frame asks for one of these.
    enum Mode: String, Codable, Sendable {
        /// The full probe above.
        case probe
        /// Only who the member is (id, name, overlay address, MTU, clock): for `weft peers`.
        case info
        /// The member's TCP connection back: answer at once.
        case echo
        /// `weft keys`: report (and, for install/use/remove, change) the member's keyring. The
        /// request is signed by the asking member (NodeRuntime+Keys.swift).
        case keys
    }

    struct Request: Codable, Sendable {
        var mode: Mode
        /// The asking node's id (hex) and advertised address (`host:port`).
        var from: String
        var replyTo: String
        /// Nonce of the probes the asker sent; the member looks for it.
        var nonce: UInt64
        /// Nonce the member puts on its own probes back.
        var replyNonce: UInt64
        /// Size of the full-size probe the asker sent (0: none, e.g. --no-tun).
        var bigSize: Int
        /// Mode `keys`: `list`, `install`, `use` or `remove`; the key (printed form for install,
        /// id otherwise); the recipient's id; the asker's wall clock (ns); its ed25519
        /// signature (hex) over ``NodeRuntime/keysRequestMessage(_:)``.
        var keysOp: String? = nil
        var key: String? = nil
        var to: String? = nil
        var sentAt: UInt64? = nil
        var signature: String? = nil
    }

    struct Reply: Codable, Sendable {
        var id: String
        var name: String
        var incarnation: UInt64
        var overlayAddress: String?
        /// The TUN's MTU; nil with --no-tun.
        var tunMTU: Int?
        /// Wall clock (ns since 1970) when the frame arrived, and how long the member took.
        var wallNanoseconds: UInt64
        var handledNanoseconds: UInt64
        var udpSmall: Bool
        var udpBig: Bool
        /// Nil: the TCP connection back worked; else why not.
        var tcpBack: String?
        var version: String
        /// Mode `keys`: the member's key ids (primary first) after the request, why it refused
        /// the request, whether its keyring changed.
        var keys: [String]? = nil
        var keysProblem: String? = nil
        var keysChanged: Bool? = nil
    }

    static let maxFrame = 16 * 1024
    /// Size of the small probe datagram.
    static let smallProbe = 64
}

/// What the runtime remembers for the operator: probes received, datagrams that failed to
/// open by source, what members said about themselves. Bounded.
struct OperatorState: Sendable {
    struct Seen: Sendable { var small = false; var big = false; var at: Instant }
    struct Failures: Sendable { var count: UInt64; var first: Instant; var last: Instant }
    struct PeerSelf: Sendable { var incarnation: UInt64; var overlayAddress: String?; var at: Instant }

    var probes: [UInt64: Seen] = [:]
    /// Datagrams that failed to open (`unauthenticated`, other key or garbage) by source `host:port`.
    var unauthenticated: [String: Failures] = [:]
    var peers: [NodeID: PeerSelf] = [:]

    static let maxProbes = 1024
    static let maxSources = 256

    mutating func sawProbe(nonce: UInt64, big: Bool, at: Instant) {
        if probes.count >= Self.maxProbes, probes[nonce] == nil {
            let old = probes.filter { at - $0.value.at > .seconds(30) }.map(\.key)
            if old.isEmpty { probes.removeAll() } else { for k in old { probes[k] = nil } }
        }
        var s = probes[nonce] ?? Seen(at: at)
        if big { s.big = true } else { s.small = true }
        s.at = at
        probes[nonce] = s
    }

    mutating func dropped(_ reason: String, from: Endpoint?, at: Instant) {
        guard reason == GossipEnvelope.OpenFailure.unauthenticated.rawValue, let from else { return }
        let key = from.description
        if var f = unauthenticated[key] {
            f.count &+= 1; f.last = at
            unauthenticated[key] = f
            return
        }
        if unauthenticated.count >= Self.maxSources, let oldest = unauthenticated.min(by: { $0.value.last < $1.value.last })?.key {
            unauthenticated[oldest] = nil
        }
        unauthenticated[key] = Failures(count: 1, first: at, last: at)
    }
}

extension NodeRuntime {
    /// Is this TCP frame one of ours (kind 17)?
    static func isOperatorFrame(_ bytes: [UInt8]) -> Bool {
        bytes.count >= 2 && bytes[0] == GossipEnvelope.version2 && bytes[1] == GossipEnvelope.Kind.operatorRequest.rawValue
    }

    /// A UDP probe (kind 19) arrived.
    func onOperatorProbe(_ bytes: [UInt8], from: Endpoint) {
        switch GossipEnvelope.open(bytes, expecting: .operatorProbe, with: sealer) {
        case .failure(let f): drop(f.reason.rawValue, from: from)
        case .success(let plain):
            var r = ByteReader(plain)
            guard let nonce = try? r.u64("nonce"), let big = try? r.u8("size class") else {
                drop("malformed-probe", from: from)
                return
            }
            operatorState.sawProbe(nonce: nonce, big: big == 1, at: now)
        }
    }

    /// A TCP frame of kind 17: answer it (kind 18), or nil to close.
    func onOperatorFrame(_ bytes: [UInt8], from: Endpoint?) async -> [UInt8]? {
        guard !stopped else { return nil }
        guard serving else {
            metrics.drop(reason: Self.notStarted)
            return nil
        }
        let arrived = WallClock.nanoseconds()
        let started = clock.now
        let request: OperatorWire.Request
        switch GossipEnvelope.open(bytes, expecting: .operatorRequest, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: from)
            return nil
        case .success(let plain):
            guard let r = try? JSONDecoder().decode(OperatorWire.Request.self, from: Data(plain)) else {
                drop("malformed-probe", from: from)
                return nil
            }
            request = r
        }
        var udpSmall = false, udpBig = false, tcpBack: String? = nil
        var keysAnswer: (keys: [String], problem: String?, changed: Bool)?
        if request.mode == .keys {
            keysAnswer = onKeysRequest(request)
        }
        if request.mode == .probe {
            // The asker's UDP probes left before its TCP frame; give them up to 1 s.
            for _ in 0..<20 {
                if let s = operatorState.probes[request.nonce] { udpSmall = s.small; udpBig = s.big }
                if udpSmall && (udpBig || request.bigSize == 0) { break }
                try? await Task.sleep(for: .milliseconds(50))
            }
            if let back = try? resolveOperatorEndpoint(request.replyTo) {
                sendProbes(nonce: request.replyNonce, to: back)
                tcpBack = await operatorExchange(.echo, to: back, timeout: .seconds(2)).problem
            } else {
                tcpBack = "its address \(request.replyTo) is not usable"
            }
        }
        let me = node.membership.myself
        let reply = OperatorWire.Reply(
            id: me.id.hex, name: me.name, incarnation: me.incarnation,
            overlayAddress: node.ipam.overlayAddress.map { IPAM.format($0) }, tunMTU: tunnel == nil ? nil : tunMTU,
            wallNanoseconds: arrived, handledNanoseconds: UInt64(max(0, (clock.now - started).nanoseconds)),
            udpSmall: udpSmall, udpBig: udpBig, tcpBack: tcpBack, version: WeftVersion.current,
            keys: keysAnswer?.keys, keysProblem: keysAnswer?.problem, keysChanged: keysAnswer?.changed
        )
        guard let body = try? JSONEncoder().encode(reply) else { return nil }
        return GossipEnvelope.seal(Array(body), kind: .operatorReply, with: sealer)
    }

    private func resolveOperatorEndpoint(_ text: String) throws -> Endpoint {
        guard let (host, port) = Endpoint.split(text), let ip = IPAddress(host) else { throw StartupError("not an address") }
        return Endpoint(address: ip, port: port)
    }

    /// Size of the full-size probe: the largest tunnel datagram (TUN MTU + data header and tag,
    /// 32 bytes), 0 without TUN.
    var bigProbeSize: Int { tunnel == nil ? 0 : tunMTU + Tunnel.dataOverhead }

    /// The small and (with a TUN) the full-size probe to `to`, from the node's UDP socket.
    func sendProbes(nonce: UInt64, to: Endpoint) {
        guard let dataPlane else { return }
        let overhead = GossipEnvelope.headerLength + GossipSealer.overhead
        for (cls, size) in [(UInt8(0), OperatorWire.smallProbe), (UInt8(1), bigProbeSize)] where size > overhead + 9 {
            var w = ByteWriter(capacity: size)
            w.u64(nonce); w.u8(cls)
            var plain = w.bytes
            plain += [UInt8](repeating: 0, count: size - overhead - plain.count)
            dataPlane.send(GossipEnvelope.seal(plain, kind: .operatorProbe, with: sealer), to: to)
        }
    }

    /// One kind-17 exchange; the reply, or why there is none.
    func operatorExchange(_ mode: OperatorWire.Mode, to target: Endpoint, nonce: UInt64 = 0, replyNonce: UInt64 = 0,
                          timeout: Duration) async -> (reply: OperatorWire.Reply?, problem: String?) {
        let request = OperatorWire.Request(mode: mode, from: identity.keyPair.nodeID.hex, replyTo: identity.advertise.description,
                                           nonce: nonce, replyNonce: replyNonce, bigSize: bigProbeSize)
        return await operatorExchange(request, to: target, timeout: timeout)
    }

    /// One kind-17 exchange with a prepared request.
    func operatorExchange(_ request: OperatorWire.Request, to target: Endpoint, timeout: Duration) async -> (reply: OperatorWire.Reply?, problem: String?) {
        guard let address = try? target.socketAddress() else { return (nil, "not a usable address") }
        guard let body = try? JSONEncoder().encode(request) else { return (nil, "cannot encode") }
        let frame = GossipEnvelope.seal(Array(body), kind: .operatorRequest, with: sealer)
        let bytes: [UInt8]
        do {
            bytes = try await framedExchange(group: group, to: address, request: frame, maxFrame: OperatorWire.maxFrame,
                                             timeout: .nanoseconds(timeout.nanoseconds), replyGate: .hello(sealer: sealer))
        } catch let e as FramedExchangeError {
            if case .closedWithoutAnswer = e { return (nil, "closed the connection without answering") }
            return (nil, e.description)
        } catch {
            return (nil, Self.describe(error))
        }
        switch GossipEnvelope.open(bytes, expecting: .operatorReply, with: sealer) {
        case .failure(let f):
            drop(f.reason.rawValue, from: target)
            return (nil, "its answer could not be authenticated (different cluster key?)")
        case .success(let plain):
            guard let reply = try? JSONDecoder().decode(OperatorWire.Reply.self, from: Data(plain)) else {
                return (nil, "its answer could not be read (different versions?)")
            }
            if let id = NodeID(hex: reply.id) {
                operatorState.peers[id] = OperatorState.PeerSelf(incarnation: reply.incarnation, overlayAddress: reply.overlayAddress, at: now)
            }
            return (reply, nil)
        }
    }

    // MARK: - Peers' overlay addresses

    /// Adds each peer's overlay address, as the peer itself reported it (cached per incarnation;
    /// peers not asked yet are asked now, in parallel, 2 s at most). With `ask: false` only the cache.
    func withOverlayAddresses(_ peers: [API.PeerInfo], ask: Bool) async -> [API.PeerInfo] {
        let members = Dictionary(node.membership.members.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        if ask {
            var stale: [Endpoint] = []
            for p in peers {
                guard let id = NodeID(hex: p.id), let m = members[id], m.state == .alive || m.state == .suspect else { continue }
                if let c = operatorState.peers[id], c.incarnation == m.incarnation { continue }
                stale.append(m.address)
            }
            await withTaskGroup(of: Void.self) { g in
                for e in stale { g.addTask { _ = await self.operatorExchange(.info, to: e, timeout: .seconds(2)) } }
            }
        }
        return peers.map { p in
            var p = p
            if let id = NodeID(hex: p.id) { p.overlayAddress = operatorState.peers[id]?.overlayAddress }
            return p
        }
    }

    // MARK: - Doctor

    func doctor() async -> API.DoctorReport {
        var checks = doctorNodeChecks()
        let me = identity.keyPair.nodeID
        let others = node.membership.members.filter { $0.id != me }
        var byMember: [NodeID: [API.DoctorCheck]] = [:]
        let live = others.filter { $0.state == .alive || $0.state == .suspect }
        async let keyAnswers = keysFanOut(.list, key: nil, to: live)
        await withTaskGroup(of: (NodeID, [API.DoctorCheck]).self) { g in
            for m in others { g.addTask { (m.id, await self.doctor(member: m)) } }
            for await (id, c) in g { byMember[id] = c }
        }
        checks.append(keyringCheck(await keyAnswers))
        for m in others.sorted(by: { ($0.name, $0.id.hex) < ($1.name, $1.id.hex) }) { checks += byMember[m.id] ?? [] }
        return API.DoctorReport(checks: checks)
    }

    /// `keys`: do the members that answered hold the same keys, with the same primary? A
    /// difference is an unfinished rotation (or a member that missed one).
    func keyringCheck(_ answers: [API.MemberKeys]) -> API.DoctorCheck {
        let mine = keyIDs
        let report = Self.keysReport(op: .list, cluster: identity.clusterID, key: nil,
                                     members: [API.MemberKeys(id: identity.keyPair.nodeID.hex, name: node.membership.myself.name, keys: mine, problem: nil, changed: false)] + answers,
                                     notAsked: [])
        let answered = report.members.filter { $0.keys != nil }
        let n = answered.count
        var differences: [String] = []
        for k in report.keys {
            if k.installedOn.count != n {
                let missing = answered.filter { !($0.keys ?? []).contains(k.id) }.map(\.name)
                differences.append("\(k.id) is missing on \(missing.joined(separator: ", "))")
            }
        }
        let primaries = Set(answered.compactMap { $0.keys?.first })
        if primaries.count > 1 {
            let by = report.keys.filter { !$0.primaryOn.isEmpty }.map { "\($0.id) on \($0.primaryOn.joined(separator: ", "))" }
            differences.append("members seal with different keys (\(by.joined(separator: "; ")))")
        }
        if !differences.isEmpty {
            return nodeCheck("keys", "warn", "the members' cluster keys differ: \(differences.joined(separator: "; "))",
                             "finish the rotation from any node: `weft keys install`, `weft keys use`, `weft keys remove` each reach every live member; `weft keys list` shows who holds what")
        }
        let primary = mine.first ?? "?"
        if mine.count > 1 {
            return nodeCheck("keys", "ok", "\(n) member\(n == 1 ? "" : "s") hold the same \(mine.count) keys and seal with \(primary): a rotation in progress (finish it with `weft keys use` / `weft keys remove`)")
        }
        return nodeCheck("keys", "ok", "\(n) member\(n == 1 ? "" : "s") hold the same cluster key \(primary)")
    }

    private func nodeCheck(_ check: String, _ status: String, _ message: String, _ hint: String = "", _ values: [String: Double]? = nil) -> API.DoctorCheck {
        let me = node.membership.myself
        return API.DoctorCheck(scope: "node", subject: me.name, subjectID: me.id.hex, check: check, status: status,
                               message: message, hint: hint, values: values)
    }

    func doctorNodeChecks() -> [API.DoctorCheck] {
        var out: [API.DoctorCheck] = []
        let t = now
        let s = status()
        let others = node.membership.members.count - 1
        // Membership.
        let alive = (s.members["alive"] ?? 1) - 1
        if others == 0 {
            out.append(nodeCheck("membership", "ok", "this node is the only member", ""))
        } else if !s.joined && alive == 0 {
            out.append(nodeCheck("membership", "fail", "none of the \(others) known members has answered since this node started",
                                 "check that the members run and that UDP and TCP to their port pass; `weft join HOST:PORT` adds one"))
        } else {
            out.append(nodeCheck("membership", "ok", "\(alive) of \(others) other members alive"))
        }
        // The node's own warnings (seeds, IPAM, storage); conflicts get their own ipam line below.
        for w in s.warnings where !w.contains("in conflict") {
            out.append(nodeCheck("warning", "warn", w, "the warning says what to check; docs/operations.md, Failure modes, has more"))
        }
        // Cluster key mismatches.
        var keyLines = 0
        for (source, f) in operatorState.unauthenticated.sorted(by: { $0.key < $1.key }) {
            let ago = (t - f.last).seconds
            let recent = ago < 120
            out.append(nodeCheck("key-mismatch", recent ? "fail" : "warn",
                                 "\(f.count) datagram\(f.count == 1 ? "" : "s") from \(source) failed to open with this cluster's key (last \(Int(ago)) s ago)",
                                 "that host runs with another cluster key, or one this cluster has removed (or sends garbage): give it this cluster's keys (copy cluster.key from a member's data dir) or stop it; compare `weft keys list` on both",
                                 ["count": Double(f.count), "lastSeconds": ago]))
            keyLines += 1
        }
        let tcpBad = s.drops["tcp-unauthenticated"] ?? 0
        if tcpBad > 0 {
            out.append(nodeCheck("key-mismatch", "warn", "\(tcpBad) TCP connection\(tcpBad == 1 ? "" : "s") did not open with a hello sealed with this cluster's key",
                                 "a host with another cluster key (or one this cluster has removed) tries to exchange state with this node (or a scanner): compare `weft keys list` on both",
                                 ["count": Double(tcpBad)]))
            keyLines += 1
        }
        if keyLines == 0 { out.append(nodeCheck("key-mismatch", "ok", "every datagram and connection opened with the cluster key")) }
        // IPAM.
        let info = ipamInfo()
        if info.subnet == nil {
            out.append(nodeCheck("ipam", others == 0 ? "warn" : "fail", "this node has no address ring yet",
                                 "it gets one from a member: check membership above, or wait a few seconds after joining"))
        } else {
            var problems = 0
            if !info.conflicts.isEmpty {
                problems += 1
                out.append(nodeCheck("ipam", "fail", "\(info.conflicts.count) allocation\(info.conflicts.count == 1 ? "" : "s") in conflict (\(info.conflicts.map(\.handle).joined(separator: ", "))): their range was taken over while this node was away",
                                     "release them (`weft release HANDLE`) and restart those containers"))
            }
            if info.pending > 0 {
                problems += 1
                out.append(nodeCheck("ipam", "warn", "\(info.pending) allocation\(info.pending == 1 ? "" : "s") waiting for address space from a peer",
                                     "check that the members are reachable (below); `weft ipam` shows who owns space"))
            }
            let size = info.ranges.reduce(UInt64(0)) { $0 + UInt64($1.size) }
            if info.clusterFree == 0 {
                problems += 1
                out.append(nodeCheck("ipam", "fail", "no free address left in \(info.subnet ?? "the subnet")", "release unused allocations, or reclaim dead members' space (`weft ipam reclaim NODE`)"))
            } else if size > 0, info.clusterFree * 20 < size {
                problems += 1
                out.append(nodeCheck("ipam", "warn", "only \(info.clusterFree) of \(size) addresses free in the cluster", "release unused allocations or reclaim dead members' space"))
            }
            let orphaned = info.ranges.filter { $0.ownerName == "?" }
            if !orphaned.isEmpty {
                problems += 1
                out.append(nodeCheck("ipam", "warn", "\(orphaned.count) range\(orphaned.count == 1 ? "" : "s") owned by nodes this node does not know",
                                     "wait for gossip; if they stay, `weft ipam reclaim` the owner once it is dead"))
            }
            if problems == 0 {
                out.append(nodeCheck("ipam", "ok", "\(info.subnet ?? ""): \(info.clusterFree) addresses free in the cluster, \(info.ownFree) in this node's ranges",
                                     "", ["clusterFree": Double(info.clusterFree), "ownFree": Double(info.ownFree)]))
            }
        }
        return out
    }

    /// The checks about one member.
    func doctor(member m: Membership.Member) async -> [API.DoctorCheck] {
        func check(_ c: String, _ status: String, _ message: String, _ hint: String = "", _ values: [String: Double]? = nil) -> API.DoctorCheck {
            API.DoctorCheck(scope: "member", subject: m.name, subjectID: m.id.hex, check: c, status: status, message: message, hint: hint, values: values)
        }
        let since = m.stateChangedAt == .zero ? 0 : Int(max(0, (now - m.stateChangedAt).seconds))
        var out: [API.DoctorCheck] = []
        switch m.state {
        case .alive: out.append(check("member-state", "ok", "alive at \(m.address)"))
        case .suspect: out.append(check("member-state", "warn", "suspect for \(since) s: it misses direct probes",
                                        "check that the host runs and that UDP port \(m.address.port) passes both ways (see udp-out/udp-in)"))
        case .dead: out.append(check("member-state", "fail", "dead for \(since) s: it has not answered probes",
                                     "if it stopped, start it again (`weft start` there); if the host is gone for good, `weft ipam reclaim \(m.name)`"))
        case .left:
            out.append(check("member-state", "ok", "left the cluster \(since) s ago: not checked"))
            return out
        }
        let port = m.address.port
        let nonce = UInt64.random(in: 1...UInt64.max), replyNonce = UInt64.random(in: 1...UInt64.max)
        sendProbes(nonce: nonce, to: m.address)
        let t0 = WallClock.nanoseconds()
        let (replyOrNil, problem) = await operatorExchange(.probe, to: m.address, nonce: nonce, replyNonce: replyNonce, timeout: .seconds(6))
        let t1 = WallClock.nanoseconds()
        guard let reply = replyOrNil else {
            let p = problem ?? "no answer"
            let hint: String
            if p.contains("refused") {
                hint = "nothing listens on TCP \(m.address): is weft running there? start it, or check its --listen/--advertise"
            } else if p.contains("without answering") || p.contains("authenticated") || p.contains("cluster key") {
                hint = "it uses another cluster key or runs an older weft without `doctor`: compare `weft status` -> cluster and version on both"
            } else {
                hint = "open TCP port \(port) to \(m.address.address) (firewall, security group) and check that the host is up"
            }
            out.append(check("tcp-out", "fail", "TCP to \(m.address): \(p)", hint))
            out.append(tunnelCheck(m, check))
            return out
        }
        let rtt = Double(t1 &- t0) / 1e6
        out.append(check("tcp-out", "ok", "TCP to \(m.address) answered in \(String(format: "%.1f", rtt)) ms (round trip with its checks)", "", ["rttMs": rtt]))
        if let back = reply.tcpBack {
            out.append(check("tcp-in", "fail", "\(m.name) cannot open TCP to this node at \(identity.advertise): \(back)",
                             "open TCP port \(identity.advertise.port) on this host's firewall, and check this node's --advertise"))
        } else {
            out.append(check("tcp-in", "ok", "\(m.name) opened TCP to this node at \(identity.advertise)"))
        }
        if reply.udpSmall {
            out.append(check("udp-out", "ok", "\(m.name) received this node's UDP probe"))
        } else {
            out.append(check("udp-out", "fail", "\(m.name) did not receive a UDP datagram from this node (to \(m.address))",
                             "allow UDP port \(port) to \(m.address.address) (host firewall, security group, NAT): gossip and tunnels need it"))
        }
        // Its probes back were sent before its TCP connection back; give the stragglers up to 1 s.
        var seen = operatorState.probes[replyNonce]
        let wantBig = reply.tunMTU != nil && bigProbeSize > 0
        for _ in 0..<20 where !(seen?.small ?? false) || (wantBig && !(seen?.big ?? false)) {
            try? await Task.sleep(for: .milliseconds(50))
            seen = operatorState.probes[replyNonce]
        }
        if seen?.small ?? false {
            out.append(check("udp-in", "ok", "this node received \(m.name)'s UDP probe"))
        } else {
            out.append(check("udp-in", "fail", "no UDP datagram from \(m.name) arrived at this node (\(identity.advertise))",
                             "allow UDP port \(identity.advertise.port) into this host (firewall, security group, NAT), and check this node's --advertise"))
        }
        // MTU.
        if tunnel == nil || reply.tunMTU == nil {
            out.append(check("mtu", "ok", tunnel == nil ? "no TUN on this node (--no-tun): nothing to compare" : "\(m.name) runs without TUN (--no-tun): nothing to compare"))
        } else if let theirs = reply.tunMTU {
            let bigOut = reply.udpBig, bigIn = seen?.big ?? false
            if reply.udpSmall && (seen?.small ?? false) && !(bigOut && bigIn) {
                let dir = !bigOut && !bigIn ? "either way" : (!bigOut ? "to \(m.name)" : "from \(m.name)")
                out.append(check("mtu", "fail", "a full-size tunnel datagram (\(bigProbeSize) bytes here, TUN MTU \(tunMTU)) does not get through \(dir); small ones do",
                                 "the path MTU is below the TUN's: set a lower --mtu on every node (path MTU - 60 for IPv4)", ["mtu": Double(tunMTU), "peerMTU": Double(theirs)]))
            } else if theirs != tunMTU {
                out.append(check("mtu", "warn", "TUN MTU \(tunMTU) here, \(theirs) on \(m.name)",
                                 "use the same --mtu on every node (the larger side's full-size packets need the path to carry them)", ["mtu": Double(tunMTU), "peerMTU": Double(theirs)]))
            } else {
                out.append(check("mtu", "ok", "TUN MTU \(tunMTU) on both; a \(bigProbeSize)-byte tunnel-sized datagram got through both ways", "", ["mtu": Double(tunMTU)]))
            }
        }
        // Clock skew: its clock at arrival against the midpoint of our round trip minus its own waiting.
        let transit = Double(t1 &- t0) - Double(reply.handledNanoseconds)
        let midpoint = Double(t0) + max(0, transit) / 2
        let skewMs = (Double(reply.wallNanoseconds) - midpoint) / 1e6
        let errorMs = max(0, transit) / 2e6
        let a = abs(skewMs)
        let values = ["skewMs": skewMs, "uncertaintyMs": errorMs]
        let text = "\(m.name)'s clock is \(String(format: "%.0f", a)) ms \(skewMs >= 0 ? "ahead of" : "behind") this node's (± \(String(format: "%.0f", errorMs)) ms)"
        if a <= 1000 + errorMs {
            out.append(check("clock", "ok", text, "", values))
        } else if a <= 300_000 {
            out.append(check("clock", "warn", text, "run NTP (chrony, systemd-timesyncd) on both hosts: logs and certificates in containers need agreeing clocks", values))
        } else {
            out.append(check("clock", "fail", text, "set the clocks and run NTP (chrony, systemd-timesyncd) on both hosts", values))
        }
        out.append(tunnelCheck(m, check))
        return out
    }

    private func tunnelCheck(_ m: Membership.Member, _ check: (String, String, String, String, [String: Double]?) -> API.DoctorCheck) -> API.DoctorCheck {
        guard tunnel != nil else { return check("tunnel", "ok", "tunnels off on this node (--no-tun)", "", nil) }
        guard let p = peers().first(where: { $0.id == m.id.hex }) else {
            return check("tunnel", m.state == .alive ? "warn" : "fail", "no tunnel peer for \(m.name)",
                         "its public key has not reached this node yet; wait for gossip, or restart it if it stays", nil)
        }
        let age = p.lastHandshake.map { "last handshake \(Int($0)) s ago" } ?? "no handshake yet"
        let values = p.lastHandshake.map { ["handshakeAgeSeconds": $0] }
        switch p.state {
        case "established":
            return check("tunnel", "ok", "established, \(age)", "", values)
        case "idle":
            return check("tunnel", "ok", "idle (\(age)): no traffic has needed it yet; it handshakes on the first packet", "", values)
        case "handshaking", "rekeying":
            return check("tunnel", "warn", "\(p.state) (\(p.detail)), \(age)", "if it stays, check udp-out/udp-in above", values)
        default:
            return check("tunnel", "fail", "\(p.state) (\(p.detail)), \(age)",
                         "handshakes get no answer: UDP port \(m.address.port) must pass both ways, and both nodes must use the same cluster key", values)
        }
    }

    // MARK: - Status page

    func statusPage() async -> API.StatusPage {
        let peers = await withOverlayAddresses(ControlService.withRanges(peers(), ipamInfo()), ask: false)
        return API.StatusPage(status: status(), members: members(), peers: peers, ipam: ipamInfo())
    }
}

extension NodeRuntime {
    /// `weft status`: the node's status with the data plane's drops added, so every drop counter
    /// (control plane, TCP admission, DNS, data plane) is in one answer.
    func fullStatus() -> API.Status {
        var s = status()
        s.dataPlaneDrops = dataPlane?.counters().drops ?? [:]
        // The resolver's queries that got no answer from it (docs/dns.md), when DNS is on.
        if let dns {
            let c = dns.counts.withLockedValue { $0 }
            for k in Self.dnsDropKeys { s.drops["dns-" + k] = c[k] ?? 0 }
        }
        return s
    }

    /// DNSService's counts that are drops: malformed or refused queries, forwards refused while
    /// too many wait, forwards no upstream answered.
    static let dnsDropKeys = ["dropped", "forward-busy", "upstream-failed"]

    /// `GET /status.json`.
    func statusPageJSON() async -> [UInt8] {
        var page = await statusPage()
        page.status = fullStatus()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(page))) ?? Array("{}".utf8)
    }
}
