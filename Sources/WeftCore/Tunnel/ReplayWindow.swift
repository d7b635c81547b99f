extension Tunnel {
    /// Sliding anti-replay window over 64-bit packet counters (RFC 6479's bitmap ring, as in
    /// WireGuard's `replay/`, sized up to 8,192 packets: at high rates and with several
    /// receive queues, packets arrive thousands apart, and a 1,024-packet window drops real
    /// traffic).
    ///
    /// ```
    ///   ring of 129 × 64-bit blocks; block i holds counters with (counter >> 6) % 129 == i
    ///   ├─ 128 blocks = 8,192 counters below `highest` are remembered ─┤ ├ block of `highest` ┤
    ///   accepted:  counter > highest                    (window slides, skipped blocks cleared)
    ///              highest - counter < windowSize and its bit not yet set
    ///   rejected:  counter >= limit, counter already seen, or highest - counter >= windowSize
    /// ```
    ///
    /// Call ``wouldAccept(_:)`` before spending a decryption, and ``accept(_:)`` only after the
    /// packet authenticated, so forged counters can never move the window. Not thread-safe:
    /// a data plane that opens one session on several threads keeps the window behind a lock.
    public struct ReplayWindow: Sendable, Equatable {
        /// Counters at or below `highest` that are still tracked: exactly 8,192.
        public static let windowSize: UInt64 = UInt64(ringBlocks - 1) * 64
        static let ringBlocks = 129

        private var ring: [UInt64]
        /// The highest counter accepted so far (meaningless while ``isEmpty``).
        public private(set) var highest: UInt64 = 0
        /// True until the first counter is accepted.
        public private(set) var isEmpty = true
        /// Counters at or above this are rejected (the session's reject-after-messages limit).
        public let limit: UInt64

        public init(limit: UInt64 = .max) {
            ring = [UInt64](repeating: 0, count: ReplayWindow.ringBlocks)
            self.limit = limit
        }

        /// True when ``accept(_:)`` would accept `counter` now. Does not change the window.
        public func wouldAccept(_ counter: UInt64) -> Bool {
            guard counter < limit else { return false }
            if isEmpty || counter > highest { return true }
            if highest - counter >= ReplayWindow.windowSize { return false }
            let (block, bit) = ReplayWindow.position(counter)
            return ring[block] & bit == 0
        }

        /// Accepts `counter` (returns true and remembers it) or rejects a duplicate, a counter
        /// too far behind, or one at or above ``limit`` (returns false, window unchanged).
        public mutating func accept(_ counter: UInt64) -> Bool {
            guard counter < limit else { return false }
            if isEmpty || counter > highest {
                let newBlock = counter >> 6
                if isEmpty {
                    for i in 0..<ring.count { ring[i] = 0 }
                } else {
                    let current = highest >> 6
                    let steps = min(newBlock - current, UInt64(ReplayWindow.ringBlocks))
                    var i: UInt64 = 1
                    while i <= steps {
                        ring[Int((current &+ i) % UInt64(ReplayWindow.ringBlocks))] = 0
                        i += 1
                    }
                }
                highest = counter
                isEmpty = false
            } else if highest - counter >= ReplayWindow.windowSize {
                return false
            }
            let (block, bit) = ReplayWindow.position(counter)
            if ring[block] & bit != 0 { return false }
            ring[block] |= bit
            return true
        }

        private static func position(_ counter: UInt64) -> (Int, UInt64) {
            (Int((counter >> 6) % UInt64(ringBlocks)), 1 << (counter & 63))
        }
    }
}
