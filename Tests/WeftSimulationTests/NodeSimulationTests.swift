import Foundation
import WeftCore
import WeftTestKit
import XCTest

/// Whole-node simulation (docs/node.md, docs/testing.md): real `Node.Instance`s over the
/// simulated network with the storage twin, checked by the global oracle after every step.
final class NodeSimulationTests: XCTestCase {
    static var schedules: Int {
        ProcessInfo.processInfo.environment["NODE_SIM_SCHEDULES"].flatMap(Int.init) ?? 10_000
    }

    /// ≥ 10⁴ seeded schedules (NODE_SIM_SCHEDULES to change), spread over the machine's cores:
    /// each schedule is its own simulator, so they run independently and replay from their seed.
    func testRandomSchedulesKeepEveryPromise() throws {
        let n = Self.schedules
        let clock = ContinuousClock()
        let start = clock.now
        let results = ScheduleResults()
        let workers = max(1, min(ProcessInfo.processInfo.activeProcessorCount, 8))
        var ipam = NodeSimulator.ipamSettings
        // NODE_SIM_OWN_WAKEUP=1 explores the allocator on its own wake-up (off in nodes: it
        // reaches the known gap of docs/ipam.md).
        if ProcessInfo.processInfo.environment["NODE_SIM_OWN_WAKEUP"] != nil { ipam.ownWakeup = true }
        let settings = ipam
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            var seed = UInt64(w + 1)
            while seed <= UInt64(n), !results.enough {
                do {
                    let stats = try NodeSimulator.runSchedule(seed: seed, ipam: settings)
                    results.add(stats)
                } catch {
                    results.fail("seed \(seed): \(error)")
                }
                seed += UInt64(workers)
            }
        }
        let wall = clock.now - start
        print("node simulation: \(results.count) schedules, \(results.allocations) allocations, \(results.events) events, \(results.simulated) simulated in \(wall) on \(workers) threads")
        XCTAssert(results.failures.isEmpty, results.failures.sorted().joined(separator: "\n\n"))
        if results.failures.isEmpty { XCTAssertEqual(results.count, n, "every schedule ran") }
    }
}

/// Results of schedules run on several threads.
final class ScheduleResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var count = 0, events = 0, allocations = 0
    private(set) var simulated: Duration = .zero
    private(set) var failures: [String] = []
    var enough: Bool { lock.lock(); defer { lock.unlock() }; return failures.count >= 3 }
    func add(_ s: NodeSimulator.ScheduleStats) {
        lock.lock(); defer { lock.unlock() }
        count += 1; events += s.events; allocations += s.allocations; simulated += s.simulated
    }
    func fail(_ f: String) {
        lock.lock(); failures.append(f); lock.unlock()
        print("node simulation failure: \(f.prefix(400))")
    }
}

/// The broken promises from issue 8, each as a scenario on whole nodes.
final class NodeScenarioTests: XCTestCase {
    func handles(_ sim: NodeSimulator, _ host: Int) -> [String: UInt32] {
        sim.hosts[host].node?.ipam.allocations ?? [:]
    }

