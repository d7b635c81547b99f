import WeftCore

/// How the receive thread treats one UDP datagram, decided from its first 16 bytes without
/// copying (see docs/protocol.md: byte 0 version 1, byte 1 kind; kind 7 = tunnel data).
public enum PacketClass: Equatable, Sendable {
    /// A well-formed kind-7 header: look the receiver index up in the installed sessions.
    case data(receiverIndex: UInt32, counter: UInt64)
    /// Kind 7 with a bad header (reserved bytes set, shorter than header + tag): dropped as
    /// `malformed`.
    case malformedData
    /// Everything else (gossip 1–3, handshake/cookie 4–6, IPAM 16, unknown kinds, other
    /// versions, empty datagrams): handed to the delegate unchanged.
    case control

    /// Classifies a datagram.
    @inline(__always)
    public static func classify(_ d: UnsafeRawBufferPointer) -> PacketClass {
        guard d.count >= 2, d[0] == Tunnel.version, d[1] == Tunnel.MessageKind.data.rawValue else { return .control }
        guard d.count >= Tunnel.DataHeader.minPacketByteCount, d.count <= Tunnel.DataHeader.maxPacketByteCount,
              d[2] == 0, d[3] == 0 else { return .malformedData }
        let index = UInt32(d[4]) << 24 | UInt32(d[5]) << 16 | UInt32(d[6]) << 8 | UInt32(d[7])
        var c: UInt64 = 0
        for i in 8..<16 { c = c << 8 | UInt64(d[i]) }
        return .data(receiverIndex: index, counter: c)
    }

    public static func classify(_ d: [UInt8]) -> PacketClass { d.withUnsafeBytes { classify($0) } }
}

/// What the TUN thread and the receive thread check on inner packets.
public enum InnerPacket {
    /// Result of checking one inner packet read from or written to the TUN device.
    public enum Check: Equatable, Sendable {
        /// A plausible IPv4 packet with this destination (host order).
        case ipv4(destination: UInt32)
        /// Version nibble is not 4 (IPv6 or garbage): dropped as `not-ipv4`.
        case notIPv4
        /// IPv4 with a header or total length that does not fit: dropped as `malformed`.
        case malformed
    }

    /// Checks the IPv4 header: version 4, IHL ≥ 5, header within the packet, total length
    /// between the header length and the packet length.
    @inline(__always)
    public static func check(_ p: UnsafeRawBufferPointer) -> Check {
        guard p.count >= 1, p[0] >> 4 == 4 else { return .notIPv4 }
        guard p.count >= 20 else { return .malformed }
        let ihl = Int(p[0] & 0x0f) * 4
        let total = Int(p[2]) << 8 | Int(p[3])
        guard ihl >= 20, total >= ihl, total <= p.count else { return .malformed }
        return .ipv4(destination: UInt32(p[16]) << 24 | UInt32(p[17]) << 16 | UInt32(p[18]) << 8 | UInt32(p[19]))
    }

    public static func check(_ p: [UInt8]) -> Check { p.withUnsafeBytes { check($0) } }
}
