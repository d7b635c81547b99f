import WeftCore
import XCTest

/// The DNS codec and zone: golden vectors captured from real `dig` (9.18) queries, every
/// truncation, hostile names, and a deterministic fuzz loop.
final class DNSTests: XCTestCase {
    static func hex(_ s: String) -> [UInt8] {
        var out: [UInt8] = []
        var i = s.startIndex
        while i < s.endIndex {
            let j = s.index(i, offsetBy: 2)
            out.append(UInt8(s[i..<j], radix: 16)!)
            i = j
        }
        return out
    }
    /// `dig @127.0.0.1 db.weft.internal A` (EDNS with a cookie option).
    static let digA = hex("bb5a01200001000000000001026462047765667408696e7465726e616c000001000100002904d000000000000c000a00083cdd6b4813b55614")
    /// `dig +noedns -x 10.42.0.5`.
    static let digPTR = hex("551e012000010000000000000135013002343202313007696e2d61646472046172706100000c0001")
    /// `dig +nocookie example.org AAAA`.
    static let digAAAA = hex("045901200001000000000001076578616d706c65036f726700001c000100002904d0000000000000")

    let domain = DNS.Name("weft.internal")!
    var zone: DNS.Zone {
        DNS.Zone(domain: domain, names: ["db": [0x0A2A_0005, 0x0A2A_0106], "web": [0x0A2A_0007]],
                 reverse: [0x0A2A_0005: "db", 0x0A2A_0106: "db", 0x0A2A_0007: "web"],
                 subnet: try! IPAM.Subnet(parsing: "10.42.0.0/16"))
    }

    func testParsesRealDigQueries() throws {
        let a = try DNS.parseQuery(Self.digA)
        XCTAssertEqual(a.id, 0xBB5A)
        XCTAssertTrue(a.recursionDesired)
        XCTAssertFalse(a.isResponse)
        XCTAssertEqual(a.questions, [DNS.Question(name: DNS.Name("db.weft.internal")!, type: 1)])
        XCTAssertEqual(a.ednsSize, 1232)
        XCTAssertEqual(a.ednsVersion, 0)
        let p = try DNS.parseQuery(Self.digPTR)
        XCTAssertNil(p.ednsSize)
        XCTAssertEqual(p.questions.first?.name.reverseAddress, 0x0A2A_0005)
        XCTAssertEqual(p.questions.first?.type, 12)
        let q = try DNS.parseQuery(Self.digAAAA)
        XCTAssertEqual(q.questions.first?.type, 28)
    }

    /// Reads a response's header and answer A records (test-only decoder).
    func answers(_ bytes: [UInt8]) -> (id: UInt16, rcode: UInt8, aa: Bool, tc: Bool, an: Int, ns: Int, a: [UInt32]) {
        let id = UInt16(bytes[0]) << 8 | UInt16(bytes[1])
        let an = Int(bytes[6]) << 8 | Int(bytes[7]), ns = Int(bytes[8]) << 8 | Int(bytes[9])
        var a: [UInt32] = []
        // Compressed A answers end with: c0 0c | 00 01 | 00 01 | ttl(4) | 00 04 | addr(4)
        var i = 12
        while i + 16 <= bytes.count {
            if bytes[i] == 0xC0, bytes[i + 1] == 0x0C, bytes[i + 2] == 0, bytes[i + 3] == 1, bytes[i + 10] == 0, bytes[i + 11] == 4 {
                a.append(UInt32(bytes[i + 12]) << 24 | UInt32(bytes[i + 13]) << 16 | UInt32(bytes[i + 14]) << 8 | UInt32(bytes[i + 15]))
                i += 16
            } else { i += 1 }
        }
        return (id, bytes[3] & 0xF, bytes[2] & 0x04 != 0, bytes[2] & 0x02 != 0, an, ns, a)
    }

    func testAnswersEveryContainerOfANameRotated() throws {
        guard case .answer(let r0) = zone.decide(Self.digA, rotation: 0, udp: true),
              case .answer(let r1) = zone.decide(Self.digA, rotation: 1, udp: true) else { return XCTFail("no answer") }
        let x = answers(r0), y = answers(r1)
        XCTAssertEqual(x.id, 0xBB5A)
        XCTAssertEqual(x.rcode, 0)
        XCTAssertTrue(x.aa, "authoritative for the cluster domain")
        XCTAssertEqual(x.an, 2)
        XCTAssertEqual(Set(x.a), [0x0A2A_0005, 0x0A2A_0106])
        XCTAssertEqual(x.a, y.a.reversed(), "round robin")
        XCTAssertEqual(r0.suffix(11).prefix(3), [0, 0, 41], "an OPT record answers an EDNS query")
    }

