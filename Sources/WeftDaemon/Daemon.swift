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
import WeftKernelNet
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
        let registry = NodeMetrics.registry
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()

    /// Prepares everything that can fail with a user error, then runs until a signal or `leave`.
    /// `onReady` receives the lines to show the operator (e.g. how to join this cluster).
    ///
    /// A start that fails (any thrown error) leaves the data dir as it was: what this attempt
    /// created (the data dir, `cluster.key`, a new `weft.db` with `-wal`/`-shm`) is removed; an
    /// existing `weft.db` is kept (a failed start may only have raised its stored incarnation).
    public static func run(
        options: NodeOptions, logger baseLogger: Logger, onReady: @Sendable ([String]) -> Void = { _ in }
    ) async throws -> Exit {
        let footprint = DataDirFootprint(dir: options.dataDir)
        let lock: DataDirLock
        do {
            try prepareDataDir(options.dataDir)
            lock = try DataDirLock(dir: options.dataDir)
        } catch {
            footprint.rollback()
            throw error
        }
        do {
            let exit = try await runNode(options: options, footprint: footprint, logger: baseLogger, onReady: onReady)
            withExtendedLifetime(lock) {}
            return exit
        } catch {
            let removed = footprint.rollback()
            if !removed.isEmpty {
                baseLogger.debug("failed start rolled back", metadata: ["event": "start-failed", "removed": .string(removed.joined(separator: ","))])
            }
            withExtendedLifetime(lock) {}
            throw error
        }
    }

    /// Which of the lifecycle's paths this start takes (docs/operations.md, "Lifecycle").
    enum StartPath: Equatable {
        /// Nothing says the data dir belonged to a cluster, no seed: create one.
        case create
        /// Nothing says it belonged to one (or only its key survived), seeds given: join as a new member.
        case join
        /// The database belongs to a cluster: come back as the same member.
        case restart
        /// The database records a completed `weft leave`: rejoin as a new joiner under the same id.
        case rejoinAfterLeave(leftAt: String)
    }

    /// Raises the soft limit on open files to the hard limit (Debian's default soft limit is
    /// 1024) and returns the limit now in force. The node bounds its own connections (64
    /// inbound, 32 outgoing IPAM connections); the headroom is for the rest of the
    /// process, because libdispatch aborts the whole process when it cannot open a file.
    static func raiseFileLimit() -> UInt64 {
        var rl = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return 0 }
        if rl.rlim_cur < rl.rlim_max {
            var raised = rl
            raised.rlim_cur = rl.rlim_max
            if setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(rl.rlim_cur)
    }

    static func runNode(
        options: NodeOptions, footprint: DataDirFootprint, logger baseLogger: Logger, onReady: @Sendable ([String]) -> Void
    ) async throws -> Exit {
        let registry = metricsBootstrap
        let dataDir = options.dataDir

        do { try Sodium.initialize() } catch {
            throw StartupError("libsodium failed to initialize (\(error)): reinstall libsodium (bootstrap/setup)")
        }

        let fileLimit = raiseFileLimit()
        // A node already serving this data dir (an older weft without the lock)? Refuse before touching its files.
        if ControlClient(dataDir: dataDir, timeoutSeconds: 2).isNodeRunning() {
            throw StartupError("a weft node is already running for data dir \(dataDir): stop it first, or use another --data-dir")
        }
        // Seeds: resolve now so a typo fails before anything is written.
        var seedEndpoints: [Endpoint] = []
        for s in options.seeds { seedEndpoints.append(try resolveEndpoint(s)) }

        // Read what the data dir says about its past before anything is written to it.
        try checkLeftoverJournal(footprint)
        // A key file that cannot be used is reported as such before anything else.
        if footprint.hadKey { _ = try readKeyFile(footprint.keyPath, flagForErrors: nil) }
        if footprint.hadKey && !footprint.hadDatabase && options.seeds.isEmpty {
            let id = try? readKeyFile(footprint.keyPath, flagForErrors: nil).clusterID
            throw recoveryWithoutDatabaseError(options: options, clusterID: id)
        }

        let store: NodeStore
        do { store = try NodeStore(path: footprint.databasePath) } catch { throw startupError(error, options: options) }
        let evidence: NodeStore.ClusterEvidence
        do { evidence = try store.clusterEvidence() } catch { throw startupError(error, options: options) }

        let keyPair = try loadOrCreateIdentity(store: store, options: options)
        var readyLines: [String] = []
        let keyring = try resolveKeyring(options: options, store: store, evidence: evidence, readyLines: &readyLines)
        let path: StartPath
        if let leftAt = evidence.leftAt {
            path = .rejoinAfterLeave(leftAt: leftAt)
        } else if evidence.belongsToCluster {
            path = .restart
        } else {
            path = options.seeds.isEmpty ? .create : .join
        }

        let name = try resolveName(options.name, store: store)
        let advertise = options.advertise ?? options.listen
        if case .v4(0) = advertise.address {
            throw StartupError("--listen \(options.listen) is a wildcard address that other nodes cannot reach: add --advertise HOST:PORT with this host's reachable address")
        }
        if case .v6(let b) = advertise.address, b.allSatisfy({ $0 == 0 }) {
            throw StartupError("--listen \(options.listen) is a wildcard address that other nodes cannot reach: add --advertise HOST:PORT with this host's reachable address")
        }

        // After a leave the node rejoins as a new joiner: no members, no ring, its old members
        // only serve as seeds. The store is reset once every socket is bound (below).
        var known = try loadKnownMembers(store: store, excluding: keyPair.nodeID, options: options)
        if case .rejoinAfterLeave(let leftAt) = path {
            let contacts = known.filter { $0.state != .left }.map(\.address)
            for c in contacts where !seedEndpoints.contains(c) && c != advertise { seedEndpoints.append(c) }
            if seedEndpoints.isEmpty {
                throw leftWithoutContactsError(options: options, clusterID: evidence.clusterID, leftAt: leftAt)
            }
            known = []
        }

        let incarnation: UInt64
        do { incarnation = try store.nextIncarnation() } catch { throw startupError(error, options: options) }

        var logger = baseLogger
        logger[metadataKey: "node"] = .string(keyPair.nodeID.short)
        if case .rejoinAfterLeave(let leftAt) = path {
            readyLines.append("this node left cluster \(keyring.clusterID) \(describeLeftAt(leftAt)); it rejoins as a new member: same id, incarnation \(incarnation), new address space by donation and a new overlay address")
        }

        let settings = options.profile.settings
        let myself = Membership.Member(
            id: keyPair.nodeID, name: name, address: advertise, publicKey: keyPair.publicKey.bytes,
            incarnation: incarnation, state: .alive
        )
        let instance = Membership.Instance(
            myself: myself, settings: settings, seed: Sodium.randomUInt64(), now: Instant(nanoseconds: 1_000_000_000),
            knownMembers: known,
            identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) },
            signer: .ed25519(identity: keyPair)
        )
        let ipam = try makeIPAM(options: options, store: store, me: keyPair.nodeID, path: path)
        if path == .restart && known.isEmpty && ipam.instance.ring == nil && seedEndpoints.isEmpty {
            // It joined once (or tried to) but never got the ring and knows nobody: it could
            // only sit alone. Only a seed helps.
            throw StartupError(
                "data dir \(dataDir) belongs to cluster \(keyring.clusterID) but knows no member and holds no address space yet: give a live member to join through (HOST:PORT as in `weft members` there):",
                commands: [startCommand(options)]
            )
        }
        let identity = NodeRuntime.Identity(keyPair: keyPair, advertise: advertise, clusterID: keyring.clusterID)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        var nodeSettings = options.profile.nodeSettings
        nodeSettings.dnsDomain = options.dnsDomain
        if options.vxlan != nil { nodeSettings.dataPlane = "vxlan" }
        if options.vxlan != nil, !advertise.address.isV4 {
            throw StartupError("--data-plane vxlan needs an IPv4 underlay, but this node's address is \(advertise): give an IPv4 --listen/--advertise, or use the encrypted data plane")
        }
        let records: [DNS.Records.Key: DNS.Records.Record]
        if case .rejoinAfterLeave = path { records = [:] } else {
            do { records = try store.loadRecords() } catch { throw startupError(error, options: options) }
        }
        // Evictions outlive a leave: a banned identity stays banned (docs/security.md "Eviction").
        let evictions: [Node.Eviction]
        do { evictions = try store.loadEvictions() } catch { throw startupError(error, options: options) }
        let node = Node.Instance(membership: instance, ipam: ipam.instance, records: records, evictions: evictions,
                                 settings: nodeSettings, storage: store,
                                 frameCounterBase: WallClock.nanoseconds())
        // One sealer for the runtime and the TCP hello gate: a key rotation (`weft keys`)
        // changes both at once.
        let sealer = GossipSealer(keyring: keyring)
        let runtime = NodeRuntime(
            node: node, identity: identity, settings: settings,
            sealer: sealer, logger: logger, group: group
        )
        await runtime.setKeyring(keyring, keyFile: options.dataDir + "/cluster.key")
        var dnsService: DNSService?
        if options.dnsListen != .off {
            var own: Endpoint?
            if case .address(let e) = options.dnsListen { own = e }
            let upstreams = options.dnsUpstreams.isEmpty ? DNSService.upstreams(exclude: own) : options.dnsUpstreams
            dnsService = DNSService(upstreams: upstreams)
        }


        var channels: [any Channel] = []
        func closeAll() async {
            for c in channels { try? await c.close() }
            try? await group.shutdownGracefully()
        }

        let (events, eventSink) = AsyncStream.makeStream(of: DataPlaneBridge.Event.self, bufferingPolicy: .bufferingNewest(4096))
        let dataPlane: DataPlane
        do {
            let tun = options.noTun || options.vxlan != nil ? nil : TUNConfig(name: options.tunName, mtu: options.mtu ?? 1420, offload: options.tunOffload)
            dataPlane = try DataPlane(config: DataPlaneConfig(listen: options.listen, tun: tun))
        } catch {
            await closeAll()
            throw StartupError(error.description)
        }
        let tunMTU = options.mtu ?? Overlay.defaultMTU(for: advertise)
        var tunnel: Tunnel.Instance<SodiumTunnelSuite>?
        if !options.noTun && options.vxlan == nil {
            guard let staticKey = SodiumTunnelSuite.staticKeyPair(identity: keyPair) else {
                dataPlane.stop()
                await closeAll()
                throw corruptDatabaseError(detail: "its identity key cannot be converted for tunnels", options: options)
            }
            tunnel = Tunnel.Instance(
                localID: keyPair.nodeID, staticKey: staticKey, presharedKey: SodiumTunnelSuite.presharedKey(clusterKey: keyring.primary),
                suite: SodiumTunnelSuite(), timestampOrigin: .init(wall: WallClock.tunnelTimestamp(), instant: await runtime.now),
                rng: DeterministicRNG(seed: Sodium.randomUInt64())
            )
            tunnel?.setPresharedKeys(keyring.keys.map { SodiumTunnelSuite.presharedKey(clusterKey: $0) })
        }
        let shutdown = AsyncStream.makeStream(of: Exit.self)
        let refusal = RefusalBox()
        do {
            let listen = try options.listen.socketAddress()
            // Push-pull and IPAM frames: the sealed hello gates every byte beyond the first 50;
            // connection limits, timeouts and refusal counters live in `tcpAdmission`.
            let tcpAdmission = TCPAdmission()
            await runtime.setTCPAdmission(tcpAdmission)
            let helloGate = tcpAdmission.helloGate(sealer: sealer)
            let tcp = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 128)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(FramedRequestHandler(
                            maxFrame: DaemonLimits.maxPushPullFrame + GossipEnvelope.helloLength, admission: tcpAdmission, gate: helloGate
                        ) { bytes, peer in
                            if NodeRuntime.isOperatorFrame(bytes) { return await runtime.onOperatorFrame(bytes, from: Endpoint(peer)) }
                            return await runtime.onTCPRequest(bytes, from: Endpoint(peer))
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

        let attachments = AttachmentReconciler(dataDir: dataDir, grace: options.attachmentGCAfter, logger: logger)
        let control = ControlService(
            runtime: runtime,
            resolver: { text in Result { try resolveEndpoint(text) }.mapError { $0 as? StartupError ?? StartupError("\($0)") } },
            onLeave: { shutdown.continuation.yield(.left) },
            attachments: attachments
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
            dataPlane.stop()
            await closeAll()
            throw StartupError("cannot serve the control socket \(socketPath) (\(error)): check that the data dir is writable and the path is shorter than 108 bytes")
        }

        if let metricsAddress = options.metricsListen {
            do {
                let m = try await ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .childChannelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(registry: registry, refresh: { await runtime.refreshMetrics() },
                                                                                             statusJSON: { await runtime.statusPageJSON() }))
                        }
                    }
                    .bind(to: metricsAddress.socketAddress()).get()
                channels.append(m)
            } catch {
                dataPlane.stop()
                await closeAll()
                try? FileManager.default.removeItem(atPath: socketPath)
                throw StartupError(describeBindError(error, address: metricsAddress.description, flag: "--metrics-listen"))
            }
        }

        if let dnsService, case .address(let dnsAddress) = options.dnsListen {
            do {
                channels += try await DNSServer.bind(dnsAddress, service: dnsService, group: group)
            } catch {
                dataPlane.stop()
                await closeAll()
                try? FileManager.default.removeItem(atPath: socketPath)
                throw StartupError(describeBindError(error, address: dnsAddress.description, flag: "--dns-listen"))
            }
        }

        // --data-plane vxlan: the kernel's device, created before the point of no return so a
        // failure (not root, port taken) leaves the data dir as it was.
        var kernelForwarding: VXLANForwarder?
        if let vx = options.vxlan, case .v4(let local) = advertise.address {
            let underlay = Overlay.interfaceMTU(holding: advertise.address) ?? 1500
            let config = KernelVXLAN.Config(
                name: options.tunName, vni: vx.vni, port: vx.port, local: local,
                mtu: options.mtu ?? underlay - VXLAN.overheadIPv4, mac: VXLAN.mac(for: keyPair.nodeID)
            )
            do {
                kernelForwarding = try VXLANForwarder(config: config, logger: logger)
            } catch {
                dataPlane.stop()
                await closeAll()
                try? FileManager.default.removeItem(atPath: socketPath)
                throw StartupError("cannot set up the VXLAN device \(options.tunName) (\(error)): run as root (CAP_NET_ADMIN), and check that UDP port \(vx.port) is free (--vxlan-port) and the kernel has the vxlan module")
            }
            await runtime.setKernelForwarding(kernelForwarding!)
        } else {
            await runtime.setDataPlaneMode(options.dataPlaneLabel)
        }

        // Every socket is bound: the point of no return. Only now is an existing database
        // changed beyond its incarnation (cluster id, name, the reset of a node that left).
        do {
            if case .rejoinAfterLeave = path { try store.resetToJoiner() }
            if evidence.clusterID == nil { try store.setMeta(NodeStore.MetaKey.clusterID, keyring.clusterID) }
            try store.setMeta(NodeStore.MetaKey.nodeName, name)
        } catch {
            kernelForwarding?.stop()
            dataPlane.stop()
            await closeAll()
            try? FileManager.default.removeItem(atPath: socketPath)
            throw startupError(error, options: options)
        }
        if case .rejoinAfterLeave(let leftAt) = path {
            logger.notice("rejoining as a new member after a leave", metadata: [
                "event": "rejoin", "left": .string(describeLeftAt(leftAt)), "incarnation": .stringConvertible(incarnation),
                "seeds": .string(seedEndpoints.map(\.description).joined(separator: ",")),
            ])
        }
        // The node's own start-up state (a new ring, the overlay claim) is committed here,
        // after the point of no return; then packets flow.
        do {
            try await runtime.start(
                dataPlane: dataPlane, tunnel: tunnel, tunMTU: tunMTU, seeds: seedEndpoints, ipamStartup: ipam.directives,
                dns: dnsService, dnsListen: options.dnsListen, tunOffloadAsked: options.tunOffload,
                onRefused: { message in
                    refusal.set(message)
                    shutdown.continuation.yield(.signal(SIGTERM))
                }
            )
        } catch {
            kernelForwarding?.stop()
            dataPlane.stop()
            await closeAll()
            try? FileManager.default.removeItem(atPath: socketPath)
            throw StartupError(error.description)
        }
        dataPlane.start(delegate: DataPlaneBridge(sink: eventSink))
        if dataPlane.tunName != nil && options.tunOffload && !dataPlane.tunOffload {
            logger.warning("the kernel refused TUN segmentation offload; one read per packet (slower, correct)", metadata: [
                "event": "tun-offload-refused", "hint": "docs/dataplane.md, \"TUN offloads\"",
            ])
        }

        let signals = installSignalHandlers { sig in shutdown.continuation.yield(.signal(sig)) }
        logger.notice("node started", metadata: [
            "event": "start", "name": .string(name), "addr": .string(advertise.description),
            "cluster": .string(keyring.clusterID), "keys": .stringConvertible(keyring.keys.count), "incarnation": .stringConvertible(incarnation),
            "members": .stringConvertible(known.count + 1), "openFiles": .stringConvertible(fileLimit),
        ])
        onReady(readyLines)

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
            tasks.addTask { await attachments.run(runtime: runtime); return nil }
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
        if case .left = exit {
            // The next start rejoins as a new member (docs/operations.md, "Lifecycle").
            do { try store.recordLeave(atMilliseconds: WallClock.milliseconds()) } catch {
                logger.error("cannot record the completed leave; the next start will treat it as a restart", metadata: ["event": "store-error", "error": .string(error.description)])
            }
        }
        if let message = refusal.message {
            logger.error("refused by the cluster; node stopped", metadata: ["event": "stopped"])
            throw StartupError(message)
        }
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

    static func loadOrCreateIdentity(store: NodeStore, options: NodeOptions) throws -> IdentityKeyPair {
        do {
            if let secret = try store.loadIdentitySecret() {
                do { return try IdentityKeyPair(secretKey: SecretBytes(secret)) } catch {
                    throw corruptDatabaseError(detail: "the identity key stored in it is invalid: \(error)", options: options)
                }
            }
            let fresh = IdentityKeyPair.generate()
            try store.saveIdentitySecret(fresh.secretKey.copyBytes())
            return fresh
        } catch let e as StartupError {
            throw e
        } catch let e as StoreError {
            throw startupError(e, options: options)
        } catch {
            throw StartupError("\(error)")
        }
    }

    /// Reads and parses a cluster key file; `flagForErrors` names the flag in messages (nil: the data dir's own key).
    static func readKeyFile(_ path: String, flagForErrors: String?) throws -> ClusterKeyring {
        let text = try readKeyText(path, what: flagForErrors != nil ? "cluster key file \(path)" : path)
        do { return try ClusterKeyring(text: text) } catch {
            if flagForErrors != nil {
                throw StartupError("cluster key file \(path) does not hold a valid key (\(error)): use a copy of cluster.key from a member's data dir, or for a new cluster create one:", commands: ["weft keygen > \(shellQuote(path))"])
            }
            throw StartupError("\(path) does not hold a valid key (\(error)): copy it again from another member's data dir:", commands: ["scp MEMBER:/var/lib/weft/cluster.key \(shellQuote(path))"])
        }
    }

    /// The cluster's keyring: from a flag, else the data dir's `cluster.key`, else (only when
    /// nothing says the data dir belonged to a cluster and no seed is given) a new one-key
    /// keyring. The flag's keys and the data dir's must be the same cluster's (its id, or a key
    /// in common), and then the data dir's keyring is used: it is the one `weft keys` keeps up to
    /// date. A keyring is written to the data dir only when none is there (a failed start
    /// removes it again). The database's cluster id is written by `runNode` once the start has
    /// succeeded.
    static func resolveKeyring(options: NodeOptions, store: NodeStore, evidence: NodeStore.ClusterEvidence, readyLines: inout [String]) throws -> ClusterKeyring {
        let dataDirKeyPath = options.dataDir + "/cluster.key"
        let keyInDataDir = FileManager.default.fileExists(atPath: dataDirKeyPath)
        let stored = evidence.clusterID
        var keyring: ClusterKeyring
        var created = false
        switch options.clusterKey {
        case .literal(let text):
            do { keyring = ClusterKeyring(primary: try ClusterKey(text: text)) } catch { throw StartupError("--cluster-key is not a valid cluster key (\(error)): use the text `weft keygen` prints, or a copy of cluster.key with --cluster-key-file") }
        case .file(let path):
            keyring = try readKeyFile(path, flagForErrors: "--cluster-key-file")
        case .dataDir:
            if keyInDataDir {
                keyring = try readKeyFile(dataDirKeyPath, flagForErrors: nil)
            } else if let stored {
                throw StartupError(
                    "data dir \(options.dataDir) belongs to cluster \(stored) but its cluster.key is missing: copy the key from another member (or pass it with --cluster-key-file FILE):",
                    commands: ["scp MEMBER:/var/lib/weft/cluster.key \(shellQuote(dataDirKeyPath))", startCommand(options)]
                )
            } else if !options.seeds.isEmpty || evidence.belongsToCluster {
                throw StartupError(
                    "joining a cluster needs its key: pass --cluster-key-file FILE (a copy of cluster.key from a member's data dir):",
                    commands: [startCommand(options, keyFile: "FILE")]
                )
            } else {
                keyring = ClusterKeyring(primary: ClusterKey.generate())
                created = true
            }
        }
        if keyInDataDir, options.clusterKey != .dataDir {
            let own = try readKeyFile(dataDirKeyPath, flagForErrors: nil)
            let shared = keyring.keys.contains { own.contains($0) }
            if own.clusterID != keyring.clusterID && !shared {
                throw StartupError("data dir \(options.dataDir) belongs to cluster \(own.clusterID) (\(dataDirKeyPath) holds its keys \(own.keyIDs.joined(separator: ", "))), and the given key is none of them (\(keyring.keyIDs.joined(separator: ", "))): drop the key flag to use the data dir's keys; if the cluster rotated its key while this node was away, copy cluster.key from a member's data dir over this one")
            }
            keyring = own
        }
        // A data dir belongs to one cluster: its database's and its key file's.
        if let stored, stored != keyring.clusterID {
            throw StartupError("data dir \(options.dataDir) belongs to cluster \(stored), but the given key is for cluster \(keyring.clusterID): use that cluster's key (\(dataDirKeyPath), or cluster.key from one of its members), or a fresh --data-dir")
        }
        // Keep the keyring in the data dir so a restart needs no flags.
        if !keyInDataDir {
            let ok = FileManager.default.createFile(atPath: dataDirKeyPath, contents: Data(keyring.text.utf8), attributes: [.posixPermissions: 0o600])
            if !ok { throw StartupError("cannot write \(dataDirKeyPath): check that the data dir is writable") }
        }
        if created {
            readyLines.append("created a new cluster \(keyring.clusterID); its key is in \(dataDirKeyPath)")
        }
        // The join hint is for whoever just created the cluster, not for every restart of every
        // node (a restarted joiner has no seeds on its command line either).
        if created {
            let listen = (options.advertise ?? options.listen).description
            readyLines.append("to add a host, copy \(dataDirKeyPath) to it and run there:")
            readyLines.append("  weft start --data-dir \(API.defaultDataDir) --listen HOST:\(NodeOptions.defaultPort) --seed \(listen) --cluster-key-file cluster.key")
        }
        return keyring
    }

    /// Writes a keyring over `path` atomically (a 0600 temporary file renamed over it), so a
    /// crash leaves either the old keyring or the new one.
    static func writeKeyring(_ keyring: ClusterKeyring, to path: String) throws {
        do throws(AtomicFile.Failure) {
            try AtomicFile.write(Data(keyring.text.utf8), to: path)
        } catch {
            throw StartupError(error.description)
        }
    }

    /// The text of a key file, with a message naming the actual problem (missing, a directory,
    /// unreadable, empty) instead of Foundation's error text.
    static func readKeyText(_ path: String, what: String) throws -> String {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw StartupError("cannot read \(what): it does not exist; check the path")
        }
        if isDir.boolValue { throw StartupError("cannot read \(what): it is a directory; give the key file itself") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StartupError("cannot read \(what): permission denied; run as a user that may read it (usually root)")
        }
        if data.isEmpty { throw StartupError("\(what) is empty: create it with `weft keygen > \(path)`, or copy cluster.key from a member's data dir") }
        return String(decoding: data, as: UTF8.self)
    }

    /// The node's name: the flag, else the stored one, else the host name. Written to the store
    /// only once the start has succeeded.
    static func resolveName(_ flag: String?, store: NodeStore) throws -> String {
        if let flag, flag.trimmingCharacters(in: .whitespaces).isEmpty || flag != flag.trimmingCharacters(in: .whitespaces) {
            throw StartupError("--name '\(flag)' is empty or starts or ends with a space: give 1 to 63 bytes of printable text")
        }
        var name = flag ?? ((try? store.meta(NodeStore.MetaKey.nodeName)) ?? nil) ?? ProcessInfo.processInfo.hostName
        if name.isEmpty { name = "weft" }
        guard name.utf8.count <= 63, !name.contains(where: { $0.isNewline || $0 == "\0" }) else {
            throw StartupError("--name must be 1 to 63 bytes without line breaks")
        }
        return name
    }

    /// The address allocator: restored from SQLite on a restart, a new ring when this node
    /// creates the cluster, or empty (waiting for the ring from a member) when it joins, also
    /// after a leave (the stored ring is ignored and cleared). The overlay address is claimed here.
    static func makeIPAM(options: NodeOptions, store: NodeStore, me: NodeID, path: StartPath) throws -> (instance: IPAM.Instance, directives: [IPAM.Directive]) {
        var settings = options.profile.ipamSettings
        settings.reclaimAfter = options.reclaimAfter
        if let problem = settings.validate() { throw StartupError("address allocation settings: \(problem)") }
        let seed = Sodium.randomUInt64()
        let now = Instant(nanoseconds: 1_000_000_000)
        var snapshot: IPAM.Instance.Snapshot?
        if path == .restart {
            do { snapshot = try store.loadIPAMSnapshot() } catch { throw startupError(error, options: options) }
        }
        var directives: [IPAM.Directive] = []
        var instance: IPAM.Instance
        if let snapshot, snapshot.ring != nil {
            instance = IPAM.Instance(me: me, settings: settings, seed: seed, restoring: snapshot)
        } else {
            instance = IPAM.Instance(me: me, settings: settings, seed: seed)
            if path == .create {
                directives += instance.createCluster(subnet: options.subnet, now: now)
            }
        }
        if instance.ring != nil && instance.overlayAddress == nil {
            if let (_, d) = try? instance.claimOverlayAddress(now: now) { directives += d }
        }
        return (instance, directives)
    }

    static func loadKnownMembers(store: NodeStore, excluding me: NodeID, options: NodeOptions) throws -> [Membership.Member] {
        let stored: [StoredMember]
        do { stored = try store.loadMembers() } catch { throw startupError(error, options: options) }
        return stored.compactMap { s in
            guard s.id != me, let address = Endpoint(s.address) else { return nil }
            return Membership.Member(
                id: s.id, name: s.name, address: address, publicKey: s.publicKey,
                incarnation: s.incarnation, state: s.state,
                recordSignature: s.recordSignature, stateBy: s.stateBy, stateSignature: s.stateSignature
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

/// The refusal message handed from the node's effect to the daemon's exit path.
final class RefusalBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: String?
    func set(_ message: String) { lock.lock(); if value == nil { value = message }; lock.unlock() }
    var message: String? { lock.lock(); defer { lock.unlock() }; return value }
}
