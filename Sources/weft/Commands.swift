import ArgumentParser
import Foundation
import WeftAPI
import WeftCrypto
import WeftCore

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show this node: id, name, cluster, health.",
        discussion: """
            Examples:
              weft status --data-dir /var/lib/weft
              weft status --json | jq .members
            """
    )
    @OptionGroup var node: NodeSelection

    func run() throws {
        let s = try node.call(API.Request(op: .status), as: API.Status.self)
        if node.json { return try printJSON(s) }
        let members = ["alive", "suspect", "dead", "left"].map { "\(s.members[$0] ?? 0) \($0)" }.joined(separator: ", ")
        var rows: [[String]] = [
            ["id", s.id], ["name", s.name], ["address", s.address], ["cluster", s.cluster],
            ["incarnation", String(s.incarnation)], ["uptime", formatSeconds(s.uptimeSeconds)],
            ["members", members], ["joined", s.joined ? "yes" : "no"],
            ["overlay", s.overlayAddress ?? "none yet"],
        ]
        if let d = s.dataPlane { rows.append(["data plane", d]) }
        if let o = s.tunOffload { rows.append(["tun offload", o]) }
        if let e = s.evictedBy {
            rows.append(["evicted", "yes, by \(e.byName.isEmpty ? String(e.by.prefix(12)) : e.byName) (\(e.by.prefix(12))): cut off from the cluster"])
        }
        if let list = s.evictedMembers, !list.isEmpty {
            rows.append(["evicted members", list.map { "\($0.name.isEmpty ? String($0.id.prefix(12)) : $0.name) (\($0.id.prefix(12)))" }.joined(separator: ", ")])
        }
        if let domain = s.dnsDomain {
            rows.append(["dns", "\(s.dnsAddress ?? "not listening yet") (\(domain), \(s.dnsRecords ?? 0) record\((s.dnsRecords ?? 0) == 1 ? "" : "s"))"])
        } else {
            rows.append(["dns", "off"])
        }
        let drops = s.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        rows.append(["drops", drops.isEmpty ? "none" : drops])
        // The data plane's own drops (no-session: handed to the handshake queue, not lost).
        let dp = (s.dataPlaneDrops ?? [:]).filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        rows.append(["data drops", dp.isEmpty ? "none" : dp])
        for w in s.warnings { rows.append(["warning", w]) }
        let width = rows.map { displayWidth($0[0]) }.max() ?? 0
        for r in rows { print(pad(r[0], to: width) + "  " + r[1]) }
    }
}

struct Members: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List every member and its state (alive, suspect, dead, left), sorted by name.",
        discussion: """
            This node is marked with '*' (and "isSelf": true in --json).

            Examples:
              weft members
              weft members --json | jq -r '.[] | select(.state != "alive") | .name'
            """
    )
    @OptionGroup var node: NodeSelection

    func run() throws {
        let list = try node.call(API.Request(op: .members), as: [API.MemberInfo].self)
            .sorted { ($0.name, $0.id) < ($1.name, $1.id) }
        if node.json { return try printJSON(list) }
        let rows = list.map { m in
            [(m.isSelf ? "* " : "  ") + m.name, String(m.id.prefix(12)), m.address, m.state, String(m.incarnation), formatSeconds(m.sinceSeconds)]
        }
        printTable(["  NAME", "ID", "ADDRESS", "STATE", "INCARNATION", "SINCE"], rows)
    }
}

