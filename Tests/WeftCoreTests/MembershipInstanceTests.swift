import XCTest
@testable import WeftCore

/// Instance tests with an injected clock: every event is called by hand and the directives checked.
final class MembershipInstanceTests: XCTestCase {
    typealias M = Membership

    static func id(_ n: Int) -> NodeID { NodeID(high: 0x77, low: UInt64(n)) }
    static func key(_ id: NodeID) -> [UInt8] { id.bytes + id.bytes }
    static let check: @Sendable (NodeID, [UInt8]) -> Bool = { id, key in key == id.bytes + id.bytes }
    static func ep(_ n: Int) -> Endpoint { Endpoint(address: .v4(0x0A00_0000 | UInt32(n)), port: 7946) }
    static func member(_ n: Int, inc: UInt64 = 1, state: M.MemberState = .alive) -> M.Member {
        // Signed with `ClaimSigner.acceptAll`'s zeros (signatures are MembershipClaimsTests' subject).
        M.Member(id: id(n), name: "n\(n)", address: ep(n), publicKey: key(id(n)), incarnation: inc, state: state,
                 recordSignature: [UInt8](repeating: 0, count: 64), stateBy: state == .alive ? nil : id(n == 2 ? 3 : 2),
                 stateSignature: state == .alive ? [] : [UInt8](repeating: 0, count: 64))
    }
    /// The defaults with round suspicion numbers (α = 2, K = 3), so expected times are exact.
    static let settings: M.Settings = {
        var s = M.Settings.default
        s.suspicionAlpha = 2
        s.suspicionConfirmations = 3
        return s
    }()

    /// Node 1 knowing nodes 2...n.
    static func instance(_ me: Int = 1, others: [Int], settings: M.Settings = settings, seed: UInt64 = 1) -> M.Instance {
        M.Instance(myself: member(me), settings: settings, seed: seed, now: .zero,
                   knownMembers: others.map { member($0) }, identityCheck: check, signer: .acceptAll)
    }

    struct Sent { var message: M.Message; var to: Endpoint }
    static func sends(_ ds: [M.Directive]) -> [Sent] {
        ds.compactMap { d in
            if case .send(let b, let to) = d { return Sent(message: try! M.Codec.decodeMessage(b), to: to) }
            return nil
        }
    }
    static func changes(_ ds: [M.Directive]) -> [(M.Member, M.MemberState?)] {
        ds.compactMap { if case .memberChanged(let m, let p) = $0 { return (m, p) } else { return nil } }
    }
    static func gossipBytes(_ updates: [M.Update], from source: Int = 9) -> [UInt8] {
        M.Codec.encode(M.Message.gossip(source: id(source), M.Piggyback(updates: updates)))
    }

    /// Ticks at every wakeup until `until`, collecting directives with their times.
    static func run(_ inst: inout M.Instance, until: Instant) -> [(Instant, M.Directive)] {
        var out: [(Instant, M.Directive)] = []
        var guardCount = 0
        while inst.nextWakeup <= until && guardCount < 100_000 {
            let t = inst.nextWakeup
            for d in inst.onTick(now: t) { out.append((t, d)) }
            guardCount += 1
        }
        return out
    }

    /// Ticks every `step` from `from` to `until` (after a hand-made late tick, where `run`'s
    /// wakeups would lie in the past).
    static func tickEvery(_ step: Duration, _ inst: inout M.Instance, from: Instant, until: Instant) {
        var t = from
        while t <= until {
            _ = inst.onTick(now: t)
            t = t + step
        }
    }

    /// Runs until the first ping leaves; returns it, its time and target.
    static func firstPing(_ inst: inout M.Instance) -> (seq: UInt32, target: NodeID, to: Endpoint, at: Instant) {
        while true {
            let t = inst.nextWakeup
            for s in sends(inst.onTick(now: t)) {
                if case .ping(let seq, let target, _, _) = s.message { return (seq, target, s.to, t) }
            }
        }
    }

