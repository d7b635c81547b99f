import Foundation
import NIOCore
import NIOPosix
import WeftCore
import WeftCrypto

/// Length-prefixed frames (u32 big-endian length, then the bytes), used on the push-pull TCP
/// port and on the control socket. One request and one reply per connection.
enum Framing {
    /// What the push-pull port sends, instead of closing silently, when it has no room for a
    /// connection (`TCPRefusal.isBusy`): an empty frame, the 4 bytes of length 0. No reply is
    /// ever that short (every reply starts with a 46-byte hello), so it cannot be mistaken for one. It is
    /// not authenticated — it cannot be, the connection was refused before its hello — so it
    /// means no more than a reset would: the asker tries again soon rather than reading it as
    /// "this node does not accept my key".
    static let busyMarker: [UInt8] = [0, 0, 0, 0]

    static func frame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buf = allocator.buffer(capacity: payload.count + 4)
        buf.writeInteger(UInt32(payload.count), endianness: .big)
        buf.writeBytes(payload)
        return buf
    }
}

/// The check a server runs on the first bytes of a frame before it buffers the rest: the
/// push-pull port requires the sealed hello (`GossipEnvelope.checkHello`); the control
/// socket (local, mode 0600) has none.
struct FrameGate: Sendable {
    /// Bytes of the frame body needed to decide (46 for the hello).
    let prefixBytes: Int
    /// Nil to accept the frame of `frameLength` bytes, or why not.
    let check: @Sendable (_ prefix: [UInt8], _ frameLength: Int) -> TCPRefusal?
}

extension FrameGate {
    /// The hello check alone (no replay memory): for replies on connections this node opened.
    static func hello(sealer: GossipSealer) -> FrameGate {
        FrameGate(prefixBytes: GossipEnvelope.helloLength) { prefix, frameLength in
            switch GossipEnvelope.checkHello(prefix, frameLength: frameLength, with: sealer) {
            case nil: return nil
            case .short?, .lengthMismatch?: return .malformed
            default: return .unauthenticated
            }
        }
    }
}

/// Why the push-pull port refused or dropped a connection. Counted by `TCPAdmission`.
enum TCPRefusal: String, Error, Sendable, CaseIterable {
    /// `FrameLimits.maxConnections` connections were already open, all past their hello.
    case tooManyConnections = "tcp-too-many-connections"
    /// `FrameLimits.maxPerSource` connections from this IP address were already open.
    case tooManyFromSource = "tcp-too-many-from-source"
    /// The hello was not complete within `FrameLimits.helloTimeout`.
    case helloTimeout = "tcp-hello-timeout"
    /// The frame was not complete within `FrameLimits.frameTimeout` (a slow sender).
    case frameTimeout = "tcp-frame-timeout"
    /// The first bytes are not a hello sealed with our cluster key (or the wrong version/kind).
    case unauthenticated = "tcp-unauthenticated"
    /// The frame is shorter than a hello plus a sealed body, or the hello's length disagrees.
    case malformed = "tcp-malformed"
    /// The announced frame length is above the port's maximum.
    case oversized = "tcp-oversized"
    /// A hello already seen (a captured frame sent again).
    case replayedHello = "tcp-replayed-hello"
    /// Authenticated frames in flight already hold `FrameLimits.maxBufferedBytes`.
    case busy = "tcp-busy"
    /// Closed to make room: the oldest connection that had not passed its hello when all
    /// `FrameLimits.maxConnections` slots were taken.
    case evicted = "tcp-evicted-unauthenticated"

    /// Refusals for lack of room, not for anything the peer did wrong: answered with
    /// `Framing.busyMarker` so a real member retries soon.
    var isBusy: Bool { self == .tooManyConnections || self == .tooManyFromSource || self == .busy }
}

