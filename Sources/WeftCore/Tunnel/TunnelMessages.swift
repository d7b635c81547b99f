// Packet codecs for the tunnel. All integers big-endian; every message starts with the
// shared 4-byte header. Layouts are also drawn in docs/tunnel.md and docs/protocol.md §5.
//
//  common header (4 bytes)
//  0       1       2               4
//  +-------+-------+---------------+
//  | ver=1 | kind  | reserved = 0  |   reserved must be zero (rejected otherwise), so later
//  +-------+-------+---------------+   versions can use it for flags
//
//  kind 4  handshake initiation (148 bytes)
//  0      4              8                  40                        88                 116      132      148
//  | hdr  | sender index | ephemeral (32)   | AEAD(static pub) 32+16  | AEAD(tstamp) 12+16 | mac1   | mac2   |
//
//  kind 5  handshake response (92 bytes)
//  0      4              8                12                44                60       76       92
//  | hdr  | sender index | receiver index | ephemeral (32)  | AEAD(empty) 16  | mac1   | mac2   |
//
//  kind 6  cookie reply (64 bytes)
//  0      4                8                        32                              64
//  | hdr  | receiver index | nonce (24, random)     | AEAD(cookie 16) 16+16         |
//
//  kind 7  data (16 + n + 16 bytes)
//  0      4                8                         16                       16+n       16+n+16
//  | hdr  | receiver index | counter (u64)           | ChaCha20(inner packet) | Poly1305 tag |
//  overhead 32 bytes; the 16-byte header is the AEAD's associated data.

extension Tunnel {
    /// Bytes a data packet adds to the inner IP packet: 16 header + 16 tag.
    public static let dataOverhead = DataHeader.byteCount + tagByteCount
    /// Largest inner packet a data message may carry (an IPv4/IPv6 datagram never exceeds it).
    public static let maxInnerPacket = 65_535

    /// TUN MTU for an underlay path MTU: `underlayMTU − IP header − UDP header (8) − 32`.
    /// IPv4 underlay: 1500 → 1440; IPv6 underlay: 1500 → 1420.
    public static func tunMTU(underlayMTU: Int, ipv6Underlay: Bool) -> Int {
        underlayMTU - (ipv6Underlay ? 40 : 20) - 8 - dataOverhead
    }

    static func writeHeader(_ w: inout ByteWriter, _ kind: MessageKind) {
        w.u8(version); w.u8(kind.rawValue); w.u16(0)
    }

    static func readHeader(_ r: inout ByteReader, expect kind: MessageKind) throws(WireError) {
        let v = try r.u8("version")
        guard v == version else { throw .unsupportedVersion(v) }
        let k = try r.u8("kind")
        guard let parsed = MessageKind(rawValue: k) else { throw .unknownType(k) }
        guard parsed == kind else { throw .invalid("kind \(k), expected \(kind.rawValue)") }
        guard try r.u16("reserved") == 0 else { throw .invalid("reserved bytes") }
    }

    static func checkSize(_ bytes: [UInt8], _ size: Int, _ name: String) throws(WireError) {
        if bytes.count < size { throw .truncated(name) }
        if bytes.count > size { throw .oversized(name) }
    }

    /// Handshake initiation (kind 4, 148 bytes).
    public struct HandshakeInitiation: Equatable, Sendable {
        public static let byteCount = 148
        /// MAC1 covers bytes `0..<mac1Offset`, MAC2 covers `0..<mac2Offset`.
        public static let mac1Offset = 116
        public static let mac2Offset = 132
        public static let encryptedStaticByteCount = PublicKey.byteCount + tagByteCount       // 48
        public static let encryptedTimestampByteCount = Timestamp.byteCount + tagByteCount    // 28

        public var senderIndex: UInt32
        public var ephemeral: PublicKey
        public var encryptedStatic: [UInt8]
        public var encryptedTimestamp: [UInt8]
        public var mac1: [UInt8]
        public var mac2: [UInt8]

