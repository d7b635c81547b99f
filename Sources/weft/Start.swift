import ArgumentParser
import Foundation
import Logging
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDaemon

struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a node in the foreground.",
        discussion: """
            Without --seed on an empty data dir, creates a new cluster and prints how other hosts join. \
            SIGINT/SIGTERM stop the node as a restart (it keeps its identity and state); `weft leave` \
            is the permanent, announced departure. Bad flags exit 2 before anything is written; \
            a start-up failure (port in use, wrong key for the data dir, …) exits 1.

            Examples:
              # the first host creates the cluster
              weft start --data-dir /var/lib/weft --listen 192.168.1.10:7946
              # every other host joins it with a copy of /var/lib/weft/cluster.key
              weft start --listen 192.168.1.11:7946 --seed 192.168.1.10:7946 --cluster-key-file cluster.key
              # control plane only, two nodes on one machine
              weft start --no-tun --data-dir /tmp/a --listen 127.0.0.1:7946 --profile fast
            """
    )

    @Option(name: .long, help: ArgumentHelp("Data dir for state, keys and the control socket (default: $WEFT_DATA_DIR or /var/lib/weft).", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("UDP+TCP address to listen on.", valueName: "host:port"))
    var listen: String = "0.0.0.0:\(NodeOptions.defaultPort)"

    @Option(name: .long, help: ArgumentHelp("Address other nodes reach this one at (default: --listen).", valueName: "host:port"))
    var advertise: String?

    @Option(name: .long, parsing: .singleValue, help: ArgumentHelp("A member to join through; repeat it or give a comma list.", valueName: "host:port"))
    var seed: [String] = []

    @Option(name: .long, help: ArgumentHelp("File holding the cluster key (as printed by `weft keygen`).", valueName: "file"))
    var clusterKeyFile: String?

    @Option(name: .long, help: ArgumentHelp("The cluster key itself (visible in the process list; prefer --cluster-key-file).", valueName: "key"))
    var clusterKey: String?

    @Option(name: .long, help: ArgumentHelp("This node's name (default: the host name).", valueName: "name"))
    var name: String?

    @Flag(name: .long, help: "Run the control plane only: no TUN device, no tunnels, no root needed.")
    var noTun = false

    @Option(name: .long, help: ArgumentHelp("What carries container traffic: encrypted (Weft's tunnel, the default) or vxlan (the kernel's VXLAN device, NOT encrypted: trusted underlays only; needs --accept-unencrypted; docs/vxlan.md).", valueName: "mode"))
    var dataPlane: String = "encrypted"

    @Flag(name: .long, help: "Acknowledge that --data-plane vxlan sends container traffic unencrypted over the underlay.")
    var acceptUnencrypted = false

    @Option(name: .long, help: ArgumentHelp("VXLAN network identifier with --data-plane vxlan (1-16777215).", valueName: "vni"))
    var vxlanVni: UInt32 = VXLAN.defaultVNI

    @Option(name: .long, help: ArgumentHelp("UDP port of the VXLAN device with --data-plane vxlan (IANA 4789).", valueName: "port"))
    var vxlanPort: UInt16 = VXLAN.defaultPort

    @Option(name: .long, help: ArgumentHelp("Name of the TUN device (the VXLAN device with --data-plane vxlan).", valueName: "name"))
    var tunName: String = "weft0"

    @Option(name: .long, help: ArgumentHelp("TUN MTU (default: the underlay interface's MTU minus the encapsulation overhead, 60 bytes over IPv4).", valueName: "bytes"))
    var mtu: Int?

    @Flag(name: .long, help: "Open the TUN device without segmentation offload (one read per packet, as before; docs/dataplane.md). For kernels or sandboxes that mishandle it.")
    var noTunOffload = false

    @Option(name: .long, help: ArgumentHelp("Serve Prometheus metrics over HTTP on this address.", valueName: "host:port"))
    var metricsListen: String?

    @Option(name: .long, help: ArgumentHelp("Where the cluster DNS listens: overlay (port 53 of this node's overlay address, the default), off, or IP:PORT.", valueName: "where"))
    var dnsListen: String = "overlay"

    @Option(name: .long, help: ArgumentHelp("Upstream resolver for names outside the cluster (repeatable; default: the host's /etc/resolv.conf).", valueName: "ip:port"))
    var dnsUpstream: [String] = []

    @Option(name: .long, help: ArgumentHelp("The cluster's DNS domain: containers are NAME.<domain>.", valueName: "domain"))
    var dnsDomain: String = "weft.internal"

    @Option(name: .long, help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical.", valueName: "level"))
    var logLevel: String = "info"

    @Option(name: .long, help: ArgumentHelp("Address space of a new cluster (only when this node creates it).", valueName: "cidr"))
    var subnet: String = "10.42.0.0/16"

    @Option(name: .long, help: ArgumentHelp("Take over a dead member's address space after this long (e.g. 24h, 30m, 90s), or 'never'.", valueName: "duration"))
    var reclaimAfter: String = "24h"

    @Option(name: .long, help: ArgumentHelp("Release the address of a container whose host veth and network namespace have been gone this long (a runtime that skipped DEL), or 'never'.", valueName: "duration"))
    var gcAfter: String = "2m"

    @Option(name: .long, help: ArgumentHelp("Membership timing: default (real networks) or fast (many nodes on one machine, tests).", valueName: "profile"))
    var profile: String = "default"

    func validate() throws {
        if dnsListen != "overlay" && dnsListen != "off" && Endpoint(dnsListen) == nil {
            throw ValidationError("--dns-listen '\(dnsListen)' must be overlay, off, or IP:PORT (e.g. 127.0.0.1:5353)")
        }
        for u in dnsUpstream where Endpoint(u) == nil {
            throw ValidationError("--dns-upstream '\(u)' is not an address: write IP:PORT, e.g. 192.168.1.1:53")
        }
        guard let domain = DNS.Name(dnsDomain), !domain.labels.isEmpty, domain.labels.allSatisfy({ DNS.Name.labelProblem($0) == nil }) else {
            throw ValidationError("--dns-domain '\(dnsDomain)' is not a domain name: labels of letters, digits and '-', e.g. weft.internal")
        }
        if clusterKey != nil && clusterKeyFile != nil {
            throw ValidationError("give either --cluster-key or --cluster-key-file, not both")
        }
        if let problem = InputCheck.dataDir(API.resolveDataDir(dataDir), hint: "choose another --data-dir") { throw ValidationError(problem) }
        if gcAfter != "never", parseDuration(gcAfter) == nil {
            throw ValidationError("--gc-after must be a positive duration like 2m, 30s or 1h, or 'never' (got '\(gcAfter)')")
        }
        if Endpoint(listen) == nil {
            throw ValidationError("--listen '\(listen)' is not an address: write IP:PORT, e.g. 192.168.1.10:7946 or [::1]:7946")
        }
        if let advertise, let problem = InputCheck.hostPort(advertise, flag: "--advertise") { throw ValidationError(problem) }
        if let metricsListen, Endpoint(metricsListen) == nil {
            throw ValidationError("--metrics-listen '\(metricsListen)' is not an address: write IP:PORT, e.g. 127.0.0.1:9946")
        }
        for s in seeds {
            if let problem = InputCheck.hostPort(s, flag: "--seed") { throw ValidationError(problem) }
        }
        do { _ = try IPAM.Subnet(parsing: subnet) } catch {
            throw ValidationError("--subnet '\(subnet)': \(error)")
        }
        if let name, let problem = InputCheck.nodeName(name) { throw ValidationError(problem) }
        if let clusterKeyFile, let problem = InputCheck.readableFile(clusterKeyFile, flag: "--cluster-key-file", what: "cluster key file") {
            throw ValidationError(problem)
        }
        if let clusterKey {
            do { _ = try ClusterKey(text: clusterKey) } catch {
                throw ValidationError("--cluster-key is not a valid cluster key (\(error)): use the text `weft keygen` prints")
            }
        }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical (got '\(logLevel)')")
        }
        if let mtu, !(576...9000).contains(mtu) {
            throw ValidationError("--mtu must be between 576 and 9000 (got \(mtu))")
        }
        if tunName.isEmpty || tunName.utf8.count > 15 || tunName.contains("/") || tunName.contains(" ") {
            throw ValidationError("--tun-name must be 1 to 15 characters without '/' or spaces (got '\(tunName)')")
        }
        if reclaimAfter != "never" && parseDuration(reclaimAfter) == nil {
            throw ValidationError("--reclaim-after must be a positive duration like 24h, 30m or 90s, or 'never' (got '\(reclaimAfter)')")
        }
        switch dataPlane {
        case "encrypted": break
        case "vxlan":
            guard acceptUnencrypted else {
                throw ValidationError("--data-plane vxlan sends container traffic UNENCRYPTED over the underlay (gossip and control stay sealed): use it only on a trusted private network (one VPC, one rack), and say so with --accept-unencrypted")
            }
            if noTun { throw ValidationError("--data-plane vxlan and --no-tun exclude each other: --no-tun runs no data plane") }
            if let problem = VXLAN.validate(vni: vxlanVni, port: vxlanPort, gossipPort: Endpoint(listen)?.port ?? NodeOptions.defaultPort) {
                throw ValidationError(problem)
            }
        default:
            throw ValidationError("--data-plane must be 'encrypted' or 'vxlan' (got '\(dataPlane)')")
        }
        guard NodeOptions.Profile(rawValue: profile) != nil else {
            throw ValidationError("--profile must be 'default' or 'fast' (got '\(profile)')")
        }
    }

    /// `--seed` values split at commas.
    var seeds: [String] {
        seed.flatMap { $0.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
    }

    func run() async throws {
        // validate() has checked every syntax; what is left can fail only at run time (DNS, the data dir).
        let listenEndpoint = Endpoint(listen)!
        var advertiseEndpoint: Endpoint?
        if let advertise {
            do { advertiseEndpoint = try Daemon.resolveEndpoint(advertise) } catch {
                throw CLIFailure.runtime("start-failed", "--advertise: \(error)")
            }
        }
        let metricsEndpoint = metricsListen.flatMap { Endpoint($0) }
        let seeds = self.seeds
        let parsedSubnet: IPAM.Subnet
        do { parsedSubnet = try IPAM.Subnet(parsing: subnet) } catch { throw CLIFailure.usage("--subnet: \(error)") }
        let keySource: NodeOptions.ClusterKeySource =
            clusterKey.map { .literal($0) } ?? clusterKeyFile.map { .file($0) } ?? .dataDir
        var options = NodeOptions(
            dataDir: API.resolveDataDir(dataDir), listen: listenEndpoint, advertise: advertiseEndpoint,
            seeds: seeds, clusterKey: keySource, name: name, noTun: noTun,
            metricsListen: metricsEndpoint, profile: NodeOptions.Profile(rawValue: profile) ?? .default,
            subnet: parsedSubnet, reclaimAfter: reclaimAfter == "never" ? nil : (parseDuration(reclaimAfter) ?? .seconds(86400)),
            tunName: tunName, mtu: mtu
        )
        options.dnsListen = dnsListen == "overlay" ? .overlay : dnsListen == "off" ? .off : .address(Endpoint(dnsListen)!)
        options.dnsUpstreams = dnsUpstream.compactMap { Endpoint($0) }
        if dataPlane == "vxlan" { options.vxlan = .init(vni: vxlanVni, port: vxlanPort) }
        options.tunOffload = !noTunOffload
        options.dnsDomain = DNS.Name(dnsDomain)!
        options.attachmentGCAfter = gcAfter == "never" ? nil : parseDuration(gcAfter)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "weft")
        do {
            _ = try await Daemon.run(options: options, logger: logger) { lines in
                // Unbuffered: these lines must reach a log file or pipe at once, not at exit.
                FileHandle.standardOutput.write(Data(lines.map { $0 + "\n" }.joined().utf8))
            }
        } catch let e as StartupError {
            throw CLIFailure.runtime("start-failed", e.description)
        }
    }
}

/// Parses `90s`, `30m`, `24h`, `2d` (or a bare number of seconds) into a positive duration.
func parseDuration(_ text: String) -> Duration? {
    let t = text.trimmingCharacters(in: .whitespaces).lowercased()
    guard let last = t.last else { return nil }
    let unit: Double
    var number = Substring(t)
    switch last {
    case "s": unit = 1; number = number.dropLast()
    case "m": unit = 60; number = number.dropLast()
    case "h": unit = 3600; number = number.dropLast()
    case "d": unit = 86400; number = number.dropLast()
    default: unit = 1
    }
    guard let value = Double(number), value > 0, value.isFinite, value * unit < 1e9 else { return nil }
    return .milliseconds(Int64((value * unit * 1000).rounded()))
}
