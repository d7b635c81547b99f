import Foundation

/// The control-socket protocol between the `weft` command (and `weft-cni`) and a running node.
///
/// Transport: a Unix stream socket at `<data-dir>/weft.sock`, mode 0600 in a 0700 directory,
/// so only the node's owner may use it. One request per connection:
///
///     client -> node:  u32 big-endian length N, then N bytes of JSON `Request`
///     node -> client:  u32 big-endian length M, then M bytes of JSON `Response`
///
/// Frames are at most `API.maxFrameBytes`. The `v` field versions the request; a node answers a
/// request with a newer `v` than it knows with `ErrorCode.unsupportedVersion`.
public enum API {
    /// The request format this build speaks.
    public static let version = 1
    /// Largest frame either side accepts (requests and responses).
    public static let maxFrameBytes = 4 * 1024 * 1024
    /// The socket's file name inside the data dir.
    public static let socketName = "weft.sock"
    /// The data dir used when neither `--data-dir` nor `WEFT_DATA_DIR` is given.
    public static let defaultDataDir = "/var/lib/weft"

    public static func socketPath(dataDir: String) -> String {
        dataDir.hasSuffix("/") ? dataDir + socketName : dataDir + "/" + socketName
    }

    /// `--data-dir` if given, else `WEFT_DATA_DIR`, else `/var/lib/weft`.
    public static func resolveDataDir(_ flag: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["WEFT_DATA_DIR"], !env.isEmpty { return env }
        return defaultDataDir
    }
}

extension API {
    public enum Operation: String, Codable, Sendable, CaseIterable {
        case status, members, join, leave
        case alloc, release, ipam, reclaim
        case peers
        case dns, dnsAdd = "dns-add", dnsRemove = "dns-remove"
        /// `weft doctor`: reachability, handshakes, MTU, clock, keys, IPAM (API.DoctorReport).
        case doctor
        /// Release the addresses of attachments that are certainly gone (Attachments.swift).
        case gc
        /// `weft keys list|install|use|remove`: the cluster keyring (API.KeysReport).
        case keys, keysInstall = "keys-install", keysUse = "keys-use", keysRemove = "keys-remove"
        /// `weft evict NODE [--undo]`: ban an identity from the cluster, or lift the ban (API.EvictResult).
        case evict
    }

    public struct Request: Codable, Sendable, Equatable {
        public var v: Int
        public var op: Operation
        /// `join`: endpoints (`host:port`) to contact.
        public var addresses: [String]?
        /// `alloc`, `release`: the allocation's handle (e.g. a container id + interface).
        public var handle: String?
        /// `reclaim`: the node whose space to take over (id, id prefix, or name).
        public var node: String?
        /// `alloc`: the container's name in the cluster's DNS (one DNS label), if it has one.
        public var name: String?
        /// `reclaim`: also drop the member's reserved addresses (`weft ipam reclaim --force`).
        public var force: Bool?
        /// `gc`: only report what would be released.
        public var dryRun: Bool?
        /// `keys-install`: the key (printed form); `keys-use`, `keys-remove`: a key id, an id
        /// prefix, or the printed key.
        public var key: String?
        /// `keys-*`: change only this node's keyring (a node that missed a rotation).
        public var local: Bool?
        /// `evict`: lift the eviction of `node` instead (`weft evict --undo`).
        public var undo: Bool?

        public init(op: Operation, addresses: [String]? = nil, handle: String? = nil, node: String? = nil, name: String? = nil) {
            self.v = API.version
            self.op = op
            self.addresses = addresses
            self.handle = handle
            self.node = node
            self.name = name
        }
    }

    /// Stable error codes: they cross a process boundary, so they never change meaning.
    public enum ErrorCode: String, Codable, Sendable {
        /// The request was malformed or named an unknown operation; fix the caller.
        case badRequest = "bad-request"
        /// The request's `v` is newer than this node understands; upgrade the node.
        case unsupportedVersion = "unsupported-version"
        /// The node is starting or leaving; try again shortly (CNI error 11).
        case notReady = "not-ready"
        /// The named thing does not exist.
        case notFound = "not-found"
        /// The node failed internally; its log says more.
        case `internal` = "internal"
        /// No free address anywhere in the cluster.
        case exhausted = "exhausted"
        /// The request conflicts with the current state (e.g. the handle's address was taken over).
        case conflict = "conflict"
        /// This node was evicted from the cluster (`weft status` says by whom and what to do).
        case evicted = "evicted"
    }

    public struct ErrorBody: Codable, Sendable, Equatable, Error, CustomStringConvertible {
        public var code: ErrorCode
        public var message: String
        public init(code: ErrorCode, message: String) {
            self.code = code
            self.message = message
        }
        public var description: String { message }
    }

