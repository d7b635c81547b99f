import WeftCore

extension NodeSimulator {
    /// One broken promise, with what was seen.
    public struct Violation: Error, CustomStringConvertible {
        public var what: String
        public var description: String { what }
    }

    /// The addresses containers may be using right now, per identity: confirmed allocations and
    /// conflicts — in memory for a running node, on "disk" for a crashed one, the last durable
    /// state of ghosts. An unconfirmed allocation is not in use yet (its caller is still waiting
    /// for the answer); it may overlap until a majority refuses it, and it is counted from the
    /// moment it is confirmed (docs/ipam-model.md, finding 3).
    public func activeHoldings() -> [(node: NodeID, handle: String, address: UInt32)] {
        var out: [(NodeID, String, UInt32)] = []
        for host in hosts where !host.hasLeft {
            if let node = host.node {
                for (h, a) in node.ipam.confirmedAllocations { out.append((host.id, h, a)) }
                for (h, a) in node.ipam.conflicts { out.append((host.id, h, a)) }
            } else {
                for (h, a) in host.storage.allocations where !a.unconfirmed || a.conflicted { out.append((host.id, h, a.address)) }
            }
        }
        for (id, held) in ghosts { for (h, a) in held { out.append((id, h, a)) } }
        return out
    }

    /// Checked after every step, whatever the partition:
    /// - no address is active for two handles anywhere in the cluster;
    /// - no acknowledged allocation is lost unless released;
    /// - a running node's memory equals what its storage would restore (nothing ran ahead of
    ///   the disk, nothing was left out of a commit).
    public func checkSafety() throws(Violation) {
        if let livelock { throw Violation(what: livelock) }
        var byAddress: [UInt32: (NodeID, String)] = [:]
        for (node, handle, address) in activeHoldings() {
            if let other = byAddress[address], other != (node, handle) {
                throw Violation(what: "\(context): address \(IPAM.format(address)) is active for \(other.0.short)/\(other.1) and \(node.short)/\(handle)")
            }
            byAddress[address] = (node, handle)
        }
        for (handle, ack) in acked {
            guard let host = hosts.first(where: { $0.id == ack.node }) else { continue }
            let held: UInt32?
            if let node = host.node {
                held = node.ipam.allocations[handle] ?? node.ipam.conflicts[handle]
            } else {
                held = host.storage.heldAddresses[handle]
            }
            if held != ack.address {
                throw Violation(what: "\(context): acknowledged allocation \(handle) -> \(IPAM.format(ack.address)) on \(ack.node.short) is lost (now \(held.map { IPAM.format($0) } ?? "nothing"))")
            }
        }
        for host in hosts {
            guard let node = host.node else { continue }
            let stored: IPAM.Instance.Snapshot?
            do { stored = try host.storage.ipamSnapshot() } catch {
                throw Violation(what: "\(context): host \(host.index) stored a broken ring: \(error)")
            }
            let memory = node.ipam.snapshot
            let storedAllocations = stored?.allocations ?? [:], storedConflicts = stored?.conflicts ?? [:]
            if storedAllocations != memory.allocations || storedConflicts != memory.conflicts || stored?.ring?.entries != memory.ring?.entries {
                let ringDiff = Set((memory.ring?.entries ?? []).map { "\(IPAM.format($0.token)) \($0.owner.short) v\($0.version) free \($0.free)" })
                    .symmetricDifference(Set((stored?.ring?.entries ?? []).map { "\(IPAM.format($0.token)) \($0.owner.short) v\($0.version) free \($0.free)" }))
                throw Violation(what: "\(context): host \(host.index) memory and storage differ (allocations \(memory.allocations.count) vs \(storedAllocations.count), conflicts \(memory.conflicts.count) vs \(storedConflicts.count), ring entries differing: \(ringDiff.sorted()))")
            }
        }
    }

    /// After a heal with every crashed host restarted and time for reclaims: every running node
    /// has the same ring, every range belongs to a running node, every running node sees every
    /// other as alive.
    public func checkConverged() throws(Violation) {
        let running = hosts.filter { $0.node != nil }
        guard let first = running.first?.node else { return }
        let ids = Set(running.map(\.id))
        for host in running {
            let node = host.node!
            if node.ipam.ring?.entries != first.ipam.ring?.entries {
                throw Violation(what: "\(context): host \(host.index) has another ring than host \(running.first!.index)")
            }
            for m in node.membership.members where ids.contains(m.id) && m.state != .alive {
                throw Violation(what: "\(context): host \(host.index) sees running \(m.id.short) as \(m.state)")
            }
            if let computed = node.computeRoutes()?.table, computed != node.routes {
                throw Violation(what: "\(context): host \(host.index) announced \(node.routes.count) routes, but its ring and registers give \(computed.count): a change that moves routes was not noticed")
            }
        }
        for e in first.ipam.ring?.entries ?? [] where !ids.contains(e.owner) {
            throw Violation(what: "\(context): range \(IPAM.format(e.token)) is stranded with \(e.owner.short), which is not running")
        }
    }
}
