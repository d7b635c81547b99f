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
            let ifname = String(cString: name)
            if let text = try? String(contentsOfFile: "/sys/class/net/\(ifname)/mtu", encoding: .utf8),
               let mtu = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                return mtu
            }
        }
        return nil
    }
}