struct Join: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ask the running node to contact more members.",
        discussion: """
            Succeeds (exit 0) when at least one address answered a full-state exchange; exits 1
            with every address's reason when none did.

            Examples:
              weft join 192.168.1.11:7946
              weft join 192.168.1.11:7946 192.168.1.12:7946 --json
            """
    )
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("Members to contact.", valueName: "host:port"))
    var addresses: [String] = []

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one HOST:PORT of another member, e.g. weft join 192.168.1.11:7946") }
        for a in addresses {
            if let problem = InputCheck.hostPort(a, flag: "address") { throw ValidationError(problem) }
        }
    }

    func run() throws {
        let r = try node.call(API.Request(op: .join, addresses: addresses), as: API.JoinResult.self)
        let reasons = r.failed.sorted(by: { $0.key < $1.key })
        if r.joined.isEmpty {
            let why = reasons.map { "\($0.key): \($0.value)" }.joined(separator: "; ")
            throw CLIFailure.runtime(
                "join-failed", "no address answered (\(why.isEmpty ? "nothing to contact" : why)): check the addresses and that they use this cluster's key",
                details: r.failed)
        }
        if node.json { return try printJSON(r) }
        for a in r.joined { print("joined via \(a)") }
        for (a, why) in reasons { print("\(a): \(why)") }
        print("\(plural(r.members, "member")) known")
    }
}

struct Leave: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Leave the cluster for good: announce it, then stop the node.",
        discussion: """
            The node hands its address ranges to live members, tells some of them directly, gossips
            its departure, then exits 0. A restart of the same data dir joins again as the same member.

            Example:
              weft leave --data-dir /var/lib/weft
            """
    )
    @OptionGroup var node: NodeSelection

    func run() throws {
        let r = try node.call(API.Request(op: .leave), as: API.LeaveResult.self, timeout: 30)
        if node.json { return try printJSON(r) }
        print("left the cluster (told \(plural(r.notified, "member")) directly); the node has stopped")
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a new random cluster key.",
        discussion: """
            Example:
              weft keygen > cluster.key && chmod 600 cluster.key
              weft start --cluster-key-file cluster.key --listen 192.168.1.10:7946
            """
    )

    func run() throws {
        do { try Sodium.initialize() } catch { throw CLIFailure.runtime("system-error", "libsodium failed to initialize (\(error)): reinstall libsodium (bootstrap/setup)") }
        print(ClusterKey.generate().text)
    }
}

struct Alloc: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Get an address for HANDLE (the same HANDLE always gets the same address until released).",
        discussion: """
            HANDLE is 1 to 256 bytes of printable text without leading or trailing spaces; 'weft:'
            is reserved for the node. Prints ADDRESS/PREFIX.

            With --name the address is also NAME.<cluster domain> in every node's DNS.

            Examples:
              weft alloc my-container
              weft alloc my-container --name db
              weft alloc my-container --json | jq -r .address
            """
    )
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("A name for the allocation, e.g. a container id.", valueName: "handle"))
    var handle: String

    @Option(help: ArgumentHelp("The container's DNS name (letters, digits and '-', 1 to 63 bytes).", valueName: "name"))
    var name: String?

    func validate() throws {
        if let problem = InputCheck.handle(handle) { throw ValidationError(problem) }
        if let name, let problem = DNS.Name.labelProblem(name) {
            throw ValidationError("invalid name '\(name)': \(problem) (a DNS label: letters, digits and '-', 1 to 63 bytes)")
        }
    }

    func run() throws {
        // A node without free space waits up to 30 s for a donation.
        let a = try node.call(API.Request(op: .alloc, handle: handle, name: name), as: API.Allocation.self, timeout: 40)
        if node.json { return try printJSON(a) }
        print("\(a.address)/\(a.prefixLength)")
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Free the address held for HANDLE.",
        discussion: """
            Example:
              weft release my-container
            """
    )
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("The allocation's handle.", valueName: "handle"))
    var handle: String

    func validate() throws {
        if let problem = InputCheck.handle(handle) { throw ValidationError(problem) }
    }

    func run() throws {
        let r = try node.call(API.Request(op: .release, handle: handle), as: API.AllocationInfo.self)
        if node.json { return try printJSON(r) }
        print("released \(r.address) (\(r.handle))")
    }
}

