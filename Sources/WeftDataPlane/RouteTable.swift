import WeftCore

/// One owner range of the IPAM ring: IPv4 addresses `start...end` (inclusive, host order)
/// belong to `peer`, so inner packets to them are sealed for that node.
public struct RouteEntry: Sendable, Hashable, CustomStringConvertible {
    public var start: UInt32
    public var end: UInt32
    public var peer: NodeID

    public init(start: UInt32, end: UInt32, peer: NodeID) {
        self.start = start
        self.end = end
        self.peer = peer
    }

    public var description: String {
        "\(IPAddress.v4(start))-\(IPAddress.v4(end)) → \(peer.short)"
    }
}

/// An immutable destination lookup: entries sorted by `start`, found by binary search.
///
/// Ranges of the IPAM ring never overlap. If given overlapping entries anyway, the table keeps
/// them sorted by start and a lookup answers the entry with the greatest `start <= address`
/// when it covers the address (so a range nested inside a wider one wins inside its span, and
/// addresses of the wider range after the nested one miss). Entries with `start > end` are
/// ignored.
public struct RouteTable: Sendable {
    private let starts: [UInt32]
    private let entries: [RouteEntry]

    public init(_ routes: [RouteEntry] = []) {
        let sorted = routes.filter { $0.start <= $0.end }.sorted { ($0.start, $0.end) < ($1.start, $1.end) }
        entries = sorted
        starts = sorted.map(\.start)
    }

    public var count: Int { entries.count }
    public var all: [RouteEntry] { entries }

    /// The peer owning `address`, or nil.
    @inline(__always)
    public func lookup(_ address: UInt32) -> NodeID? {
        // Last index with starts[i] <= address.
        var lo = 0, hi = starts.count
        while lo < hi {
            let mid = (lo + hi) >> 1
            if starts[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        guard lo > 0 else { return nil }
        let e = entries[lo - 1]
        return address <= e.end ? e.peer : nil
    }
}
