extension Tunnel {
    /// A token bucket: `burst` tokens, refilled at `ratePerSecond`. Pure: time is an argument.
    public struct TokenBucket: Sendable, Equatable {
        public let ratePerSecond: Double
        public let burst: Double
        public private(set) var tokens: Double
        public private(set) var updatedAt: Instant?

        public init(ratePerSecond: Double, burst: Double) {
            self.ratePerSecond = ratePerSecond
            self.burst = burst
            tokens = burst
        }

        /// Refills for the time since the last call, then takes one token if there is one.
        public mutating func take(now: Instant) -> Bool {
            refill(now: now)
            guard tokens >= 1 else { return false }
            tokens -= 1
            return true
        }

        /// True when, at `now`, the bucket would be full again (the entry can be forgotten).
        public func isFull(at now: Instant) -> Bool {
            guard let t = updatedAt else { return true }
            return tokens + max(0, (now - t).seconds) * ratePerSecond >= burst
        }

        mutating func refill(now: Instant) {
            if let t = updatedAt, now > t {
                tokens = min(burst, tokens + (now - t).seconds * ratePerSecond)
            }
            if updatedAt == nil || now > updatedAt! { updatedAt = now }
        }
    }

    /// Per-source token buckets for handshake initiations, keyed by source IP address (not
    /// port: a sender picks its source port freely). Memory is bounded: idle sources are
    /// forgotten, and once `maxSources` are tracked a new source is refused until some expire.
    public struct RateLimiter: Sendable {
        public let ratePerSecond: Double
        public let burst: Double
        public let maxSources: Int
        private var buckets: [IPAddress: TokenBucket] = [:]
        private var lastSweep: Instant?

        public init(ratePerSecond: Double, burst: Double, maxSources: Int) {
            self.ratePerSecond = ratePerSecond
            self.burst = burst
            self.maxSources = maxSources
        }

        /// Number of sources currently tracked.
        public var trackedSources: Int { buckets.count }

        /// Takes a token for `source`; false when it is over its rate (or the table is full).
        public mutating func allow(_ source: IPAddress, now: Instant) -> Bool {
            sweep(now: now)
            if var bucket = buckets[source] {
                let ok = bucket.take(now: now)
                buckets[source] = bucket
                return ok
            }
            guard buckets.count < maxSources else { return false }
            var bucket = TokenBucket(ratePerSecond: ratePerSecond, burst: burst)
            let ok = bucket.take(now: now)
            buckets[source] = bucket
            return ok
        }

        /// Forgets buckets that are full again (at most once a second, so a flood of new
        /// sources costs O(1) per packet in between).
        mutating func sweep(now: Instant) {
            if let last = lastSweep, now - last < .seconds(1) { return }
            lastSweep = now
            buckets = buckets.filter { !$0.value.isFull(at: now) }
        }
    }
}
