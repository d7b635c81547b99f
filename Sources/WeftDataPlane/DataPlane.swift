import CWeftShim
import Glibc
import Synchronization
import WeftCore
import WeftCrypto

/// What the data plane hands to the daemon. Called on the data plane's own threads: every
/// method must be cheap and must not block (hop to the daemon's actor).
public protocol DataPlaneDelegate: AnyObject, Sendable {
    /// Every UDP datagram that is not a kind-7 data packet for an installed session: gossip
    /// (kinds 1–3), handshake and cookie (4–6), IPAM (16), unknown kinds and versions, and
    /// kind 7 with a receiver index no installed session has (the daemon passes those to
    /// `Tunnel.Instance.onData`). Called on the receive thread.
    func dataPlane(received datagram: [UInt8], from: Endpoint)
    /// A TUN packet routed to `peer` with no usable installed session (none, or expired by
    /// time or counter): hand it to `Tunnel.Instance.onOutbound`. Called on the TUN thread.
    func dataPlane(noSessionFor peer: NodeID, packet: [UInt8])
    /// An installed session reached its counter or time limit while sending (reported once
    /// per session). Called on the TUN thread.
    func dataPlane(sessionExhausted localIndex: UInt32)
}

/// Weft's packet path: one UDP socket carrying control datagrams and encrypted tunnel data,
/// one TUN device, and two threads (see docs/dataplane.md):
///
/// ```
///  UDP socket ──recvmmsg(64)──▶ [weft-udp-rx] ─ kind 7, known index ─▶ replay check, open ─▶ write(TUN)
///                                    └──────── everything else ─────▶ delegate.dataPlane(received:from:)
///  TUN ──read()×64──▶ [weft-tun-rd] ─ route by inner IPv4 dst ─▶ seal (atomic counter) ─▶ sendmmsg(64)
///                                    └── no session ─▶ delegate.dataPlane(noSessionFor:packet:)
/// ```
///
/// The hot threads read one immutable ``ForwardingTables`` reference per batch; ``install``,
/// ``retire``, ``updateRoutes`` and ``updateEndpoint`` build a new one and swap it in. Replay
/// windows sit behind a per-session lock; send counters are per-session atomics.
///
/// Times: the fast path compares against `CLOCK_MONOTONIC` (``monotonicNanos()``). ``install``
/// converts the snapshot's `rejectAfter` using the caller's `now` on the daemon's own
/// timeline, so the two clocks need no common origin.
public final class DataPlane: @unchecked Sendable {
    public let config: DataPlaneConfig
    /// The TUN device's actual name, nil with `tun: nil`.
    public let tunName: String?
    /// The bound UDP port (useful with listen port 0).
    public let localPort: UInt16

    let udpFD: Int32
    let tunFD: Int32
    /// The TUN device was opened with a virtio-net header and TCP segmentation offload
    /// (`TUNConfig.offload` asked for it and the kernel took it; docs/dataplane.md §2).
    public let tunOffload: Bool
    let wakeFD: Int32
    let suite = SodiumTunnelSuite()
    let counterBlock = CounterBlock()
    let stopping = Atomic<Bool>(false)
    private let fdsClosed = Atomic<Bool>(false)
    let gsoWanted: Atomic<Bool>
    private let runningLoops = Atomic<Int>(0)

    struct State {
        var tables = ForwardingTables()
        var peerStats: [NodeID: PeerStats] = [:]
        var started = false
        var stopped = false
        var threads: [NativeThread] = []
    }

    let state = Mutex(State())

    /// Largest UDP payload (IPv4: 65,535 − 20 − 8).
    static let maxDatagram = 65_507
    /// Receive and TUN buffers: one full IPv4 packet.
    static let slotBytes = 65_536
    /// One TUN read: an IPv4 packet (a TCP super-segment with offloads) is at most 65,535 bytes.
    static let readBytes = 65_536