    func testProbeAckedGivesRTTAndNoSuspicion() throws {
        var a = Self.instance(others: [2])
        var b = Self.instance(2, others: [1])
        let ping = Self.firstPing(&a)
        XCTAssertEqual(ping.target, Self.id(2))
        XCTAssertEqual(ping.to, Self.ep(2))
        XCTAssertLessThanOrEqual(ping.at, Instant.zero + .seconds(1), "first probe within one interval")
        // b answers with an ack to a.
        let pingBytes = M.Codec.encode(M.Message.ping(seq: ping.seq, target: Self.id(2), source: Self.id(1), M.Piggyback()))
        let acks = Self.sends(b.onDatagram(pingBytes, from: Self.ep(1), now: ping.at + .milliseconds(1)))
        guard case .ack(let seq, let src, _)? = acks.first?.message else { return XCTFail("no ack: \(acks)") }
        XCTAssertEqual(seq, ping.seq); XCTAssertEqual(src, Self.id(2)); XCTAssertEqual(acks.first?.to, Self.ep(1))
        let ackBytes = M.Codec.encode(M.Message.ack(seq: seq, source: src, M.Piggyback()))
        let ds = a.onDatagram(ackBytes, from: Self.ep(2), now: ping.at + .milliseconds(2))
        XCTAssertTrue(ds.contains(.probeRTT(.milliseconds(2))), "\(ds)")
        let later = Self.run(&a, until: ping.at + .seconds(1) - .milliseconds(1))
        XCTAssertFalse(later.contains { if case .send(let b, _) = $0.1, case .pingReq = try? M.Codec.decodeMessage(b) { return true } else { return false } })
        XCTAssertEqual(a.member(Self.id(2))?.state, .alive)
        // A second ack for the same seq is stale.
        XCTAssertEqual(a.onDatagram(ackBytes, from: Self.ep(2), now: ping.at + .milliseconds(3)), [.dropped(.staleAck)])
    }

    /// A node that was starved (its ticks come late: CPU, a paused VM) does not blame the target
    /// for its own lateness. Before: one tick 1.5 s after the ping sent the ping-reqs and judged
    /// the probe at once, so the helpers never had a chance and every probe of a starved node
    /// became a suspicion (the 100-process benchmark on 2 cores saw thousands).
    func testLateTickGivesHelpersTheirWindowAndAQueuedAckStillCounts() throws {
        var a = Self.instance(others: [2, 3, 4, 5])
        let ping = Self.firstPing(&a)
        let late = ping.at + .milliseconds(1500)  // past the timeout and the period end
        let ds = a.onTick(now: late)
        let reqs = Self.sends(ds).filter { if case .pingReq = $0.message { return true } else { return false } }
        XCTAssertEqual(reqs.count, 3, "the ping-reqs go out, late")
        XCTAssertFalse(Self.changes(ds).contains { $0.0.id == ping.target }, "judged in the same late tick: \(ds)")
        XCTAssertEqual(a.member(ping.target)?.state, .alive)
        XCTAssertEqual(a.awareness, 1, "lateness counts against this node's own health")
        // An ack relayed within the helpers' window: no suspicion.
        let ack = M.Codec.encode(M.Message.ack(seq: ping.seq, source: Self.id(3), M.Piggyback()))
        _ = a.onDatagram(ack, from: Self.ep(3), now: late + .milliseconds(300))
        Self.tickEvery(.milliseconds(50), &a, from: late + .milliseconds(350), until: late + .seconds(2))
        XCTAssertEqual(a.member(ping.target)?.state, .alive)

        // Late at the verdict only (the ping-reqs left on time): the verdict waits lateGrace.
        var b = Self.instance(others: [2, 3, 4, 5])
        let p2 = Self.firstPing(&b)
        _ = b.onTick(now: p2.at + Self.settings.probeTimeout)  // ping-reqs on time
        let verdictLate = p2.at + Self.settings.probeInterval + .seconds(1)
        XCTAssertFalse(Self.changes(b.onTick(now: verdictLate)).contains { $0.0.id == p2.target })
        let ack2 = M.Codec.encode(M.Message.ack(seq: p2.seq, source: p2.target, M.Piggyback()))
        _ = b.onDatagram(ack2, from: p2.to, now: verdictLate + .milliseconds(1))  // read after the late tick
        Self.tickEvery(.milliseconds(50), &b, from: verdictLate + .milliseconds(50), until: verdictLate + .seconds(1))
        XCTAssertEqual(b.member(p2.target)?.state, .alive, "an ack waiting unread while starved still counts")

        // Silence after the grace is still a failed probe: lateness postpones, never acquits.
        var c = Self.instance(others: [2, 3, 4, 5])
        let p3 = Self.firstPing(&c)
        _ = c.onTick(now: p3.at + .milliseconds(1500))
        Self.tickEvery(.milliseconds(50), &c, from: p3.at + .milliseconds(1550), until: p3.at + .seconds(4))
        XCTAssertEqual(c.member(p3.target)?.state, .suspect, "a silent target is suspected after the grace")
    }

