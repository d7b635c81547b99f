import Foundation
import Logging
import NIOCore
import NIOPosix
import WeftCore
import WeftCrypto
import WeftDataPlane
import WeftTestKit
import XCTest

@testable import WeftDaemon

/// Issue 8 (2): the interpreter (`NodeRuntime`) behind its seams — the packet plane's twin
/// (`MemoryPacketPlane`) and the storage twin (`MemoryStorage`) — with everything else real:
/// the pure Node, sealing, tunnels with libsodium, push-pull over TCP on 127.0.0.1. No TUN, no
/// root. What it checks is the interpreter's wiring: the overlay address reaches the TUN, the
/// ring reaches the route table, a container packet without a session takes the slow path
/// through a real handshake and arrives, and with a session installed it goes the fast path.
final class NodeRuntimeTwinTests: XCTestCase {
    struct Running {
        let runtime: NodeRuntime
        let plane: MemoryPacketPlane
        let storage: MemoryStorage
        let group: MultiThreadedEventLoopGroup
        let channel: any Channel
        let tasks: [Task<Void, Never>]
        let id: NodeID
    }

    let key = ClusterKey.generate()
    let network = MemoryPacketNetwork()
    var running: [Running] = []

    override func tearDown() async throws {
        for r in running {
            await r.runtime.stop()
            r.plane.stop()
            for t in r.tasks { t.cancel() }
            try? await r.channel.close()
            try? await r.group.shutdownGracefully()
        }
        running = []
    }

    /// `beforeStart` runs once the node's TCP listener is bound and its runtime exists, before
    /// `start` attaches the data plane (the window a daemon has between binding and starting).
    func startNode(name: String, seeds: [Endpoint], clusterKey: ClusterKey? = nil,
                   beforeStart: ((NodeRuntime, Endpoint) async throws -> Void)? = nil) async throws -> Running {
        let key = clusterKey ?? self.key
        let keyPair = IdentityKeyPair.generate()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sealer = GossipSealer(clusterKey: key)
        let storage = MemoryStorage()
        let runtimeBox = RuntimeBox()
        let admission = TCPAdmission()
        let gate = admission.helloGate(sealer: sealer)
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(
                        maxFrame: DaemonLimits.maxPushPullFrame + GossipEnvelope.helloLength, admission: admission, gate: gate
                    ) { bytes, peer in
                        // As the daemon dispatches: operator frames (doctor, `weft keys`) apart.
                        if NodeRuntime.isOperatorFrame(bytes) { return await runtimeBox.runtime?.onOperatorFrame(bytes, from: Endpoint(peer)) }
                        return await runtimeBox.runtime?.onTCPRequest(bytes, from: Endpoint(peer))
                    })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = UInt16(channel.localAddress?.port ?? 0)
        let endpoint = Endpoint(address: .v4(0x7f00_0001), port: port)

