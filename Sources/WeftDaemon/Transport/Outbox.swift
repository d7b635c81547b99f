import WeftCore

/// Bounds the node's outgoing point-to-point connections (IPAM frames go one per TCP
/// connection). Without it every frame became a connection of its own at once: 100 booting
/// nodes, each resending a holdings write to 99 voters, opened tens of thousands of connections,
/// ran out of file descriptors, and libdispatch aborted the process (SIGILL, EMFILE in its
/// worker monitor). docs/operations.md "Connections and
/// file descriptors".
///
/// Rules: at most one connection in flight per peer (frames to one peer go in order), at most
/// `maxInFlight` in all; a peer keeps at most `perPeer` frames waiting, the oldest dropped first;
/// a frame that waited longer than `maxAge` is dropped when its turn comes. IPAM resends what
/// it still needs, so a dropped frame costs latency, never safety. Pure bookkeeping: the runtime
/// starts the connections this returns and reports each one's end with `finished`.
struct Outbox<Item> {
    struct Limits: Sendable {
        var maxInFlight = 32
        var perPeer = 8
        var maxAge: Duration = .seconds(5)
    }

    struct Start {
        var peer: NodeID
        var item: Item
    }

    let limits: Limits
    private var queues: [NodeID: [(item: Item, at: Instant)]] = [:]
    private var busy: Set<NodeID> = []
    /// Peers with frames waiting for a free slot, in the order they first had to wait.
    private var ready: [NodeID] = []
    /// Frames dropped: queue full (`overflowed`) or waited too long (`expired`).
    private(set) var overflowed = 0
    private(set) var expired = 0

    init(limits: Limits = Limits()) { self.limits = limits }

    var inFlight: Int { busy.count }
    var waiting: Int { queues.values.reduce(0) { $0 + $1.count } }

    /// Queues `item` for `peer`; returns the connections to start now.
    mutating func enqueue(_ item: Item, to peer: NodeID, now: Instant) -> [Start] {
        var q = queues[peer] ?? []
        q.append((item, now))
        if q.count > limits.perPeer {
            overflowed += q.count - limits.perPeer
            q.removeFirst(q.count - limits.perPeer)
        }
        queues[peer] = q
        if !busy.contains(peer) && !ready.contains(peer) { ready.append(peer) }
        return pump(now: now)
    }

    /// The connection to `peer` ended (delivered or not); returns the connections to start now.
    mutating func finished(_ peer: NodeID, now: Instant) -> [Start] {
        busy.remove(peer)
        if let q = queues[peer], !q.isEmpty, !ready.contains(peer) { ready.append(peer) }
        return pump(now: now)
    }

    private mutating func pump(now: Instant) -> [Start] {
        var out: [Start] = []
        while busy.count < limits.maxInFlight, !ready.isEmpty {
            let peer = ready.removeFirst()
            guard !busy.contains(peer), var q = queues[peer] else { continue }
            while let first = q.first, now - first.at > limits.maxAge {
                q.removeFirst()
                expired += 1
            }
            guard !q.isEmpty else { queues[peer] = nil; continue }
            let next = q.removeFirst()
            queues[peer] = q.isEmpty ? nil : q
            busy.insert(peer)
            out.append(Start(peer: peer, item: next.item))
        }
        return out
    }
}
