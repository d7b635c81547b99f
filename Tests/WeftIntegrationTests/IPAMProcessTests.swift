import Foundation
import WeftAPI
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Address allocation across real `weft start --no-tun` processes on 127.0.0.1.
final class IPAMProcessTests: XCTestCase {
    private var root: TempDir!
    private var nodes: [NodeProcess] = []

    override func setUp() { root = TempDir("ipam") }

    override func tearDown() {
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(5000))") }
        }
        root.remove()
    }

    /// Starts a cluster of `count` nodes and waits until every node sees every other alive and
    /// owns address space.
    private func cluster(_ count: Int) throws -> [NodeProcess] {
        let first = NodeProcess(name: "n1", root: root.path)
        nodes.append(first)
        try first.start()
        XCTAssertTrue(first.waitReady())
        for i in 2...count {
            let n = NodeProcess(name: "n\(i)", root: root.path, extraArgs: ["--seed", first.address, "--cluster-key-file", first.dataDir + "/cluster.key"])
            nodes.append(n)
            try n.start()
        }
        for n in nodes { XCTAssertTrue(n.waitReady(), "\(n.name) not ready") }
        let ready = eventually(timeout: 30) {
            self.nodes.allSatisfy { n in
                (n.members() ?? []).filter { $0.state == "alive" }.count == count && n.status()?.overlayAddress != nil
            }
        }
        XCTAssertTrue(ready, "cluster of \(count) did not converge with overlay addresses")
        return nodes
    }

    private func ipam(_ n: NodeProcess) -> API.IPAMInfo? { try? n.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self) }

    private func alloc(_ n: NodeProcess, _ handle: String) -> Result<API.Allocation, ControlClientError> {
        var client = n.client
        client.timeoutSeconds = 40
        do { return .success(try client.call(API.Request(op: .alloc, handle: handle), as: API.Allocation.self)) } catch { return .failure(error) }
    }

    /// 1,000 allocations spread over 5 nodes at once: 1,000 distinct addresses; overlay
    /// addresses distinct too; the same handle twice gives the same address.
    func testThousandConcurrentAllocationsAreDistinct() throws {
        let all = try cluster(5)
        let total = 1000
        let clients = all.map { n -> ControlClient in var c = n.client; c.timeoutSeconds = 40; return c }
        let names = all.map(\.name)
        let box = LockedResults()
        DispatchQueue.concurrentPerform(iterations: 20) { worker in
            for k in 0..<(total / 20) {
                let i = worker * (total / 20) + k
                let handle = "ctr-\(i)"
                do {
                    let a = try clients[i % clients.count].call(API.Request(op: .alloc, handle: handle), as: API.Allocation.self)
                    box.record(handle, a.address)
                } catch {
                    box.fail("\(handle)@\(names[i % names.count]): \(error)")
                }
            }
        }
        let (results, failures) = box.snapshot()
        XCTAssertEqual(failures, [], "allocations failed")
        XCTAssertEqual(results.count, total)
        let addresses = Set(results.values)
        XCTAssertEqual(addresses.count, total, "two handles got the same address")
        let overlays = Set(all.compactMap { $0.status()?.overlayAddress })
        XCTAssertEqual(overlays.count, 5, "overlay addresses are distinct")
        XCTAssertTrue(addresses.isDisjoint(with: overlays), "a container got a node's overlay address")
        for a in addresses { XCTAssertTrue(a.hasPrefix("10.42."), "\(a) outside 10.42.0.0/16") }

        // Idempotent: the same handle on the same node returns the same address.
        if case .success(let again) = alloc(all[3], "ctr-3") { XCTAssertEqual(again.address, results["ctr-3"]) } else { XCTFail("repeat alloc failed") }

        // Every node reports its own allocations, and they add up.
        let perNode = all.compactMap { ipam($0)?.allocations.filter { $0.handle.hasPrefix("ctr-") }.count }
        XCTAssertEqual(perNode.reduce(0, +), total)

        // Also through the `weft` command itself.
        let cli = try runWeft(["alloc", "--data-dir", all[0].dataDir, "via-cli", "--json"])
        XCTAssertEqual(cli.status, 0, cli.stderr)
        let obj = try JSONSerialization.jsonObject(with: Data(cli.stdout.utf8)) as? [String: Any]
        XCTAssertFalse(addresses.contains(obj?["address"] as? String ?? ""), "CLI allocation collides")
    }

    /// Restart keeps allocations; leave hands ranges over; reclaim recovers a killed node's space.
    func testRestartLeaveAndReclaim() throws {
        let all = try cluster(4)
        let (a, b, c, d) = (all[0], all[1], all[2], all[3])
        guard case .success(let kept) = alloc(b, "keep-me") else { return XCTFail("alloc on b failed") }
        let bOverlay = b.status()?.overlayAddress

        // Restart b: same address for the same handle, same overlay address.
        b.signal(SIGTERM)
        XCTAssertEqual(b.waitForExit(), 0)
        try b.start()
        XCTAssertTrue(b.waitReady())
        XCTAssertEqual(ipam(b)?.allocations.first { $0.handle == "keep-me" }?.address, kept.address, "allocation survives restart")
        XCTAssertEqual(b.status()?.overlayAddress, bOverlay, "overlay address survives restart")
        if case .success(let again) = alloc(b, "keep-me") { XCTAssertEqual(again.address, kept.address) } else { XCTFail("alloc after restart failed") }

        // Leave: c hands every range to live peers; nothing stays owned by c.
        let cID = c.status()?.id ?? ""
        XCTAssertFalse(cID.isEmpty)
        let leave = try runWeft(["leave", "--data-dir", c.dataDir])
        XCTAssertEqual(leave.status, 0, leave.stderr)
        let handedOver = eventually(timeout: 20) {
            [a, b, d].allSatisfy { n in
                guard let info = self.ipam(n) else { return false }
                return !info.ranges.contains { $0.owner == cID }
            }
        }
        XCTAssertTrue(handedOver, "ranges of the leaving node still owned by it: \(ipam(a)?.ranges.filter { $0.owner == cID } ?? [])")

        // Kill d; once a sees it dead, `weft ipam reclaim` on a takes its space.
        let dID = d.status()?.id ?? ""
        d.kill9()
        XCTAssertTrue(eventually(timeout: 30) { (a.members() ?? []).contains { $0.id == dID && $0.state == "dead" } })
        XCTAssertTrue(ipam(a)?.ranges.contains { $0.owner == dID } ?? false, "d owned space before the reclaim")
        // Reclaiming a live member is refused.
        let refused = try runWeft(["ipam", "reclaim", "--data-dir", a.dataDir, b.status()?.id ?? "x"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("alive"), refused.stderr)
        let reclaim = try runWeft(["ipam", "reclaim", "--data-dir", a.dataDir, String(dID.prefix(12))])
        XCTAssertEqual(reclaim.status, 0, reclaim.stderr)
        XCTAssertTrue(reclaim.stdout.contains("took over"), reclaim.stdout)
        let recovered = eventually(timeout: 20) {
            [a, b].allSatisfy { n in !(self.ipam(n)?.ranges.contains { $0.owner == dID } ?? true) }
        }
        XCTAssertTrue(recovered, "the killed node's ranges were not taken over everywhere")
        // Nothing stranded: every range is owned by a live node.
        let liveIDs = Set([a, b].compactMap { $0.status()?.id })
        XCTAssertTrue(ipam(a)?.ranges.allSatisfy { liveIDs.contains($0.owner) } ?? false)
    }

    /// Bad input gets a clear error and changes nothing.
    func testBadInput() throws {
        let n = NodeProcess(name: "solo", root: root.path)
        nodes.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady())
        XCTAssertTrue(eventually(timeout: 10) { n.status()?.overlayAddress != nil }, "a single node allocates at once")
        let before = ipam(n)

        let empty = try runWeft(["alloc", "--data-dir", n.dataDir, ""])
        XCTAssertNotEqual(empty.status, 0)
        XCTAssertTrue(empty.stderr.contains("invalid handle"), empty.stderr)
        let long = try runWeft(["alloc", "--data-dir", n.dataDir, String(repeating: "x", count: 300)])
        XCTAssertNotEqual(long.status, 0)
        XCTAssertTrue(long.stderr.contains("invalid handle"), long.stderr)
        let reserved = try runWeft(["alloc", "--data-dir", n.dataDir, "weft:overlay"])
        XCTAssertNotEqual(reserved.status, 0, "the node's own handle namespace is reserved")
        let unknown = try runWeft(["release", "--data-dir", n.dataDir, "never-allocated"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("no allocation for handle"), unknown.stderr)
        XCTAssertEqual(ipam(n), before, "failed requests changed nothing")

        let badSubnet = try runWeft(["start", "--no-tun", "--data-dir", root.path + "/x", "--listen", "127.0.0.1:\(freePort())", "--subnet", "10.42.0.1/16"])
        XCTAssertNotEqual(badSubnet.status, 0)
        XCTAssertTrue(badSubnet.stderr.contains("--subnet"), badSubnet.stderr)
        let badSubnet2 = try runWeft(["start", "--no-tun", "--data-dir", root.path + "/y", "--listen", "127.0.0.1:\(freePort())", "--subnet", "banana"])
        XCTAssertNotEqual(badSubnet2.status, 0)
        XCTAssertTrue(badSubnet2.stderr.contains("--subnet"), badSubnet2.stderr)

        // Release works and frees the address for reuse by a new handle.
        guard case .success(let a1) = alloc(n, "temp") else { return XCTFail("alloc failed") }
        let rel = try runWeft(["release", "--data-dir", n.dataDir, "temp"])
        XCTAssertEqual(rel.status, 0, rel.stderr)
        XCTAssertFalse(ipam(n)?.allocations.contains { $0.handle == "temp" } ?? true)
        _ = a1
    }

    /// Exhaustion: a /29 cluster has 6 usable addresses; the 7th allocation is a clear error, not a hang.
    func testOutOfSpaceIsAClearError() throws {
        let n = NodeProcess(name: "tiny", root: root.path, extraArgs: ["--subnet", "10.99.0.0/29"])
        nodes.append(n)
        try n.start()
        XCTAssertTrue(n.waitReady())
        XCTAssertTrue(eventually(timeout: 10) { n.status()?.overlayAddress != nil })
        var got: [String] = []
        var lastError: ControlClientError?
        for i in 0..<10 {
            switch alloc(n, "c\(i)") {
            case .success(let a): got.append(a.address)
            case .failure(let e): lastError = e
            }
            if lastError != nil { break }
        }
        XCTAssertEqual(Set(got).count, got.count)
        XCTAssertEqual(got.count, 5, "6 usable addresses minus the node's own")
        guard case .remote(let body)? = lastError else { return XCTFail("expected an exhausted error, got \(String(describing: lastError))") }
        XCTAssertEqual(body.code, .exhausted)
    }
}

/// Results gathered from concurrent workers.
final class LockedResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [String: String] = [:]
    private var failures: [String] = []

    func record(_ handle: String, _ address: String) { lock.lock(); results[handle] = address; lock.unlock() }
    func fail(_ what: String) { lock.lock(); failures.append(what); lock.unlock() }
    func snapshot() -> ([String: String], [String]) { lock.lock(); defer { lock.unlock() }; return (results, failures) }
}