        let settings = Membership.Settings.fast
        let myself = Membership.Member(id: keyPair.nodeID, name: name, address: endpoint, publicKey: keyPair.publicKey.bytes,
                                       incarnation: storage.nextIncarnation(), state: .alive)
        let start = Instant(nanoseconds: 1_000_000_000)
        let membership = Membership.Instance(myself: myself, settings: settings, seed: Sodium.randomUInt64(), now: start,
                                             identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) },
                                             signer: .ed25519(identity: keyPair))  // as the daemon signs
        var ipam = IPAM.Instance(me: keyPair.nodeID, settings: .fast, seed: Sodium.randomUInt64())
        var startup: [IPAM.Directive] = []
        if seeds.isEmpty {
            startup = ipam.createCluster(subnet: IPAM.Subnet.default, now: start)
            if let (_, d) = try? ipam.claimOverlayAddress(now: start) { startup += d }
        }
        let node = Node.Instance(membership: membership, ipam: ipam, settings: .fast, storage: storage,
                                 frameCounterBase: UInt64(Date().timeIntervalSince1970 * 1e9))
        var logger = Logger(label: "twin-\(name)")
        logger.logLevel = .error
        let runtime = NodeRuntime(
            node: node, identity: .init(keyPair: keyPair, advertise: endpoint, clusterID: key.clusterID),
            settings: settings, sealer: sealer, logger: logger, group: group
        )
        runtimeBox.runtime = runtime
        await runtime.setTCPAdmission(admission)
        await runtime.setKeyring(ClusterKeyring(primary: key), keyFile: nil)
        let plane = network.plane(for: keyPair.nodeID, at: endpoint)
        let staticKey = try XCTUnwrap(SodiumTunnelSuite.staticKeyPair(identity: keyPair))
        let tunnel = Tunnel.Instance(
            localID: keyPair.nodeID, staticKey: staticKey, presharedKey: SodiumTunnelSuite.presharedKey(clusterKey: key),
            suite: SodiumTunnelSuite(), timestampOrigin: .init(wall: WallClock.tunnelTimestamp(), instant: await runtime.now),
            rng: DeterministicRNG(seed: Sodium.randomUInt64())
        )
        try await beforeStart?(runtime, endpoint)
        try await runtime.start(dataPlane: plane, tunnel: tunnel, tunMTU: 1400, seeds: seeds, ipamStartup: startup,
                                dns: nil, dnsListen: .off, onRefused: { _ in })
        let (events, sink) = AsyncStream.makeStream(of: DataPlaneBridge.Event.self, bufferingPolicy: .bufferingNewest(4096))
        plane.start(delegate: DataPlaneBridge(sink: sink))
        let pump = Task {
            for await e in events {
                switch e {
                case .datagram(let bytes, let from): await runtime.onDatagram(bytes, from: from)
                case .noSession(let peer, let packet): await runtime.onNoSession(peer: peer, packet: packet)
                case .exhausted(let index): await runtime.onSessionExhausted(localIndex: index)
                }
            }
        }
        let timers = Task { await runtime.runTimers() }
        let r = Running(runtime: runtime, plane: plane, storage: storage, group: group, channel: channel,
                        tasks: [pump, timers], id: keyPair.nodeID)
        running.append(r)
        return r
    }

    /// Polls `check` every 50 ms for at most `seconds`.
    func eventually(_ seconds: Double, _ what: String, _ check: () async -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if await check() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        XCTFail("not within \(seconds) s: \(what)")
        throw CancellationError()
    }

    static func ipv4Packet(from src: UInt32, to dst: UInt32, payload: [UInt8]) -> [UInt8] {
        let total = 20 + payload.count
        var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 17, 0, 0]
        for a in [src, dst] { p += [UInt8(a >> 24), UInt8(a >> 16 & 0xff), UInt8(a >> 8 & 0xff), UInt8(a & 0xff)] }
        var sum: UInt32 = 0
        for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(p[i]) << 8 | UInt32(p[i + 1]) }
        while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
        let c = ~UInt16(sum)
        p[10] = UInt8(c >> 8); p[11] = UInt8(c & 0xff)
        return p + payload
    }

    func testInterpreterProgramsThePacketPlaneAndCarriesAPacketBetweenTwins() async throws {
        let a = try await startNode(name: "a", seeds: [])
        let b = try await startNode(name: "b", seeds: [a.plane.endpoint])

        try await eventually(20, "both members alive on both nodes") {
            let am = await a.runtime.members(), bm = await b.runtime.members()
            return am.count == 2 && bm.count == 2 && (am + bm).allSatisfy { $0.state == "alive" }
        }
        // The overlay address each node claimed is the one its TUN carries, with the node's MTU.
        try await eventually(20, "both TUNs configured with the claimed overlay address") {
            let sa = await a.runtime.status(), sb = await b.runtime.status()
            guard let oa = sa.overlayAddress, let ob = sb.overlayAddress,
                  let ta = a.plane.tun, let tb = b.plane.tun else { return false }
            return IPAM.format(ta.address) == oa && IPAM.format(tb.address) == ob
        }
        let aAddr = try XCTUnwrap(a.plane.tun).address, bAddr = try XCTUnwrap(b.plane.tun).address
        XCTAssertEqual(a.plane.tun?.mtu, 1400)
        XCTAssertEqual(a.plane.tun?.prefixLength, 16)
        // The route tables are the ring: each node routes the other's overlay address to it and
        // never routes its own.
        try await eventually(20, "routes to each other's overlay address") {
            RouteTable(a.plane.routes).lookup(bAddr) == b.id && RouteTable(b.plane.routes).lookup(aAddr) == a.id
        }
        XCTAssertNil(RouteTable(a.plane.routes).lookup(aAddr), "a node must not route its own overlay address to a peer")
        XCTAssertTrue(a.plane.routes.allSatisfy { $0.peer != a.id })

        // No session yet: the first packet takes the slow path (a real Noise handshake through
        // the runtimes and the twin network), is queued, sealed, opened by b and written to b's TUN.
        let first = Self.ipv4Packet(from: aAddr, to: bAddr, payload: Array("first through the slow path".utf8))
        XCTAssertEqual(a.plane.sendFromTUN(first), .slowPath(b.id))
        try await eventually(20, "the slow-path packet arrives at b's TUN") { b.plane.tunOutput.contains(first) }
        try await eventually(10, "a session to b installed on a's plane") { a.plane.sendSessionPeers.contains(b.id) }
        XCTAssertTrue(b.plane.sendSessionPeers.contains(a.id), "the responder installs its session too")

        // With sessions on both sides the twin carries the next packet directly (the fast path).
        let second = Self.ipv4Packet(from: aAddr, to: bAddr, payload: Array("second on the fast path".utf8))
        XCTAssertEqual(a.plane.sendFromTUN(second), .carried(to: b.id))
        XCTAssertEqual(b.plane.tunOutput.last, second)
        // An address no member owns is not routed (the twin, like the data plane, counts it).
        XCTAssertEqual(a.plane.sendFromTUN(Self.ipv4Packet(from: aAddr, to: 0x0a00_0001, payload: [1])), .noRoute)
        XCTAssertEqual(a.plane.counters().drops[DataPlaneDrop.noRoute.name], 1)

        // The interpreter committed what it announced: both nodes' storage twins hold the
        // other member, and a's holds its overlay claim.
        XCTAssertNotNil(a.storage.members[b.id])
        XCTAssertNotNil(b.storage.members[a.id])
    }

    /// A peer's push-pull (here: a's, to the restarted node's address it still probes) can reach
    /// a node between binding its sockets and attaching its data plane. Taken in then, the
    /// members, ring and overlay address it brings would produce routes and tunnel peers for no
    /// plane, and nothing re-announces them later: the node would sit without routes (CI saw
    /// exactly that after a kill -9 and restart under load). The runtime refuses such inputs
    /// until it has started; once started, the plane gets everything.
    func testInputsBeforeStartAreRefusedAndThePlaneGetsEverythingAfter() async throws {
        let a = try await startNode(name: "a", seeds: [])
        try await eventually(20, "a has its overlay address") { await a.runtime.status().overlayAddress != nil }
        let c = try await startNode(name: "c", seeds: [a.plane.endpoint]) { runtime, endpoint in
            let problem = await a.runtime.pushPull(with: endpoint)
            XCTAssertNotNil(problem, "a node that has not started must not answer a push-pull")
            let members = await runtime.members()
            XCTAssertEqual(members.map(\.name), ["c"], "nothing from a was taken in before start")
            let status = await runtime.status()
            XCTAssertGreaterThanOrEqual(status.drops[NodeRuntime.notStarted] ?? 0, 1, "the refused input is counted")
        }
        try await eventually(20, "c routes a's ranges to a and has a tunnel peer for it") {
            let peers = await c.runtime.peers()
            return c.plane.routes.contains { $0.peer == a.id } && peers.contains { $0.id == a.id.hex }
        }
        try await eventually(20, "c's TUN carries its overlay address") {
            guard let o = await c.runtime.status().overlayAddress, let t = c.plane.tun else { return false }
            return IPAM.format(t.address) == o
        }
    }

    func testRoutesFollowTheRingWhenAMemberLeaves() async throws {
        let a = try await startNode(name: "a", seeds: [])
        let b = try await startNode(name: "b", seeds: [a.plane.endpoint])
        try await eventually(20, "b holds space routed on a") {
            a.plane.routes.contains { $0.peer == b.id } && b.plane.routes.contains { $0.peer == a.id }
        }
        // b stops for good (a graceful leave hands its ranges to a): a's routes to b go away.
        _ = await b.runtime.leave()
        try await eventually(20, "a routes nothing to b after b left") {
            !a.plane.routes.contains { $0.peer == b.id }
        }
        let state = await a.runtime.members().first { $0.name == "b" }?.state
        XCTAssertEqual(state, "left")
    }
}

