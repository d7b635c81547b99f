import Foundation
import Synchronization
import WeftCore
import WeftCrypto
import WeftDataPlane
import XCTest

/// Records what the data plane hands to the daemon.
final class RecordingDelegate: DataPlaneDelegate {
    struct Received: Sendable { let bytes: [UInt8]; let from: Endpoint }
    let received = Mutex<[Received]>([])
    let noSession = Mutex<[(NodeID, [UInt8])]>([])
    let exhausted = Mutex<[UInt32]>([])

    func dataPlane(received datagram: [UInt8], from: Endpoint) {
        received.withLock { $0.append(Received(bytes: datagram, from: from)) }
    }
    func dataPlane(noSessionFor peer: NodeID, packet: [UInt8]) {
        noSession.withLock { $0.append((peer, packet)) }
    }
    func dataPlane(sessionExhausted localIndex: UInt32) {
        exhausted.withLock { $0.append(localIndex) }
    }

    var receivedCount: Int { received.withLock { $0.count } }
}

/// Polls `condition` every 5 ms for at most `seconds`.
@discardableResult
func waitUntil(seconds: Double = 3, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// Two tunnel instances with real crypto and a completed handshake, as the daemon would run
/// it; the snapshots are what `handOffSession` hands to the data plane.
struct SessionPair {
    typealias Node = Tunnel.Instance<SodiumTunnelSuite>
    let idA: IdentityKeyPair
    let idB: IdentityKeyPair
    let snapA: Tunnel.SessionSnapshot
    let snapB: Tunnel.SessionSnapshot
    var a: NodeID { idA.nodeID }
    var b: NodeID { idB.nodeID }

    static func make(now: Instant = Instant(nanoseconds: 1_000_000_000)) throws -> SessionPair {
        try Sodium.initialize()
        let suite = SodiumTunnelSuite()
        let clusterKey = ClusterKey.generate()
        let x = IdentityKeyPair.generate(), y = IdentityKeyPair.generate()
        let (idA, idB) = x.nodeID < y.nodeID ? (x, y) : (y, x)
        let endA = Endpoint("127.0.0.1:7001")!, endB = Endpoint("127.0.0.1:7002")!
        func node(_ id: IdentityKeyPair, seed: UInt64) throws -> Node {
            Tunnel.Instance(localID: id.nodeID, staticKey: try XCTUnwrap(SodiumTunnelSuite.staticKeyPair(identity: id)),
                            presharedKey: SodiumTunnelSuite.presharedKey(clusterKey: clusterKey), suite: suite,
                            timestampOrigin: .init(wall: .init(seconds: 1_800_000_000, nanoseconds: 0), instant: .zero),
                            rng: DeterministicRNG(seed: seed))
        }
        var a = try node(idA, seed: 1), b = try node(idB, seed: 2)
        _ = a.upsertPeer(idB.nodeID, staticKey: try XCTUnwrap(SodiumTunnelSuite.staticPublicKey(idB.publicKey)), endpoint: endB)
        _ = b.upsertPeer(idA.nodeID, staticKey: try XCTUnwrap(SodiumTunnelSuite.staticPublicKey(idA.publicKey)), endpoint: endA)
        func sent(_ d: [Tunnel.Directive]) -> [[UInt8]] { d.compactMap { if case .send(let m, _) = $0 { return m } else { return nil } } }
        func established(_ d: [Tunnel.Directive]) -> [Tunnel.SessionInfo] {
            d.compactMap { if case .sessionEstablished(let i) = $0 { return i } else { return nil } }
        }
        let initiation = try XCTUnwrap(sent(a.connect(idB.nodeID, now: now)).first)
        let response = try XCTUnwrap(sent(b.onHandshakeInitiation(initiation, from: endA, now: now)).first)
        let toA = a.onHandshakeResponse(response, from: endB, now: now)
        let infoA = try XCTUnwrap(established(toA).first)
        let keepalive = try XCTUnwrap(sent(toA).first)
        let infoB = try XCTUnwrap(established(b.onData(keepalive, from: endA, now: now)).first)
        return SessionPair(idA: idA, idB: idB,
                           snapA: try XCTUnwrap(a.handOffSession(localIndex: infoA.localIndex, now: now)),
                           snapB: try XCTUnwrap(b.handOffSession(localIndex: infoB.localIndex, now: now)))
    }
}

/// Seals `inner` the way a peer's data plane would (for crafting replays and forgeries).
func sealed(_ inner: [UInt8], key: Tunnel.SendKey, receiverIndex: UInt32, counter: UInt64) -> [UInt8] {
    var out = [UInt8](repeating: 0, count: inner.count + Tunnel.dataOverhead)
    let n = out.withUnsafeMutableBytes { o in
        inner.withUnsafeBytes { Tunnel.sealData(suite: SodiumTunnelSuite(), key: key, receiverIndex: receiverIndex, counter: counter, plaintext: $0, into: o) }
    }
    return Array(out[0..<n])
}

/// A minimal IPv4/ICMP echo request (checksums correct) from `src` to `dst`, host order.
func icmpEcho(from src: UInt32, to dst: UInt32, payload: Int = 56, sequence: UInt16 = 1) -> [UInt8] {
    var icmp: [UInt8] = [8, 0, 0, 0, 0x12, 0x34, UInt8(sequence >> 8), UInt8(sequence & 0xff)]
    icmp += (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
    let c = internetChecksum(icmp)
    icmp[2] = UInt8(c >> 8); icmp[3] = UInt8(c & 0xff)
    let total = 20 + icmp.count
    var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 1, 0, 0]
    for v in [src, dst] { ip += [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    let hc = internetChecksum(ip)
    ip[10] = UInt8(hc >> 8); ip[11] = UInt8(hc & 0xff)
    return ip + icmp
}

func internetChecksum(_ b: [UInt8]) -> UInt16 {
    var sum: UInt32 = 0
    var i = 0
    while i + 1 < b.count { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
    if i < b.count { sum += UInt32(b[i]) << 8 }
    while sum >> 16 != 0 { sum = (sum & 0xffff) + (sum >> 16) }
    return ~UInt16(sum)
}

func ipv4(_ s: String) -> UInt32 {
    guard case .v4(let a) = IPAddress(s)! else { fatalError("not IPv4: \(s)") }
    return a
}
