// Membership wire format, version 2 (version 1 had no signatures; not spoken any more). Append-only: type numbers never change, new types get new
// numbers, a new layout gets a new version byte. All integers big-endian.
//
// Every datagram (UDP, plaintext before sealing, ≤ maxPayloadBytes):
//
//    0               1               2
//   +---------------+---------------+------------------ - - -+---------------------- - - -+
//   | version = 2   | type          | type-specific header   | piggyback                 |
//   +---------------+---------------+------------------ - - -+---------------------- - - -+
//
//   type 1 ping      | seq u32 | target id (16) | source id (16) |
//   type 2 pingReq   | seq u32 | target id (16) | target endpoint | source id (16) | flags u8 (bit 0: want nack) |
//   type 3 ack       | seq u32 | source id (16) |
//   type 4 nack      | seq u32 | source id (16) |
//   type 5 gossip    | source id (16) |
//
// Piggyback (every datagram type ends with it):
//
//   | update count u8 | update × count | broadcast count u8 | broadcast × count |
//
//   update:    | state u8 | incarnation u64 | id (16) | from (16) | endpoint | name len u8 | name ≤ 63 | public key (32) |
//              | record signature (64) | state signature (64, absent for alive) |
//              state: 0 alive, 1 suspect, 2 dead, 3 left; `from` is the accuser for suspect/dead,
//              the member itself for alive/left. Record signature: the member's Ed25519 over
//              Claims.record; state signature: `from`'s over Claims.accusation (suspect/dead) or
//              the member's over Claims.left (left).
//   endpoint:  | family u8 (4 or 6) | address (4 or 16) | port u16 ≠ 0 |
//   broadcast: | origin id (16) | length u16 | payload |
//
// Push-pull (TCP, one message each way, ≤ maxPushPullBytes):
//
//   | version = 2 | type 6 request / 7 reply | source id (16) | flags u8 (bit 0: join) |
//   | member count u32 | update × count | app state length u32 | app state |

extension Membership {
    /// Wire version spoken by this code.
    public static let wireVersion: UInt8 = 2

    /// Message type numbers. Never renumber; only append.
    public enum MessageType: UInt8, Sendable, CaseIterable {
        case ping = 1
        case pingReq = 2
        case ack = 3
        case nack = 4
        case gossip = 5
        case pushPullRequest = 6
        case pushPullReply = 7
    }

    /// One member's state as gossiped (the `update` record above).
    public struct Update: Sendable, Equatable {
        public var state: MemberState
        public var incarnation: UInt64
        public var id: NodeID
        /// Who declared this state: the accuser for suspect/dead, the member itself otherwise.
        public var from: NodeID
        public var address: Endpoint
        public var name: String
        public var publicKey: [UInt8]
        /// The member's signature over `Claims.record(of:)` (64 bytes on the wire).
        public var signature: [UInt8]
        /// `from`'s signature over `Claims.accusation` (suspect, dead) or `Claims.left` (left);
        /// not on the wire (empty) for alive.
        public var stateSignature: [UInt8]

        public init(state: MemberState, incarnation: UInt64, id: NodeID, from: NodeID,
                    address: Endpoint, name: String, publicKey: [UInt8],
                    signature: [UInt8] = [], stateSignature: [UInt8] = []) {
            self.state = state; self.incarnation = incarnation; self.id = id; self.from = from
            self.address = address; self.name = name; self.publicKey = publicKey
            self.signature = signature; self.stateSignature = stateSignature
        }

        /// The member's record with its stored state claim (accuser and signature).
        public init(_ m: Member) {
            self.init(state: m.state, incarnation: m.incarnation, id: m.id,
                      from: m.state == .alive ? m.id : (m.stateBy ?? m.id),
                      address: m.address, name: m.name, publicKey: m.publicKey,
                      signature: m.recordSignature, stateSignature: m.state == .alive ? [] : m.stateSignature)
        }

        /// The member's record with `from` as the claimant (its signature, if any, is the stored one).
        public init(_ m: Member, from: NodeID) {
            self.init(m)
            self.from = from
        }