/// Limits of the push-pull TCP port (issue 9): nothing unauthenticated can hold more than a
/// few KiB, connections are bounded globally and per source, and slow senders time out.
struct FrameLimits: Sendable {
    /// Open connections at once. 64: a node has at most a few push-pulls and IPAM messages in
    /// flight; joins of many nodes at once retry.
    var maxConnections = 64
    /// Connections from one IP address that have not proven the cluster key yet. 8. Once a
    /// connection passes its hello it no longer counts here (the global limits still hold): many
    /// members behind one address (NAT, or 100 nodes on one host's loopback) joining at once are
    /// not refused for sharing it, while a stranger still gets at most 8 unproven connections.
    var maxPerSource = 8
    /// Bytes buffered for a connection before its hello is checked. 4 KiB (the hello is 46).
    var unauthenticatedBytes = 4096
    /// The hello (first 50 bytes) must arrive within this. 5 s.
    var helloTimeout: TimeAmount = .seconds(5)
    /// The whole request must arrive, and the reply leave, within this. 30 s: 16 MiB at 5 Mbit/s.
    var frameTimeout: TimeAmount = .seconds(30)
    /// Bytes all connections together may buffer after their hello passed. 64 MiB: four
    /// maximal push-pull frames; a frame that does not fit is refused as `busy`.
    var maxBufferedBytes = 64 << 20
    /// Connections refused as busy that are kept open after `Framing.busyMarker`, reading and
    /// discarding what the asker is still sending, so that the marker is read rather than lost
    /// to a reset (closing a socket with unread request bytes resets it, and the asker's write
    /// then fails before it reads the marker). 64 at once, each at most `busyLinger`; beyond
    /// that a busy refusal closes at once, as any other refusal does.
    var maxLingering = 64
    var busyLinger: TimeAmount = .seconds(2)
    /// Recent hello nonces remembered to refuse a replayed hello. 16,384 (about 0.5 MiB).
    var rememberedHellos = 16_384

    static let `default` = FrameLimits()
}

/// Shared state of one TCP port: open connections per source, bytes in flight, hellos seen
/// and refusal counters. Thread-safe (a lock; every operation is O(1) or O(maxConnections)).
///
/// When all `maxConnections` slots are taken, a new connection evicts the oldest one that has
/// not yet passed its hello (counted as `evicted`), so peers that never prove the key cannot
/// lock real members out; only when every slot is authenticated is the newcomer refused.
final class TCPAdmission: @unchecked Sendable {
    let limits: FrameLimits
    private let lock = NSLock()
    private struct Slot {
        var source: String?
        var channel: (any Channel)?
        var authenticated: Bool
        /// Still counted in `perSource` (until the hello passes or the slot goes).
        var countsAgainstSource = true
    }
    private var slots: [UInt64: Slot] = [:]
    private var nextTicket: UInt64 = 0
    private var perSource: [String: Int] = [:]
    private var buffered = 0
    private var seenHellos: Set<GossipEnvelope.HelloID> = []
    private var helloOrder: [GossipEnvelope.HelloID] = []
    private var helloNext = 0
    private var refusals: [TCPRefusal: UInt64] = [:]
    private var accepted: UInt64 = 0
    private var lingering = 0

    init(limits: FrameLimits = .default) { self.limits = limits }

    /// Admits a new connection from `source` (an IP address; nil for Unix sockets) and returns
    /// its ticket, or refuses. `channel` is closed if the connection is evicted later.
    func admit(source: String?, channel: (any Channel)? = nil) -> Result<UInt64, TCPRefusal> {
        var victim: (any Channel)?
        let result: Result<UInt64, TCPRefusal> = lock.withLock {
            if let source, perSource[source, default: 0] >= limits.maxPerSource {
                refusals[.tooManyFromSource, default: 0] += 1
                return .failure(.tooManyFromSource)
            }
            if slots.count >= limits.maxConnections {
                // Tickets grow, so the smallest unauthenticated ticket is the oldest such slot.
                guard let oldest = slots.filter({ !$0.value.authenticated }).keys.min() else {
                    refusals[.tooManyConnections, default: 0] += 1
                    return .failure(.tooManyConnections)
                }
                victim = slots[oldest]?.channel
                removeSlot(oldest)
                refusals[.evicted, default: 0] += 1
            }
            nextTicket += 1
            slots[nextTicket] = Slot(source: source, channel: channel, authenticated: false)
            if let source { perSource[source, default: 0] += 1 }
            return .success(nextTicket)
        }
        victim?.close(promise: nil)
        return result
    }

