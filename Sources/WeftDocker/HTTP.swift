import Foundation

/// The small, bounded HTTP/1.1 subset Docker's plugin client speaks: `POST /Method` with a JSON
/// body (Content-Length, or chunked), keep-alive. Pure: bytes in, a parsed request or a verdict
/// out, so every malformed input is unit-tested (`Tests/WeftDockerTests`).
public struct HTTPRequest: Equatable, Sendable {
    public var method: String
    public var path: String
    /// Header names lower-cased, in arrival order.
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// False when the client asked to close (`Connection: close`, or HTTP/1.0 without keep-alive).
    public var keepAlive: Bool

    public init(method: String, path: String, headers: [(String, String)], body: [UInt8], keepAlive: Bool) {
        self.method = method; self.path = path; self.headers = headers; self.body = body; self.keepAlive = keepAlive
    }

    public func header(_ name: String) -> String? {
        let n = name.lowercased()
        return headers.last(where: { $0.0 == n })?.1
    }

    public static func == (a: HTTPRequest, b: HTTPRequest) -> Bool {
        a.method == b.method && a.path == b.path && a.body == b.body && a.keepAlive == b.keepAlive
            && a.headers.count == b.headers.count && zip(a.headers, b.headers).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

public enum HTTPParser {
    /// Largest request line plus headers.
    public static let maxHeaderBytes = 16 * 1024
    /// Largest body. Docker's biggest request (CreateNetwork with options) is a few KiB.
    public static let maxBodyBytes = 1024 * 1024

    public enum Outcome: Equatable, Sendable {
        /// Need more bytes.
        case incomplete
        /// A request, and how many bytes of the buffer it used.
        case request(HTTPRequest, consumed: Int)
        /// Unusable input: answer `status` with `reason` and close the connection.
        case invalid(status: Int, reason: String)
    }

    /// Parses the first request in `buffer`.
    public static func parse(_ buffer: [UInt8]) -> Outcome {
        guard let headEnd = find(buffer, [13, 10, 13, 10], from: 0, limit: maxHeaderBytes + 4) else {
            if buffer.count > maxHeaderBytes { return .invalid(status: 431, reason: "request headers exceed \(maxHeaderBytes) bytes") }
            if let bad = firstLineProblem(buffer) { return .invalid(status: 400, reason: bad) }
            return .incomplete
        }
        guard let head = String(validating: buffer[0..<headEnd], as: UTF8.self) else {
            return .invalid(status: 400, reason: "request headers are not UTF-8")
        }
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        let requestLine = lines.removeFirst()
        let parts = requestLine.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[0].isEmpty, parts[0].utf8.allSatisfy({ $0 >= 0x41 && $0 <= 0x5A }),
              parts[1].hasPrefix("/"), parts[2] == "HTTP/1.1" || parts[2] == "HTTP/1.0"
        else { return .invalid(status: 400, reason: "malformed request line (expected `POST /Plugin.Method HTTP/1.1`)") }
        var headers: [(String, String)] = []
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                return .invalid(status: 400, reason: "malformed header line")
            }
            let name = line[..<colon]
            guard !name.contains(where: { $0 == " " || $0 == "\t" }) else { return .invalid(status: 400, reason: "malformed header name") }
            headers.append((name.lowercased(), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)))
        }
        func header(_ n: String) -> String? { headers.last(where: { $0.0 == n })?.1 }
        let connection = header("connection")?.lowercased() ?? ""
        let keepAlive = parts[2] == "HTTP/1.1" ? connection != "close" : connection == "keep-alive"
        let bodyStart = headEnd + 4
        var body: [UInt8] = []
        var consumed = bodyStart
        if let te = header("transfer-encoding") {
            guard te.lowercased() == "chunked" else { return .invalid(status: 501, reason: "transfer encoding '\(te)' is not supported") }
            switch dechunk(buffer, from: bodyStart) {
            case .incomplete: return .incomplete
            case .invalid(let s, let r): return .invalid(status: s, reason: r)
            case .done(let b, let end): body = b; consumed = end
            }
        } else if let cl = header("content-length") {
            guard let n = Int(cl), n >= 0, cl.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
                return .invalid(status: 400, reason: "invalid Content-Length '\(cl)'")
            }
            guard n <= maxBodyBytes else { return .invalid(status: 413, reason: "request body of \(n) bytes exceeds \(maxBodyBytes)") }
            guard buffer.count - bodyStart >= n else { return .incomplete }
            body = Array(buffer[bodyStart..<(bodyStart + n)])
            consumed = bodyStart + n
        }
        return .request(HTTPRequest(method: parts[0], path: parts[1], headers: headers, body: body, keepAlive: keepAlive), consumed: consumed)
    }

    /// Garbage is refused as soon as its first line cannot start an HTTP request, without
    /// waiting for a blank line that may never come.
    static func firstLineProblem(_ buffer: [UInt8]) -> String? {
        let line = buffer.prefix(while: { $0 != 13 && $0 != 10 })
        if line.isEmpty { return buffer.isEmpty || buffer[0] == 13 ? nil : "malformed request line" }
        for (i, b) in line.enumerated() {
            if b == 0x20 { return i == 0 ? "malformed request line" : nil }
            if !(b >= 0x41 && b <= 0x5A) { return "malformed request line (expected `POST /Plugin.Method HTTP/1.1`)" }
            if i > 16 { return "malformed request line (method too long)" }
        }
        return nil
    }

    private enum Chunked { case incomplete, invalid(Int, String), done([UInt8], Int) }

    private static func dechunk(_ buffer: [UInt8], from start: Int) -> Chunked {
        var i = start
        var body: [UInt8] = []
        while true {
            guard let lineEnd = find(buffer, [13, 10], from: i, limit: 32) else {
                return buffer.count - i > 32 ? .invalid(400, "malformed chunk size") : .incomplete
            }
            let sizeText = String(decoding: buffer[i..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16), size >= 0 else { return .invalid(400, "malformed chunk size") }
            guard body.count + size <= maxBodyBytes else { return .invalid(413, "request body exceeds \(maxBodyBytes) bytes") }
            let dataStart = lineEnd + 2
            if size == 0 {
                // No trailers from Go's client; accept an empty trailer section only.
                guard buffer.count >= dataStart + 2 else { return .incomplete }
                guard buffer[dataStart] == 13, buffer[dataStart + 1] == 10 else { return .invalid(400, "chunk trailers are not supported") }
                return .done(body, dataStart + 2)
            }
            guard buffer.count >= dataStart + size + 2 else { return .incomplete }
            guard buffer[dataStart + size] == 13, buffer[dataStart + size + 1] == 10 else { return .invalid(400, "malformed chunk") }
            body += buffer[dataStart..<(dataStart + size)]
            i = dataStart + size + 2
        }
    }

    /// Index of `needle` in `buffer` at or after `from`, looking at most `limit` bytes.
    static func find(_ buffer: [UInt8], _ needle: [UInt8], from: Int, limit: Int) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        let last = min(buffer.count - needle.count, from + limit)
        var i = from
        while i <= last {
            if buffer[i] == needle[0] && Array(buffer[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }

    /// A complete response with Docker's plugin media type.
    public static func response(status: Int, body: String, close: Bool = false) -> [UInt8] {
        let bytes = Array(body.utf8)
        var head = "HTTP/1.1 \(status) \(reason(status))\r\n"
        head += "Content-Type: application/vnd.docker.plugins.v1.2+json\r\n"
        head += "Content-Length: \(bytes.count)\r\n"
        if close { head += "Connection: close\r\n" }
        head += "\r\n"
        return Array(head.utf8) + bytes
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 400: return "Bad Request"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 408: return "Request Timeout"
        case 413: return "Payload Too Large"
        case 431: return "Request Header Fields Too Large"
        case 500: return "Internal Server Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
