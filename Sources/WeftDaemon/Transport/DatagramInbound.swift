import NIOCore
import WeftCore

/// Forwards each received UDP datagram, with its sender, into an `AsyncStream` that the node
/// runtime drains in order. Does no parsing: bytes are authenticated inside the runtime.
final class DatagramInbound: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    struct Datagram: Sendable {
        let bytes: [UInt8]
        let from: Endpoint
    }

    private let continuation: AsyncStream<Datagram>.Continuation
    /// Datagrams larger than this are dropped before they reach the runtime.
    private let maxBytes: Int

    init(continuation: AsyncStream<Datagram>.Continuation, maxBytes: Int) {
        self.continuation = continuation
        self.maxBytes = maxBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        guard envelope.data.readableBytes <= maxBytes,
              let from = Endpoint(envelope.remoteAddress),
              let bytes = envelope.data.getBytes(at: envelope.data.readerIndex, length: envelope.data.readableBytes)
        else { return }
        continuation.yield(Datagram(bytes: bytes, from: from))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors (e.g. port unreachable) surface here on Linux; they are not fatal for UDP.
    }
}
