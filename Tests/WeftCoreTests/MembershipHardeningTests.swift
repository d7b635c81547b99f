import XCTest
@testable import WeftCore

/// Issue 9 (1): no update can make a node trap, and absurd incarnations are refused and
/// counted by reason instead of being applied.
final class MembershipHardeningTests: XCTestCase {
    typealias M = Membership
    typealias T = MembershipInstanceTests

    private func accuse(_ inst: inout M.Instance, incarnation: UInt64, state: M.MemberState = .suspect,
                        about target: M.Member? = nil, at s: Int64 = 1) -> [M.Directive] {
        var u = M.Update(target ?? inst.myself, from: T.id(2))
        u.state = state
        u.incarnation = incarnation
        return inst.onDatagram(T.gossipBytes([u]), from: T.ep(2), now: .zero + .seconds(s))
    }

    private func persisted(_ ds: [M.Directive]) -> Bool {
        ds.contains { if case .persistIncarnation = $0 { return true }; return false }
    }

    /// The datagram: a suspect about us with incarnation 2^64 − 1 used to trap on `+ 1`.
    func testSuspectAtUInt64MaxIsRefusedNotTrapped() {
        var a = T.instance(others: [2, 3])
        for state in [M.MemberState.suspect, .dead, .left, .alive] {
            let ds = accuse(&a, incarnation: .max, state: state)
            XCTAssertTrue(ds.contains(.dropped(.incarnationTooLarge)), "\(state): \(ds)")
            XCTAssertFalse(persisted(ds))
        }
        XCTAssertEqual(a.myself.incarnation, 1)
        XCTAssertEqual(a.myself.state, .alive)
    }

    /// Found by `fuzz/membership_instance` on the code before the fix within 1,300 runs (input
    /// kept as fuzz/corpus/membership_instance/regression-alive-about-self-uint64-max): after
    /// a few harmless updates, a `left` about the node itself at 2^64 − 1 trapped on `+ 1`.
    func testFuzzCrashLeftAboutSelfAtMaxAfterOtherUpdates() {
        var a = T.instance(others: [2, 3])
        var known = M.Update(T.member(2), from: T.id(3)); known.incarnation = 0xff_ffff
        _ = a.onDatagram(T.gossipBytes([known]), from: T.ep(2), now: .zero + .seconds(1))
        var alive = M.Update(a.myself, from: T.id(2)); alive.incarnation = 0xff_ffff_ffff
        XCTAssertTrue(a.onDatagram(T.gossipBytes([alive]), from: T.ep(2), now: .zero + .seconds(1)).contains(.dropped(.incarnationJump)),
                      "the fuzzer's 2^40 − 1 is now a refused jump")
        alive.incarnation = 0xff_ffff
        XCTAssertTrue(a.onDatagram(T.gossipBytes([alive]), from: T.ep(2), now: .zero + .seconds(1)).contains(.persistIncarnation(0x100_0000)))
        var left = M.Update(a.myself, from: T.id(2)); left.state = .left; left.incarnation = .max
        let ds = a.onDatagram(T.gossipBytes([left]), from: T.ep(2), now: .zero + .seconds(2))
        XCTAssertTrue(ds.contains(.dropped(.incarnationTooLarge)), "\(ds)")
        XCTAssertEqual(a.myself.incarnation, 0x100_0000)
    }

    func testCeilingIsExactAndJumpLimitApplies() {
        var s = T.settings
        s.maxIncarnationJump = .max >> 1  // so only the ceiling applies
        var a = T.instance(others: [2], settings: s)
        // maxIncarnation − 1 is the last plausible one (refuted with maxIncarnation); the ceiling is not.
        XCTAssertTrue(accuse(&a, incarnation: M.maxIncarnation).contains(.dropped(.incarnationTooLarge)))
        XCTAssertTrue(accuse(&a, incarnation: M.maxIncarnation - 1).contains(.persistIncarnation(M.maxIncarnation)))
        // Now at the ceiling: nothing can raise us further, and nothing traps.
        for inc in [M.maxIncarnation - 1, M.maxIncarnation, M.maxIncarnation + 1, UInt64.max - 1, .max] {
            let ds = accuse(&a, incarnation: inc, at: 2)
            XCTAssertFalse(persisted(ds), "\(inc): \(ds)")
        }
        XCTAssertEqual(a.myself.incarnation, M.maxIncarnation)
    }

    func testJumpFarAboveOurOwnIsRefused() {
        var a = T.instance(others: [2, 3])
        let jump = T.settings.maxIncarnationJump
        XCTAssertTrue(accuse(&a, incarnation: 1 + jump + 1).contains(.dropped(.incarnationJump)))
        XCTAssertEqual(a.myself.incarnation, 1)
        // Exactly the limit is still a refutation.
        XCTAssertTrue(accuse(&a, incarnation: 1 + jump).contains(.persistIncarnation(2 + jump)))
    }

