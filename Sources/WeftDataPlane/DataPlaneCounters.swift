import CWeftShim
import WeftCore

/// Why the data plane dropped (or diverted) a packet. `name` is a stable counter label.
public enum DataPlaneDrop: Int, CaseIterable, Sendable, CustomStringConvertible {
    /// Inner packet to an address no route covers.
    case noRoute
    /// Routed to a peer without a usable installed session: handed to
    /// ``DataPlaneDelegate/dataPlane(noSessionFor:packet:)`` (the daemon queues it and starts a
    /// handshake), so not necessarily lost.
    case noSession
    /// A data packet at or after its session's reject-after time (receive side).
    case sessionExpired
    /// Duplicate or too old counter (replay window).
    case replayedPacket
    /// AEAD open failed: wrong key, tampered or forged.
    case authenticationFailed
    /// Writing to the TUN device failed (EIO while it is down, ENOBUFS, ...).
    case tunWriteFailed
    /// Reading from the TUN device failed.
    case tunReadFailed
    /// A data packet arrived while running without TUN (`--no-tun`).
    case noTUN
    /// A kind-7 datagram with a bad header, or an inner IPv4 packet with bad lengths.
    case malformed
    /// An inner packet that is not IPv4.
    case notIPv4
    /// Larger than a datagram can carry, or a datagram truncated by the receive buffer.
    case tooLarge
    /// The kernel refused or could not take a datagram (send buffer full after waiting,
    /// unreachable destination, ...).
    case udpSendFailed
    /// `recvmmsg` reported an error.
    case udpReceiveFailed
    /// Inner source address not owned by the sending peer (only with
    /// ``DataPlaneConfig/enforceInnerSource``).
    case wrongInnerSource

    public var name: String {
        switch self {
        case .noRoute: return "no-route"
        case .noSession: return "no-session"
        case .sessionExpired: return "session-expired"
        case .replayedPacket: return "replayed-packet"
        case .authenticationFailed: return "authentication-failed"
        case .tunWriteFailed: return "tun-write-failed"
        case .tunReadFailed: return "tun-read-failed"
        case .noTUN: return "no-tun"
        case .malformed: return "malformed"
        case .notIPv4: return "not-ipv4"
        case .tooLarge: return "too-large"
        case .udpSendFailed: return "udp-send-failed"
        case .udpReceiveFailed: return "udp-receive-failed"
        case .wrongInnerSource: return "wrong-inner-source"
        }
    }

    public var description: String { name }
}

/// Traffic of one peer through the fast path (inner packet bytes, i.e. what crossed the TUN).
public struct PeerCounters: Sendable, Equatable {
    public var rxBytes: UInt64 = 0
    public var txBytes: UInt64 = 0
    public var rxPackets: UInt64 = 0
    public var txPackets: UInt64 = 0
    /// Drops attributable to this peer (its sessions and routes), by ``DataPlaneDrop/name``;
    /// only reasons that happened appear.
    public var drops: [String: UInt64] = [:]
    public init() {}
}

/// A point-in-time copy of every counter (relaxed reads: each value is exact, the set is not
/// one atomic cut).
public struct DataPlaneCounters: Sendable, Equatable {
    /// Drops by ``DataPlaneDrop/name``; every reason is present (zero when none).
    public var drops: [String: UInt64] = [:]
    public var peers: [NodeID: PeerCounters] = [:]
    /// Datagrams (and their bytes) received on / sent from the UDP socket, control and data.
    public var udpInPackets: UInt64 = 0
    public var udpInBytes: UInt64 = 0
    public var udpOutPackets: UInt64 = 0
    public var udpOutBytes: UInt64 = 0
    /// Datagrams handed to ``DataPlaneDelegate/dataPlane(received:from:)``.
    public var controlIn: UInt64 = 0
    /// Control datagrams sent with ``DataPlane/send(_:to:)``.
    public var controlOut: UInt64 = 0
    /// Packets read from / written to the TUN device (including slow-path deliveries). With TUN
    /// offload a read may be a TCP super-segment: it counts once here (see `tunSuperSegments`).
    public var tunIn: UInt64 = 0
    public var tunOut: UInt64 = 0
    /// Authenticated data packets from an address other than the session's installed endpoint
    /// (accepted: peers roam; the daemon may call ``DataPlane/updateEndpoint(peer:endpoint:)``).
    public var dataFromOtherEndpoint: UInt64 = 0
    /// Authenticated packets whose inner IPv4 source the route table does not give to the
    /// sending peer (dropped only with ``DataPlaneConfig/enforceInnerSource``).
    public var innerSourceMismatch: UInt64 = 0
    /// Authenticated empty data packets (keepalives).
    public var keepalivesIn: UInt64 = 0
    /// Non-empty `recvmmsg` results and TUN-thread batches flushed with `sendmmsg`:
    /// `udpInPackets / receiveBatches` is the average receive batch.
    public var receiveBatches: UInt64 = 0
    public var sendBatches: UInt64 = 0
    /// 1 once the kernel refused a UDP GSO send (segment larger than the path MTU, no offload):
    /// the TUN thread then sends without GSO for good.
    public var udpSegmentationFallbacks: UInt64 = 0
    /// TCP super-segments read from the TUN device (with offloads, `DataPlane.tunOffload`) and
    /// the packets they were cut into: `tunSuperSegmentPackets / tunSuperSegments` is the
    /// average, and every one of those packets cost one read less than without offloads.
    public var tunSuperSegments: UInt64 = 0
    public var tunSuperSegmentPackets: UInt64 = 0
    /// Receive coalescing (with TUN offload): super-packets written to the TUN device and the
    /// inner packets they carried (`tunCoalescedPackets / tunCoalescedWrites` is the average;
    /// each counts once in `tunOut`). `tunCoalescingFallbacks` is 1 once the kernel refused a
    /// super-packet: its packets were written one by one and coalescing stays off.
    public var tunCoalescedWrites: UInt64 = 0
    public var tunCoalescedPackets: UInt64 = 0
    public var tunCoalescingFallbacks: UInt64 = 0
    /// Times a session's send counter or time ran out (reported to the delegate once each).
    public var sessionsExhausted: UInt64 = 0