        public init(senderIndex: UInt32, ephemeral: PublicKey, encryptedStatic: [UInt8], encryptedTimestamp: [UInt8],
                    mac1: [UInt8] = [UInt8](repeating: 0, count: 16), mac2: [UInt8] = [UInt8](repeating: 0, count: 16)) {
            self.senderIndex = senderIndex; self.ephemeral = ephemeral
            self.encryptedStatic = encryptedStatic; self.encryptedTimestamp = encryptedTimestamp
            self.mac1 = mac1; self.mac2 = mac2
        }

        public var encoded: [UInt8] {
            var w = ByteWriter(capacity: Self.byteCount)
            writeHeader(&w, .handshakeInitiation)
            w.u32(senderIndex); w.raw(ephemeral.bytes); w.raw(encryptedStatic); w.raw(encryptedTimestamp)
            w.raw(mac1); w.raw(mac2)
            precondition(w.count == Self.byteCount, "HandshakeInitiation fields have wrong sizes")
            return w.bytes
        }

        public init(decoding bytes: [UInt8]) throws(WireError) {
            try checkSize(bytes, Self.byteCount, "handshake initiation")
            var r = ByteReader(bytes)
            try readHeader(&r, expect: .handshakeInitiation)
            senderIndex = try r.u32("sender index")
            ephemeral = PublicKey(bytes: try r.raw(32, "ephemeral"))!
            encryptedStatic = try r.raw(Self.encryptedStaticByteCount, "encrypted static")
            encryptedTimestamp = try r.raw(Self.encryptedTimestampByteCount, "encrypted timestamp")
            mac1 = try r.raw(16, "mac1"); mac2 = try r.raw(16, "mac2")
            try r.expectEnd()
        }
    }

    /// Handshake response (kind 5, 92 bytes).
    public struct HandshakeResponse: Equatable, Sendable {
        public static let byteCount = 92
        public static let mac1Offset = 60
        public static let mac2Offset = 76

        public var senderIndex: UInt32
        public var receiverIndex: UInt32
        public var ephemeral: PublicKey
        public var encryptedNothing: [UInt8]
        public var mac1: [UInt8]
        public var mac2: [UInt8]

        public init(senderIndex: UInt32, receiverIndex: UInt32, ephemeral: PublicKey, encryptedNothing: [UInt8],
                    mac1: [UInt8] = [UInt8](repeating: 0, count: 16), mac2: [UInt8] = [UInt8](repeating: 0, count: 16)) {
            self.senderIndex = senderIndex; self.receiverIndex = receiverIndex; self.ephemeral = ephemeral
            self.encryptedNothing = encryptedNothing; self.mac1 = mac1; self.mac2 = mac2
        }

        public var encoded: [UInt8] {
            var w = ByteWriter(capacity: Self.byteCount)
            writeHeader(&w, .handshakeResponse)
            w.u32(senderIndex); w.u32(receiverIndex); w.raw(ephemeral.bytes); w.raw(encryptedNothing)
            w.raw(mac1); w.raw(mac2)
            precondition(w.count == Self.byteCount, "HandshakeResponse fields have wrong sizes")
            return w.bytes
        }

        public init(decoding bytes: [UInt8]) throws(WireError) {
            try checkSize(bytes, Self.byteCount, "handshake response")
            var r = ByteReader(bytes)
            try readHeader(&r, expect: .handshakeResponse)
            senderIndex = try r.u32("sender index")
            receiverIndex = try r.u32("receiver index")
            ephemeral = PublicKey(bytes: try r.raw(32, "ephemeral"))!
            encryptedNothing = try r.raw(tagByteCount, "encrypted nothing")
            mac1 = try r.raw(16, "mac1"); mac2 = try r.raw(16, "mac2")
            try r.expectEnd()
        }
    }

    /// Cookie reply (kind 6, 64 bytes): sent instead of a response when the responder is
    /// under load and the initiation's MAC2 is missing or stale.
    public struct CookieReply: Equatable, Sendable {
        public static let byteCount = 64
        public static let nonceByteCount = 24

