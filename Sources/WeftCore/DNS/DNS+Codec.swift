extension DNS {
    /// Header layout (RFC 1035 §4.1.1), all big-endian:
    /// ```
    ///  0  1  2  3  4  5  6  7  8  9 10 11 12 13 14 15
    /// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    /// |                      ID                       |
    /// |QR|  Opcode   |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
    /// |                    QDCOUNT                    |
    /// |                    ANCOUNT                    |
    /// |                    NSCOUNT                    |
    /// |                    ARCOUNT                    |
    /// +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
    /// ```
    public static let headerSize = 12
    /// A query with more questions than this is refused (real resolvers send one).
    public static let maxQuestions = 4
    /// Additional records looked at when searching for the OPT record.
    public static let maxAdditional = 8
    /// Compression pointers followed in one name before it is refused (loops).
    public static let maxPointerHops = 32

    /// Parses a query. Only the header, the questions and an OPT record among the additional
    /// records are read; answer and authority sections must be empty in a query.
    public static func parseQuery(_ bytes: [UInt8]) throws(WireError) -> Query {
        guard bytes.count >= headerSize else { throw .truncated("header (\(bytes.count) of 12 bytes)") }
        guard bytes.count <= maxMessage else { throw .tooLong(bytes.count) }
        var r = Reader(bytes: bytes, offset: 0)
        let id = try r.u16()
        let flags = try r.u16()
        let qd = Int(try r.u16()), an = Int(try r.u16()), ns = Int(try r.u16()), ar = Int(try r.u16())
        var q = Query(id: id, opcode: UInt8((flags >> 11) & 0xF), recursionDesired: flags & 0x0100 != 0,
                      isResponse: flags & 0x8000 != 0, questions: [], ednsSize: nil, ednsVersion: nil)
        guard qd <= maxQuestions else { throw .unsupported("\(qd) questions") }
        guard an == 0, ns == 0 else { throw .unsupported("answer or authority records in a query") }
        for _ in 0..<qd {
            let name = try r.name()
            let type = try r.u16(), qclass = try r.u16()
            q.questions.append(Question(name: name, type: type, qclass: qclass))
        }
        for _ in 0..<min(ar, maxAdditional) {
            let name = try r.name()
            let type = try r.u16(), klass = try r.u16()
            let ttl = try r.u32()
            let rdlen = Int(try r.u16())
            try r.skip(rdlen)
            if type == RecordType.opt.rawValue {
                guard name.labels.isEmpty, q.ednsSize == nil else { throw .unsupported("malformed or second OPT record") }
                q.ednsSize = max(512, Int(klass))
                q.ednsVersion = UInt8((ttl >> 16) & 0xFF)
            }
        }
        return q
    }

    /// Builds a response to `query`: its questions echoed, `answers`, `authority`, and an OPT
    /// record when the client sent one. Names of answers equal to the first question's are
    /// compressed to a pointer. Cut to `limit` bytes (TC set, answers dropped) when too long;
    /// when even the questions do not fit (several long ones), they are dropped too, then the
    /// OPT record, so the answer is never over `limit` (at least the 12-byte header).
    public static func response(to query: Query, code: ResponseCode, authoritative: Bool,
                                answers: [Record] = [], authority: [Record] = [], limit: Int = maxMessage) -> [UInt8] {
        var out = build(query: query, code: code, authoritative: authoritative, answers: answers, authority: authority, truncated: false)
        if out.count > limit {
            out = build(query: query, code: code, authoritative: authoritative, answers: [], authority: [], truncated: true)
        }
        if out.count > limit {
            var bare = query
            bare.questions = []
            out = build(query: bare, code: code, authoritative: authoritative, answers: [], authority: [], truncated: true)
            if out.count > limit {
                bare.ednsSize = nil
                out = build(query: bare, code: code, authoritative: authoritative, answers: [], authority: [], truncated: true)
            }
        }
        return out
    }

    static func build(query: Query, code: ResponseCode, authoritative: Bool, answers: [Record], authority: [Record], truncated: Bool) -> [UInt8] {
        var w: [UInt8] = []
        w.reserveCapacity(128)
        func u16(_ v: UInt16) { w.append(UInt8(v >> 8)); w.append(UInt8(v & 0xFF)) }
        func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(v & 0xFFFF)) }
        var flags: UInt16 = 0x8000 | (UInt16(query.opcode & 0xF) << 11) | UInt16(code.rawValue & 0xF)
        if authoritative { flags |= 0x0400 }
        if truncated { flags |= 0x0200 }
        if query.recursionDesired { flags |= 0x0100 }
        flags |= 0x0080  // recursion available (names outside the zone are forwarded)
        let questions = Array(query.questions.prefix(maxQuestions))
        u16(query.id); u16(flags)
        u16(UInt16(questions.count)); u16(UInt16(answers.count)); u16(UInt16(authority.count))
        u16(query.ednsSize == nil ? 0 : 1)
        let firstName = questions.first?.name
        func name(_ n: Name) {
            if n == firstName && !n.labels.isEmpty {
                u16(0xC000 | UInt16(headerSize))
                return
            }
            for l in n.labels {
                let b = Array(l.utf8.prefix(63))
                w.append(UInt8(b.count)); w += b
            }
            w.append(0)
        }
        for qn in questions {
            for l in qn.name.labels { let b = Array(l.utf8.prefix(63)); w.append(UInt8(b.count)); w += b }
            w.append(0)
            u16(qn.type); u16(qn.qclass)
        }
        for r in answers + authority {
            name(r.name)
            u16(r.type); u16(1); u32(r.ttl)
            let lenAt = w.count
            u16(0)
            switch r.data {
            case .a(let a): u32(a)
            case .ptr(let target): name(target)
            case .soa(let m, let rn, let serial, let refresh, let retry, let expire, let minimum):
                name(m); name(rn); u32(serial); u32(refresh); u32(retry); u32(expire); u32(minimum)
            }
            let len = w.count - lenAt - 2
            w[lenAt] = UInt8(len >> 8); w[lenAt + 1] = UInt8(len & 0xFF)
        }
        if query.ednsSize != nil {
            // OPT: root name, type 41, our UDP size, extended rcode 0, version 0, no options.
            w.append(0); u16(RecordType.opt.rawValue); u16(1232); u32(0); u16(0)
        }
        return w
    }

    /// A FORMERR for bytes that did not parse, echoing the ID when there is one (nil when the
    /// input is too short to carry an ID: nothing is sent).
    public static func formatError(for bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count >= 2 else { return nil }
        // Never answer something that claims to be a response (no reflection loops).
        if bytes.count >= 3, bytes[2] & 0x80 != 0 { return nil }
        let opcode = bytes.count >= 3 ? (bytes[2] >> 3) & 0xF : 0
        return [bytes[0], bytes[1], 0x80 | (opcode << 3), 0x80 | ResponseCode.formErr.rawValue, 0, 0, 0, 0, 0, 0, 0, 0]
    }

    /// A bounds-checked reader over a message.
    struct Reader {
        let bytes: [UInt8]
        var offset: Int

        mutating func u8() throws(WireError) -> UInt8 {
            guard offset < bytes.count else { throw .truncated("byte at \(offset)") }
            defer { offset += 1 }
            return bytes[offset]
        }
        mutating func u16() throws(WireError) -> UInt16 {
            guard offset + 2 <= bytes.count else { throw .truncated("16-bit field at \(offset)") }
            defer { offset += 2 }
            return UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1])
        }
        mutating func u32() throws(WireError) -> UInt32 {
            let hi = try u16(), lo = try u16()
            return UInt32(hi) << 16 | UInt32(lo)
        }
        mutating func skip(_ n: Int) throws(WireError) {
            guard n >= 0, offset + n <= bytes.count else { throw .truncated("record data of \(n) bytes at \(offset)") }
            offset += n
        }

        /// A name with compression: pointers must point backwards, at most `maxPointerHops` of
        /// them; labels ≤ 63 bytes; the whole name ≤ 255 bytes on the wire.
        mutating func name() throws(WireError) -> Name {
            var labels: [String] = []
            var length = 1
            var pos = offset
            var jumped = false
            var hops = 0
            while true {
                guard pos < bytes.count else { throw .truncated("name at \(pos)") }
                let len = Int(bytes[pos])
                switch len & 0xC0 {
                case 0x00:
                    if len == 0 {
                        if !jumped { offset = pos + 1 }
                        return Name(labels: labels)
                    }
                    guard pos + 1 + len <= bytes.count else { throw .truncated("label at \(pos)") }
                    length += len + 1
                    guard length <= 255 else { throw .nameTooLong }
                    let raw = bytes[(pos + 1)..<(pos + 1 + len)]
                    guard let label = String(validating: raw, as: UTF8.self) else { throw .badLabel("not UTF-8 at \(pos)") }
                    labels.append(label)
                    pos += 1 + len
                case 0xC0:
                    guard pos + 2 <= bytes.count else { throw .truncated("pointer at \(pos)") }
                    let target = (len & 0x3F) << 8 | Int(bytes[pos + 1])
                    guard target < pos else { throw .badPointer("forward or self pointer at \(pos) to \(target)") }
                    hops += 1
                    guard hops <= maxPointerHops else { throw .badPointer("more than \(maxPointerHops) hops") }
                    if !jumped { offset = pos + 2 }
                    jumped = true
                    pos = target
                default:
                    throw .badLabel("reserved label type 0x\(String(len & 0xC0, radix: 16)) at \(pos)")
                }
            }
        }
    }
}