struct IPAMCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ipam",
        abstract: "Show who owns which address ranges, free space, and this node's allocations.",
        discussion: """
            Examples:
              weft ipam
              weft ipam --json | jq '.ranges[] | select(.ownerName == "b")'
              weft ipam reclaim 3f2a9c          # a dead member's id prefix or name
            """,
        subcommands: [IPAMShow.self, IPAMReclaim.self],
        defaultSubcommand: IPAMShow.self
    )
}

struct IPAMShow: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "Show the ring and this node's allocations (the default).")
    @OptionGroup var node: NodeSelection

    func run() throws {
        let info = try node.call(API.Request(op: .ipam), as: API.IPAMInfo.self)
        if node.json { return try printJSON(info) }
        guard let subnet = info.subnet else {
            print("no address ring yet: this node has not joined a cluster")
            return
        }
        print("subnet \(subnet): \(info.clusterFree) free in the cluster, \(info.ownFree) in this node's ranges\(info.pending > 0 ? ", \(info.pending) waiting" : "")")
        print()
        // RANGE is a CIDR block when the range is one, else FIRST-LAST (both included).
        printTable(["RANGE", "OWNER", "ID", "SIZE", "FREE", "VERSION"], info.ranges.map {
            [API.describeRange(start: $0.start, end: $0.end), $0.ownerName, String($0.owner.prefix(12)), String($0.size), String($0.free),
             formatRangeVersion($0.version)]
        })
        print()
        if info.allocations.isEmpty {
            print("no allocations on this node")
        } else {
            printTable(["HANDLE", "ADDRESS"], info.allocations.map { [$0.handle, $0.address] })
        }
        if !info.conflicts.isEmpty {
            print()
            print("in conflict (range taken over while this node was away; release them):")
            printTable(["HANDLE", "ADDRESS"], info.conflicts.map { [$0.handle, $0.address] })
        }
    }
}

struct IPAMReclaim: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reclaim", abstract: "Take over the address space of a dead member now.",
        discussion: """
            The addresses the member's containers were using stay reserved (never handed out
            again) until it comes back and releases them. --force also drops those reservations:
            only for a host that is gone for good with its containers.

            Examples:
              weft ipam reclaim old-host      # name, id, or id prefix from `weft members`
              weft ipam reclaim --force old-host
            """
    )
    @OptionGroup var node: NodeSelection
    @Flag(help: "Also free the addresses the member's containers were using (the host is gone for good).")
    var force = false
    @Argument(help: ArgumentHelp("The dead member: its id, an id prefix, or its name.", valueName: "node"))
    var target: String

    func run() throws {
        var request = API.Request(op: .reclaim, node: target)
        request.force = force
        let r = try node.call(request, as: API.ReclaimResult.self)
        if node.json { return try printJSON(r) }
        print("took over \(plural(r.ranges, "range")) (\(plural(Int(r.addresses), "address", "addresses"))) of \(r.node.prefix(12))")
    }
}

