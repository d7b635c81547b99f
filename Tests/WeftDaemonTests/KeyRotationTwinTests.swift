import Foundation
import WeftAPI
import WeftCore
import WeftCrypto
import WeftTestKit
import XCTest

@testable import WeftDaemon

/// Issue 9 (4): a cluster key rotation on running nodes — the interpreter with real sealing,
/// real libsodium tunnels and push-pull over TCP, on the packet plane's twin. Install, use and
/// remove each reach every member from whichever node is asked; no member is suspected (no
/// incarnation moves), established tunnels keep carrying packets, and new handshakes work at
/// every step; afterwards a node with only the old key is refused. `weft keys` requests are
/// signed: forged, misaddressed, stale and replayed ones change nothing.
extension NodeRuntimeTwinTests {
    private func overlay(_ r: Running) async throws -> UInt32 { try XCTUnwrap(r.plane.tun).address }

    /// Sends one container packet from `src` to `dst` and waits until it comes out of dst's TUN.
    private func carry(_ label: String, from src: Running, to dst: Running) async throws {
        let packet = Self.ipv4Packet(from: try await overlay(src), to: try await overlay(dst), payload: Array(label.utf8))
        _ = src.plane.sendFromTUN(packet)
        try await eventually(20, "\(label): the packet arrives") { dst.plane.tunOutput.contains(packet) }
    }

    private func incarnations(_ nodes: [Running]) async -> [String: UInt64] {
        var out: [String: UInt64] = [:]
        for n in nodes { for m in await n.runtime.members() { out["\(n.id.short)->\(m.name)"] = m.incarnation } }
        return out
    }