    /// A allocates h1..h5; A is killed; B reclaims A's space; A restarts (h1..h5 become
    /// conflicts); B is killed; A reclaims B's space; A restarts; new handles must not get
    /// h1..h5's addresses, before or after a kill -9.
    func testConflictedAddressesAreNeverHandedOutAgain() throws {
        let sim = NodeSimulator(seed: 8)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(5))
        var first: [UInt32] = []
        for k in 1...5 { if let a = sim.allocate(0, "h\(k)") { first.append(a) } }
        XCTAssertEqual(first.count, 5)
        sim.crash(0); sim.run(for: .seconds(5))
        XCTAssertFalse(sim.reclaim(1, sim.hosts[0].id), "A's allocations were never confirmed by a quorum (2 nodes): only --force may take them")
        XCTAssertTrue(sim.reclaim(1, sim.hosts[0].id, force: true), "B reclaims dead A")
        sim.run(for: .seconds(1))
        sim.restart(0); sim.run(for: .seconds(8))
        sim.crash(1); sim.run(for: .seconds(5))
        XCTAssertTrue(sim.reclaim(0, sim.hosts[1].id, force: true), "A reclaims dead B")
        sim.run(for: .seconds(1))
        sim.crash(0); sim.restart(0); sim.run(for: .seconds(3))
        var second: [UInt32] = []
        for k in 1...5 { if let a = sim.allocate(0, "x\(k)") { second.append(a) } }
        XCTAssertTrue(Set(first).isDisjoint(with: second), "conflicted addresses handed out again: \(first.map { IPAM.format($0) }) vs \(second.map { IPAM.format($0) })")
        sim.crash(0); sim.restart(0); sim.run(for: .seconds(3))
        var third: [UInt32] = []
        for k in 1...5 { if let a = sim.allocate(0, "y\(k)") { third.append(a) } }
        XCTAssertTrue(Set(first + second).isDisjoint(with: third), "addresses handed out a third time")
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// A failed commit fails the request, leaves memory as it was, and says so; the next
    /// request works.
    func testStorageErrorFailsTheRequestAndChangesNothing() throws {
        let sim = NodeSimulator(seed: 9)
        sim.addHost(); sim.run(for: .seconds(1))
        let before = sim.hosts[0].node!.ipam.snapshot
        let commits = sim.hosts[0].storage.commits
        sim.hosts[0].storage.failNext = 1
        var node = sim.hosts[0].node!
        let (result, effects) = node.allocate(handle: "c1", now: sim.now)
        guard case .failure(.storage(let f)) = result else { return XCTFail("expected a storage failure, got \(result)") }
        XCTAssertTrue(f.description.contains("nothing was changed"), f.description)
        XCTAssertTrue(effects.contains(.dropped("storage-error")))
        XCTAssertFalse(effects.contains { if case .allocated = $0 { return true } else { return false } })
        XCTAssertEqual(node.ipam.snapshot, before, "memory ran ahead of the disk")
        XCTAssertEqual(sim.hosts[0].storage.commits, commits)
        XCTAssertTrue(node.warnings.contains { $0.contains("could not be written") }, "\(node.warnings)")
        let (again, _) = node.allocate(handle: "c1", now: sim.now)
        guard case .success(.allocated(let a)) = again else { return XCTFail("retry failed: \(again)") }
        XCTAssertEqual(sim.hosts[0].storage.allocations["c1"]?.address, a)
    }

    /// A gossip input whose commit fails is undone as a whole (membership included).
    func testFailedCommitOfGossipUndoesTheInput() throws {
        let sim = NodeSimulator(seed: 10)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.hosts[0].storage.failNext = 1_000_000
        sim.addHost(); sim.run(for: .seconds(3))
        XCTAssertEqual(sim.hosts[0].node!.membership.members.count, 1, "host 0 could not persist host 1, so it must not know it")
        XCTAssertGreaterThan(sim.hosts[0].node!.storageFailures, 0)
        sim.hosts[0].storage.failNext = 0
        sim.run(for: .seconds(8))
        XCTAssertEqual(sim.hosts[0].node!.membership.members.count, 2, "once the disk works the member is learned again")
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// One node isolated far longer than reclaim-after must not give two running containers
    /// one address, and must not take over the majority's space.
    func testLongPartitionGivesNoDuplicateAddress() throws {
        let sim = NodeSimulator(seed: 11)
        for _ in 0..<5 { sim.addHost(); sim.run(for: .milliseconds(500)) }
        sim.run(for: .seconds(10))
        for i in 0..<5 { for k in 0..<3 { sim.allocate(i, "before-\(i)-\(k)") } }
        sim.run(for: .seconds(2))
        sim.split([[0], [1, 2, 3, 4]])
        sim.run(for: (sim.ipamSettings.reclaimAfter ?? .seconds(20)) * 3)
        for i in 0..<5 { for k in 0..<3 { sim.allocate(i, "during-\(i)-\(k)") } }
        sim.run(for: .seconds(5))
        XCTAssertNoThrow(try sim.checkSafety())
        let isolated = sim.hosts[0].node!
        let majorityOwned = isolated.ipam.ring!.entries.filter { $0.owner != sim.hosts[0].id }.count
        XCTAssertGreaterThan(majorityOwned, 0, "the isolated node took over the whole ring")
        sim.heal()
        sim.run(for: .seconds(40))
        XCTAssertNoThrow(try sim.checkSafety())
        XCTAssertNoThrow(try sim.checkConverged())
    }

    /// After a restart, `joined` becomes true once a member answers.
    func testJoinedAfterRestart() throws {
        let sim = NodeSimulator(seed: 12)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(3))
        XCTAssertTrue(sim.hosts[1].node!.joined)
        sim.crash(1); sim.run(for: .seconds(1))
        sim.restart(1)
        XCTAssertFalse(sim.hosts[1].node!.joined)
        sim.run(for: .seconds(3))
        XCTAssertTrue(sim.hosts[1].node!.joined, "restarted node never says joined")
        // The creator restarted with no seeds: joined once the other member talks to it.
        sim.crash(0); sim.run(for: .milliseconds(100)); sim.restart(0)
        sim.run(for: .seconds(5))
        XCTAssertTrue(sim.hosts[0].node!.joined)
    }

