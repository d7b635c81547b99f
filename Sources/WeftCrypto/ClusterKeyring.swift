/// The cluster keys a node accepts, the first of them the *primary* one it seals with
/// (docs/security.md, "Key rotation"). A rotation is: install the new key everywhere (every
/// node then opens both), make it primary everywhere (nodes seal with it, still open the old),
/// remove the old one everywhere (nothing sealed with it opens any more).
///
/// File form (`cluster.key` in the data dir): one printed key per line, the primary first, after
/// a line `# cluster ID` naming the cluster; other lines starting with `#` and blank lines are
/// ignored. A file with one key and no cluster line — what `weft keygen` prints and what every
/// earlier version wrote — is a keyring of one whose cluster id is that key's id.
///
/// The cluster id is the id of the cluster's first key and stays when that key is rotated
/// away, so a data dir keeps belonging to its cluster across rotations (docs/security.md).
public struct ClusterKeyring: Sendable, Equatable {
    /// At most this many keys at once (each failed open tries every key; rotation needs two).
    public static let maxKeys = 8

    /// Primary first; never empty, no key twice.
    public private(set) var keys: [ClusterKey]
    /// The cluster's id (16 hex characters): its first key's ``ClusterKey/keyID``.
    public let clusterID: String

    public init(primary: ClusterKey) { keys = [primary]; clusterID = primary.keyID }

    /// - Throws: ``CryptoError/invalidKeyText(_:)`` for an empty list, a repeated key or more than ``maxKeys``.
    public init(keys: [ClusterKey], clusterID: String? = nil) throws(CryptoError) {
        guard !keys.isEmpty else { throw .invalidKeyText("the keyring holds no key") }
        guard keys.count <= Self.maxKeys else { throw .invalidKeyText("the keyring holds \(keys.count) keys, at most \(Self.maxKeys) are allowed") }
        for (i, k) in keys.enumerated() where keys[..<i].contains(k) {
            throw .invalidKeyText("key \(k.keyID) is listed twice")
        }
        if let clusterID, !Self.isClusterID(clusterID) {
            throw .invalidKeyText("the cluster id \"\(clusterID)\" is not 16 hex characters")
        }
        self.keys = keys
        self.clusterID = clusterID ?? keys[0].keyID
    }

    static func isClusterID(_ text: String) -> Bool {
        text.utf8.count == 16 && text.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    static let clusterLinePrefix = "# cluster "
    public var primary: ClusterKey { keys[0] }

    /// Parses the file form. Errors name the line and never echo a key.
    public init(text: String) throws(CryptoError) {
        var parsed: [ClusterKey] = []
        var clusterID: String?
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = String(decoding: Array(raw.utf8).trimmingASCIIWhitespace(), as: UTF8.self)
            if line.hasPrefix(Self.clusterLinePrefix) {
                let id = String(line.dropFirst(Self.clusterLinePrefix.count)).lowercased()
                guard Self.isClusterID(id) else { throw .invalidKeyText("line \(lineNumber): the cluster id after \"# cluster\" is not 16 hex characters") }
                if let clusterID, clusterID != id { throw .invalidKeyText("line \(lineNumber): a second, different cluster id") }
                clusterID = id
                continue
            }
            if line.isEmpty || line.hasPrefix("#") { continue }
            do { parsed.append(try ClusterKey(text: line)) } catch {
                if case .invalidKeyText(let why) = error { throw .invalidKeyText("line \(lineNumber): \(why)") }
                throw error
            }
        }
        guard !parsed.isEmpty else {
            throw .invalidKeyText("the cluster key is empty: expected \"\(ClusterKey.textPrefix)\" followed by 44 base64 characters, as printed by `weft keygen`")
        }
        try self.init(keys: parsed, clusterID: clusterID)
    }

    /// The file form: the cluster line, then the keys, the primary first, one per line. Secret:
    /// write it only to a 0600 file. A keyring of the cluster's first key alone is written as
    /// that key alone, as before keyrings existed.
    public var text: String {
        let body = keys.map(\.text).joined(separator: "\n") + "\n"
        if keys.count == 1, keys[0].keyID == clusterID { return body }
        return Self.clusterLinePrefix + clusterID + "\n" + body
    }

    /// The keys' ids, the primary first.
    public var keyIDs: [String] { keys.map(\.keyID) }

    public func contains(_ key: ClusterKey) -> Bool { keys.contains(key) }

    /// The key with this id (``ClusterKey/keyID``), or one whose id starts with `prefix` if exactly one does.
    public func key(matching prefix: String) -> ClusterKey? {
        let p = prefix.lowercased()
        if let exact = keys.first(where: { $0.keyID == p }) { return exact }
        let matches = keys.filter { $0.keyID.hasPrefix(p) }
        return matches.count == 1 ? matches[0] : nil
    }

    /// Adds `key` (not primary). False when it is there already.
    /// - Throws: when the keyring is full.
    @discardableResult
    public mutating func install(_ key: ClusterKey) throws(CryptoError) -> Bool {
        if keys.contains(key) { return false }
        guard keys.count < Self.maxKeys else {
            throw .invalidKeyText("the keyring is full (\(Self.maxKeys) keys): remove a key first")
        }
        keys.append(key)
        return true
    }

    /// Makes an installed key the primary one. False when it is primary already.
    /// - Throws: when the key is not installed.
    @discardableResult
    public mutating func use(_ key: ClusterKey) throws(CryptoError) -> Bool {
        guard let i = keys.firstIndex(of: key) else {
            throw .invalidKeyText("key \(key.keyID) is not installed: install it first")
        }
        if i == 0 { return false }
        keys.remove(at: i)
        keys.insert(key, at: 0)
        return true
    }

    /// Removes a key that is not primary. False when it was not installed.
    /// - Throws: when it is the primary key.
    @discardableResult
    public mutating func remove(_ key: ClusterKey) throws(CryptoError) -> Bool {
        guard let i = keys.firstIndex(of: key) else { return false }
        guard i != 0 else {
            throw .invalidKeyText("key \(key.keyID) is the primary key: make another key primary first")
        }
        keys.remove(at: i)
        return true
    }
}

extension ClusterKey {
    /// This key's public fingerprint (16 hex characters): how `weft keys` names it. The same
    /// value as ``clusterID``, which a one-key cluster shows as its id.
    public var keyID: String { clusterID }
}
