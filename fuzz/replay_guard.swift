// Fuzz target: SenderReplayGuard (per-sender gossip replay window) against a reference set.
// Input: 9-byte records | sender u8 | counter u64 |.
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReplayGuard(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var g = SenderReplayGuard(maxSenders: 4)
    var seen: [UInt8: (highest: UInt64, set: Set<UInt64>)] = [:]
    var r = ByteReader(bytes)
    while let s = try? r.u8("sender"), let c = try? r.u64("counter") {
        let sender = s % 4  // at most 4 senders: never evicted, so the reference is exact
        let result = g.check(sender: NodeID(high: 0, low: UInt64(sender)), counter: c)
        let expected: SenderReplayGuard.Refusal?
        if let e = seen[sender] {
            if c > e.highest { expected = nil }
            else if e.highest - c >= SenderReplayGuard.windowSize { expected = .tooOld }
            else if e.set.contains(c) { expected = .replayed }
            else { expected = nil }
        } else { expected = nil }
        precondition(result == expected, "guard disagrees with the reference")
        if expected == nil {
            var e = seen[sender] ?? (c, [])
            e.highest = max(e.highest, c)
            e.set.insert(c)
            seen[sender] = e
        }
    }
    return 0
}