    func testRotationReachesEveryMemberLosesNoMemberNorTunnelAndCutsOffTheOldKey() async throws {
        let a = try await startNode(name: "a", seeds: [])
        let b = try await startNode(name: "b", seeds: [a.plane.endpoint])
        let c = try await startNode(name: "c", seeds: [a.plane.endpoint])
        let all = [a, b, c]
        try await eventually(30, "three alive members everywhere, with overlay addresses and routes") {
            for n in all {
                let m = await n.runtime.members()
                guard m.count == 3, m.allSatisfy({ $0.state == "alive" }), n.plane.tun != nil, n.plane.routes.count >= 2 else { return false }
            }
            return true
        }
        try await carry("a to b before the rotation", from: a, to: b)
        func doctorKeys(_ n: Running) async -> API.DoctorCheck? { await n.runtime.doctor().checks.first { $0.check == "keys" } }
        let calm = await doctorKeys(b)
        XCTAssertEqual(calm?.status, "ok")
        XCTAssertTrue(calm?.message.contains("3 members hold the same cluster key") ?? false, calm?.message ?? "no keys line")
        let before = await incarnations(all)
        let old = key, new = ClusterKey.generate()

        // Install, asked on a: every member accepts both keys, still seals with the old one.
        let installed = try await a.runtime.keysOperation(.keysInstall, key: new.text, local: false).get()
        XCTAssertTrue(installed.complete, "\(installed.members)")
        XCTAssertEqual(installed.members.filter(\.changed).count, 3)
        for n in all { let ids = await n.runtime.keyIDs; XCTAssertEqual(ids, [old.keyID, new.keyID]) }
        for n in all { let count = await n.runtime.tunnel?.presharedKeyCount; XCTAssertEqual(count, 2, "the tunnels accept both pre-shared keys") }
        try await carry("a to b after install", from: a, to: b)
        let midway = await doctorKeys(c)
        XCTAssertEqual(midway?.status, "ok")
        XCTAssertTrue(midway?.message.contains("rotation in progress") ?? false, midway?.message ?? "no keys line")

        // Use, asked on b.
        let used = try await b.runtime.keysOperation(.keysUse, key: String(new.keyID.prefix(8)), local: false).get()
        XCTAssertTrue(used.complete)
        XCTAssertEqual(used.keys.first?.primaryOn.count, 3)
        for n in all { let ids = await n.runtime.keyIDs; XCTAssertEqual(ids, [new.keyID, old.keyID]) }
        try await carry("a to b on the session made under the old key", from: a, to: b)
        try await carry("c to a: a new handshake, initiated with the new key", from: c, to: a)

        // Removing the primary key is refused on the asked node, before anything changes.
        let refused = await c.runtime.keysOperation(.keysRemove, key: new.keyID, local: false)
        guard case .failure(let e) = refused else { return XCTFail("removing the primary key was accepted") }
        XCTAssertEqual(e.code, .conflict)
        XCTAssertTrue(e.message.contains("primary"), e.message)

        // Remove the old one, asked on c.
        let removed = try await c.runtime.keysOperation(.keysRemove, key: old.keyID, local: false).get()
        XCTAssertTrue(removed.complete)
        for n in all { let ids = await n.runtime.keyIDs; XCTAssertEqual(ids, [new.keyID]) }
        for n in all { let count = await n.runtime.tunnel?.presharedKeyCount; XCTAssertEqual(count, 1, "the tunnels accept only the new pre-shared key") }
        try await carry("a to b after remove", from: a, to: b)
        try await carry("b to c: a new handshake with only the new key", from: b, to: c)

        // A key installed on c alone: the doctor on a names it and where it is missing.
        let extra = ClusterKey.generate()
        _ = try await c.runtime.keysOperation(.keysInstall, key: extra.text, local: true).get()
        let uneven = await doctorKeys(a)
        XCTAssertEqual(uneven?.status, "warn")
        XCTAssertTrue(uneven?.message.contains("\(extra.keyID) is missing on a, b") ?? false, uneven?.message ?? "no keys line")
        _ = try await c.runtime.keysOperation(.keysRemove, key: extra.keyID, local: true).get()

        // Gossip kept flowing under the new key: nobody was suspected, so no incarnation moved.
        try await Task.sleep(for: .seconds(2))
        for n in all {
            let m = await n.runtime.members()
            XCTAssertTrue(m.count == 3 && m.allSatisfy { $0.state == "alive" }, "\(m.map { "\($0.name) \($0.state)" })")
        }
        let after = await incarnations(all)
        XCTAssertEqual(before, after, "a member was suspected during the rotation")

        // A node with only the removed key: its push-pull is refused, with a message that says why.
        let stale = try await startNode(name: "stale", seeds: [a.plane.endpoint], clusterKey: old)
        let problem = await stale.runtime.pushPull(with: a.plane.endpoint)
        let p = try XCTUnwrap(problem, "a member answered a push-pull sealed with the removed key")
        XCTAssertTrue(p.contains("does not accept this node's cluster key") && p.contains(old.keyID), p)
        let aMembers = await a.runtime.members()
        XCTAssertFalse(aMembers.contains { $0.name == "stale" }, "the old-key node was admitted")

        // Its way back: the new key on that node alone (--local), then push-pull works.
        let localInstall = try await stale.runtime.keysOperation(.keysInstall, key: new.text, local: true).get()
        XCTAssertEqual(localInstall.members.map(\.name), ["stale"], "--local asks no other member")
        _ = try await stale.runtime.keysOperation(.keysUse, key: new.keyID, local: true).get()
        let retry = await stale.runtime.pushPull(with: a.plane.endpoint)
        XCTAssertNil(retry, "the node with the new key installed locally is answered")
        try await eventually(20, "a sees the node that caught up alive") {
            await a.runtime.members().contains { $0.name == "stale" && $0.state == "alive" }
        }
    }

