import Foundation
import Logging
import WeftAPI
import WeftCore
import WeftCrypto

/// `weft keys list|install|use|remove`: the cluster keyring, changed on a running cluster
/// (docs/security.md, "Key rotation"; docs/operations.md, "Rotating the cluster key").
///
/// The node the command talks to changes its own keyring, then asks every alive or suspect
/// member to do the same over the operator wire (TCP kind 17, mode `keys`). Each request is
/// signed by the asking member's identity key over the recipient's id, the operation, the key,
/// the asker's wall clock and a nonce; a member takes it only from a known member, within two
/// minutes of its own clock, and once. So a holder of the cluster key alone cannot install,
/// promote or remove a key, and a captured request cannot be replayed. The key an `install`
/// hands out travels encrypted to the recipient's identity (`SealedBox`), not only under the
/// cluster key: whoever holds a leaked old key must not read the new one off the wire.
///
/// `use` first asks every member for its keyring and refuses unless each one answered and holds
/// the key (a member that sealed with a key others do not accept would be cut off); `remove`
/// refuses while any member seals with the key. `--local` (`API.Request.local`) changes only
/// this node: how a node that missed a rotation catches up.
extension NodeRuntime {
    enum KeysOp: String { case list, install, use, remove }

    /// How far the asker's clock may be from this node's.
    static let keysClockWindow: UInt64 = 120_000_000_000
    static let keysMaxNonces = 4096

    /// Called once at start with the keyring the node was started with.
    func setKeyring(_ k: ClusterKeyring, keyFile: String?) {
        keyring = k
        self.keyFile = keyFile
    }

    /// The ids of this node's keys, the primary first.
    var keyIDs: [String] { keyring?.keyIDs ?? [] }

    /// Puts `k` into effect: the file first (so what runs is what a restart finds), then the
    /// sealer (gossip, push-pull, IPAM, operator frames) and the tunnels' pre-shared keys.
    func applyKeyring(_ k: ClusterKeyring, reason: String) throws {
        if let keyFile { try Daemon.writeKeyring(k, to: keyFile) }
        keyring = k
        sealer.setKeyring(k)
        tunnel?.setPresharedKeys(k.keys.map { SodiumTunnelSuite.presharedKey(clusterKey: $0) })
        logger.notice("cluster keyring changed", metadata: [
            "event": "keys-changed", "change": .string(reason), "primary": .string(k.primary.keyID),
            "keys": .string(k.keyIDs.joined(separator: ",")),
        ])
    }

    /// Carries out one keyring operation on this node. `key` is the printed key (install) or
    /// an exact key id (use, remove). Returns whether the keyring changed, or why not.
    func applyKeyOp(_ op: KeysOp, key: String?) -> (changed: Bool, problem: String?) {
        guard var k = keyring else { return (false, "this node has no keyring") }
        do {
            switch op {
            case .list:
                return (false, nil)
            case .install:
                guard let text = key else { return (false, "install needs a key") }
                let newKey: ClusterKey
                do { newKey = try ClusterKey(text: text) } catch { return (false, "not a valid key: \(error)") }
                guard try k.install(newKey) else { return (false, nil) }
                try applyKeyring(k, reason: "install \(newKey.keyID)")
            case .use:
                guard let id = key, let found = k.keys.first(where: { $0.keyID == id }) else {
                    return (false, "key \(key ?? "?") is not installed on this member: install it first (`weft keys install`)")
                }
                guard try k.use(found) else { return (false, nil) }
                try applyKeyring(k, reason: "use \(found.keyID)")
            case .remove:
                guard let id = key, let found = k.keys.first(where: { $0.keyID == id }) else { return (false, nil) }
                guard try k.remove(found) else { return (false, nil) }
                try applyKeyring(k, reason: "remove \(found.keyID)")
            }
            return (true, nil)
        } catch {
            return (false, "\(error)")
        }
    }

    // MARK: - The signed request

