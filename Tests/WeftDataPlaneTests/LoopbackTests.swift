import Foundation
import WeftCore
import WeftCrypto
import WeftDataPlane
import XCTest

/// Two UDP-only data planes (`tun: nil`) on 127.0.0.1: no root needed.
final class LoopbackTests: XCTestCase {
    func makePlane(_ ip: String = "127.0.0.1") throws -> DataPlane {
        let dp = try DataPlane(config: DataPlaneConfig(listen: Endpoint(address: IPAddress(ip)!, port: 0), tun: nil))
        addTeardownBlock { dp.stop() }
        return dp
    }

    func endpoint(_ dp: DataPlane) -> Endpoint { Endpoint(address: .v4(ipv4("127.0.0.1")), port: dp.localPort) }

    func testControlDatagramsArriveWithTheirSource() throws {
        let a = try makePlane(), b = try makePlane()
        XCTAssertNotEqual(a.localPort, 0)
        XCTAssertNil(a.tunName)
        let da = RecordingDelegate(), db = RecordingDelegate()
        a.start(delegate: da)
        b.start(delegate: db)
        let gossip: [UInt8] = [1, 1] + (0..<100).map { UInt8($0) }
        let handshake: [UInt8] = [1, 4] + [UInt8](repeating: 9, count: 146)
        let ipam: [UInt8] = [1, 16, 5, 5]
        let unknownKind: [UInt8] = [1, 99]
        let unknownIndex = sealed([], key: Tunnel.SendKey(secret: Tunnel.Secret([UInt8](repeating: 3, count: 32))),
                                  receiverIndex: 12345, counter: 0)
        for d in [gossip, handshake, ipam, unknownKind, unknownIndex, []] { a.send(d, to: endpoint(b)) }
        XCTAssertTrue(waitUntil { db.receivedCount == 6 }, "got \(db.receivedCount) of 6")
        let got = db.received.withLock { $0 }
        XCTAssertEqual(got.map(\.bytes), [gossip, handshake, ipam, unknownKind, unknownIndex, []], "in order, unchanged")
        XCTAssertTrue(got.allSatisfy { $0.from == self.endpoint(a) }, "source is A's socket: \(got.map(\.from))")
        // And back.
        b.send([1, 2, 42], to: got[0].from)
        XCTAssertTrue(waitUntil { da.receivedCount == 1 })
        XCTAssertEqual(da.received.withLock { $0.first?.from }, endpoint(b))
        XCTAssertEqual(a.counters().controlOut, 6)
        XCTAssertEqual(b.counters().controlIn, 6)
        XCTAssertEqual(b.counters().udpInPackets, 6)
        XCTAssertEqual(b.counters().udpInBytes, UInt64([gossip, handshake, ipam, unknownKind, unknownIndex].map(\.count).reduce(0, +)))
    }

    func testIPv6Loopback() throws {
        let a: DataPlane, b: DataPlane
        do {
            a = try makePlane("::1")
            b = try makePlane("::1")
        } catch DataPlaneError.addressNotAvailable, DataPlaneError.invalidConfiguration {
            throw XCTSkip("no IPv6 loopback on this host")
        }
        let db = RecordingDelegate()
        b.start(delegate: db)
        a.start(delegate: RecordingDelegate())
        a.send([1, 1, 7], to: Endpoint(address: IPAddress("::1")!, port: b.localPort))
        XCTAssertTrue(waitUntil { db.receivedCount == 1 })
        XCTAssertEqual(db.received.withLock { $0.first?.from }, Endpoint(address: IPAddress("::1")!, port: a.localPort))
    }

    func testPortInUseAndBadAddressesGiveClearErrors() throws {
        let a = try makePlane()
        XCTAssertThrowsError(try DataPlane(config: DataPlaneConfig(listen: endpoint(a), tun: nil))) { error in
            guard case DataPlaneError.addressInUse(let what) = error else { return XCTFail("got \(error)") }
            XCTAssertEqual(what, "127.0.0.1:\(a.localPort)")
            XCTAssertTrue("\(error)".contains("already in use"), "\(error)")
            XCTAssertTrue("\(error)".contains("--listen"), "says what to do: \(error)")
        }
        // 203.0.113.0/24 (TEST-NET-3) is not an address of this host: nothing is sent, bind fails.
        XCTAssertThrowsError(try DataPlane(config: DataPlaneConfig(listen: Endpoint("203.0.113.77:7946")!, tun: nil))) { error in
            guard case DataPlaneError.addressNotAvailable = error else { return XCTFail("got \(error)") }
            XCTAssertTrue("\(error)".contains("not assigned to this host"), "\(error)")
        }
        XCTAssertThrowsError(try DataPlane(config: DataPlaneConfig(listen: Endpoint(address: .v4(0x7f00_0001), port: 0),
                                                                   tun: TUNConfig(name: "this-name-is-way-too-long", mtu: 1440)))) { error in
            guard case DataPlaneError.invalidConfiguration = error else { return XCTFail("got \(error)") }
        }
        XCTAssertEqual("\(DataPlaneError.system(call: "bind", errno: EACCES))", "bind failed: Permission denied (errno 13)")
        XCTAssertEqual("\(DataPlaneError.tunPermission("weft0"))",
                       "creating TUN device weft0 needs root (CAP_NET_ADMIN): run as root or use --no-tun")
        XCTAssertThrowsError(try a.configureTUN(address: ipv4("10.99.0.1"), prefixLength: 24, mtu: 1440)) { error in
            guard case DataPlaneError.invalidConfiguration(let m) = error else { return XCTFail("got \(error)") }
            XCTAssertTrue(m.contains("--no-tun"), m)
        }
    }