    func testKeysRequestsAreSignedAddressedFreshAndTakenOnce() async throws {
        let a = try await startNode(name: "a", seeds: [])
        let b = try await startNode(name: "b", seeds: [a.plane.endpoint])
        try await eventually(30, "a and b alive on both") {
            let am = await a.runtime.members(), bm = await b.runtime.members()
            return am.count == 2 && bm.count == 2 && (am + bm).allSatisfy { $0.state == "alive" }
        }
        let intruderKey = ClusterKey.generate()
        let before = await b.runtime.keyIDs
        let signer = await a.runtime.identity.keyPair
        let bKey = await b.runtime.identity.keyPair.publicKey
        func request(_ op: NodeRuntime.KeysOp, _ key: String?, to: NodeID) async throws -> OperatorWire.Request {
            let r = await a.runtime.signedKeysRequest(op, key: key, to: to, recipientKey: bKey)
            return try XCTUnwrap(r)
        }
        func sign(_ r: inout OperatorWire.Request, with k: IdentityKeyPair) {
            r.signature = Hex.encode(k.sign(NodeRuntime.keysRequestMessage(r)))
        }

        // A genuine request from a is taken, once.
        let genuine = try await request(.list, nil, to: b.id)
        let first = await b.runtime.onKeysRequest(genuine)
        XCTAssertNil(first.problem)
        let replay = await b.runtime.onKeysRequest(genuine)
        XCTAssertEqual(replay.problem, "a replayed request")

        var forgeries: [(String, OperatorWire.Request)] = []
        // Unsigned.
        var unsigned = try await request(.install, intruderKey.text, to: b.id)
        unsigned.signature = nil
        forgeries.append(("unsigned", unsigned))
        // In a's name, signed by someone else (a cluster-key holder without a's identity).
        var wrongSigner = try await request(.install, intruderKey.text, to: b.id)
        sign(&wrongSigner, with: IdentityKeyPair.generate())
        forgeries.append(("signed by a stranger in a's name", wrongSigner))
        // From an identity that is no member.
        let stranger = IdentityKeyPair.generate()
        var notMember = try await request(.install, intruderKey.text, to: b.id)
        notMember.from = stranger.nodeID.hex
        sign(&notMember, with: stranger)
        forgeries.append(("from a non-member", notMember))
        // A genuine request to a, replayed to b.
        forgeries.append(("addressed to another member", try await request(.install, intruderKey.text, to: a.id)))
        // Signed by a, but ten minutes old.
        var stale = try await request(.install, intruderKey.text, to: b.id)
        stale.sentAt = (stale.sentAt ?? 0) - 600_000_000_000
        sign(&stale, with: signer)
        forgeries.append(("ten minutes old", stale))
        // Signed by a, then the key swapped.
        var swapped = try await request(.install, ClusterKey.generate().text, to: b.id)
        swapped.key = intruderKey.text
        forgeries.append(("key changed after signing", swapped))
        // Removal of b's only key in a's name, unsigned.
        var removal = try await request(.remove, key.keyID, to: b.id)
        removal.signature = "00"
        forgeries.append(("bad signature on remove", removal))

        // The key an install hands out is sealed to the recipient: not in the clear under the
        // cluster key, and no other member (here a, which holds the cluster key) can open it.
        let sealedInstall = try await request(.install, intruderKey.text, to: b.id)
        XCTAssertFalse(sealedInstall.key?.contains("weft1:") ?? true)
        let sealedBytes = try XCTUnwrap(Hex.decode(sealedInstall.key ?? ""))
        XCTAssertNil(SealedBox.open(sealedBytes, with: signer), "a member other than the recipient opened the new key")
        let bIdentity = await b.runtime.identity.keyPair
        XCTAssertNotNil(SealedBox.open(sealedBytes, with: bIdentity))
        // A genuine install whose key was sealed to someone else is refused.
        var elsewhere = try await request(.install, intruderKey.text, to: b.id)
        elsewhere.key = Hex.encode(try XCTUnwrap(SealedBox.seal(Array(intruderKey.text.utf8), to: signer.publicKey)))
        sign(&elsewhere, with: signer)
        forgeries.append(("key sealed to another member", elsewhere))

        let refusedBefore = await b.runtime.status().drops["keys-refused"] ?? 0
        for (what, r) in forgeries {
            let answer = await b.runtime.onKeysRequest(r)
            XCTAssertNotNil(answer.problem, "\(what) was taken")
            XCTAssertFalse(answer.changed, what)
        }
        let after = await b.runtime.keyIDs
        XCTAssertEqual(after, before, "a forged request changed b's keyring")
        let refusedAfter = await b.runtime.status().drops["keys-refused"] ?? 0
        XCTAssertEqual(refusedAfter - refusedBefore, UInt64(forgeries.count + 0), "every refusal is counted")
    }
}
