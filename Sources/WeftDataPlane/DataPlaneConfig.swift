import Glibc
import WeftCore

/// The TUN device the data plane owns.
public struct TUNConfig: Sendable, Equatable {
    /// Requested interface name (at most 15 bytes; may contain `%d` for the kernel to number).
    /// Default `weft0`.
    public var name: String
    /// MTU applied by ``DataPlane/configureTUN(address:prefixLength:mtu:)`` when it is given no
    /// other; `Tunnel.tunMTU(underlayMTU: 1500, ipv6Underlay: false)` = 1440 is the usual choice.
    public var mtu: Int
    /// Ask the kernel for TCP segmentation offload (`IFF_VNET_HDR`, `TUN_F_CSUM | TUN_F_TSO4`):
    /// reads then return TCP super-segments of up to 64 KiB, cut into MTU-sized packets before
    /// sealing — one read per many packets. A kernel that refuses gets the plain device
    /// (``DataPlane/tunOffload`` says which). Default on.
    public var offload: Bool

    public init(name: String = "weft0", mtu: Int = Tunnel.tunMTU(underlayMTU: 1500, ipv6Underlay: false), offload: Bool = true) {
        self.name = name
        self.mtu = mtu
        self.offload = offload
    }
}

/// What ``DataPlane/init(config:)`` opens.
public struct DataPlaneConfig: Sendable {
    /// UDP bind address (IPv4 or IPv6; port 0 = any free port). Gossip, handshakes and data
    /// all use this one socket, with receive and send buffers of ``socketBufferBytes``.
    public var listen: Endpoint
    /// Nil runs UDP only (`--no-tun`).
    public var tun: TUNConfig?
    /// Requested `SO_RCVBUF` / `SO_SNDBUF` (with `SO_*BUFFORCE` first, which works as root).
    /// Default 8 MiB: the peers measured here lose 4–17% at the receiving socket with the
    /// default 208 KiB.
    public var socketBufferBytes: Int = 8 << 20
    /// `SO_REUSEADDR`. Default **off**: for UDP on Linux it lets a second socket bind the same
    /// address and port without an error (a second node would silently steal part of the
    /// traffic), and UDP has no TIME_WAIT for it to help with. Off, a taken port fails with
    /// ``DataPlaneError/addressInUse(_:)``.
    public var reuseAddress: Bool = false
    /// Drop decrypted packets whose inner IPv4 source is not in a range the route table gives
    /// to the sending peer (WireGuard's "allowed IPs" on receive: one member cannot inject
    /// packets that look like another member's containers). Mismatches are always counted in
    /// ``DataPlaneCounters/innerSourceMismatch``; with this on they are also dropped as
    /// `wrong-inner-source`. Default off until the daemon guarantees every source a node uses
    /// (its own TUN address included) lies in its owned ranges, and routes are updated before
    /// range hand-overs take effect.
    public var enforceInnerSource: Bool = false
    /// Send tunnel data with UDP GSO (`UDP_SEGMENT`): consecutive packets of one batch to the
    /// same peer go down the UDP/IP stack as one super-datagram the kernel splits. Falls back to
    /// plain `sendmmsg` by itself if the kernel refuses. Can be flipped at run time with
    /// ``DataPlane/setUDPSegmentation(_:)``. Default on (see docs/dataplane.md §3 for the
    /// measurement).
    public var udpSegmentation: Bool = true
    /// Messages per `recvmmsg` / `sendmmsg` call. Default 64.
    public var batchSize: Int = 64

    public init(listen: Endpoint, tun: TUNConfig?) {
        self.listen = listen
        self.tun = tun
    }
}

/// Why the data plane could not open or configure its sockets and device. Each description is
/// one line: what is wrong and what to do.
public enum DataPlaneError: Error, CustomStringConvertible, Equatable {
    /// The UDP address is taken by another socket.
    case addressInUse(String)
    /// Creating or configuring the TUN device (or a privileged socket option) needs root.
    case permissionDenied(String)
    /// `/dev/net/tun` is missing or the kernel has no TUN driver.
    case tunUnavailable(String)
    /// The listen address is not an address of this host (`EADDRNOTAVAIL`).
    case addressNotAvailable(String)
    /// A value the kernel cannot take (name too long, MTU out of range, prefix > 32, ...).
    case invalidConfiguration(String)
    /// Any other failed system call.
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .addressInUse(let a):
            return "UDP address \(a) is already in use: stop the other process or choose another --listen port"
        case .permissionDenied(let what):
            return what
        case .tunUnavailable(let what):
            return what
        case .addressNotAvailable(let a):
            return "cannot bind UDP \(a): the address is not assigned to this host; use one of its addresses or 0.0.0.0"
        case .invalidConfiguration(let what):
            return what
        case .system(let call, let e):
            return "\(call) failed: \(String(cString: strerror(e))) (errno \(e))"
        }
    }

    /// The error for a TUN device that needs root.
    public static func tunPermission(_ name: String) -> DataPlaneError {
        .permissionDenied("creating TUN device \(name) needs root (CAP_NET_ADMIN): run as root or use --no-tun")
    }
}