    /// A restarted node's IPAM knows who is live at once (it asks live peers for space), so a
    /// node whose space was all handed over still gets a range.
    func testRestartedNodeWithoutSpaceGetsARange() throws {
        let sim = NodeSimulator(seed: 13)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(4))
        XCTAssertNotNil(sim.allocate(1, "a"))
        sim.crash(1); sim.restart(1); sim.run(for: .seconds(3))
        let node = sim.hosts[1].node!
        XCTAssertNotNil(node.ipam.overlayAddress)
        var got: UInt32?
        for k in 0..<40 { got = sim.allocate(1, "b\(k)") ?? got }
        sim.run(for: .seconds(3))
        XCTAssertNotNil(got)
        XCTAssertNoThrow(try sim.checkSafety())
    }

    /// A first join where a live member already has this node's name is refused, with a
    /// message that says what to do.
    func testDuplicateNameIsRefusedAtJoin() throws {
        let sim = NodeSimulator(seed: 14)
        sim.addHost(name: "vm"); sim.run(for: .seconds(1))
        sim.addHost(name: "vm"); sim.run(for: .seconds(3))
        let joiner = sim.hosts[1]
        XCTAssertNil(joiner.node, "the joiner with a duplicate name must stop")
        let first = sim.hosts[0].node!
        XCTAssertFalse(first.membership.members.contains { $0.id == joiner.id && $0.state == .alive },
                       "the refused joiner must not stay alive in the cluster")
        XCTAssertTrue(sim.trace.contains { $0.contains("name-clash") }, sim.trace.joined(separator: "\n"))
    }
}