    /// Binds the UDP socket and opens the TUN device (no address yet: see
    /// ``configureTUN(address:prefixLength:mtu:)``). The TUN device is created in the calling
    /// thread's network namespace and lives as long as this object's descriptor.
    public init(config: DataPlaneConfig) throws(DataPlaneError) {
        self.config = config
        guard config.batchSize >= 1 && config.batchSize <= 1024 else {
            throw .invalidConfiguration("batch size \(config.batchSize) is out of range: use 1...1024")
        }
        var ep = weft_endpoint(config.listen)
        var failed: UnsafePointer<CChar>? = nil
        let fd = weft_udp_open(&ep, Int32(clamping: config.socketBufferBytes), config.reuseAddress ? 1 : 0, &failed)
        if fd < 0 {
            throw DataPlane.udpError(-fd, call: failed.map { String(cString: $0) } ?? "socket", listen: config.listen)
        }
        let port = weft_udp_local_port(fd)
        guard port >= 0 else {
            _ = weft_close(fd)
            throw .system(call: "getsockname", errno: -port)
        }
        var tfd: Int32 = -1
        var name: String? = nil
        var offloadOn: Int32 = 0
        if let tun = config.tun {
            guard !tun.name.isEmpty, tun.name.utf8.count <= 15, !tun.name.contains("/"), !tun.name.contains(" ") else {
                _ = weft_close(fd)
                throw .invalidConfiguration("TUN name \"\(tun.name)\" is invalid: use 1–15 characters without '/' or spaces")
            }
            var out = [CChar](repeating: 0, count: 16)
            tfd = weft_tun_open(tun.name, &out, tun.offload ? 1 : 0, &offloadOn, &failed)
            if tfd < 0 {
                _ = weft_close(fd)
                throw DataPlane.tunError(-tfd, call: failed.map { String(cString: $0) } ?? "open", name: tun.name)
            }
            name = out.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        }
        let wfd = weft_eventfd()
        if wfd < 0 {
            _ = weft_close(fd)
            if tfd >= 0 { _ = weft_close(tfd) }
            throw .system(call: "eventfd", errno: -wfd)
        }
        gsoWanted = Atomic(config.udpSegmentation)
        udpFD = fd
        tunFD = tfd
        tunOffload = offloadOn != 0
        wakeFD = wfd
        tunName = name
        localPort = UInt16(port)
    }

    deinit { stop() }

    static func udpError(_ e: Int32, call: String, listen: Endpoint) -> DataPlaneError {
        switch e {
        case EADDRINUSE: return .addressInUse(listen.description)
        case EADDRNOTAVAIL: return .addressNotAvailable(listen.description)
        case EACCES, EPERM:
            return .permissionDenied("binding UDP \(listen) is not permitted (ports below 1024 need root): choose a port of 1024 or above")
        case EAFNOSUPPORT:
            return .invalidConfiguration("cannot listen on \(listen): this host has no IPv6; use an IPv4 address")
        default: return .system(call: call, errno: e)
        }
    }

    static func tunError(_ e: Int32, call: String, name: String) -> DataPlaneError {
        switch e {
        case EPERM, EACCES: return .tunPermission(name)
        case ENOENT, ENODEV, ENXIO:
            return .tunUnavailable("/dev/net/tun is missing (no TUN driver): run `modprobe tun`, give the container /dev/net/tun, or use --no-tun")
        case EBUSY:
            return .invalidConfiguration("TUN device \(name) is already in use by another process: stop it or choose another name")
        case EINVAL:
            return .invalidConfiguration("the kernel refused TUN device name \"\(name)\" (\(call)): an interface of another type may have that name; choose another")
        default: return .system(call: call, errno: e)
        }
    }

    /// `CLOCK_MONOTONIC` in nanoseconds: the clock the fast path compares session deadlines to.
    public static func monotonicNanos() -> Int64 { weft_monotonic_ns() }

    /// What the kernel granted for the socket buffers (it reports twice the usable size).
    public var socketBuffers: (receive: Int, send: Int) {
        (Int(weft_udp_buffer(udpFD, 1)), Int(weft_udp_buffer(udpFD, 0)))
    }

    // MARK: - Lifecycle

    /// Spawns the receive thread (and the TUN thread when there is a device). Call once;
    /// later calls and calls after ``stop()`` do nothing.
    public func start(delegate: any DataPlaneDelegate) {
        let go = state.withLock { s -> Bool in
            guard !s.started, !s.stopped else { return false }
            s.started = true
            return true
        }
        guard go else { return }
        var threads: [NativeThread] = []
        runningLoops.add(1, ordering: .sequentiallyConsistent)
        if let t = NativeThread.spawn(name: "weft-udp-rx", { [self] in
            receiveLoop(delegate: delegate)
            loopExited()
        }) {
            threads.append(t)
        } else {
            runningLoops.subtract(1, ordering: .sequentiallyConsistent)
        }
        if tunFD >= 0 {
            runningLoops.add(1, ordering: .sequentiallyConsistent)
            if let t = NativeThread.spawn(name: "weft-tun-rd", { [self] in
                tunLoop(delegate: delegate)
                loopExited()
            }) {
                threads.append(t)
            } else {
                runningLoops.subtract(1, ordering: .sequentiallyConsistent)
            }
        }
        state.withLock { $0.threads = threads }
    }

