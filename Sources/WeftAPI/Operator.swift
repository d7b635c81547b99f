import Foundation

/// The operator's surface beyond the tables: `weft doctor` and the status page
/// (`GET /status.json` on the metrics listener). docs/operations.md, "weft doctor" and "Status page".
extension API {
    /// One line of `weft doctor`.
    public struct DoctorCheck: Codable, Sendable, Equatable {
        /// `node` for this node's own checks, `member` for a check about one other member.
        public var scope: String
        /// The member's name (scope `member`), else this node's.
        public var subject: String
        /// The member's id (scope `member`), else this node's.
        public var subjectID: String
        /// Stable check name: `member-state`, `tcp-out`, `tcp-in`, `udp-out`, `udp-in`, `mtu`,
        /// `clock`, `tunnel`, `membership`, `warning`, `key-mismatch`, `keys`, `ipam`, `cni-plugin`, `cni-config`.
        public var check: String
        /// `ok`, `warn` or `fail`.
        public var status: String
        /// What was found.
        public var message: String
        /// What to do (empty when `ok`).
        public var hint: String
        /// Measured numbers where the check has them (e.g. `skewMs`, `rttMs`, `mtu`).
        public var values: [String: Double]?

        public init(scope: String, subject: String, subjectID: String, check: String, status: String,
                    message: String, hint: String = "", values: [String: Double]? = nil) {
            self.scope = scope; self.subject = subject; self.subjectID = subjectID; self.check = check
            self.status = status; self.message = message; self.hint = hint; self.values = values
        }
    }

    /// `weft doctor --json`: the node's checks (the CLI adds the host's CNI checks).
    public struct DoctorReport: Codable, Sendable, Equatable {
        /// False when any check is `fail`.
        public var ok: Bool
        public var checks: [DoctorCheck]
        /// Count of checks by status (`ok`, `warn`, `fail`, all three present).
        public var summary: [String: Int]

        public init(checks: [DoctorCheck]) {
            self.checks = checks
            var s = ["ok": 0, "warn": 0, "fail": 0]
            for c in checks { s[c.status, default: 0] += 1 }
            self.summary = s
            self.ok = (s["fail"] ?? 0) == 0
        }
    }

    /// `GET /status.json`: what the status page draws, from the same node state as
    /// `weft status`, `weft members`, `weft peers` and `weft ipam` (their `--json` shapes).
    public struct StatusPage: Codable, Sendable, Equatable {
        public var status: Status
        public var members: [MemberInfo]
        public var peers: [PeerInfo]
        public var ipam: IPAMInfo
        public init(status: Status, members: [MemberInfo], peers: [PeerInfo], ipam: IPAMInfo) {
            self.status = status; self.members = members; self.peers = peers; self.ipam = ipam
        }
    }
}
