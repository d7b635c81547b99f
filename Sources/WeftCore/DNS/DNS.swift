/// DNS for the overlay (RFC 1035, RFC 6891 EDNS): the wire codec a node's resolver uses.
/// Pure and bounded: every length, count and compression pointer from the wire is checked
/// before use; a query that breaks a rule is a typed error, never a trap.
public enum DNS {
    /// Record types the resolver knows.
    public enum RecordType: UInt16, Sendable {
        case a = 1, ns = 2, cname = 5, soa = 6, ptr = 12, mx = 15, txt = 16, aaaa = 28, srv = 33, opt = 41, any = 255
    }

    public enum ResponseCode: UInt8, Sendable {
        case noError = 0, formErr = 1, servFail = 2, nxDomain = 3, notImp = 4, refused = 5
    }

    /// Why a message was refused.
    public enum WireError: Error, Equatable, Sendable, CustomStringConvertible {
        case truncated(String)
        case tooLong(Int)
        case badLabel(String)
        case badPointer(String)
        case nameTooLong
        case unsupported(String)
        public var description: String {
            switch self {
            case .truncated(let w): return "truncated \(w)"
            case .tooLong(let n): return "message of \(n) bytes is too long"
            case .badLabel(let w): return "bad label: \(w)"
            case .badPointer(let w): return "bad compression pointer: \(w)"
            case .nameTooLong: return "name longer than 255 bytes"
            case .unsupported(let w): return "unsupported: \(w)"
            }
        }
    }

    /// The most a message may be (TCP's two-byte length); UDP answers are cut to the client's
    /// EDNS size (at least 512).
    public static let maxMessage = 65_535

    /// A domain name as lower-cased labels (DNS compares names without case).
    public struct Name: Hashable, Sendable, CustomStringConvertible, Comparable {
        public private(set) var labels: [String]

        public init(labels: [String]) { self.labels = labels.map(Name.asciiLowercased) }

        /// DNS compares names ignoring ASCII case only (RFC 4343): other bytes stay as they are,
        /// so a label keeps its length on the wire (Unicode lower-casing can make it longer:
        /// "İ" is 2 bytes, its lower case 3 — found by fuzz/dns_query).
        static func asciiLowercased(_ label: String) -> String {
            guard label.utf8.contains(where: { $0 >= 0x41 && $0 <= 0x5A }) else { return label }
            return String(decoding: label.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
        }

        /// Parses `db.weft.internal` or `db.weft.internal.`; nil when a label is empty, longer
        /// than 63 bytes, or the whole name is longer than 253 characters.
        public init?(_ text: String) {
            var t = Substring(text)
            if t.hasSuffix(".") { t = t.dropLast() }
            if t.isEmpty { self.labels = []; return }
            let parts = t.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard t.utf8.count <= 253, parts.allSatisfy({ !$0.isEmpty && $0.utf8.count <= 63 }) else { return nil }
            self.labels = parts.map(Name.asciiLowercased)
        }

        public var description: String { labels.isEmpty ? "." : labels.joined(separator: ".") }
        public static func < (a: Name, b: Name) -> Bool { a.description < b.description }

        /// True when `self` is `zone` or below it.
        public func isInside(_ zone: Name) -> Bool {
            labels.count >= zone.labels.count && Array(labels.suffix(zone.labels.count)) == zone.labels
        }

        /// `self` without `zone` at the end (nil when not inside).
        public func relative(to zone: Name) -> [String]? {
            isInside(zone) ? Array(labels.dropLast(zone.labels.count)) : nil
        }

        /// The reverse-lookup name of an IPv4 address: `4.3.2.1.in-addr.arpa`.
        public static func reverse(_ address: UInt32) -> Name {
            Name(labels: [address & 0xFF, (address >> 8) & 0xFF, (address >> 16) & 0xFF, address >> 24].map { "\($0)" } + ["in-addr", "arpa"])
        }

        /// The IPv4 address of a reverse-lookup name, when it is one.
        public var reverseAddress: UInt32? {
            guard labels.count == 6, labels[4] == "in-addr", labels[5] == "arpa" else { return nil }
            var a: UInt32 = 0
            for (k, l) in labels.prefix(4).enumerated() {
                guard let b = UInt8(l), String(b) == l else { return nil }
                a |= UInt32(b) << (8 * UInt32(k))
            }
            return a
        }

        /// A label a container name may become: letters, digits and hyphens, 1 to 63 bytes,
        /// not starting or ending with a hyphen (RFC 1123). Nil when valid, else why not.
        public static func labelProblem(_ label: String) -> String? {
            let u = Array(label.utf8)
            if u.isEmpty { return "empty" }
            if u.count > 63 { return "\(u.count) bytes long; at most 63" }
            for c in u where !(c >= 0x61 && c <= 0x7A) && !(c >= 0x41 && c <= 0x5A) && !(c >= 0x30 && c <= 0x39) && c != 0x2D {
                return "contains '\(Character(Unicode.Scalar(c)))'; use letters, digits and '-'"
            }
            if u.first == 0x2D || u.last == 0x2D { return "starts or ends with '-'" }
            return nil
        }
    }

    public struct Question: Equatable, Sendable {
        public var name: Name
        public var type: UInt16
        public var qclass: UInt16
        public init(name: Name, type: UInt16, qclass: UInt16 = 1) { self.name = name; self.type = type; self.qclass = qclass }
    }

    /// A parsed query: what the resolver needs to answer it.
    public struct Query: Equatable, Sendable {
        public var id: UInt16
        /// Opcode (0 = standard query).
        public var opcode: UInt8
        public var recursionDesired: Bool
        public var isResponse: Bool
        public var questions: [Question]
        /// The client's EDNS UDP payload size, when it sent an OPT record.
        public var ednsSize: Int?
        /// EDNS version the client asked for (answer BADVERS for > 0).
        public var ednsVersion: UInt8?
    }

    /// One answer record.
    public struct Record: Equatable, Sendable {
        public enum Data: Equatable, Sendable {
            case a(UInt32)
            case ptr(Name)
            /// Start of authority for negative answers: mname, rname, serial, refresh, retry,
            /// expire, minimum (the negative-caching TTL).
            case soa(Name, Name, UInt32, UInt32, UInt32, UInt32, UInt32)
        }
        public var name: Name
        public var ttl: UInt32
        public var data: Data
        public init(name: Name, ttl: UInt32, data: Data) { self.name = name; self.ttl = ttl; self.data = data }
        var type: UInt16 {
            switch data {
            case .a: return RecordType.a.rawValue
            case .ptr: return RecordType.ptr.rawValue
            case .soa: return RecordType.soa.rawValue
            }
        }
    }
}
