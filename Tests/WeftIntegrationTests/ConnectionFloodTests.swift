import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9 (3), end to end: a running `weft start --no-tun` on 127.0.0.1 is flooded with TCP
/// connections that never prove the cluster key (unfinished 16 MiB frames, and silent
/// connections holding slots). Its memory must stay flat, and a real node must still join.
final class ConnectionFloodTests: XCTestCase {
    private var root: TempDir!
    private var nodes: [NodeProcess] = []

    override func setUp() { root = TempDir("flood") }

    override func tearDown() {
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(4000))") }
        }
        root.remove()
    }

    /// VmRSS of a process in KiB, from /proc.
    static func rssKiB(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }

    /// A TCP connection from `source` (a 127/8 address) to 127.0.0.1:`port`, or -1.
    static func connect(from source: UInt32, port: UInt16) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return -1 }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        func sockaddrIn(_ ip: UInt32, _ port: UInt16) -> sockaddr_in {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = port.bigEndian
            a.sin_addr.s_addr = ip.bigEndian
            return a
        }
        var local = sockaddrIn(source, 0)
        var remote = sockaddrIn(0x7F00_0001, port)
        let ok = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0 && withUnsafePointer(to: &remote) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
        if !ok { close(fd); return -1 }
        return fd
    }

    final class Flood: @unchecked Sendable {
        private let lock = NSLock()
        private var stopped = false
        private(set) var connections = 0
        private(set) var bytesSent = 0
        var isStopped: Bool { lock.withLock { stopped } }
        func stop() { lock.withLock { stopped = true } }
        func count(connection: Bool, bytes: Int) { lock.withLock { connections += connection ? 1 : 0; bytesSent += bytes } }
    }

    func testConnectionFloodKeepsMemoryFlatAndJoinsStillWork() throws {
        let seed = NodeProcess(name: "seed", root: root.path)
        nodes.append(seed)
        try seed.start()
        XCTAssertTrue(seed.waitReady())
        guard let pid = seed.pid, let before = Self.rssKiB(pid) else { return XCTFail("cannot read the node's RSS") }

        let flood = Flood()
        let port = seed.port
        let deadline = Date().addingTimeInterval(40)  // hard bound on the flood, whatever happens
        var threads: [Thread] = []
        // 48 senders of unfinished 16 MiB frames from 8 source addresses, 24 silent holders from 4 more.
        for i in 0..<72 {
            let silent = i >= 48
            let source: UInt32 = 0x7F00_0000 | UInt32(silent ? 10 + i % 4 : 2 + i % 8)
            let t = Thread {
                let junk = [UInt8](repeating: 0xA5, count: 64 << 10)
                while !flood.isStopped && Date() < deadline {
                    let fd = Self.connect(from: source, port: port)
                    if fd < 0 { usleep(20_000); continue }
                    flood.count(connection: true, bytes: 0)
                    var header: [UInt8] = [0x01, 0x00, 0x00, 0x00]  // "a 16 MiB frame follows"
                    if silent {
                        // Hold the slot without a byte until closed or stopped.
                        var b: UInt8 = 0
                        while !flood.isStopped && Date() < deadline {
                            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                            if poll(&p, 1, 200) > 0 { if recv(fd, &b, 1, 0) <= 0 { break } }
                        }
                    } else {
                        var sent = send(fd, &header, 4, Int32(MSG_NOSIGNAL))
                        var total = 0
                        while sent > 0 && total < 16 << 20 && !flood.isStopped && Date() < deadline {
                            sent = junk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                            if sent > 0 { total += sent; flood.count(connection: false, bytes: sent) }
                        }
                    }
                    close(fd)
                }
            }
            threads.append(t)
            t.start()
        }
        defer {
            flood.stop()
            for t in threads { while t.isExecuting { usleep(10_000) } }
        }

        var peak = before
        func sample(for seconds: Double) {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if let r = Self.rssKiB(pid) { peak = max(peak, r) }
                usleep(100_000)
            }
        }
        sample(for: 3)
        // A real member joins through the flood.
        let joiner = NodeProcess(name: "joiner", root: root.path,
                                 extraArgs: ["--seed", seed.address, "--cluster-key-file", seed.dataDir + "/cluster.key"])
        nodes.append(joiner)
        try joiner.start()
        XCTAssertTrue(joiner.waitReady())
        var joined = false
        let joinDeadline = Date().addingTimeInterval(25)
        while Date() < joinDeadline {
            sample(for: 0.5)
            let alive = (seed.members() ?? []).filter { $0.state == "alive" }.count
            let sees = (joiner.members() ?? []).filter { $0.state == "alive" }.count
            if alive == 2 && sees == 2 { joined = true; break }
        }
        sample(for: 2)
        let during = peak
        flood.stop()
        for t in threads { while t.isExecuting { usleep(10_000) } }
        sleep(2)
        let after = Self.rssKiB(pid) ?? -1
        let grew = during - before
        print("flood: \(flood.connections) connections, \(flood.bytesSent >> 20) MiB sent; node RSS before \(before) KiB, peak during \(during) KiB (+\(grew) KiB), after \(after) KiB; joined: \(joined)")
        XCTAssertTrue(joined, "a real node must join during the flood")
        XCTAssertGreaterThan(flood.connections, 200, "the flood must actually have run")
        XCTAssertLessThan(grew, 32 << 10, "the node's memory must stay flat under the flood (grew \(grew) KiB)")
        XCTAssertTrue(seed.isRunning)
    }
}
