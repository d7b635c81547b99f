extension IPAM {
    /// An IPv4 network in CIDR form, e.g. `10.42.0.0/16`. Only /8 ... /30 are accepted: larger
    /// networks are not private-sized, smaller ones leave no room for a cluster.
    public struct Subnet: Hashable, Sendable, CustomStringConvertible {
        /// The smallest and largest prefix lengths a Weft cluster accepts.
        public static let allowedPrefixLengths: ClosedRange<UInt8> = 8...30
        /// The default overlay network.
        public static let `default` = try! Subnet(parsing: "10.42.0.0/16")

        /// The network address (host bits zero).
        public let base: UInt32
        public let prefixLength: UInt8

        /// Validates a base address and prefix length (same rules as parsing).
        public init(base: UInt32, prefixLength: UInt8) throws(SubnetError) {
            guard Subnet.allowedPrefixLengths.contains(prefixLength) else {
                throw .prefixOutOfRange(Int(prefixLength))
            }
            let hostMask: UInt32 = (1 << (32 - UInt32(prefixLength))) - 1
            guard base & hostMask == 0 else {
                throw .hostBitsSet(given: IPAM.format(base), network: IPAM.format(base & ~hostMask))
            }
            self.base = base
            self.prefixLength = prefixLength
        }

        /// Parses `a.b.c.d/n`.
        public init(parsing text: String) throws(SubnetError) {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw .malformed(text) }
            guard let address = IPAddress.parseV4(parts[0]) else { throw .malformed(text) }
            let p = parts[1]
            guard !p.isEmpty, p.count <= 2, p.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(p) else {
                throw .malformed(text)
            }
            guard n >= 8 && n <= 30 else { throw .prefixOutOfRange(n) }
            try self.init(base: address, prefixLength: UInt8(n))
        }

        /// Number of addresses in the network (including network and broadcast addresses).
        public var size: UInt32 { 1 << (32 - UInt32(prefixLength)) }
        /// One past the last address, as UInt64 so 255.0.0.0/8 does not overflow.
        public var end: UInt64 { UInt64(base) + UInt64(size) }
        /// The last address (the broadcast address).
        public var last: UInt32 { base + (size - 1) }

        public func contains(_ address: UInt32) -> Bool {
            address >= base && UInt64(address) < end
        }

        /// Addresses never handed out: the network address and the broadcast address.
        public func isReserved(_ address: UInt32) -> Bool { address == base || address == last }

        public var description: String { "\(IPAM.format(base))/\(prefixLength)" }
    }

    /// Why a subnet string was refused. Each message says what is wrong and what is allowed.
    public enum SubnetError: Error, Equatable, Sendable, CustomStringConvertible {
        case malformed(String)
        case prefixOutOfRange(Int)
        case hostBitsSet(given: String, network: String)

        public var description: String {
            switch self {
            case .malformed(let s):
                return "'\(s)' is not an IPv4 CIDR; write it as a.b.c.d/n, e.g. 10.42.0.0/16"
            case .prefixOutOfRange(let n):
                return "prefix length /\(n) is not allowed; use /8 to /30 (e.g. 10.42.0.0/16)"
            case .hostBitsSet(let given, let network):
                return "\(given) has host bits set for this prefix; the network address is \(network)"
            }
        }
    }
}