    /// Stops the threads (they wake within one poll), then closes the socket and the TUN
    /// descriptor, which removes the device. Idempotent. Called from a delegate callback, the
    /// calling thread is detached and closes the descriptors itself when its loop ends.
    public func stop() {
        let threads = state.withLock { s -> [NativeThread]? in
            guard !s.stopped else { return nil }
            s.stopped = true
            let t = s.threads
            s.threads = []
            return t
        }
        guard let threads else { return }
        stopping.store(true, ordering: .sequentiallyConsistent)
        _ = weft_eventfd_signal(wakeFD)
        var selfIsLoop = false
        for t in threads {
            if t.isCurrent { selfIsLoop = true; t.detach() } else { t.join() }
        }
        if !selfIsLoop { closeDescriptors() }
    }

    private func loopExited() {
        if runningLoops.subtract(1, ordering: .sequentiallyConsistent).newValue == 0,
           stopping.load(ordering: .sequentiallyConsistent),
           state.withLock({ $0.threads.isEmpty }) {
            // Only reached when stop() ran on one of our own threads (it then skips closing).
            closeDescriptors()
        }
    }

    private func closeDescriptors() {
        guard !fdsClosed.exchange(true, ordering: .sequentiallyConsistent) else { return }
        _ = weft_close(udpFD)
        if tunFD >= 0 { _ = weft_close(tunFD) }
        _ = weft_close(wakeFD)
    }

    var isStopped: Bool { stopping.load(ordering: .relaxed) }

    /// Turns UDP GSO for tunnel data on or off (takes effect at the next batch).
    public func setUDPSegmentation(_ on: Bool) { gsoWanted.store(on, ordering: .relaxed) }

    // MARK: - TUN configuration

    /// Gives the TUN device its IPv4 address and prefix (the kernel adds the subnet route),
    /// sets the MTU and brings it up; then sets `net.ipv4.ip_forward=1` so packets for local
    /// containers are forwarded. Acts in the calling thread's network namespace. Idempotent.
    public func configureTUN(address: UInt32, prefixLength: Int, mtu: Int) throws(DataPlaneError) {
        guard let name = tunName, tunFD >= 0 else {
            throw .invalidConfiguration("there is no TUN device (running with --no-tun): nothing to configure")
        }
        guard (0...32).contains(prefixLength) else {
            throw .invalidConfiguration("prefix length \(prefixLength) is out of range: use 0...32")
        }
        guard (68...65_535).contains(mtu) else {
            throw .invalidConfiguration("TUN MTU \(mtu) is out of range: use 68...65535 (1440 for a 1500-byte underlay)")
        }
        var failed: UnsafePointer<CChar>? = nil
        let rc = weft_tun_configure(name, address, Int32(prefixLength), Int32(mtu), &failed)
        if rc < 0 {
            let call = failed.map { String(cString: $0) } ?? "ioctl"
            switch -rc {
            case EPERM, EACCES:
                throw .permissionDenied("configuring TUN device \(name) needs root (CAP_NET_ADMIN): run as root or use --no-tun")
            case EINVAL:
                throw .invalidConfiguration("the kernel refused \(call) for \(name) (address \(IPAddress.v4(address))/\(prefixLength), MTU \(mtu)): check the values")
            default:
                throw .system(call: call, errno: -rc)
            }
        }
        let fw = weft_enable_ip_forward()
        if fw < 0 {
            switch -fw {
            case EPERM, EACCES, EROFS:
                throw .permissionDenied("enabling IPv4 forwarding (/proc/sys/net/ipv4/ip_forward) needs root with a writable /proc/sys: run as root or set it beforehand")
            default:
                throw .system(call: "write(/proc/sys/net/ipv4/ip_forward)", errno: -fw)
            }
        }
    }

    // MARK: - Control path

