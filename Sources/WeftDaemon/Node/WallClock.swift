import WeftCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time, used only for timestamps written to SQLite and logs (never for protocol
/// timing, which is monotonic).
enum WallClock {
    static func milliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

extension WallClock {
    /// Nanoseconds since 1970: the base of the replay counter of sealed datagrams.
    static func nanoseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UInt64(max(0, ts.tv_sec)) &* 1_000_000_000 &+ UInt64(max(0, ts.tv_nsec))
    }

    /// Wall-clock time for tunnel initiation timestamps (they must grow across restarts).
    static func tunnelTimestamp() -> Tunnel.Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Tunnel.Timestamp(seconds: UInt64(max(0, ts.tv_sec)), nanoseconds: UInt32(max(0, ts.tv_nsec)))
    }
}

/// The version string reported by `weft status` and `weft --version`.
public enum WeftVersion {
    public static let current = "0.1.0"
}
