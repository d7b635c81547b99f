import Foundation
import WeftAPI
import WeftCNI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The node client for Docker calls: like weft-cni's, but an allocation gives up after 25 s so
/// Docker (whose plugin client stops waiting after 30 s) gets our error, not its own timeout.
public struct DockerNodeClient: NodeClient {
    public var dataDir: String
    public init(dataDir: String) { self.dataDir = dataDir }
    private func client(_ s: Double) -> ControlClient { ControlClient(dataDir: dataDir, timeoutSeconds: s) }
    public func status() throws(ControlClientError) -> API.Status { try client(5).call(API.Request(op: .status), as: API.Status.self) }
    public func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation {
        try client(25).call(API.Request(op: .alloc, handle: handle, name: name), as: API.Allocation.self)
    }
    public func release(handle: String) throws(ControlClientError) {
        _ = try client(10).call(API.Request(op: .release, handle: handle), as: API.AllocationInfo.self)
    }
    public func ipam() throws(ControlClientError) -> API.IPAMInfo { try client(10).call(API.Request(op: .ipam), as: API.IPAMInfo.self) }
}

/// Serves a `DockerPlugin` on a Unix socket: one thread per connection (at most
/// `maxConnections`; more are answered 503 and closed), keep-alive, every read bounded in size
/// (HTTPParser limits) and time (`idleSeconds` between requests, `requestSeconds` per request).
public final class PluginServer: @unchecked Sendable {
    public let socketPath: String
    let plugin: DockerPlugin
    let log: @Sendable (String) -> Void
    public var maxConnections = 64
    public var idleSeconds = 60.0
    public var requestSeconds = 10.0
    private let lock = NSLock()
    private var active = 0
    private var listenFD: Int32 = -1
    private var stopped = false

    public init(socketPath: String, plugin: DockerPlugin, log: @escaping @Sendable (String) -> Void) {
        self.socketPath = socketPath; self.plugin = plugin; self.log = log
    }

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Binds the socket (replacing a stale one nobody answers on) and starts accepting.
    public func start() throws(StartError) {
        let dir = (socketPath as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        guard socketPath.utf8.count < 108 else { throw StartError(description: "socket path \(socketPath) is longer than 107 bytes: choose a shorter --socket") }
        var st = stat()
        if lstat(socketPath, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw StartError(description: "\(socketPath) exists and is not a socket: remove it or choose another --socket") }
            if Self.answers(socketPath) { throw StartError(description: "another plugin already listens on \(socketPath): stop it first") }
            unlink(socketPath)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw StartError(description: "socket(): \(String(cString: strerror(errno)))") }
        var addr = Self.address(socketPath)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else {
            let e = errno; close(fd)
            throw StartError(description: "cannot bind \(socketPath): \(String(cString: strerror(e)))")
        }
        chmod(socketPath, 0o660)
        guard listen(fd, 64) == 0 else { close(fd); throw StartError(description: "listen(): \(String(cString: strerror(errno)))") }
        listenFD = fd
        Thread.detachNewThread { [self] in acceptLoop(fd) }
    }

    /// Removes the socket file (on shutdown).
    public func stop() {
        unlink(socketPath)
        let fd: Int32 = lock.withLock { defer { stopped = true }; return stopped ? -1 : listenFD }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
    }

    static func address(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return addr
    }