/// The composition rules of `Node.Instance`, observed through its effects.
final class NodeRuleTests: XCTestCase {
    func testMembersBecomeTunnelPeersAndARestartResetsTheirSessions() {
        let sim = NodeSimulator(seed: 21)
        var changes: [Node.TunnelPeerChange] = []
        sim.observer = { host, e in if host == 0, case .tunnelPeer(let c) = e { changes.append(c) } }
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(3))
        let peer = sim.hosts[1].id
        XCTAssertTrue(changes.contains { if case .upsert(peer, _, _, false) = $0 { return true } else { return false } })
        changes.removeAll()
        sim.crash(1); sim.restart(1); sim.run(for: .seconds(3))
        XCTAssertTrue(changes.contains { if case .upsert(peer, _, _, true) = $0 { return true } else { return false } },
                      "a higher incarnation must reset the peer's sessions: \(changes)")
        changes.removeAll()
        sim.crash(1); sim.run(for: .seconds(10))
        XCTAssertTrue(changes.contains(.remove(id: peer)), "a dead member's tunnel must close: \(changes)")
    }

    func testRoutesFollowTheRing() throws {
        let sim = NodeSimulator(seed: 22)
        var routes: [Node.Route] = []
        sim.observer = { host, e in if host == 0, case .routes(let r) = e { routes = r } }
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(4))
        let b = sim.hosts[1].id
        let owned = sim.hosts[0].node!.ipam.ring!.entries.filter { $0.owner == b }
        XCTAssertFalse(owned.isEmpty, "the joiner got a range by donation")
        XCTAssertFalse(routes.isEmpty)
        for r in routes { XCTAssertEqual(r.peer, b) }
        let overlay = try XCTUnwrap(sim.hosts[1].node!.ipam.overlayAddress)
        XCTAssertTrue(routes.contains { $0.start <= overlay && overlay <= $0.end }, "the joiner's overlay address routes to it")
        XCTAssertEqual(sim.hosts[0].node!.routes, routes)
        // The donation went as signed frames, each checked once by its recipient.
        let stats = sim.hosts.map { $0.node!.ipamFrameStats }
        XCTAssertGreaterThan(stats[1].signatures, 0, "the joiner asked for space")
        XCTAssertGreaterThan(stats[0].verifications, 0, "the donor checked the request")
        XCTAssertLessThanOrEqual(stats.map(\.verifications).reduce(0, +), stats.map(\.signatures).reduce(0, +))
    }

    func testOverlayAddressIsAnnouncedOnceTaken() {
        let sim = NodeSimulator(seed: 23)
        var announced: [Int: [UInt32]] = [:]
        sim.observer = { host, e in if case .overlayAddress(let a, let p) = e { announced[host, default: []].append(a); XCTAssertEqual(p, 24) } }
        sim.addHost(); sim.run(for: .seconds(1))
        sim.addHost(); sim.run(for: .seconds(4))
        XCTAssertEqual(announced[0]?.count, 1)
        XCTAssertEqual(announced[1]?.count, 1)
        XCTAssertEqual(announced[1]?.first, sim.hosts[1].node!.ipam.overlayAddress)
        XCTAssertNotEqual(announced[0]?.first, announced[1]?.first)
    }

    func testSeedsAreRetriedWithBackoffUntilOneAnswers() {
        let sim = NodeSimulator(seed: 24)
        var pushPulls: [Instant] = []
        sim.addHost(); sim.run(for: .seconds(1))
        sim.crash(0)
        sim.observer = { host, e in if host == 1, case .pushPull = e { pushPulls.append(sim.now) } }
        sim.addHost(seeds: [0]); sim.run(for: .seconds(20))
        XCTAssertFalse(sim.hosts[1].node!.joined)
        XCTAssertTrue(sim.hosts[1].node!.warnings.contains { $0.contains("no seed answered") })
        XCTAssertGreaterThanOrEqual(pushPulls.count, 3)
        let gaps = zip(pushPulls.dropFirst(), pushPulls).map { ($0 - $1).seconds }
        XCTAssertEqual(gaps, gaps.sorted(), "retries back off: \(gaps)")
        sim.restart(0); sim.run(for: .seconds(10))
        XCTAssertTrue(sim.hosts[1].node!.joined)
        XCTAssertFalse(sim.hosts[1].node!.warnings.contains { $0.contains("no seed answered") })
    }
}

