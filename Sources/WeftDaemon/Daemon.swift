import Dispatch
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDataPlane
import WeftStore

/// The composition root: the only place that builds sockets, the store and crypto, wires them
/// to the node runtime, and tears them down. `weft start` calls `Daemon.run`.
public enum Daemon {
    /// How the node stopped.
    public enum Exit: Sendable {
        /// SIGINT/SIGTERM: a restart; identity, incarnation and members stay for next time.
        case signal(Int32)
        /// `weft leave`: announced, permanent departure.
        case left
    }

    private static let metricsBootstrap: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Prepares everything that can fail with a user error, then runs until a signal or `leave`.
    /// `onReady` receives the lines to show the operator (e.g. how to join this cluster).
    public static func run(
        options: NodeOptions, logger baseLogger: Logger, onReady: @Sendable ([String]) -> Void = { _ in }
    ) async throws -> Exit {
        let registry = metricsBootstrap
        let dataDir = options.dataDir
        try prepareDataDir(dataDir)

        do { try Sodium.initialize() } catch {
            throw StartupError("libsodium failed to initialize (\(error)): reinstall libsodium (bootstrap/setup)")
        }

        // A node already serving this data dir? Refuse before touching its files.
        if ControlClient(dataDir: dataDir, timeoutSeconds: 2).isNodeRunning() {
            throw StartupError("a weft node is already running for data dir \(dataDir): stop it first, or use another --data-dir")
        }

        let store: NodeStore
        do { store = try NodeStore(path: dataDir + "/weft.db") } catch {
            throw StartupError(error.description)
        }

        let keyPair = try loadOrCreateIdentity(store: store)
        var readyLines: [String] = []
        let clusterKey = try resolveClusterKey(options: options, store: store, readyLines: &readyLines)
        // A node creates a new cluster (and its address ring) only on its very first start
        // without seeds; afterwards it always has the cluster's state in its data dir.
        let createsCluster = options.seeds.isEmpty && (try? store.loadMembers().isEmpty) ?? true

        let name = try resolveName(options.name, store: store)
        let advertise = options.advertise ?? options.listen
        if case .v4(0) = advertise.address {
            throw StartupError("--listen \(options.listen) is a wildcard address that other nodes cannot reach: add --advertise HOST:PORT with this host's reachable address")
        }
        if case .v6(let b) = advertise.address, b.allSatisfy({ $0 == 0 }) {
            throw StartupError("--listen \(options.listen) is a wildcard address that other nodes cannot reach: add --advertise HOST:PORT with this host's reachable address")
        }

        let incarnation: UInt64
        do { incarnation = try store.nextIncarnation() } catch { throw StartupError(error.description) }

        var logger = baseLogger
        logger[metadataKey: "node"] = .string(keyPair.nodeID.short)

        let settings = options.profile.settings
        let myself = Membership.Member(
            id: keyPair.nodeID, name: name, address: advertise, publicKey: keyPair.publicKey.bytes,
            incarnation: incarnation, state: .alive
        )
        let known = try loadKnownMembers(store: store, excluding: keyPair.nodeID)
        let instance = Membership.Instance(
            myself: myself, settings: settings, seed: Sodium.randomUInt64(), now: Instant(nanoseconds: 1_000_000_000),
            knownMembers: known,
            identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) }
        )
        let ipam = try makeIPAM(options: options, store: store, me: keyPair.nodeID, createsCluster: createsCluster)
        let identity = NodeRuntime.Identity(keyPair: keyPair, advertise: advertise, clusterID: clusterKey.clusterID)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let runtime = NodeRuntime(
            instance: instance, ipam: ipam.instance, identity: identity, settings: settings, store: store,
            sealer: GossipSealer(clusterKey: clusterKey), logger: logger, group: group
        )


        var channels: [any Channel] = []
        func closeAll() async {
            for c in channels { try? await c.close() }
            try? await group.shutdownGracefully()
        }

        let (events, eventSink) = AsyncStream.makeStream(of: DataPlaneBridge.Event.self, bufferingPolicy: .bufferingNewest(4096))
        let dataPlane: DataPlane
        do {
            let tun = options.noTun ? nil : TUNConfig(name: options.tunName, mtu: options.mtu ?? 1420)
            dataPlane = try DataPlane(config: DataPlaneConfig(listen: options.listen, tun: tun))
        } catch {
            await closeAll()
            throw StartupError(error.description)
        }
        let tunMTU = options.mtu ?? Overlay.defaultMTU(for: advertise)
        var tunnel: Tunnel.Instance<SodiumTunnelSuite>?
        if !options.noTun {
            guard let staticKey = SodiumTunnelSuite.staticKeyPair(identity: keyPair) else {
                dataPlane.stop()
                await closeAll()
                throw StartupError("the identity key cannot be converted for tunnels: move weft.db aside to start as a new member")
            }
            tunnel = Tunnel.Instance(
                localID: keyPair.nodeID, staticKey: staticKey, presharedKey: SodiumTunnelSuite.presharedKey(clusterKey: clusterKey),
                suite: SodiumTunnelSuite(), timestampOrigin: .init(wall: WallClock.tunnelTimestamp(), instant: await runtime.now),
                rng: DeterministicRNG(seed: Sodium.randomUInt64())
            )
        }
        // Only now, with the sockets and the TUN device in hand, is state written (a new ring).
        await runtime.start(ipamDirectives: ipam.directives)
        dataPlane.start(delegate: DataPlaneBridge(sink: eventSink))
        await runtime.attach(dataPlane: dataPlane, tunnel: tunnel, tunMTU: tunMTU)
        do {
            let listen = try options.listen.socketAddress()
            // Push-pull and IPAM frames: the sealed hello gates every byte beyond the first 50;
            // connection limits, timeouts and refusal counters live in `tcpAdmission`.
            let tcpAdmission = TCPAdmission()
            let helloGate = tcpAdmission.helloGate(sealer: GossipSealer(clusterKey: clusterKey))
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 128)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(
                            maxFrame: DaemonLimits.maxPushPullFrame + GossipEnvelope.helloLength, admission: tcpAdmission, gate: helloGate
                        ) { bytes, peer in
                            await runtime.onTCPRequest(bytes, from: Endpoint(peer))
                        })
                    }
                }
                .bind(to: listen).get()
            channels.append(tcp)
        } catch {
            dataPlane.stop()
            await closeAll()
            throw StartupError(describeBindError(error, address: options.listen.description, flag: "--listen"))
        }

        let shutdown = AsyncStream.makeStream(of: Exit.self)
        let control = ControlService(
            runtime: runtime,
            resolver: { text in Result { try resolveEndpoint(text) }.mapError { $0 as? StartupError ?? StartupError("\($0)") } },
            onLeave: { shutdown.continuation.yield(.left) }
        )
        let socketPath = API.socketPath(dataDir: dataDir)
        do {
            let oldMask = umask(0o077)
            defer { umask(oldMask) }
            let ctl = try await ServerBootstrap(group: group)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(maxFrame: API.maxFrameBytes, idleTimeout: .seconds(120)) { bytes, _ in
                            await control.handle(bytes)
                        })
                    }
                }
                .bind(unixDomainSocketPath: socketPath, cleanupExistingSocketFile: true).get()
            chmod(socketPath, 0o600)
            channels.append(ctl)
        } catch {
            await closeAll()
            throw StartupError("cannot serve the control socket \(socketPath) (\(error)): check that the data dir is writable and the path is shorter than 108 bytes")
        }

        if let metricsAddress = options.metricsListen {
            do {
                let m = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry))
                        }
                    }
                    .bind(to: metricsAddress.socketAddress()).get()
                channels.append(m)
            } catch {
                await closeAll()
                try? FileManager.default.removeItem(atPath: socketPath)
                throw StartupError(describeBindError(error, address: metricsAddress.description, flag: "--metrics-listen"))
            }
        }

        // Seeds: resolve now so a typo fails fast.
        var seedEndpoints: [Endpoint] = []
        for s in options.seeds {
            do { seedEndpoints.append(try resolveEndpoint(s)) } catch {
                await closeAll()
                try? FileManager.default.removeItem(atPath: socketPath)
                throw error
            }
        }

        let signals = installSignalHandlers { sig in shutdown.continuation.yield(.signal(sig)) }
        logger.notice("node started", metadata: [
            "event": "start", "name": .string(name), "addr": .string(advertise.description),
            "cluster": .string(clusterKey.clusterID), "incarnation": .stringConvertible(incarnation),
            "members": .stringConvertible(known.count + 1),
        ])
        onReady(readyLines)

        let seeds = seedEndpoints
        let exit = await withTaskGroup(of: Exit?.self) { tasks -> Exit in
            tasks.addTask {
                for await e in events {
                    switch e {
                    case .datagram(let bytes, let from): await runtime.onDatagram(bytes, from: from)
                    case .noSession(let peer, let packet): await runtime.onNoSession(peer: peer, packet: packet)
                    case .exhausted(let index): await runtime.onSessionExhausted(localIndex: index)
                    }
                }
                return nil
            }
            tasks.addTask { await runtime.runTimers(); return nil }
            if !seeds.isEmpty {
                tasks.addTask { _ = await runtime.join(seeds, remember: true); return nil }
            }
            tasks.addTask {
                for await e in shutdown.stream { return e }
                return .signal(SIGTERM)
            }
            var result: Exit = .signal(SIGTERM)
            while let next = await tasks.next() {
                if let e = next { result = e; break }
            }
            await runtime.stop()
            eventSink.finish()
            dataPlane.stop()
            shutdown.continuation.finish()
            // Give a just-written control reply (e.g. to `leave`) a moment to leave the socket.
            try? await Task.sleep(for: .milliseconds(100))
            await closeAll()
            tasks.cancelAll()
            return result
        }
        for s in signals { s.cancel() }
        try? FileManager.default.removeItem(atPath: socketPath)
        switch exit {
        case .left: logger.notice("left the cluster; node stopped", metadata: ["event": "stopped"])
        case .signal(let sig): logger.notice("stopped by signal \(sig); state kept for restart", metadata: ["event": "stopped"])
        }
        return exit
    }

    // MARK: - Start-up steps

    static func prepareDataDir(_ dir: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) {
            guard isDir.boolValue else {
                throw StartupError("data dir \(dir) exists but is not a directory: pass another --data-dir")
            }
        } else {
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StartupError("cannot create data dir \(dir) (\(error.localizedDescription)): create it yourself or choose another --data-dir")
            }
        }
        guard access(dir, W_OK | X_OK) == 0 else {
            throw StartupError("data dir \(dir) is not writable by this user: run as its owner (usually root) or choose another --data-dir")
        }
    }

    static func loadOrCreateIdentity(store: NodeStore) throws -> IdentityKeyPair {
        do {
            if let secret = try store.loadIdentitySecret() {
                do { return try IdentityKeyPair(secretKey: SecretBytes(secret)) } catch {
                    throw StartupError("the identity key stored in the data dir is invalid (\(error)): move weft.db aside to start as a new member")
                }
            }
            let fresh = IdentityKeyPair.generate()
            try store.saveIdentitySecret(fresh.secretKey.copyBytes())
            return fresh
        } catch let e as StartupError {
            throw e
        } catch {
            throw StartupError("\(error)")
        }
    }

    static func resolveClusterKey(options: NodeOptions, store: NodeStore, readyLines: inout [String]) throws -> ClusterKey {
        let dataDirKeyPath = options.dataDir + "/cluster.key"
        let key: ClusterKey
        switch options.clusterKey {
        case .literal(let text):
            do { key = try ClusterKey(text: text) } catch { throw StartupError("--cluster-key is not a valid cluster key (\(error)): use the text `weft keygen` prints") }
        case .file(let path):
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw StartupError("cannot read cluster key file \(path) (\(error.localizedDescription)): check the path and its permissions")
            }
            do { key = try ClusterKey(text: text) } catch { throw StartupError("cluster key file \(path) does not hold a valid key (\(error)): create one with `weft keygen > \(path)`") }
        case .dataDir:
            if FileManager.default.fileExists(atPath: dataDirKeyPath) {
                let text: String
                do { text = try String(contentsOfFile: dataDirKeyPath, encoding: .utf8) } catch {
                    throw StartupError("cannot read \(dataDirKeyPath) (\(error.localizedDescription)): check its permissions")
                }
                do { key = try ClusterKey(text: text) } catch { throw StartupError("\(dataDirKeyPath) does not hold a valid key (\(error)): restore it from another member's data dir") }
            } else if !options.seeds.isEmpty {
                throw StartupError("joining a cluster needs its key: pass --cluster-key-file FILE (a copy of cluster.key from a member's data dir)")
            } else {
                key = ClusterKey.generate()
                readyLines.append("created a new cluster \(key.clusterID); its key is in \(dataDirKeyPath)")
            }
        }
        // Keep the key in the data dir so a restart needs no flags.
        if !FileManager.default.fileExists(atPath: dataDirKeyPath) {
            let ok = FileManager.default.createFile(atPath: dataDirKeyPath, contents: Data((key.text + "\n").utf8), attributes: [.posixPermissions: 0o600])
            if !ok { throw StartupError("cannot write \(dataDirKeyPath): check that the data dir is writable") }
        }
        // A data dir belongs to one cluster.
        do {
            if let stored = try store.meta(NodeStore.MetaKey.clusterID), stored != key.clusterID {
                throw StartupError("data dir \(options.dataDir) belongs to cluster \(stored), but the given key is for cluster \(key.clusterID): use that cluster's key, or a fresh --data-dir")
            }
            try store.setMeta(NodeStore.MetaKey.clusterID, key.clusterID)
        } catch let e as StartupError { throw e } catch { throw StartupError("\(error)") }
        if options.seeds.isEmpty {
            let listen = (options.advertise ?? options.listen).description
            readyLines.append("to add a host, copy \(dataDirKeyPath) to it and run there:")
            readyLines.append("  weft start --data-dir \(API.defaultDataDir) --listen HOST:\(NodeOptions.defaultPort) --seed \(listen) --cluster-key-file cluster.key")
        }
        return key
    }

    static func resolveName(_ flag: String?, store: NodeStore) throws -> String {
        var name = flag ?? ((try? store.meta(NodeStore.MetaKey.nodeName)) ?? nil) ?? ProcessInfo.processInfo.hostName
        if name.isEmpty { name = "weft" }
        guard name.utf8.count <= 63, !name.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw StartupError("--name must be 1 to 63 bytes without line breaks")
        }
        try? store.setMeta(NodeStore.MetaKey.nodeName, name)
        return name
    }

    /// The address allocator: restored from SQLite, or a new ring when this node creates the
    /// cluster, or empty (waiting for the ring from a seed). The overlay address is claimed here.
    static func makeIPAM(options: NodeOptions, store: NodeStore, me: NodeID, createsCluster: Bool) throws -> (instance: IPAM.Instance, directives: [IPAM.Directive]) {
        var settings = options.profile.ipamSettings
        settings.reclaimAfter = options.reclaimAfter
        if let problem = settings.validate() { throw StartupError("address allocation settings: \(problem)") }
        let seed = Sodium.randomUInt64()
        let now = Instant(nanoseconds: 1_000_000_000)
        let snapshot: IPAM.Instance.Snapshot?
        do { snapshot = try store.loadIPAMSnapshot() } catch { throw StartupError(error.description) }
        var directives: [IPAM.Directive] = []
        var instance: IPAM.Instance
        if let snapshot, snapshot.ring != nil {
            instance = IPAM.Instance(me: me, settings: settings, seed: seed, restoring: snapshot)
        } else {
            instance = IPAM.Instance(me: me, settings: settings, seed: seed)
            if createsCluster {
                directives += instance.createCluster(subnet: options.subnet, now: now)
            }
        }
        if instance.ring != nil && instance.overlayAddress == nil {
            if let (_, d) = try? instance.claimOverlayAddress(now: now) { directives += d }
        }
        return (instance, directives)
    }

    static func loadKnownMembers(store: NodeStore, excluding me: NodeID) throws -> [Membership.Member] {
        let stored: [StoredMember]
        do { stored = try store.loadMembers() } catch { throw StartupError(error.description) }
        return stored.compactMap { s in
            guard s.id != me, let address = Endpoint(s.address) else { return nil }
            return Membership.Member(
                id: s.id, name: s.name, address: address, publicKey: s.publicKey,
                incarnation: s.incarnation, state: s.state
            )
        }
    }

    /// `host:port` with an IP literal or a host name (resolved once, IPv4 preferred).
    public static func resolveEndpoint(_ text: String) throws -> Endpoint {
        if let e = Endpoint(text) { return e }
        guard let (host, port) = Endpoint.split(text) else {
            throw StartupError("'\(text)' is not an address: write HOST:PORT, e.g. 192.168.1.10:7946 or [fd00::1]:7946")
        }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &result)
        guard rc == 0, let first = result else {
            throw StartupError("cannot resolve host '\(host)' in '\(text)' (\(String(cString: gai_strerror(rc)))): check the name or use an IP address")
        }
        defer { freeaddrinfo(result) }
        var v6: Endpoint?
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            if ai.pointee.ai_family == AF_INET, let sa = ai.pointee.ai_addr {
                let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                return Endpoint(address: .v4(UInt32(bigEndian: a)), port: port)
            }
            if ai.pointee.ai_family == AF_INET6, v6 == nil, let sa = ai.pointee.ai_addr {
                let bytes = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ptr in
                    withUnsafeBytes(of: ptr.pointee.sin6_addr) { Array($0) }
                }
                v6 = Endpoint(address: .v6(bytes), port: port)
            }
            p = ai.pointee.ai_next
        }
        if let v6 { return v6 }
        throw StartupError("host '\(host)' has no IP address: check the name or use an IP address")
    }

    static func describeBindError(_ error: any Error, address: String, flag: String) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: return "\(address) is already in use (another weft node or program?): choose another port with \(flag) HOST:PORT"
            case EADDRNOTAVAIL: return "\(address) is not an address of this host: use one of this host's addresses with \(flag)"
            case EACCES: return "not allowed to bind \(address) (ports below 1024 need root): choose a higher port with \(flag)"
            default: break
            }
        }
        return "cannot listen on \(address) (\(error)): check \(flag)"
    }

    static func installSignalHandlers(_ handler: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
        [SIGINT, SIGTERM].map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { handler(sig) }
            source.resume()
            return source
        }
    }
}
