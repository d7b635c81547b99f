import Foundation
import WeftCore

/// Sizing the overlay: the TUN MTU is the underlay MTU minus exactly what encapsulation adds.
enum Overlay {
    /// Outer IP header + UDP header + Weft data header and tag (`Tunnel.dataOverhead`).
    static func overhead(ipv6: Bool) -> Int { (ipv6 ? 40 : 20) + 8 + Tunnel.dataOverhead }

    /// The MTU of the interface that holds `advertise`'s address (1500 when it cannot be
    /// found), minus the encapsulation overhead.
    static func defaultMTU(for advertise: Endpoint) -> Int {
        let underlay = interfaceMTU(holding: advertise.address) ?? 1500
        return underlay - overhead(ipv6: !advertise.address.isV4)
    }

    static func mtuOfInterface(named name: UnsafePointer<CChar>) -> Int? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var req = ifreq()
        withUnsafeMutableBytes(of: &req.ifr_ifrn.ifrn_name) { buf in
            let n = min(strlen(name), buf.count - 1)
            for i in 0..<n { buf[i] = UInt8(bitPattern: name[i]) }
            buf[n] = 0
        }
        guard ioctl(fd, UInt(SIOCGIFMTU), &req) == 0 else { return nil }
        let mtu = Int(req.ifr_ifru.ifru_mtu)
        return mtu > 0 ? mtu : nil
    }

    static func interfaceMTU(holding address: IPAddress) -> Int? {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0, let first = list else { return nil }
        defer { freeifaddrs(list) }
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let sa = ifa.pointee.ifa_addr, let name = ifa.pointee.ifa_name else { continue }
            var match = false
            if sa.pointee.sa_family == UInt16(AF_INET), case .v4(let want) = address {
                let a = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                match = a == want
            } else if sa.pointee.sa_family == UInt16(AF_INET6), case .v6(let want) = address {
                let b = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { ptr in withUnsafeBytes(of: ptr.pointee.sin6_addr) { Array($0) } }
                match = b == want
            }
            guard match else { continue }
            // SIOCGIFMTU asks the kernel in this process's network namespace. (Reading
            // /sys/class/net/NAME/mtu is wrong under `nsenter --net`: /sys still shows the
            // namespace it was mounted in, where NAME may be another interface.)
            if let mtu = mtuOfInterface(named: name) { return mtu }
        }
        return nil
    }
}

extension Overlay {
    /// Keeps IPv6 off the TUN device: the overlay is IPv4 only, and with IPv6 on, the kernel gives
    /// the device a link-local address and sends router and neighbour solicitations into it the
    /// moment it comes up; the data plane could only drop them (`not-ipv4`), which would look like
    /// a problem in `weft status`. Writes `/proc/sys/net/ipv6/conf/<device>/disable_ipv6` before
    /// the device is brought up. Nil on success (or when the host has no IPv6), else why not.
    static func disableIPv6(device: String) -> String? {
        let path = "/proc/sys/net/ipv6/conf/\(device)/disable_ipv6"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let h = FileHandle(forWritingAtPath: path) else { return "cannot open \(path)" }
        defer { try? h.close() }
        do { try h.write(contentsOf: Data("1\n".utf8)) } catch { return "cannot write \(path): \(error)" }
        return nil
    }
}
