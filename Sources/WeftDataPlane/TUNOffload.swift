// TUN segmentation offload (issue 12, item 1): with IFF_VNET_HDR and TUN_F_CSUM | TUN_F_TSO4
// the kernel hands the TUN thread TCP/IPv4 "super-segments" of up to 64 KiB with the TCP
// checksum left partial, each behind a virtio_net_hdr. The functions here are pure (no I/O, no
// allocation): they parse that header, finish a partial checksum, and cut a super-segment into
// packets of at most `gsoSize` payload bytes with their own IPv4 and TCP headers and complete
// checksums — what the kernel's own GSO would have put on the wire. docs/dataplane.md §2.

/// `struct virtio_net_hdr` (10 bytes, host byte order: a TUN device without TUNSETVNETLE/BE
/// uses the legacy native-endian layout).
public struct VirtioNetHeader: Equatable, Sendable {
    public static let byteCount = 10
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `checksumStart + checksumOffset` holds
    /// only the pseudo-header sum; the rest is ours to add.
    public static let needsChecksum: UInt8 = 1
    /// `VIRTIO_NET_HDR_GSO_*` without the ECN bit (0x80, never enabled here).
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1

    public var flags: UInt8
    public var gsoType: UInt8
    public var headerLength: UInt16
    public var gsoSize: UInt16
    public var checksumStart: UInt16
    public var checksumOffset: UInt16

    public init(flags: UInt8 = 0, gsoType: UInt8 = 0, headerLength: UInt16 = 0, gsoSize: UInt16 = 0,
                checksumStart: UInt16 = 0, checksumOffset: UInt16 = 0) {
        self.flags = flags; self.gsoType = gsoType; self.headerLength = headerLength
        self.gsoSize = gsoSize; self.checksumStart = checksumStart; self.checksumOffset = checksumOffset
    }

    /// The header at the start of `bytes`; nil when fewer than 10 bytes.
    public init?(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count >= Self.byteCount else { return nil }
        flags = bytes[0]
        gsoType = bytes[1]
        headerLength = bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self)
        gsoSize = bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        checksumStart = bytes.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        checksumOffset = bytes.loadUnaligned(fromByteOffset: 8, as: UInt16.self)
    }

    /// The 10 bytes of this header, as the kernel lays them out.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: Self.byteCount)
        out[0] = flags; out[1] = gsoType
        out.withUnsafeMutableBytes { b in
            b.storeBytes(of: headerLength, toByteOffset: 2, as: UInt16.self)
            b.storeBytes(of: gsoSize, toByteOffset: 4, as: UInt16.self)
            b.storeBytes(of: checksumStart, toByteOffset: 6, as: UInt16.self)
            b.storeBytes(of: checksumOffset, toByteOffset: 8, as: UInt16.self)
        }
        return out
    }
}

