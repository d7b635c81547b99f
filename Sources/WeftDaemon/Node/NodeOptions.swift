import WeftCore

/// Everything `weft start` decided from its flags, validated. Built by the `weft` command;
/// the daemon turns it into running services (see `Daemon`).
public struct NodeOptions: Sendable {
    public enum ClusterKeySource: Sendable, Equatable {
        /// `--cluster-key K`
        case literal(String)
        /// `--cluster-key-file F`
        case file(String)
        /// Neither: use `<data-dir>/cluster.key`, or create a new cluster when there is none.
        case dataDir
    }

    /// Which membership timing preset to run: `.default` for real networks, `.fast` for many
    /// nodes on one machine (tests).
    public enum Profile: String, Sendable, CaseIterable {
        case `default`, fast
        public var settings: Membership.Settings {
            switch self {
            case .default: return .default
            case .fast: return .fast
            }
        }

        public var ipamSettings: IPAM.Settings {
            switch self {
            case .default: return .default
            case .fast: return .fast
            }
        }

        public var nodeSettings: Node.Settings {
            switch self {
            case .default: return .default
            case .fast: return .fast
            }
        }
    }

    public var dataDir: String
    /// Where to bind the UDP (gossip) and TCP (full-state exchange) port.
    public var listen: Endpoint
    /// The address other nodes use for this one; defaults to `listen`.
    public var advertise: Endpoint?
    /// `host:port` strings; host names are resolved at start.
    public var seeds: [String]
    public var clusterKey: ClusterKeySource
    public var name: String?
    public var noTun: Bool
    /// The TUN device's name (`--tun-name`).
    public var tunName: String
    /// The TUN MTU (`--mtu`); nil = underlay MTU minus the exact encapsulation overhead.
    public var mtu: Int?
    /// Ask for TUN segmentation offload (`--no-tun-offload` turns it off; `TUNConfig.offload`).
    public var tunOffload: Bool = true
    public var metricsListen: Endpoint?
    public var profile: Profile
    /// The address space of a cluster this node creates (ignored when joining).
    public var subnet: IPAM.Subnet
    /// How long a member must be dead before its heir takes its address space over; nil = never
    /// (`--reclaim-after never`: no automatic reclaim, allocations need no confirmation).
    public var reclaimAfter: Duration?
    /// Where the resolver listens (`--dns-listen`): the overlay address's port 53 by default.
    public var dnsListen: DNSListen = .overlay
    /// Upstream resolvers for names outside the cluster (`--dns-upstream`); empty: the host's
    /// resolv.conf.
    public var dnsUpstreams: [Endpoint] = []
    /// The cluster's domain (`--dns-domain`).
    public var dnsDomain: DNS.Name = Node.Settings.default.dnsDomain
    /// How long an attachment must look gone (host veth and container namespace) before the node
    /// releases its address on its own (`--gc-after`); nil: never (AttachmentReconciler.swift).
    public var attachmentGCAfter: Duration? = .seconds(120)

    /// `--data-plane vxlan` (with `--accept-unencrypted`): the kernel's VXLAN device carries the
    /// packets, unencrypted (docs/vxlan.md); nil: the encrypted tunnel (the default).
    public var vxlan: VXLANOptions?

    public struct VXLANOptions: Equatable, Sendable {
        /// `--vxlan-vni` (default 42) and `--vxlan-port` (default 4789).
        public var vni: UInt32
        public var port: UInt16
        public init(vni: UInt32 = VXLAN.defaultVNI, port: UInt16 = VXLAN.defaultPort) { self.vni = vni; self.port = port }
    }

    /// The name of the data plane as status, peers and metrics show it.
    public var dataPlaneLabel: String { vxlan == nil ? (noTun ? "none (--no-tun)" : "encrypted") : "vxlan (unencrypted)" }

    public enum DNSListen: Equatable, Sendable {
        /// Port 53 of this node's overlay address, once the TUN device has it (none with --no-tun).
        case overlay
        case address(Endpoint)
        case off
    }

    public init(
        dataDir: String, listen: Endpoint, advertise: Endpoint? = nil, seeds: [String] = [],
        clusterKey: ClusterKeySource = .dataDir, name: String? = nil, noTun: Bool = false,
        metricsListen: Endpoint? = nil, profile: Profile = .default,
        subnet: IPAM.Subnet = .default, reclaimAfter: Duration? = IPAM.Settings.default.reclaimAfter,
        tunName: String = "weft0", mtu: Int? = nil
    ) {
        self.tunName = tunName
        self.mtu = mtu
        self.subnet = subnet
        self.reclaimAfter = reclaimAfter
        self.dataDir = dataDir
        self.listen = listen
        self.advertise = advertise
        self.seeds = seeds
        self.clusterKey = clusterKey
        self.name = name
        self.noTun = noTun
        self.metricsListen = metricsListen
        self.profile = profile
    }

    /// The default gossip port.
    public static let defaultPort: UInt16 = 7946
}
