import NIOCore
import NIOPosix
import Prometheus

/// A minimal HTTP/1.1 responder for Prometheus scrapes: any GET answers with the registry's
/// text exposition format, then closes the connection. Not a general web server.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let registry: PrometheusCollectorRegistry
    private var request: [UInt8] = []
    private var answered = false

    init(registry: PrometheusCollectorRegistry) { self.registry = registry }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let buf = unwrapInboundIn(data)
        request += buf.readableBytesView
        guard request.count <= 16 * 1024 else { context.close(promise: nil); return }
        // Wait for the end of the request head.
        guard request.count >= 4, findHeadEnd() else { return }
        answered = true
        let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let (status, body, type): (String, [UInt8], String)
        if firstLine.hasPrefix("GET /metrics") || firstLine.hasPrefix("GET / ") {
            status = "200 OK"; body = registry.emitToBuffer(); type = "text/plain; version=0.0.4; charset=utf-8"
        } else {
            status = "404 Not Found"; body = Array("not found: scrape /metrics\n".utf8); type = "text/plain"
        }
        var out = context.channel.allocator.buffer(capacity: body.count + 128)
        out.writeString("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n")
        out.writeBytes(body)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(out)).whenComplete { _ in channel.close(promise: nil) }
    }

    private func findHeadEnd() -> Bool {
        var i = 0
        while i + 3 < request.count {
            if request[i] == 13 && request[i + 1] == 10 && request[i + 2] == 13 && request[i + 3] == 10 { return true }
            i += 1
        }
        return false
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
