import WeftCore

/// What the node's interpreter (`NodeRuntime`) needs from the packet path: the seam between
/// the node and I/O on the packet side (docs/node.md, "Seams"). ``DataPlane`` is the real one
/// (one UDP socket for gossip and tunnels, the TUN device, the crypto threads);
/// `MemoryPacketPlane` in WeftTestKit is its in-memory twin, so the interpreter can be tested
/// without sockets, TUN devices or root.
///
/// Every method is safe to call from any thread. Incoming datagrams and TUN packets that need
/// the slow path are handed to the ``DataPlaneDelegate`` given to ``start(delegate:)``.
public protocol PacketPlane: AnyObject, Sendable {
    /// The TUN device's name, or nil when the plane carries no container traffic (--no-tun).
    var tunName: String? { get }
    /// The TUN device does segmentation offload (reads TCP super-segments; `TUNConfig.offload`).
    var tunOffload: Bool { get }
    /// Starts delivering to `delegate`; call once, after the node has started.
    func start(delegate: any DataPlaneDelegate)
    /// Stops every thread and closes every descriptor; idempotent.
    func stop()

    /// Sends one control datagram (gossip, handshake, IPAM) to `to`; failures are counted.
    func send(_ datagram: [UInt8], to: Endpoint)
    /// Writes a packet the slow path decrypted to the TUN device; failures are counted.
    func deliverToTUN(_ packet: [UInt8])
    /// Gives the TUN device the node's overlay address, prefix and MTU and brings it up.
    func configureTUN(address: UInt32, prefixLength: Int, mtu: Int) throws(DataPlaneError)

    /// Replaces the destination table: the ring ranges of other members (and /32s of the
    /// addresses they hold in other ranges) → the member to seal for.
    func updateRoutes(_ routes: [RouteEntry])
    /// Installs a session handed off by the tunnel instance as the send session for its peer.
    func install(_ snapshot: Tunnel.SessionSnapshot, endpoint: Endpoint, rejectAfter: Instant?, now: Instant)
    /// Forgets a session: its receiver index becomes unknown.
    func retire(localIndex: UInt32)
    /// A peer moved: send its data to `endpoint` from now on.
    func updateEndpoint(peer: NodeID, endpoint: Endpoint)

    /// Every installed session's next send counter (for `Tunnel.Instance.onDataPlaneReport`).
    func sendCounterReports() -> [(localIndex: UInt32, nextSendCounter: UInt64)]
    /// A copy of every counter.
    func counters() -> DataPlaneCounters
}

extension DataPlane: PacketPlane {}
