extension Membership {
    /// Tunables of the SWIM + Lifeguard state machine. Every time is a `Duration`; every field
    /// says its default and why. `validate()` names the first field out of range.
    ///
    /// The defaults aim at a LAN of 3…1000 hosts: a crashed node is declared dead everywhere in
    /// well under 10 s at n = 100, while 10 % packet loss or a 2 s stall of one node causes no
    /// false "dead" (see docs/membership.md and docs/benchmarks.md).
    public struct Settings: Sendable, Equatable {
        /// How often this node probes one member (SWIM protocol period). 1 s, as memberlist's LAN
        /// profile: one ping + ack per node per second is cheap and bounds first detection.
        /// Scaled by the local health multiplier (awareness).
        public var probeInterval: Duration = .seconds(1)
        /// How long to wait for a direct ack before asking `indirectProbes` members to probe
        /// (SWIM ping-req). 500 ms: far above a LAN round trip, and leaves half the period for
        /// the indirect probes. Scaled by awareness. Must be shorter than `probeInterval`.
        public var probeTimeout: Duration = .milliseconds(500)
        /// k, members asked to probe indirectly after a direct timeout. 3 (memberlist, SWIM paper):
        /// with 10 % loss a false failure then needs all four paths to fail.
        public var indirectProbes: Int = 3
        /// How often pending updates are gossiped to `gossipFanout` random members on top of the
        /// piggybacking on probes. 200 ms (memberlist LAN): news reaches n = 1000 in about 1–2 s.
        /// Nothing is sent when nothing is pending.
        public var gossipInterval: Duration = .milliseconds(200)
        /// Members per gossip round. 3 (memberlist LAN).
        public var gossipFanout: Int = 3
        /// Lifeguard α: minimum suspicion timeout = α · max(1, log10(n)) · probeInterval.
        /// 2 (memberlist uses 4): with refutation sent straight to the accused and awareness
        /// slowing sick nodes, 4 s at n = 100 is enough to refute, and keeps detection < 10 s.
        public var suspicionAlpha: Double = 1.5
        /// Lifeguard β: maximum suspicion timeout = β · minimum. 6 (memberlist, Lifeguard paper):
        /// a lone accuser must wait long; independent confirmations shrink the wait to the minimum.
        public var suspicionBeta: Double = 6
        /// Lifeguard K: independent confirmations after which the suspicion timeout reaches its
        /// minimum (0 when n − 2 < K). 2 (memberlist's SuspicionMult − 2 on LAN): two accusers
        /// besides the first arrive within ~2 s of a real crash at n ≥ 100, while a lone flaky
        /// observer still waits the full β · min.
        public var suspicionConfirmations: Int = 2
        /// Each update is piggybacked about `retransmitMultiplier · ⌈log2(n + 1)⌉` times, least
        /// sent first. 3: the SWIM/epidemic bound λ·log n with λ = 3 gives a miss probability far
        /// below one in a million at n ≤ 1000 (memberlist uses 4 · ⌈log10(n + 1)⌉, a little less).
        public var retransmitMultiplier: Int = 3
        /// Lifeguard local health multiplier cap (awareness score 0 ..< awarenessMax; probe
        /// interval and timeout are multiplied by score + 1). 8 (memberlist): a struggling node
        /// slows to one probe per 8 s instead of accusing healthy members.
        public var awarenessMax: Int = 8
        /// Full-state push-pull with one random live member. 30 s (memberlist LAN); above 32
        /// members it is stretched by ⌈log2(n) − log2(32)⌉ + 1 so total traffic stays flat.
        public var pushPullInterval: Duration = .seconds(30)
        /// After learning of a member it did not know, a node runs its next push-pull within
        /// this long (×0.5…1, spread per member) instead of waiting up to `pushPullInterval`.
        /// While a cluster grows (many nodes starting at once, a healed split) full-state
        /// exchanges then spread the new members in a few rounds; gossip alone carries only
        /// about seven signed member records per datagram, so a hundred concurrent joins took
        /// 20 s to reach everyone (docs/benchmarks.md). A cluster that is not growing pays
        /// nothing. 2 s (fast profile 400 ms).
        public var catchUpPushPullDelay: Duration = .seconds(2)
        /// How often a random dead member is contacted by push-pull, so a healed partition or a
        /// member restarted at the same address rejoins by itself. 30 s: cheap, and a partition
        /// of any size heals within a few intervals because every node does it.
        public var deadReprobeInterval: Duration = .seconds(30)
        /// Dead and left members are forgotten this long after their last change (the daemon gets
        /// `.memberRemoved`). 24 h (serf's reconnect/tombstone timeout): long enough for an
        /// outage, short enough that decommissioned hosts disappear.
        public var deadRetention: Duration = .seconds(24 * 3600)
        /// Largest plaintext datagram. 1136: the daemon's sealing adds ≤ 64 bytes, so datagrams
        /// stay ≤ 1200 on the wire (below IPv6's 1280 minimum MTU with headers).
        public var maxPayloadBytes: Int = 1136
        /// Largest push-pull message accepted (TCP). 16 MiB: ~100 000 members, bounds memory use.
        public var maxPushPullBytes: Int = 16 << 20
        /// Largest step above the known incarnation of a member (or our own) that an update may
        /// take; larger ones are dropped as `incarnationJump`. 2^32: a member restarting every
        /// second for a century stays far below it, while a forged update cannot walk a member
        /// to the ceiling (`Membership.maxIncarnation`) in fewer than 2^30 accepted updates.
        public var maxIncarnationJump: UInt64 = 1 << 32

