import Foundation
import WeftCore
import WeftCrypto

/// The sealed envelope around every gossip datagram, push-pull frame and IPAM frame
/// (docs/protocol.md §1). All layouts are XChaCha20-Poly1305 with the gossip key; the clear
/// header bytes are associated data, so nothing can be moved from one kind to another.
///
/// Version 1, UDP datagrams (kind 1), what `seal`/`open` with `.datagram` speak today:
///
///      0       1       2                        26
///     +-------+-------+------------------------+---------------------------+
///     | ver=1 | kind  |   nonce (24 bytes)     | ciphertext + 16-byte tag  |
///     +-------+-------+------------------------+---------------------------+
///
/// Version 2, UDP datagrams with replay protection (kinds 1 and 20, `DatagramSealer`/`DatagramOpener`):
///
///      0       1       2                 18                26      50
///     +-------+-------+-----------------+-----------------+-------+------------------+
///     | ver=2 | kind  | sender id (16)  | counter u64     | nonce | ciphertext + tag |
///     +-------+-------+-----------------+-----------------+-------+------------------+
///       the 26 header bytes are the AD; (sender, counter) goes through a `SenderReplayGuard`
///       (one window per sender for both kinds: the sender numbers all its datagrams in one run)
///
/// Version 2, TCP frames (kinds 2, 3, 16): a 46-byte sealed hello, then the body sealed with
/// the hello as its associated data. The hello proves the cluster key before the node
/// buffers more than `FrameLimits.unauthenticatedBytes` for the connection:
///
///      0       1       2              26             30         46                   70
///     +-------+-------+--------------+--------------+----------+-------------------+------------------+
///     | ver=2 | kind  | hello nonce  | AEAD(body    | hello tag| body nonce        | ciphertext + tag |
///     |       |       | (24)         | length u32)  | (16)     | (24)              |                  |
///     +-------+-------+--------------+--------------+----------+-------------------+------------------+
///     \______ hello: AD = bytes 0..<2, plaintext = frame length − 46 ______/
///     \______________________ body: AD = bytes 0..<46 ____________________________________________/
///
/// Kinds: 1 membership datagram, 2 push-pull request, 3 push-pull reply, 16 IPAM message
/// (plaintext = sender NodeID (16) || IPAM message), 17/18 operator request/reply (TCP), 19
/// operator probe (a version-1 datagram), 20 IPAM datagram (a version-2 datagram whose
/// plaintext is the same signed IPAM frame as kind 16's, for the small messages the allocator
/// resends until answered: docs/ipam.md "Transport"). Kinds 4–15 belong to the tunnel (same
/// UDP port, version byte 1, their own cryptography). Numbers are never reused.
enum GossipEnvelope {
    /// Version of the datagram envelope sent by `seal(_:kind: .datagram, with:)`. The tunnel's
    /// packets (kinds 4–7) carry version 1 too; the runtime demultiplexes on (version, kind).
    static let version: UInt8 = 1
    /// Version of the TCP-frame envelope (with hello) and of the replay-protected datagram.
    static let version2: UInt8 = 2

    enum Kind: UInt8, CaseIterable {
        case datagram = 1
        case pushPullRequest = 2
        case pushPullReply = 3
        /// A point-to-point IPAM message (TCP frame): sender NodeID (16 bytes) || IPAM message.
        /// Kinds 4–15 belong to the tunnel; application kinds start at 16.
        case ipam = 16
        /// `weft doctor` and `weft peers` (NodeRuntime+Doctor.swift): a TCP request, its reply,
        /// and a UDP probe datagram (version 1, like kind 1).
        case operatorRequest = 17
        case operatorReply = 18
        case operatorProbe = 19
        /// A point-to-point IPAM frame carried in one version-2 datagram (UDP).
        case ipamDatagram = 20

