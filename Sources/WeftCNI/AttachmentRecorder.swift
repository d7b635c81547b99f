import Foundation
import WeftAPI

/// Leaves an attachment record (API.AttachmentRecord, `<dataDir>/attachments/`) after a
/// successful ADD and removes it when DEL or GC has released the address, so the node can give
/// the address back on its own when a runtime never sends DEL (AttachmentReconciler in the node).
/// A record that cannot be written is a warning, never a failed ADD.
public struct AttachmentRecorder: Sendable {
    /// Writes the record; returns a warning when it could not.
    public var record: @Sendable (_ dataDir: String, _ handle: String, _ address: String, _ hostInterface: String, _ netns: String) -> String?
    /// Removes the record of a handle (missing is fine).
    public var forget: @Sendable (_ dataDir: String, _ handle: String) -> Void

    public init(record: @escaping @Sendable (String, String, String, String, String) -> String?,
                forget: @escaping @Sendable (String, String) -> Void) {
        self.record = record
        self.forget = forget
    }

    /// Records nothing (unit tests with a fake kernel).
    public static let none = AttachmentRecorder(record: { _, _, _, _, _ in nil }, forget: { _, _ in })

    /// Files in the node's data dir.
    public static let files = AttachmentRecorder(
        record: { dataDir, handle, address, hostInterface, netns in
            guard let own = API.ownNetnsInode() else {
                return "weft-cni: cannot read this process's network namespace; the attachment of \(handle) is not recorded"
            }
            let r = API.AttachmentRecord(kind: "cni", handle: handle, address: address, hostInterface: hostInterface,
                                         hostNetnsInode: own, netns: netns, netnsInode: API.namespaceInode(netns),
                                         createdAt: Date().timeIntervalSince1970)
            do { try API.writeAttachment(r, dataDir: dataDir) } catch {
                return "weft-cni: could not record the attachment of \(handle) in \(API.attachmentsDir(dataDir: dataDir)) (\(error)); if the runtime skips DEL, release it with `weft gc` or `weft release`"
            }
            return nil
        },
        forget: { dataDir, handle in API.removeAttachment(handle: handle, dataDir: dataDir) }
    )
}