    private func removeSlot(_ ticket: UInt64) {
        guard let slot = slots.removeValue(forKey: ticket) else { return }
        if let source = slot.source, slot.countsAgainstSource {
            let n = perSource[source, default: 1] - 1
            perSource[source] = n > 0 ? n : nil
        }
    }

    /// The connection passed its hello: it can no longer be evicted.
    /// It also stops counting against its source's limit of unproven connections.
    func authenticated(_ ticket: UInt64) {
        lock.withLock {
            guard var slot = slots[ticket] else { return }
            slot.authenticated = true
            if slot.countsAgainstSource, let source = slot.source {
                slot.countsAgainstSource = false
                let n = perSource[source, default: 1] - 1
                perSource[source] = n > 0 ? n : nil
            }
            slots[ticket] = slot
        }
    }

    /// A connection admitted by `admit` closed (a no-op after an eviction).
    func release(_ ticket: UInt64) { lock.withLock { removeSlot(ticket) } }

    /// Reserves `bytes` of the global buffer for an authenticated frame.
    func reserve(_ bytes: Int) -> Bool {
        lock.withLock {
            guard bytes <= limits.maxBufferedBytes - buffered else { refusals[.busy, default: 0] += 1; return false }
            buffered += bytes
            return true
        }
    }

    func unreserve(_ bytes: Int) { lock.withLock { buffered -= bytes } }

    /// Records a hello; false when it was seen recently (a replay).
    func firstSighting(_ id: GossipEnvelope.HelloID) -> Bool {
        lock.withLock {
            guard !seenHellos.contains(id) else { return false }
            let cap = max(1, limits.rememberedHellos)
            if helloOrder.count < cap {
                helloOrder.append(id)
            } else {
                seenHellos.remove(helloOrder[helloNext])
                helloOrder[helloNext] = id
                helloNext = (helloNext + 1) % cap
            }
            seenHellos.insert(id)
            return true
        }
    }

    func count(_ refusal: TCPRefusal) { lock.withLock { refusals[refusal, default: 0] += 1 } }

    /// Takes one of the `maxLingering` places for a busy-refused connection; false when full.
    func startLingering() -> Bool {
        lock.withLock {
            guard lingering < limits.maxLingering else { return false }
            lingering += 1
            return true
        }
    }
    func stopLingering() { lock.withLock { lingering = max(0, lingering - 1) } }
    var lingeringConnections: Int { lock.withLock { lingering } }
    func countAccepted() { lock.withLock { accepted += 1 } }

    /// Refusals so far by reason (`TCPRefusal.rawValue`), for the node's drop counters.
    var refusalCounts: [String: UInt64] { lock.withLock { Dictionary(uniqueKeysWithValues: refusals.map { ($0.key.rawValue, $0.value) }) } }
    /// Frames whose hello passed.
    var acceptedFrames: UInt64 { lock.withLock { accepted } }
    var openConnections: Int { lock.withLock { slots.count } }
    var bufferedBytes: Int { lock.withLock { buffered } }

    /// The gate for the push-pull port: hello authentic, not replayed, frame length consistent.
    func helloGate(sealer: GossipSealer) -> FrameGate {
        FrameGate(prefixBytes: GossipEnvelope.helloLength) { [self] prefix, frameLength in
            if let failure = GossipEnvelope.checkHello(prefix, frameLength: frameLength, with: sealer) {
                switch failure {
                case .short, .lengthMismatch: return .malformed
                default: return .unauthenticated
                }
            }
            guard let id = GossipEnvelope.helloID(prefix), firstSighting(id) else { return .replayedHello }
            return nil
        }
    }
}

