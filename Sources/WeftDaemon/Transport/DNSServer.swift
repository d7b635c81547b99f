import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import WeftCore

/// The node's resolver (docs/dns.md): UDP and TCP on one address, answering the cluster zone
/// from a snapshot the runtime keeps current (no actor hop per query) and forwarding other
/// names to the upstream resolvers with a timeout (SERVFAIL when none answers).
final class DNSService: Sendable {
    private let zone = NIOLockedValueBox<DNS.Zone>(DNS.Zone(domain: Node.Settings.default.dnsDomain))
    private let rotation = NIOLockedValueBox<Int>(0)
    let upstreams: [Endpoint]
    let upstreamTimeout: TimeInterval
    /// Queries by outcome, for `weft status` and metrics.
    let counts = NIOLockedValueBox<[String: UInt64]>([:])
    /// Forwards waiting for an upstream now, and the most at once (beyond: SERVFAIL at once).
    private let inFlight = NIOLockedValueBox<Int>(0)
    static let maxForwards = 64

    init(upstreams: [Endpoint], upstreamTimeout: TimeInterval = 2) {
        self.upstreams = upstreams
        self.upstreamTimeout = upstreamTimeout
    }

    func update(_ z: DNS.Zone) { zone.withLockedValue { $0 = z } }
    var current: DNS.Zone { zone.withLockedValue { $0 } }

    func count(_ what: String) { counts.withLockedValue { $0[what, default: 0] += 1 } }

    func decide(_ bytes: [UInt8], udp: Bool) -> DNS.Zone.Decision {
        let r = rotation.withLockedValue { v -> Int in v &+= 1; return v }
        // Copy the snapshot out (three reference counts) and answer outside the lock, so a
        // zone update never waits for a query and queries on several event loops do not queue.
        let z = zone.withLockedValue { $0 }
        let d = z.decide(bytes, rotation: r, udp: udp)
        switch d {
        case .answer: count("answered")
        case .forward: count("forwarded")
        case .drop: count("dropped")
        }
        return d
    }

    /// Forwards `bytes` to each upstream in turn (UDP, blocking with a timeout, on a thread of
    /// its own); the first answer with the query's id wins. None: SERVFAIL.
    func forward(_ bytes: [UInt8], query: DNS.Query) async -> [UInt8] {
        // Each forward blocks a thread for up to the timeout: bound them, so a flood of
        // outside names from a container cannot make the node start threads without end.
        let admitted = inFlight.withLockedValue { n -> Bool in
            guard n < DNSService.maxForwards else { return false }
            n += 1
            return true
        }
        guard admitted else {
            count("forward-busy")
            return DNS.response(to: query, code: .servFail, authoritative: false)
        }
        defer { inFlight.withLockedValue { $0 -= 1 } }
        let upstreams = self.upstreams, timeout = upstreamTimeout
        let reply: [UInt8]? = await withCheckedContinuation { c in
            Thread.detachNewThread {
                for u in upstreams {
                    if let r = DNSService.exchange(bytes, with: u, timeout: timeout), r.count >= 12,
                       r[0] == bytes[0], r[1] == bytes[1] {
                        c.resume(returning: r)
                        return
                    }
                }
                c.resume(returning: nil)
            }
        }
        if let reply { return reply }
        count("upstream-failed")
        return DNS.response(to: query, code: .servFail, authoritative: false)
    }

    static func exchange(_ bytes: [UInt8], with upstream: Endpoint, timeout: TimeInterval) -> [UInt8]? {
        guard let address = try? upstream.socketAddress() else { return nil }
        let family = address.protocol.rawValue
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - floor(timeout)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let sent: Int = address.withSockAddr { sa, len in bytes.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, 0, sa, socklen_t(len)) } }
        guard sent == bytes.count else { return nil }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Array(buf.prefix(n))
    }

    /// Upstreams from a resolv.conf (`nameserver` lines, port 53); `exclude` is our own
    /// address (never forward to ourselves).
    static func upstreams(fromResolvConf path: String = "/etc/resolv.conf", exclude: Endpoint?) -> [Endpoint] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        var out: [Endpoint] = []
        for line in text.split(separator: "\n") {
            let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard parts.count >= 2, parts[0] == "nameserver" else { continue }
            let host = String(parts[1])
            let e = Endpoint(host.contains(":") ? "[\(host)]:53" : "\(host):53")
            if let e, e != exclude { out.append(e) }
        }
        return out
    }
}

