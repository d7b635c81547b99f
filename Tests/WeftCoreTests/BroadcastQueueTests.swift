import XCTest

@testable import WeftCore

/// The retransmit queue against a plain model of its rules (one item per key, the newest
/// replacing the older; keyless items never replace each other; least-sent first, newest first
/// among equals; dropped after `limit` sends; `discard(after:)` drops what came after a mark).
/// The queue keeps a key index for speed (at n = 100 the key scan was the node's hottest path);
/// this checks the index never changes what is sent.
final class BroadcastQueueTests: XCTestCase {
    private struct ModelItem { var key: Membership.BroadcastQueue.Key; var payload: [UInt8]; var transmits: Int; var order: UInt64 }

    func testMatchesTheSimpleModelUnderRandomOperations() {
        let origin = NodeID(high: 1, low: 1)
        for seed in 0..<100 {
            var rng = DeterministicRNG(seed: UInt64(seed))
            var q = Membership.BroadcastQueue()
            var model: [ModelItem] = []
            var counter: UInt64 = 0
            var marks: [UInt64] = []
            for step in 0..<400 {
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<5:
                    let keyed = Bool.random(using: &rng)
                    let key: [UInt8]? = keyed ? [UInt8(Int.random(in: 0..<6, using: &rng))] : nil
                    let payload = [UInt8](repeating: UInt8(step & 0xff), count: Int.random(in: 1...40, using: &rng))
                    q.enqueue(.app(Membership.AppBroadcast(origin: origin, payload: payload)), key: key.map { .app($0) })
                    counter += 1
                    let k: Membership.BroadcastQueue.Key = key.map { .app($0) } ?? .unique(counter)
                    model.removeAll { $0.key == k }
                    model.insert(ModelItem(key: k, payload: payload, transmits: 0, order: counter), at: 0)
                case 5..<8:
                    let budget = Int.random(in: 20...300, using: &rng)
                    let limit = Int.random(in: 1...4, using: &rng)
                    let got = q.take(budget: budget, limit: limit).broadcasts.map(\.payload)
                    var remaining = budget, want: [[UInt8]] = [], touched: [Int] = []
                    for i in model.indices {
                        if remaining < 18 { break }
                        let size = 18 + model[i].payload.count
                        guard size <= remaining, want.count < Membership.Piggyback.maxItems else { continue }
                        want.append(model[i].payload)
                        remaining -= size
                        touched.append(i)
                    }
                    if !touched.isEmpty {  // a datagram that took nothing changes nothing
                        for i in touched { model[i].transmits += 1 }
                        model.removeAll { $0.transmits >= limit }
                        model.sort { ($0.transmits, $1.order) < ($1.transmits, $0.order) }
                    }
                    XCTAssertEqual(got, want, "seed \(seed) step \(step)")
                case 8:
                    marks.append(q.mark)
                default:
                    guard let m = marks.popLast() else { continue }
                    q.discard(after: m)
                    model.removeAll { $0.order > m }
                }
                XCTAssertEqual(q.items.map(\.order), model.map(\.order), "seed \(seed) step \(step)")
            }
        }
    }
}
