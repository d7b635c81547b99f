import WeftCore
import XCTest

typealias FakeInstance = Tunnel.Instance<FakeTunnelSuite>

/// Two nodes, A (lower NodeID, the designated initiator) and B, wired by hand.
struct TunnelPair {
    static let idA = NodeID(high: 0x1111, low: 1)
    static let idB = NodeID(high: 0x2222, low: 2)
    static let endA = Endpoint("192.0.2.1:7946")!
    static let endB = Endpoint("192.0.2.2:7946")!
    static let keysA = FakeTunnelSuite.staticKeyPair(seed: 0xA)
    static let keysB = FakeTunnelSuite.staticKeyPair(seed: 0xB)
    static let psk = Tunnel.PresharedKey(secret: Tunnel.Secret([UInt8](repeating: 0x42, count: 32)))
    static let origin = Tunnel.TimestampOrigin(wall: Tunnel.Timestamp(seconds: 1_700_000_000, nanoseconds: 0), instant: .zero)

    var a: FakeInstance
    var b: FakeInstance

    init(settings: Tunnel.Settings = .default, pskB: Tunnel.PresharedKey = TunnelPair.psk, bKnowsA: Bool = true) {
        a = TunnelPair.makeInstance(id: Self.idA, keys: Self.keysA, psk: Self.psk, seed: 1, settings: settings)
        b = TunnelPair.makeInstance(id: Self.idB, keys: Self.keysB, psk: pskB, seed: 2, settings: settings)
        _ = a.upsertPeer(Self.idB, staticKey: Self.keysB.publicKey, endpoint: Self.endB)
        if bKnowsA { _ = b.upsertPeer(Self.idA, staticKey: Self.keysA.publicKey, endpoint: Self.endA) }
    }

    static func makeInstance(id: NodeID, keys: Tunnel.StaticKeyPair, psk: Tunnel.PresharedKey, seed: UInt64,
                             settings: Tunnel.Settings = .default) -> FakeInstance {
        Tunnel.Instance(localID: id, staticKey: keys, presharedKey: psk, suite: FakeTunnelSuite(seed: seed * 1000),
                        timestampOrigin: origin, settings: settings, rng: DeterministicRNG(seed: seed))
    }

    /// Feeds one datagram to the right `on…` method of `node`.
    static func receive(_ bytes: [UInt8], by node: inout FakeInstance, from: Endpoint, now: Instant,
                        underLoad: Bool = false) -> [Tunnel.Directive] {
        switch Tunnel.kind(of: bytes) {
        case .handshakeInitiation: return node.onHandshakeInitiation(bytes, from: from, now: now, underLoad: underLoad)
        case .handshakeResponse: return node.onHandshakeResponse(bytes, from: from, now: now)
        case .cookieReply: return node.onCookieReply(bytes, from: from, now: now)
        case .data: return node.onData(bytes, from: from, now: now)
        case nil: return [.dropped(.malformed(.unknownType(bytes.count > 1 ? bytes[1] : 0)))]
        }
    }

    /// Delivers every `.send` in `directives` (from A if `fromA`) and the answers, back and
    /// forth, until quiet. Returns every directive produced on the way, tagged by node.
    @discardableResult
    mutating func run(_ directives: [Tunnel.Directive], fromA: Bool, now: Instant,
                      underLoad: Bool = false) -> (a: [Tunnel.Directive], b: [Tunnel.Directive]) {
        var logA: [Tunnel.Directive] = fromA ? directives : []
        var logB: [Tunnel.Directive] = fromA ? [] : directives
        var queue: [(bytes: [UInt8], toA: Bool)] = directives.compactMap { d in
            if case .send(let bytes, _) = d { return (bytes, !fromA) }
            return nil
        }
        var steps = 0
        while !queue.isEmpty {
            steps += 1
            precondition(steps < 1000, "TunnelPair.run does not converge")
            let (bytes, toA) = queue.removeFirst()
            let produced: [Tunnel.Directive]
            if toA {
                produced = TunnelPair.receive(bytes, by: &a, from: Self.endB, now: now)
                logA += produced
            } else {
                produced = TunnelPair.receive(bytes, by: &b, from: Self.endA, now: now, underLoad: underLoad)
                logB += produced
            }
            for d in produced { if case .send(let out, _) = d { queue.append((out, !toA)) } }
        }
        return (logA, logB)
    }

    /// A connects and both sides end up with a confirmed session.
    mutating func establish(now: Instant) {
        let out = a.connect(Self.idB, now: now)
        run(out, fromA: true, now: now)
    }
}

extension Array where Element == Tunnel.Directive {
    var sent: [[UInt8]] { compactMap { if case .send(let b, _) = $0 { return b } else { return nil } } }
    var delivered: [[UInt8]] { compactMap { if case .deliver(let b, _) = $0 { return b } else { return nil } } }
    var drops: [Tunnel.DropReason] { compactMap { if case .dropped(let r) = $0 { return r } else { return nil } } }
    var established: [Tunnel.SessionInfo] { compactMap { if case .sessionEstablished(let i) = $0 { return i } else { return nil } } }
    var retired: [UInt32] { compactMap { if case .sessionRetired(_, let i) = $0 { return i } else { return nil } } }
    func sent(kind: Tunnel.MessageKind) -> [[UInt8]] { sent.filter { Tunnel.kind(of: $0) == kind } }
}

func at(_ seconds: Double) -> Instant { Instant(nanoseconds: Int64(seconds * 1e9)) }
