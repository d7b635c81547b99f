/// Every `event` the node logs, in one scheme: lower-case kebab-case words, the area first
/// (`member-dead`, `tun-up`, `ipam-cluster-created`). The address allocator in WeftCore names its
/// events with dots (`ipam.cluster.created`); they are written to the log in this scheme
/// (`LogEvents.name`). docs/operations.md "Logs" lists exactly these;
/// Tests/WeftDaemonTests/LogEventsTests.swift collects every event name in Sources/ and checks
/// it against this list and against the doc, so code, catalog and doc cannot drift apart.
enum LogEvents {
    static let catalog: Set<String> = [
        // Lifecycle (Daemon.swift, WeftCore Node)
        "start", "rejoin", "start-failed", "name-clash", "joined", "join-failed", "leave", "stopped", "store-error",
        // Membership (WeftCore Node)
        "member-alive", "member-suspect", "member-dead", "member-left", "member-forgotten",
        // Eviction (WeftCore Node+Eviction)
        "member-evicted", "member-readmitted", "evicted", "readmitted",
        // Packets, overlay, tunnels, DNS (NodeRuntime*)
        "drop", "keys-changed", "keys-refused", "overlay-address", "tun-up", "tun-error", "tun-ipv6-error", "tun-offload-refused", "tunnel-up", "dns-up", "dns-error",
        // The kernel VXLAN data plane (NodeRuntime+VXLAN, WeftCore Node+DataPlane)
        "vxlan-up", "vxlan-down", "vxlan-op", "vxlan-error", "data-plane-mismatch",
        // Attachments whose runtime skipped DEL (AttachmentReconciler, weft gc)
        "attachment-released", "attachment-release-failed", "attachment-record-unreadable",
        // Address allocation: the node's (WeftCore Node) and the allocator's own (WeftCore IPAM)
        "ipam-conflict", "ipam-rejected", "ipam-send-failed",
        "ipam-cluster-created", "ipam-cluster-joined", "ipam-cluster-mismatch", "ipam-create-ignored",
        "ipam-allocate-waiting", "ipam-allocation-conflict", "ipam-allocation-unconfirmed", "ipam-allocation-unconfirmed-dropped",
        "ipam-holdings-refuted", "ipam-donation-requested", "ipam-donation-granted",
        "ipam-leave-handover", "ipam-leave-stranded",
        "ipam-reclaim", "ipam-reclaim-aborted", "ipam-reclaim-fencing", "ipam-reclaim-unsafe",
    ]

    /// The logged form of an event name: dots become dashes.
    static func name(_ event: String) -> String {
        event.contains(".") ? event.replacingOccurrences(of: ".", with: "-") : event
    }
}