    func testPingForSomeoneElseIsDropped() {
        var b = Self.instance(2, others: [1])
        let bytes = M.Codec.encode(M.Message.ping(seq: 1, target: Self.id(3), source: Self.id(1), M.Piggyback()))
        XCTAssertEqual(b.onDatagram(bytes, from: Self.ep(1), now: .zero), [.dropped(.notForMe)])
    }

    func testProbeTimeoutSendsPingReqToKMembers() {
        var a = Self.instance(others: [2, 3, 4, 5, 6])
        let ping = Self.firstPing(&a)
        let ds = Self.run(&a, until: ping.at + Self.settings.probeTimeout)
        let reqs = Self.sends(ds.map(\.1)).filter { if case .pingReq = $0.message { return true } else { return false } }
        XCTAssertEqual(reqs.count, 3)
        XCTAssertEqual(Set(reqs.map(\.to)).count, 3, "distinct helpers")
        XCTAssertFalse(reqs.contains { $0.to == ping.to }, "the target is not asked to probe itself")
        for r in reqs {
            guard case .pingReq(let seq, let target, let address, _, let wantNack, _) = r.message else { continue }
            XCTAssertEqual(seq, ping.seq); XCTAssertEqual(target, ping.target); XCTAssertEqual(address, ping.to)
            XCTAssertTrue(wantNack)
        }
        XCTAssertTrue(ds.allSatisfy { $0.0 >= ping.at + Self.settings.probeTimeout }, "not before the timeout")
    }

    func testRelayForwardsPingAckAndSendsNackOnSilence() {
        var helper = Self.instance(3, others: [1, 2])
        let req = M.Codec.encode(M.Message.pingReq(seq: 42, target: Self.id(2), targetAddress: Self.ep(2), source: Self.id(1),
                                                   wantNack: true, M.Piggyback()))
        let t0 = Instant.zero + .seconds(5)
        let out = Self.sends(helper.onDatagram(req, from: Self.ep(1), now: t0))
        guard case .ping(let relaySeq, let target, _, _)? = out.first?.message else { return XCTFail("\(out)") }
        XCTAssertEqual(target, Self.id(2)); XCTAssertEqual(out.first?.to, Self.ep(2))
        // Silence: a nack goes back to the origin at 80 % of the probe timeout, so it arrives
        // before the origin's period ends.
        XCTAssertFalse(Self.sends(helper.onTick(now: t0 + .milliseconds(399))).contains { if case .nack = $0.message { return true }; return false })
        let ds = Self.sends(helper.onTick(now: t0 + .milliseconds(400)))
        XCTAssertTrue(ds.contains { if case .nack(42, Self.id(3), _) = $0.message, $0.to == Self.ep(1) { return true }; return false }, "\(ds)")
        // A late ack is still forwarded to the origin with its sequence number.
        let ack = M.Codec.encode(M.Message.ack(seq: relaySeq, source: Self.id(2), M.Piggyback()))
        let fwd = Self.sends(helper.onDatagram(ack, from: Self.ep(2), now: t0 + .milliseconds(600)))
        XCTAssertTrue(fwd.contains { if case .ack(42, _, _) = $0.message, $0.to == Self.ep(1) { return true }; return false }, "\(fwd)")
    }

