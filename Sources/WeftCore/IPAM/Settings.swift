extension IPAM {
    /// Tunables of one node's allocator. Every time is a `Duration`; `.default` is for
    /// production, `.fast` for tests and simulations.
    public struct Settings: Sendable, Equatable {
        /// A member dead (or left) for this long has its ranges reclaimed automatically by its
        /// heir, through the fenced two-phase takeover (docs/ipam.md, rule 6). Default 24 h: long
        /// enough that a host rebooting or a partition healing keeps its space, short enough that
        /// a host that is gone for good does not strand a range forever (Weave users had to run
        /// `rmpeer` by hand). `nil` = never (`--reclaim-after never`, Weave's semantics): no
        /// automatic reclaim, and allocations need no confirmation (quorum mode is off).
        public var reclaimAfter: Duration? = .seconds(24 * 3600)
        /// In quorum mode a new allocation waits at most this long for `Q-1` voters to confirm it,
        /// then fails with ``AllocationError/partitioned(reachable:voters:)`` and the address is
        /// released. A reclaim's first phase is aborted after the same time. Default 5 s: a few
        /// round trips on a slow WAN, short enough for a CNI plugin's timeout.
        public var confirmTimeout: Duration = .seconds(5)
        /// An unanswered holdings write or takeover is sent again to the voters that have not
        /// acknowledged it after this long (not at every tick: at n = 100 that was 99 TCP
        /// connections per node every 200 ms while booting, a storm that exhausted file
        /// descriptors; docs/ipam.md "Resends"). Default 1 s: four resends inside
        /// `confirmTimeout`, each a round trip on a slow WAN.
        public var resendInterval: Duration = .seconds(1)
        /// Ask a peer for more space when this node's free addresses drop below this.
        /// Default 16: a burst of container starts is served locally while the donation runs.
        public var lowWaterMark: UInt32 = 16
        /// A donation request unanswered this long goes to the next candidate. Default 5 s.
        public var requestTimeout: Duration = .seconds(5)
        /// An allocation still waiting for space after this long fails with
        /// ``AllocationError/noSpaceObtained`` instead of hanging. Default 30 s.
        public var pendingTimeout: Duration = .seconds(30)
        /// EXPERIMENTAL, off. Ticks the allocator at its own wake-up (`Instance.nextTimer`)
        /// instead of every `Node.Settings.ipamTick`. Off because that timing lets the
        /// whole-node simulator reach a known gap of the safety argument (docs/ipam.md, "Known
        /// gaps": seed 1171 at commit 8d31c3d; `NODE_SIM_OWN_WAKEUP=1` runs the simulator with
        /// it); on once the gap is closed.
        public var ownWakeup = false
        /// TEST ONLY. Acknowledges allocations at once even in quorum mode (no holdings write, no
        /// fail-fast when partitioned) — IPAM v1 behaviour. Exists so the simulator can prove
        /// that its oracle catches the duplicates this allows. Never set it in a node.
        public var unsafeSkipConfirmation = false
        /// TEST ONLY. Brings back the v1 bug in which `takeAddress` checked only active
        /// allocations, so an address in this node's own conflicts could be handed out again.
        public var debugHandOutConflicts = false

        public init() {}

        public static let `default` = Settings()

        /// Short timers for tests and the simulator.
        public static var fast: Settings {
            var s = Settings()
            s.reclaimAfter = .seconds(600)
            s.confirmTimeout = .seconds(1)
            s.resendInterval = .milliseconds(250)
            s.requestTimeout = .seconds(1)
            s.pendingTimeout = .seconds(10)
            s.lowWaterMark = 4
            return s
        }

        /// Nil when the settings make sense, else what to change.
        ///
        /// `reclaimAfter` must exceed `confirmTimeout`: a node cut off from the majority gives up
        /// on its unconfirmed allocations (its callers get `partitioned`) after `confirmTimeout`,
        /// so by the time an heir may take its ranges over, nothing on the cut-off side is still
        /// waiting to be confirmed into them. Safety itself rests on quorum intersection, not on
        /// this ordering; the ordering keeps callers from seeing a late, surprising loss.
        public func validate() -> String? {
            if let r = reclaimAfter {
                if r <= .zero { return "reclaimAfter must be positive (default 24 h) or nil for never" }
                if r <= confirmTimeout { return "reclaimAfter (\(r)) must be longer than confirmTimeout (\(confirmTimeout))" }
            }
            if confirmTimeout <= .zero { return "confirmTimeout must be positive (default 5 s)" }
            if resendInterval <= .zero { return "resendInterval must be positive (default 1 s)" }
            if requestTimeout <= .zero { return "requestTimeout must be positive (default 5 s)" }
            if pendingTimeout < requestTimeout { return "pendingTimeout must be at least requestTimeout" }
            return nil
        }
    }
}
