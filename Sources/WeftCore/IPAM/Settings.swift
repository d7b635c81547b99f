extension IPAM {
    /// Tunables of one node's allocator. Every time is a `Duration`; `.default` is for
    /// production, `.fast` for tests and simulations.
    public struct Settings: Sendable, Equatable {
        /// A member dead (or left) for this long has its ranges reclaimed automatically by its
        /// heir. Default 24 h: long enough that a host rebooting or a partition healing keeps
        /// its space, short enough that a host that is gone for good does not strand a range
        /// forever (Weave users had to run `rmpeer` by hand).
        public var reclaimAfter: Duration = .seconds(24 * 3600)
        /// Ask a peer for more space when this node's free addresses drop below this.
        /// Default 16: a burst of container starts is served locally while the donation runs.
        public var lowWaterMark: UInt32 = 16
        /// A donation request unanswered this long goes to the next candidate. Default 5 s.
        public var requestTimeout: Duration = .seconds(5)
        /// An allocation still waiting for space after this long fails with
        /// ``AllocationError/noSpaceObtained`` instead of hanging. Default 30 s.
        public var pendingTimeout: Duration = .seconds(30)

        public init() {}

        public static let `default` = Settings()

        /// Short timers for tests and the simulator.
        public static var fast: Settings {
            var s = Settings()
            s.reclaimAfter = .seconds(600)
            s.requestTimeout = .seconds(1)
            s.pendingTimeout = .seconds(10)
            s.lowWaterMark = 4
            return s
        }

        /// Nil when the settings make sense, else what to change.
        public func validate() -> String? {
            if reclaimAfter <= .zero { return "reclaimAfter must be positive (default 24 h)" }
            if requestTimeout <= .zero { return "requestTimeout must be positive (default 5 s)" }
            if pendingTimeout < requestTimeout { return "pendingTimeout must be at least requestTimeout" }
            return nil
        }
    }
}