    func testNacksKeepAwarenessDownWhileMissingNacksRaiseIt() {
        func failedProbe(nacks: Int) -> Int {
            var a = Self.instance(others: [2, 3, 4, 5])
            let ping = Self.firstPing(&a)
            _ = Self.run(&a, until: ping.at + Self.settings.probeTimeout)
            for n in 0..<nacks {
                let nack = M.Codec.encode(M.Message.nack(seq: ping.seq, source: Self.id(3 + n), M.Piggyback()))
                XCTAssertFalse(a.onDatagram(nack, from: Self.ep(3 + n), now: ping.at + .milliseconds(600)).contains(.dropped(.staleAck)))
            }
            _ = Self.run(&a, until: ping.at + Self.settings.probeInterval)
            XCTAssertEqual(a.member(ping.target)?.state, .suspect)
            return a.awareness
        }
        XCTAssertEqual(failedProbe(nacks: 3), 0, "all helpers answered: our network is fine")
        XCTAssertEqual(failedProbe(nacks: 1), 2, "two nacks missing")
        XCTAssertEqual(failedProbe(nacks: 0), 3)
    }

    func testAwarenessRisesOnMissedAcksAndSlowsProbing() {
        var settings = Self.settings
        settings.indirectProbes = 0  // no helpers: each missed ack counts 1
        var a = Self.instance(others: [2, 3, 4, 5, 6], settings: settings)
        var pingTimes: [Instant] = []
        for (t, d) in Self.run(&a, until: .zero + .seconds(12)) {
            if case .send(let b, _) = d, case .ping? = try? M.Codec.decodeMessage(b) { pingTimes.append(t) }
        }
        XCTAssertGreaterThanOrEqual(a.awareness, 3)
        XCTAssertGreaterThanOrEqual(pingTimes.count, 3)
        let gaps = zip(pingTimes.dropFirst(), pingTimes).map { $0 - $1 }
        XCTAssertEqual(Array(gaps.prefix(3)), [.seconds(1), .seconds(2), .seconds(3)],
                       "each missed ack stretches the next period by one probe interval")
        XCTAssertLessThan(pingTimes.count, 7, "a healthy node would have probed 12 times")
    }

    func testSuspicionBecomesDeadAfterMaxTimeoutWithoutConfirmations() {
        var a = Self.instance(others: [2, 3, 4, 5, 6])
        let ping = Self.firstPing(&a)
        let ds = Self.run(&a, until: ping.at + .seconds(60))
        let suspectAt = ds.first { if case .memberChanged(let m, _) = $0.1, m.state == .suspect, m.id == ping.target { return true }; return false }?.0
        let deadAt = ds.first { if case .memberChanged(let m, _) = $0.1, m.state == .dead, m.id == ping.target { return true }; return false }?.0
        XCTAssertEqual(suspectAt, ping.at + .seconds(1))
        // n = 6: min = 2 · max(1, log10 6) · 1 s = 2 s, max = 6 · min = 12 s.
        XCTAssertEqual(deadAt.map { $0 - suspectAt! }, .seconds(12))
        // The accuser told the accused directly.
        XCTAssertTrue(Self.sends(ds.map(\.1)).contains {
            $0.to == ping.to && $0.message.piggyback.updates.contains { $0.id == ping.target && $0.state == .suspect }
        })
    }

    func testConfirmationsShrinkSuspicionTimeout() {
        var a = Self.instance(others: [2, 3, 4, 5, 6])
        let accuse = M.Update(Self.member(2), from: Self.id(3))
        var suspect = accuse; suspect.state = .suspect
        let t0 = Instant.zero + .seconds(3)
        XCTAssertEqual(Self.changes(a.onDatagram(Self.gossipBytes([suspect]), from: Self.ep(3), now: t0)).first?.0.state, .suspect)
        // Three independent confirmations (k = 3): the timeout falls to the minimum, 2 s.
        for c in [4, 5, 6] {
            var conf = suspect; conf.from = Self.id(c)
            _ = a.onDatagram(Self.gossipBytes([conf]), from: Self.ep(c), now: t0 + .milliseconds(100))
        }
        // The same confirmer twice does not count again.
        var dup = suspect; dup.from = Self.id(4)
        _ = a.onDatagram(Self.gossipBytes([dup]), from: Self.ep(4), now: t0 + .milliseconds(200))
        let ds = Self.run(&a, until: t0 + .seconds(30))
        let deadAt = ds.first { if case .memberChanged(let m, _) = $0.1, m.id == Self.id(2), m.state == .dead { return true }; return false }?.0
        XCTAssertEqual(deadAt, t0 + .seconds(2))
    }

