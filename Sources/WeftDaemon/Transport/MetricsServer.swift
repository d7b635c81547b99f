import NIOCore
import NIOPosix
import Prometheus

/// A minimal HTTP/1.1 responder for Prometheus scrapes and the status page: `GET /metrics`
/// answers with the registry's text exposition format after `refresh` has brought the
/// scrape-time families up to date; `GET /` is the status page (StatusPage.swift) and
/// `GET /status.json` its data; `HEAD` answers the same headers without a body; anything else is
/// 404 (405 for other methods). One request per connection, then close. Not a general web server.
final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    private let registry: PrometheusCollectorRegistry
    private let refresh: @Sendable () async -> Void
    private let statusJSON: @Sendable () async -> [UInt8]
    private var request: [UInt8] = []
    private var answered = false

    init(registry: PrometheusCollectorRegistry, refresh: @escaping @Sendable () async -> Void = {},
         statusJSON: @escaping @Sendable () async -> [UInt8] = { Array("{}".utf8) }) {
        self.registry = registry
        self.refresh = refresh
        self.statusJSON = statusJSON
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        let buf = unwrapInboundIn(data)
        request += buf.readableBytesView
        guard request.count <= 16 * 1024 else { context.close(promise: nil); return }
        // Wait for the end of the request head.
        guard request.count >= 4, findHeadEnd() else { return }
        answered = true
        let firstLine = String(decoding: request.prefix { $0 != 13 && $0 != 10 }, as: UTF8.self)
        let parts = firstLine.split(separator: " ")
        let method = parts.first.map(String.init) ?? ""
        let path = parts.count > 1 ? String(parts[1]) : ""
        let channel = context.channel
        let route = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard route == "/metrics" || route == "/" || route == "/status.json" else {
            Self.respond(channel, status: "404 Not Found", type: "text/plain", body: Array("not found: scrape /metrics; the status page is /\n".utf8), head: method == "HEAD")
            return
        }
        guard method == "GET" || method == "HEAD" else {
            Self.respond(channel, status: "405 Method Not Allowed", type: "text/plain", body: Array("use GET \(route)\n".utf8), head: false, allow: true)
            return
        }
        if route == "/" {
            Self.respond(channel, status: "200 OK", type: StatusPageHTML.contentType, body: Array(StatusPageHTML.document.utf8), head: method == "HEAD")
            return
        }
        if route == "/status.json" {
            let statusJSON = self.statusJSON
            let head = method == "HEAD"
            channel.eventLoop.makeFutureWithTask { await statusJSON() }.whenComplete { result in
                let body = (try? result.get()) ?? Array("{}".utf8)
                MetricsHTTPHandler.respond(channel, status: "200 OK", type: "application/json", body: body, head: head)
            }
            return
        }
        let registry = self.registry
        let refresh = self.refresh
        let head = method == "HEAD"
        let contentType = Self.contentType
        channel.eventLoop.makeFutureWithTask { await refresh() }.whenComplete { _ in
            MetricsHTTPHandler.respond(channel, status: "200 OK", type: contentType, body: registry.emitToBuffer(), head: head)
        }
    }

    private static func respond(_ channel: any Channel, status: String, type: String, body: [UInt8], head: Bool, allow: Bool = false) {
        var out = channel.allocator.buffer(capacity: body.count + 160)
        out.writeString("HTTP/1.1 \(status)\r\nContent-Type: \(type)\r\nContent-Length: \(body.count)\r\n\(allow ? "Allow: GET, HEAD\r\n" : "")Connection: close\r\n\r\n")
        if !head { out.writeBytes(body) }
        channel.writeAndFlush(out).whenComplete { _ in channel.close(promise: nil) }
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