    func testJumpFarAboveAKnownMemberIsRefused() {
        var a = T.instance(others: [2, 3])
        let three = a.member(T.id(3))!
        let jump = T.settings.maxIncarnationJump
        let ds = accuse(&a, incarnation: three.incarnation + jump + 1, state: .alive, about: three)
        XCTAssertTrue(ds.contains(.dropped(.incarnationJump)), "\(ds)")
        XCTAssertEqual(a.member(T.id(3))?.incarnation, three.incarnation)
        // An ordinary step is applied.
        _ = accuse(&a, incarnation: three.incarnation + 7, state: .alive, about: three)
        XCTAssertEqual(a.member(T.id(3))?.incarnation, three.incarnation + 7)
        // A stranger above the ceiling is not learned.
        var stranger = T.member(40, inc: .max)
        stranger.incarnation = .max
        let ds2 = accuse(&a, incarnation: .max, state: .alive, about: stranger)
        XCTAssertTrue(ds2.contains(.dropped(.incarnationTooLarge)))
        XCTAssertNil(a.member(T.id(40)))
    }

    func testPushPullWithAbsurdIncarnationsIsRefusedPerUpdate() {
        var a = T.instance(others: [2])
        var me = M.Update(a.myself, from: T.id(2)); me.state = .dead; me.incarnation = .max
        let fine = M.Update(T.member(5, inc: 3))
        let bytes = M.Codec.encode(M.PushPull(isReply: false, source: T.id(2), join: true, members: [me, fine], appState: []))
        let (reply, ds) = a.onPushPull(bytes, from: T.ep(2), appState: [], now: .zero + .seconds(1))
        XCTAssertNotNil(reply)
        XCTAssertTrue(ds.contains(.dropped(.incarnationTooLarge)))
        XCTAssertEqual(a.myself.incarnation, 1)
        XCTAssertEqual(a.member(T.id(5))?.incarnation, 3, "the plausible update in the same message is applied")
    }

    func testRestoredMembersAtTheMaximumNeverTrap() {
        // A store written before this fix may hold absurd incarnations: load and run, no trap.
        var me = T.member(1, inc: .max)
        me.incarnation = .max
        var a = M.Instance(myself: me, settings: T.settings, seed: 3, now: .zero,
                           knownMembers: [T.member(2, inc: .max), T.member(3, inc: .max - 1, state: .suspect)],
                           identityCheck: T.check, signer: .acceptAll)
        _ = T.run(&a, until: .zero + .seconds(60))
        XCTAssertFalse(persisted(accuse(&a, incarnation: .max)))
        XCTAssertEqual(a.myself.incarnation, .max)
    }

    func testHelpers() {
        XCTAssertEqual(M.incarnation(after: 0), 1)
        XCTAssertEqual(M.incarnation(after: M.maxIncarnation - 1), M.maxIncarnation)
        XCTAssertEqual(M.refusal(incarnation: M.maxIncarnation, known: nil, maxJump: .max), .incarnationTooLarge)
        XCTAssertNil(M.refusal(incarnation: M.maxIncarnation - 1, known: nil, maxJump: .max))
        XCTAssertNil(M.incarnation(after: M.maxIncarnation))
        XCTAssertNil(M.incarnation(after: .max))
        XCTAssertNil(M.refusal(incarnation: 5, known: nil, maxJump: 1))
        XCTAssertNil(M.refusal(incarnation: 0, known: .max, maxJump: 1), "lower is never a jump")
        XCTAssertEqual(M.refusal(incarnation: 7, known: 5, maxJump: 1), .incarnationJump)
        XCTAssertEqual(M.refusal(incarnation: .max, known: .max, maxJump: .max), .incarnationTooLarge)
        var s = M.Settings.default
        s.maxIncarnationJump = 0
        XCTAssertThrowsError(try s.validate())
    }

    func testConfirmersAreCapped() {
        var s = T.settings
        s.suspicionConfirmations = 2
        var a = T.instance(others: Array(2...20), settings: s)
        let target = a.member(T.id(3))!
        for accuser in 4...20 {
            var u = M.Update(target, from: T.id(accuser)); u.state = .suspect
            _ = a.onDatagram(T.gossipBytes([u]), from: T.ep(accuser), now: .zero + .seconds(1))
        }
        XCTAssertEqual(a.suspicions[T.id(3)]?.confirmers.count, 3, "k + 1 accusers at most")
    }
}
