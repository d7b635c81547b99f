/// Why a wire decoder refused its input. Decoders never trap on remote data.
public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The input ended before the field named here.
    case truncated(String)
    /// A field held a value outside its allowed set.
    case invalid(String)
    /// The version byte names a format this node does not speak.
    case unsupportedVersion(UInt8)
    /// A message type number that is not assigned.
    case unknownType(UInt8)
    /// The input is larger than the format allows.
    case oversized(String)
    /// Bytes were left over after a complete message.
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .truncated(let f): return "truncated at \(f)"
        case .invalid(let f): return "invalid \(f)"
        case .unsupportedVersion(let v): return "unsupported version \(v)"
        case .unknownType(let t): return "unknown message type \(t)"
        case .oversized(let f): return "oversized \(f)"
        case .trailingBytes(let n): return "\(n) trailing bytes"
        }
    }
}

/// Appends big-endian fields to a byte array.
public struct ByteWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { bytes.append(UInt8(v >> 8)); bytes.append(UInt8(v & 0xff)) }
    public mutating func u32(_ v: UInt32) { for s in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt32(s))) } }
    public mutating func u64(_ v: UInt64) { for s in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: v >> UInt64(s))) } }
    public mutating func raw<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }

    /// A byte string of at most 255 bytes, prefixed with its length (one byte).
    public mutating func shortBytes<C: Collection>(_ b: C) where C.Element == UInt8 {
        precondition(b.count <= 255, "shortBytes longer than 255")
        u8(UInt8(b.count)); raw(b)
    }

    /// A byte string of at most 65535 bytes, prefixed with its length (two bytes).
    public mutating func longBytes<C: Collection>(_ b: C) where C.Element == UInt8 {
        precondition(b.count <= 65535, "longBytes longer than 65535")
        u16(UInt16(b.count)); raw(b)
    }

    public mutating func nodeID(_ id: NodeID) { u64(id.high); u64(id.low) }

    /// Address family byte (4 or 6), address bytes, port.
    public mutating func endpoint(_ e: Endpoint) {
        switch e.address {
        case .v4(let a): u8(4); u32(a)
        case .v6(let b): u8(6); raw(b)
        }
        u16(e.port)
    }
}

/// Reads big-endian fields from a byte slice, throwing `WireError` instead of trapping.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var offset: Int

    public init(_ bytes: [UInt8], offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset >= bytes.count }

    private mutating func take(_ n: Int, _ field: String) throws(WireError) -> ArraySlice<UInt8> {
        guard n >= 0, remaining >= n else { throw .truncated(field) }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    public mutating func u8(_ field: String) throws(WireError) -> UInt8 { try take(1, field).first! }
    public mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        try take(2, field).reduce(0) { $0 << 8 | UInt16($1) }
    }
    public mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        try take(4, field).reduce(0) { $0 << 8 | UInt32($1) }
    }
    public mutating func u64(_ field: String) throws(WireError) -> UInt64 {
        try take(8, field).reduce(0) { $0 << 8 | UInt64($1) }
    }
    public mutating func raw(_ n: Int, _ field: String) throws(WireError) -> [UInt8] { Array(try take(n, field)) }
    public mutating func shortBytes(_ field: String) throws(WireError) -> [UInt8] {
        let n = Int(try u8(field)); return try raw(n, field)
    }
    public mutating func longBytes(_ field: String) throws(WireError) -> [UInt8] {
        let n = Int(try u16(field)); return try raw(n, field)
    }
    public mutating func nodeID(_ field: String) throws(WireError) -> NodeID {
        NodeID(high: try u64(field), low: try u64(field))
    }
    public mutating func endpoint(_ field: String) throws(WireError) -> Endpoint {
        let family = try u8(field)
        let address: IPAddress
        switch family {
        case 4: address = .v4(try u32(field))
        case 6: address = .v6(try raw(16, field))
        default: throw .invalid("\(field) address family \(family)")
        }
        let port = try u16(field)
        guard port != 0 else { throw .invalid("\(field) port 0") }
        return Endpoint(address: address, port: port)
    }
    /// A UTF-8 string stored as `shortBytes`.
    public mutating func string(_ field: String) throws(WireError) -> String {
        let b = try shortBytes(field)
        guard let s = String(validating: b, as: UTF8.self) else { throw .invalid("\(field) is not UTF-8") }
        return s
    }

    /// Throws unless every byte has been consumed.
    public func expectEnd() throws(WireError) {
        if remaining != 0 { throw .trailingBytes(remaining) }
    }
}
