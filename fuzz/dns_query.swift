// Fuzz target: the resolver's whole path for one datagram or TCP message — DNS.parseQuery and
// DNS.Zone.decide (answer building on the parsed query), plus the SERVFAIL the daemon builds
// when a forward fails.
// Properties: never traps; a parsed query re-parses identically from its own response's
// question section; every answer is a well-formed response (strict walk below: header counts,
// names with backward pointers only, ≤ 255 bytes, record lengths, nothing left over) with the
// query's ID, QR set, and at most the transport's size (UDP: the client's EDNS size or 512;
// TCP: 65,535); FORMERR for what did not parse is exactly a 12-byte header.
import WeftCore

let domain = DNS.Name("weft.internal")!
let zone = DNS.Zone(
    domain: domain,
    names: ["db": [0x0A2A_0005, 0x0A2A_0106], "web": [0x0A2A_0007],
            "many": (0..<200).map { 0x0A2A_1000 + UInt32($0) }],
    reverse: [0x0A2A_0005: "db", 0x0A2A_0106: "db", 0x0A2A_0007: "web"],
    subnet: try! IPAM.Subnet(parsing: "10.42.0.0/16"))

/// A strict response reader (independent of the codec under test).
struct Walk {
    let b: [UInt8]
    var i = 12
    mutating func u16() -> Int {
        precondition(i + 2 <= b.count, "response truncated at \(i)")
        defer { i += 2 }
        return Int(b[i]) << 8 | Int(b[i + 1])
    }
    /// A name at `i` (advancing past it); returns its lower-cased labels.
    mutating func name() -> [String] {
        var labels: [String] = []
        var pos = i, jumped = false, hops = 0, length = 1
        while true {
            precondition(pos < b.count, "name runs off the end at \(pos)")
            let len = Int(b[pos])
            if len == 0 { if !jumped { i = pos + 1 }; return labels }
            if len & 0xC0 == 0xC0 {
                precondition(pos + 2 <= b.count, "pointer truncated")
                let target = (len & 0x3F) << 8 | Int(b[pos + 1])
                precondition(target < pos && target >= 12, "bad pointer \(target) at \(pos)")
                hops += 1; precondition(hops < 64, "pointer loop")
                if !jumped { i = pos + 2 }
                jumped = true; pos = target; continue
            }
            precondition(len & 0xC0 == 0, "reserved label type in a response")
            precondition(pos + 1 + len <= b.count, "label runs off the end")
            length += len + 1
            precondition(length <= 255, "response name longer than 255 bytes")
            labels.append(String(decoding: b[(pos + 1)..<(pos + 1 + len)], as: UTF8.self))
            pos += 1 + len
        }
    }
}

func check(_ out: [UInt8], query q: DNS.Query, limit: Int) {
    precondition(out.count >= 12, "response shorter than a header")
    precondition(out.count <= limit, "response of \(out.count) bytes over the limit \(limit)")
    precondition(out[0] == UInt8(q.id >> 8) && out[1] == UInt8(q.id & 0xFF), "response id differs")
    precondition(out[2] & 0x80 != 0, "QR not set")
    var w = Walk(b: out)
    w.i = 4
    let qd = w.u16(), an = w.u16(), ns = w.u16(), ar = w.u16()
    precondition(qd <= q.questions.count, "more questions echoed than asked")
    for k in 0..<qd {
        let labels = w.name()
        _ = w.u16(); _ = w.u16()
        precondition(labels == q.questions[k].name.labels.map { String(decoding: Array($0.utf8), as: UTF8.self) },
                     "question \(k) echoed differently")
    }
    var opt = 0
    for _ in 0..<(an + ns + ar) {
        let owner = w.name()
        let type = w.u16()
        _ = w.u16(); _ = w.u16(); _ = w.u16()
        let rdlen = w.u16()
        let end = w.i + rdlen
        precondition(end <= out.count, "record data runs off the end")
        switch type {
        case 1: precondition(rdlen == 4, "A record of \(rdlen) bytes")
        case 12: _ = w.name(); precondition(w.i == end, "PTR length wrong")
        case 6:
            _ = w.name(); _ = w.name()
            precondition(end - w.i == 20, "SOA length wrong")
        case 41: opt += 1; precondition(owner.isEmpty, "OPT not at the root")
        default: preconditionFailure("unexpected record type \(type)")
        }
        w.i = end
    }
    precondition(opt <= (q.ednsSize == nil ? 0 : 1), "OPT without EDNS in the query, or more than one")
    precondition(w.i == out.count, "\(out.count - w.i) bytes after the last record")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDNSQuery(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 1 else { return 0 }
    // The first byte picks transport and rotation; the rest is the message.
    let control = data[0]
    let bytes = Array(UnsafeBufferPointer(start: data + 1, count: size - 1))
    let udp = control & 1 == 0
    let rotation = Int(control >> 1) - 64
    let parsed = try? DNS.parseQuery(bytes)
    let decision = zone.decide(bytes, rotation: rotation, udp: udp)
    guard let q = parsed else {
        switch decision {
        case .answer(let out):
            precondition(out.count == 12 && out[0] == bytes[0] && out[1] == bytes[1], "FORMERR is a header echoing the id")
            precondition(out[3] & 0xF == 1, "FORMERR code")
        case .drop: precondition(bytes.count < 3 || bytes[2] & 0x80 != 0, "dropped a query with an id")
        case .forward: preconditionFailure("forwarded what did not parse")
        }
        return 0
    }
    // The question section must survive a round trip through our own response.
    let echo = DNS.response(to: q, code: .noError, authoritative: false)
    var asQuery = echo; asQuery[2] &= 0x7F
    if let again = try? DNS.parseQuery(asQuery) {
        precondition(again.questions == Array(q.questions.prefix(DNS.maxQuestions)), "questions differ after a round trip")
    }
    let limit = udp ? (q.ednsSize ?? 512) : DNS.maxMessage
    switch decision {
    case .answer(let out): check(out, query: q, limit: limit)
    case .drop: precondition(q.isResponse, "dropped a parsed query")
    case .forward(let fq):
        precondition(fq == q, "forwarded a different query")
        // What the daemon sends when no upstream answers, and its cut for an oversized reply.
        check(DNS.response(to: q, code: .servFail, authoritative: false, limit: limit), query: q, limit: limit)
        check(DNS.response(to: q, code: .noError, authoritative: false, limit: 12), query: q, limit: limit)
    }
    return 0
}
