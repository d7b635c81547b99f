import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Why talking to the local node failed. Every case reads as one line saying what is wrong and
/// what to do.
public enum ControlClientError: Error, Equatable, CustomStringConvertible {
    /// Why no node answered on a data dir.
    public enum NoNodeReason: Sendable, Equatable {
        /// There is no socket file (or no data dir): no node was started there.
        case noSocket
        /// The socket file exists but nothing listens: a node stopped without cleaning up (kill -9, crash).
        case staleSocket
        /// The data dir path (or a part of it) is a file, not a directory.
        case notADirectory
    }

    case noNode(dataDir: String, reason: NoNodeReason = .noSocket)
    case permissionDenied(socket: String)
    case timeout(socket: String, seconds: Double)
    case protocolError(String)
    case remote(API.ErrorBody)
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .noNode(let dir, .noSocket):
            return "no weft node is running for data dir \(dir) (no socket at \(API.socketPath(dataDir: dir))): start one with `weft start --data-dir \(dir)`, or pass the --data-dir of the running node"
        case .noNode(let dir, .staleSocket):
            return "no weft node is running for data dir \(dir): \(API.socketPath(dataDir: dir)) is left over from a node that stopped without cleaning up (killed or crashed); `weft start --data-dir \(dir)` replaces it"
        case .noNode(let dir, .notADirectory):
            return "data dir \(dir) is not a directory (or a part of the path is a file): pass the --data-dir of the running node"
        case .permissionDenied(let sock):
            return "permission denied on \(sock): run as the user that started the node (usually root)"
        case .timeout(let sock, let s):
            return "the node at \(sock) did not answer within \(s) s: it may be overloaded or stuck; check its log"
        case .protocolError(let what):
            return "the node sent an answer this weft cannot read (\(what)): are the node and this command the same version?"
        case .remote(let body):
            return body.message
        case .system(let call, let e):
            return "\(call) failed: \(String(cString: strerror(e)))"
        }
    }

    /// A stable, machine-readable name for the failure (`weft --json` prints it as `error.code`).
    /// Remote errors keep the node's `API.ErrorCode`.
    public var code: String {
        switch self {
        case .noNode: return "not-running"
        case .permissionDenied: return "permission-denied"
        case .timeout: return "timeout"
        case .protocolError: return "protocol-error"
        case .remote(let body): return body.code.rawValue
        case .system: return "system-error"
        }
    }
}

/// A small blocking client for the control socket. No NIO: `weft-cni` uses it and must start fast.
public struct ControlClient: Sendable {
    public var dataDir: String
    public var timeoutSeconds: Double

    public init(dataDir: String, timeoutSeconds: Double = 10) {
        self.dataDir = dataDir
        self.timeoutSeconds = timeoutSeconds
    }

    public var socketPath: String { API.socketPath(dataDir: dataDir) }

    /// Sends `request` and decodes the result as `R`, turning an error response into `.remote`.
    public func call<R: Codable & Sendable>(_ request: API.Request, as: R.Type = R.self) throws(ControlClientError) -> R {
        let body: [UInt8]
        do { body = Array(try JSONEncoder().encode(request)) } catch {
            throw .protocolError("cannot encode request: \(error)")
        }
        let raw = try exchange(body)
        let response: API.Response<R>
        do { response = try JSONDecoder().decode(API.Response<R>.self, from: Data(raw)) } catch {
            if let err = try? JSONDecoder().decode(API.Response<API.Empty>.self, from: Data(raw)), let e = err.error {
                throw .remote(e)
            }
            throw .protocolError("undecodable response: \(error)")
        }
        if let e = response.error { throw .remote(e) }
        guard response.ok, let result = response.result else { throw .protocolError("response has neither result nor error") }
        return result
    }

    /// True when a node answers on this data dir's socket.
    public func isNodeRunning() -> Bool {
        (try? call(API.Request(op: .status), as: API.Status.self)) != nil
    }

    /// One framed request/response exchange over a fresh connection.
    public func exchange(_ request: [UInt8]) throws(ControlClientError) -> [UInt8] {
        let path = socketPath
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", errno: errno) }
        defer { close(fd) }

        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard pathBytes.count < capacity else {
            throw .protocolError("socket path \(path) is longer than \(capacity - 1) bytes: use a shorter --data-dir")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { buf in
            for (i, b) in pathBytes.enumerated() { buf[i] = b }
            buf[pathBytes.count] = 0
        }
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if rc != 0 {
            let e = errno
            switch e {
            case ENOENT: throw .noNode(dataDir: dataDir, reason: .noSocket)
            case ECONNREFUSED: throw .noNode(dataDir: dataDir, reason: .staleSocket)
            case ENOTDIR: throw .noNode(dataDir: dataDir, reason: .notADirectory)
            case EACCES, EPERM: throw .permissionDenied(socket: path)
            default: throw .system(call: "connect(\(path))", errno: e)
            }
        }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        var frame = [UInt8](repeating: 0, count: 4)
        let n = UInt32(request.count)
        frame[0] = UInt8(n >> 24); frame[1] = UInt8(n >> 16 & 0xff); frame[2] = UInt8(n >> 8 & 0xff); frame[3] = UInt8(n & 0xff)
        frame += request
        try writeAll(fd, frame, deadline: deadline)
        let header = try readExactly(fd, 4, deadline: deadline)
        let length = Int(header[0]) << 24 | Int(header[1]) << 16 | Int(header[2]) << 8 | Int(header[3])
        guard length <= API.maxFrameBytes else { throw .protocolError("response of \(length) bytes exceeds the limit") }
        return try readExactly(fd, length, deadline: deadline)
    }

    private func wait(_ fd: Int32, events: Int16, deadline: Date) throws(ControlClientError) {
        while true {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { throw .timeout(socket: socketPath, seconds: timeoutSeconds) }
            var p = pollfd(fd: fd, events: events, revents: 0)
            let r = poll(&p, 1, Int32(min(left * 1000, 60_000)) + 1)
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw .system(call: "poll", errno: errno) }
        }
    }

    private func writeAll(_ fd: Int32, _ bytes: [UInt8], deadline: Date) throws(ControlClientError) {
        var off = 0
        while off < bytes.count {
            try wait(fd, events: Int16(POLLOUT), deadline: deadline)
            let w = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if w < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .system(call: "send", errno: errno)
            }
            off += w
        }
    }

    private func readExactly(_ fd: Int32, _ count: Int, deadline: Date) throws(ControlClientError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var off = 0
        while off < count {
            try wait(fd, events: Int16(POLLIN), deadline: deadline)
            let r = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + off, count - off, 0) }
            if r < 0 {
                if errno == EINTR || errno == EAGAIN { continue }
                throw .system(call: "recv", errno: errno)
            }
            if r == 0 { throw .protocolError("connection closed after \(off) of \(count) bytes") }
            off += r
        }
        return out
    }
}
