import Foundation
import Logging
import WeftAPI
#if canImport(Glibc)
import Glibc
#endif

/// Gives back the addresses of containers that are certainly gone when their runtime never sent
/// DEL (`ctr run -d` + `task delete`, podman when the netns was already gone, a reboot that wiped
/// the runtime's state). Works from the attachment records the front ends leave in the data dir
/// (`API.AttachmentRecord`): an allocation is released only when
///   1. its record says the host end lives in the node's own network namespace (otherwise the
///      node cannot see it and keeps it),
///   2. the host end of its veth does not exist, and
///   3. the container's namespace is gone too (its path is missing, or names another namespace
///      than at attach time),
/// and, when the node does it on its own, only after that has held for the whole grace period
/// (`weft start --gc-after`, default 2 min) — each release is logged (`attachment-released`).
/// An allocation with a `cni:`/`docker:` handle but no record (attached by an older plugin, or an
/// ADD still running) is never released automatically: `weft gc` lists it. `weft gc` runs the
/// same pass at once without the grace period (the three conditions still hold), `--dry-run`
/// only reports.
actor AttachmentReconciler {
    /// The kernel as the reconciliation sees it; tests inject their own.
    struct Probes: Sendable {
        var ownNetns: @Sendable () -> UInt64?
        var linkExists: @Sendable (String) -> Bool
        var namespaceInode: @Sendable (String) -> UInt64?

        static let live = Probes(
            ownNetns: { API.ownNetnsInode() },
            linkExists: { name in if_nametoindex(name) != 0 },
            namespaceInode: { API.namespaceInode($0) }
        )
    }

    enum Verdict: Equatable {
        case gone(String)
        case keep(String)
    }

    /// The decision for one record whose allocation the node still holds.
    static func verdict(_ r: API.AttachmentRecord, ownNetns: UInt64?, probes: Probes) -> Verdict {
        guard let own = ownNetns, own == r.hostNetnsInode else {
            return .keep("attached in another network namespace (inode \(r.hostNetnsInode)) than the node's: its host interface cannot be seen from here")
        }
        if probes.linkExists(r.hostInterface) { return .keep("live: host interface \(r.hostInterface) exists") }
        if let inode = probes.namespaceInode(r.netns), r.netnsInode == nil || inode == r.netnsInode {
            return .keep("host interface \(r.hostInterface) is gone but the container's namespace \(r.netns) still exists")
        }
        return .gone("host interface \(r.hostInterface) and the container's namespace \(r.netns) are gone")
    }

    let dataDir: String
    /// How long an attachment must look gone before the node releases it on its own; nil: never.
    let grace: Duration?
    let logger: Logger
    let probes: Probes
    private var goneSince: [String: ContinuousClock.Instant] = [:]
    private var reportedUnreadable: Set<String> = []

    init(dataDir: String, grace: Duration?, logger: Logger, probes: Probes = .live) {
        self.dataDir = dataDir
        self.grace = grace
        self.logger = logger
        self.probes = probes
    }

    /// One pass. `automatic`: the node's own pass (grace period applies); otherwise `weft gc`.
    func reconcile(runtime: NodeRuntime, dryRun: Bool, automatic: Bool) async -> API.GCResult {
        let allocations = await runtime.ipamInfo().allocations
        var addressOf: [String: String] = [:]
        for a in allocations { addressOf[a.handle] = a.address }
        let (records, unreadable) = API.readAttachments(dataDir: dataDir)
        for p in unreadable where !reportedUnreadable.contains(p) {
            reportedUnreadable.insert(p)
            logger.warning("unreadable attachment record skipped", metadata: ["event": "attachment-record-unreadable", "path": .string(p)])
        }
        var released: [API.GCEntry] = []
        var kept: [API.GCEntry] = []
        var recorded = Set<String>()
        let own = probes.ownNetns()
        let now = ContinuousClock.now
        for r in records {
            recorded.insert(r.handle)
            func entry(_ why: String) -> API.GCEntry {
                API.GCEntry(handle: r.handle, address: addressOf[r.handle] ?? r.address, reason: why, hostInterface: r.hostInterface, netns: r.netns)
            }
            guard let address = addressOf[r.handle] else {
                // The allocation is gone (released by DEL or by hand): the record is stale.
                if !dryRun { API.removeAttachment(handle: r.handle, dataDir: dataDir) }
                goneSince[r.handle] = nil
                continue
            }
            guard address == r.address else {
                kept.append(entry("the record is for \(r.address), the handle now holds \(address): left to the next attach or DEL"))
                continue
            }
            switch Self.verdict(r, ownNetns: own, probes: probes) {
            case .keep(let why):
                goneSince[r.handle] = nil
                kept.append(entry(why))
            case .gone(let why):
                if automatic {
                    guard let grace else { kept.append(entry(why + "; automatic release is off (--gc-after never)")); continue }
                    let first = goneSince[r.handle] ?? now
                    goneSince[r.handle] = first
                    if now - first < grace {
                        kept.append(entry(why + "; released once that has held for \(grace)"))
                        continue
                    }
                }
                if dryRun {
                    released.append(entry(why))
                    continue
                }
                switch await runtime.release(r.handle) {
                case .success:
                    API.removeAttachment(handle: r.handle, dataDir: dataDir)
                    goneSince[r.handle] = nil
                    released.append(entry(why))
                    logger.notice("released the address of a container that is gone", metadata: [
                        "event": "attachment-released", "handle": .string(r.handle), "address": .string(address),
                        "kind": .string(r.kind), "reason": .string(why), "by": .string(automatic ? "node" : "weft gc"),
                    ])
                case .failure(let e):
                    kept.append(entry("release failed: \(e.message)"))
                    logger.warning("could not release a gone attachment", metadata: [
                        "event": "attachment-release-failed", "handle": .string(r.handle), "error": .string(e.message),
                    ])
                }
            }
        }
        for h in goneSince.keys where !recorded.contains(h) { goneSince[h] = nil }
        for a in allocations where (a.handle.hasPrefix("cni:") || a.handle.hasPrefix("docker:")) && !recorded.contains(a.handle) {
            kept.append(API.GCEntry(handle: a.handle, address: a.address, reason:
                "no attachment record (attached by an older weft-cni, or its ADD is still running): if the container is gone, `weft release \(a.handle)`"))
        }
        return API.GCResult(dryRun: dryRun, released: released, kept: kept)
    }

    /// The node's own passes, every min(30 s, grace / 2), until cancelled. Returns at once when
    /// automatic release is off.
    func run(runtime: NodeRuntime) async {
        guard let grace else { return }
        let interval = min(Duration.seconds(30), max(Duration.seconds(1), grace / 2))
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            _ = await reconcile(runtime: runtime, dryRun: false, automatic: true)
        }
    }
}