    /// Either `result` (operation-specific JSON) or `error`.
    public struct Response<Result: Codable & Sendable>: Codable, Sendable {
        public var ok: Bool
        public var result: Result?
        public var error: ErrorBody?

        public init(result: Result) { ok = true; self.result = result; error = nil }
        public init(error: ErrorBody) { ok = false; result = nil; self.error = error }
    }

    /// A response whose result is ignored (used to read just `ok`/`error`).
    public struct Empty: Codable, Sendable, Equatable { public init() {} }
}

extension API {
    /// `weft status --json`.
    public struct Status: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        /// The address other nodes reach this one at (`host:port`).
        public var address: String
        /// The cluster fingerprint (derived one-way from the cluster key).
        public var cluster: String
        public var incarnation: UInt64
        public var version: String
        public var uptimeSeconds: Double
        /// Count of members by state (`alive`, `suspect`, `dead`, `left`), this node included.
        public var members: [String: Int]
        /// Dropped packets by reason.
        public var drops: [String: UInt64]
        /// Messages received and sent by type.
        public var messages: [String: UInt64]
        /// Whether this node has heard from any other member since it started.
        public var joined: Bool
        /// Problems an operator should look at (e.g. seeds that did not answer).
        public var warnings: [String]
        /// This node's own address on the overlay, once it has one.
        public var overlayAddress: String?
        /// The MTU of the overlay (the TUN device's); nil with --no-tun. Container interfaces use it.
        public var overlayMTU: Int?
        /// The TUN device's name (e.g. `weft0`); nil with --no-tun.
        public var tunName: String?
        /// Where this node's DNS resolver listens (`ip:port`), once it does; nil when off.
        public var dnsAddress: String?
        /// The cluster's DNS domain (containers are NAME.<domain>); nil when DNS is off.
        public var dnsDomain: String?
        /// Name records this node knows (all nodes' containers).
        public var dnsRecords: Int?
        /// Packets the data plane dropped, by reason (`drops` are the control plane's).
        public var dataPlaneDrops: [String: UInt64]?
        /// The data plane: `encrypted`, `vxlan (unencrypted)` or `none (--no-tun)`; nil from older nodes.
        public var dataPlane: String?
        /// With the encrypted data plane: whether the TUN device does segmentation offload
        /// (`on`), was opened without it (`off (--no-tun-offload)`) or the kernel refused it
        /// (`off (the kernel refused it)`); nil otherwise and from older nodes.
        public var tunOffload: String?
        /// `running`, `evicted`, `left` or `refused`; nil from older nodes.
        public var phase: String?
        /// Set when this node itself was evicted: who did it.
        public var evictedBy: EvictionInfo?
        /// Identities this node treats as evicted (they cannot rejoin until undone).
        public var evictedMembers: [EvictionInfo]?

        public init(
            id: String, name: String, address: String, cluster: String, incarnation: UInt64,
            version: String, uptimeSeconds: Double, members: [String: Int], drops: [String: UInt64],
            messages: [String: UInt64], joined: Bool, warnings: [String], overlayAddress: String? = nil,
            overlayMTU: Int? = nil, tunName: String? = nil, dnsAddress: String? = nil, dnsDomain: String? = nil, dnsRecords: Int? = nil,
            dataPlane: String? = nil, phase: String? = nil, evictedBy: EvictionInfo? = nil, evictedMembers: [EvictionInfo]? = nil,
            tunOffload: String? = nil
        ) {
            self.dataPlane = dataPlane
            self.tunOffload = tunOffload
            self.phase = phase
            self.evictedBy = evictedBy
            self.evictedMembers = evictedMembers
            self.overlayMTU = overlayMTU
            self.tunName = tunName
            self.dnsAddress = dnsAddress
            self.dnsDomain = dnsDomain
            self.dnsRecords = dnsRecords
            self.id = id; self.name = name; self.address = address; self.cluster = cluster
            self.incarnation = incarnation; self.version = version; self.uptimeSeconds = uptimeSeconds
            self.members = members; self.drops = drops; self.messages = messages
            self.joined = joined; self.warnings = warnings; self.overlayAddress = overlayAddress
        }
    }

    /// One eviction (`weft status`): the evicted identity and who signed it.
    public struct EvictionInfo: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var by: String
        public var byName: String
        public var version: UInt64
        public init(id: String, name: String, by: String, byName: String, version: UInt64) {
            self.id = id; self.name = name; self.by = by; self.byName = byName; self.version = version
        }
    }

    /// `weft evict`: the identity, and whether it is now evicted (false after `--undo`).
    public struct EvictResult: Codable, Sendable, Equatable {
        public var node: String
        public var name: String
        public var evicted: Bool
        public init(node: String, name: String, evicted: Bool) { self.node = node; self.name = name; self.evicted = evicted }
    }

    /// One element of `weft members --json`.
    public struct MemberInfo: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        public var address: String
        /// `alive`, `suspect`, `dead` or `left`.
        public var state: String
        public var incarnation: UInt64
        /// Seconds since this node saw the state change.
        public var sinceSeconds: Double
        public var isSelf: Bool

        public init(id: String, name: String, address: String, state: String, incarnation: UInt64, sinceSeconds: Double, isSelf: Bool) {
            self.id = id; self.name = name; self.address = address; self.state = state
            self.incarnation = incarnation; self.sinceSeconds = sinceSeconds; self.isSelf = isSelf
        }
    }

    /// `weft join`: what happened to each address.
    public struct JoinResult: Codable, Sendable, Equatable {
        /// Addresses that answered a full-state exchange.
        public var joined: [String]
        /// Address → why it failed.
        public var failed: [String: String]
        /// Members known after the exchanges.
        public var members: Int

        public init(joined: [String], failed: [String: String], members: Int) {
            self.joined = joined; self.failed = failed; self.members = members
        }
    }

    /// `weft leave`.
    public struct LeaveResult: Codable, Sendable, Equatable {
        /// Members that were told directly.
        public var notified: Int
        public init(notified: Int) { self.notified = notified }
    }
}

