extension IPAM {
    /// The holdings register of one node: every address its containers may be using (its
    /// allocations, confirmed or not, and its conflicts, overlay address included), sorted.
    /// Only the node itself writes its register (except a forced reclaim, which stores an empty
    /// one at `version + 2^32`); every other node keeps the highest version it has heard of, and
    /// never hands out or donates an address in another node's register (docs/ipam.md, rule 1).
    public struct Holdings: Hashable, Sendable, CustomStringConvertible {
        public var version: UInt64
        /// Sorted, distinct, inside the subnet.
        public var addresses: [UInt32]
        /// The owner allocates without confirmation (fewer than 3 voters, or `reclaimAfter`
        /// never): addresses it handed out while cut off may be missing here, so no heir may
        /// reclaim it automatically (only `reclaim --force`).
        public var open: Bool

        public init(version: UInt64, addresses: [UInt32], open: Bool = false) {
            self.version = version; self.addresses = addresses; self.open = open
        }

        /// No register heard: treated as open (nothing is known about the owner's addresses).
        public static let empty = Holdings(version: 0, addresses: [], open: true)

        /// The merge rule: higher version wins; at equal versions (only possible after a forced
        /// reclaim raced a write) the longer list, then the lexicographically larger one. A total
        /// order, so "keep the maximum" is commutative, associative and idempotent.
        public func beats(_ other: Holdings) -> Bool {
            if version != other.version { return version > other.version }
            if addresses.count != other.addresses.count { return addresses.count > other.addresses.count }
            if addresses != other.addresses { return other.addresses.lexicographicallyPrecedes(addresses) }
            return open && !other.open
        }

        /// Binary search.
        public func contains(_ address: UInt32) -> Bool {
            var lo = 0, hi = addresses.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if addresses[mid] < address { lo = mid + 1 } else { hi = mid }
            }
            return lo < addresses.count && addresses[lo] == address
        }

        public var description: String { "v\(version)\(open ? " open" : "") [\(addresses.map { IPAM.format($0) }.joined(separator: ", "))]" }

        /// Nil when valid for `subnet`, else what is wrong: sorted, distinct, inside the subnet,
        /// version at most ``Ring/maxVersion``.
        public func violation(in subnet: Subnet) -> String? {
            guard version <= Ring.maxVersion else { return "version \(version) too large" }
            var previous: UInt32? = nil
            for a in addresses {
                guard subnet.contains(a) else { return "address \(IPAM.format(a)) outside \(subnet)" }
                if let p = previous, a <= p { return "addresses not strictly increasing at \(IPAM.format(a))" }
                previous = a
            }
            return nil
        }
    }

    /// One node's register as carried on the wire.
    public struct OwnedHoldings: Hashable, Sendable {
        public var owner: NodeID
        public var holdings: Holdings
        public init(owner: NodeID, holdings: Holdings) { self.owner = owner; self.holdings = holdings }
    }
}