    func testLifeguardTimeoutFormula() {
        // min 2 s, max 12 s, k = 3: timeout = 12 s − 10 s · ln(c + 1) / ln 4 with c confirmations.
        var s = M.Instance.Suspicion(start: .zero, incarnation: 1, min: .seconds(2), max: .seconds(12), k: 3,
                                     confirmers: [Self.id(1)])
        XCTAssertEqual(s.timeout, .seconds(12), "the accuser alone is not a confirmation")
        s.confirmers.insert(Self.id(2))
        XCTAssertEqual(s.timeout, .seconds(7))
        s.confirmers.insert(Self.id(3))
        XCTAssertEqual(s.timeout.seconds, 12 - 10 * M.Math.ln(3) / M.Math.ln(4), accuracy: 1e-6)
        s.confirmers.insert(Self.id(4)); s.confirmers.insert(Self.id(5))
        XCTAssertEqual(s.timeout, .seconds(2), "never below the minimum")
        s.k = 0
        XCTAssertEqual(s.timeout, .seconds(2), "small clusters (n − 2 < K) use the minimum")
    }

    func testRefutationBumpsIncarnationAndPersistsIt() {
        var a = Self.instance(others: [2, 3])
        var accusation = M.Update(a.myself, from: Self.id(2)); accusation.state = .suspect
        let ds = a.onDatagram(Self.gossipBytes([accusation]), from: Self.ep(2), now: .zero + .seconds(1))
        XCTAssertTrue(ds.contains(.persistIncarnation(2)), "\(ds)")
        XCTAssertEqual(a.myself.incarnation, 2)
        XCTAssertEqual(a.myself.state, .alive)
        XCTAssertEqual(a.awareness, 1, "having to refute means our own health is in doubt")
        // The alive refutation is piggybacked on the next datagram.
        let next = Self.sends(Self.run(&a, until: .zero + .seconds(2)).map(\.1))
        XCTAssertTrue(next.contains { $0.message.piggyback.updates.contains { $0.id == Self.id(1) && $0.incarnation == 2 && $0.state == .alive } })
        // An old accusation (incarnation 1 < 2) is ignored; a dead one at 5 is refuted with 6.
        XCTAssertFalse(a.onDatagram(Self.gossipBytes([accusation]), from: Self.ep(2), now: .zero + .seconds(3)).contains { if case .persistIncarnation = $0 { return true }; return false })
        var dead = accusation; dead.state = .dead; dead.incarnation = 5
        XCTAssertTrue(a.onDatagram(Self.gossipBytes([dead]), from: Self.ep(2), now: .zero + .seconds(3)).contains(.persistIncarnation(6)))
    }

    func testLeaveAnnouncesLeftAndOthersRecordIt() {
        var a = Self.instance(others: [2, 3, 4, 5])
        var b = Self.instance(2, others: [1, 3, 4, 5])
        let ds = a.leave(now: .zero + .seconds(1))
        XCTAssertTrue(a.hasLeft)
        XCTAssertEqual(a.myself.state, .left)
        XCTAssertEqual(Self.changes(ds).first?.0.state, .left)
        let direct = Self.sends(ds)
        XCTAssertEqual(Set(direct.map(\.to)).count, 3)
        let toB = ds.compactMap { if case .send(let bytes, _) = $0 { return bytes } else { return nil } }.first!
        let bds = b.onDatagram(toB, from: Self.ep(1), now: .zero + .seconds(1))
        XCTAssertEqual(b.member(Self.id(1))?.state, .left)
        XCTAssertEqual(Self.changes(bds).first?.1, .alive)
        // Left beats suspect and dead at the same incarnation.
        var s = M.Update(Self.member(1), from: Self.id(3)); s.state = .dead
        XCTAssertTrue(Self.changes(b.onDatagram(Self.gossipBytes([s]), from: Self.ep(3), now: .zero + .seconds(2))).isEmpty)
        // The leaver stops probing and ignores input.
        XCTAssertEqual(a.onDatagram(toB, from: Self.ep(2), now: .zero + .seconds(2)), [.dropped(.afterLeave)])
        XCTAssertFalse(Self.run(&a, until: .zero + .seconds(10)).contains { if case .send(let b, _) = $0.1, case .ping? = try? M.Codec.decodeMessage(b) { return true }; return false })
    }