extension API {
    /// `weft alloc`: the address held for a handle.
    public struct Allocation: Codable, Sendable, Equatable {
        public var handle: String
        /// The address, e.g. `10.42.3.7`.
        public var address: String
        /// The cluster subnet's prefix length (the address's netmask on the overlay), e.g. 16.
        public var prefixLength: Int
        /// The cluster subnet, e.g. `10.42.0.0/16`.
        public var subnet: String

        public init(handle: String, address: String, prefixLength: Int, subnet: String) {
            self.handle = handle; self.address = address; self.prefixLength = prefixLength; self.subnet = subnet
        }
    }

    /// One range of the ring in `weft ipam --json`.
    public struct RangeInfo: Codable, Sendable, Equatable {
        public var start: String
        public var end: String
        /// The owner's node id.
        public var owner: String
        public var ownerName: String
        public var version: UInt64
        public var free: UInt32
        public var size: UInt32

        public init(start: String, end: String, owner: String, ownerName: String, version: UInt64, free: UInt32, size: UInt32) {
            self.start = start; self.end = end; self.owner = owner; self.ownerName = ownerName
            self.version = version; self.free = free; self.size = size
        }
    }

    public struct AllocationInfo: Codable, Sendable, Equatable {
        public var handle: String
        public var address: String
        public init(handle: String, address: String) { self.handle = handle; self.address = address }
    }

    /// `weft ipam --json`.
    public struct IPAMInfo: Codable, Sendable, Equatable {
        /// The cluster subnet, or nil before this node has a ring.
        public var subnet: String?
        public var ranges: [RangeInfo]
        /// This node's allocations.
        public var allocations: [AllocationInfo]
        /// Allocations whose range another node took over while this node was away.
        public var conflicts: [AllocationInfo]
        /// Free addresses in this node's own ranges.
        public var ownFree: UInt64
        /// Free addresses in the whole ring (as last gossiped).
        public var clusterFree: UInt64
        /// Allocations waiting for space from a peer.
        public var pending: Int

        public init(subnet: String?, ranges: [RangeInfo], allocations: [AllocationInfo], conflicts: [AllocationInfo],
                    ownFree: UInt64, clusterFree: UInt64, pending: Int) {
            self.subnet = subnet; self.ranges = ranges; self.allocations = allocations; self.conflicts = conflicts
            self.ownFree = ownFree; self.clusterFree = clusterFree; self.pending = pending
        }
    }

    /// `weft ipam reclaim NODE`.
    public struct ReclaimResult: Codable, Sendable, Equatable {
        public var node: String
        public var ranges: Int
        public var addresses: UInt64
        public init(node: String, ranges: Int, addresses: UInt64) { self.node = node; self.ranges = ranges; self.addresses = addresses }
    }
}

extension API {
    /// One element of `weft peers --json`: the tunnel to another node.
    public struct PeerInfo: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        /// Where this node sends the peer's tunnel packets (`host:port`), if known.
        public var endpoint: String?
        /// The peer's own overlay address, as the peer reported it (nil until it has answered).
        public var overlayAddress: String?
        /// `idle`, `handshaking`, `established`, `rekeying` or `failing`.
        public var state: String
        /// More about the state, e.g. "attempt 3: no response".
        public var detail: String
        /// Seconds since the last completed handshake, or nil if none yet.
        public var lastHandshake: Double?
        public var rxBytes: UInt64
        public var txBytes: UInt64
        public var rxPackets: UInt64
        public var txPackets: UInt64
        /// Packets to or from this peer that were dropped, by reason.
        public var drops: [String: UInt64]
        /// The overlay address ranges routed to this peer (its share of the ring, `a.b.c.d/n` or
        /// `first-last`), in address order. Absent from nodes older than this field.
        public var ranges: [String]?

