/// Decentralized IPv4 address allocation: an ownership ring gossiped as a CRDT.
///
/// The subnet (10.42.0.0/16 by default) is cut into contiguous ranges; each range has exactly
/// one owner, and only the owner hands out addresses from it, locally and without a network
/// round trip. Ranges move between nodes by donation (a node low on space asks the member with
/// the most free space), by hand-over on `leave`, and by reclaim of a dead member's space by one
/// deterministically chosen heir. See docs/ipam.md for the full design, the merge rule and the
/// wire format; the pure state machine is ``IPAM/Instance``.
public enum IPAM {}

extension IPAM {
    /// Formats a 32-bit IPv4 address as dotted quad.
    public static func format(_ address: UInt32) -> String { IPAddress.v4(address).description }
}