/// Collects bytes until one complete frame is there. With a gate, at most
/// `unauthenticatedLimit` bytes are kept until the gate has passed the frame's first bytes.
struct FrameAccumulator {
    enum Outcome {
        case needMore
        case frame([UInt8])
        case oversized(Int)
        /// The gate refused the frame's first bytes (or they cannot hold what it needs).
        case refused(TCPRefusal)
        /// The gate passed; the frame (of this length) will now be buffered whole.
        case passed(Int)
        /// `Framing.busyMarker` (only with `acceptsBusyMarker`: a reply collector's).
        case busy
    }

    let maxFrame: Int
    let gate: FrameGate?
    let unauthenticatedLimit: Int
    /// A frame of length 0 is the peer's "busy" (`Framing.busyMarker`), not a refused frame.
    let acceptsBusyMarker: Bool
    private var buffer: ByteBuffer?
    private(set) var gatePassed = false

    init(maxFrame: Int, gate: FrameGate? = nil, unauthenticatedLimit: Int = 4096, acceptsBusyMarker: Bool = false) {
        self.maxFrame = maxFrame
        self.gate = gate
        self.unauthenticatedLimit = unauthenticatedLimit
        self.acceptsBusyMarker = acceptsBusyMarker
    }

    /// Bytes held for the current frame.
    var bufferedBytes: Int { buffer?.readableBytes ?? 0 }

    mutating func append(_ incoming: ByteBuffer) -> Outcome {
        var incoming = incoming
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        guard let buf = buffer, buf.readableBytes >= 4,
              let length32 = buf.getInteger(at: buf.readerIndex, endianness: .big, as: UInt32.self)
        else { return .needMore }
        let length = Int(length32)
        if length == 0, acceptsBusyMarker, !gatePassed { return .busy }
        if length > maxFrame { return .oversized(length) }
        var outcome = Outcome.needMore
        if let gate, !gatePassed {
            guard length >= gate.prefixBytes else { return .refused(.malformed) }
            guard buf.readableBytes >= 4 + gate.prefixBytes,
                  let prefix = buf.getBytes(at: buf.readerIndex + 4, length: gate.prefixBytes)
            else {
                if buf.readableBytes > 4 + unauthenticatedLimit { return .refused(.malformed) }
                return .needMore
            }
            if let refusal = gate.check(prefix, length) { return .refused(refusal) }
            gatePassed = true
            outcome = .passed(length)
        }
        guard buf.readableBytes >= 4 + length,
              let body = buf.getBytes(at: buf.readerIndex + 4, length: length)
        else { return outcome }
        buffer = nil
        return .frame(body)
    }
}