        var isFramed: Bool { self != .datagram && self != .operatorProbe && self != .ipamDatagram }
        /// The kinds a version-2 datagram may carry.
        var isVersion2Datagram: Bool { self == .datagram || self == .ipamDatagram }
    }

    static let headerLength = 2
    /// The sealed hello that opens every TCP frame: 2 + 24 + 4 + 16.
    static let helloLength = headerLength + GossipSealer.overhead + 4
    /// Clear header of a version-2 datagram: version, kind, sender id, counter.
    static let datagramHeaderLength = 2 + NodeID.byteCount + 8

    /// Seals `plaintext`: a version-1 datagram for `.datagram`, a version-2 frame (hello +
    /// body) for the TCP kinds.
    static func seal(_ plaintext: [UInt8], kind: Kind, with sealer: GossipSealer) -> [UInt8] {
        guard kind.isFramed else { return sealer.seal(plaintext, header: [version, kind.rawValue]) }
        let bodyLength = plaintext.count + GossipSealer.overhead
        var length = ByteWriter(capacity: 4)
        length.u32(UInt32(truncatingIfNeeded: bodyLength))
        let hello = sealer.seal(length.bytes, header: [version2, kind.rawValue])
        return sealer.seal(plaintext, header: hello)
    }

    enum OpenFailure: String, CaseIterable {
        case short = "short-packet"
        case badVersion = "unsupported-envelope-version"
        case wrongKind = "unexpected-kind"
        case unauthenticated = "unauthenticated"
        /// The hello's body length does not match the frame.
        case lengthMismatch = "frame-length-mismatch"
        /// A version-2 datagram whose (sender, counter) was seen before.
        case replayed = "replayed"
        /// A version-2 datagram too far behind its sender's newest.
        case tooOld = "replay-too-old"
    }

    static func open(_ sealed: [UInt8], expecting kind: Kind, with sealer: GossipSealer) -> Result<[UInt8], OpenFailureBox> {
        guard sealed.count >= headerLength else { return .failure(OpenFailureBox(.short)) }
        let wanted = kind.isFramed ? version2 : version
        guard sealed[0] == wanted else { return .failure(OpenFailureBox(.badVersion)) }
        guard sealed[1] == kind.rawValue else { return .failure(OpenFailureBox(.wrongKind)) }
        if kind.isFramed {
            guard sealed.count >= helloLength + GossipSealer.overhead else { return .failure(OpenFailureBox(.short)) }
            if let refusal = checkHello(Array(sealed.prefix(helloLength)), frameLength: sealed.count, with: sealer) {
                return .failure(OpenFailureBox(refusal))
            }
            do { return .success(try sealer.open(sealed, headerLength: helloLength)) } catch {
                return .failure(OpenFailureBox(.unauthenticated))
            }
        }
        do {
            return .success(try sealer.open(sealed, headerLength: headerLength))
        } catch {
            return .failure(OpenFailureBox(.unauthenticated))
        }
    }

    /// Checks the first `helloLength` bytes of a TCP frame of `frameLength` bytes: version 2,
    /// a TCP kind, authentic under the gossip key, and announcing exactly the rest of the
    /// frame. Nil when it passes. Costs one AEAD open of 4 bytes; never traps.
    static func checkHello(_ prefix: [UInt8], frameLength: Int, with sealer: GossipSealer) -> OpenFailure? {
        guard prefix.count == helloLength, frameLength >= helloLength + GossipSealer.overhead else { return .short }
        guard prefix[0] == version2 else { return .badVersion }
        guard let kind = Kind(rawValue: prefix[1]), kind.isFramed else { return .wrongKind }
        guard let plain = try? sealer.open(prefix, headerLength: headerLength), plain.count == 4 else {
            return .unauthenticated
        }
        var r = ByteReader(plain)
        guard let announced = try? r.u32("body length"), Int(announced) == frameLength - helloLength else {
            return .lengthMismatch
        }
        return nil
    }