        /// Wire bytes of one signature.
        public static let signatureBytes = 64
        /// The smallest update on the wire (alive, IPv4, empty name).
        public static let minEncodedSize = 1 + 8 + 16 + 16 + 7 + 1 + publicKeyBytes + signatureBytes

        public static let maxNameBytes = 63
        public static let publicKeyBytes = 32

        /// Bytes this record takes on the wire.
        public var encodedSize: Int {
            let ep = address.address.isV4 ? 7 : 19
            return 1 + 8 + 16 + 16 + ep + 1 + min(name.utf8.count, Update.maxNameBytes) + Update.publicKeyBytes
                + Update.signatureBytes + (state == .alive ? 0 : Update.signatureBytes)
        }
    }

    /// An application broadcast carried in the piggyback section.
    public struct AppBroadcast: Sendable, Equatable {
        public var origin: NodeID
        public var payload: [UInt8]
        public init(origin: NodeID, payload: [UInt8]) { self.origin = origin; self.payload = payload }
        public var encodedSize: Int { 16 + 2 + payload.count }
    }

    /// Updates and broadcasts riding on a datagram.
    public struct Piggyback: Sendable, Equatable {
        public var updates: [Update]
        public var broadcasts: [AppBroadcast]
        public init(updates: [Update] = [], broadcasts: [AppBroadcast] = []) {
            self.updates = updates; self.broadcasts = broadcasts
        }
        public static let maxItems = 255
    }

    /// A decoded datagram.
    public enum Message: Sendable, Equatable {
        case ping(seq: UInt32, target: NodeID, source: NodeID, Piggyback)
        case pingReq(seq: UInt32, target: NodeID, targetAddress: Endpoint, source: NodeID, wantNack: Bool, Piggyback)
        case ack(seq: UInt32, source: NodeID, Piggyback)
        case nack(seq: UInt32, source: NodeID, Piggyback)
        case gossip(source: NodeID, Piggyback)

        /// The node id the sender put in the message (authenticated only by the cluster key).
        public var source: NodeID {
            switch self {
            case .ping(_, _, let s, _), .pingReq(_, _, _, let s, _, _), .ack(_, let s, _), .nack(_, let s, _), .gossip(let s, _): return s
            }
        }

        public var piggyback: Piggyback {
            switch self {
            case .ping(_, _, _, let p), .pingReq(_, _, _, _, _, let p), .ack(_, _, let p), .nack(_, _, let p),
                 .gossip(_, let p):
                return p
            }
        }

        public var type: MessageType {
            switch self {
            case .ping: return .ping
            case .pingReq: return .pingReq
            case .ack: return .ack
            case .nack: return .nack
            case .gossip: return .gossip
            }
        }
    }

    /// A decoded push-pull message (TCP).
    public struct PushPull: Sendable, Equatable {
        public var isReply: Bool
        public var source: NodeID
        public var join: Bool
        public var members: [Update]
        public var appState: [UInt8]
        public init(isReply: Bool, source: NodeID, join: Bool, members: [Update], appState: [UInt8]) {
            self.isReply = isReply; self.source = source; self.join = join
            self.members = members; self.appState = appState
        }
    }

    /// Encoders and decoders for the format drawn at the top of this file.
    public enum Codec {
        // MARK: encoding

        public static func encode(_ m: Message) -> [UInt8] {
            var w = ByteWriter(capacity: 256)
            w.u8(wireVersion)
            w.u8(m.type.rawValue)
            switch m {
            case .ping(let seq, let target, let source, _):
                w.u32(seq); w.nodeID(target); w.nodeID(source)
            case .pingReq(let seq, let target, let address, let source, let wantNack, _):
                w.u32(seq); w.nodeID(target); w.endpoint(address); w.nodeID(source); w.u8(wantNack ? 1 : 0)
            case .ack(let seq, let source, _), .nack(let seq, let source, _):
                w.u32(seq); w.nodeID(source)
            case .gossip(let source, _):
                w.nodeID(source)
            }
            let p = m.piggyback
            w.u8(UInt8(min(p.updates.count, Piggyback.maxItems)))
            for u in p.updates.prefix(Piggyback.maxItems) { writeUpdate(u, &w) }
            w.u8(UInt8(min(p.broadcasts.count, Piggyback.maxItems)))
            for b in p.broadcasts.prefix(Piggyback.maxItems) {
                w.nodeID(b.origin)
                w.longBytes(b.payload.prefix(65535))
            }
            return w.bytes
        }