    func testSocketBuffersAreLarge() throws {
        let a = try makePlane()
        let (r, s) = a.socketBuffers
        print("socket buffers granted: receive \(r) B, send \(s) B (uid \(getuid()))")
        if getuid() == 0 {
            XCTAssertGreaterThanOrEqual(r, 8 << 20, "SO_RCVBUFFORCE as root")
            XCTAssertGreaterThanOrEqual(s, 8 << 20)
        } else {
            XCTAssertGreaterThan(r, 0)
        }
    }

    /// The fast receive path without TUN: sessions from a real handshake, data sealed as the
    /// peer would, replay and forgery dropped and counted, unknown indices to the delegate.
    func testDataPathCountsReplaysForgeriesAndExpiry() throws {
        let pair = try SessionPair.make()
        let a = try makePlane(), b = try makePlane()
        let db = RecordingDelegate()
        b.start(delegate: db)
        a.start(delegate: RecordingDelegate())
        let now = Instant(nanoseconds: 5_000_000_000)
        b.install(pair.snapB, endpoint: endpoint(a), rejectAfter: now + .seconds(60), now: now)
        XCTAssertEqual(b.installedSessions, [pair.snapB.localIndex])

        let inner = icmpEcho(from: ipv4("10.42.1.1"), to: ipv4("10.42.2.1"))
        let c0 = pair.snapA.sendCounters.lowerBound
        let packet = sealed(inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0)
        a.send(packet, to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().peers[pair.a]?.rxPackets == 1 }, "\(b.counters())")
        XCTAssertEqual(b.counters().peers[pair.a]?.rxBytes, UInt64(inner.count))
        XCTAssertEqual(b.counters().drops("no-tun"), 1, "authenticated, but there is no TUN to write to")
        XCTAssertEqual(db.receivedCount, 0, "a data packet for an installed session never reaches the delegate")

        a.send(packet, to: endpoint(b))  // replay
        XCTAssertTrue(waitUntil { b.counters().drops("replayed-packet") == 1 })

