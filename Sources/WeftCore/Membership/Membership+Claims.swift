// Signed membership claims (issue 9, item 2). WeftCore has no cryptography: the daemon passes an
// Ed25519 `ClaimSigner` built in WeftCrypto (`ClaimSigner.ed25519(identity:)`), the simulators a
// cheap deterministic stand-in. See docs/membership.md "Signed claims".

extension Membership {
    /// Signs this node's claims with its identity key and verifies other members' claims.
    ///
    /// - `sign(message)` returns a 64-byte detached signature by this node's identity key.
    /// - `verify(publicKey, message, signature)` checks one against a member's 32-byte key.
    /// - `pairKey(publicKey)` returns a 32-byte key that only this node and the owner of that
    ///   member key can compute (from the X25519 of the two identities), or nil for a key that
    ///   yields none. Point-to-point messages (IPAM frames) are authenticated with it instead of
    ///   a signature: the recipient is the only one who checks them, so a MAC proves as much.
    /// - `mac(key, message)` returns a 32-byte keyed tag; `checkMAC(key, message, tag)` compares
    ///   one in constant time.
    public struct ClaimSigner: Sendable {
        public var sign: @Sendable ([UInt8]) -> [UInt8]
        public var verify: @Sendable (_ publicKey: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool
        public var pairKey: @Sendable (_ peerPublicKey: [UInt8]) -> [UInt8]?
        public var mac: @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]
        public var checkMAC: @Sendable (_ key: [UInt8], _ message: [UInt8], _ tag: [UInt8]) -> Bool

        public init(sign: @escaping @Sendable ([UInt8]) -> [UInt8],
                    verify: @escaping @Sendable (_ publicKey: [UInt8], _ message: [UInt8], _ signature: [UInt8]) -> Bool,
                    pairKey: @escaping @Sendable (_ peerPublicKey: [UInt8]) -> [UInt8]?,
                    mac: @escaping @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8],
                    checkMAC: @escaping @Sendable (_ key: [UInt8], _ message: [UInt8], _ tag: [UInt8]) -> Bool) {
            self.sign = sign
            self.verify = verify
            self.pairKey = pairKey
            self.mac = mac
            self.checkMAC = checkMAC
        }

        public static let signatureBytes = 64
        public static let macBytes = 32

        /// Accepts every signature and tag, and signs and tags with zeros. Only for unit tests
        /// of protocol logic that craft updates by hand; a node on a network must never use it.
        public static let acceptAll = ClaimSigner(sign: { _ in [UInt8](repeating: 0, count: 64) },
                                                  verify: { _, _, _ in true },
                                                  pairKey: { _ in [UInt8](repeating: 0, count: 32) },
                                                  mac: { _, _ in [UInt8](repeating: 0, count: 32) },
                                                  checkMAC: { _, _, _ in true })
    }

    /// The canonical, domain-separated byte strings that members sign. Each starts with a
    /// distinct ASCII context ending in NUL, so no signature can be replayed as another kind of
    /// claim (nor as an IPAM claim, whose contexts differ too).
    public enum Claims {
        static let recordContext = Array("weft-member-record-v1\u{0}".utf8)
        static let accusationContext = Array("weft-member-accuse-v1\u{0}".utf8)
        static let leftContext = Array("weft-member-left-v1\u{0}".utf8)

        /// Signed by the member itself: "at `incarnation` I am `name` at `address` with `publicKey`".
        public static func record(id: NodeID, incarnation: UInt64, address: Endpoint, name: String,
                                  publicKey: [UInt8]) -> [UInt8] {
            var w = ByteWriter(capacity: 128)
            w.raw(recordContext)
            w.nodeID(id)
            w.u64(incarnation)
            w.endpoint(address)
            w.shortBytes(Update.truncatedName(name))
            w.raw(publicKey)
            return w.bytes
        }

        /// Signed by the accuser: "my probes of `subject` at `incarnation` failed" (the same
        /// statement for suspect and dead: see docs/membership.md for why the label is not signed).
        public static func accusation(subject: NodeID, incarnation: UInt64, accuser: NodeID) -> [UInt8] {
            var w = ByteWriter(capacity: 64)
            w.raw(accusationContext)
            w.nodeID(subject)
            w.u64(incarnation)
            w.nodeID(accuser)
            return w.bytes
        }

        /// Signed by the member itself: "I leave at `incarnation`".
        public static func left(subject: NodeID, incarnation: UInt64) -> [UInt8] {
            var w = ByteWriter(capacity: 48)
            w.raw(leftContext)
            w.nodeID(subject)
            w.u64(incarnation)
            return w.bytes
        }

        /// The record message of a member as it stands.
        public static func record(of m: Member) -> [UInt8] {
            record(id: m.id, incarnation: m.incarnation, address: m.address, name: m.name, publicKey: m.publicKey)
        }

        /// The record message carried by an update.
        public static func record(of u: Update) -> [UInt8] {
            record(id: u.id, incarnation: u.incarnation, address: u.address, name: u.name, publicKey: u.publicKey)
        }
    }

    /// Verified (key, message, signature) triples, so re-gossip of the same claim costs a hash
    /// lookup instead of an Ed25519 verification (~50–70 µs). Bounded: the oldest half is
    /// dropped when full.
    struct VerifiedCache: Sendable {
        struct Key: Hashable, Sendable {
            var publicKey: [UInt8]
            var message: [UInt8]
            var signature: [UInt8]
        }
        var current: Set<Key> = []
        var previous: Set<Key> = []
        let capacity: Int

        init(capacity: Int = 4096) { self.capacity = capacity }

        func contains(_ k: Key) -> Bool { current.contains(k) || previous.contains(k) }

        mutating func insert(_ k: Key) {
            if current.count >= capacity / 2 {
                previous = current
                current = []
            }
            current.insert(k)
        }
    }

    /// Counters of signature work, for benchmarks and metrics. For point-to-point IPAM frames
    /// (`Node.Instance.ipamFrameStats`) "signatures" and "verifications" count MAC tags made
    /// and checked with a pair key.
    public struct ClaimStats: Sendable, Equatable {
        /// Signatures checked with `ClaimSigner.verify`.
        public var verifications = 0
        /// Claims found in the verified cache (no verification needed).
        public var cacheHits = 0
        /// Signatures made with this node's key.
        public var signatures = 0
        /// Pairwise keys derived (`ClaimSigner.pairKey`: one X25519 per peer key).
        public var pairKeys = 0
        public init() {}
    }
}