        /// Size of `m` encoded, without its piggyback items (the fixed part of the budget).
        public static func headerSize(_ m: Message) -> Int {
            switch m.type {
            case .ping: return 2 + 4 + 16 + 16 + 2
            case .pingReq:
                if case .pingReq(_, _, let a, _, _, _) = m { return 2 + 4 + 16 + (a.address.isV4 ? 7 : 19) + 16 + 1 + 2 }
                return 0
            case .ack, .nack: return 2 + 4 + 16 + 2
            case .gossip: return 2 + 16 + 2
            case .pushPullRequest, .pushPullReply: return 0
            }
        }

        /// The largest fixed part of any datagram (a pingReq to an IPv6 target).
        public static let maxHeaderSize = 2 + 4 + 16 + 19 + 16 + 1 + 2

        public static func encode(_ p: PushPull) -> [UInt8] {
            var w = ByteWriter(capacity: 64 + p.members.count * 100 + p.appState.count)
            w.u8(wireVersion)
            w.u8(p.isReply ? MessageType.pushPullReply.rawValue : MessageType.pushPullRequest.rawValue)
            w.nodeID(p.source)
            w.u8(p.join ? 1 : 0)
            w.u32(UInt32(p.members.count))
            for u in p.members { writeUpdate(u, &w) }
            w.u32(UInt32(p.appState.count))
            w.raw(p.appState)
            return w.bytes
        }

        static func writeUpdate(_ u: Update, _ w: inout ByteWriter) {
            w.u8(u.state.rawValue)
            w.u64(u.incarnation)
            w.nodeID(u.id)
            w.nodeID(u.from)
            w.endpoint(u.address)
            w.shortBytes(Update.truncatedName(u.name))
            var key = u.publicKey.prefix(Update.publicKeyBytes).map { $0 }
            while key.count < Update.publicKeyBytes { key.append(0) }  // never valid; identity check rejects it
            w.raw(key)
            writeSignature(u.signature, &w)  // a missing one goes out as zeros, which never verify
            if u.state != .alive { writeSignature(u.stateSignature, &w) }
        }

        static func writeSignature(_ s: [UInt8], _ w: inout ByteWriter) {
            var sig = s.prefix(Update.signatureBytes).map { $0 }
            while sig.count < Update.signatureBytes { sig.append(0) }
            w.raw(sig)
        }

        // MARK: decoding

        /// Decodes one datagram. Throws `WireError` for anything but a complete, valid message.
        public static func decodeMessage(_ bytes: [UInt8], maxBytes: Int = 65_535) throws(WireError) -> Message {
            guard bytes.count <= maxBytes else { throw .oversized("datagram of \(bytes.count) bytes") }
            var r = ByteReader(bytes)
            let version = try r.u8("version")
            guard version == wireVersion else { throw .unsupportedVersion(version) }
            let rawType = try r.u8("type")
            guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
            let m: Message
            switch type {
            case .ping:
                let seq = try r.u32("seq"), target = try r.nodeID("target"), source = try r.nodeID("source")
                m = .ping(seq: seq, target: target, source: source, try readPiggyback(&r))
            case .pingReq:
                let seq = try r.u32("seq"), target = try r.nodeID("target")
                let address = try r.endpoint("target endpoint"), source = try r.nodeID("source")
                let flags = try r.u8("flags")
                guard flags & ~1 == 0 else { throw .invalid("pingReq flags \(flags)") }
                m = .pingReq(seq: seq, target: target, targetAddress: address, source: source,
                             wantNack: flags & 1 == 1, try readPiggyback(&r))
            case .ack:
                let seq = try r.u32("seq"), source = try r.nodeID("source")
                m = .ack(seq: seq, source: source, try readPiggyback(&r))
            case .nack:
                let seq = try r.u32("seq"), source = try r.nodeID("source")
                m = .nack(seq: seq, source: source, try readPiggyback(&r))
            case .gossip:
                m = .gossip(source: try r.nodeID("source"), try readPiggyback(&r))
            case .pushPullRequest, .pushPullReply:
                throw .invalid("push-pull message in a datagram")
            }
            try r.expectEnd()
            return m
        }

