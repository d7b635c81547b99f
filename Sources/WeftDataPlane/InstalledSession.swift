import CWeftShim
import Glibc
import Synchronization
import WeftCore

/// A handed-off session as the fast path holds it: the snapshot's keys, the atomic send
/// counter, the replay window behind its own lock, and the deadline on CLOCK_MONOTONIC.
final class InstalledSession: Sendable {
    let peer: NodeID
    let localIndex: UInt32
    let remoteIndex: UInt32
    let sendKey: Tunnel.SendKey
    let receiveKey: Tunnel.ReceiveKey
    /// First counter not to use (`snapshot.sendCounters.upperBound`).
    let sendLimit: UInt64
    /// `weft_monotonic_ns()` at or after which the session neither seals nor opens.
    let expiresAtMonotonicNanos: Int64
    /// Where the session was installed to send; data from elsewhere is accepted but counted.
    let installedEndpoint: weft_endpoint
    let stats: PeerStats
    /// Next send counter: `fetchAdd(1)` per packet, so no counter is handed out twice.
    let nextCounter: Atomic<UInt64>
    let replay: Mutex<Tunnel.ReplayWindow>
    /// Set once the exhaustion has been reported to the delegate.
    let exhaustedReported = Atomic<Bool>(false)

    init(snapshot: Tunnel.SessionSnapshot, endpoint: weft_endpoint, expiresAtMonotonicNanos: Int64, stats: PeerStats) {
        peer = snapshot.peer
        localIndex = snapshot.localIndex
        remoteIndex = snapshot.remoteIndex
        sendKey = snapshot.sendKey
        receiveKey = snapshot.receiveKey
        sendLimit = snapshot.sendCounters.upperBound
        nextCounter = Atomic(snapshot.sendCounters.lowerBound)
        replay = Mutex(snapshot.replayWindow)
        self.expiresAtMonotonicNanos = expiresAtMonotonicNanos
        installedEndpoint = endpoint
        self.stats = stats
    }

    /// The counter the next packet would use, clamped to the limit (for counter reports).
    var nextSendCounter: UInt64 { min(nextCounter.load(ordering: .relaxed), sendLimit) }
}

/// Where the TUN thread sends a peer's packets.
struct SendTarget: @unchecked Sendable {
    let session: InstalledSession
    var endpoint: weft_endpoint
}

/// The immutable tables the hot threads read: swapped as a whole under ``DataPlane``'s lock,
/// read once per batch (one uncontended lock per batch, none per packet).
final class ForwardingTables: Sendable {
    let byIndex: [UInt32: InstalledSession]
    let sendTo: [NodeID: SendTarget]
    let routes: RouteTable

    init(byIndex: [UInt32: InstalledSession] = [:], sendTo: [NodeID: SendTarget] = [:], routes: RouteTable = RouteTable()) {
        self.byIndex = byIndex
        self.sendTo = sendTo
        self.routes = routes
    }
}

extension weft_endpoint {
    init(_ e: Endpoint) {
        self.init()
        port = e.port
        switch e.address {
        case .v4(let a):
            family = 4
            addr.0 = UInt8(a >> 24); addr.1 = UInt8(a >> 16 & 0xff); addr.2 = UInt8(a >> 8 & 0xff); addr.3 = UInt8(a & 0xff)
        case .v6(let b):
            family = 6
            withUnsafeMutableBytes(of: &addr) { dst in
                for i in 0..<min(16, b.count) { dst[i] = b[i] }
            }
        }
    }

    var endpoint: Endpoint {
        var copy = addr
        let bytes = withUnsafeBytes(of: &copy) { Array($0) }
        if family == 6 {
            return Endpoint(address: .v6(bytes), port: port)
        }
        let a = UInt32(bytes[0]) << 24 | UInt32(bytes[1]) << 16 | UInt32(bytes[2]) << 8 | UInt32(bytes[3])
        return Endpoint(address: .v4(a), port: port)
    }

    @inline(__always)
    func sameAs(_ o: weft_endpoint) -> Bool {
        guard family == o.family, port == o.port else { return false }
        var a = addr, b = o.addr
        let n = family == 6 ? 16 : 4
        return withUnsafeBytes(of: &a) { pa in withUnsafeBytes(of: &b) { pb in memcmp(pa.baseAddress!, pb.baseAddress!, n) == 0 } }
    }
}
