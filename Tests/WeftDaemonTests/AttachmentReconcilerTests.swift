import Foundation
import WeftAPI
import XCTest

@testable import WeftDaemon

/// The decision of the node's clean-up of attachments a runtime never sent DEL for: released only
/// when the host veth AND the container's namespace are gone, in the node's own namespace.
final class AttachmentReconcilerTests: XCTestCase {
    private func record(host: UInt64 = 7, netns: String = "/proc/42/ns/net", inode: UInt64? = 99) -> API.AttachmentRecord {
        API.AttachmentRecord(kind: "cni", handle: "cni:weft:default-x:eth0", address: "10.42.0.9", hostInterface: "wft0123456789",
                             hostNetnsInode: host, netns: netns, netnsInode: inode, createdAt: 0)
    }

    private func probes(link: Bool, ns: UInt64?) -> AttachmentReconciler.Probes {
        AttachmentReconciler.Probes(ownNetns: { 7 }, linkExists: { _ in link }, namespaceInode: { _ in ns })
    }

    private func isGone(_ v: AttachmentReconciler.Verdict) -> Bool { if case .gone = v { return true } else { return false } }

    func testReleasedOnlyWhenVethAndNamespaceAreGone() {
        XCTAssertTrue(isGone(AttachmentReconciler.verdict(record(), ownNetns: 7, probes: probes(link: false, ns: nil))))
        XCTAssertFalse(isGone(AttachmentReconciler.verdict(record(), ownNetns: 7, probes: probes(link: true, ns: nil))), "veth still there")
        XCTAssertFalse(isGone(AttachmentReconciler.verdict(record(), ownNetns: 7, probes: probes(link: true, ns: 99))), "container alive")
        XCTAssertFalse(isGone(AttachmentReconciler.verdict(record(), ownNetns: 7, probes: probes(link: false, ns: 99))),
                       "veth gone but the namespace is the same one: keep")
    }

    func testReusedNamespacePathIsAnotherNamespace() {
        // /proc/PID/ns/net of a reused PID: the path exists, but names another namespace
        XCTAssertTrue(isGone(AttachmentReconciler.verdict(record(), ownNetns: 7, probes: probes(link: false, ns: 1234))))
        // no inode recorded at ADD: an existing path is taken as alive
        XCTAssertFalse(isGone(AttachmentReconciler.verdict(record(inode: nil), ownNetns: 7, probes: probes(link: false, ns: 1234))))
    }

    func testAnotherHostNamespaceIsNeverJudged() {
        let v = AttachmentReconciler.verdict(record(host: 8), ownNetns: 7, probes: probes(link: false, ns: nil))
        XCTAssertFalse(isGone(v))
        XCTAssertFalse(isGone(AttachmentReconciler.verdict(record(), ownNetns: nil, probes: probes(link: false, ns: nil))), "own namespace unknown")
        if case .keep(let why) = v { XCTAssertTrue(why.contains("another network namespace"), why) }
    }

    func testRecordsRoundTripAndUnreadableFilesAreSkipped() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-att-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = record()
        try API.writeAttachment(r, dataDir: dir)
        let path = API.attachmentPath(dataDir: dir, handle: r.handle)
        XCTAssertTrue(path.hasPrefix(dir + "/attachments/") && path.hasSuffix(".json"))
        XCTAssertEqual(API.attachmentPath(dataDir: dir, handle: r.handle), path, "stable name")
        XCTAssertNotEqual(API.attachmentPath(dataDir: dir, handle: r.handle + "x"), path)
        XCTAssertTrue(FileManager.default.createFile(atPath: dir + "/attachments/garbage.json", contents: Data("{not json".utf8)))
        let (records, bad) = API.readAttachments(dataDir: dir)
        XCTAssertEqual(records, [r])
        XCTAssertEqual(bad, [dir + "/attachments/garbage.json"])
        API.removeAttachment(handle: r.handle, dataDir: dir)
        API.removeAttachment(handle: r.handle, dataDir: dir)  // twice is fine
        XCTAssertEqual(API.readAttachments(dataDir: dir).records, [])
        XCTAssertEqual(API.readAttachments(dataDir: dir + "/missing").records, [], "no folder: no records")
    }

    func testOwnNamespaceInodeIsReadable() {
        XCTAssertNotNil(API.ownNetnsInode())
        XCTAssertEqual(API.namespaceInode("/proc/self/ns/net"), API.namespaceInode("/proc/self/ns/net"))
        XCTAssertNil(API.namespaceInode("/nonexistent/ns/net"))
        XCTAssertNil(API.namespaceInode(""))
    }
}