struct Evict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ban a member's identity from the cluster (or lift the ban with --undo).",
        discussion: """
            The eviction is signed by this node and spreads to every member: they forget the             member, close its tunnels, drop everything it sends, and its heir reclaims its             address space after --reclaim-after (or run `weft ipam reclaim NODE`). The evicted             node keeps running, says so in `weft status`, and cannot rejoin with its identity             until a member runs `weft evict --undo`. It still holds the cluster key: to shut             the host out for good, rotate the key next (`weft keys install`, `use`, `remove`).

            Examples:
              weft evict old-host             # name, id, or id prefix from `weft members`
              weft evict --undo old-host
            """
    )
    @OptionGroup var node: NodeSelection
    @Flag(help: "Lift the eviction: the identity may rejoin.")
    var undo = false
    @Argument(help: ArgumentHelp("The member: its id, an id prefix, or its name.", valueName: "node"))
    var target: String

    func run() throws {
        var request = API.Request(op: .evict, node: target)
        request.undo = undo
        let r = try node.call(request, as: API.EvictResult.self)
        if node.json { return try printJSON(r) }
        if r.evicted {
            print("evicted \(r.name) (\(r.node.prefix(12))); the cluster learns it by gossip. It still holds the cluster key: rotate it (`weft keys`) to shut the host out for good")
        } else {
            print("readmitted \(r.name) (\(r.node.prefix(12))): it rejoins at its next attempt (within 30 s)")
        }
    }
}

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the encrypted tunnels to other nodes: state, last handshake, traffic, drops.",
        discussion: """
            OVERLAY is the peer's own overlay address as the peer reported it (asked over TCP and \
            cached per incarnation; '-' until it has answered). ROUTES are the overlay address \
            ranges this node sends through the peer's tunnel.

            Examples:
              weft peers
              weft peers --json | jq '.[] | {name, state, lastHandshake}'
            """
    )
    @OptionGroup var node: NodeSelection

    func run() throws {
        let list = try node.call(API.Request(op: .peers), as: [API.PeerInfo].self)
        if node.json { return try printJSON(list) }
        if list.isEmpty {
            print(try noTunnelsReason())
            return
        }
        printTable(["NAME", "ID", "OVERLAY", "ENDPOINT", "ROUTES", "STATE", "HANDSHAKE", "RX", "TX", "DROPS"], list.map { p in
            let drops = p.drops.values.reduce(0, +)
            let routes = (p.ranges ?? []).isEmpty ? "-" : (p.ranges ?? []).joined(separator: ",")
            return [p.name, String(p.id.prefix(12)), p.overlayAddress ?? "-", p.endpoint ?? "-", routes, p.detail.isEmpty ? p.state : "\(p.state) (\(p.detail))",
                    p.lastHandshake.map { formatSeconds($0) + " ago" } ?? "never", formatBytes(p.rxBytes), formatBytes(p.txBytes), String(drops)]
        })
    }
}

extension Peers {
    /// Why there is no tunnel, from the node's own status: --no-tun, alone, or which members are not live.
    func noTunnelsReason() throws -> String {
        let s = try node.call(API.Request(op: .status), as: API.Status.self)
        if s.tunName == nil { return "no tunnels: this node runs with --no-tun (control plane only, nothing to carry)" }
        let others = s.members.values.reduce(0, +) - 1
        if others <= 0 { return "no tunnels: this node is the only member; start another host with --seed \(s.address)" }
        let notLive = ["dead", "left"].compactMap { k in (s.members[k] ?? 0) > 0 ? "\(s.members[k]!) \(k)" : nil }
        if (s.members["alive"] ?? 1) - 1 + (s.members["suspect"] ?? 0) == 0 {
            return "no tunnels: no other live member (\(notLive.joined(separator: ", "))); `weft members` lists them"
        }
        return "no tunnels yet: \(plural(others, "other member")) known but none has a tunnel peer yet (their keys arrive by gossip); try again in a few seconds"
    }
}

func formatBytes(_ b: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}

/// A range version as an operator reads it: the edit count, plus the takeover count when the
/// range was reclaimed from a dead member (versions jump by 2^32 per takeover, docs/ipam.md).
func formatRangeVersion(_ v: UInt64) -> String {
    let takeovers = v >> 32, edits = v & 0xFFFF_FFFF
    return takeovers == 0 ? String(edits) : "\(edits) (takeover \(takeovers))"
}


struct DNSCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dns",
        abstract: "List the cluster's name records, or add and remove names for services outside containers.",
        discussion: """
            Containers get names from their runtime (podman's container name, Kubernetes' pod name,
            `weft alloc HANDLE --name NAME`); every node answers NAME.<domain> with the addresses of
            all live containers of that name.

            Examples:
              weft dns
              weft dns add registry 10.42.0.200
              weft dns remove registry
            """,
        subcommands: [DNSList.self, DNSAdd.self, DNSRemove.self],
        defaultSubcommand: DNSList.self
    )
}