        public var receiverIndex: UInt32
        public var nonce: [UInt8]
        public var encryptedCookie: [UInt8]

        public init(receiverIndex: UInt32, nonce: [UInt8], encryptedCookie: [UInt8]) {
            self.receiverIndex = receiverIndex; self.nonce = nonce; self.encryptedCookie = encryptedCookie
        }

        public var encoded: [UInt8] {
            var w = ByteWriter(capacity: Self.byteCount)
            writeHeader(&w, .cookieReply)
            w.u32(receiverIndex); w.raw(nonce); w.raw(encryptedCookie)
            precondition(w.count == Self.byteCount, "CookieReply fields have wrong sizes")
            return w.bytes
        }

        public init(decoding bytes: [UInt8]) throws(WireError) {
            try checkSize(bytes, Self.byteCount, "cookie reply")
            var r = ByteReader(bytes)
            try readHeader(&r, expect: .cookieReply)
            receiverIndex = try r.u32("receiver index")
            nonce = try r.raw(Self.nonceByteCount, "nonce")
            encryptedCookie = try r.raw(macByteCount + tagByteCount, "encrypted cookie")
            try r.expectEnd()
        }
    }

    /// The clear 16-byte header of a data packet (kind 7). It is the AEAD's associated data.
    public struct DataHeader: Equatable, Sendable {
        public static let byteCount = 16
        /// Smallest data packet: header + tag (an empty keepalive).
        public static let minPacketByteCount = byteCount + tagByteCount
        /// Largest data packet accepted: header + 65,535-byte inner packet + tag.
        public static let maxPacketByteCount = byteCount + maxInnerPacket + tagByteCount

        public var receiverIndex: UInt32
        public var counter: UInt64

        public init(receiverIndex: UInt32, counter: UInt64) {
            self.receiverIndex = receiverIndex
            self.counter = counter
        }

        /// Writes the 16 header bytes at the start of `buffer` (at least 16 bytes).
        public func write(to buffer: UnsafeMutableRawBufferPointer) {
            precondition(buffer.count >= Self.byteCount, "DataHeader.write: buffer too small")
            buffer[0] = version; buffer[1] = MessageKind.data.rawValue; buffer[2] = 0; buffer[3] = 0
            for i in 0..<4 { buffer[4 + i] = UInt8(truncatingIfNeeded: receiverIndex >> UInt32(24 - 8 * i)) }
            for i in 0..<8 { buffer[8 + i] = UInt8(truncatingIfNeeded: counter >> UInt64(56 - 8 * i)) }
        }

        /// Parses the header of a whole data datagram and checks its size bounds, without
        /// copying. Garbage, short or oversized input throws; nothing traps.
        public init(parsing packet: UnsafeRawBufferPointer) throws(WireError) {
            guard packet.count >= 4 else { throw .truncated("data header") }
            guard packet[0] == version else { throw .unsupportedVersion(packet[0]) }
            guard let k = MessageKind(rawValue: packet[1]) else { throw .unknownType(packet[1]) }
            guard k == .data else { throw .invalid("kind \(packet[1]), expected \(MessageKind.data.rawValue)") }
            guard packet[2] == 0 && packet[3] == 0 else { throw .invalid("reserved bytes") }
            guard packet.count >= Self.minPacketByteCount else { throw .truncated("data packet") }
            guard packet.count <= Self.maxPacketByteCount else { throw .oversized("data packet") }
            var index: UInt32 = 0
            for i in 4..<8 { index = index << 8 | UInt32(packet[i]) }
            var c: UInt64 = 0
            for i in 8..<16 { c = c << 8 | UInt64(packet[i]) }
            receiverIndex = index
            counter = c
        }

        public init(parsing packet: [UInt8]) throws(WireError) {
            let result: Result<DataHeader, WireError> = packet.withUnsafeBytes { p in
                do throws(WireError) { return .success(try DataHeader(parsing: p)) } catch { return .failure(error) }
            }
            self = try result.get()
        }
    }
}