    /// Learning of an unknown member pulls the next push-pull in to within
    /// `catchUpPushPullDelay` (×½–1); news about members already known does not, so a cluster
    /// that is not growing keeps its `pushPullInterval`.
    func testUnknownMemberBringsThePushPullForwardKnownOnesDoNot() {
        var a = Self.instance(others: [2, 3])
        let t0 = Instant.zero + .seconds(1)
        let before = a.nextPushPullAt
        XCTAssertGreaterThan(before - t0, Self.settings.catchUpPushPullDelay, "the regular push-pull is far away")
        // Known members' news (a higher incarnation): no catch-up.
        _ = a.onDatagram(Self.gossipBytes([M.Update(Self.member(2, inc: 7))]), from: Self.ep(3), now: t0)
        XCTAssertEqual(a.nextPushPullAt, before)
        // A stranger: the next push-pull within the catch-up delay.
        _ = a.onDatagram(Self.gossipBytes([M.Update(Self.member(4))]), from: Self.ep(3), now: t0)
        XCTAssertNotNil(a.member(Self.id(4)))
        let soon = a.nextPushPullAt - t0
        XCTAssertGreaterThanOrEqual(soon, Self.settings.catchUpPushPullDelay * 0.5)
        XCTAssertLessThanOrEqual(soon, Self.settings.catchUpPushPullDelay)
        let pulls = Self.run(&a, until: a.nextPushPullAt).filter { if case .pushPull = $0.1 { return true } else { return false } }
        XCTAssertEqual(pulls.count, 1, "one push-pull at the catch-up time")
        // After it, the interval is the regular one again.
        XCTAssertGreaterThan(a.nextPushPullAt - t0, Self.settings.pushPullInterval / 2)
    }

    func testNewAddressWithHigherIncarnationAcceptedLowerIgnored() {
        var a = Self.instance(others: [2])
        var moved = M.Update(Self.member(2, inc: 5)); moved.address = Endpoint("10.9.9.9:8000")!
        let ds = a.onDatagram(Self.gossipBytes([moved]), from: Self.ep(2), now: .zero)
        XCTAssertEqual(a.member(Self.id(2))?.address, moved.address)
        XCTAssertEqual(a.member(Self.id(2))?.incarnation, 5)
        XCTAssertEqual(Self.changes(ds).count, 1)
        var old = M.Update(Self.member(2, inc: 4)); old.state = .dead
        XCTAssertTrue(a.onDatagram(Self.gossipBytes([old]), from: Self.ep(3), now: .zero).isEmpty)
        XCTAssertEqual(a.member(Self.id(2))?.state, .alive)
        // Same incarnation, different address: not news.
        var same = M.Update(Self.member(2, inc: 5)); same.address = Endpoint("10.1.1.1:1")!
        _ = a.onDatagram(Self.gossipBytes([same]), from: Self.ep(3), now: .zero)
        XCTAssertEqual(a.member(Self.id(2))?.address, moved.address)
    }

    func testIdentityMismatchIsDropped() {
        var a = Self.instance(others: [2])
        var forged = M.Update(Self.member(7)); forged.publicKey = Self.key(Self.id(8))
        XCTAssertEqual(a.onDatagram(Self.gossipBytes([forged]), from: Self.ep(7), now: .zero), [.dropped(.identityMismatch)])
        XCTAssertNil(a.member(Self.id(7)))
        var takeover = M.Update(Self.member(2, inc: 9)); takeover.publicKey = Self.key(Self.id(8))
        XCTAssertEqual(a.onDatagram(Self.gossipBytes([takeover]), from: Self.ep(7), now: .zero), [.dropped(.identityMismatch)])
        XCTAssertEqual(a.member(Self.id(2))?.incarnation, 1)
    }