    /// Sends one control datagram (gossip, handshake, IPAM). Thread-safe. Waits up to 20 ms
    /// for send-buffer space, then drops and counts `udp-send-failed`.
    public func send(_ datagram: [UInt8], to: Endpoint) {
        guard !isStopped else { return }
        guard datagram.count <= DataPlane.maxDatagram else { counterBlock.drop(.tooLarge); return }
        var ep = weft_endpoint(to)
        let r = datagram.withUnsafeBytes { weft_udp_sendto(udpFD, $0.baseAddress, $0.count, &ep, 20) }
        if r < 0 {
            counterBlock.drop(.udpSendFailed)
        } else {
            counterBlock.add(.controlOut)
            counterBlock.add(.udpOutPackets)
            counterBlock.add(.udpOutBytes, UInt64(r))
        }
    }

    /// Writes a packet the slow path decrypted (`Tunnel.Directive.deliver`) to the TUN device.
    /// Thread-safe. Failures (EIO while the device is down) are counted, never thrown.
    public func deliverToTUN(_ packet: [UInt8]) {
        guard !isStopped else { return }
        guard tunFD >= 0 else { counterBlock.drop(.noTUN); return }
        let r = packet.withUnsafeBytes { weft_tun_write(tunFD, $0.baseAddress, $0.count, tunOffload ? 1 : 0) }
        if r < 0 { counterBlock.drop(.tunWriteFailed) } else { counterBlock.add(.tunOut) }
    }

    // MARK: - Tables

    /// Replaces the destination table (owner ranges of other nodes). Swapped atomically.
    public func updateRoutes(_ routes: [RouteEntry]) {
        let table = RouteTable(routes)
        state.withLock { s in
            s.tables = ForwardingTables(byIndex: s.tables.byIndex, sendTo: s.tables.sendTo, routes: table)
        }
    }

    /// The routes in use (sorted).
    public var routes: [RouteEntry] { state.withLock { $0.tables.routes.all } }

    /// Installs a session handed off by `Tunnel.Instance.handOffSession`: it becomes the send
    /// session for `snapshot.peer` (the previous one stays receivable until ``retire(localIndex:)``)
    /// and inbound packets with receiver index `snapshot.localIndex` are opened here.
    ///
    /// - Parameters:
    ///   - rejectAfter: overrides `snapshot.rejectAfter` (same timeline as `now`).
    ///   - now: the caller's current `Instant` on the timeline `rejectAfter` uses; the remaining
    ///     lifetime `rejectAfter - now` is added to `CLOCK_MONOTONIC` now.
    public func install(_ snapshot: Tunnel.SessionSnapshot, endpoint: Endpoint, rejectAfter: Instant? = nil, now: Instant) {
        let remaining = ((rejectAfter ?? snapshot.rejectAfter) - now).nanoseconds
        let base = weft_monotonic_ns()
        let (sum, overflow) = base.addingReportingOverflow(max(0, remaining))
        install(snapshot, endpoint: endpoint, expiresAtMonotonicNanos: overflow ? .max : sum)
    }

    /// ``install(_:endpoint:rejectAfter:now:)`` with the deadline already on `CLOCK_MONOTONIC`
    /// (``monotonicNanos()``).
    public func install(_ snapshot: Tunnel.SessionSnapshot, endpoint: Endpoint, expiresAtMonotonicNanos: Int64) {
        state.withLock { s in
            let stats: PeerStats
            if let existing = s.peerStats[snapshot.peer] { stats = existing } else {
                stats = PeerStats()
                s.peerStats[snapshot.peer] = stats
            }
            let ep = weft_endpoint(endpoint)
            let session = InstalledSession(snapshot: snapshot, endpoint: ep, expiresAtMonotonicNanos: expiresAtMonotonicNanos, stats: stats)
            var byIndex = s.tables.byIndex
            byIndex[snapshot.localIndex] = session
            var sendTo = s.tables.sendTo
            sendTo[snapshot.peer] = SendTarget(session: session, endpoint: ep)
            s.tables = ForwardingTables(byIndex: byIndex, sendTo: sendTo, routes: s.tables.routes)
        }
    }