extension NodeSimulationTests {
    /// A seed that answers "busy" (its connection limits full: a hundred nodes joining through
    /// it at once) is retried within `seedRetryInitial`, spread per node, not after the
    /// doubling back-off of a silent seed; once it has room the joiner is in at once.
    func testBusySeedIsRetriedSoonWithoutBackingOff() {
        let sim = NodeSimulator(seed: 31)
        // The seed's own push-pulls (catch-up, periodic) would sync the joiner from the other
        // side, as they often do for real; pushed out here so only the joiner's retries count.
        sim.membershipSettings.pushPullInterval = .seconds(120)
        sim.membershipSettings.catchUpPushPullDelay = .seconds(60)
        var pushPulls: [Instant] = []
        sim.addHost(); sim.run(for: .seconds(1))
        sim.busy = [0]
        sim.observer = { host, e in if host == 1, case .pushPull = e { pushPulls.append(sim.now) } }
        sim.addHost(seeds: [0]); sim.run(for: .seconds(20))
        XCTAssertFalse(sim.hosts[1].node!.synced, "no full-state exchange yet")
        XCTAssertFalse(sim.hosts[1].node!.warnings.contains { $0.contains("check the cluster key") },
                       "a busy seed is not reported as a key problem")
        let gaps = zip(pushPulls.dropFirst(), pushPulls).map { ($0 - $1).seconds }
        let initial = sim.nodeSettings.seedRetryInitial.seconds
        XCTAssertGreaterThanOrEqual(pushPulls.count, Int(20 / initial), "retries: \(gaps)")
        XCTAssertTrue(gaps.allSatisfy { $0 <= initial + 0.5 }, "no back-off against a busy seed: \(gaps)")
        XCTAssertGreaterThan(Set(gaps.map { ($0 * 100).rounded() }).count, 1, "the waits are spread: \(gaps)")
        let freed = sim.now
        sim.busy = []
        sim.run(for: .seconds(5))
        XCTAssertTrue(sim.hosts[1].node!.synced)
        let next = pushPulls.first { $0 >= freed }
        XCTAssertNotNil(next)
        if let next { XCTAssertLessThanOrEqual((next - freed).seconds, initial + 0.5, "the next try after the seed had room") }
    }
}

final class NodeLifecycleSimTests: XCTestCase {
    /// `weft leave`, then `weft start` on the same data dir: the node rejoins, gets space and
    /// an overlay address, and allocates.
    func testStartAfterLeaveRejoinsWithSpace() {
        let sim = NodeSimulator(seed: 31)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .seconds(1)) }
        sim.run(for: .seconds(5))
        XCTAssertNotNil(sim.allocateWaiting(2, "before"))
        sim.leave(2)
        sim.run(for: .seconds(5))
        sim.startAgainAfterLeave(2)
        sim.run(for: .seconds(8))
        let node = sim.hosts[2].node!
        XCTAssertTrue(node.joined)
        XCTAssertNotNil(node.ipam.overlayAddress, "rejoined node has no overlay address")
        XCTAssertNotNil(sim.allocateWaiting(2, "after"), "rejoined node cannot allocate")
        for h in [0, 1] {
            XCTAssertTrue(sim.hosts[h].node!.membership.members.contains { $0.id == sim.hosts[2].id && $0.state == .alive })
        }
        XCTAssertNoThrow(try sim.checkSafety())
    }
}

/// Container names over whole nodes: gossiped, removed, hidden with a dead owner, kept across a restart.
final class NodeDNSTests: XCTestCase {
    func addresses(_ sim: NodeSimulator, _ host: Int, _ name: String) -> [UInt32] {
        sim.hosts[host].node?.zone.names[name] ?? []
    }

    func testNamesReachEveryNodeAndGoAway() throws {
        let sim = NodeSimulator(seed: 41)
        for _ in 0..<4 { sim.addHost(); sim.run(for: .milliseconds(500)) }
        sim.run(for: .seconds(5))
        let a = try XCTUnwrap(sim.allocateWaiting(1, "c1", name: "db"))
        let b = try XCTUnwrap(sim.allocateWaiting(2, "c2", name: "db"))
        XCTAssertNotNil(sim.allocateWaiting(3, "c3", name: "web"))
        sim.run(for: .seconds(2))
        for h in 0..<4 {
            XCTAssertEqual(Set(addresses(sim, h, "db")), [a, b], "host \(h): both containers named db")
            XCTAssertEqual(sim.hosts[h].node!.zone.reverse[a], "db")
        }
        XCTAssertTrue(sim.release(1, "c1"))
        sim.run(for: .seconds(2))
        for h in 0..<4 { XCTAssertEqual(addresses(sim, h, "db"), [b], "host \(h): a removed container's name is gone") }
        // A dead node's names go; they come back when it returns.
        sim.crash(3)
        sim.run(for: .seconds(15))
        for h in 0..<3 { XCTAssertTrue(addresses(sim, h, "web").isEmpty, "host \(h) still serves a dead node's name") }
        sim.restart(3)
        sim.run(for: .seconds(5))
        for h in 0..<4 { XCTAssertFalse(addresses(sim, h, "web").isEmpty, "host \(h): the name is back with its node") }
        // A restart keeps the node's own names (from storage).
        sim.crash(2); sim.restart(2)
        XCTAssertEqual(addresses(sim, 2, "db"), [b])
    }

