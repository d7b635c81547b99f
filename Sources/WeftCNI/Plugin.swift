import WeftAPI

/// The CNI plugin as a function of (environment, stdin) with the node and the kernel injected.
///
/// ```
///   runtime ──env+stdin──▶ Plugin.run ──▶ Output (stdout JSON, exit code, stderr, log line)
///                            │    │
///               NodeClient ◀─┘    └─▶ NetworkOps
///        (alloc/release/ipam)         (veth, addresses, routes, sysctl)
/// ```
public struct Plugin: Sendable {
    public var network: any NetworkOps
    /// The node client for a config's `dataDir`.
    public var client: @Sendable (String) -> any NodeClient
    /// Attachment records for the node's own clean-up (AttachmentRecorder.swift).
    public var recorder: AttachmentRecorder

    public init(network: any NetworkOps, client: @escaping @Sendable (String) -> any NodeClient, recorder: AttachmentRecorder = .none) {
        self.network = network
        self.client = client
        self.recorder = recorder
    }

    /// The real plugin: rtnetlink and the node's control socket.
    public static var live: Plugin { Plugin(network: LinuxNetwork(), client: { ControlNodeClient(dataDir: $0) }, recorder: .files) }

    public struct Output: Equatable, Sendable {
        /// Printed on stdout (a result, a version object, an error, or nothing).
        public var stdout: String
        public var exitCode: Int32
        /// Warnings for stderr (the spec allows unstructured text there).
        public var stderr: [String]
        /// `logFile` from the config, if any, and the line to append to it.
        public var logFile: String?
        public var logLine: String
    }

    public func run(environment: [String: String], stdin: [UInt8]) -> Output {
        var warnings: [String] = []
        let command = environment["CNI_COMMAND"] ?? ""
        let who = "cmd=\(command) cid=\(environment["CNI_CONTAINERID"] ?? "") ifname=\(environment["CNI_IFNAME"] ?? "") netns=\(environment["CNI_NETNS"] ?? "")"
        // The version for errors: the input's when it is one we speak.
        let inputVersion = (try? JSON.parse(stdin))?["cniVersion"]?.stringValue
        var replyVersion = inputVersion.flatMap { CNIVersion.supported.contains($0) ? $0 : nil } ?? CNIVersion.fallback
        var logFile: String?
        do {
            let env = try CNIEnvironment.parse(environment)
            if env.command == .version {
                let v = inputVersion ?? CNIVersion.fallback
                let out = JSON.object([("cniVersion", .string(v)), ("supportedVersions", .array(CNIVersion.supported.map { .string($0) }))])
                return Output(stdout: out.text, exitCode: 0, stderr: [], logFile: nil, logLine: "\(who) ok")
            }
            let config = try PluginConfig.parse(stdin)
            replyVersion = config.cniVersion
            logFile = config.logFile
            let node = client(config.dataDir)
            var stdout = ""
            switch env.command {
            case .add: stdout = try add(env, config, node, warnings: &warnings).text
            case .del: try del(env, config, node, warnings: &warnings)
            case .check: try check(env, config, node)
            case .gc: try gc(config, node, warnings: &warnings)
            case .status: try status(config, node)
            case .version: break
            }
            let summary = stdout.isEmpty ? "ok" : "ok \(stdout)"
            return Output(stdout: stdout, exitCode: 0, stderr: warnings, logFile: logFile,
                          logLine: "\(who) \(summary)" + (warnings.isEmpty ? "" : " warnings=\(warnings)"))
        } catch {
            return Output(stdout: error.json(cniVersion: replyVersion).text, exitCode: 1, stderr: warnings, logFile: logFile,
                          logLine: "\(who) error \(error)")
        }
    }

    private func requireNetworkName(_ config: PluginConfig) throws(CNIError) {
        if let why = Naming.invalidNetworkName(config.name) {
            throw CNIError(.invalidNetworkConfig, "invalid network name \"\(config.name)\"", details: why)
        }
    }

    // MARK: - ADD