    /// The hello's nonce (its first 16 bytes), by which a replayed hello is recognised.
    static func helloID(_ prefix: [UInt8]) -> HelloID? {
        guard prefix.count >= headerLength + 16 else { return nil }
        var r = ByteReader(prefix, offset: headerLength)
        guard let hi = try? r.u64("nonce"), let lo = try? r.u64("nonce") else { return nil }
        return HelloID(high: hi, low: lo)
    }

    struct HelloID: Hashable, Sendable {
        var high: UInt64
        var low: UInt64
    }

    struct OpenFailureBox: Error {
        let reason: OpenFailure
        init(_ reason: OpenFailure) { self.reason = reason }
    }

    // MARK: - Version-2 datagrams (replay protection)

    /// Seals datagrams as version 2 with this node's id and a counter that never repeats and
    /// never goes backwards across restarts (`ReplayCounter`, based on the wall clock at start).
    /// Thread-safe.
    final class DatagramSealer: @unchecked Sendable {
        let sender: NodeID
        let sealer: GossipSealer
        private var counter: ReplayCounter
        private let lock = NSLock()

        /// - Parameter base: wall-clock nanoseconds since 1970 at start (`WallClock`), or a
        ///   fixed value in tests.
        init(sender: NodeID, sealer: GossipSealer, base: UInt64) {
            self.sender = sender
            self.sealer = sealer
            self.counter = ReplayCounter(base: base)
        }

        /// - Parameter kind: `.datagram` (membership) or `.ipamDatagram`; any other kind is
        ///   sealed as `.datagram`.
        func seal(_ plaintext: [UInt8], kind: Kind = .datagram) -> [UInt8] {
            let c: UInt64 = lock.withLock { counter.take() }
            var header = ByteWriter(capacity: datagramHeaderLength)
            header.u8(version2); header.u8(kind.isVersion2Datagram ? kind.rawValue : Kind.datagram.rawValue)
            header.nodeID(sender); header.u64(c)
            return sealer.seal(plaintext, header: header.bytes)
        }
    }

    /// Opens version-2 datagrams and refuses replays (one `SenderReplayGuard`). Thread-safe.
    final class DatagramOpener: @unchecked Sendable {
        let sealer: GossipSealer
        private var guardState: SenderReplayGuard
        private let lock = NSLock()

        init(sealer: GossipSealer, maxSenders: Int = 4096) {
            self.sealer = sealer
            self.guardState = SenderReplayGuard(maxSenders: maxSenders)
        }

        /// The kind (`.datagram` or `.ipamDatagram`), plaintext and authenticated sender, or why
        /// it was refused. The replay window moves only for datagrams that authenticated.
        func open(_ sealed: [UInt8]) -> Result<(sender: NodeID, kind: Kind, plaintext: [UInt8]), OpenFailureBox> {
            guard sealed.count >= datagramHeaderLength + GossipSealer.overhead else { return .failure(OpenFailureBox(.short)) }
            guard sealed[0] == version2 else { return .failure(OpenFailureBox(.badVersion)) }
            guard let kind = Kind(rawValue: sealed[1]), kind.isVersion2Datagram else { return .failure(OpenFailureBox(.wrongKind)) }
            let plain: [UInt8]
            do { plain = try sealer.open(sealed, headerLength: datagramHeaderLength) } catch {
                return .failure(OpenFailureBox(.unauthenticated))
            }
            var r = ByteReader(sealed, offset: 2)
            guard let sender = try? r.nodeID("sender"), let counter = try? r.u64("counter") else {
                return .failure(OpenFailureBox(.short))
            }
            let refusal: SenderReplayGuard.Refusal? = lock.withLock { guardState.check(sender: sender, counter: counter) }
            switch refusal {
            case nil: return .success((sender, kind, plain))
            case .replayed: return .failure(OpenFailureBox(.replayed))
            case .tooOld: return .failure(OpenFailureBox(.tooOld))
            }
        }
    }
}