        public init() {}

        /// A probe deadline handled more than this after it was due means this node itself was
        /// starved (CPU, a paused VM, a slow disk in the same actor): half the probe timeout.
        public var lateThreshold: Duration { probeTimeout / 2 }
        /// How much longer a late verdict waits, once, so answers that arrived while this node
        /// was starved are read first: a fifth of the probe timeout.
        public var lateGrace: Duration { probeTimeout / 5 }

        /// The LAN defaults documented on each field.
        public static let `default` = Settings()

        /// A fast cluster for tests and simulation: everything five times quicker, reprobes every
        /// 2 s, dead members forgotten after 10 minutes.
        public static let fast: Settings = {
            var s = Settings()
            s.probeInterval = .milliseconds(200)
            s.probeTimeout = .milliseconds(100)
            s.gossipInterval = .milliseconds(40)
            s.pushPullInterval = .seconds(6)
            s.catchUpPushPullDelay = .milliseconds(400)
            s.deadReprobeInterval = .seconds(2)
            s.deadRetention = .seconds(600)
            return s
        }()

        /// Checks every field; throws for the first one out of its allowed range.
        public func validate() throws(SettingsError) {
            func need(_ ok: Bool, _ field: String, _ allowed: String) throws(SettingsError) {
                if !ok { throw SettingsError(field: field, allowed: allowed) }
            }
            try need(probeInterval >= .milliseconds(10) && probeInterval <= .seconds(60),
                     "probeInterval", "10 ms ... 60 s")
            try need(probeTimeout >= .milliseconds(1) && probeTimeout < probeInterval,
                     "probeTimeout", "1 ms ..< probeInterval")
            try need((0...16).contains(indirectProbes), "indirectProbes", "0 ... 16")
            try need(gossipInterval >= .milliseconds(1) && gossipInterval <= .seconds(60),
                     "gossipInterval", "1 ms ... 60 s")
            try need((1...16).contains(gossipFanout), "gossipFanout", "1 ... 16")
            try need(suspicionAlpha >= 0.5 && suspicionAlpha <= 100, "suspicionAlpha", "0.5 ... 100")
            try need(suspicionBeta >= 1 && suspicionBeta <= 100, "suspicionBeta", "1 ... 100")
            try need((0...32).contains(suspicionConfirmations), "suspicionConfirmations", "0 ... 32")
            try need((1...20).contains(retransmitMultiplier), "retransmitMultiplier", "1 ... 20")
            try need((1...64).contains(awarenessMax), "awarenessMax", "1 ... 64")
            try need(pushPullInterval >= .milliseconds(100), "pushPullInterval", ">= 100 ms")
            try need(catchUpPushPullDelay >= .milliseconds(10) && catchUpPushPullDelay <= pushPullInterval,
                     "catchUpPushPullDelay", "10 ms ... pushPullInterval")
            try need(deadReprobeInterval >= .milliseconds(100), "deadReprobeInterval", ">= 100 ms")
            try need(deadRetention >= probeInterval, "deadRetention", ">= probeInterval")
            try need((256...65_000).contains(maxPayloadBytes), "maxPayloadBytes", "256 ... 65000")
            try need(maxPushPullBytes >= 4096, "maxPushPullBytes", ">= 4096")
            try need(maxIncarnationJump >= 1 && maxIncarnationJump <= Membership.maxIncarnation,
                     "maxIncarnationJump", "1 ... 2^62")
        }
    }