    func add(_ env: CNIEnvironment, _ config: PluginConfig, _ node: any NodeClient, warnings: inout [String]) throws(CNIError) -> JSON {
        try requireNetworkName(config)
        let handle = Naming.handle(network: config.name, containerID: env.containerID, ifname: env.ifname)
        let hostName = Naming.hostInterface(containerID: env.containerID, ifname: env.ifname)
        guard network.netnsExists(env.netns) else {
            throw CNIError(.containerUnknown, "the container network namespace \(env.netns) does not exist")
        }
        let existingHost: LinkInfo?, existingContainer: LinkInfo?
        do {
            existingHost = try network.hostLink(hostName)
            existingContainer = try network.containerLink(netns: env.netns, name: env.ifname)
        } catch {
            throw CNIError(.linkSetupFailed, "cannot inspect the interfaces", details: error.description)
        }
        // A repeated ADD for an attachment we made finds both ends: it re-applies the
        // configuration and returns the same result. An interface of that name we did not make
        // is an error (spec: ADD must fail when CNI_IFNAME exists).
        if existingContainer != nil && existingHost == nil {
            throw CNIError(.interfaceExists, "an interface named \(env.ifname) already exists in \(env.netns)",
                           details: "it was not created by weft-cni for container \(env.containerID); remove it or use another CNI_IFNAME")
        }
        // The node's status gives the overlay MTU and where its DNS resolver listens.
        let status: API.Status?
        do { status = try node.status() } catch {
            if config.mtu == nil { throw CNIError.node(error, "reading the overlay MTU") }
            status = nil
        }
        let mtu = config.mtu ?? status?.overlayMTU ?? PluginConfig.defaultMTU
        let allocation: API.Allocation
        do { allocation = try node.alloc(handle: handle, name: Self.containerName(args: env.args)) } catch {
            throw CNIError.node(error, "allocating an address")
        }
        guard let ip = IPv4(allocation.address), (1...32).contains(allocation.prefixLength), let subnet = IPv4CIDR(allocation.subnet) else {
            try? node.release(handle: handle)
            throw CNIError(.nodeError, "the weft node answered with an unusable allocation",
                           details: "address \(allocation.address)/\(allocation.prefixLength) subnet \(allocation.subnet)")
        }
        let address = IPv4CIDR(ip, allocation.prefixLength)
        var extraRoutes: [IPv4CIDR] = []
        if subnet != address.network { extraRoutes.append(subnet) }  // the address's own prefix already routes the subnet
        if config.defaultRoute { extraRoutes.append(.defaultRoute) }

        let hostLink: LinkInfo, containerLink: LinkInfo
        do throws(NetworkError) {
            if existingHost != nil && existingContainer == nil {
                try network.deleteHostLink(hostName)  // left over from an attachment whose container end is gone
            }
            if existingContainer == nil {
                try network.createVeth(hostName: hostName, containerName: env.ifname, netns: env.netns, mtu: mtu)
            }
            try network.configureContainer(netns: env.netns, ifname: env.ifname, address: address, routes: extraRoutes)
            try network.configureHost(link: hostName, address: ip)
            guard let h = try network.hostLink(hostName), let c = try network.containerLink(netns: env.netns, name: env.ifname) else {
                throw NetworkError(step: "reading back \(hostName) and \(env.ifname)", errno: 19 /* ENODEV */, reason: "link vanished")
            }
            hostLink = h
            containerLink = c
        } catch {
            // Roll back everything: the veth (its peer and the /32 route go with it) and the address.
            _ = try? network.deleteHostLink(hostName)
            try? node.release(handle: handle)
            throw CNIError(.linkSetupFailed, "setting up the container interface failed", details: error.description)
        }
        var dns: JSON?
        if let server = status?.dnsAddress, let domain = status?.dnsDomain, let host = server.split(separator: ":").first,
           server.hasSuffix(":53") {
            // resolv.conf has no port: only a resolver on port 53 can be handed to containers.
            dns = .object([("nameservers", .array([.string(String(host))])), ("search", .array([.string(domain)]))])
        }
        if let w = recorder.record(config.dataDir, handle, allocation.address, hostName, env.netns) { warnings.append(w) }
        return Self.result(
            version: config.cniVersion, prev: config.prevResult, host: (hostName, hostLink), container: (env.ifname, containerLink),
            netns: env.netns, address: address, routes: [subnet] + (config.defaultRoute ? [.defaultRoute] : []), dns: dns)
    }