        let forged = sealed(inner, key: Tunnel.SendKey(secret: Tunnel.Secret(Sodium.randomBytes(32))),
                            receiverIndex: pair.snapA.remoteIndex, counter: c0 + 1)
        a.send(forged, to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().drops("authentication-failed") == 1 })
        // The forged counter did not enter the window: the genuine packet with it still opens.
        a.send(sealed(inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 1), to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().peers[pair.a]?.rxPackets == 2 })

        var bad = packet; bad[2] = 1
        a.send(bad, to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().drops("malformed") == 1 })
        let ipv6Inner: [UInt8] = [0x60] + [UInt8](repeating: 0, count: 47)
        a.send(sealed(ipv6Inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 2), to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().drops("not-ipv4") == 1 })
        // Drops that belong to a session are also counted for its peer (`weft peers`).
        let perPeer = b.counters().peers[pair.a]?.drops ?? [:]
        XCTAssertEqual(perPeer["replayed-packet"], 1, "\(perPeer)")
        XCTAssertEqual(perPeer["authentication-failed"], 1, "\(perPeer)")
        XCTAssertEqual(perPeer["not-ipv4"], 1, "\(perPeer)")
        XCTAssertNil(perPeer["malformed"], "a malformed header cannot be pinned on a session")
        a.send(sealed([], key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 3), to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().keepalivesIn == 1 })
        XCTAssertEqual(b.counters().dataFromOtherEndpoint, 0, "all came from the installed endpoint")

        // Retired: the index is unknown again and goes to the delegate (the daemon's onData).
        b.retire(localIndex: pair.snapB.localIndex)
        XCTAssertEqual(b.installedSessions, [])
        let later = sealed(inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 10)
        a.send(later, to: endpoint(b))
        XCTAssertTrue(waitUntil { db.receivedCount == 1 })
        XCTAssertEqual(db.received.withLock { $0.first?.bytes }, later)

        // Expired (rejectAfter already reached): dropped as session-expired, not opened.
        b.install(pair.snapB, endpoint: endpoint(a), rejectAfter: now, now: now)
        a.send(sealed(inner, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 11), to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().drops("session-expired") == 1 })
        XCTAssertEqual(b.counters().peers[pair.a]?.rxPackets, 2)
    }

    func testInnerSourceMustBelongToTheSendingPeer() throws {
        let pair = try SessionPair.make()
        var config = DataPlaneConfig(listen: Endpoint(address: .v4(0x7f00_0001), port: 0), tun: nil)
        config.enforceInnerSource = true
        let b = try DataPlane(config: config)
        addTeardownBlock { b.stop() }
        let a = try makePlane()
        b.start(delegate: RecordingDelegate())
        b.install(pair.snapB, endpoint: endpoint(a), now: .zero)
        b.updateRoutes([RouteEntry(start: ipv4("10.42.1.0"), end: ipv4("10.42.1.255"), peer: pair.a),
                        RouteEntry(start: ipv4("10.42.9.0"), end: ipv4("10.42.9.255"), peer: NodeID(high: 9, low: 9))])
        let c0 = pair.snapA.sendCounters.lowerBound
        let own = icmpEcho(from: ipv4("10.42.1.7"), to: ipv4("10.42.2.1"))
        let spoofed = icmpEcho(from: ipv4("10.42.9.7"), to: ipv4("10.42.2.1"))
        a.send(sealed(own, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0), to: endpoint(b))
        a.send(sealed(spoofed, key: pair.snapA.sendKey, receiverIndex: pair.snapA.remoteIndex, counter: c0 + 1), to: endpoint(b))
        XCTAssertTrue(waitUntil { b.counters().drops("wrong-inner-source") == 1 }, "\(b.counters())")
        XCTAssertEqual(b.counters().innerSourceMismatch, 1)
        XCTAssertEqual(b.counters().peers[pair.a]?.rxPackets, 1, "only the packet from A's own range")
    }

    func testSendCounterReportsAndEndpointUpdates() throws {
        let pair = try SessionPair.make()
        let a = try makePlane()
        let now = Instant(nanoseconds: 1)
        a.install(pair.snapA, endpoint: Endpoint("127.0.0.1:9")!, now: now)
        let reports = a.sendCounterReports()
        XCTAssertEqual(reports.count, 1)
        XCTAssertEqual(reports.first?.localIndex, pair.snapA.localIndex)
        XCTAssertEqual(reports.first?.nextSendCounter, pair.snapA.sendCounters.lowerBound)
        a.updateEndpoint(peer: pair.b, endpoint: Endpoint("127.0.0.1:10")!)  // no crash, no effect on reports
        XCTAssertEqual(a.sendCounterReports().count, 1)
        a.retire(localIndex: pair.snapA.localIndex)
        XCTAssertTrue(a.sendCounterReports().isEmpty)
    }

    func testStopIsPromptAndIdempotent() throws {
        let a = try makePlane()
        a.start(delegate: RecordingDelegate())
        let t0 = Date()
        a.stop()
        a.stop()
        XCTAssertLessThan(Date().timeIntervalSince(t0), 0.5, "the eventfd wakes the threads")
        a.send([1, 1], to: Endpoint("127.0.0.1:9")!)  // after stop: ignored, no crash
        a.deliverToTUN([0x45])
        // The port is free again.
        let again = try DataPlane(config: DataPlaneConfig(listen: endpoint(a), tun: nil))
        again.stop()
    }

    func testStopFromADelegateCallbackDoesNotDeadlock() throws {
        final class Stopper: DataPlaneDelegate, @unchecked Sendable {
            weak var plane: DataPlane?
            let done = DispatchSemaphore(value: 0)
            func dataPlane(received datagram: [UInt8], from: Endpoint) { plane?.stop(); done.signal() }
            func dataPlane(noSessionFor peer: NodeID, packet: [UInt8]) {}
            func dataPlane(sessionExhausted localIndex: UInt32) {}
        }
        let a = try makePlane(), b = try makePlane()
        let s = Stopper()
        s.plane = b
        b.start(delegate: s)
        a.send([1, 1], to: endpoint(b))
        XCTAssertEqual(s.done.wait(timeout: .now() + 3), .success)
        XCTAssertTrue(waitUntil { (try? DataPlane(config: DataPlaneConfig(listen: self.endpoint(b), tun: nil)))?.stop() != nil },
                      "the receive thread closed the socket when its loop ended")
    }
}
