import ArgumentParser
import Foundation
import WeftAPI
import WeftCrypto

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show this node: id, name, cluster, health.")
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
        let drops = s.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        rows.append(["drops", drops.isEmpty ? "none" : drops])
        for w in s.warnings { rows.append(["warning", w]) }
        let width = rows.map { $0[0].count }.max() ?? 0
        for r in rows { print(r[0].padding(toLength: width, withPad: " ", startingAt: 0) + "  " + r[1]) }
    }
}

struct Members: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every member and its state (alive, suspect, dead, left).")
    @OptionGroup var node: NodeSelection

    func run() throws {
        let list = try node.call(API.Request(op: .members), as: [API.MemberInfo].self)
        if node.json { return try printJSON(list) }
        let rows = list.map { m in
            [m.name + (m.isSelf ? " (self)" : ""), String(m.id.prefix(12)), m.address, m.state, String(m.incarnation), formatSeconds(m.sinceSeconds)]
        }
        printTable(["NAME", "ID", "ADDRESS", "STATE", "INCARNATION", "SINCE"], rows)
    }
}

struct Join: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Ask the running node to contact more members.")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("Members to contact.", valueName: "host:port"))
    var addresses: [String]

    func validate() throws {
        if addresses.isEmpty { throw ValidationError("give at least one HOST:PORT") }
    }

    func run() throws {
        let r = try node.call(API.Request(op: .join, addresses: addresses), as: API.JoinResult.self)
        if node.json { return try printJSON(r) }
        for a in r.joined { print("joined via \(a)") }
        for (a, why) in r.failed.sorted(by: { $0.key < $1.key }) { print("\(a): \(why)") }
        print("\(r.members) members known")
        if r.joined.isEmpty { throw ExitCode(1) }
    }
}

struct Leave: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Leave the cluster for good: announce it, then stop the node.")
    @OptionGroup var node: NodeSelection

    func run() throws {
        let r = try node.call(API.Request(op: .leave), as: API.LeaveResult.self, timeout: 30)
        if node.json { return try printJSON(r) }
        print("left the cluster (told \(r.notified) members directly); the node has stopped")
    }
}

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a new random cluster key.")

    func run() throws {
        do { try Sodium.initialize() } catch { throw CLIError("libsodium failed to initialize: \(error)") }
        print(ClusterKey.generate().text)
    }
}

struct Alloc: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Get an address for HANDLE (the same HANDLE always gets the same address until released).")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("A name for the allocation, e.g. a container id.", valueName: "handle"))
    var handle: String

    func run() throws {
        // A node without free space waits up to 30 s for a donation.
        let a = try node.call(API.Request(op: .alloc, handle: handle), as: API.Allocation.self, timeout: 40)
        if node.json { return try printJSON(a) }
        print("\(a.address)/\(a.prefixLength)")
    }
}

struct Release: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Free the address held for HANDLE.")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("The allocation's handle.", valueName: "handle"))
    var handle: String

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
        printTable(["START", "END", "OWNER", "ID", "VERSION", "SIZE", "FREE"], info.ranges.map {
            [$0.start, $0.end, $0.ownerName, String($0.owner.prefix(12)), String($0.version), String($0.size), String($0.free)]
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
    static let configuration = CommandConfiguration(commandName: "reclaim", abstract: "Take over the address space of a dead member now.")
    @OptionGroup var node: NodeSelection
    @Argument(help: ArgumentHelp("The dead member: its id, an id prefix, or its name.", valueName: "node"))
    var target: String

    func run() throws {
        let r = try node.call(API.Request(op: .reclaim, node: target), as: API.ReclaimResult.self)
        if node.json { return try printJSON(r) }
        print("took over \(r.ranges) range(s), \(r.addresses) addresses, of \(r.node.prefix(12))")
    }
}

struct Peers: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the encrypted tunnels to other nodes: state, last handshake, traffic, drops.")
    @OptionGroup var node: NodeSelection

    func run() throws {
        let list = try node.call(API.Request(op: .peers), as: [API.PeerInfo].self)
        if node.json { return try printJSON(list) }
        if list.isEmpty {
            print("no tunnels (no other members yet, or the node runs with --no-tun)")
            return
        }
        printTable(["NAME", "ID", "ENDPOINT", "STATE", "HANDSHAKE", "RX", "TX", "DROPS"], list.map { p in
            let drops = p.drops.values.reduce(0, +)
            return [p.name, String(p.id.prefix(12)), p.endpoint ?? "-", p.detail.isEmpty ? p.state : "\(p.state) (\(p.detail))",
                    p.lastHandshake.map { formatSeconds($0) + " ago" } ?? "never", formatBytes(p.rxBytes), formatBytes(p.txBytes), String(drops)]
        })
    }
}

func formatBytes(_ b: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var v = Double(b), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(b) B" : String(format: "%.1f %@", v, units[i])
}
