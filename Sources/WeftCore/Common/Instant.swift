/// A point on a monotonic timeline, in nanoseconds since an arbitrary origin.
///
/// WeftCore never reads a clock: every `on…` method takes `now: Instant` from its caller.
/// The daemon maps a monotonic OS clock onto it; the simulator advances it by hand, so a run
/// is reproducible from its seed.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        Instant(nanoseconds: lhs.nanoseconds &+ rhs.nanoseconds)
    }

    public static func - (lhs: Instant, rhs: Duration) -> Instant {
        Instant(nanoseconds: lhs.nanoseconds &- rhs.nanoseconds)
    }

    public static func - (lhs: Instant, rhs: Instant) -> Duration {
        .nanoseconds(lhs.nanoseconds &- rhs.nanoseconds)
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds in this duration (saturating at Int64 bounds).
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (mul, o1) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if o1 { return seconds < 0 ? .min : .max }
        let (sum, o2) = mul.addingReportingOverflow(attoseconds / 1_000_000_000)
        if o2 { return seconds < 0 ? .min : .max }
        return sum
    }

    /// Seconds as a floating-point value, for logs and reports.
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    /// Multiplies by a non-negative real factor (used for Lifeguard's health multiplier and
    /// suspicion timeouts).
    public func scaled(by factor: Double) -> Duration {
        .nanoseconds(Int64((Double(nanoseconds) * factor).rounded()))
    }
}
