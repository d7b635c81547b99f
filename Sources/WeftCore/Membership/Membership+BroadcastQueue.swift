extension Membership {
    /// Pending piggyback items: member updates (one per member, the newest replaces the older)
    /// and application broadcasts (one per key; keyless ones never replace each other).
    ///
    /// Selection is least-transmitted first, newest first among equals (memberlist's
    /// TransmitLimitedQueue order); an item is dropped after `limit` transmissions. Items that
    /// don't fit the remaining budget are skipped and wait for a later datagram.
    struct BroadcastQueue: Sendable {
        enum Key: Hashable, Sendable {
            case member(NodeID)
            case app([UInt8])
            case unique(UInt64)
        }
        enum Payload: Sendable {
            case update(Update)
            case app(AppBroadcast)
            var size: Int {
                switch self {
                case .update(let u): return u.encodedSize
                case .app(let a): return a.encodedSize
                }
            }
        }
        struct Item: Sendable {
            var key: Key
            var payload: Payload
            var transmits: Int
            var order: UInt64
        }

        /// Kept sorted by (transmits ascending, order descending).
        private(set) var items: [Item] = []
        /// The order of the item queued under each key (keyless items are not listed), so a
        /// replacement finds its predecessor by comparing integers instead of scanning keys:
        /// at n = 100, under churn, the key scan (which copies every item it looks at) was the
        /// busiest code of the whole node.
        private var orderOfKey: [Key: UInt64] = [:]
        private var counter: UInt64 = 0

        var count: Int { items.count }
        var isEmpty: Bool { items.isEmpty }

        mutating func enqueue(_ payload: Payload, key: Key?) {
            counter &+= 1
            if let key {
                if let old = orderOfKey[key], let i = items.firstIndex(where: { $0.order == old }) {
                    items.remove(at: i)
                }
                orderOfKey[key] = counter
            }
            items.insert(Item(key: key ?? .unique(counter), payload: payload, transmits: 0, order: counter), at: 0)
        }

        /// Removes the items `drop` selects, keeping `orderOfKey` in step.
        private mutating func removeItems(where drop: (Item) -> Bool) {
            for i in items.indices where drop(items[i]) {
                if case .unique = items[i].key { continue }
                if orderOfKey[items[i].key] == items[i].order { orderOfKey[items[i].key] = nil }
            }
            items.removeAll(where: drop)
        }

        /// The order of the newest item so far: `discard(after:)` undoes what came later.
        var mark: UInt64 { counter }

        /// Drops the items queued after `mark` (an undone transaction's news). An older item they
        /// had replaced is not brought back: its news is only re-sent later (push-pull repairs).
        mutating func discard(after mark: UInt64) { removeItems { $0.order > mark } }

        mutating func enqueue(update u: Update) { enqueue(.update(u), key: .member(u.id)) }

        /// Picks items that fit in `budget` bytes (each kind at most 255), counts a transmission
        /// for each, and drops those that reached `limit`.
        mutating func take(budget: Int, limit: Int) -> Piggyback {
            var remaining = budget
            var out = Piggyback()
            var touched: [Int] = []
            for i in items.indices {
                if remaining < 18 { break }  // smaller than any item; stop scanning
                let size = items[i].payload.size
                guard size <= remaining else { continue }
                switch items[i].payload {
                case .update(let u):
                    guard out.updates.count < Piggyback.maxItems else { continue }
                    out.updates.append(u)
                case .app(let a):
                    guard out.broadcasts.count < Piggyback.maxItems else { continue }
                    out.broadcasts.append(a)
                }
                remaining -= size
                touched.append(i)
            }
            guard !touched.isEmpty else { return out }
            for i in touched { items[i].transmits += 1 }
            removeItems { $0.transmits >= limit }
            // Stable sort: the few touched items move back behind the less-sent ones.
            items.sort { ($0.transmits, $1.order) < ($1.transmits, $0.order) }
            return out
        }

        /// Removes every pending item (used by tests and after leaving).
        mutating func removeAll() {
            items.removeAll()
            orderOfKey.removeAll()
        }
    }

    /// Small math helpers: WeftCore has no Foundation, so no `log`.
    enum Math {
        /// Natural logarithm for positive finite x (≈ 1e-15 relative error); 0 for x ≤ 0.
        static func ln(_ x: Double) -> Double {
            guard x > 0, x.isFinite else { return 0 }
            let e = Double(x.exponent)
            let m = x.significand  // in [1, 2)
            let t = (m - 1) / (m + 1)  // ≤ 1/3
            let t2 = t * t
            var term = t, sum = 0.0, k = 1.0
            for _ in 0..<30 {
                sum += term / k
                term *= t2
                k += 2
            }
            return e * 0.693_147_180_559_945_3 + 2 * sum
        }
        static func log10(_ x: Double) -> Double { ln(x) / 2.302_585_092_994_046 }

        /// ⌈log2(n + 1)⌉ for n ≥ 0: the number of bits needed to write n.
        static func bitLength(_ n: Int) -> Int { n <= 0 ? 0 : Int.bitWidth - n.leadingZeroBitCount }
    }
}
