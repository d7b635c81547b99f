/// One Weft node as a pure state machine: the membership, IPAM and tunnel-peer rules that tie
/// the protocol instances together (`docs/node.md`).
///
/// ```
///            datagram / push-pull / IPAM frame / tick / control request
///                                   |
///                                   v
///   +--------------------------- Node.Instance ----------------------------+
///   |  Membership.Instance  <-- ring news re-gossiped --  IPAM.Instance    |
///   |        |  live / dead / left members ----------------->   ^          |
///   |        +-- members -> tunnel peers (restart = reset)      |          |
///   |                       ring ranges -> routes ---------------+         |
///   |  seeds + back-off, joined, overlay address, lifecycle phase          |
///   +----------------------------------------------------------------------+
///        |  one atomic commit (NodeStorage) before any effect leaves
///        v
///   [Effect]: send gossip, push-pull, IPAM frame, tunnel peer, routes, overlay, answers, logs
/// ```
///
/// The daemon and the whole-node simulator are interpreters of ``Effect``s; neither holds a
/// protocol rule of its own.
public enum Node {
    /// A route for the data plane: inner destinations `start...end` (inclusive) go to `peer`.
    public struct Route: Equatable, Sendable, CustomStringConvertible {
        public var start: UInt32
        public var end: UInt32
        public var peer: NodeID
        public init(start: UInt32, end: UInt32, peer: NodeID) {
            self.start = start; self.end = end; self.peer = peer
        }
        public var description: String { "\(IPAM.format(start))-\(IPAM.format(end))->\(peer.short)" }
    }

    /// What the tunnel layer must do about one member.
    public enum TunnelPeerChange: Equatable, Sendable {
        /// Make (or update) `id` a tunnel peer. `restarted`: its incarnation rose since its
        /// sessions were made, so they are gone on its side; drop ours before re-adding.
        case upsert(id: NodeID, publicKey: [UInt8], endpoint: Endpoint, restarted: Bool)
        /// The member is dead or left: close its sessions.
        case remove(id: NodeID)
    }

    /// Where the node is in its life.
    public enum Phase: String, Equatable, Sendable {
        /// Serving: gossiping, allocating.
        case running
        /// `leave` was called: ranges handed over, `left` announced; the interpreter stops soon.
        case left
        /// Refused by the cluster (see `refusal`); the interpreter stops with that message.
        case refused
        /// Evicted by the cluster (`evictedBy`): keeps running and answering `weft status`, but
        /// sends nothing except a slow push-pull asking whether the eviction was undone.
        case evicted
    }

    /// A structured log line (the interpreter maps levels to its logger).
    public struct Log: Equatable, Sendable {
        public enum Level: Sendable, Equatable { case debug, info, notice, warning, error }
        public var level: Level
        public var message: String
        public var event: String
        public var fields: [String: String]
        public init(_ level: Level, _ message: String, event: String, _ fields: [String: String] = [:]) {
            self.level = level; self.message = message; self.event = event; self.fields = fields
        }
    }

    /// One effect for the interpreter, in the order returned. Everything durable that led to
    /// these effects is already committed through ``NodeStorage`` when they are returned.
    public enum Effect: Equatable, Sendable {
        /// A plaintext membership datagram: seal it with the cluster key and send it over UDP.
        case sendGossip([UInt8], to: Endpoint)
        /// Open TCP to the endpoint, send `makePushPullRequest(now:)` sealed, feed the answer to
        /// `onPushPullReply` (or the failure to `onPushPullFailed`).
        case pushPull(to: Endpoint)
        /// A one-way point-to-point IPAM frame (this node's id, a counter, the message, its signature): seal it
        /// and send it over TCP to the member at `endpoint`.
        case sendIPAM([UInt8], to: NodeID, endpoint: Endpoint)
        /// The same kind of frame, of a message the allocator resends until answered and small
        /// enough for one datagram: seal it as an IPAM datagram and send it over UDP. A loss costs
        /// one `IPAM.Settings.resendInterval`; a TCP connection per message cost the whole
        /// cluster's CPU at n = 100 (docs/ipam.md "Transport").
        case sendIPAMDatagram([UInt8], to: NodeID, endpoint: Endpoint)
        /// A pending allocation was answered.
        case allocated(handle: String, address: UInt32)
        case allocationFailed(handle: String, error: IPAM.AllocationError)
        /// Keep the tunnel layer's peers in step with membership.
        case tunnelPeer(TunnelPeerChange)
        /// The complete route table changed (replace, not patch).
        case routes([Route])
        /// This node's overlay address (to configure on the TUN device).
        case overlayAddress(UInt32, prefixLength: Int)
        /// Count one dropped input by reason.
        case dropped(String)
        /// Round-trip time of an acked direct probe.
        case probeRTT(Duration)
        /// Member counts changed (gauges).
        case membersChanged
        /// The served DNS zone changed (records, live owners, or the subnet): refresh it.
        case zoneChanged
        case log(Log)
        /// The node must stop: left the cluster, or refused by it (message says why).
        case stop(Phase, message: String)
    }