/// UDP: one datagram, one answer, to where it came from. Answers to one read burst are
/// flushed together at `channelReadComplete` (with the vector reads set in `bind`: recvmmsg in,
/// sendmmsg out — two system calls for up to 32 queries instead of two per query).
final class DNSUDPHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>
    let service: DNSService
    init(service: DNSService) { self.service = service }

    func channelReadComplete(context: ChannelHandlerContext) { context.flush() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let bytes = Array(envelope.data.readableBytesView)
        let channel = context.channel
        let remote = envelope.remoteAddress
        switch service.decide(bytes, udp: true) {
        case .drop:
            return
        case .answer(let out):
            let buf = context.channel.allocator.buffer(bytes: out)
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: remote, data: buf)), promise: nil)
        case .forward(let q):
            let service = self.service
            Task {
                var out = await service.forward(bytes, query: q)
                let limit = q.ednsSize ?? 512
                if out.count > limit { out = DNS.response(to: q, code: .noError, authoritative: false, limit: 12) }
                let buf = channel.allocator.buffer(bytes: out)
                channel.writeAndFlush(AddressedEnvelope(remoteAddress: remote, data: buf), promise: nil)
            }
        }
    }
}

/// TCP: two-byte length-prefixed messages (RFC 1035 §4.2.2, RFC 7766), answered in order,
/// closed after 10 s idle or on a malformed length.
final class DNSTCPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let service: DNSService
    private var buffer: ByteBuffer?
    private var idle: Scheduled<Void>?
    init(service: DNSService) { self.service = service }

    func channelActive(context: ChannelHandlerContext) { armIdle(context) }

    func armIdle(_ context: ChannelHandlerContext) {
        idle?.cancel()
        let channel = context.channel
        idle = context.eventLoop.scheduleTask(in: .seconds(10)) { channel.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        armIdle(context)
        while var buf = buffer, let length = buf.getInteger(at: buf.readerIndex, as: UInt16.self) {
            guard length >= 12 else { context.close(promise: nil); return }
            guard buf.readableBytes >= 2 + Int(length) else { return }
            buf.moveReaderIndex(forwardBy: 2)
            let bytes = buf.readBytes(length: Int(length)) ?? []
            buffer = buf.readableBytes > 0 ? buf : nil
            let channel = context.channel
            switch service.decide(bytes, udp: false) {
            case .drop: continue
            case .answer(let out): write(out, channel)
            case .forward(let q):
                let service = self.service
                Task { write(await service.forward(bytes, query: q), channel) }
            }
            if buffer == nil { break }
        }
    }

    func channelInactive(context: ChannelHandlerContext) { idle?.cancel() }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

private func write(_ out: [UInt8], _ channel: any Channel) {
    var buf = channel.allocator.buffer(capacity: out.count + 2)
    buf.writeInteger(UInt16(out.count))
    buf.writeBytes(out)
    channel.writeAndFlush(buf, promise: nil)
}

enum DNSServer {
    /// Binds UDP and TCP on `address`. Returns both channels.
    static func bind(_ address: Endpoint, service: DNSService, group: any EventLoopGroup) async throws -> [any Channel] {
        let socket = try address.socketAddress()
        let udp = try await DatagramBootstrap(group: group)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.maxMessagesPerRead, value: 4)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 4096))
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(DNSUDPHandler(service: service)) } }
            .bind(to: socket).get()
        do {
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 64)
                .childChannelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(DNSTCPHandler(service: service)) } }
                .bind(to: socket).get()
            return [udp, tcp]
        } catch {
            try? await udp.close()
            throw error
        }
    }
}