struct DNSList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Every name record this node knows (the default).")
    @OptionGroup var node: NodeSelection

    func run() throws {
        let records = try node.call(API.Request(op: .dns), as: [API.DNSRecord].self)
        if node.json { return try printJSON(records) }
        if records.isEmpty { print("no names yet: name containers with --name or through the runtime"); return }
        printTable(["NAME", "ADDRESS", "OWNER", "HANDLE", "SERVED"], records.map {
            [$0.fqdn, $0.address, $0.ownerName, $0.handle, $0.served ? "yes" : "no (owner not live)"]
        })
    }
}

struct DNSAdd: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "add", abstract: "Name ADDRESS as NAME.<domain> (owned by this node).")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("One DNS label: letters, digits and '-'.", valueName: "name")) var name: String
    @Argument(help: ArgumentHelp("An IPv4 address.", valueName: "address")) var address: String

    func validate() throws {
        if let p = DNS.Name.labelProblem(name) { throw ValidationError("invalid name '\(name)': \(p)") }
        if API.parseIPv4(address) == nil { throw ValidationError("'\(address)' is not an IPv4 address") }
    }

    func run() throws {
        let records = try node.call(API.Request(op: .dnsAdd, addresses: [address], name: name), as: [API.DNSRecord].self)
        if node.json { return try printJSON(records) }
        print("added \(name) -> \(address)")
    }
}

struct DNSRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a name added with `weft dns add` (all its addresses, or one).")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("The name.", valueName: "name")) var name: String
    @Argument(help: ArgumentHelp("Only this address.", valueName: "address")) var address: String?

    func validate() throws {
        if let address, API.parseIPv4(address) == nil { throw ValidationError("'\(address)' is not an IPv4 address") }
    }

    func run() throws {
        let records = try node.call(API.Request(op: .dnsRemove, addresses: address.map { [$0] }, name: name), as: [API.DNSRecord].self)
        if node.json { return try printJSON(records) }
        print("removed \(name)")
    }
}

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List, install, promote and remove cluster keys on a running cluster (key rotation).",
        discussion: """
            Every node accepts each installed key and seals with its primary one. A rotation without
            downtime, from any one node (each step reaches every live member):

              weft keygen > new.key
              weft keys install --key-file new.key   # every node now also accepts the new key
              weft keys use NEW-ID                     # every node now seals with it
              weft keys remove OLD-ID                  # nothing sealed with the old key opens any more

            KEY-ID is the 16-character id `weft keys list` shows (a unique prefix will do). A node
            that missed a rotation (it was down) is cut off once the old key is removed: copy
            cluster.key from a member's data dir over its own and restart it, or give it the new
            key with `weft keys install ... --local` and `weft keys use ... --local`.
            """,
        subcommands: [KeysList.self, KeysInstall.self, KeysUse.self, KeysRemove.self],
        defaultSubcommand: KeysList.self
    )
}

/// Options of the keyring commands that change something.
struct KeysScope: ParsableArguments {
    @Flag(name: .long, help: "Change only this node's keyring (a node that missed a rotation).")
    var local = false

    /// Sends one keyring request (`op` about `key`) to the node and prints its report.
    func run(_ op: API.Operation, key: String?, node: NodeSelection) throws {
        var request = API.Request(op: op)
        request.key = key
        request.local = local
        try KeysOutput.show(try node.call(request, as: API.KeysReport.self, timeout: 30), json: node.json)
    }
}

