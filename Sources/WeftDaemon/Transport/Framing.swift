import NIOCore
import NIOPosix
import WeftCore

/// Length-prefixed frames (u32 big-endian length, then the bytes), used on the push-pull TCP
/// port and on the control socket. One request and one reply per connection.
enum Framing {
    static func frame(_ payload: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var buf = allocator.buffer(capacity: payload.count + 4)
        buf.writeInteger(UInt32(payload.count), endianness: .big)
        buf.writeBytes(payload)
        return buf
    }
}

/// Collects bytes until one complete frame is there.
struct FrameAccumulator {
    enum Outcome {
        case needMore
        case frame([UInt8])
        case oversized(Int)
    }

    let maxFrame: Int
    private var buffer: ByteBuffer?

    init(maxFrame: Int) { self.maxFrame = maxFrame }

    mutating func append(_ incoming: ByteBuffer) -> Outcome {
        var incoming = incoming
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        guard let buf = buffer, buf.readableBytes >= 4,
              let length = buf.getInteger(at: buf.readerIndex, endianness: .big, as: UInt32.self)
        else { return .needMore }
        if Int(length) > maxFrame { return .oversized(Int(length)) }
        guard buf.readableBytes >= 4 + Int(length),
              let body = buf.getBytes(at: buf.readerIndex + 4, length: Int(length))
        else { return .needMore }
        buffer = nil
        return .frame(body)
    }
}

/// Serves one framed request per connection: collects the request, hands it to `respond`,
/// writes the framed reply (if any) and closes. Oversized frames and idle connections are closed.
final class FramedRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    typealias Responder = @Sendable (_ request: [UInt8], _ peer: SocketAddress?) async -> [UInt8]?

    private let idleTimeout: TimeAmount
    private let respond: Responder
    private var frames: FrameAccumulator
    private var answered = false
    private var idleTask: Scheduled<Void>?

    init(maxFrame: Int, idleTimeout: TimeAmount = .seconds(10), respond: @escaping Responder) {
        self.frames = FrameAccumulator(maxFrame: maxFrame)
        self.idleTimeout = idleTimeout
        self.respond = respond
    }

    func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        idleTask = context.eventLoop.scheduleTask(in: idleTimeout) { channel.close(promise: nil) }
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTask?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let body: [UInt8]
        switch frames.append(unwrapInboundIn(data)) {
        case .needMore: return
        case .oversized:
            answered = true
            context.close(promise: nil)
            return
        case .frame(let b): body = b
        }
        answered = true
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

    init(maxFrame: Int, promise: EventLoopPromise<[UInt8]>) {
        self.frames = FrameAccumulator(maxFrame: maxFrame)
        self.promise = promise
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !done else { return }
        switch frames.append(unwrapInboundIn(data)) {
        case .needMore: return
        case .oversized(let n): finish(.failure(FramedExchangeError.oversized(n)))
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
    case oversized(Int)
    case timedOut

    var description: String {
        switch self {
        case .closedWithoutAnswer: return "closed the connection without answering"
        case .oversized(let n): return "sent a frame of \(n) bytes, over the limit"
        case .timedOut: return "did not answer in time"
        }
    }
}

/// One framed request/reply exchange over a fresh TCP connection, bounded by `timeout`.
func framedExchange(
    group: any EventLoopGroup, to address: SocketAddress, request: [UInt8],
    maxFrame: Int, timeout: TimeAmount
) async throws -> [UInt8] {
    let loop = group.next()
    let promise = loop.makePromise(of: [UInt8].self)
    let channel: any Channel
    do {
        channel = try await ClientBootstrap(group: loop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(FramedReplyCollector(maxFrame: maxFrame, promise: promise))
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
    defer { timer.cancel() }
    try await channel.writeAndFlush(Framing.frame(request, allocator: channel.allocator)).get()
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