    func testInvalidNamesAreRefusedBeforeAllocating() {
        let sim = NodeSimulator(seed: 42)
        sim.addHost(); sim.run(for: .seconds(1))
        var node = sim.hosts[0].node!
        let (r, _) = node.allocate(handle: "x", name: "not a label", now: sim.now)
        guard case .failure(.invalidName(let why)) = r else { return XCTFail("\(r)") }
        XCTAssertTrue(why.contains("DNS label"), why)
        XCTAssertNil(node.ipam.allocations["x"])
    }
}

final class NodeReservedRouteTests: XCTestCase {
    /// A node whose range was taken over while it was away keeps its containers reachable:
    /// every other node routes their addresses (reserved) to it, not to the new owner.
    func testReturningNodesConflictsRouteToIt() throws {
        let sim = NodeSimulator(seed: 51)
        for _ in 0..<3 { sim.addHost(); sim.run(for: .milliseconds(500)) }
        sim.run(for: .seconds(5))
        let a = try XCTUnwrap(sim.allocateWaiting(2, "kept"))
        sim.split([[2], [0, 1]])
        sim.run(for: (sim.ipamSettings.reclaimAfter ?? .seconds(20)) * 2)
        sim.heal()
        sim.run(for: .seconds(15))
        let node2 = sim.hosts[2].id
        XCTAssertEqual(sim.hosts[2].node!.ipam.conflicts["kept"], a, "the returning node's allocation is a conflict")
        for h in [0, 1] {
            let routes = sim.hosts[h].node!.routes
            let r = routes.first { $0.start <= a && a <= $0.end }
            XCTAssertEqual(r?.peer, node2, "host \(h) routes \(IPAM.format(a)) to the node whose container holds it: \(routes)")
            // The table stays sorted and without overlaps.
            for (x, y) in zip(routes, routes.dropFirst()) { XCTAssertLessThan(x.end, y.start) }
        }
        XCTAssertNoThrow(try sim.checkSafety())
    }
}

final class NodeSimulationReplay: XCTestCase {
    /// NODE_SIM_REPLAY=<seed> runs one schedule and prints its failure in full.
    func testReplayOneSeed() throws {
        guard let s = ProcessInfo.processInfo.environment["NODE_SIM_REPLAY"].flatMap(UInt64.init) else {
            throw XCTSkip("set NODE_SIM_REPLAY=<seed> to replay one whole-node schedule")
        }
        var ipam = NodeSimulator.ipamSettings
        // NODE_SIM_OWN_WAKEUP=1: the allocator on its own wake-up (IPAM.Settings.ownWakeup),
        // which reaches the known gap of docs/ipam.md with seed 1171.
        if ProcessInfo.processInfo.environment["NODE_SIM_OWN_WAKEUP"] != nil { ipam.ownWakeup = true }
        XCTAssertNoThrow(try NodeSimulator.runSchedule(seed: s, ipam: ipam))
    }
}

/// The whole-node oracle catches the duplicate-address bug of issue 8 when its fix is switched
/// off (the allocator's test-only `unsafeSkipConfirmation`: allocation without a quorum, as
/// before IPAM v2). Handing out conflicts again (`debugHandOutConflicts`) is caught by the
/// IPAM-level simulator and `IPAMQuorumTests`; in whole nodes the voters' holdings check
/// still stops it (600 schedules found no duplicate), so it has no whole-node test here.
final class NodeOracleCatchesBugsTests: XCTestCase {
    func testAllocatingWithoutConfirmationIsCaught() {
        var failures = 0
        for seed in 1...UInt64(400) where failures == 0 {
            var ipam = NodeSimulator.ipamSettings
            ipam.unsafeSkipConfirmation = true
            do { try NodeSimulator.runSchedule(seed: seed, ipam: ipam) } catch { failures += 1 }
        }
        XCTAssertGreaterThan(failures, 0, "without confirmation some schedule must break the oracle")
    }
}