    static func keysRequestMessage(_ r: OperatorWire.Request) -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.raw(Array("weft-keys-v1\0".utf8))
        for field in [r.from, r.to ?? "", r.keysOp ?? "", r.key ?? ""] {
            w.raw(Array(field.utf8)); w.u8(0)
        }
        w.u64(r.sentAt ?? 0)
        w.u64(r.nonce)
        return w.bytes
    }

    /// A signed request to `member`; for `install`, `key` is the printed key and is sent sealed
    /// to `recipientKey` (nil when that key is unusable).
    func signedKeysRequest(_ op: KeysOp, key: String?, to member: NodeID, recipientKey: PublicKey? = nil) -> OperatorWire.Request? {
        var r = OperatorWire.Request(mode: .keys, from: identity.keyPair.nodeID.hex, replyTo: identity.advertise.description,
                                     nonce: UInt64.random(in: 1...UInt64.max), replyNonce: 0, bigSize: 0)
        r.keysOp = op.rawValue
        if op == .install, let key {
            guard let pk = recipientKey, let sealed = SealedBox.seal(Array(key.utf8), to: pk) else { return nil }
            r.key = Hex.encode(sealed)
        } else {
            r.key = key
        }
        r.to = member.hex
        r.sentAt = WallClock.nanoseconds()
        r.signature = Hex.encode(identity.keyPair.sign(Self.keysRequestMessage(r)))
        return r
    }

    /// A member's `keys` request: checked, then carried out. Refusals are counted (`keys-refused`).
    func onKeysRequest(_ r: OperatorWire.Request) -> (keys: [String], problem: String?, changed: Bool) {
        func refuse(_ why: String) -> (keys: [String], problem: String?, changed: Bool) {
            metrics.drop(reason: "keys-refused")
            logger.warning("refused a keys request", metadata: ["event": "keys-refused", "from": .string(r.from), "why": .string(why)])
            return (keyIDs, why, false)
        }
        guard let opText = r.keysOp, let op = KeysOp(rawValue: opText) else { return refuse("unknown keys operation") }
        let me = identity.keyPair.nodeID
        guard r.to == me.hex else { return refuse("the request is addressed to another member") }
        guard let from = NodeID(hex: r.from), from != me,
              let asker = node.membership.members.first(where: { $0.id == from }),
              asker.state == .alive || asker.state == .suspect else {
            return refuse("the request is not from a live member of this cluster")
        }
        guard let sigHex = r.signature, let sig = Hex.decode(sigHex), let pk = try? PublicKey(bytes: asker.publicKey),
              pk.verify(sig, of: Self.keysRequestMessage(r)) else {
            return refuse("the request's signature does not verify with \(asker.name)'s key")
        }
        let wall = WallClock.nanoseconds()
        let sent = r.sentAt ?? 0
        let skew = wall > sent ? wall - sent : sent - wall
        guard skew <= Self.keysClockWindow else {
            return refuse("the request's clock is \(skew / 1_000_000_000) s away from this member's: check NTP on both hosts")
        }
        let t = now
        if keysNoncesSeen.count >= Self.keysMaxNonces {
            keysNoncesSeen = keysNoncesSeen.filter { t - $0.value < .seconds(2 * 120 + 10) }
            if keysNoncesSeen.count >= Self.keysMaxNonces { return refuse("too many keys requests: try again in a few minutes") }
        }
        guard keysNoncesSeen[r.nonce] == nil else { return refuse("a replayed request") }
        keysNoncesSeen[r.nonce] = t
        var key = r.key
        if op == .install {
            // The new key is sealed to this member's identity.
            guard let hex = r.key, let sealed = Hex.decode(hex), let plain = SealedBox.open(sealed, with: identity.keyPair) else {
                return refuse("the key in the request is not sealed to this member")
            }
            key = plain.withUnsafeBytes { String(decoding: $0, as: UTF8.self) }
        }
        let (changed, problem) = applyKeyOp(op, key: key)
        return (keyIDs, problem, changed)
    }

    // MARK: - The operator's command

    /// Asks `members` to carry out `op` (in parallel, 4 s each).
    func keysFanOut(_ op: KeysOp, key: String?, to members: [Membership.Member]) async -> [API.MemberKeys] {
        var out: [NodeID: API.MemberKeys] = [:]
        await withTaskGroup(of: API.MemberKeys.self) { g in
            for m in members {
                guard let request = signedKeysRequest(op, key: key, to: m.id, recipientKey: try? PublicKey(bytes: m.publicKey)) else {
                    out[m.id] = API.MemberKeys(id: m.id.hex, name: m.name, keys: nil, problem: "its identity key cannot be encrypted to", changed: false)
                    continue
                }
                g.addTask {
                    let (reply, problem) = await self.operatorExchange(request, to: m.address, timeout: .seconds(4))
                    guard let reply else { return API.MemberKeys(id: m.id.hex, name: m.name, keys: nil, problem: problem ?? "no answer", changed: false) }
                    guard let keys = reply.keys else {
                        return API.MemberKeys(id: m.id.hex, name: m.name, keys: nil, problem: "it runs a weft without `weft keys` (\(reply.version))", changed: false)
                    }
                    return API.MemberKeys(id: m.id.hex, name: m.name, keys: keys, problem: reply.keysProblem, changed: reply.keysChanged ?? false)
                }
            }
            for await r in g { if let id = NodeID(hex: r.id) { out[id] = r } }
        }
        return members.compactMap { out[$0.id] }
    }

    func keysOperation(_ operation: API.Operation, key argument: String?, local: Bool) async -> Result<API.KeysReport, API.ErrorBody> {
        guard let k = keyring else { return .failure(API.ErrorBody(code: .notReady, message: "the node has no keyring yet")) }
        let op: KeysOp
        switch operation {
        case .keysInstall: op = .install
        case .keysUse: op = .use
        case .keysRemove: op = .remove
        default: op = .list
        }
        // What the key argument names: the printed key for install, a key id otherwise.
        var wireKey: String?
        var keyID: String?
        switch op {
        case .list:
            break
        case .install:
            guard let text = argument, !text.isEmpty else { return .failure(API.ErrorBody(code: .badRequest, message: "keys install needs a KEY (the text `weft keygen` prints)")) }
            do {
                let key = try ClusterKey(text: text)
                wireKey = key.text; keyID = key.keyID
            } catch {
                return .failure(API.ErrorBody(code: .badRequest, message: "not a valid cluster key: \(error)"))
            }
        case .use, .remove:
            guard let text = argument?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                return .failure(API.ErrorBody(code: .badRequest, message: "keys \(op.rawValue) needs a KEY-ID (as `weft keys list` shows it)"))
            }
            if text.hasPrefix(ClusterKey.textPrefix) {
                guard let key = try? ClusterKey(text: text) else { return .failure(API.ErrorBody(code: .badRequest, message: "not a valid cluster key")) }
                keyID = key.keyID
            } else if let key = k.key(matching: text) {
                keyID = key.keyID
            } else if text.count == 16, text.allSatisfy(\.isHexDigit) {
                keyID = text.lowercased()
            } else {
                let ids = k.keyIDs.joined(separator: ", ")
                return .failure(API.ErrorBody(code: .notFound, message: "no key of this node matches \"\(text)\" (its keys: \(ids)); give the full 16-character id for a key only other members hold"))
            }
            wireKey = keyID
            if op == .use, !k.keyIDs.contains(keyID!) {
                return .failure(API.ErrorBody(code: .conflict, message: "key \(keyID!) is not installed on this node: install it first (`weft keys install`)"))
            }
            if op == .remove, k.primary.keyID == keyID {
                return .failure(API.ErrorBody(code: .conflict, message: "key \(keyID!) is this node's primary key: make another key primary first (`weft keys use`)"))
            }
        }
        let me = identity.keyPair.nodeID
        let others = local ? [] : node.membership.members.filter { $0.id != me && ($0.state == .alive || $0.state == .suspect) }
        let notAsked = local ? [] : node.membership.members.filter { $0.id != me && !($0.state == .alive || $0.state == .suspect) }.map(\.name).sorted()

        // Checks across the cluster before anything changes.
        if !local, let id = keyID, op == .use || op == .remove {
            let answers = await keysFanOut(.list, key: nil, to: others)
            if op == .use {
                let lacking = answers.filter { !($0.keys ?? []).contains(id) }
                if !lacking.isEmpty {
                    let lines = lacking.map { a in a.keys == nil ? "\(a.name) (did not answer: \(a.problem ?? "?"))" : "\(a.name) (holds \((a.keys ?? []).joined(separator: ", ")))" }
                    return .failure(API.ErrorBody(code: .conflict, message: "key \(id) is not installed on every live member, so nothing was changed: \(lines.joined(separator: "; ")). Install it there first (`weft keys install`, which reaches every live member), or change only this node with --local"))
                }
            } else {
                let sealing = answers.filter { ($0.keys ?? []).first == id }
                if !sealing.isEmpty {
                    return .failure(API.ErrorBody(code: .conflict, message: "key \(id) is still the primary key of \(sealing.map(\.name).joined(separator: ", ")), so nothing was changed: make another key primary everywhere first (`weft keys use`)"))
                }
            }
        }
        // This node first, then the others.
        let (changed, problem) = applyKeyOp(op, key: op == .install ? wireKey : keyID)
        if let problem { return .failure(API.ErrorBody(code: .conflict, message: problem)) }
        let mine = API.MemberKeys(id: me.hex, name: node.membership.myself.name, keys: keyIDs, problem: nil, changed: changed)
        let answers = others.isEmpty ? [] : await keysFanOut(op, key: wireKey, to: others)
        let members = [mine] + answers
        return .success(Self.keysReport(op: op, cluster: identity.clusterID, key: keyID, members: members, notAsked: notAsked))
    }

    static func keysReport(op: KeysOp, cluster: String, key: String?, members: [API.MemberKeys], notAsked: [String]) -> API.KeysReport {
        var order: [String] = []
        for m in members { for id in m.keys ?? [] where !order.contains(id) { order.append(id) } }
        let infos = order.map { id in
            API.KeyInfo(id: id,
                        primaryOn: members.filter { $0.keys?.first == id }.map(\.name),
                        installedOn: members.filter { ($0.keys ?? []).contains(id) }.map(\.name))
        }
        let complete = members.allSatisfy { $0.keys != nil && $0.problem == nil }
        return API.KeysReport(operation: op.rawValue, cluster: cluster, key: key, members: members, keys: infos, notAsked: notAsked, complete: complete)
    }
}