enum KeysOutput {
    /// Prints the report; throws when a member did not answer or refused.
    static func show(_ r: API.KeysReport, json: Bool) throws {
        let asked = r.members.count
        let problems = r.members.filter { $0.keys == nil || $0.problem != nil }
        if json {
            if problems.isEmpty { return try printJSON(r) }
        } else {
            if r.operation != "list", let key = r.key {
                let changed = r.members.filter(\.changed).map(\.name)
                let verb = ["install": "installed", "use": "made primary", "remove": "removed"][r.operation] ?? r.operation
                print(changed.isEmpty ? "key \(key): nothing to change (already \(verb) on every member that answered)"
                                      : "key \(key) \(verb) on \(plural(changed.count, "member")): \(changed.joined(separator: ", "))")
            }
            let answered = r.members.filter { $0.keys != nil }.count
            print("cluster \(r.cluster): \(answered) of \(plural(asked, "member")) answered" + (r.notAsked.isEmpty ? "" : " (not asked, dead or left: \(r.notAsked.joined(separator: ", ")))"))
            printTable(["KEY", "PRIMARY ON", "INSTALLED ON", "MISSING ON"], r.keys.map { k in
                let missing = r.members.filter { m in m.keys != nil && !(m.keys ?? []).contains(k.id) }.map(\.name)
                return [k.id, "\(k.primaryOn.count)/\(answered)", "\(k.installedOn.count)/\(answered)", missing.isEmpty ? "-" : missing.joined(separator: ", ")]
            })
        }
        guard problems.isEmpty else {
            var details: [String: String] = [:]
            for p in problems { details[p.name] = p.problem ?? "no answer" }
            let list = problems.map { "\($0.name): \($0.problem ?? "no answer")" }.joined(separator: "; ")
            let again = r.operation == "list" ? "" : " Run the same command again once they are back (it changes only what is missing)."
            throw CLIFailure.runtime("incomplete", "\(plural(problems.count, "member")) did not take part: \(list).\(again)", details: details)
        }
    }
}

struct KeysList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Each key's id and which members hold it and seal with it (the default).")
    @OptionGroup var node: NodeSelection
    @OptionGroup var scope: KeysScope

    func run() throws {
        try scope.run(.keys, key: nil, node: node)
    }
}

struct KeysInstall: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Make every live member accept KEY as well (it seals with its primary key still).")
    @OptionGroup var node: NodeSelection
    @OptionGroup var scope: KeysScope
    @Argument(help: ArgumentHelp("The key as `weft keygen` prints it, or - to read it from standard input. A key on the command line shows in `ps`: prefer --key-file.", valueName: "key"))
    var key: String?
    @Option(name: .long, help: ArgumentHelp("Read the key from this file.", valueName: "file"))
    var keyFile: String?

    func validate() throws {
        if key == nil && keyFile == nil { throw ValidationError("give the key: --key-file FILE (from `weft keygen > FILE`), or - to read it from standard input") }
        if key != nil && keyFile != nil { throw ValidationError("give the key once: either KEY or --key-file") }
    }

    func run() throws {
        let text: String
        if let keyFile {
            guard let data = FileManager.default.contents(atPath: keyFile) else {
                throw CLIFailure.usage("cannot read \(keyFile): check the path and that this user may read it")
            }
            text = String(decoding: data, as: UTF8.self)
        } else if key == "-" {
            text = readLine(strippingNewline: true) ?? ""
        } else {
            text = key ?? ""
        }
        let parsed: ClusterKey
        do { parsed = try ClusterKey(text: text) } catch { throw CLIFailure.usage("not a valid cluster key: \(error)") }
        try scope.run(.keysInstall, key: parsed.text, node: node)
    }
}

struct KeysUse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "use",
        abstract: "Make KEY-ID the primary key (the one every member seals with). Refused unless every live member holds it.")
    @OptionGroup var node: NodeSelection
    @OptionGroup var scope: KeysScope
    @Argument(help: ArgumentHelp("The key's id from `weft keys list` (or a unique prefix).", valueName: "key-id"))
    var keyID: String

    func run() throws {
        try scope.run(.keysUse, key: keyID, node: node)
    }
}

struct KeysRemove: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "remove",
        abstract: "Stop accepting KEY-ID everywhere. Refused while any member seals with it.")
    @OptionGroup var node: NodeSelection
    @OptionGroup var scope: KeysScope
    @Argument(help: ArgumentHelp("The key's id from `weft keys list` (or a unique prefix).", valueName: "key-id"))
    var keyID: String

    func run() throws {
        try scope.run(.keysRemove, key: keyID, node: node)
    }
}