    /// The default data plane's name (the encrypted tunnel); the absent app-state part means it.
    public static let encryptedDataPlane = "encrypted"

    /// Tunables of the composition (the protocol instances bring their own settings).
    public struct Settings: Equatable, Sendable {
        /// First delay between join attempts to the seeds while no seed answered; doubles.
        public var seedRetryInitial: Duration = .seconds(2)
        /// The largest delay between join attempts.
        public var seedRetryMax: Duration = .seconds(30)
        /// How often the allocator's timers run (donation retries, pending timeouts, reclaim,
        /// coalesced free-hint gossip).
        public var ipamTick: Duration = .milliseconds(200)
        /// At most one extra full-state exchange this often when members come back from the
        /// dead (a partition healed).
        public var healExchangeInterval: Duration = .seconds(2)
        /// After the overlay address claim failed (its confirmation timed out: too few voters
        /// answered), the next claim waits this long, doubling with each failure in a row up to
        /// `overlayRetryMax`, spread per node (×0.5…1). Claiming again at once was a livelock at
        /// n = 100: every booting node's retry cost a full round of holdings writes to every
        /// voter while the overloaded voters could not answer the last one in time.
        public var overlayRetryInitial: Duration = .seconds(1)
        public var overlayRetryMax: Duration = .seconds(30)
        /// The cluster's DNS domain (`--dns-domain`): containers are `NAME.<domain>`.
        public var dnsDomain = DNS.Name(labels: ["weft", "internal"])
        /// The data plane this node runs (`--data-plane`): a cluster runs one. Carried in the
        /// push-pull app state; a node whose mode differs from the cluster's is refused.
        public var dataPlane = Node.encryptedDataPlane

        public init() {}
        public static let `default` = Settings()
        /// Many nodes on one machine or in the simulator: quicker retries.
        public static var fast: Settings {
            var s = Settings()
            s.seedRetryInitial = .milliseconds(500)
            s.seedRetryMax = .seconds(4)
            s.ipamTick = .milliseconds(100)
            s.overlayRetryInitial = .milliseconds(250)
            s.overlayRetryMax = .seconds(4)
            return s
        }

        /// Nil when valid, else what is wrong.
        public func validate() -> String? {
            if seedRetryInitial <= .zero { return "seedRetryInitial must be positive" }
            if seedRetryMax < seedRetryInitial { return "seedRetryMax must be at least seedRetryInitial" }
            if ipamTick <= .zero { return "ipamTick must be positive" }
            if healExchangeInterval <= .zero { return "healExchangeInterval must be positive" }
            if overlayRetryInitial <= .zero { return "overlayRetryInitial must be positive" }
            if overlayRetryMax < overlayRetryInitial { return "overlayRetryMax must be at least overlayRetryInitial" }
            return nil
        }
    }

    /// A request that could not be carried out because its change could not be committed.
    public struct StorageFailure: Error, Equatable, Sendable, CustomStringConvertible {
        public var detail: String
        public init(_ detail: String) { self.detail = detail }
        public var description: String {
            "the node's database refused the change (\(detail)); nothing was changed: check the disk and `weft status`, then retry"
        }
    }
}