    /// A `Settings` field outside its allowed range.
    public struct SettingsError: Error, Equatable, Sendable, CustomStringConvertible {
        public var field: String
        public var allowed: String
        public init(field: String, allowed: String) { self.field = field; self.allowed = allowed }
        public var description: String { "membership setting \(field) is out of range (allowed: \(allowed))" }
    }

    /// Why a datagram or push-pull message (or one update inside it) was dropped.
    public enum DropReason: String, Sendable, CaseIterable {
        /// Could not be decoded (truncated, garbage, trailing bytes, bad field).
        case malformed
        /// The version byte is not one this node speaks.
        case unsupportedVersion
        /// A message type number that is not assigned.
        case unknownType
        /// Larger than `maxPayloadBytes` (datagram) or `maxPushPullBytes` (push-pull).
        case oversized
        /// An update whose node id does not belong to its public key.
        case identityMismatch
        /// A member record (address, incarnation, name, key) whose signature by the member's own
        /// key does not verify: forged or corrupted. Nothing of it is used.
        case badRecordSignature
        /// A suspect/dead whose accuser signature does not verify, or that names the subject
        /// itself as accuser. The accusation is ignored.
        case badAccusation
        /// A suspect/dead by an accuser this node does not know (its key is needed to check).
        case unknownAccuser
        /// A left not signed by the leaving member itself.
        case badLeftSignature
        /// A ping addressed to another node id (a stale address now used by someone else).
        case notForMe
        /// An ack or nack for a probe that is already over.
        case staleAck
        /// Anything received after `leave()`.
        case afterLeave
        /// An update whose incarnation is at or above `Membership.maxIncarnation` (2^62): no honest
        /// node gets there (one per restart or refutation), and raising ours past it could
        /// overflow. Refused without changing any state.
        case incarnationTooLarge
        /// An update whose incarnation is more than `Settings.maxIncarnationJump` above the one
        /// we know for that member (or above our own, for news about us). Honest members raise
        /// their incarnation by one per restart or refutation.
        case incarnationJump
        /// An update about an evicted identity, or an accusation it signed (docs/security.md
        /// "Eviction"): the cluster banned it, nothing it claims or is claimed about it counts.
        case evictedMember
        /// A datagram or push-pull in the name of an evicted identity.
        case fromEvicted
    }

    /// What the daemon must do after an event. Instances never perform I/O themselves.
    public enum Directive: Sendable, Equatable {
        /// A plaintext datagram (≤ maxPayloadBytes); the daemon seals and sends it over UDP.
        case send([UInt8], to: Endpoint)
        /// Open TCP to the endpoint, send `makePushPull(appState:now:)`, feed the reply to
        /// `onPushPull(_:from:appState:now:)`.
        case pushPull(to: Endpoint)
        /// A new member, or a change of its state/incarnation/address/name: persist, log, count.
        case memberChanged(Member, previous: MemberState?)
        /// A dead or left member was forgotten after `deadRetention`: delete it from the store.
        case memberRemoved(Member)
        /// Our own incarnation rose (refutation); persist it before sending anything else.
        case persistIncarnation(UInt64)
        /// An application broadcast arrived (IPAM deltas). Not re-gossiped by membership: the
        /// application re-enqueues it when it was news (see docs/membership.md).
        case deliver([UInt8], from: NodeID)
        /// Remote application state from a push-pull (the IPAM ring).
        case mergeAppState([UInt8], from: NodeID)
        /// Something was dropped; count it by reason.
        case dropped(DropReason)
        /// Round-trip time of an acked direct probe, for metrics.
        case probeRTT(Duration)
    }
}
