import Synchronization
import WeftCore
import WeftDataPlane

/// An in-memory network of ``MemoryPacketPlane``s: a datagram sent to an endpoint is handed to
/// the plane listening there (or dropped when none does, or when the link is cut). Inner
/// packets travel plaintext between twins: what the twin checks is the *decision* the real data
/// plane makes (route → peer → installed session, or the slow path), not the cryptography,
/// which WeftDataPlaneTests cover on real sockets.
public final class MemoryPacketNetwork: Sendable {
    private struct State {
        var planes: [Endpoint: MemoryPacketPlane] = [:]
        var cut: Set<[Endpoint]> = []
    }
    private let state = Mutex(State())

    public init() {}

    /// A new plane for node `node` listening at `endpoint`, with a TUN device named `tunName`
    /// (nil: --no-tun).
    public func plane(for node: NodeID, at endpoint: Endpoint, tunName: String? = "twin0") -> MemoryPacketPlane {
        let p = MemoryPacketPlane(node: node, endpoint: endpoint, tunName: tunName, network: self)
        state.withLock { $0.planes[endpoint] = p }
        return p
    }

    /// Cuts (or restores) both directions between two endpoints.
    public func setCut(_ a: Endpoint, _ b: Endpoint, _ on: Bool) {
        state.withLock { s in
            for pair in [[a, b], [b, a]] {
                if on { s.cut.insert(pair) } else { s.cut.remove(pair) }
            }
        }
    }

    func route(_ datagram: [UInt8], from: Endpoint, to: Endpoint) -> Bool {
        let target: MemoryPacketPlane? = state.withLock { s in
            s.cut.contains([from, to]) ? nil : s.planes[to]
        }
        guard let target else { return false }
        target.receive(datagram, from: from)
        return true
    }

    func planeCarrying(to peer: Endpoint) -> MemoryPacketPlane? { state.withLock { $0.planes[peer] } }
}

/// The packet-plane twin (the `PacketPlane` seam, docs/node.md): records what the interpreter
/// programs (TUN address, routes, sessions, endpoints) and carries datagrams over a
/// ``MemoryPacketNetwork``. ``sendFromTUN(_:)`` plays a container's packet entering the TUN
/// device: routed by destination to a peer, carried when that peer has an installed session
/// (delivered to the peer twin's ``tunOutput``), otherwise handed to the delegate's slow path
/// exactly as ``DataPlane`` does.
public final class MemoryPacketPlane: PacketPlane, @unchecked Sendable {
    public struct TUNSetting: Sendable, Equatable {
        public var address: UInt32
        public var prefixLength: Int
        public var mtu: Int
    }

    public struct Session: Sendable {
        public var peer: NodeID
        public var localIndex: UInt32
        public var endpoint: Endpoint
    }

    private struct State {
        var delegate: (any DataPlaneDelegate)?
        var stopped = false
        var tun: TUNSetting?
        var routes = RouteTable()
        var sessions: [UInt32: Session] = [:]
        var sendTo: [NodeID: UInt32] = [:]
        var tunOutput: [[UInt8]] = []
        var counters = DataPlaneCounters()
        /// Datagrams that arrived before `start(delegate:)`; delivered then.
        var early: [([UInt8], Endpoint)] = []
    }

    /// The node this plane belongs to (peers' sessions name it).
    public let node: NodeID
    public let endpoint: Endpoint
    public let tunName: String?
    /// The twin has no TUN device to offload.
    public let tunOffload = false
    private let network: MemoryPacketNetwork
    private let state = Mutex(State())

    init(node: NodeID, endpoint: Endpoint, tunName: String?, network: MemoryPacketNetwork) {
        self.node = node
        self.endpoint = endpoint
        self.tunName = tunName
        self.network = network
        state.withLock { s in for d in DataPlaneDrop.allCases { s.counters.drops[d.name] = 0 } }
    }

    // MARK: PacketPlane

    public func start(delegate: any DataPlaneDelegate) {
        let early = state.withLock { s -> [([UInt8], Endpoint)] in
            s.delegate = delegate
            defer { s.early = [] }
            return s.early
        }
        for (d, from) in early { delegate.dataPlane(received: d, from: from) }
    }

    public func stop() { state.withLock { $0.stopped = true; $0.delegate = nil } }

    public func send(_ datagram: [UInt8], to: Endpoint) {
        guard !state.withLock({ $0.stopped }) else { return }
        let carried = network.route(datagram, from: endpoint, to: to)
        state.withLock { s in
            if carried {
                s.counters.controlOut += 1
                s.counters.udpOutPackets += 1
                s.counters.udpOutBytes += UInt64(datagram.count)
            } else {
                s.counters.drops[DataPlaneDrop.udpSendFailed.name, default: 0] += 1
            }
        }
    }

    public func deliverToTUN(_ packet: [UInt8]) {
        state.withLock { s in
            if tunName == nil {
                s.counters.drops[DataPlaneDrop.noTUN.name, default: 0] += 1
            } else {
                s.tunOutput.append(packet)
                s.counters.tunOut += 1
            }
        }
    }

