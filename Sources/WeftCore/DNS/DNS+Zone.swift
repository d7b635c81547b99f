extension DNS {
    /// The cluster's zone as one node answers it: container names under the cluster domain
    /// (`db.weft.internal` → every address of a container named `db`, rotated), PTR records for
    /// overlay addresses, authoritative NXDOMAIN for unknown names in the zone, and "forward"
    /// for everything else. Pure: the daemon feeds it bytes and carries out the decision.
    public struct Zone: Sendable, Equatable {
        public var domain: Name
        /// Container name (one label, lower case) → its addresses, in a stable order.
        public var names: [String: [UInt32]]
        /// Overlay address → container name, for PTR.
        public var reverse: [UInt32: String]
        /// The overlay subnet: reverse lookups inside it are answered here, never forwarded.
        public var subnet: IPAM.Subnet?
        /// Answer TTL: short, because containers come and go.
        public var ttl: UInt32 = 5

        public init(domain: Name, names: [String: [UInt32]] = [:], reverse: [UInt32: String] = [:], subnet: IPAM.Subnet? = nil) {
            self.domain = domain; self.names = names; self.reverse = reverse; self.subnet = subnet
        }

        public enum Decision: Equatable, Sendable {
            /// Send these bytes back.
            case answer([UInt8])
            /// Not ours: forward the query to an upstream resolver.
            case forward(Query)
            /// Say nothing (a response sent to us, or bytes without an ID).
            case drop
        }

        /// What to do with one query. `rotation` varies the order of several addresses (round
        /// robin); `limit` is the largest answer the transport carries (UDP: the client's EDNS
        /// size or 512).
        public func decide(_ bytes: [UInt8], rotation: Int, udp: Bool) -> Decision {
            let q: Query
            do { q = try DNS.parseQuery(bytes) } catch {
                return DNS.formatError(for: bytes).map { .answer($0) } ?? .drop
            }
            if q.isResponse { return .drop }
            let limit = udp ? (q.ednsSize ?? 512) : DNS.maxMessage
            func reply(_ code: ResponseCode, _ answers: [Record] = [], authority: [Record] = [], authoritative: Bool = true) -> Decision {
                .answer(DNS.response(to: q, code: code, authoritative: authoritative, answers: answers, authority: authority, limit: limit))
            }
            guard q.opcode == 0 else { return reply(.notImp, authoritative: false) }
            if let v = q.ednsVersion, v > 0 {
                return .answer(DNS.badVersion(to: q))
            }
            guard q.questions.count == 1, let question = q.questions.first else { return reply(.formErr, authoritative: false) }
            guard question.qclass == 1 || question.qclass == 255 else { return reply(.notImp, authoritative: false) }
            let name = question.name
            let soa = [soaRecord]
            if let address = name.reverseAddress, let subnet, subnet.contains(address) {
                guard let target = reverse[address] else { return reply(.nxDomain, authority: soa) }
                guard question.type == RecordType.ptr.rawValue || question.type == RecordType.any.rawValue else {
                    return reply(.noError, authority: soa)
                }
                return reply(.noError, [Record(name: name, ttl: ttl, data: .ptr(Name(labels: [target] + domain.labels)))])
            }
            guard let relative = name.relative(to: domain) else { return .forward(q) }
            if relative.isEmpty {
                if question.type == RecordType.soa.rawValue { return reply(.noError, soa) }
                return reply(.noError, authority: soa)
            }
            guard relative.count == 1, let addresses = names[relative[0]], !addresses.isEmpty else {
                return reply(.nxDomain, authority: soa)
            }
            guard question.type == RecordType.a.rawValue || question.type == RecordType.any.rawValue else {
                return reply(.noError, authority: soa)  // the name exists, but has no record of this type
            }
            let k = addresses.count > 1 ? ((rotation % addresses.count) + addresses.count) % addresses.count : 0
            let rotated = Array(addresses[k...] + addresses[..<k])
            return reply(.noError, rotated.map { Record(name: name, ttl: ttl, data: .a($0)) })
        }

        /// The zone's SOA, for negative answers (its minimum is the negative-caching TTL).
        public var soaRecord: Record {
            Record(name: domain, ttl: ttl, data: .soa(Name(labels: ["ns"] + domain.labels), Name(labels: ["hostmaster"] + domain.labels), 1, 60, 30, 600, ttl))
        }
    }

    /// BADVERS (RFC 6891 §6.1.3): extended RCODE 16 = 1 in the OPT's high byte, 0 in the header.
    static func badVersion(to q: Query) -> [UInt8] {
        var out = build(query: q, code: .noError, authoritative: false, answers: [], authority: [], truncated: false)
        // The OPT record is the last 11 bytes: name(1) type(2) class(2) ttl(4) rdlen(2).
        if out.count >= 11 { out[out.count - 6] = 1 }
        return out
    }
}
