import WeftCore
import XCTest

/// Two nodes over a lossy, reordering, duplicating link for half an hour of simulated time.
final class TunnelSimulationTests: XCTestCase {
    struct InFlight { var at: Instant; var bytes: [UInt8]; var toA: Bool }

    func testLossyLinkNeverReusesNoncesNeverDeliversTwiceAndRecovers() {
        for seed: UInt64 in [1, 2, 3] {
            run(seed: seed)
        }
    }

    func run(seed: UInt64) {
        var pair = TunnelPair()
        var rng = DeterministicRNG(seed: seed)
        var inflight: [InFlight] = []
        var wireNonces: [Bool: Set<[UInt8]>] = [true: [], false: []]  // per sender: receiver index ‖ counter
        var delivered: [Bool: Set<UInt64>] = [true: [], false: []]      // per receiver: sequence numbers
        var sentSeq: [Bool: UInt64] = [true: 0, false: 0]
        var lastDelivery: [Bool: Instant] = [:]
        let context = "seed \(seed)"

        func emit(_ directives: [Tunnel.Directive], fromA: Bool, now: Instant) {
            for d in directives {
                switch d {
                case .send(let bytes, _):
                    if Tunnel.kind(of: bytes) == .data {
                        let nonce = Array(bytes[4..<16])
                        XCTAssertFalse(wireNonces[fromA]!.contains(nonce), "\(context): nonce reused")
                        wireNonces[fromA]!.insert(nonce)
                    }
                    if Double.random(in: 0..<1, using: &rng) < 0.25 { continue }  // loss
                    let copies = Double.random(in: 0..<1, using: &rng) < 0.05 ? 2 : 1  // duplication
                    for _ in 0..<copies {
                        let delay = Duration.milliseconds(Int64.random(in: 1...800, using: &rng))  // reordering
                        inflight.append(InFlight(at: now + delay, bytes: bytes, toA: !fromA))
                    }
                case .deliver(let bytes, _):
                    var seq: UInt64 = 0
                    for b in bytes.prefix(8) { seq = seq << 8 | UInt64(b) }
                    XCTAssertFalse(delivered[!fromA]!.contains(seq), "\(context): packet delivered twice")
                    delivered[!fromA]!.insert(seq)
                    lastDelivery[!fromA] = now
                default: break
                }
            }
        }

        var now = Instant.zero
        let end = at(1800)
        while now < end {
            now = now + .milliseconds(250)
            // Deliver what is due, in arrival order.
            inflight.sort { $0.at < $1.at }
            while let first = inflight.first, first.at <= now {
                inflight.removeFirst()
                if first.toA {
                    emit(TunnelPair.receive(first.bytes, by: &pair.a, from: TunnelPair.endB, now: first.at), fromA: true, now: first.at)
                } else {
                    emit(TunnelPair.receive(first.bytes, by: &pair.b, from: TunnelPair.endA, now: first.at), fromA: false, now: first.at)
                }
            }
            if let w = pair.a.nextWakeup, w <= now { emit(pair.a.onTick(now: now), fromA: true, now: now) }
            if let w = pair.b.nextWakeup, w <= now { emit(pair.b.onTick(now: now), fromA: false, now: now) }
            for fromA in [true, false] where Double.random(in: 0..<1, using: &rng) < 0.5 {
                sentSeq[fromA]! += 1
                let s = sentSeq[fromA]!
                let payload = (0..<8).map { UInt8(truncatingIfNeeded: s >> UInt64(56 - 8 * $0)) } + [0xEE]
                if fromA { emit(pair.a.onOutbound(payload, to: TunnelPair.idB, now: now), fromA: true, now: now) }
                else { emit(pair.b.onOutbound(payload, to: TunnelPair.idA, now: now), fromA: false, now: now) }
            }
        }
        for toA in [true, false] {
            let sent = Double(sentSeq[!toA]!)
            let got = Double(delivered[toA]!.count)
            XCTAssertGreaterThan(got / sent, 0.5, "\(context): too little got through (\(Int(got))/\(Int(sent)))")
            XCTAssertGreaterThan(lastDelivery[toA] ?? .zero, at(1790), "\(context): traffic stopped")
        }
        XCTAssertGreaterThan(wireNonces[true]!.count, 1000)
        print("tunnel sim \(context): A→B \(delivered[false]!.count)/\(sentSeq[true]!), B→A \(delivered[true]!.count)/\(sentSeq[false]!), "
            + "A \(pair.a.status(of: TunnelPair.idB, now: now)!.state), B \(pair.b.status(of: TunnelPair.idA, now: now)!.state)")
    }
}