    /// The container's DNS name from the runtime's CNI_ARGS (`K8S_POD_NAME`: podman's container
    /// name, Kubernetes' pod name), made a DNS label: lower case, `_` and `.` become `-`, at most
    /// 63 bytes. Nil when there is none or nothing usable is left.
    static func containerName(args: String) -> String? {
        for pair in args.split(separator: ";") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0] == "K8S_POD_NAME" else { continue }
            var label = String(kv[1].lowercased().map { c -> Character in
                (c.isASCII && (c.isLetter || c.isNumber)) || c == "-" ? c : "-"
            }.prefix(63))
            while label.hasPrefix("-") { label.removeFirst() }
            while label.hasSuffix("-") { label.removeLast() }
            return label.isEmpty ? nil : label
        }
        return nil
    }

    /// The ADD result, appended to `prev` (interface indexes shifted) when a plugin ran before.
    static func result(version: String, prev: JSON?, host: (String, LinkInfo), container: (String, LinkInfo), netns: String,
                       address: IPv4CIDR, routes: [IPv4CIDR], dns: JSON? = nil) -> JSON {
        let withMTU = CNIVersion.atLeast(version, "1.1.0")
        let legacyIPs = !CNIVersion.atLeast(version, "1.0.0")
        func iface(_ name: String, _ l: LinkInfo, sandbox: String?) -> JSON {
            var p: [(String, JSON)] = [("name", .string(name)), ("mac", .string(l.mac))]
            if withMTU { p.append(("mtu", .number(Double(l.mtu)))) }
            if let sandbox { p.append(("sandbox", .string(sandbox))) }
            return .object(p)
        }
        var interfaces = prev?["interfaces"]?.arrayValue ?? []
        var ips = prev?["ips"]?.arrayValue ?? []
        var allRoutes = prev?["routes"]?.arrayValue ?? []
        let base = interfaces.count
        interfaces.append(iface(host.0, host.1, sandbox: nil))
        interfaces.append(iface(container.0, container.1, sandbox: netns))
        var ip: [(String, JSON)] = legacyIPs ? [("version", .string("4"))] : []
        ip.append(("address", .string(address.description)))
        ip.append(("interface", .number(Double(base + 1))))
        ips.append(.object(ip))
        allRoutes += routes.map { .object([("dst", .string($0.description))]) }
        return .object([
            ("cniVersion", .string(version)),
            ("interfaces", .array(interfaces)),
            ("ips", .array(ips)),
            ("routes", .array(allRoutes)),
            ("dns", dns ?? prev?["dns"] ?? .object([])),
        ])
    }

    // MARK: - DEL

    /// Best effort, and success whenever nothing is left to undo: the link may be gone, the
    /// netns may be gone or not given, DEL may come twice. When no node is running the links are
    /// still removed and DEL succeeds with a warning; the address stays held under its handle
    /// until a later DEL or GC releases it (docs/cni.md). A node that is up but not ready gets
    /// error 11 so the runtime retries.
    func del(_ env: CNIEnvironment, _ config: PluginConfig, _ node: any NodeClient, warnings: inout [String]) throws(CNIError) {
        try requireNetworkName(config)
        let handle = Naming.handle(network: config.name, containerID: env.containerID, ifname: env.ifname)
        let hostName = Naming.hostInterface(containerID: env.containerID, ifname: env.ifname)
        var linkError: NetworkError?
        do { try network.deleteHostLink(hostName) } catch { linkError = error }
        do {
            try node.release(handle: handle)
            recorder.forget(config.dataDir, handle)
        } catch {
            switch error {
            case .remote(let body) where body.code == .notFound:
                recorder.forget(config.dataDir, handle)  // released already (DEL twice) or never allocated
            case .noNode:
                warnings.append("weft-cni: no weft node is running for \(config.dataDir); the address of \(handle) stays allocated until DEL or GC runs again with the node up")
            default:
                throw CNIError.node(error, "releasing the address of \(handle)")
            }
        }
        if let linkError { throw CNIError(.linkSetupFailed, "deleting the host interface \(hostName) failed", details: linkError.description) }
    }

    // MARK: - CHECK

    func check(_ env: CNIEnvironment, _ config: PluginConfig, _ node: any NodeClient) throws(CNIError) {
        try requireNetworkName(config)
        guard let prev = config.prevResult else {
            throw CNIError(.invalidNetworkConfig, "CHECK needs prevResult (the result of the ADD)")
        }
        let handle = Naming.handle(network: config.name, containerID: env.containerID, ifname: env.ifname)
        let hostName = Naming.hostInterface(containerID: env.containerID, ifname: env.ifname)
        let interfaces = prev["interfaces"]?.arrayValue ?? []
        guard let index = interfaces.firstIndex(where: { $0["name"]?.stringValue == env.ifname && ($0["sandbox"]?.stringValue ?? "") != "" }) else {
            throw CNIError(.checkFailed, "prevResult lists no container interface \(env.ifname)")
        }
        let expected: [IPv4CIDR] = (prev["ips"]?.arrayValue ?? []).compactMap { ip in
            guard ip["interface"]?.intValue == index, let a = ip["address"]?.stringValue else { return nil }
            return IPv4CIDR(a)
        }
        guard let mine = expected.first else { throw CNIError(.checkFailed, "prevResult lists no address for \(env.ifname)") }

        // The reservation: the node still holds this address for this attachment.
        let info: API.IPAMInfo
        do { info = try node.ipam() } catch { throw CNIError.node(error, "checking the address reservation") }
        guard info.allocations.contains(where: { $0.handle == handle && $0.address == mine.address.description }) else {
            throw CNIError(.checkFailed, "the weft node no longer holds \(mine.address) for \(handle)")
        }

        func fail(_ msg: String) -> CNIError { CNIError(.checkFailed, msg) }
        guard network.netnsExists(env.netns) else { throw fail("the container network namespace \(env.netns) is gone") }
        do {
            guard let c = try network.containerLink(netns: env.netns, name: env.ifname) else {
                throw fail("interface \(env.ifname) was removed from \(env.netns)")
            }
            guard c.up else { throw fail("interface \(env.ifname) in \(env.netns) is down") }
            let have = Set(try network.containerAddresses(netns: env.netns, ifname: env.ifname))
            for a in expected where !have.contains(a) {
                throw fail("address \(a) is missing from \(env.ifname) in \(env.netns)")
            }
            let routes = try network.containerRoutes(netns: env.netns)
            let subnet = mine.network  // the route the address's prefix gives the container
            if !routes.contains(where: { $0.destination == subnet && $0.linkIndex == c.index }) {
                throw fail("the route to \(subnet) via \(env.ifname) is missing in \(env.netns)")
            }
            if config.defaultRoute, !routes.contains(where: { $0.destination == .defaultRoute && $0.linkIndex == c.index }) {
                throw fail("the default route via \(env.ifname) is missing in \(env.netns)")
            }
            guard let h = try network.hostLink(hostName) else { throw fail("the host interface \(hostName) is gone") }
            guard h.up else { throw fail("the host interface \(hostName) is down") }
            let hostRoute = IPv4CIDR(mine.address, 32)
            guard try network.hostRoutes().contains(where: { $0.destination == hostRoute && $0.linkIndex == h.index }) else {
                throw fail("the host route \(hostRoute) dev \(hostName) is missing")
            }
        } catch let e as CNIError {
            throw e
        } catch let e as NetworkError {
            throw CNIError(.checkFailed, "cannot inspect the attachment", details: e.description)
        } catch {
            throw CNIError(.checkFailed, "cannot inspect the attachment", details: "\(error)")
        }
    }

    // MARK: - GC

    /// Releases this network's `cni:` allocations whose attachment is not in
    /// `cni.dev/valid-attachments`, deleting their host veths; tries every one and reports the
    /// failures together.
    func gc(_ config: PluginConfig, _ node: any NodeClient, warnings: inout [String]) throws(CNIError) {
        try requireNetworkName(config)
        guard let valid = config.validAttachments else {
            throw CNIError(.invalidNetworkConfig, "GC needs cni.dev/valid-attachments",
                           details: "without the list every attachment would look stale; weft-cni refuses to guess")
        }
        let keep = Set(valid)
        let info: API.IPAMInfo
        do { info = try node.ipam() } catch { throw CNIError.node(error, "listing allocations for GC") }
        var failures: [String] = []
        for stale in Self.staleAllocations(info.allocations, network: config.name, valid: keep) {
            guard let parsed = Naming.parseHandle(stale.handle) else { continue }
            let hostName = Naming.hostInterface(containerID: parsed.containerID, ifname: parsed.ifname)
            do { try network.deleteHostLink(hostName) } catch { failures.append(error.description) }
            do { try node.release(handle: stale.handle) } catch {
                if case .remote(let b) = error, b.code == .notFound { recorder.forget(config.dataDir, stale.handle); continue }
                failures.append("releasing \(stale.handle): \(error)")
                continue
            }
            recorder.forget(config.dataDir, stale.handle)
        }
        if !failures.isEmpty {
            throw CNIError(.nodeError, "GC could not clean up \(failures.count) stale resource(s)", details: failures.joined(separator: "; "))
        }
    }

    /// The allocations GC releases: handles this plugin made for `network` whose
    /// (containerID, ifname) is not in `valid`. Other handles (other networks, the node's own
    /// `weft:` ones, anything else) are never touched.
    public static func staleAllocations(_ all: [API.AllocationInfo], network: String, valid: Set<PluginConfig.Attachment>) -> [API.AllocationInfo] {
        all.filter { a in
            guard let p = Naming.parseHandle(a.handle), p.network == network else { return false }
            return !valid.contains(PluginConfig.Attachment(containerID: p.containerID, ifname: p.ifname))
        }
    }

    // MARK: - STATUS

    /// Success when the node answers and has an address ring; error 50 otherwise.
    func status(_ config: PluginConfig, _ node: any NodeClient) throws(CNIError) {
        do {
            _ = try node.status()
            guard try node.ipam().subnet != nil else {
                throw CNIError(.pluginNotAvailable, "the weft node at \(config.dataDir) has no address ring yet: it cannot allocate addresses")
            }
        } catch let e as CNIError {
            throw e
        } catch let e as ControlClientError {
            throw CNIError(.pluginNotAvailable, "the weft node is not available: \(e.description)")
        } catch {
            throw CNIError(.pluginNotAvailable, "the weft node is not available: \(error)")
        }
    }
}