    public init() {}

    /// The count for a drop reason name (0 for unknown names).
    public func drops(_ name: String) -> UInt64 { drops[name] ?? 0 }
    public func drops(_ reason: DataPlaneDrop) -> UInt64 { drops[reason.name] ?? 0 }
}

/// Fixed-size relaxed atomic counters in one allocation, shared by all threads.
final class CounterBlock: @unchecked Sendable {
    enum Slot: Int, CaseIterable {
        case udpInPackets, udpInBytes, udpOutPackets, udpOutBytes, controlIn, controlOut, tunIn, tunOut
        case dataFromOtherEndpoint, keepalivesIn, sessionsExhausted, innerSourceMismatch, receiveBatches, sendBatches, gsoFallbacks
        case superSegments, superSegmentPackets, coalescedWrites, coalescedPackets, coalesceFallbacks
    }

    static let dropBase = Slot.allCases.count
    static let size = dropBase + DataPlaneDrop.allCases.count
    let base: UnsafeMutablePointer<UInt64>

    init() {
        base = .allocate(capacity: CounterBlock.size)
        base.initialize(repeating: 0, count: CounterBlock.size)
    }

    deinit { base.deallocate() }

    @inline(__always) func add(_ s: Slot, _ v: UInt64 = 1) { weft_counter_add(base + s.rawValue, v) }
    @inline(__always) func drop(_ d: DataPlaneDrop, _ v: UInt64 = 1) { weft_counter_add(base + CounterBlock.dropBase + d.rawValue, v) }
    func load(_ s: Slot) -> UInt64 { weft_counter_load(base + s.rawValue) }
    func load(_ d: DataPlaneDrop) -> UInt64 { weft_counter_load(base + CounterBlock.dropBase + d.rawValue) }
}

/// One peer's four counters; sessions of that peer share it.
final class PeerStats: @unchecked Sendable {
    /// Slots: rx bytes, tx bytes, rx packets, tx packets, then one per ``DataPlaneDrop``.
    static let dropBase = 4
    let base: UnsafeMutablePointer<UInt64>
    init() {
        let size = PeerStats.dropBase + DataPlaneDrop.allCases.count
        base = .allocate(capacity: size)
        base.initialize(repeating: 0, count: size)
    }
    deinit { base.deallocate() }

    @inline(__always) func received(bytes: Int) {
        weft_counter_add(base, UInt64(bytes)); weft_counter_add(base + 2, 1)
    }
    @inline(__always) func sent(bytes: Int) {
        weft_counter_add(base + 1, UInt64(bytes)); weft_counter_add(base + 3, 1)
    }
    /// A drop that can be pinned on this peer (its session, its route).
    @inline(__always) func drop(_ d: DataPlaneDrop, _ v: UInt64 = 1) {
        weft_counter_add(base + PeerStats.dropBase + d.rawValue, v)
    }
    var snapshot: PeerCounters {
        var c = PeerCounters()
        c.rxBytes = weft_counter_load(base)
        c.txBytes = weft_counter_load(base + 1)
        c.rxPackets = weft_counter_load(base + 2)
        c.txPackets = weft_counter_load(base + 3)
        for d in DataPlaneDrop.allCases {
            let v = weft_counter_load(base + PeerStats.dropBase + d.rawValue)
            if v > 0 { c.drops[d.name] = v }
        }
        return c
    }
}