    static func answers(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = address(path)
        return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } } == 0
    }

    private func acceptLoop(_ listenFD: Int32) {
        while true {
            let fd = accept(listenFD, nil, nil)
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if lock.withLock({ stopped }) { return }
                log("accept failed: \(String(cString: strerror(errno)))")
                usleep(100_000)
                continue
            }
            let admitted: Bool = lock.withLock {
                if active >= maxConnections { return false }
                active += 1
                return true
            }
            if !admitted {
                writeAll(fd, HTTPParser.response(status: 503, body: DockerPlugin.errorBody("weft docker-plugin is busy (\(maxConnections) connections): retry"), close: true))
                close(fd)
                continue
            }
            Thread.detachNewThread { [self] in
                serve(fd)
                close(fd)
                lock.withLock { active -= 1 }
            }
        }
    }

    /// One connection: requests until the client closes, asks to close, idles out, or sends
    /// something unusable (answered with a JSON error, then closed).
    func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        var deadline = Date().addingTimeInterval(idleSeconds)
        while true {
            switch HTTPParser.parse(buffer) {
            case .invalid(let status, let reason):
                log("bad request: \(reason)")
                writeAll(fd, HTTPParser.response(status: status, body: DockerPlugin.errorBody("bad request: \(reason)"), close: true))
                return
            case .request(let req, let consumed):
                buffer.removeFirst(consumed)
                let started = Date()
                let (status, body) = plugin.handle(method: req.method, path: req.path, body: req.body)
                log("\(req.method) \(req.path) \(status) \(Int(Date().timeIntervalSince(started) * 1000)) ms body=\(String(decoding: req.body.prefix(600), as: UTF8.self))")
                guard writeAll(fd, HTTPParser.response(status: status, body: body, close: !req.keepAlive)), req.keepAlive else { return }
                deadline = Date().addingTimeInterval(idleSeconds)
                continue
            case .incomplete:
                if !buffer.isEmpty { deadline = min(deadline, Date().addingTimeInterval(requestSeconds)) }
            }
            let left = deadline.timeIntervalSinceNow
            if left <= 0 {
                if !buffer.isEmpty {
                    writeAll(fd, HTTPParser.response(status: 408, body: DockerPlugin.errorBody("bad request: incomplete request after \(Int(requestSeconds)) s"), close: true))
                }
                return
            }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 60) * 1000) + 1)
            if r < 0 { if errno == EINTR { continue }; return }
            if r == 0 { continue }
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR || errno == EAGAIN { continue }; return }
            if n == 0 { return }
            buffer += chunk[0..<n]
        }
    }

    @discardableResult
    func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var off = 0
        let deadline = Date().addingTimeInterval(requestSeconds)
        while off < bytes.count {
            if deadline.timeIntervalSinceNow <= 0 { return false }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&p, 1, 1000) <= 0 { continue }
            let w = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if w < 0 { if errno == EINTR || errno == EAGAIN { continue }; return false }
            off += w
        }
        return true
    }
}

/// Container names from dockerd's API (`GET /containers/json?all=1` on its Unix socket): the
/// container whose network settings list the endpoint id.
public struct DockerdNames: ContainerNameSource {
    public var socketPath: String
    public init(socketPath: String) { self.socketPath = socketPath }

    public func containerName(endpointID: String) -> String? {
        guard let body = get("/containers/json?all=1"), let list = try? JSON.parse(body) else { return nil }
        return Self.name(in: list, endpointID: endpointID)
    }

    /// The first name of the container whose `NetworkSettings.Networks.*.EndpointID` is `endpointID`.
    public static func name(in list: JSON, endpointID: String) -> String? {
        for c in list.arrayValue ?? [] {
            guard case .object(let nets)? = c["NetworkSettings"]?["Networks"] else { continue }
            if nets.contains(where: { $0.1["EndpointID"]?.stringValue == endpointID }) {
                return c["Names"]?.arrayValue?.first?.stringValue.map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 }
            }
        }
        return nil
    }

    /// A bounded HTTP/1.0 GET (the server closes, so the body ends at EOF): at most 16 MiB, 5 s.
    func get(_ path: String) -> [UInt8]? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var addr = PluginServer.address(socketPath)
        guard withUnsafePointer(to: &addr, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }) == 0 else { return nil }
        let req = Array("GET \(path) HTTP/1.0\r\nHost: docker\r\n\r\n".utf8)
        guard req.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == req.count else { return nil }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        let deadline = Date().addingTimeInterval(5)
        while out.count < 16 << 20 {
            let left = deadline.timeIntervalSinceNow
            if left <= 0 { return nil }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left * 1000) + 1)
            if r < 0 { if errno == EINTR { continue }; return nil }
            if r == 0 { continue }
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            out += buf[0..<n]
        }
        let statusLine = String(decoding: out.prefix(while: { $0 != 13 }), as: UTF8.self)
        guard statusLine.split(separator: " ").dropFirst().first == "200",
              let end = HTTPParser.find(out, [13, 10, 13, 10], from: 0, limit: out.count)
        else { return nil }
        return Array(out[(end + 4)...])
    }
}
