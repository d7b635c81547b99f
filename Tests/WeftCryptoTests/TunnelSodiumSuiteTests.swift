import WeftCore
import XCTest

@testable import WeftCrypto

final class TunnelSodiumSuiteTests: XCTestCase {
    override func setUpWithError() throws { try Sodium.initialize() }

    let suite = SodiumTunnelSuite()
    let clusterKey = ClusterKey.generate()
    /// Two identities ordered so that A has the lower NodeID (the designated initiator).
    static let identities: (IdentityKeyPair, IdentityKeyPair) = {
        let x = try! IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 0x0A, count: 32)))
        let y = try! IdentityKeyPair(seed: SecretBytes([UInt8](repeating: 0x0B, count: 32)))
        return x.nodeID < y.nodeID ? (x, y) : (y, x)
    }()
    let idKeyA = TunnelSodiumSuiteTests.identities.0
    let idKeyB = TunnelSodiumSuiteTests.identities.1
    let endA = Endpoint("127.0.0.1:7001")!
    let endB = Endpoint("127.0.0.1:7002")!

    typealias Node = Tunnel.Instance<SodiumTunnelSuite>

    func makeNode(_ identity: IdentityKeyPair, clusterKey: ClusterKey, seed: UInt64) throws -> Node {
        let keys = try XCTUnwrap(SodiumTunnelSuite.staticKeyPair(identity: identity))
        return Tunnel.Instance(localID: identity.nodeID, staticKey: keys,
                               presharedKey: SodiumTunnelSuite.presharedKey(clusterKey: clusterKey), suite: suite,
                               timestampOrigin: .init(wall: .init(seconds: 1_800_000_000, nanoseconds: 0), instant: .zero),
                               rng: DeterministicRNG(seed: seed))
    }

    /// Two nodes that know each other; returns them with the lower NodeID first.
    func makePair(clusterKeyB: ClusterKey? = nil) throws -> (Node, Node) {
        var a = try makeNode(idKeyA, clusterKey: clusterKey, seed: 1)
        var b = try makeNode(idKeyB, clusterKey: clusterKeyB ?? clusterKey, seed: 2)
        _ = a.upsertPeer(idKeyB.nodeID, staticKey: try XCTUnwrap(SodiumTunnelSuite.staticPublicKey(idKeyB.publicKey)), endpoint: endB)
        _ = b.upsertPeer(idKeyA.nodeID, staticKey: try XCTUnwrap(SodiumTunnelSuite.staticPublicKey(idKeyA.publicKey)), endpoint: endA)
        return (a, b)
    }

    func sent(_ d: [Tunnel.Directive]) -> [[UInt8]] { d.compactMap { if case .send(let b, _) = $0 { return b } else { return nil } } }
    func established(_ d: [Tunnel.Directive]) -> [Tunnel.SessionInfo] {
        d.compactMap { if case .sessionEstablished(let i) = $0 { return i } else { return nil } }
    }

    /// Runs a full handshake A → B and returns both sides' snapshots.
    func handshake(_ a: inout Node, _ b: inout Node, now: Instant) throws -> (Tunnel.SessionSnapshot, Tunnel.SessionSnapshot) {
        let initiation = sent(a.connect(idKeyB.nodeID, now: now))
        XCTAssertEqual(initiation.first?.count, 148)
        let response = sent(b.onHandshakeInitiation(try XCTUnwrap(initiation.first), from: endA, now: now))
        XCTAssertEqual(response.first?.count, 92)
        let toA = a.onHandshakeResponse(try XCTUnwrap(response.first), from: endB, now: now)
        let infoA = try XCTUnwrap(established(toA).first)
        let keepalive = try XCTUnwrap(sent(toA).first)
        let infoB = try XCTUnwrap(established(b.onData(keepalive, from: endA, now: now)).first)
        return (try XCTUnwrap(a.handOffSession(localIndex: infoA.localIndex, now: now)),
                try XCTUnwrap(b.handOffSession(localIndex: infoB.localIndex, now: now)))
    }

    func testPrimitiveVectors() {
        // BLAKE2b-256 of the empty string.
        XCTAssertEqual(Hex.encode(suite.hash([])), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8")
        XCTAssertEqual(suite.hash([[1, 2], [3]]), suite.hash([[1], [2, 3]]), "hash covers the concatenation")
        // X25519 agrees both ways; a zero public key is refused.
        let e1 = suite.generateEphemeralKeyPair(), e2 = suite.generateEphemeralKeyPair()
        XCTAssertEqual(suite.dh(secret: e1.secret, publicKey: e2.publicKey), suite.dh(secret: e2.secret, publicKey: e1.publicKey))
        XCTAssertNil(suite.dh(secret: e1.secret, publicKey: Tunnel.PublicKey(bytes: [UInt8](repeating: 0, count: 32))!))
        XCTAssertNotEqual(e1.publicKey, e2.publicKey)
        // KDF outputs are distinct and deterministic.
        let ck = Tunnel.Secret([UInt8](repeating: 1, count: 32))
        let k3 = suite.kdf(chainingKey: ck, input: [9], outputs: 3)
        XCTAssertEqual(k3.count, 3)
        XCTAssertNotEqual(k3[0], k3[1]); XCTAssertNotEqual(k3[1], k3[2])
        XCTAssertEqual(suite.kdf(chainingKey: ck, input: [9], outputs: 1)[0], k3[0], "KDF1 is the first output of KDF3")
        XCTAssertEqual(suite.mac(key: ck, message: [1, 2, 3]).count, 16)
        XCTAssertNotEqual(suite.mac(key: ck, message: [1, 2, 3]), suite.mac(key: ck, message: [1, 2, 4]))
    }

    func testStaticKeyMatchesIdentityConversion() throws {
        let keys = try XCTUnwrap(SodiumTunnelSuite.staticKeyPair(identity: idKeyA))
        XCTAssertEqual(keys.publicKey.bytes, idKeyA.publicKey.x25519())
        XCTAssertEqual(keys.publicKey.bytes, X25519.publicKey(secretKey: idKeyA.x25519SecretKey()))
        XCTAssertEqual("\(keys.secret)", "<redacted 32 bytes>")
    }

    func testAEADNonceAndTamper() throws {
        let key = Tunnel.Secret(Sodium.randomBytes(32))
        let ad: [UInt8] = [1, 2, 3]
        let sealed = suite.seal(key: key, counter: 7, plaintext: [10, 20, 30], associatedData: ad)
        XCTAssertEqual(sealed.count, 3 + 16)
        XCTAssertEqual(suite.open(key: key, counter: 7, ciphertext: sealed, associatedData: ad), [10, 20, 30])
        XCTAssertNil(suite.open(key: key, counter: 8, ciphertext: sealed, associatedData: ad), "counter is the nonce")
        XCTAssertNil(suite.open(key: key, counter: 7, ciphertext: sealed, associatedData: [1, 2]), "AD is authenticated")
        XCTAssertNil(suite.open(key: Tunnel.Secret(Sodium.randomBytes(32)), counter: 7, ciphertext: sealed, associatedData: ad))
        XCTAssertNotEqual(suite.seal(key: key, counter: 8, plaintext: [10, 20, 30], associatedData: ad), sealed)
        XCTAssertEqual(suite.open(key: key, counter: 0, ciphertext: suite.seal(key: key, counter: 0, plaintext: [], associatedData: []),
                                  associatedData: []), [])
        XCTAssertNil(suite.open(key: key, counter: 0, ciphertext: [1, 2, 3], associatedData: []), "shorter than a tag")
    }

    func testHandshakeWithRealCryptoAndDataBothWays() throws {
        var (a, b) = try makePair()
        XCTAssertLessThan(idKeyA.nodeID, idKeyB.nodeID, "test assumes A is the designated initiator")
        let (snapA, snapB) = try handshake(&a, &b, now: .zero)
        XCTAssertEqual(snapA.sendKey.secret, snapB.receiveKey.secret)
        XCTAssertEqual(snapA.receiveKey.secret, snapB.sendKey.secret)
        XCTAssertNotEqual(snapA.sendKey.secret, snapA.receiveKey.secret)
        XCTAssertEqual(snapA.remoteIndex, snapB.localIndex)

        // Data plane A seals with the snapshot; data plane B opens with its snapshot.
        let packet = Sodium.randomBytes(1400)
        var datagram = [UInt8](repeating: 0, count: packet.count + Tunnel.dataOverhead)
        let n = datagram.withUnsafeMutableBytes { o in
            packet.withUnsafeBytes { Tunnel.sealData(suite: suite, key: snapA.sendKey, receiverIndex: snapA.remoteIndex,
                                                     counter: snapA.sendCounters.lowerBound, plaintext: $0, into: o) }
        }
        XCTAssertEqual(n, 1432)
        XCTAssertNil(datagram.firstRange(of: packet.prefix(32)), "no plaintext on the wire")
        let header = try Tunnel.DataHeader(parsing: datagram)
        XCTAssertEqual(header.receiverIndex, snapB.localIndex)
        var window = snapB.replayWindow
        XCTAssertTrue(window.wouldAccept(header.counter))
        var plain = [UInt8](repeating: 0, count: 1400)
        let opened = plain.withUnsafeMutableBytes { o in
            datagram.withUnsafeBytes { Tunnel.openData(suite: suite, key: snapB.receiveKey, header: header, packet: $0, into: o) }
        }
        XCTAssertEqual(opened, 1400)
        XCTAssertEqual(plain, packet)
        XCTAssertTrue(window.accept(header.counter))
        XCTAssertFalse(window.wouldAccept(header.counter), "replay")

        // Every single-bit change anywhere (header, ciphertext, tag) fails authentication.
        for position in [0 + 4, 8, 15, 16, 700, datagram.count - 1] {
            var t = datagram
            t[position] ^= 0x01
            guard let h = try? Tunnel.DataHeader(parsing: t) else { continue }
            let r = plain.withUnsafeMutableBytes { o in
                t.withUnsafeBytes { Tunnel.openData(suite: suite, key: snapB.receiveKey, header: h, packet: $0, into: o) }
            }
            XCTAssertNil(r, "flipped byte \(position) accepted")
        }
    }

    func testInstanceSlowPathWithRealCrypto() throws {
        var (a, b) = try makePair()
        let initiation = sent(a.onOutbound([1, 2, 3], to: idKeyB.nodeID, now: .zero))[0]
        let response = sent(b.onHandshakeInitiation(initiation, from: endA, now: .zero))[0]
        let flushed = sent(a.onHandshakeResponse(response, from: endB, now: .zero))
        XCTAssertEqual(flushed.count, 1)
        let delivered = b.onData(flushed[0], from: endA, now: .zero)
        XCTAssertTrue(delivered.contains(.deliver([1, 2, 3], from: idKeyA.nodeID)))
        XCTAssertEqual(b.onData(flushed[0], from: endA, now: .zero), [.dropped(.replayedPacket)])
        var tampered = sent(a.onOutbound([4], to: idKeyB.nodeID, now: .zero))[0]
        tampered[tampered.count - 1] ^= 0xFF
        XCTAssertEqual(b.onData(tampered, from: endA, now: .zero), [.dropped(.authenticationFailed)])
        XCTAssertEqual(b.onHandshakeInitiation(initiation, from: endA, now: .zero), [.dropped(.replayedInitiation)])
    }

    func testWrongClusterKeyGetsNoReply() throws {
        var (a, b) = try makePair(clusterKeyB: ClusterKey.generate())
        let initiation = sent(a.connect(idKeyB.nodeID, now: .zero))[0]
        XCTAssertEqual(b.onHandshakeInitiation(initiation, from: endA, now: .zero), [.dropped(.badMAC1)])
        XCTAssertEqual(b.onHandshakeInitiation(initiation, from: endA, now: .zero, underLoad: true), [.dropped(.badMAC1)])
    }

    func testForwardSecrecySessionKeysDifferAcrossHandshakes() throws {
        var (a, b) = try makePair()
        let (first, _) = try handshake(&a, &b, now: .zero)
        // A fresh pair of instances with the same static keys and cluster key.
        var (a2, b2) = try makePair()
        let (second, _) = try handshake(&a2, &b2, now: .zero)
        XCTAssertNotEqual(first.sendKey.secret, second.sendKey.secret)
        XCTAssertNotEqual(first.receiveKey.secret, second.receiveKey.secret)
        // A rekey on the same instances also yields new keys.
        let rekey = sent(a.onTick(now: .zero + .seconds(120)))
        XCTAssertEqual(rekey.count, 1)
        let response = sent(b.onHandshakeInitiation(rekey[0], from: endA, now: .zero + .seconds(120)))
        let info = try XCTUnwrap(established(a.onHandshakeResponse(response[0], from: endB, now: .zero + .seconds(120))).first)
        let third = try XCTUnwrap(a.handOffSession(localIndex: info.localIndex, now: .zero + .seconds(120)))
        XCTAssertNotEqual(third.sendKey.secret, first.sendKey.secret)
    }

    func testCookieRoundTripWithRealCrypto() throws {
        var (a, b) = try makePair()
        let initiation = sent(a.connect(idKeyB.nodeID, now: .zero))[0]
        let cookie = sent(b.onHandshakeInitiation(initiation, from: endA, now: .zero, underLoad: true))
        XCTAssertEqual(cookie.first?.count, 64)
        XCTAssertEqual(a.onCookieReply(cookie[0], from: endB, now: .zero), [])
        let retryAt = try XCTUnwrap(a.nextWakeup)
        let retry = sent(a.onTick(now: retryAt))[0]
        let response = sent(b.onHandshakeInitiation(retry, from: endA, now: retryAt, underLoad: true))
        XCTAssertEqual(response.first?.count, 92, "MAC2 from the cookie is accepted under load")
    }

    /// Not an assertion: prints seal/open throughput for 1400-byte packets.
    func testBenchmarkSealOpen1400() throws {
        let key = Tunnel.SendKey(secret: Tunnel.Secret(Sodium.randomBytes(32)))
        let rkey = Tunnel.ReceiveKey(secret: key.secret)
        let packet = Sodium.randomBytes(1400)
        var datagram = [UInt8](repeating: 0, count: 1400 + Tunnel.dataOverhead)
        var plain = [UInt8](repeating: 0, count: 1400)
        let iterations = 50_000
        let clock = ContinuousClock()
        let sealTime = clock.measure {
            datagram.withUnsafeMutableBytes { o in
                packet.withUnsafeBytes { p in
                    for i in 0..<iterations {
                        _ = Tunnel.sealData(suite: suite, key: key, receiverIndex: 1, counter: UInt64(i), plaintext: p, into: o)
                    }
                }
            }
        }
        let header = try Tunnel.DataHeader(parsing: datagram)
        var ok = 0
        let openTime = clock.measure {
            plain.withUnsafeMutableBytes { o in
                datagram.withUnsafeBytes { d in
                    for _ in 0..<iterations {
                        if Tunnel.openData(suite: suite, key: rkey, header: header, packet: d, into: o) != nil { ok += 1 }
                    }
                }
            }
        }
        XCTAssertEqual(ok, iterations)
        func report(_ name: String, _ d: Duration) {
            let s = d.seconds
            print(String(describing: "tunnel bench \(name): \(iterations) × 1400 B in \(Int(s * 1000)) ms = "
                + "\(Int(Double(iterations) / s)) packets/s, \(Int(Double(iterations * 1400) * 8 / s / 1e6)) Mbit/s (one core)"))
        }
        report("seal", sealTime)
        report("open", openTime)
    }
}
