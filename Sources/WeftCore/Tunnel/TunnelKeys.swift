// Typed key material for tunnels. WeftCore cannot use WeftCrypto's `SecretBytes`, so it has
// its own minimal secret container; the crypto suite reads and writes it through
// `withUnsafeBytes` / `init(count:fill:)`.

extension Tunnel {
    /// Secret key material (usually 32 bytes): owns its buffer, compares in constant time,
    /// prints redacted and is overwritten with zeros when the last reference goes away.
    ///
    /// Immutable after `init`, so sharing across threads is safe. The wipe is best effort
    /// (pure Swift has no `sodium_memzero`; the write goes through a non-inlined, unoptimized
    /// function so it is not removed as a dead store).
    public final class Secret: @unchecked Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible,
        CustomReflectable {
        private let storage: UnsafeMutableRawBufferPointer
        /// Number of secret bytes.
        public let count: Int

        /// Allocates `count` zeroed bytes and lets `fill` write them in place.
        public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
            precondition(count >= 0, "Tunnel.Secret: negative count")
            storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
            storage.initializeMemory(as: UInt8.self, repeating: 0)
            self.count = count
            try fill(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
        }

        /// A copy of `bytes` (the caller's array is not wiped).
        public convenience init(_ bytes: [UInt8]) {
            self.init(count: bytes.count) { $0.copyBytes(from: bytes) }
        }

        deinit {
            Secret.wipe(storage)
            storage.deallocate()
        }

        @inline(never) @_optimize(none)
        private static func wipe(_ buffer: UnsafeMutableRawBufferPointer) {
            for i in 0..<buffer.count { buffer[i] = 0 }
        }

        /// Read access. Do not let the pointer escape.
        public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
            try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
        }

        /// Constant time in the contents; lengths are not secret.
        public static func == (a: Secret, b: Secret) -> Bool {
            if a === b { return true }
            guard a.count == b.count else { return false }
            var diff: UInt8 = 0
            for i in 0..<a.count { diff |= a.storage[i] ^ b.storage[i] }
            return diff == 0
        }

        public var description: String { "<redacted \(count) bytes>" }
        public var debugDescription: String { description }
        /// Keeps `dump()` and debuggers from walking into the storage.
        public var customMirror: Mirror { Mirror(self, children: ["count": count]) }
    }

    /// An X25519 public key (32 bytes): a node's static tunnel key (its Ed25519 identity
    /// converted, `PublicKey.x25519()`) or an ephemeral key carried in a handshake message.
    public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
        public static let byteCount = 32
        public let bytes: [UInt8]

        /// Exactly 32 bytes, else nil.
        public init?(bytes: [UInt8]) {
            guard bytes.count == PublicKey.byteCount else { return nil }
            self.bytes = bytes
        }

        public var description: String { "X25519(\(Hex.encode(bytes.prefix(8)))…)" }
    }

    /// A node's long-term X25519 key pair for handshakes (the identity key converted; see
    /// `SodiumTunnelSuite.staticKeyPair(identity:)`).
    public struct StaticKeyPair: Sendable, CustomStringConvertible {
        public let secret: Secret
        public let publicKey: PublicKey
        public init(secret: Secret, publicKey: PublicKey) {
            self.secret = secret
            self.publicKey = publicKey
        }
        public var description: String { "StaticKeyPair(\(publicKey), secret \(secret))" }
    }

    /// A fresh X25519 key pair made for one handshake and dropped when it completes, which is
    /// what gives forward secrecy.
    public struct EphemeralKeyPair: Sendable, CustomStringConvertible {
        public let secret: Secret
        public let publicKey: PublicKey
        public init(secret: Secret, publicKey: PublicKey) {
            self.secret = secret
            self.publicKey = publicKey
        }
        public var description: String { "EphemeralKeyPair(\(publicKey), secret \(secret))" }
    }

    /// The 32-byte pre-shared key mixed into every handshake:
    /// `ClusterKey.derive(context: "weftpsk1", subkeyID: 1)`. A node without the cluster key
    /// can neither produce a valid MAC1 nor complete a handshake.
    public struct PresharedKey: Sendable, CustomStringConvertible {
        public let secret: Secret
        public init(secret: Secret) { self.secret = secret }
        public var description: String { "PresharedKey(\(secret))" }
    }

    /// The key this node seals data packets with, for one session (32 bytes).
    public struct SendKey: Sendable, CustomStringConvertible {
        public let secret: Secret
        public init(secret: Secret) { self.secret = secret }
        public var description: String { "SendKey(\(secret))" }
    }

    /// The key this node opens data packets with, for one session (32 bytes).
    public struct ReceiveKey: Sendable, CustomStringConvertible {
        public let secret: Secret
        public init(secret: Secret) { self.secret = secret }
        public var description: String { "ReceiveKey(\(secret))" }
    }

    /// The initiation's timestamp: a TAI64N-like value (seconds, nanoseconds) that must grow
    /// strictly from one initiation to the next of the same initiator, across restarts. The
    /// core has no clock: the caller passes a wall-clock reading at start-up
    /// (``TimestampOrigin``) and the instance adds the monotonic time elapsed since.
    public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
        public static let byteCount = 12
        public var seconds: UInt64
        public var nanoseconds: UInt32

        public init(seconds: UInt64, nanoseconds: UInt32) {
            self.seconds = seconds + UInt64(nanoseconds / 1_000_000_000)
            self.nanoseconds = nanoseconds % 1_000_000_000
        }

        public static func < (a: Timestamp, b: Timestamp) -> Bool { (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds) }

        /// 8 bytes big-endian `2^62 + seconds` (TAI64 label), 4 bytes big-endian nanoseconds.
        public var bytes: [UInt8] {
            var w = ByteWriter(capacity: 12)
            w.u64(0x4000_0000_0000_0000 &+ seconds)
            w.u32(nanoseconds)
            return w.bytes
        }

        public init?(bytes: [UInt8]) {
            guard bytes.count == Timestamp.byteCount else { return nil }
            var r = ByteReader(bytes)
            guard let label = try? r.u64("seconds"), let nanos = try? r.u32("nanoseconds"),
                  label >= 0x4000_0000_0000_0000, nanos < 1_000_000_000 else { return nil }
            self.init(seconds: label - 0x4000_0000_0000_0000, nanoseconds: nanos)
        }

        public var description: String { "\(seconds).\(nanoseconds)" }
    }

    /// Anchors ``Timestamp``s to the monotonic timeline: `wall` is the wall clock read at
    /// `instant`. The instance computes `timestamp(now) = wall + (now - instant)`, rounded
    /// down to `Settings.timestampGranularity` so the value leaks little about timing.
    public struct TimestampOrigin: Sendable {
        public var wall: Timestamp
        public var instant: Instant
        public init(wall: Timestamp, instant: Instant) {
            self.wall = wall
            self.instant = instant
        }

        public func timestamp(at now: Instant, granularity: Duration) -> Timestamp {
            let elapsed = max(0, (now - instant).nanoseconds)
            let g = max(1, granularity.nanoseconds)
            let total = Int64(wall.nanoseconds) + elapsed
            let rounded = total - total % g
            return Timestamp(seconds: wall.seconds + UInt64(rounded / 1_000_000_000),
                             nanoseconds: UInt32(rounded % 1_000_000_000))
        }
    }
}