extension NodeRuntimeTwinTests {
    /// A cut link on the twin network is a failure the node detects through its real probe
    /// timers; once restored, the member refutes and is alive again on both sides.
    func testCutLinkIsDetectedAndHeals() async throws {
        let a = try await startNode(name: "a", seeds: [])
        let b = try await startNode(name: "b", seeds: [a.plane.endpoint])
        try await eventually(20, "both alive") {
            let am = await a.runtime.members()
            return am.count == 2 && am.allSatisfy { $0.state == "alive" }
        }
        network.setCut(a.plane.endpoint, b.plane.endpoint, true)
        try await eventually(30, "a no longer sees b alive across the cut") {
            await a.runtime.members().first { $0.name == "b" }?.state != "alive"
        }
        network.setCut(a.plane.endpoint, b.plane.endpoint, false)
        try await eventually(60, "b alive again on a after the heal") {
            await a.runtime.members().first { $0.name == "b" }?.state == "alive"
        }
        XCTAssertGreaterThan(a.plane.counters().drops[DataPlaneDrop.udpSendFailed.name] ?? 0, 0,
                             "datagrams into the cut are counted as unsendable")
    }
}

/// Lets the TCP handler reach the runtime created after the listener is bound.
private final class RuntimeBox: @unchecked Sendable {
    var runtime: NodeRuntime?
}
