import WeftCore

/// A simulated datagram network between endpoints: per-link loss, delay with jitter, partitions.
/// All randomness comes from the owner's `DeterministicRNG`, so a run replays from its seed.
public struct SimNetwork: Sendable {
    /// Loss probability (0 ... 1) of every link without an override.
    public var loss: Double = 0
    /// One-way delay of every link: `delay` plus a uniform jitter in 0 ... `jitter`.
    public var delay: Duration = .microseconds(500)
    public var jitter: Duration = .microseconds(500)
    /// Per directed link (from, to) loss overrides.
    public var linkLoss: [Link: Double] = [:]
    /// When set, only endpoints in the same group can talk (endpoints in no group talk to none).
    public var partition: [Set<Endpoint>]?

    public struct Link: Hashable, Sendable {
        public var from: Endpoint
        public var to: Endpoint
        public init(from: Endpoint, to: Endpoint) { self.from = from; self.to = to }
    }

    public init() {}

    /// Splits the network into these groups until `heal()`.
    public mutating func split(_ groups: [Set<Endpoint>]) { partition = groups }
    public mutating func heal() { partition = nil }

    /// Whether `a` and `b` are on the same side of the current partition.
    public func connected(_ a: Endpoint, _ b: Endpoint) -> Bool {
        guard let groups = partition else { return true }
        return groups.contains { $0.contains(a) && $0.contains(b) }
    }

    /// The delivery delay of one datagram, or nil when it is lost or cut off.
    public func transit(from: Endpoint, to: Endpoint, rng: inout DeterministicRNG) -> Duration? {
        guard connected(from, to) else { return nil }
        let p = linkLoss[Link(from: from, to: to)] ?? loss
        if p > 0 && Double.random(in: 0..<1, using: &rng) < p { return nil }
        return streamDelay(rng: &rng)
    }

    /// The delay of a reliable (TCP-like) message: never lost, but cut off by partitions.
    public func streamDelay(rng: inout DeterministicRNG) -> Duration {
        let j = jitter.nanoseconds > 0 ? Int64.random(in: 0...jitter.nanoseconds, using: &rng) : 0
        return delay + .nanoseconds(j)
    }
}

/// A min-heap of timed events; ties keep insertion order, so runs are deterministic.
public struct SimEventQueue<Payload> {
    private var heap: [(time: Instant, order: UInt64, payload: Payload)] = []
    private var counter: UInt64 = 0

    public init() {}
    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    public var nextTime: Instant? { heap.first?.time }

    private func less(_ i: Int, _ j: Int) -> Bool {
        (heap[i].time, heap[i].order) < (heap[j].time, heap[j].order)
    }

    public mutating func push(_ time: Instant, _ payload: Payload) {
        counter &+= 1
        heap.append((time, counter, payload))
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if less(i, parent) { heap.swapAt(i, parent); i = parent } else { break }
        }
    }

    public mutating func pop() -> (time: Instant, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count && less(l, m) { m = l }
            if r < heap.count && less(r, m) { m = r }
            if m == i { break }
            heap.swapAt(i, m); i = m
        }
        return (top.time, top.payload)
    }
}
