import XCTest
import WeftCrypto
@testable import WeftCore

/// Issue 9 (2): membership claims are signed by who may make them. The attacker here holds the
/// cluster key (it can put any plaintext into a datagram or push-pull) and everything a
/// push-pull hands out (ids, records, record signatures, keys), and may even be a member with
/// an identity of its own, but holds no other member's identity key. Real Ed25519 throughout.
final class MembershipClaimsTests: XCTestCase {
    typealias M = Membership

    struct Party {
        let keys: IdentityKeyPair
        let member: M.Member
        var id: NodeID { member.id }
        var signer: M.ClaimSigner { .ed25519(identity: keys) }
        func sign(_ message: [UInt8]) -> [UInt8] { keys.sign(message) }
        func accusation(of m: M.Member, _ state: M.MemberState) -> M.Update {
            var u = M.Update(m)
            u.state = state
            u.from = id
            u.stateSignature = sign(M.Claims.accusation(subject: m.id, incarnation: m.incarnation, accuser: id))
            return u
        }
    }

    static func party(_ i: Int, incarnation: UInt64 = 1) -> Party {
        let keys = IdentityKeyPair.generate()
        var m = M.Member(id: keys.nodeID, name: "node-\(i)", address: Endpoint(address: .v4(0x7F00_0000 | UInt32(i)), port: 7946),
                         publicKey: keys.publicKey.bytes, incarnation: incarnation, state: .alive)
        m.recordSignature = keys.sign(M.Claims.record(of: m))
        return Party(keys: keys, member: m)
    }

    static let settings: M.Settings = {
        var s = M.Settings.fast
        s.suspicionConfirmations = 2
        return s
    }()