        public init(id: String, name: String, endpoint: String?, state: String, detail: String, lastHandshake: Double?,
                    rxBytes: UInt64, txBytes: UInt64, rxPackets: UInt64, txPackets: UInt64, drops: [String: UInt64],
                    ranges: [String]? = nil) {
            self.id = id; self.name = name; self.endpoint = endpoint; self.state = state; self.detail = detail
            self.lastHandshake = lastHandshake; self.rxBytes = rxBytes; self.txBytes = txBytes
            self.rxPackets = rxPackets; self.txPackets = txPackets; self.drops = drops; self.ranges = ranges
        }
    }
}

extension API {
    /// `a.b.c.d/n` when `first...last` (IPv4, inclusive) is exactly one CIDR block, else `first-last`.
    /// Both ends are dotted-quad text as in `RangeInfo`.
    public static func describeRange(start: String, end: String) -> String {
        guard let a = parseIPv4(start), let b = parseIPv4(end), a <= b else { return "\(start)-\(end)" }
        let size = UInt64(b) - UInt64(a) + 1
        if size.nonzeroBitCount == 1, UInt64(a) % size == 0 {
            return "\(start)/\(32 - size.trailingZeroBitCount)"
        }
        return "\(start)-\(end)"
    }

    /// Parses dotted-quad IPv4 text.
    public static func parseIPv4(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = UInt32(p), n <= 255 else { return nil }
            v = v << 8 | n
        }
        return v
    }

    /// `weft dns`: one name record as this node knows it.
    public struct DNSRecord: Codable, Sendable, Equatable {
        public var name: String
        public var fqdn: String
        public var address: String
        public var owner: String
        public var ownerName: String
        /// The container's allocation handle (or `dns:NAME` for `weft dns add`).
        public var handle: String
        /// False when its owner is not live (the record is kept but not served).
        public var served: Bool
        public init(name: String, fqdn: String, address: String, owner: String, ownerName: String, handle: String, served: Bool) {
            self.name = name; self.fqdn = fqdn; self.address = address; self.owner = owner
            self.ownerName = ownerName; self.handle = handle; self.served = served
        }
    }
}

extension API {
    /// One key of `weft keys list`, across the members that answered.
    public struct KeyInfo: Codable, Sendable, Equatable {
        /// The key's public fingerprint (16 hex characters); never the key.
        public var id: String
        /// Members (names) that seal with it / that accept it.
        public var primaryOn: [String]
        public var installedOn: [String]
        public init(id: String, primaryOn: [String], installedOn: [String]) {
            self.id = id; self.primaryOn = primaryOn; self.installedOn = installedOn
        }
    }

    /// What one member said about its keyring (or why it said nothing).
    public struct MemberKeys: Codable, Sendable, Equatable {
        public var id: String
        public var name: String
        /// Its key ids, the primary first; nil when it did not answer.
        public var keys: [String]?
        /// Why it did not answer, or why it refused the change.
        public var problem: String?
        /// Its keyring changed with this request.
        public var changed: Bool
        public init(id: String, name: String, keys: [String]?, problem: String?, changed: Bool) {
            self.id = id; self.name = name; self.keys = keys; self.problem = problem; self.changed = changed
        }
    }

    /// `weft keys ... --json`: the keyring across the cluster after the operation.
    public struct KeysReport: Codable, Sendable, Equatable {
        /// `list`, `install`, `use`, `remove`.
        public var operation: String
        /// The cluster id (stays when keys are rotated).
        public var cluster: String
        /// The key the operation was about (id), if any.
        public var key: String?
        /// Every member asked (this node first), with its answer.
        public var members: [MemberKeys]
        /// Keys seen on any member that answered, the asking node's primary first.
        public var keys: [KeyInfo]
        /// Members that are dead or left: not asked.
        public var notAsked: [String]
        /// True when every member asked answered and none refused.
        public var complete: Bool
        public init(operation: String, cluster: String, key: String?, members: [MemberKeys], keys: [KeyInfo], notAsked: [String], complete: Bool) {
            self.operation = operation; self.cluster = cluster; self.key = key; self.members = members
            self.keys = keys; self.notAsked = notAsked; self.complete = complete
        }
    }
}
