import NIOCore
import NIOEmbedded
import NIOPosix
import WeftCore
import WeftCrypto
import XCTest

@testable import WeftDaemon

/// Issue 9 (3): the push-pull port buffers nothing beyond a few KiB for a peer that has not
/// proven the cluster key, bounds connections, and refuses replayed hellos.
final class TCPAdmissionTests: XCTestCase {
    let key = ClusterKey.generate()
    lazy var sealer = GossipSealer(clusterKey: key)

    /// An embedded push-pull connection from 127.0.0.1:`port`, served under `admission`.
    private func served(by admission: TCPAdmission, port: Int, maxFrame: Int = 1 << 20,
                        respond: @escaping FramedRequestHandler.Responder = { _, _ in nil }) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(
            maxFrame: maxFrame, admission: admission, gate: admission.helloGate(sealer: sealer), respond: respond))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: port)).wait()
        return channel
    }

    private func framed(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + body
    }

    func testFramedEnvelopeRoundTripAndHelloChecks() {
        let plain = Array("push-pull state".utf8)
        let sealed = GossipEnvelope.seal(plain, kind: .pushPullRequest, with: sealer)
        XCTAssertEqual(sealed.count, plain.count + GossipEnvelope.helloLength + GossipSealer.overhead)
        XCTAssertEqual(sealed[0], GossipEnvelope.version2)
        XCTAssertEqual(sealed[1], GossipEnvelope.Kind.pushPullRequest.rawValue)
        guard case .success(let opened) = GossipEnvelope.open(sealed, expecting: .pushPullRequest, with: sealer) else {
            return XCTFail("a sealed frame must open")
        }
        XCTAssertEqual(opened, plain)
        let hello = Array(sealed.prefix(GossipEnvelope.helloLength))
        XCTAssertNil(GossipEnvelope.checkHello(hello, frameLength: sealed.count, with: sealer))
        XCTAssertEqual(GossipEnvelope.checkHello(hello, frameLength: sealed.count + 1, with: sealer), .lengthMismatch)
        let other = GossipSealer(clusterKey: ClusterKey.generate())
        XCTAssertEqual(GossipEnvelope.checkHello(hello, frameLength: sealed.count, with: other), .unauthenticated)
        var flipped = hello; flipped[30] ^= 1
        XCTAssertEqual(GossipEnvelope.checkHello(flipped, frameLength: sealed.count, with: sealer), .unauthenticated)
        var v1 = hello; v1[0] = 1
        XCTAssertEqual(GossipEnvelope.checkHello(v1, frameLength: sealed.count, with: sealer), .badVersion)
        // The body is bound to its hello: a body under another hello fails.
        let second = GossipEnvelope.seal(plain, kind: .pushPullRequest, with: sealer)
        let spliced = Array(second.prefix(GossipEnvelope.helloLength)) + Array(sealed.dropFirst(GossipEnvelope.helloLength))
        guard case .failure(let f) = GossipEnvelope.open(spliced, expecting: .pushPullRequest, with: sealer) else {
            return XCTFail("a spliced frame must not open")
        }
        XCTAssertEqual(f.reason, .unauthenticated)
        // Kind moved: refused.
        guard case .failure(let g) = GossipEnvelope.open(sealed, expecting: .ipam, with: sealer) else { return XCTFail() }
        XCTAssertEqual(g.reason, .wrongKind)
        // Datagrams keep version 1.
        let d = GossipEnvelope.seal(plain, kind: .datagram, with: sealer)
        XCTAssertEqual(d[0], 1)
        guard case .success(let dp) = GossipEnvelope.open(d, expecting: .datagram, with: sealer) else { return XCTFail() }
        XCTAssertEqual(dp, plain)
        // Garbage of every short length never traps.
        for n in 0..<120 {
            let junk = [UInt8](repeating: 2, count: n)
            for kind in [GossipEnvelope.Kind.datagram, .pushPullRequest, .ipam] {
                if case .success = GossipEnvelope.open(junk, expecting: kind, with: sealer) { XCTFail("junk opened") }
            }
            XCTAssertNotNil(GossipEnvelope.checkHello(Array(junk.prefix(46)), frameLength: n, with: sealer))
        }
    }

    func testUnkeyedSixteenMiBFrameIsRefusedAfterFiftyBytes() {
        let admission = TCPAdmission()
        var acc = FrameAccumulator(maxFrame: 16 << 20 + 128, gate: admission.helloGate(sealer: sealer))
        // A peer without the key announces 16 MiB and sends garbage.
        var bytes = framed([])
        bytes[0] = 0x01; bytes[1] = 0; bytes[2] = 0; bytes[3] = 0  // 16 MiB
        let junk = [UInt8](repeating: 0x02, count: 30)
        guard case .needMore = acc.append(ByteBuffer(bytes: bytes + junk)) else { return XCTFail("46 bytes are needed first") }
        let other = GossipEnvelope.seal([UInt8](repeating: 0, count: 100), kind: .pushPullRequest, with: GossipSealer(clusterKey: ClusterKey.generate()))
        guard case .refused(let why) = acc.append(ByteBuffer(bytes: Array(other.prefix(20)))) else {
            return XCTFail("the hello must be checked as soon as it is complete")
        }
        XCTAssertEqual(why, .unauthenticated)
        XCTAssertLessThanOrEqual(acc.bufferedBytes, 4 + 4096)
    }

    func testOversizedGarbageBeforeTheHelloIsBoundedToFourKiB() {
        // A gate needing more than fits in the unauthenticated budget: the budget wins.
        let gate = FrameGate(prefixBytes: 10_000) { _, _ in nil }
        var acc = FrameAccumulator(maxFrame: 1 << 24, gate: gate, unauthenticatedLimit: 4096)
        guard case .needMore = acc.append(ByteBuffer(bytes: [0, 0x10, 0, 0] + [UInt8](repeating: 0, count: 4000))) else { return XCTFail() }
        guard case .refused(.malformed) = acc.append(ByteBuffer(bytes: [UInt8](repeating: 0, count: 200))) else {
            return XCTFail("more than 4 KiB unauthenticated must be refused")
        }
    }

    func testAuthenticFrameByteByByteAndReplayedHelloRefused() {
        let admission = TCPAdmission()
        let gate = admission.helloGate(sealer: sealer)
        let sealed = GossipEnvelope.seal([UInt8](repeating: 7, count: 5000), kind: .pushPullRequest, with: sealer)
        let bytes = framed(sealed)
        var acc = FrameAccumulator(maxFrame: 1 << 20, gate: gate)
        var passedAt: Int?
        for (i, b) in bytes.enumerated() {
            switch acc.append(ByteBuffer(bytes: [b])) {
            case .needMore: continue
            case .passed(let n):
                XCTAssertEqual(n, sealed.count)
                passedAt = i
            case .frame(let body):
                XCTAssertEqual(i, bytes.count - 1)
                XCTAssertEqual(body, sealed)
            default: return XCTFail("unexpected outcome at byte \(i)")
            }
        }
        XCTAssertEqual(passedAt, 4 + GossipEnvelope.helloLength - 1, "the gate passes exactly when the hello is complete")
        // The same captured frame again: its hello is remembered.
        var again = FrameAccumulator(maxFrame: 1 << 20, gate: gate)
        guard case .refused(.replayedHello) = again.append(ByteBuffer(bytes: bytes)) else { return XCTFail("replayed hello accepted") }
        // Too short to hold a hello, or a hello announcing another length.
        var short = FrameAccumulator(maxFrame: 1 << 20, gate: gate)
        guard case .refused(.malformed) = short.append(ByteBuffer(bytes: framed([1, 2, 3]))) else { return XCTFail() }
        let fresh = GossipEnvelope.seal([1, 2, 3], kind: .ipam, with: sealer)
        var cut = FrameAccumulator(maxFrame: 1 << 20, gate: gate)
        guard case .refused(.malformed) = cut.append(ByteBuffer(bytes: framed(Array(fresh.dropLast())))) else { return XCTFail() }
    }

    /// Members behind one address (NAT, or many nodes on one loopback) joining at once: a
    /// connection that proved the key no longer counts against its source's limit of unproven
    /// connections; unproven ones from that source are still capped.
    func testAuthenticatedConnectionsDoNotCountAgainstTheirSource() {
        var limits = FrameLimits()
        limits.maxPerSource = 2
        let a = TCPAdmission(limits: limits)
        var open: [UInt64] = []
        for _ in 0..<10 {
            guard case .success(let t) = a.admit(source: "127.0.0.1") else { return XCTFail("a proven neighbour's connection was refused") }
            a.authenticated(t)
            open.append(t)
        }
        XCTAssertEqual(a.openConnections, 10)
        guard case .success(let u1) = a.admit(source: "127.0.0.1"), case .success = a.admit(source: "127.0.0.1") else { return XCTFail() }
        guard case .failure(.tooManyFromSource) = a.admit(source: "127.0.0.1") else { return XCTFail("unproven connections from one source stay capped") }
        // Releasing proven connections never frees unproven slots twice.
        for t in open { a.release(t) }
        guard case .failure(.tooManyFromSource) = a.admit(source: "127.0.0.1") else { return XCTFail("still two unproven from that source") }
        a.release(u1)
        guard case .success = a.admit(source: "127.0.0.1") else { return XCTFail("one unproven slot was freed") }
    }

    func testConnectionLimitsBudgetAndCounters() {
        var limits = FrameLimits()
        limits.maxConnections = 3
        limits.maxPerSource = 2
        limits.maxBufferedBytes = 1000
        limits.rememberedHellos = 2
        let a = TCPAdmission(limits: limits)
        func admit(_ s: String) -> UInt64? { if case .success(let t) = a.admit(source: s) { return t } else { return nil } }
        func refusal(_ s: String) -> TCPRefusal? { if case .failure(let r) = a.admit(source: s) { return r } else { return nil } }
        let t1 = admit("127.0.0.1"), t2 = admit("127.0.0.1")
        XCTAssertNotNil(t1); XCTAssertNotNil(t2)
        XCTAssertEqual(refusal("127.0.0.1"), .tooManyFromSource)
        let t3 = admit("127.0.0.2")
        XCTAssertNotNil(t3)
        a.authenticated(t2!)
        // Full: a newcomer evicts the oldest connection still without a hello (t1, then t3).
        let t4 = admit("127.0.0.3")
        XCTAssertNotNil(t4)
        XCTAssertEqual(a.openConnections, 3)
        let t5 = admit("127.0.0.1")
        XCTAssertNotNil(t5, "t1's per-source slot was freed by its eviction")
        a.release(t1!)  // the evicted connection closing later changes nothing
        XCTAssertEqual(a.openConnections, 3)
        a.authenticated(t4!); a.authenticated(t5!)
        XCTAssertEqual(refusal("127.0.0.4"), .tooManyConnections, "every slot authenticated: refuse")
        a.release(t4!)
        XCTAssertNotNil(admit("127.0.0.4"))
        XCTAssertEqual(a.openConnections, 3)
        XCTAssertTrue(a.reserve(600))
        XCTAssertFalse(a.reserve(600))
        a.unreserve(600)
        XCTAssertTrue(a.reserve(1000))
        a.unreserve(1000)
        let h = { (n: UInt64) in GossipEnvelope.HelloID(high: n, low: n) }
        XCTAssertTrue(a.firstSighting(h(1)))
        XCTAssertFalse(a.firstSighting(h(1)))
        XCTAssertTrue(a.firstSighting(h(2)))
        XCTAssertTrue(a.firstSighting(h(3)), "the oldest is forgotten when full")
        XCTAssertTrue(a.firstSighting(h(1)))
        XCTAssertEqual(a.refusalCounts["tcp-too-many-from-source"], 1)
        XCTAssertEqual(a.refusalCounts["tcp-evicted-unauthenticated"], 2)
        XCTAssertEqual(a.refusalCounts["tcp-too-many-connections"], 1)
        XCTAssertEqual(a.refusalCounts["tcp-busy"], 1)
    }

    func testHandlerClosesSilentPeerAfterHelloTimeoutAndReleasesItsSlot() throws {
        var limits = FrameLimits()
        limits.helloTimeout = .seconds(5)
        let admission = TCPAdmission(limits: limits)
        let channel = EmbeddedChannel()
        let handler = FramedRequestHandler(maxFrame: 1 << 20, admission: admission, gate: admission.helloGate(sealer: sealer)) { _, _ in nil }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertEqual(admission.openConnections, 1)
        try channel.writeInbound(ByteBuffer(bytes: [0, 0x10, 0, 0, 1, 2]))
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        XCTAssertTrue(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        XCTAssertFalse(channel.isActive, "a peer that does not finish its hello in 5 s is closed")
        XCTAssertEqual(admission.openConnections, 0)
        XCTAssertEqual(admission.refusalCounts["tcp-hello-timeout"], 1)
    }

    func testHandlerRefusesUnkeyedFrameAndClosesAtOnce() throws {
        let admission = TCPAdmission()
        let channel = try served(by: admission, port: 1, maxFrame: 1 << 24) { _, _ in [1] }
        let foreign = GossipEnvelope.seal([UInt8](repeating: 1, count: 64), kind: .pushPullRequest,
                                          with: GossipSealer(clusterKey: ClusterKey.generate()))
        try channel.writeInbound(ByteBuffer(bytes: framed(foreign)))
        XCTAssertFalse(channel.isActive)
        XCTAssertNil(try channel.readOutbound(as: ByteBuffer.self), "refused silently: no busy marker, no answer")
        XCTAssertEqual(admission.refusalCounts["tcp-unauthenticated"], 1)
        XCTAssertEqual(admission.openConnections, 0)
    }

    /// A connection refused for lack of room gets `Framing.busyMarker` before the close (the
    /// asker retries soon instead of reading the silence as a key mismatch); one refused for
    /// anything the peer did gets nothing.
    func testRefusedForRoomAnswersBusyAndTheCollectorSaysSo() throws {
        var limits = FrameLimits()
        limits.maxPerSource = 1
        let admission = TCPAdmission(limits: limits)
        let first = try served(by: admission, port: 1)
        let second = try served(by: admission, port: 2)
        let out = try second.readOutbound(as: ByteBuffer.self)
        XCTAssertEqual(out.map { Array($0.readableBytesView) }, Framing.busyMarker)
        XCTAssertEqual(admission.refusalCounts["tcp-too-many-from-source"], 1)
        XCTAssertTrue(first.isActive)
        // It lingers, dropping what the asker still sends (so the asker reads the marker rather
        // than a reset), holds no connection slot, and is closed after `busyLinger`.
        XCTAssertTrue(second.isActive)
        XCTAssertEqual(admission.lingeringConnections, 1)
        XCTAssertEqual(admission.openConnections, 1)
        try second.writeInbound(ByteBuffer(bytes: [UInt8](repeating: 7, count: 5000)))
        XCTAssertNil(try second.readOutbound(as: ByteBuffer.self), "nothing more is answered")
        XCTAssertNil(try second.readInbound(as: ByteBuffer.self), "nothing is passed on")
        second.embeddedEventLoop.advanceTime(by: limits.busyLinger + .milliseconds(10))
        XCTAssertFalse(second.isActive)
        XCTAssertEqual(admission.lingeringConnections, 0)
        // With every lingering place taken, a busy refusal still answers, and closes at once.
        var tight = limits
        tight.maxLingering = 0
        let full = TCPAdmission(limits: tight)
        let holder = try served(by: full, port: 1)
        let refused = try served(by: full, port: 2)
        XCTAssertEqual(try refused.readOutbound(as: ByteBuffer.self).map { Array($0.readableBytesView) }, Framing.busyMarker)
        refused.embeddedEventLoop.run()
        XCTAssertFalse(refused.isActive)
        XCTAssertTrue(holder.isActive, "the admitted connection keeps its place")
        XCTAssertEqual(full.lingeringConnections, 0)
        // The asking side turns the marker into `.busy`, not a refused or empty reply.
        let asker = EmbeddedChannel()
        let promise = asker.eventLoop.makePromise(of: [UInt8].self)
        try asker.pipeline.syncOperations.addHandler(FramedReplyCollector(maxFrame: 1 << 24, gate: .hello(sealer: sealer), promise: promise))
        try asker.writeInbound(ByteBuffer(bytes: Framing.busyMarker))
        XCTAssertThrowsError(try promise.futureResult.wait()) { error in
            guard case FramedExchangeError.busy = error else { return XCTFail("\(error)") }
        }
        // A request of length 0 on the serving side is malformed, not "busy".
        var server = FrameAccumulator(maxFrame: 100, gate: admission.helloGate(sealer: sealer))
        guard case .refused(.malformed) = server.append(ByteBuffer(bytes: Framing.busyMarker)) else { return XCTFail() }
        // (An unkeyed frame is refused silently: testHandlerRefusesUnkeyedFrameAndClosesAtOnce.)
    }

    func testReplyGateRefusesAForeignReplyBeforeBufferingIt() throws {
        let channel = EmbeddedChannel()
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        try channel.pipeline.syncOperations.addHandler(FramedReplyCollector(maxFrame: 1 << 24, gate: .hello(sealer: sealer), promise: promise))
        let foreign = GossipEnvelope.seal([UInt8](repeating: 1, count: 10_000), kind: .pushPullReply,
                                          with: GossipSealer(clusterKey: ClusterKey.generate()))
        try channel.writeInbound(ByteBuffer(bytes: Array(framed(foreign).prefix(60))))
        XCTAssertThrowsError(try promise.futureResult.wait()) { error in
            guard case FramedExchangeError.refusedReply(.unauthenticated) = error else { return XCTFail("\(error)") }
        }
        // Our own reply passes.
        let ok = EmbeddedChannel()
        let p2 = ok.eventLoop.makePromise(of: [UInt8].self)
        try ok.pipeline.syncOperations.addHandler(FramedReplyCollector(maxFrame: 1 << 24, gate: .hello(sealer: sealer), promise: p2))
        let mine = GossipEnvelope.seal([1, 2, 3], kind: .pushPullReply, with: sealer)
        try ok.writeInbound(ByteBuffer(bytes: framed(mine)))
        XCTAssertEqual(try p2.futureResult.wait(), mine)
    }

    // MARK: version-2 datagrams

    func testDatagramReplayIsRefusedAndSurvivesRestart() {
        let me = NodeID(high: 1, low: 2)
        let s = GossipEnvelope.DatagramSealer(sender: me, sealer: sealer, base: 1_000_000)
        let o = GossipEnvelope.DatagramOpener(sealer: sealer)
        let first = s.seal([1, 2, 3])
        XCTAssertEqual(first.count, 3 + GossipEnvelope.datagramHeaderLength + GossipSealer.overhead)
        guard case .success(let r) = o.open(first) else { return XCTFail("must open") }
        XCTAssertEqual(r.sender, me)
        XCTAssertEqual(r.kind, .datagram)
        XCTAssertEqual(r.plaintext, [1, 2, 3])
        guard case .failure(let again) = o.open(first) else { return XCTFail("a replay must be refused") }
        XCTAssertEqual(again.reason, .replayed)
        // Out of order within the window is fine.
        let a = s.seal([4]), b = s.seal([5])
        guard case .success = o.open(b), case .success = o.open(a) else { return XCTFail("reordering must be accepted") }
        // A restart with a later wall clock: new datagrams pass, the old capture still fails.
        let restarted = GossipEnvelope.DatagramSealer(sender: me, sealer: sealer, base: 2_000_000)
        guard case .success = o.open(restarted.seal([6])) else { return XCTFail() }
        guard case .failure(let old) = o.open(first) else { return XCTFail() }
        XCTAssertEqual(old.reason, .tooOld)
        // A changed counter or sender fails authentication, and does not move the window.
        var forged = restarted.seal([7]); forged[25] ^= 1
        guard case .failure(let f) = o.open(forged) else { return XCTFail() }
        XCTAssertEqual(f.reason, .unauthenticated)
        // Garbage never traps.
        for n in 0..<80 { if case .success = o.open([UInt8](repeating: 2, count: n)) { XCTFail() } }
    }

    /// Kind 20 (an IPAM frame in a datagram) opens as kind 20, shares the sender's replay window
    /// with kind 1, cannot be turned into kind 1 (or back) by flipping the kind byte, and no
    /// other kind passes as a version-2 datagram.
    func testIPAMDatagramKindIsAuthenticatedAndSharesTheReplayWindow() {
        let me = NodeID(high: 3, low: 4)
        let s = GossipEnvelope.DatagramSealer(sender: me, sealer: sealer, base: 5_000_000)
        let o = GossipEnvelope.DatagramOpener(sealer: sealer)
        let ipam = s.seal([9, 8, 7], kind: .ipamDatagram)
        XCTAssertEqual(ipam[1], GossipEnvelope.Kind.ipamDatagram.rawValue)
        var flipped = ipam; flipped[1] = GossipEnvelope.Kind.datagram.rawValue
        guard case .failure(let f) = o.open(flipped) else { return XCTFail("a changed kind must not authenticate") }
        XCTAssertEqual(f.reason, .unauthenticated)
        guard case .success(let r) = o.open(ipam) else { return XCTFail("must open") }
        XCTAssertEqual(r.kind, .ipamDatagram)
        XCTAssertEqual(r.sender, me)
        XCTAssertEqual(r.plaintext, [9, 8, 7])
        guard case .failure(let again) = o.open(ipam) else { return XCTFail("a replay must be refused") }
        XCTAssertEqual(again.reason, .replayed)
        // One counter sequence per sender across both kinds.
        let g = s.seal([1]), i = s.seal([2], kind: .ipamDatagram)
        guard case .success = o.open(i), case .success(let gr) = o.open(g) else { return XCTFail() }
        XCTAssertEqual(gr.kind, .datagram)
        // A TCP kind asked of the sealer is sealed as a membership datagram, never as itself.
        XCTAssertEqual(s.seal([3], kind: .pushPullRequest)[1], GossipEnvelope.Kind.datagram.rawValue)
        for k in GossipEnvelope.Kind.allCases where !k.isVersion2Datagram {
            var other = s.seal([4], kind: .ipamDatagram); other[1] = k.rawValue
            guard case .failure(let w) = o.open(other) else { return XCTFail("kind \(k) must be refused") }
            XCTAssertEqual(w.reason, .wrongKind)
        }
    }

    /// Over real sockets: a seed with no room for an unproven connection answers "busy", and the
    /// asker's `framedExchange` reports `.busy` (what makes a joiner retry soon without backing
    /// off) whether or not its large request was all written when the answer came.
    func testBusyOverRealSocketsReachesTheAsker() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        addTeardownBlock { try? await group.shutdownGracefully() }  // also when the test fails
        var limits = FrameLimits.default
        limits.maxPerSource = 0  // every connection from loopback is refused for room
        let admission = TCPAdmission(limits: limits)
        let gate = admission.helloGate(sealer: sealer)
        let server = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(
                        maxFrame: 4 << 20, admission: admission, gate: gate) { _, _ in [1, 2, 3] })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress?.port ?? 0
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        // Three megabytes: more than loopback socket buffers hold before the answer comes.
        let request = GossipEnvelope.seal([UInt8](repeating: 7, count: 3 << 20), kind: .pushPullRequest, with: sealer)
        for _ in 0..<3 {
            do {
                _ = try await framedExchange(group: group, to: address, request: request, maxFrame: 4 << 20,
                                             timeout: .seconds(5), replyGate: admission.helloGate(sealer: sealer))
                XCTFail("a seed without room must not answer")
            } catch FramedExchangeError.busy {
            } catch {
                XCTFail("expected busy, got \(error)")
            }
        }
        XCTAssertEqual(admission.refusalCounts[TCPRefusal.tooManyFromSource.rawValue], 3)
        XCTAssertEqual(admission.acceptedFrames, 0, "a refused request is never read")
        try await server.close()
    }
}
