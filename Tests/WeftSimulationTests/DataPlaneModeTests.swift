import WeftCore
import WeftTestKit
import XCTest

/// A cluster runs one data plane (docs/vxlan.md): a node on another one is refused with a
/// message that names both modes and the flag to use, and never becomes a member.
final class DataPlaneModeTests: XCTestCase {
    func vxlanSettings() -> Node.Settings {
        var s = NodeSimulator.nodeSettings
        s.dataPlane = "vxlan"
        return s
    }

    func testEncryptedNodeJoiningAVXLANClusterIsRefused() {
        let sim = NodeSimulator(seed: 41, node: vxlanSettings())
        sim.addHost(); sim.addHost(); sim.run(for: .seconds(3))
        sim.dataPlaneOf[2] = Node.encryptedDataPlane
        var stop: String?
        sim.observer = { host, e in if host == 2, case .stop(.refused, let m) = e { stop = m } }
        sim.addHost(); sim.run(for: .seconds(5))
        XCTAssertNil(sim.hosts[2].node, "the encrypted joiner must stop")
        let m = try? XCTUnwrap(stop)
        XCTAssertTrue(m?.contains("runs the 'vxlan' data plane") == true, m ?? "no refusal")
        XCTAssertTrue(m?.contains("--data-plane vxlan --accept-unencrypted") == true, m ?? "")
        for i in 0..<2 {
            let members = sim.hosts[i].node!.membership.members
            XCTAssertFalse(members.contains { $0.id == sim.hosts[2].id && ($0.state == .alive || $0.state == .suspect) },
                           "host \(i) must not take the refused node as a live member")
            XCTAssertEqual(members.filter { $0.state == .alive }.count, 2, "the vxlan members stay")
        }
        XCTAssertTrue(sim.trace.contains { $0.contains("data-plane-mismatch") }, sim.trace.joined(separator: "\n"))
    }

    func testVXLANNodeJoiningAnEncryptedClusterIsRefused() {
        let sim = NodeSimulator(seed: 42)
        sim.addHost(); sim.run(for: .seconds(1))
        sim.dataPlaneOf[1] = "vxlan"
        var stop: String?
        sim.observer = { host, e in if host == 1, case .stop(.refused, let m) = e { stop = m } }
        sim.addHost(); sim.run(for: .seconds(5))
        XCTAssertNil(sim.hosts[1].node)
        XCTAssertTrue(stop?.contains("runs the 'encrypted' data plane but this node was started with --data-plane vxlan") == true, stop ?? "no refusal")
        XCTAssertNotNil(sim.hosts[0].node, "the cluster's node keeps running")
    }

    func testSameModeJoinsAndARestartStaysIn() {
        let sim = NodeSimulator(seed: 43, node: vxlanSettings())
        sim.addHost(); sim.addHost(); sim.addHost(); sim.run(for: .seconds(5))
        for h in sim.hosts { XCTAssertEqual(h.node?.membership.members.filter { $0.state == .alive }.count, 3) }
        sim.crash(1); sim.restart(1); sim.run(for: .seconds(5))
        XCTAssertNotNil(sim.hosts[1].node, "a restart on the same data plane is not refused")
        XCTAssertFalse(sim.trace.contains { $0.contains("data-plane-mismatch") }, sim.trace.joined(separator: "\n"))
    }
}