    public func configureTUN(address: UInt32, prefixLength: Int, mtu: Int) throws(DataPlaneError) {
        guard tunName != nil else { throw .invalidConfiguration("there is no TUN device (running with --no-tun): nothing to configure") }
        guard (0...32).contains(prefixLength), (68...65_535).contains(mtu) else {
            throw .invalidConfiguration("prefix \(prefixLength) or MTU \(mtu) out of range")
        }
        state.withLock { $0.tun = TUNSetting(address: address, prefixLength: prefixLength, mtu: mtu) }
    }

    public func updateRoutes(_ routes: [RouteEntry]) { state.withLock { $0.routes = RouteTable(routes) } }

    public func install(_ snapshot: Tunnel.SessionSnapshot, endpoint: Endpoint, rejectAfter: Instant?, now: Instant) {
        state.withLock { s in
            s.sessions[snapshot.localIndex] = Session(peer: snapshot.peer, localIndex: snapshot.localIndex, endpoint: endpoint)
            s.sendTo[snapshot.peer] = snapshot.localIndex
        }
    }

    public func retire(localIndex: UInt32) {
        state.withLock { s in
            guard let session = s.sessions.removeValue(forKey: localIndex) else { return }
            if s.sendTo[session.peer] == localIndex { s.sendTo[session.peer] = nil }
        }
    }

    public func updateEndpoint(peer: NodeID, endpoint: Endpoint) {
        state.withLock { s in
            guard let i = s.sendTo[peer] else { return }
            s.sessions[i]?.endpoint = endpoint
        }
    }

    public func sendCounterReports() -> [(localIndex: UInt32, nextSendCounter: UInt64)] {
        // The twin seals nothing, so no counter is ever used up.
        state.withLock { s in s.sessions.keys.sorted().map { ($0, 0) } }
    }

    public func counters() -> DataPlaneCounters { state.withLock { $0.counters } }

    // MARK: What the test drives and reads

    /// What the interpreter programmed.
    public var tun: TUNSetting? { state.withLock { $0.tun } }
    public var routes: [RouteEntry] { state.withLock { $0.routes.all } }
    public var sessions: [Session] { state.withLock { s in s.sessions.values.sorted { $0.localIndex < $1.localIndex } } }
    /// The peer the send session belongs to, for each peer that has one.
    public var sendSessionPeers: Set<NodeID> { state.withLock { Set($0.sendTo.keys) } }
    /// Packets written to this twin's TUN device, oldest first.
    public var tunOutput: [[UInt8]] { state.withLock { $0.tunOutput } }

    /// What happened to a packet entering the TUN device.
    public enum Outcome: Equatable, Sendable {
        case carried(to: NodeID)
        case slowPath(NodeID)
        case noRoute
        case notIPv4
    }

    /// A container's IPv4 packet enters this host's TUN device: the destination decides the
    /// peer; with an installed session for it the packet reaches the peer twin's TUN output,
    /// otherwise it goes to the delegate's slow path (`noSessionFor`).
    @discardableResult
    public func sendFromTUN(_ packet: [UInt8]) -> Outcome {
        guard packet.count >= 20, packet[0] >> 4 == 4 else {
            state.withLock { $0.counters.drops[DataPlaneDrop.notIPv4.name, default: 0] += 1 }
            return .notIPv4
        }
        let dst = UInt32(packet[16]) << 24 | UInt32(packet[17]) << 16 | UInt32(packet[18]) << 8 | UInt32(packet[19])
        let (peer, target, delegate) = state.withLock { s -> (NodeID?, Endpoint?, (any DataPlaneDelegate)?) in
            s.counters.tunIn += 1
            guard let peer = s.routes.lookup(dst) else { return (nil, nil, nil) }
            let target = s.sendTo[peer].flatMap { s.sessions[$0]?.endpoint }
            return (peer, target, s.delegate)
        }
        guard let peer else {
            state.withLock { $0.counters.drops[DataPlaneDrop.noRoute.name, default: 0] += 1 }
            return .noRoute
        }
        if let target, let other = network.planeCarrying(to: target), other.hasSession(with: node) {
            other.deliverToTUN(packet)
            return .carried(to: peer)
        }
        state.withLock { $0.counters.drops[DataPlaneDrop.noSession.name, default: 0] += 1 }
        delegate?.dataPlane(noSessionFor: peer, packet: packet)
        return .slowPath(peer)
    }

    // MARK: Internals

    func receive(_ datagram: [UInt8], from: Endpoint) {
        let delegate = state.withLock { s -> (any DataPlaneDelegate)? in
            guard !s.stopped else { return nil }
            s.counters.controlIn += 1
            s.counters.udpInPackets += 1
            s.counters.udpInBytes += UInt64(datagram.count)
            if s.delegate == nil { s.early.append((datagram, from)) }
            return s.delegate
        }
        delegate?.dataPlane(received: datagram, from: from)
    }

    func hasSession(with peer: NodeID) -> Bool {
        state.withLock { $0.sendTo[peer] != nil }
    }
}
