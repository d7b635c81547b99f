// Fuzz target: two Tunnel.Instances (A and B, with the deterministic FakeTunnelSuite from
// Tests/WeftCoreTests, so handshakes complete and mutated packets reach the code behind the
// MACs and AEADs) driven by a script: outbound packets, ticks, raw datagrams, and captured
// packets delivered as they are, replayed, or with one byte flipped.
// Properties: nothing traps; no inner packet is delivered more often than it was sent
// (a replayed data packet is never delivered twice).
import WeftCore

private let idA = NodeID(high: 0x1111, low: 1), idB = NodeID(high: 0x2222, low: 2)
private let endA = Endpoint("192.0.2.1:7946")!, endB = Endpoint("192.0.2.2:7946")!
private let psk = Tunnel.PresharedKey(secret: Tunnel.Secret([UInt8](repeating: 0x42, count: 32)))
private let origin = Tunnel.TimestampOrigin(wall: Tunnel.Timestamp(seconds: 1_700_000_000, nanoseconds: 0), instant: .zero)

private func make(_ id: NodeID, seed: UInt64) -> Tunnel.Instance<FakeTunnelSuite> {
    Tunnel.Instance(localID: id, staticKey: FakeTunnelSuite.staticKeyPair(seed: seed), presharedKey: psk,
                    suite: FakeTunnelSuite(seed: seed * 1000), timestampOrigin: origin, rng: DeterministicRNG(seed: seed))
}

private func receive(_ bytes: [UInt8], by node: inout Tunnel.Instance<FakeTunnelSuite>, from: Endpoint, now: Instant,
                     underLoad: Bool) -> [Tunnel.Directive] {
    switch Tunnel.kind(of: bytes) {
    case .handshakeInitiation: return node.onHandshakeInitiation(bytes, from: from, now: now, underLoad: underLoad)
    case .handshakeResponse: return node.onHandshakeResponse(bytes, from: from, now: now)
    case .cookieReply: return node.onCookieReply(bytes, from: from, now: now)
    case .data: return node.onData(bytes, from: from, now: now)
    case nil: return []
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTunnelInstance(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let script = Array(UnsafeBufferPointer(start: data, count: size))
    var a = make(idA, seed: 0xA), b = make(idB, seed: 0xB)
    _ = a.upsertPeer(idB, staticKey: FakeTunnelSuite.staticKeyPair(seed: 0xB).publicKey, endpoint: endB)
    _ = b.upsertPeer(idA, staticKey: FakeTunnelSuite.staticKeyPair(seed: 0xA).publicKey, endpoint: endA)
    var now = Instant(nanoseconds: 1_000_000_000)
    var captured: [(bytes: [UInt8], toA: Bool)] = []
    var sent: [[UInt8]: Int] = [:], delivered: [[UInt8]: Int] = [:]
    var i = 0
    func next() -> UInt8? { guard i < script.count else { return nil }; defer { i += 1 }; return script[i] }
    func handle(_ ds: [Tunnel.Directive], fromA: Bool) {
        for d in ds {
            switch d {
            case .send(let bytes, _): if captured.count < 64 { captured.append((bytes, !fromA)) }
            case .deliver(let p, _):
                delivered[p, default: 0] += 1
                precondition(delivered[p]! <= sent[p, default: 0], "an inner packet was delivered more often than sent")
            default: break
            }
        }
    }
    var steps = 0
    while let op = next(), steps < 200 {
        steps += 1
        switch op % 6 {
        case 0:  // A or B sends an inner packet
            let n = Int(next() ?? 0) % 64
            var p = [UInt8(steps & 0xff), UInt8(steps >> 8)]
            while p.count < n, let b = next() { p.append(b) }
            sent[p, default: 0] += 1
            if op & 0x80 == 0 { handle(a.onOutbound(p, to: idB, now: now), fromA: true) } else { handle(b.onOutbound(p, to: idA, now: now), fromA: false) }
        case 1:  // deliver the oldest captured packet
            guard !captured.isEmpty else { continue }
            let c = captured.removeFirst()
            if c.toA { handle(receive(c.bytes, by: &a, from: endB, now: now, underLoad: op & 0x40 != 0), fromA: true) }
            else { handle(receive(c.bytes, by: &b, from: endA, now: now, underLoad: op & 0x40 != 0), fromA: false) }
        case 2:  // replay a captured packet (kept), or flip one byte of it
            guard !captured.isEmpty else { continue }
            let k = Int(next() ?? 0) % captured.count
            var c = captured[k]
            if op & 0x80 != 0, !c.bytes.isEmpty { c.bytes[Int(next() ?? 0) % c.bytes.count] ^= next() ?? 1 }
            if c.toA { handle(receive(c.bytes, by: &a, from: endB, now: now, underLoad: false), fromA: true) }
            else { handle(receive(c.bytes, by: &b, from: endA, now: now, underLoad: false), fromA: false) }
        case 3:  // time passes (up to ~4 min)
            now = now + .milliseconds(Int64(next() ?? 0) * 1000)
            handle(a.onTick(now: now), fromA: true)
            handle(b.onTick(now: now), fromA: false)
        case 4:  // raw bytes from the wire
            let n = Int(next() ?? 0) % 160
            var raw: [UInt8] = []
            while raw.count < n, let b = next() { raw.append(b) }
            handle(receive(raw, by: &b, from: endA, now: now, underLoad: op & 0x40 != 0), fromA: false)
        default:  // drop the oldest captured packet (loss)
            if !captured.isEmpty { captured.removeFirst() }
        }
    }
    return 0
}