    /// Forgets a session (`Tunnel.Directive.sessionRetired`): its receiver index becomes
    /// unknown, and if it was the peer's send session the peer has none until the next install.
    public func retire(localIndex: UInt32) {
        state.withLock { s in
            guard let session = s.tables.byIndex[localIndex] else { return }
            var byIndex = s.tables.byIndex
            byIndex[localIndex] = nil
            var sendTo = s.tables.sendTo
            if sendTo[session.peer]?.session.localIndex == localIndex { sendTo[session.peer] = nil }
            s.tables = ForwardingTables(byIndex: byIndex, sendTo: sendTo, routes: s.tables.routes)
        }
    }

    /// A peer moved: send its data to `endpoint` from now on.
    public func updateEndpoint(peer: NodeID, endpoint: Endpoint) {
        state.withLock { s in
            guard var target = s.tables.sendTo[peer] else { return }
            target.endpoint = weft_endpoint(endpoint)
            var sendTo = s.tables.sendTo
            sendTo[peer] = target
            s.tables = ForwardingTables(byIndex: s.tables.byIndex, sendTo: sendTo, routes: s.tables.routes)
        }
    }

    /// Receiver indices of the installed sessions (sorted).
    public var installedSessions: [UInt32] { state.withLock { $0.tables.byIndex.keys.sorted() } }

    // MARK: - Reports

    /// For `Tunnel.Instance.onDataPlaneReport`, about once a second: every installed session's
    /// next send counter (clamped to its limit).
    public func sendCounterReports() -> [(localIndex: UInt32, nextSendCounter: UInt64)] {
        let sessions = state.withLock { Array($0.tables.byIndex.values) }
        return sessions.sorted { $0.localIndex < $1.localIndex }.map { ($0.localIndex, $0.nextSendCounter) }
    }

    /// A copy of all counters.
    public func counters() -> DataPlaneCounters {
        var c = DataPlaneCounters()
        for d in DataPlaneDrop.allCases { c.drops[d.name] = counterBlock.load(d) }
        c.udpInPackets = counterBlock.load(.udpInPackets)
        c.udpInBytes = counterBlock.load(.udpInBytes)
        c.udpOutPackets = counterBlock.load(.udpOutPackets)
        c.udpOutBytes = counterBlock.load(.udpOutBytes)
        c.controlIn = counterBlock.load(.controlIn)
        c.controlOut = counterBlock.load(.controlOut)
        c.tunIn = counterBlock.load(.tunIn)
        c.tunOut = counterBlock.load(.tunOut)
        c.dataFromOtherEndpoint = counterBlock.load(.dataFromOtherEndpoint)
        c.keepalivesIn = counterBlock.load(.keepalivesIn)
        c.sessionsExhausted = counterBlock.load(.sessionsExhausted)
        c.innerSourceMismatch = counterBlock.load(.innerSourceMismatch)
        c.receiveBatches = counterBlock.load(.receiveBatches)
        c.sendBatches = counterBlock.load(.sendBatches)
        c.udpSegmentationFallbacks = counterBlock.load(.gsoFallbacks)
        c.tunSuperSegments = counterBlock.load(.superSegments)
        c.tunSuperSegmentPackets = counterBlock.load(.superSegmentPackets)
        c.tunCoalescedWrites = counterBlock.load(.coalescedWrites)
        c.tunCoalescedPackets = counterBlock.load(.coalescedPackets)
        c.tunCoalescingFallbacks = counterBlock.load(.coalesceFallbacks)
        for (peer, stats) in state.withLock({ $0.peerStats }) { c.peers[peer] = stats.snapshot }
        return c
    }

    @inline(__always)
    func currentTables() -> ForwardingTables { state.withLock { $0.tables } }
}

extension DataPlane {
    /// Moves the **calling thread only** into the network namespace at `path` (e.g.
    /// `/run/netns/NAME`) with `setns(CLONE_NEWNET)`. Sockets, TUN devices and
    /// ``configureTUN(address:prefixLength:mtu:)`` act in the namespace of the thread that calls
    /// them, so tests and tools can run one data plane per namespace in one process: enter on a
    /// dedicated thread, then create and configure the data plane there. Needs root.
    public static func enterNetworkNamespace(path: String) throws(DataPlaneError) {
        let rc = weft_enter_netns(path)
        guard rc == 0 else {
            switch -rc {
            case EPERM, EACCES: throw .permissionDenied("entering network namespace \(path) needs root (CAP_SYS_ADMIN)")
            case ENOENT: throw .invalidConfiguration("network namespace \(path) does not exist")
            default: throw .system(call: "setns(\(path))", errno: -rc)
            }
        }
    }
}
