import Foundation
import WeftCore
import WeftCrypto
import WeftDataPlane
import XCTest

/// Prints packet rates (the numbers in docs/dataplane.md); asserts only that work was done
/// correctly. Run optimised for meaningful numbers:
/// `swift test -c release --filter WeftDataPlaneTests.BenchmarkTests`.
final class BenchmarkTests: XCTestCase {
    func cpuSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    /// Seal and open with the real suite through `Tunnel.sealData` / `openData`, the calls the
    /// fast path makes, plus the replay window under its lock on the open side.
    func testSealOpenPacketsPerSecond() throws {
        let pair = try SessionPair.make()
        let suite = SodiumTunnelSuite()
        for size in [1420, 64] {
            let inner = icmpEcho(from: ipv4("10.42.1.1"), to: ipv4("10.42.2.1"), payload: size - 28)
            var out = [UInt8](repeating: 0, count: size + Tunnel.dataOverhead)
            var plain = [UInt8](repeating: 0, count: size)
            let maxPackets = 300_000, maxSeconds = 0.5
            // Seal.
            var n = 0
            var t0 = cpuSeconds()
            var counter = pair.snapA.sendCounters.lowerBound
            out.withUnsafeMutableBytes { o in
                inner.withUnsafeBytes { p in
                    while n < maxPackets {
                        _ = Tunnel.sealData(suite: suite, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex,
                                            counter: counter, plaintext: p, into: o)
                        counter += 1
                        n += 1
                        if n & 1023 == 0 && cpuSeconds() - t0 > maxSeconds { break }
                    }
                }
            }
            let sealRate = Double(n) / (cpuSeconds() - t0)
            // Open (one valid packet over and over, the window checked but not advanced, as
            // crypto-ceiling does: the cost does not depend on the counter).
            let header = try Tunnel.DataHeader(parsing: out)
            let window = pair.snapB.replayWindow
            n = 0
            var opened = 0
            t0 = cpuSeconds()
            plain.withUnsafeMutableBytes { m in
                out.withUnsafeBytes { c in
                    while n < maxPackets {
                        if window.wouldAccept(header.counter),
                           Tunnel.openData(suite: suite, key: pair.snapB.receiveKey, header: header, packet: c, into: m) == size {
                            opened += 1
                        }
                        n += 1
                        if n & 1023 == 0 && cpuSeconds() - t0 > maxSeconds { break }
                    }
                }
            }
            let openRate = Double(n) / (cpuSeconds() - t0)
            XCTAssertEqual(opened, n, "every packet authenticated")
            XCTAssertEqual(plain, inner)
            print(String(format: "seal/open %4d B inner: seal %.0f packets/s (%.2f µs), open %.0f packets/s (%.2f µs) [thread CPU time]",
                         size, sealRate, 1e6 / sealRate, openRate, 1e6 / openRate))
        }
    }

    /// The receive path end to end on loopback without TUN: one thread sends pre-sealed
    /// packets with `send` (one `sendto` each, at most 2,048 ahead), the data plane's receive
    /// thread recvmmsg's, checks, opens and counts them. Both share the 2 cores, so this is a
    /// floor, not a ceiling.
    func testLoopbackReceivePathRate() throws {
        let pair = try SessionPair.make()
        let a = try DataPlane(config: DataPlaneConfig(listen: Endpoint(address: .v4(0x7f00_0001), port: 0), tun: nil))
        let b = try DataPlane(config: DataPlaneConfig(listen: Endpoint(address: .v4(0x7f00_0001), port: 0), tun: nil))
        defer { a.stop(); b.stop() }
        let endA = Endpoint(address: .v4(0x7f00_0001), port: a.localPort)
        let endB = Endpoint(address: .v4(0x7f00_0001), port: b.localPort)
        b.start(delegate: RecordingDelegate())
        b.install(pair.snapB, endpoint: endA, now: .zero)
        let inner = icmpEcho(from: ipv4("10.42.1.1"), to: ipv4("10.42.2.1"), payload: 1400)
        let count = 40_000
        let c0 = pair.snapA.sendCounters.lowerBound
        let packets = (0..<count).map { sealed(inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + UInt64($0)) }
        // Closed loop: at most `window` packets ahead of what B has opened, so the number is
        // B's receive capacity rather than how fast the socket buffer overflows.
        let window = 2048
        let t0 = Date()
        var sent = 0
        func opened() -> Int { Int(b.counters().peers[pair.a]?.rxPackets ?? 0) }
        outer: for p in packets {
            a.send(p, to: endB)
            sent += 1
            if sent % 256 == 0 {
                while sent - opened() > window {
                    if Date().timeIntervalSince(t0) > 5 { break outer }
                    usleep(200)
                }
            }
        }
        let sendTime = Date().timeIntervalSince(t0)
        waitUntil(seconds: 2) { (b.counters().peers[pair.a]?.rxPackets ?? 0) >= UInt64(sent) }
        let elapsed = Date().timeIntervalSince(t0)
        let c = b.counters()
        let got = c.peers[pair.a]?.rxPackets ?? 0
        print(String(format: "loopback receive path (1428 B inner, no TUN): sent %d in %.2f s (%.0f/s), opened %llu (%.0f/s), "
                     + "drops %@, sender udp-send-failed %llu", sent, sendTime, Double(sent) / sendTime, got,
                     Double(got) / elapsed, "\(c.drops.filter { $0.value > 0 && $0.key != "no-tun" })",
                     a.counters().drops("udp-send-failed")))
        XCTAssertGreaterThan(got, 0)
        XCTAssertEqual(c.drops("authentication-failed"), 0)
        XCTAssertEqual(c.drops("replayed-packet"), 0)
    }
}