    func testUnknownNameIsAuthoritativeNXDomainWithSOA() throws {
        var q = try DNS.parseQuery(Self.digA)
        q.questions[0].name = DNS.Name("nothere.weft.internal")!
        let bytes = DNS.response(to: q, code: .noError, authoritative: false)  // reuse as a query: flip QR off
        var query = bytes; query[2] &= 0x7F; query[6] = 0; query[7] = 0
        guard case .answer(let r) = zone.decide(query, rotation: 0, udp: true) else { return XCTFail() }
        let x = answers(r)
        XCTAssertEqual(x.rcode, 3)
        XCTAssertTrue(x.aa)
        XCTAssertEqual(x.ns, 1, "SOA in authority for negative caching")
    }

    func testExistingNameWithoutThatTypeIsNoData() throws {
        var q = try DNS.parseQuery(Self.digA)
        q.questions[0].type = 28
        var query = DNS.response(to: q, code: .noError, authoritative: false); query[2] &= 0x7F
        guard case .answer(let r) = zone.decide(query, rotation: 0, udp: true) else { return XCTFail() }
        let x = answers(r)
        XCTAssertEqual(x.rcode, 0); XCTAssertEqual(x.an, 0); XCTAssertEqual(x.ns, 1)
    }

    func testReverseLookupOfOverlayAddresses() {
        guard case .answer(let r) = zone.decide(Self.digPTR, rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertEqual(answers(r).rcode, 0)
        XCTAssertEqual(answers(r).an, 1)
        // "db.weft.internal" appears in the PTR data.
        XCTAssertNotNil(r.firstRange(of: [2, 0x64, 0x62, 4, 0x77, 0x65, 0x66, 0x74]))
    }

    func testOtherNamesAreForwarded() {
        guard case .forward(let q) = zone.decide(Self.digAAAA, rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertEqual(q.id, 0x0459)
    }

    func testHostileInputNeverTraps() {
        // Every truncation of the real queries.
        for v in [Self.digA, Self.digPTR, Self.digAAAA] {
            for n in 0..<v.count { _ = zone.decide(Array(v.prefix(n)), rotation: 0, udp: true) }
        }
        // A pointer loop, a forward pointer, a reserved label type, an overlong name.
        let header: [UInt8] = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        XCTAssertThrowsError(try DNS.parseQuery(header + [0xC0, 0x0C, 0, 1, 0, 1]))
        XCTAssertThrowsError(try DNS.parseQuery(header + [0xC0, 0x20, 0, 1, 0, 1]))
        XCTAssertThrowsError(try DNS.parseQuery(header + [0x80, 0, 0, 1, 0, 1]))
        var long: [UInt8] = []
        for _ in 0..<5 { long += [63] + [UInt8](repeating: 0x61, count: 63) }
        XCTAssertEqual(try? DNS.parseQuery(header + long + [0, 0, 1, 0, 1]), nil)
        // Garbage with an ID: FORMERR echoing it; a response: silence; one byte: silence.
        guard case .answer(let f) = zone.decide([0xAB, 0xCD, 0x01, 0x00, 0, 9], rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertEqual(Array(f.prefix(2)), [0xAB, 0xCD]); XCTAssertEqual(f[3] & 0xF, 1)
        XCTAssertEqual(zone.decide([0xAB, 0xCD, 0x81, 0x00, 0, 9], rotation: 0, udp: true), .drop)
        XCTAssertEqual(zone.decide([1], rotation: 0, udp: true), .drop)
        // Other opcodes: NOTIMP; EDNS version 1: BADVERS.
        var notify = Self.digA; notify[2] = (notify[2] & 0x87) | (4 << 3)
        guard case .answer(let n) = zone.decide(notify, rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertEqual(n[3] & 0xF, 4)
        var v1 = Self.digA; v1[v1.count - 17] = 1  // OPT ttl: ext-rcode, VERSION, flags (12 bytes of cookie option after)
        guard case .answer(let b) = zone.decide(v1, rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertEqual(b[b.count - 6], 1, "BADVERS in the OPT's extended RCODE")
        // A deterministic fuzz loop: random bytes and mutations of the real queries.
        var rng = DeterministicRNG(seed: 53)
        for i in 0..<20_000 {
            var bytes: [UInt8]
            if i % 2 == 0 {
                bytes = (0..<Int(rng.next() % 80)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                bytes = [Self.digA, Self.digPTR, Self.digAAAA][i % 3]
                for _ in 0..<3 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            switch zone.decide(bytes, rotation: i, udp: true) {
            case .answer(let r): XCTAssertGreaterThanOrEqual(r.count, 12); XCTAssertLessThanOrEqual(r.count, 65_535)
            case .forward, .drop: break
            }
        }
    }

    /// fuzz/dns_query regression: four questions of 245 bytes (three of them compression
    /// pointers to the first) get FORMERR; echoing them made a 1,000-byte UDP answer over the
    /// 512-byte limit even with TC set. Now the questions are dropped when they do not fit.
    func testFuzzFoundFourLongQuestionsStayWithinTheUDPLimit() throws {
        let label = "3c" + String(repeating: "61", count: 60)
        let bytes = Self.hex("123401000004000000000000" + String(repeating: label, count: 4) + "0000010001"
                             + String(repeating: "c00c00010001", count: 3))
        let q = try DNS.parseQuery(bytes)
        XCTAssertEqual(q.questions.count, 4)
        guard case .answer(let out) = zone.decide(bytes, rotation: 0, udp: true) else { return XCTFail() }
        XCTAssertLessThanOrEqual(out.count, 512)
        XCTAssertEqual(out[3] & 0xF, DNS.ResponseCode.formErr.rawValue)
        XCTAssertEqual(Array(out.prefix(2)), [0x12, 0x34])
        XCTAssertTrue(answers(out).tc)
        // Over TCP everything fits: the questions are echoed.
        guard case .answer(let tcp) = zone.decide(bytes, rotation: 0, udp: false) else { return XCTFail() }
        XCTAssertEqual(Int(tcp[4]) << 8 | Int(tcp[5]), 4)
        // The daemon's cut of an oversized forwarded reply (limit 12): a bare header.
        XCTAssertEqual(DNS.response(to: q, code: .noError, authoritative: false, limit: 12).count, 12)
    }

    /// fuzz/dns_query regression: a 62-byte label of "İ" (C4 B0) grew to 93 bytes when
    /// lower-cased with Unicode rules, so the echoed question differed from the query (and a
    /// name could pass 255 bytes). Names now ignore ASCII case only (RFC 4343).
    func testFuzzFoundNonASCIILabelKeepsItsBytes() throws {
        let bytes = Self.hex("1234010000010000000000003e" + String(repeating: "c4b0", count: 31) + "0000010001")
        let q = try DNS.parseQuery(bytes)
        XCTAssertEqual(q.questions.first?.name.labels.first?.utf8.count, 62)
        let echo = DNS.response(to: q, code: .servFail, authoritative: false)
        XCTAssertEqual(Array(echo[12..<bytes.count]), Array(bytes[12...]), "question echoed byte for byte")
        XCTAssertEqual(DNS.Name("DB.Weft.Internal"), DNS.Name("db.weft.internal"))
        XCTAssertEqual(DNS.Name(labels: ["DÉ"]).labels, ["dÉ"], "only ASCII letters fold")
    }

    func testLargeAnswersAreTruncatedForUDP() {
        var names: [String: [UInt32]] = [:]
        names["many"] = (0..<100).map { 0x0A2A_0000 + UInt32($0) }
        let z = DNS.Zone(domain: domain, names: names)
        var q = try! DNS.parseQuery(Self.digPTR)
        q.questions[0] = DNS.Question(name: DNS.Name("many.weft.internal")!, type: 1)
        var query = DNS.response(to: q, code: .noError, authoritative: false); query[2] &= 0x7F
        guard case .answer(let udp) = z.decide(query, rotation: 0, udp: true),
              case .answer(let tcp) = z.decide(query, rotation: 0, udp: false) else { return XCTFail() }
        XCTAssertLessThanOrEqual(udp.count, 512)
        XCTAssertTrue(answers(udp).tc, "TC tells the client to retry over TCP")
        XCTAssertEqual(answers(tcp).an, 100)
    }

    func testNames() {
        XCTAssertEqual(DNS.Name("DB.Weft.Internal.")?.description, "db.weft.internal")
        XCTAssertNil(DNS.Name("a..b"))
        XCTAssertNil(DNS.Name(String(repeating: "a", count: 64) + ".x"))
        XCTAssertEqual(DNS.Name.reverse(0x0A2A_0005).description, "5.0.42.10.in-addr.arpa")
        XCTAssertNil(DNS.Name("05.0.42.10.in-addr.arpa")?.reverseAddress)
        XCTAssertNil(DNS.Name.labelProblem("web-1"))
        XCTAssertNotNil(DNS.Name.labelProblem("-web"))
        XCTAssertNotNil(DNS.Name.labelProblem("we b"))
        XCTAssertNotNil(DNS.Name.labelProblem(""))
        XCTAssertNotNil(DNS.Name.labelProblem(String(repeating: "a", count: 64)))
    }
}

/// The name records CRDT.
final class DNSRecordsTests: XCTestCase {
    let a = NodeID(high: 1, low: 1), b = NodeID(high: 2, low: 2), c = NodeID(high: 3, low: 3)

    func randomReplicaOps(_ seed: UInt64) -> [DNS.Records] {
        var rng = DeterministicRNG(seed: seed)
        var replicas = [DNS.Records(), DNS.Records(), DNS.Records()]
        let owners = [a, b, c]
        for _ in 0..<60 {
            let k = Int(rng.next() % 3)
            let handle = "h\(rng.next() % 6)"
            switch rng.next() % 4 {
            case 0, 1: _ = replicas[k].set(owner: owners[k], handle: handle, name: ["db", "web", "cache"][Int(rng.next() % 3)], address: UInt32(rng.next() % 50))
            case 2: _ = replicas[k].remove(owner: owners[k], handle: handle)
            default:
                let j = Int(rng.next() % 3)
                replicas[j].merge(replicas[k].entries)
            }
        }
        return replicas
    }

    func testMergeIsCommutativeAssociativeIdempotent() {
        for seed in 0..<200 {
            let r = randomReplicaOps(UInt64(seed))
            var ab = r[0]; ab.merge(r[1].entries)
            var ba = r[1]; ba.merge(r[0].entries)
            XCTAssertEqual(ab, ba, "commutative, seed \(seed)")
            var abc1 = ab; abc1.merge(r[2].entries)
            var bc = r[1]; bc.merge(r[2].entries)
            var abc2 = r[0]; abc2.merge(bc.entries)
            XCTAssertEqual(abc1, abc2, "associative, seed \(seed)")
            var twice = abc1; XCTAssertTrue(twice.merge(abc1.entries).isEmpty); XCTAssertEqual(twice, abc1, "idempotent")
        }
    }

    func testTombstoneWinsOverOldCopiesAndOwnersComeAndGo() {
        var owner = DNS.Records()
        let (k, r) = owner.set(owner: a, handle: "c1", name: "DB", address: 5)
        XCTAssertEqual(r.name, "db")
        var other = DNS.Records()
        other.merge([k: r])
        _ = owner.remove(owner: a, handle: "c1")
        other.merge(owner.entries)
        var stale = DNS.Records(); stale.merge([k: r])
        XCTAssertTrue(other.merge(stale.entries).isEmpty, "an old copy cannot bring a removed name back")
        XCTAssertTrue(other.zoneData(live: [a]).names.isEmpty)
        _ = owner.set(owner: a, handle: "c2", name: "db", address: 6)
        _ = owner.set(owner: b, handle: "x", name: "db", address: 7)
        XCTAssertEqual(owner.zoneData(live: [a, b]).names["db"], [6, 7], "two containers of one name on two hosts")
        XCTAssertEqual(owner.zoneData(live: [b]).names["db"], [7], "a dead owner's names are not served")
        XCTAssertEqual(owner.zoneData(live: [a, b]).reverse[6], "db")
    }

    func testCodecRoundTripAndHostileInput() throws {
        var recs = DNS.Records()
        _ = recs.set(owner: a, handle: "cni:podman:abc:eth0", name: "web-1", address: 0x0A2A_0005)
        _ = recs.set(owner: b, handle: "d", name: "db", address: 0x0A2A_0105)
        _ = recs.remove(owner: b, handle: "d")
        let bytes = DNS.Records.encode(recs.entries)
        XCTAssertEqual(try DNS.Records.decode(bytes), recs.entries)
        for n in 0..<bytes.count { XCTAssertThrowsError(try DNS.Records.decode(Array(bytes.prefix(n)))) }
        XCTAssertThrowsError(try DNS.Records.decode(bytes + [0]))
        XCTAssertThrowsError(try DNS.Records.decode([DNS.Records.tag, 0xFF, 0xFF, 0xFF, 0xFF]), "a count the bytes cannot hold")
        var bad = DNS.Records()
        _ = bad.set(owner: a, handle: "h", name: "no good", address: 1)
        XCTAssertThrowsError(try DNS.Records.decode(DNS.Records.encode(bad.entries)), "a name that is not a DNS label")
        var rng = DeterministicRNG(seed: 7)
        for _ in 0..<20_000 {
            var m = bytes
            for _ in 0..<3 { m[Int(rng.next() % UInt64(m.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            if let d = try? DNS.Records.decode(m) { XCTAssertLessThanOrEqual(d.count, 3) }
        }
    }
}