public enum TUNOffload {
    /// The 32-bit ones'-complement sum of `bytes` read as big-endian 16-bit words (an odd last
    /// byte padded with zero), added to `initial`; fold with ``fold(_:)``.
    @inlinable
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var i = 0
        let n = bytes.count
        // Big-endian 32-bit words into a 64-bit accumulator: the folded result equals the
        // 16-bit word sum (RFC 1071, "deferred carries").
        while i + 4 <= n {
            acc &+= UInt64(UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self)))
            i += 4
        }
        if i + 2 <= n {
            acc &+= UInt64(bytes[i]) << 8 | UInt64(bytes[i + 1])
            i += 2
        }
        if i < n { acc &+= UInt64(bytes[i]) << 8 }
        return acc
    }

    /// Folds a sum to 16 bits with end-around carry (not complemented).
    @inlinable
    public static func fold(_ sum: UInt64) -> UInt16 {
        var s = sum
        while s >> 16 != 0 { s = (s & 0xffff) &+ (s >> 16) }
        return UInt16(truncatingIfNeeded: s)
    }

    /// Finishes a checksum the kernel left partial (`needsChecksum`): the complement of the sum
    /// from `start` to the end — the field at `start + offset` already holds the pseudo-header
    /// sum — stored big-endian at `start + offset`. False (nothing written) when the field lies
    /// outside the packet.
    public static func completeChecksum(_ packet: UnsafeMutableRawBufferPointer, start: Int, offset: Int) -> Bool {
        guard start >= 0, offset >= 0, start + offset + 2 <= packet.count else { return false }
        let s = sum(UnsafeRawBufferPointer(rebasing: packet[start...]))
        store16(packet, start + offset, ~fold(s))
        return true
    }

    /// Cuts a TCP/IPv4 super-segment into packets of at most `gsoSize` TCP payload bytes, each
    /// built in `scratch` and handed to `body` (valid only during the call): the IPv4 header
    /// with its total length, an ID one higher per segment and its checksum; the TCP header with
    /// its sequence number advanced by the bytes before it, FIN and PSH only on the last
    /// segment, CWR only on the first, and a complete checksum (computed afresh, whatever the
    /// field held). Returns the number of packets, or nil — and calls `body` for none — when the
    /// packet is not one: not IPv4/TCP, a fragment, headers longer than the packet, `gsoSize`
    /// zero, or a segment that would not fit `scratch`.
    public static func segmentTCPv4(_ packet: UnsafeRawBufferPointer, gsoSize: Int, scratch: UnsafeMutableRawBufferPointer,
                                    _ body: (UnsafeRawBufferPointer) -> Void) -> Int? {
        guard packet.count >= 40, packet[0] >> 4 == 4, packet[9] == 6, gsoSize > 0 else { return nil }
        let ipHeader = Int(packet[0] & 0x0f) * 4
        guard ipHeader >= 20, ipHeader + 20 <= packet.count else { return nil }
        let fragment = load16(packet, 6)
        guard fragment & 0x3fff == 0 else { return nil }  // MF set or an offset: a fragment
        let tcpHeader = Int(packet[ipHeader + 12] >> 4) * 4
        let headers = ipHeader + tcpHeader
        guard tcpHeader >= 20, headers <= packet.count, headers + min(gsoSize, packet.count - headers) <= scratch.count else { return nil }
        let payload = packet.count - headers
        let id0 = load16(packet, 4)
        let seq0 = load32(packet, ipHeader + 4)
        let flags0 = packet[ipHeader + 13]
        let pseudo = sum(UnsafeRawBufferPointer(rebasing: packet[12..<20]), initial: 6)  // source, destination, protocol 6

        let count = payload == 0 ? 1 : (payload + gsoSize - 1) / gsoSize
        let base = scratch.baseAddress!
        base.copyMemory(from: packet.baseAddress!, byteCount: headers)
        for i in 0..<count {
            let offset = i * gsoSize
            let length = min(gsoSize, payload - offset)
            if length > 0 { (base + headers).copyMemory(from: packet.baseAddress! + headers + offset, byteCount: length) }
            let segment = UnsafeMutableRawBufferPointer(start: base, count: headers + length)
            // IPv4: length, ID, checksum.
            store16(segment, 2, UInt16(headers + length))
            store16(segment, 4, id0 &+ UInt16(truncatingIfNeeded: i))
            store16(segment, 10, 0)
            store16(segment, 10, ~fold(sum(UnsafeRawBufferPointer(rebasing: segment[0..<ipHeader]))))
            // TCP: sequence, flags, checksum.
            store32(segment, ipHeader + 4, seq0 &+ UInt32(truncatingIfNeeded: offset))
            var flags = flags0
            if i + 1 < count { flags &= ~0x09 }  // FIN, PSH only on the last
            if i > 0 { flags &= ~0x80 }          // CWR only on the first
            segment[ipHeader + 13] = flags
            store16(segment, ipHeader + 16, 0)
            let tcpLength = UInt64(tcpHeader + length)
            let s = sum(UnsafeRawBufferPointer(rebasing: segment[ipHeader...]), initial: pseudo &+ tcpLength)
            store16(segment, ipHeader + 16, ~fold(s))
            body(UnsafeRawBufferPointer(segment))
        }
        return count
    }

    @inline(__always)
    static func load16(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt16 { UInt16(p[at]) << 8 | UInt16(p[at + 1]) }
    @inline(__always)
    static func load32(_ p: UnsafeRawBufferPointer, _ at: Int) -> UInt32 {
        UInt32(p[at]) << 24 | UInt32(p[at + 1]) << 16 | UInt32(p[at + 2]) << 8 | UInt32(p[at + 3])
    }
    @inline(__always)
    static func store16(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ v: UInt16) {
        p[at] = UInt8(v >> 8); p[at + 1] = UInt8(truncatingIfNeeded: v)
    }
    @inline(__always)
    static func store32(_ p: UnsafeMutableRawBufferPointer, _ at: Int, _ v: UInt32) {
        p[at] = UInt8(v >> 24); p[at + 1] = UInt8(truncatingIfNeeded: v >> 16)
        p[at + 2] = UInt8(truncatingIfNeeded: v >> 8); p[at + 3] = UInt8(truncatingIfNeeded: v)
    }
}
