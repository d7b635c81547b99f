#if canImport(Glibc)
import Glibc
#endif
import WeftCore

/// A failed rtnetlink call: what was asked and the kernel's errno.
public struct KernelNetError: Error, Equatable, CustomStringConvertible {
    public var what: String
    public var errno: Int32
    public init(_ what: String, errno: Int32) { self.what = what; self.errno = errno }
    public var description: String {
        let text = errno == 0 ? "malformed answer" : String(cString: strerror(errno))
        return "\(what): \(text) (errno \(errno))"
    }
}

/// `struct sockaddr_nl` (linux/netlink.h, not in Glibc's module): family, pad, pid, groups.
struct NetlinkAddress {
    var family = UInt16(AF_NETLINK)
    var pad: UInt16 = 0
    var pid: UInt32 = 0
    var groups: UInt32 = 0
}

/// One NETLINK_ROUTE socket, used from one thread (the node runtime actor) at a time. Every
/// call waits at most 2 s for the kernel and reads at most 100,000 messages of a dump.
public final class RTNetlinkSocket: @unchecked Sendable {
    let fd: Int32
    var sequence: UInt32 = 1
    var buffer = [UInt8](repeating: 0, count: 1 << 16)

    public init() throws(KernelNetError) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard fd >= 0 else { throw KernelNetError("cannot open an rtnetlink socket", errno: errno) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var size: Int32 = 1 << 20
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        var local = NetlinkAddress()
        let rc = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<NetlinkAddress>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            close(fd)
            throw KernelNetError("cannot bind an rtnetlink socket", errno: e)
        }
        self.fd = fd
    }

    deinit { close(fd) }

    /// Sends `request` and collects the answer: the messages of a dump (until NLMSG_DONE), the
    /// single answer of a get, or nothing for an acknowledged change. A kernel error throws.
    @discardableResult
    public func call(_ request: Netlink.Request, what: String) throws(KernelNetError) -> [Netlink.Message] {
        sequence &+= 1
        let seq = sequence
        let bytes = request.bytes(sequence: seq)
        var kernel = NetlinkAddress()
        let sent = bytes.withUnsafeBytes { b in
            withUnsafePointer(to: &kernel) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<NetlinkAddress>.size))
                }
            }
        }
        guard sent == bytes.count else { throw KernelNetError(what, errno: sent < 0 ? errno : EIO) }
        let isDump = request.flags & Netlink.NLM_F_DUMP == Netlink.NLM_F_DUMP
        let wantsAck = request.flags & Netlink.NLM_F_ACK != 0
        var out: [Netlink.Message] = []
        for _ in 0..<100_000 {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw KernelNetError(what + " (waiting for the kernel)", errno: errno == EAGAIN ? ETIMEDOUT : errno)
            }
            let messages: [Netlink.Message]
            do { messages = try Netlink.messages(Array(buffer[0..<n])) } catch { throw KernelNetError(what + " (\(error))", errno: 0) }
            for m in messages where m.sequence == seq {
                switch m.type {
                case Netlink.NLMSG_DONE:
                    return out
                case Netlink.NLMSG_ERROR:
                    let code: Int32
                    do { code = try Netlink.errorCode(m) } catch { throw KernelNetError(what, errno: 0) }
                    if code != 0 { throw KernelNetError(what, errno: code) }
                    return out
                default:
                    out.append(m)
                    if !isDump && !wantsAck { return out }
                }
            }
        }
        throw KernelNetError(what + " (answer too long)", errno: E2BIG)
    }
}
