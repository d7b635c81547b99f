import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Attachment records: what a front end (weft-cni today, the Docker plugin next) leaves in the
/// data dir after it attached a container, so the node can tell later, on its own, whether the
/// container is certainly gone and its address can be released (a runtime that skipped DEL).
///
/// One JSON file per attachment, `<data-dir>/attachments/<16 hex digits of FNV-1a-64(handle)>.json`,
/// written (atomically: temporary file, rename) after a successful attach and removed by the
/// detach (DEL). The node never writes them, except to remove the record of an allocation it
/// released or that no longer exists.
///
/// The Docker seam: a Docker endpoint writes a record with `kind: "docker"`, its own handle,
/// the host-side veth and the sandbox's namespace; the node's reconciliation treats it exactly
/// like a CNI one.
extension API {
    public static let attachmentsDirName = "attachments"

    public struct AttachmentRecord: Codable, Sendable, Equatable {
        /// Format version (1).
        public var v: Int
        /// Who attached it: "cni" or "docker".
        public var kind: String
        /// The node allocation's handle (`cni:<network>:<container id>:<ifname>`).
        public var handle: String
        /// The allocated address, as the node answered.
        public var address: String
        /// The host end of the container's veth.
        public var hostInterface: String
        /// Inode of the network namespace the host end lives in (the one the plugin ran in).
        public var hostNetnsInode: UInt64
        /// The container's network namespace as the runtime named it (`/run/netns/…`, `/proc/PID/ns/net`).
        public var netns: String
        /// That namespace's inode at attach time (a reused path with another inode is another namespace).
        public var netnsInode: UInt64?
        /// Seconds since 1970 when the attachment was made.
        public var createdAt: Double

        public init(kind: String, handle: String, address: String, hostInterface: String, hostNetnsInode: UInt64,
                    netns: String, netnsInode: UInt64?, createdAt: Double) {
            self.v = 1
            self.kind = kind
            self.handle = handle
            self.address = address
            self.hostInterface = hostInterface
            self.hostNetnsInode = hostNetnsInode
            self.netns = netns
            self.netnsInode = netnsInode
            self.createdAt = createdAt
        }
    }

    public static func attachmentsDir(dataDir: String) -> String {
        (dataDir.hasSuffix("/") ? dataDir : dataDir + "/") + attachmentsDirName
    }

    /// `<data-dir>/attachments/<FNV-1a-64 of the handle, 16 hex digits>.json`.
    public static func attachmentPath(dataDir: String, handle: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in handle.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return attachmentsDir(dataDir: dataDir) + "/" + String(repeating: "0", count: 16 - hex.count) + hex + ".json"
    }

    /// The inode of the namespace file at `path` (`stat`), nil when it does not exist.
    public static func namespaceInode(_ path: String) -> UInt64? {
        var st = stat()
        guard !path.isEmpty, stat(path, &st) == 0 else { return nil }
        return UInt64(st.st_ino)
    }

    /// The inode of the calling thread's network namespace.
    public static func ownNetnsInode() -> UInt64? { namespaceInode("/proc/thread-self/ns/net") ?? namespaceInode("/proc/self/ns/net") }

    /// Writes `record` atomically (0600, the folder 0700). Throws a description on failure.
    public static func writeAttachment(_ record: AttachmentRecord, dataDir: String) throws {
        let dir = attachmentsDir(dataDir: dataDir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let path = attachmentPath(dataDir: dataDir, handle: record.handle)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try AtomicFile.write(try encoder.encode(record), to: path)
    }

    /// Removes the record of `handle`; a missing one is fine.
    public static func removeAttachment(handle: String, dataDir: String) {
        unlink(attachmentPath(dataDir: dataDir, handle: handle))
    }

    /// Every readable record in the folder; files that do not parse are skipped (and named).
    public static func readAttachments(dataDir: String) -> (records: [AttachmentRecord], unreadable: [String]) {
        let dir = attachmentsDir(dataDir: dataDir)
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return ([], []) }
        var records: [AttachmentRecord] = []
        var bad: [String] = []
        for n in names.sorted() where n.hasSuffix(".json") {
            let p = dir + "/" + n
            guard let d = FileManager.default.contents(atPath: p), d.count <= 64 * 1024,
                  let r = try? JSONDecoder().decode(AttachmentRecord.self, from: d) else { bad.append(p); continue }
            records.append(r)
        }
        return (records, bad)
    }

    /// `weft gc --json`: what the node released (or, with `dryRun`, would release) and what it kept.
    public struct GCResult: Codable, Sendable, Equatable {
        public var dryRun: Bool
        public var released: [GCEntry]
        public var kept: [GCEntry]
        public init(dryRun: Bool, released: [GCEntry], kept: [GCEntry]) {
            self.dryRun = dryRun
            self.released = released
            self.kept = kept
        }
    }

    public struct GCEntry: Codable, Sendable, Equatable {
        public var handle: String
        public var address: String
        /// Why it is released or kept, in words.
        public var reason: String
        public var hostInterface: String?
        public var netns: String?
        public init(handle: String, address: String, reason: String, hostInterface: String? = nil, netns: String? = nil) {
            self.handle = handle
            self.address = address
            self.reason = reason
            self.hostInterface = hostInterface
            self.netns = netns
        }
    }
}
