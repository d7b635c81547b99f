extension Tunnel {
    /// Timers and limits of one ``Instance``. Defaults follow WireGuard (`device/constants.go`)
    /// where there is an equivalent; each field says why.
    public struct Settings: Sendable {
        /// The designated initiator (lower NodeID) starts a new handshake once the current
        /// session is this old. WireGuard's REKEY_AFTER_TIME.
        public var rekeyAfterTime: Duration = .seconds(120)
        /// The other side starts one only if no new session arrived by this age (the designated
        /// side may have lost its state). Between rekey-after and reject-after.
        public var fallbackRekeyAfterTime: Duration = .seconds(150)
        /// A session is never used (send or receive) once this old. REJECT_AFTER_TIME.
        public var rejectAfterTime: Duration = .seconds(180)
        /// Either side starts a rekey after sending this many packets under one session.
        /// REKEY_AFTER_MESSAGES (2^60).
        public var rekeyAfterMessages: UInt64 = 1 << 60
        /// No counter at or above this is ever used or accepted, so a counter never wraps.
        /// REJECT_AFTER_MESSAGES (2^64 − 2^13 − 1).
        public var rejectAfterMessages: UInt64 = UInt64.max - (1 << 13)
        /// Wait this long for a response before sending a new initiation. REKEY_TIMEOUT.
        public var rekeyTimeout: Duration = .seconds(5)
        /// After this many unanswered attempts the retry interval doubles per attempt…
        public var backoffAfterAttempts: Int = 3
        /// …up to this bound. Retries never stop while the peer is wanted.
        public var maxRetryInterval: Duration = .seconds(30)
        /// Each retry interval moves by a uniform random amount in ±this, so many nodes that
        /// lost a peer at once do not retry in lockstep. (WireGuard: up to +334 ms.)
        public var retryJitter: Duration = .milliseconds(334)
        /// Outbound packets held per peer while its handshake completes; the oldest is dropped
        /// beyond this.
        public var maxQueuedPackets: Int = 16
        /// The secret behind cookies is replaced this often; a cookie received by an initiator
        /// is used for MAC2 at most this long. COOKIE_REFRESH_TIME.
        public var cookieLifetime: Duration = .seconds(120)
        /// Per source IP: initiations per second and burst. WireGuard: 20/s, burst 5.
        public var initiationsPerSecondPerSource: Double = 20
        public var initiationBurstPerSource: Double = 5
        /// Across all sources: once this rate (and burst) is exceeded the instance considers
        /// itself under load and answers initiations without a valid MAC2 with a cookie reply.
        public var initiationsPerSecondBeforeLoad: Double = 200
        public var initiationBurstBeforeLoad: Double = 50
        /// Distinct sources the rate limiter tracks; further new sources are refused until
        /// idle entries expire (bounded memory under a spoofed flood).
        public var maxTrackedSources: Int = 8192
        /// Initiation timestamps are rounded down to this, so they do not leak fine timing.
        public var timestampGranularity: Duration = .nanoseconds(1 << 24)

        public init() {}

        public static let `default` = Settings()

        /// Checks the relations between fields; returns a list of problems (empty when valid).
        public func validate() -> [String] {
            var problems: [String] = []
            if !(rekeyAfterTime < fallbackRekeyAfterTime && fallbackRekeyAfterTime < rejectAfterTime) {
                problems.append("need rekeyAfterTime < fallbackRekeyAfterTime < rejectAfterTime")
            }
            if rekeyAfterMessages >= rejectAfterMessages { problems.append("rekeyAfterMessages must be below rejectAfterMessages") }
            if rekeyTimeout <= .zero { problems.append("rekeyTimeout must be positive") }
            if retryJitter < .zero || retryJitter >= rekeyTimeout { problems.append("retryJitter must be in [0, rekeyTimeout)") }
            if maxRetryInterval < rekeyTimeout { problems.append("maxRetryInterval must be at least rekeyTimeout") }
            if maxQueuedPackets < 0 { problems.append("maxQueuedPackets must not be negative") }
            if initiationsPerSecondPerSource <= 0 || initiationBurstPerSource < 1 { problems.append("per-source rate must be positive, burst >= 1") }
            if initiationsPerSecondBeforeLoad <= 0 || initiationBurstBeforeLoad < 1 { problems.append("load rate must be positive, burst >= 1") }
            if maxTrackedSources < 1 { problems.append("maxTrackedSources must be positive") }
            return problems
        }
    }
}