        /// Decodes one push-pull message.
        public static func decodePushPull(_ bytes: [UInt8], maxBytes: Int) throws(WireError) -> PushPull {
            guard bytes.count <= maxBytes else { throw .oversized("push-pull of \(bytes.count) bytes") }
            var r = ByteReader(bytes)
            let version = try r.u8("version")
            guard version == wireVersion else { throw .unsupportedVersion(version) }
            let rawType = try r.u8("type")
            guard let type = MessageType(rawValue: rawType) else { throw .unknownType(rawType) }
            guard type == .pushPullRequest || type == .pushPullReply else {
                throw .invalid("datagram type \(rawType) on the push-pull stream")
            }
            let source = try r.nodeID("source")
            let flags = try r.u8("flags")
            guard flags & ~1 == 0 else { throw .invalid("push-pull flags \(flags)") }
            let count = Int(try r.u32("member count"))
            // Each record is at least minEncodedSize bytes: reject counts the input cannot hold
            // before allocating.
            guard count <= r.remaining / Update.minEncodedSize else { throw .truncated("members (\(count) announced)") }
            var members: [Update] = []
            members.reserveCapacity(count)
            for _ in 0..<count { members.append(try readUpdate(&r)) }
            let appLength = Int(try r.u32("app state length"))
            let app = try r.raw(appLength, "app state")
            try r.expectEnd()
            return PushPull(isReply: type == .pushPullReply, source: source, join: flags & 1 == 1,
                            members: members, appState: app)
        }

        static func readPiggyback(_ r: inout ByteReader) throws(WireError) -> Piggyback {
            let updateCount = Int(try r.u8("update count"))
            var updates: [Update] = []
            updates.reserveCapacity(updateCount)
            for _ in 0..<updateCount { updates.append(try readUpdate(&r)) }
            let broadcastCount = Int(try r.u8("broadcast count"))
            var broadcasts: [AppBroadcast] = []
            for _ in 0..<broadcastCount {
                let origin = try r.nodeID("broadcast origin")
                broadcasts.append(AppBroadcast(origin: origin, payload: try r.longBytes("broadcast payload")))
            }
            return Piggyback(updates: updates, broadcasts: broadcasts)
        }

        static func readUpdate(_ r: inout ByteReader) throws(WireError) -> Update {
            let rawState = try r.u8("update state")
            guard let state = MemberState(rawValue: rawState) else { throw .invalid("update state \(rawState)") }
            let incarnation = try r.u64("update incarnation")
            let id = try r.nodeID("update id")
            let from = try r.nodeID("update from")
            let address = try r.endpoint("update endpoint")
            let nameBytes = try r.shortBytes("update name")
            guard nameBytes.count <= Update.maxNameBytes else { throw .oversized("update name of \(nameBytes.count) bytes") }
            guard let name = String(validating: nameBytes, as: UTF8.self) else { throw .invalid("update name is not UTF-8") }
            let key = try r.raw(Update.publicKeyBytes, "update public key")
            let signature = try r.raw(Update.signatureBytes, "update record signature")
            let stateSignature = state == .alive ? [] : try r.raw(Update.signatureBytes, "update state signature")
            return Update(state: state, incarnation: incarnation, id: id, from: from, address: address,
                          name: name, publicKey: key, signature: signature, stateSignature: stateSignature)
        }
    }
}

extension Membership.Update {
    /// The name cut to at most 63 UTF-8 bytes on a character boundary.
    static func truncatedName(_ name: String) -> [UInt8] {
        if name.utf8.count <= maxNameBytes { return Array(name.utf8) }
        var out: [UInt8] = []
        for ch in name {
            let b = Array(String(ch).utf8)
            if out.count + b.count > maxNameBytes { break }
            out += b
        }
        return out
    }
}