    /// The receiver `b`, knowing `others` (their own signed records).
    static func receiver(_ b: Party, knowing others: [Party], settings: M.Settings = settings) -> M.Instance {
        M.Instance(myself: b.member, settings: settings, seed: 7, now: .zero, knownMembers: others.map(\.member),
                   identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) }, signer: b.signer)
    }

    static func gossip(_ updates: [M.Update], source: NodeID) -> [UInt8] {
        M.Codec.encode(M.Message.gossip(source: source, M.Piggyback(updates: updates)))
    }

    static func random(_ n: Int, _ rng: inout DeterministicRNG) -> [UInt8] { (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) } }

    func drops(_ ds: [M.Directive]) -> [M.DropReason] {
        ds.compactMap { if case .dropped(let r) = $0 { return r }; return nil }
    }

    // MARK: forged alive

    /// An alive at a higher incarnation that moves another member's address: refused, whether
    /// it carries the victim's old signature, a signature of the attacker's own, or garbage.
    func testForgedAliveMovingAnAddressIsDropped() {
        let a = Self.party(1), b = Self.party(2), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, e])
        var forged = M.Update(a.member)
        forged.incarnation = 2
        forged.address = Endpoint(address: .v4(0x7F00_0063), port: 7946)
        for sig in [a.member.recordSignature, e.sign(M.Claims.record(of: forged)), [UInt8](repeating: 7, count: 64)] {
            forged.signature = sig
            let ds = inst.onDatagram(Self.gossip([forged], source: e.id), from: e.member.address, now: .zero + .seconds(1))
            XCTAssertEqual(drops(ds), [.badRecordSignature], "\(ds)")
            XCTAssertEqual(inst.member(a.id)?.address, a.member.address)
            XCTAssertEqual(inst.member(a.id)?.incarnation, 1)
        }
        // The member's own signed record at the higher incarnation is taken.
        forged.signature = a.sign(M.Claims.record(of: forged))
        _ = inst.onDatagram(Self.gossip([forged], source: e.id), from: e.member.address, now: .zero + .seconds(2))
        XCTAssertEqual(inst.member(a.id)?.address, forged.address)
        XCTAssertEqual(inst.member(a.id)?.incarnation, 2)
    }

    /// A record whose id is not its key's (nodeID derivation): refused before the signature.
    func testRecordWithSomeoneElsesKeyIsDropped() {
        let a = Self.party(1), b = Self.party(2), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [e])
        var stranger = M.Update(e.member)
        stranger.id = a.id  // a's id with the attacker's key (and a valid signature by that key)
        stranger.signature = e.sign(M.Claims.record(of: stranger))
        let ds = inst.onDatagram(Self.gossip([stranger], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(drops(ds), [.identityMismatch])
        XCTAssertNil(inst.member(a.id))
        // An unknown member whose record is not signed by its key is not learned.
        var unsigned = M.Update(a.member)
        unsigned.signature = Array(repeating: 0, count: 64)
        let ds2 = inst.onDatagram(Self.gossip([unsigned], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(drops(ds2), [.badRecordSignature])
        XCTAssertNil(inst.member(a.id))
    }

    // MARK: forged dead and suspect

    /// A dead about a healthy member with a signature the claimed accuser never made: ignored.
    func testDeadWithForgedAccuserSignatureIsDropped() {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, c, e])
        var forged = c.accusation(of: a.member, .dead)
        forged.stateSignature = e.sign(M.Claims.accusation(subject: a.id, incarnation: 1, accuser: c.id))
        var ds = inst.onDatagram(Self.gossip([forged], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(drops(ds), [.badAccusation])
        XCTAssertEqual(inst.member(a.id)?.state, .alive)
        // An accuser nobody knows cannot be checked: dropped too.
        let ghost = Self.party(8)
        ds = inst.onDatagram(Self.gossip([ghost.accusation(of: a.member, .dead)], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(drops(ds), [.unknownAccuser])
        // The subject as its own accuser is not an accusation.
        ds = inst.onDatagram(Self.gossip([a.accusation(of: a.member, .dead)], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(drops(ds), [.badAccusation])
        XCTAssertEqual(inst.member(a.id)?.state, .alive)
    }

    /// A member alone (here a rogue member with its own valid identity) cannot make a healthy
    /// member dead: its dead is a suspicion, the subject's refutation wins; even repeated at
    /// every new incarnation, the subject is never dead at a receiver that hears the refutation.
    func testLoneAccuserMakesOnlyASuspicionAndRefutationWins() {
        var a = Self.party(1)
        let b = Self.party(2), c = Self.party(3), d = Self.party(4), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, c, d, e])
        for round in 0..<5 {
            let t = Duration.seconds(Int64(1 + round))
            let ds = inst.onDatagram(Self.gossip([e.accusation(of: a.member, .dead)], source: e.id), from: e.member.address, now: .zero + t)
            XCTAssertEqual(drops(ds), [], "round \(round)")
            XCTAssertEqual(inst.member(a.id)?.state, .suspect, "a lone dead is only a suspicion (round \(round))")
            // The same accusation again changes nothing and is not verified again.
            let before = inst.claimStats.verifications
            _ = inst.onDatagram(Self.gossip([e.accusation(of: a.member, .dead)], source: e.id), from: e.member.address, now: .zero + t)
            XCTAssertEqual(inst.claimStats.verifications, before)
            // a refutes: its own record at incarnation + 1.
            var refuted = a.member
            refuted.incarnation += 1
            refuted.recordSignature = a.sign(M.Claims.record(of: refuted))
            a = Party(keys: a.keys, member: refuted)
            _ = inst.onDatagram(Self.gossip([M.Update(refuted)], source: a.id), from: a.member.address, now: .zero + t)
            XCTAssertEqual(inst.member(a.id)?.state, .alive)
            XCTAssertEqual(inst.member(a.id)?.incarnation, refuted.incarnation)
        }
    }

    /// Honest detection still works: `deadQuorum` (2) distinct signed accusers make a dead
    /// final at once; a receiver whose own probe failed takes the first dead.
    func testDeadNeedsQuorumOrOwnProbe() {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), d = Self.party(4), e = Self.party(5)
        var inst = Self.receiver(b, knowing: [a, c, d, e])
        XCTAssertEqual(inst.deadQuorum, 2)
        _ = inst.onDatagram(Self.gossip([d.accusation(of: a.member, .dead)], source: d.id), from: d.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(inst.member(a.id)?.state, .suspect, "one accuser is not enough")
        _ = inst.onDatagram(Self.gossip([d.accusation(of: a.member, .dead)], source: d.id), from: d.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(inst.member(a.id)?.state, .suspect, "nor the same accuser twice")
        _ = inst.onDatagram(Self.gossip([c.accusation(of: a.member, .suspect)], source: c.id), from: c.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(inst.member(a.id)?.state, .suspect, "two suspects are a suspicion")
        _ = inst.onDatagram(Self.gossip([e.accusation(of: a.member, .dead)], source: e.id), from: e.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(inst.member(a.id)?.state, .dead, "a dead with distinct accusers is final")
        XCTAssertEqual(inst.member(a.id)?.stateBy, e.id)
        // Own probing: a receiver that itself accused takes the first dead from anyone.
        var own = Self.receiver(b, knowing: [a, c, d, e])
        let mine = M.Update(a.member)
        _ = own.onDatagram(Self.gossip([mine], source: a.id), from: a.member.address, now: .zero)
        var t = Instant.zero
        while own.member(a.id)?.state == .alive && t < .zero + .seconds(30) {  // a never answers: b suspects it
            t = own.nextWakeup
            _ = own.onTick(now: t)
        }
        XCTAssertEqual(own.member(a.id)?.state, .suspect)
        XCTAssertEqual(own.member(a.id)?.stateBy, b.id)
        _ = own.onDatagram(Self.gossip([d.accusation(of: a.member, .dead)], source: d.id), from: d.member.address, now: t)
        XCTAssertEqual(own.member(a.id)?.state, .dead)
    }

    /// A lone dead makes the receiver probe the subject itself (ping, then ping-reqs): an
    /// answer keeps it a suspicion; silence until the end of the probe period is this node's
    /// own failed probe, and the dead becomes final here, accused by this node.
    func testLoneDeadIsConfirmedByOwnProbe() throws {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), d = Self.party(4)
        for answers in [true, false] {
            // Default timing (probe 1 s, timeout 500 ms): the confirmation ends at t0 + 1 s, before
            // any regular probe started at or after t0 could fail (t0 + 1.5 s).
            var inst = Self.receiver(b, knowing: [a, c, d], settings: .default)
            let t0 = Instant.zero + .seconds(5)
            let ds = inst.onDatagram(Self.gossip([d.accusation(of: a.member, .dead)], source: d.id), from: d.member.address, now: t0)
            XCTAssertEqual(inst.member(a.id)?.state, .suspect)
            let pings = ds.compactMap { d -> UInt32? in
                if case .send(let bytes, let to) = d, to == a.member.address,
                   case .ping(let seq, let target, _, _)? = try? M.Codec.decodeMessage(bytes), target == a.id { return seq }
                return nil
            }
            let seq = try XCTUnwrap(pings.first, "no confirmation ping to the accused: \(ds)")
            if answers {
                let ack = M.Codec.encode(M.Message.ack(seq: seq, source: a.id, M.Piggyback()))
                _ = inst.onDatagram(ack, from: a.member.address, now: t0 + .milliseconds(10))
            }
            var t = t0
            while t < t0 + .milliseconds(1200) {
                t = max(t, min(inst.nextWakeup, t0 + .milliseconds(1200)))
                _ = inst.onTick(now: t)
            }
            if answers {
                XCTAssertEqual(inst.member(a.id)?.state, .suspect, "it answered: still only a suspicion")
            } else {
                XCTAssertEqual(inst.member(a.id)?.state, .dead, "no answer: our own probe failed")
                XCTAssertEqual(inst.member(a.id)?.stateBy, b.id)
            }
        }
    }

    /// A forged suspect or dead about the receiver itself makes it neither refute nor move.
    func testForgedAccusationAboutMeIsNotRefuted() {
        let b = Self.party(2), c = Self.party(3), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [c, e])
        for state in [M.MemberState.suspect, .dead] {
            var forged = c.accusation(of: b.member, state)
            forged.stateSignature = Array(repeating: 1, count: 64)
            let ds = inst.onDatagram(Self.gossip([forged], source: e.id), from: e.member.address, now: .zero + .seconds(1))
            XCTAssertEqual(drops(ds), [.badAccusation])
            XCTAssertEqual(inst.myself.incarnation, 1)
        }
        // A real accusation is refuted.
        let ds = inst.onDatagram(Self.gossip([c.accusation(of: b.member, .suspect)], source: c.id), from: c.member.address, now: .zero + .seconds(2))
        XCTAssertTrue(ds.contains(.persistIncarnation(2)))
        XCTAssertTrue(M.Instance.isGossipable(inst.myself))
        XCTAssertTrue(NodeIdentity.matches(inst.myself.id, publicKey: inst.myself.publicKey))
        XCTAssertTrue(try PublicKey(bytes: b.member.publicKey).verify(inst.myself.recordSignature, of: M.Claims.record(of: inst.myself)))
    }

    // MARK: forged left

    /// Left only from the subject: a left signed by anyone else, or carrying the subject's
    /// record signature, is dropped; the subject's own left is taken.
    func testLeftOnlyFromTheSubject() {
        let a = Self.party(1), b = Self.party(2), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, e])
        var left = M.Update(a.member)
        left.state = .left
        for (from, sig) in [(a.id, a.member.recordSignature), (a.id, e.sign(M.Claims.left(subject: a.id, incarnation: 1))),
                            (e.id, e.sign(M.Claims.left(subject: a.id, incarnation: 1)))] {
            left.from = from
            left.stateSignature = sig
            let ds = inst.onDatagram(Self.gossip([left], source: e.id), from: e.member.address, now: .zero + .seconds(1))
            XCTAssertEqual(drops(ds), [.badLeftSignature])
            XCTAssertEqual(inst.member(a.id)?.state, .alive)
        }
        left.from = a.id
        left.stateSignature = a.sign(M.Claims.left(subject: a.id, incarnation: 1))
        _ = inst.onDatagram(Self.gossip([left], source: a.id), from: a.member.address, now: .zero + .seconds(1))
        XCTAssertEqual(inst.member(a.id)?.state, .left)
    }

    // MARK: push-pull, restarts, property

    /// The same forgeries inside a push-pull are refused the same way.
    func testForgedPushPullIsRefused() {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, c, e])
        var moved = M.Update(a.member); moved.incarnation = 5; moved.address = e.member.address
        var dead = c.accusation(of: a.member, .dead); dead.stateSignature = Array(repeating: 3, count: 64)
        var left = M.Update(a.member); left.state = .left; left.stateSignature = a.member.recordSignature
        let pp = M.PushPull(isReply: false, source: e.id, join: false, members: [moved, dead, left], appState: [])
        let (reply, ds) = inst.onPushPull(M.Codec.encode(pp), from: e.member.address, appState: [], now: .zero + .seconds(1))
        XCTAssertNotNil(reply)
        XCTAssertEqual(drops(ds).sorted { $0.rawValue < $1.rawValue },
                       [.badAccusation, .badLeftSignature, .badRecordSignature].sorted { $0.rawValue < $1.rawValue })
        XCTAssertEqual(inst.member(a.id)?.state, .alive)
        XCTAssertEqual(inst.member(a.id)?.address, a.member.address)
        // The reply carries only signed claims, and they verify.
        let decoded = try! M.Codec.decodePushPull(reply!, maxBytes: 1 << 20)
        for u in decoded.members {
            XCTAssertTrue(try PublicKey(bytes: u.publicKey).verify(u.signature, of: M.Claims.record(of: u)), "\(u.id)")
        }
    }

    /// Stored members are re-verified at a restart: a tampered record is not loaded, a stored
    /// dead whose accusation does not verify comes back alive, a signed one stays dead.
    func testRestartReverifiesStoredClaims() {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), d = Self.party(4)
        var tampered = a.member; tampered.address = d.member.address
        var deadC = c.member; deadC.state = .dead; deadC.stateBy = d.id
        deadC.stateSignature = d.sign(M.Claims.accusation(subject: c.id, incarnation: 1, accuser: d.id))
        var fakeDeadD = d.member; fakeDeadD.state = .dead; fakeDeadD.stateBy = c.id; fakeDeadD.stateSignature = Array(repeating: 5, count: 64)
        let inst = M.Instance(myself: b.member, settings: Self.settings, seed: 1, now: .zero, knownMembers: [tampered, deadC, fakeDeadD],
                              identityCheck: { id, key in NodeIdentity.matches(id, publicKey: key) }, signer: b.signer)
        XCTAssertNil(inst.member(a.id))
        XCTAssertEqual(inst.member(c.id)?.state, .dead)
        XCTAssertEqual(inst.member(d.id)?.state, .alive)
    }

    /// Property: a thousand random forgeries by a cluster-key holder (random states,
    /// incarnations, addresses, claimed accusers, signatures random or lifted from other
    /// claims it has seen) never change the victim's record and never make it dead or left;
    /// the receiver's own incarnation never moves.
    func testRandomForgeriesNeverChangeTheVictim() {
        let a = Self.party(1), b = Self.party(2), c = Self.party(3), e = Self.party(9)
        var inst = Self.receiver(b, knowing: [a, c, e])
        var rng = DeterministicRNG(seed: 2026)
        // Signatures the attacker has seen: every record, and accusations it made itself.
        let seen = [a.member.recordSignature, b.member.recordSignature, c.member.recordSignature,
                    e.sign(M.Claims.accusation(subject: a.id, incarnation: 1, accuser: e.id)),
                    e.sign(M.Claims.left(subject: a.id, incarnation: 1))]
        for i in 0..<1000 {
            let victim = Bool.random(using: &rng) ? a : b
            var u = M.Update(victim.member)
            u.state = M.MemberState(rawValue: UInt8.random(in: 0...3, using: &rng))!
            u.incarnation = UInt64.random(in: 0...4, using: &rng)
            if Bool.random(using: &rng) { u.address = Endpoint(address: .v4(UInt32.random(in: 1...UInt32.max, using: &rng)), port: 7946) }
            u.from = [a.id, b.id, c.id, e.id].randomElement(using: &rng)!
            if u.from == e.id && u.state != .alive && u.state != .left { continue }  // e's own accusations are real ones
            u.signature = Bool.random(using: &rng) ? Self.random(64, &rng) : seen.randomElement(using: &rng)!
            if u.state != .alive { u.stateSignature = Bool.random(using: &rng) ? Self.random(64, &rng) : seen.randomElement(using: &rng)! }
            let ds = inst.onDatagram(Self.gossip([u], source: e.id), from: e.member.address, now: .zero + .milliseconds(Int64(i)))
            let m = inst.member(a.id)!
            XCTAssertEqual(m.address, a.member.address, "iteration \(i): \(u) -> \(ds)")
            XCTAssertEqual(m.incarnation, 1, "iteration \(i)")
            XCTAssertTrue(m.state == .alive, "iteration \(i): \(m)")
            XCTAssertEqual(inst.myself.incarnation, 1, "iteration \(i): \(ds)")
        }
    }

    /// Wire: every update carries the record signature, non-alive ones the state signature;
    /// version 1 is refused.
    func testWireVersionTwoCarriesSignatures() throws {
        let a = Self.party(1), c = Self.party(3)
        let alive = M.Update(a.member)
        let dead = c.accusation(of: a.member, .dead)
        let bytes = Self.gossip([alive, dead], source: c.id)
        XCTAssertEqual(bytes[0], 2)
        let decoded = try M.Codec.decodeMessage(bytes)
        XCTAssertEqual(decoded.piggyback.updates, [alive, dead])
        XCTAssertEqual(alive.encodedSize + 64, dead.encodedSize)
        var v1 = bytes; v1[0] = 1
        XCTAssertThrowsError(try M.Codec.decodeMessage(v1))
    }
}