    func testGarbageDatagramsAreDroppedNeverTrap() {
        var a = Self.instance(others: [2])
        XCTAssertEqual(a.onDatagram([], from: Self.ep(2), now: .zero), [.dropped(.malformed)])
        XCTAssertEqual(a.onDatagram([9, 1], from: Self.ep(2), now: .zero), [.dropped(.unsupportedVersion)])
        XCTAssertEqual(a.onDatagram([M.wireVersion, 200], from: Self.ep(2), now: .zero), [.dropped(.unknownType)])
        XCTAssertEqual(a.onDatagram([UInt8](repeating: 1, count: 2000), from: Self.ep(2), now: .zero), [.dropped(.oversized)])
        XCTAssertEqual(a.onPushPull([M.wireVersion, 2, 3], from: Self.ep(2), appState: [], now: .zero).directives, [.dropped(.malformed)])
        var rng = DeterministicRNG(seed: 99)
        for _ in 0..<5000 {
            let b = (0..<Int.random(in: 0...200, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            _ = a.onDatagram(b, from: Self.ep(2), now: .zero)
            _ = a.onPushPull(b, from: Self.ep(2), appState: [], now: .zero)
        }
        XCTAssertEqual(a.member(Self.id(2))?.state, .alive)
    }

    func testPayloadBudgetRespectedAndEverythingEventuallySent() {
        var settings = Self.settings
        settings.maxPayloadBytes = 400
        var a = Self.instance(others: [2, 3], settings: settings)
        // Learn 60 members through a push-pull: 60 updates to disseminate, ~4 fit per datagram.
        let pp = M.PushPull(isReply: true, source: Self.id(2), join: false,
                            members: (10..<70).map { M.Update(Self.member($0)) }, appState: [])
        _ = a.onPushPull(M.Codec.encode(pp), from: Self.ep(2), appState: [], now: .zero)
        XCTAssertEqual(a.members.count, 63)
        var seen = Set<NodeID>()
        var maxSize = 0
        for (_, d) in Self.run(&a, until: .zero + .seconds(5)) {
            guard case .send(let b, _) = d else { continue }
            maxSize = max(maxSize, b.count)
            XCTAssertLessThanOrEqual(b.count, 400)
            for u in (try? M.Codec.decodeMessage(b))?.piggyback.updates ?? [] { seen.insert(u.id) }
        }
        XCTAssertGreaterThan(maxSize, 300, "datagrams were filled")
        XCTAssertTrue(Set((10..<70).map { Self.id($0) }).isSubset(of: seen), "every update got its turn")
    }

    func testBroadcastReplacementByKeyAndDelivery() {
        var a = Self.instance(others: [2])
        XCTAssertTrue(a.enqueueBroadcast([1, 1], key: [7]))
        XCTAssertTrue(a.enqueueBroadcast([2, 2], key: [7]))
        XCTAssertTrue(a.enqueueBroadcast([3], key: nil))
        XCTAssertTrue(a.enqueueBroadcast([4], key: nil))
        XCTAssertFalse(a.enqueueBroadcast([UInt8](repeating: 0, count: 2000), key: nil), "can never fit")
        let ds = Self.run(&a, until: .zero + .milliseconds(250))
        let payloads = Self.sends(ds.map(\.1)).flatMap { $0.message.piggyback.broadcasts.map(\.payload) }
        XCTAssertTrue(payloads.contains([2, 2]))
        XCTAssertFalse(payloads.contains([1, 1]), "replaced by the newer broadcast with the same key")
        XCTAssertTrue(payloads.contains([3]) && payloads.contains([4]), "keyless broadcasts never replace each other")
        // The receiver gets `.deliver` with the origin.
        var b = Self.instance(2, others: [1])
        let bytes = ds.compactMap { if case .send(let b, _) = $0.1 { return b } else { return nil } }.first!
        XCTAssertTrue(b.onDatagram(bytes, from: Self.ep(1), now: .zero).contains(.deliver([2, 2], from: Self.id(1))))
    }

    func testPushPullJoinMergesBothWaysAndCarriesAppState() throws {
        var seed = Self.instance(2, others: [3, 4])
        var joiner = M.Instance(myself: Self.member(1), settings: Self.settings, seed: 5, now: .zero, identityCheck: Self.check, signer: .acceptAll)
        let ds = joiner.join(seeds: [Self.ep(2)], now: .zero)
        XCTAssertTrue(ds.contains(.pushPull(to: Self.ep(2))))
        let request = joiner.makePushPull(appState: [0xAA], now: .zero)
        let (reply, sds) = seed.onPushPull(request, from: Self.ep(1), appState: [0xBB], now: .zero)
        XCTAssertNotNil(reply)
        XCTAssertEqual(try M.Codec.decodePushPull(request, maxBytes: 1 << 20).join, true, "first exchange is a join")
        XCTAssertTrue(sds.contains(.mergeAppState([0xAA], from: Self.id(1))))
        XCTAssertEqual(seed.member(Self.id(1))?.state, .alive)
        let (none, jds) = joiner.onPushPull(try XCTUnwrap(reply), from: Self.ep(2), appState: [], now: .zero)
        XCTAssertNil(none, "a reply is not answered")
        XCTAssertTrue(jds.contains(.mergeAppState([0xBB], from: Self.id(2))))
        XCTAssertEqual(Set(joiner.members.map(\.id)), Set([1, 2, 3, 4].map { Self.id($0) }))
        XCTAssertEqual(Self.changes(jds).count, 3)
    }

    func testPushedDeadBecomesSuspicionAndPushedAccusationIsRefutedInReply() throws {
        var a = Self.instance(others: [2, 3])
        var b = Self.instance(2, others: [1, 3])
        // b believes a and 3 dead at incarnation 1.
        for n in [1, 3] {
            var d = M.Update(Self.member(n), from: Self.id(2)); d.state = .dead
            _ = b.onDatagram(Self.gossipBytes([d], from: 3), from: Self.ep(3), now: .zero)
        }
        XCTAssertEqual(b.member(Self.id(1))?.state, .dead)
        let (reply, ds) = a.onPushPull(b.makePushPull(appState: [], now: .zero), from: Self.ep(2), appState: [], now: .zero)
        XCTAssertEqual(a.member(Self.id(3))?.state, .suspect, "a pushed death is only a suspicion")
        XCTAssertTrue(ds.contains(.persistIncarnation(2)))
        _ = b.onPushPull(try XCTUnwrap(reply), from: Self.ep(1), appState: [], now: .zero)
        XCTAssertEqual(b.member(Self.id(1))?.state, .alive, "the reply carried the refutation")
        XCTAssertEqual(b.member(Self.id(1))?.incarnation, 2)
    }

    func testDeadMembersAreReprobedAndForgottenAfterRetention() {
        var settings = Self.settings
        settings.deadRetention = .seconds(100)
        var a = M.Instance(myself: Self.member(1), settings: settings, seed: 3, now: .zero,
                           knownMembers: [Self.member(3, state: .dead)], identityCheck: Self.check, signer: .acceptAll)
        let ds = Self.run(&a, until: .zero + .seconds(40))
        XCTAssertTrue(ds.contains { $0.1 == .pushPull(to: Self.ep(3)) }, "dead member re-probed by push-pull")
        XCTAssertNotNil(a.member(Self.id(3)))
        let later = Self.run(&a, until: .zero + .seconds(120))
        XCTAssertTrue(later.contains { if case .memberRemoved(let m) = $0.1 { return m.id == Self.id(3) }; return false })
        XCTAssertNil(a.member(Self.id(3)))
        XCTAssertNotNil(a.member(Self.id(1)), "live members are never forgotten")
    }

    func testRestartedInstanceLoadsStoredMembers() {
        let a = M.Instance(myself: Self.member(1, inc: 7), settings: Self.settings, seed: 1, now: .zero,
                           knownMembers: [Self.member(1, inc: 3), Self.member(2, state: .suspect), Self.member(3, state: .dead)],
                           identityCheck: Self.check, signer: .acceptAll)
        XCTAssertEqual(a.myself.incarnation, 7, "the stored self record does not override myself")
        XCTAssertEqual(a.member(Self.id(2))?.state, .alive)
        XCTAssertEqual(a.member(Self.id(3))?.state, .dead)
        XCTAssertEqual(a.members.map(\.id), [1, 2, 3].map { Self.id($0) })
    }
}
