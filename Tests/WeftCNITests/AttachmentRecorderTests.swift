import Foundation
import WeftAPI
import XCTest
@testable import WeftCNI

/// weft-cni leaves an attachment record after ADD and removes it once the address is released,
/// so the node can release the address itself when a runtime skips DEL.
final class AttachmentRecorderTests: XCTestCase {
    final class Log: @unchecked Sendable {
        let lock = NSLock()
        var records: [String: (address: String, host: String, netns: String)] = [:]
        var failWrite = false
    }

    func testAddRecordsDelForgetsAndNodeDownKeepsTheRecord() {
        let net = FakeNetwork()
        let node = FakeNode()
        net.addNamespace("/run/netns/c1")
        let log = Log()
        let recorder = AttachmentRecorder(
            record: { _, handle, address, host, netns in
                log.lock.lock(); defer { log.lock.unlock() }
                if log.failWrite { return "weft-cni: could not record" }
                log.records[handle] = (address, host, netns)
                return nil
            },
            forget: { _, handle in log.lock.lock(); log.records[handle] = nil; log.lock.unlock() })
        let plugin = Plugin(network: net, client: { _ in node }, recorder: recorder)
        let env: [String: String] = ["CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"]
        let conf = Array(#"{"cniVersion":"1.0.0","name":"weftnet","type":"weft-cni"}"#.utf8)
        let handle = "cni:weftnet:c1:eth0"

        let add = plugin.run(environment: env, stdin: conf)
        XCTAssertEqual(add.exitCode, 0, add.stdout)
        XCTAssertEqual(log.records[handle]?.host, Naming.hostInterface(containerID: "c1", ifname: "eth0"))
        XCTAssertEqual(log.records[handle]?.netns, "/run/netns/c1")
        XCTAssertEqual(log.records[handle]?.address, node.allocations[handle])

        var del = env
        del["CNI_COMMAND"] = "DEL"
        XCTAssertEqual(plugin.run(environment: del, stdin: conf).exitCode, 0)
        XCTAssertNil(log.records[handle], "DEL released the address: the record goes")

        XCTAssertEqual(plugin.run(environment: env, stdin: conf).exitCode, 0)
        node.down = true
        XCTAssertEqual(plugin.run(environment: del, stdin: conf).exitCode, 0)
        XCTAssertNotNil(log.records[handle], "node down: the address stays held, so the record stays for the node's own clean-up")
        node.down = false

        // a record that cannot be written is a warning, not a failed ADD
        log.failWrite = true
        var env2 = env
        env2["CNI_CONTAINERID"] = "c2"
        net.addNamespace("/run/netns/c2")
        env2["CNI_NETNS"] = "/run/netns/c2"
        let out = plugin.run(environment: env2, stdin: conf)
        XCTAssertEqual(out.exitCode, 0, out.stdout)
        XCTAssertEqual(out.stderr, ["weft-cni: could not record"])
    }

    func testFilesRecorderWritesTheNodesFormat() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-rec-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        XCTAssertNil(AttachmentRecorder.files.record(dir, "cni:n:c:eth0", "10.42.0.7", "wft0000000001", "/proc/self/ns/net"))
        let records = API.readAttachments(dataDir: dir).records
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records.first?.kind, "cni")
        XCTAssertEqual(records.first?.hostNetnsInode, API.ownNetnsInode())
        XCTAssertEqual(records.first?.netnsInode, API.namespaceInode("/proc/self/ns/net"))
        AttachmentRecorder.files.forget(dir, "cni:n:c:eth0")
        XCTAssertTrue(API.readAttachments(dataDir: dir).records.isEmpty)
    }
}
