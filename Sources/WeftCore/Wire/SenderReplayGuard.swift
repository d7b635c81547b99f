/// Replay protection for sealed gossip datagrams: one sliding window per sender over the
/// 64-bit counter each sender puts in its envelope's authenticated header (docs/protocol.md §1).
///
/// ```
///   counter = base + seq     base: the sender's wall clock (ns) when it started,
///                            seq:  0, 1, 2, … per datagram sent (to anyone)
///   per sender: highest counter accepted + a 1,024-bit map of the counters just below it
///   accepted:  counter > highest (window slides), or within 1,024 below and not yet seen
///   refused:   seen before (.replayed) or 1,024 or more below highest (.tooOld)
/// ```
///
/// A restart starts from a later wall clock, far above every counter the previous run used
/// (it would have to send more than 10^9 datagrams a second to catch up), so a datagram
/// captured before a restart is still refused after it. Call ``check(sender:counter:)`` only
/// on authenticated datagrams: the counter is covered by the AEAD, so forged counters cannot
/// move a window. At most `maxSenders` windows are kept; when full, the sender heard from
/// least recently is forgotten but its highest counter is kept as a floor (8 bytes), so its
/// old datagrams stay refused.
public struct SenderReplayGuard: Sendable {
    public enum Refusal: String, Sendable, Equatable, CaseIterable {
        /// This exact counter was accepted before from this sender.
        case replayed = "replayed"
        /// The counter is a window or more behind the sender's newest (or below its floor).
        case tooOld = "replay-too-old"
    }

    /// Counters remembered below the highest one.
    public static let windowSize: UInt64 = 1024
    static let words = Int(windowSize / 64)

    struct Window: Sendable {
        var highest: UInt64
        /// Bit i of the map (word i / 64, bit i % 64) set: `highest - i` was accepted.
        var map: [UInt64]
        var lastUse: UInt64
    }

    public let maxSenders: Int
    private var windows: [NodeID: Window] = [:]
    private var floors: [NodeID: UInt64] = [:]
    private var clock: UInt64 = 0

    public init(maxSenders: Int = 4096) { self.maxSenders = max(1, maxSenders) }

    /// Senders with a full window.
    public var trackedSenders: Int { windows.count }

    /// Accepts (nil, and remembers it) or refuses one authenticated (sender, counter).
    public mutating func check(sender: NodeID, counter: UInt64) -> Refusal? {
        clock &+= 1
        guard var w = windows[sender] else {
            if let floor = floors[sender], counter <= floor { return .tooOld }
            floors[sender] = nil
            if windows.count >= maxSenders { evictOldest() }
            var map = [UInt64](repeating: 0, count: SenderReplayGuard.words)
            map[0] = 1
            windows[sender] = Window(highest: counter, map: map, lastUse: clock)
            return nil
        }
        w.lastUse = clock
        if counter > w.highest {
            SenderReplayGuard.shift(&w.map, by: counter - w.highest)
            w.map[0] |= 1
            w.highest = counter
            windows[sender] = w
            return nil
        }
        let behind = w.highest - counter
        guard behind < SenderReplayGuard.windowSize else { windows[sender] = w; return .tooOld }
        let word = Int(behind / 64), bit = UInt64(1) << (behind % 64)
        if w.map[word] & bit != 0 { windows[sender] = w; return .replayed }
        w.map[word] |= bit
        windows[sender] = w
        return nil
    }

    /// Moves every remembered counter `n` places further behind (bits past the end drop off).
    static func shift(_ map: inout [UInt64], by n: UInt64) {
        guard n < windowSize else {
            for i in map.indices { map[i] = 0 }
            return
        }
        let wordShift = Int(n / 64), bitShift = n % 64
        for i in stride(from: map.count - 1, through: 0, by: -1) {
            let src = i - wordShift
            var v: UInt64 = 0
            if src >= 0 {
                v = map[src] << bitShift
                if bitShift > 0 && src >= 1 { v |= map[src - 1] >> (64 - bitShift) }
            }
            map[i] = v
        }
    }

    private mutating func evictOldest() {
        guard let (id, w) = windows.min(by: { $0.value.lastUse < $1.value.lastUse }) else { return }
        windows[id] = nil
        if floors.count >= maxSenders * 16 { floors.removeAll() }
        floors[id] = w.highest
    }
}

/// The sending half: `base + seq`, strictly increasing for one run of the process.
public struct ReplayCounter: Sendable {
    public private(set) var next: UInt64

    /// - Parameter base: the wall clock in nanoseconds since 1970 when the node started.
    public init(base: UInt64) { next = base }

    /// The counter for the next datagram. Saturates at `UInt64.max` (never traps): a sender
    /// that got there (a wall clock in the year 2554) only has its datagrams refused.
    public mutating func take() -> UInt64 {
        let c = next
        if next < .max { next += 1 }
        return c
    }
}