/// Serves one framed request per connection: collects the request, hands it to `respond`,
/// writes the framed reply (if any) and closes. Oversized frames and idle connections are
/// closed. With `admission` (the push-pull port) connections are counted against its limits,
/// the first bytes must pass `gate` within `helloTimeout`, the whole exchange must finish
/// within `frameTimeout`, and authenticated frames reserve their size from the shared budget.
final class FramedRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Responder = @Sendable (_ request: [UInt8], _ peer: SocketAddress?) async -> [UInt8]?

    private let idleTimeout: TimeAmount
    private let respond: Responder
    private var frames: FrameAccumulator
    private var answered = false
    private var idleTask: Scheduled<Void>?
    private var helloTask: Scheduled<Void>?
    private let admission: TCPAdmission?
    private var ticket: UInt64?
    private var reserved = 0
    /// Refused as busy, marker sent, discarding input until the peer closes (`busyLinger`).
    private var lingering = false

    init(maxFrame: Int, idleTimeout: TimeAmount = .seconds(10), respond: @escaping Responder) {
        self.frames = FrameAccumulator(maxFrame: maxFrame)
        self.idleTimeout = idleTimeout
        self.respond = respond
        self.admission = nil
    }

    /// The push-pull port: limits, hello gate and timeouts from `admission.limits`.
    init(maxFrame: Int, admission: TCPAdmission, gate: FrameGate, respond: @escaping Responder) {
        self.frames = FrameAccumulator(maxFrame: maxFrame, gate: gate, unauthenticatedLimit: admission.limits.unauthenticatedBytes)
        self.idleTimeout = admission.limits.frameTimeout
        self.respond = respond
        self.admission = admission
    }

    static func sourceKey(_ address: SocketAddress?) -> String? { address?.ipAddress }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        if let admission {
            switch admission.admit(source: Self.sourceKey(channel.remoteAddress), channel: channel) {
            case .failure(let why):
                answered = true
                if why.isBusy { answerBusy(context) } else { context.close(promise: nil) }
                return
            case .success(let t):
                ticket = t
            }
            helloTask = context.eventLoop.assumeIsolated().scheduleTask(in: admission.limits.helloTimeout) { [weak self] in
                guard let self, !self.frames.gatePassed else { return }
                admission.count(.helloTimeout)
                channel.close(promise: nil)
            }
        }
        let admission = self.admission
        idleTask = context.eventLoop.assumeIsolated().scheduleTask(in: idleTimeout) { [weak self] in
            if let admission, let self, !self.answered { admission.count(.frameTimeout) }
            channel.close(promise: nil)
        }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTask?.cancel()
        helloTask?.cancel()
        if lingering {
            lingering = false
            admission?.stopLingering()
        }
        if let admission {
            if let ticket { admission.release(ticket) }
            ticket = nil
            if reserved > 0 { admission.unreserve(reserved); reserved = 0 }
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }  // also what a lingering connection still sends: dropped
        let body: [UInt8]
        switch frames.append(unwrapInboundIn(data)) {
        case .needMore: return
        case .passed(let length):
            helloTask?.cancel()
            if let admission {
                if let ticket { admission.authenticated(ticket) }
                guard admission.reserve(length) else { return refuse(context, nil, busy: true) }
                reserved = length
                admission.countAccepted()
            }
            return
        case .refused(let why):
            return refuse(context, why)
        case .oversized:
            return refuse(context, .oversized)
        case .busy:  // not with this accumulator (a request of length 0 is refused by the gate)
            return refuse(context, .malformed)
        case .frame(let b):
            body = b
            if admission != nil && reserved == 0 { admission?.countAccepted() }
        }
        answered = true
        helloTask?.cancel()
        if reserved > 0, let admission { admission.unreserve(reserved); reserved = 0 }
        let channel = context.channel
        let peer = channel.remoteAddress
        let respond = self.respond
        Task {
            let reply = await respond(body, peer)
            if let reply {
                let framed = Framing.frame(reply, allocator: channel.allocator)
                channel.writeAndFlush(framed).whenComplete { _ in channel.close(promise: nil) }
            } else {
                channel.close(promise: nil)
            }
        }
    }

    private func refuse(_ context: ChannelHandlerContext, _ why: TCPRefusal?, busy: Bool = false) {
        answered = true
        if let why { admission?.count(why) }
        if busy { answerBusy(context) } else { context.close(promise: nil) }
    }

    /// Sends `Framing.busyMarker` and keeps the connection open, reading and dropping what the
    /// asker still sends, until the asker closes (its collector does on the marker) or
    /// `busyLinger` passes, so the asker reads the marker instead of a reset.
    /// Without a lingering place left, the marker goes out and the connection closes at once.
    private func answerBusy(_ context: ChannelHandlerContext) {
        let channel = context.channel
        var marker = channel.allocator.buffer(capacity: 4)
        marker.writeBytes(Framing.busyMarker)
        guard let admission, admission.startLingering() else {
            context.writeAndFlush(wrapOutboundOut(marker)).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        lingering = true
        idleTask?.cancel()
        helloTask?.cancel()
        idleTask = context.eventLoop.assumeIsolated().scheduleTask(in: admission.limits.busyLinger) {
            channel.close(promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(marker)).whenComplete { result in
            if case .failure = result { channel.close(promise: nil) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Collects exactly one framed reply on a client connection and completes `promise` with it.
final class FramedReplyCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<[UInt8]>
    private var frames: FrameAccumulator
    private var done = false

    init(maxFrame: Int, gate: FrameGate? = nil, promise: EventLoopPromise<[UInt8]>) {
        self.frames = FrameAccumulator(maxFrame: maxFrame, gate: gate, acceptsBusyMarker: true)
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch frames.append(unwrapInboundIn(data)) {
        case .needMore, .passed: return
        case .refused(let why): finish(.failure(FramedExchangeError.refusedReply(why)))
        case .oversized(let n): finish(.failure(FramedExchangeError.oversized(n)))
        case .busy: finish(.failure(FramedExchangeError.busy))
        case .frame(let body): finish(.success(body))
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(.failure(FramedExchangeError.closedWithoutAnswer))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(.failure(error))
        context.close(promise: nil)
    }

    private func finish(_ result: Result<[UInt8], any Error>) {
        guard !done else { return }
        done = true
        promise.completeWith(result)
    }
}

enum FramedExchangeError: Error, CustomStringConvertible {
    case closedWithoutAnswer
    /// The peer answered `Framing.busyMarker`: up, but no room for this connection now.
    case busy
    case oversized(Int)
    case timedOut
    /// The reply's first bytes did not pass the gate (e.g. not sealed with our cluster key).
    case refusedReply(TCPRefusal)

    var description: String {
        switch self {
        case .closedWithoutAnswer: return "closed the connection without answering"
        case .busy: return "busy (too many connections at once); retrying shortly"
        case .oversized(let n): return "sent a frame of \(n) bytes, over the limit"
        case .timedOut: return "did not answer in time"
        case .refusedReply(let why): return "its answer was refused before it was read (\(why.rawValue); different cluster key?)"
        }
    }
}

/// One framed request/reply exchange over a fresh TCP connection, bounded by `timeout`.
/// With `replyGate` (e.g. `FrameGate.hello(sealer:)`), the reply's first bytes must pass it
/// before more than 4 KiB of it is buffered, so a peer without the key cannot make this node
/// hold `maxFrame` bytes.
func framedExchange(
    group: any EventLoopGroup, to address: SocketAddress, request: [UInt8],
    maxFrame: Int, timeout: TimeAmount, replyGate: FrameGate? = nil
) async throws -> [UInt8] {
    let loop = group.next()
    let promise = loop.makePromise(of: [UInt8].self)
    let channel: any Channel
    do {
        channel = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FramedReplyCollector(maxFrame: maxFrame, gate: replyGate, promise: promise))
                }
            }
            .connect(to: address).get()
    } catch {
        // The collector may never have been added: complete the promise so it cannot leak.
        promise.fail(error)
        throw error
    }
    let timer = loop.scheduleTask(in: timeout) {
        promise.fail(FramedExchangeError.timedOut)
        channel.close(promise: nil)
    }
    // Whatever happens (a failed write, a refused or oversized reply), the connection is closed
    // on the way out: a write error used to leave it open, and the peer's FIN then sat in
    // CLOSE-WAIT for good, one file descriptor each.
    defer {
        timer.cancel()
        channel.close(promise: nil)
    }
    do {
        try await channel.writeAndFlush(Framing.frame(request, allocator: channel.allocator)).get()
    } catch {
        // A busy peer answers before it has read the request, and the collector closes the
        // connection on that answer, so the rest of our write fails: the answer is the news.
        // (The promise completes soon: the channel is closing, and the timer runs.)
        do { _ = try await promise.futureResult.get() } catch FramedExchangeError.busy {
            throw FramedExchangeError.busy
        } catch {}
        throw error
    }
    return try await promise.futureResult.get()
}

extension Endpoint {
    /// The NIO socket address for this endpoint.
    func socketAddress() throws -> SocketAddress {
        try SocketAddress(ipAddress: address.description, port: Int(port))
    }

    /// The endpoint of an IP socket address; nil for Unix sockets.
    init?(_ socketAddress: SocketAddress?) {
        guard let socketAddress, let ip = socketAddress.ipAddress, let port = socketAddress.port,
              let parsed = IPAddress(ip), port > 0, port <= 65535
        else { return nil }
        self.init(address: parsed, port: UInt16(port))
    }
}
