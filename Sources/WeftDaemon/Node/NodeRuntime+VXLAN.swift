import Logging
import WeftAPI
import WeftCore
import WeftKernelNet

/// The seam between the node runtime and a data plane the kernel carries: the runtime hands it
/// every batch of the node's effects and calls it about once a second; it keeps the desired
/// state (the pure `VXLAN.Desired`) and makes the kernel match it. `NodeRuntime` knows nothing
/// else about it (docs/vxlan.md).
protocol KernelForwarding: AnyObject, Sendable {
    /// The name status, peers and metrics show (`vxlan (unencrypted)`).
    var label: String { get }
    /// The MTU of the overlay device (container interfaces use it).
    var mtu: Int { get }
    var deviceName: String { get }
    /// Every effect of one input, in order; reconciles the kernel when the desired state changed.
    /// Returns the overlay address when it was just configured on the device (DNS listens there).
    func take(_ effects: [Node.Effect]) -> UInt32?
    /// Reconciles again (repairs drift: someone deleted a route; retries an overlay address the
    /// kernel refused) and returns the device's counters, and the overlay address when it was
    /// just configured.
    func resync() -> (counters: Netlink.LinkCounters?, configured: UInt32?)
    /// `weft peers` rows: each live member's VTEP and the device's counters.
    func peers(names: [NodeID: String], ranges: [NodeID: [String]]) -> [API.PeerInfo]
    /// Removes the device and with it every FDB entry, neighbour and route.
    func stop()
}

/// `--data-plane vxlan`: one kernel VXLAN device, reconciled over rtnetlink.
final class VXLANForwarder: KernelForwarding, @unchecked Sendable {
    let kernel: KernelVXLAN
    let logger: Logger
    /// Only touched from the runtime actor.
    private var desired = VXLAN.Desired()
    private var loggedUnsupported: Set<NodeID> = []
    private var lastProblem: String?
    /// The overlay address the device carries (set by us); differs from `desired.overlay` only
    /// while setting it fails.
    private var configuredOverlay: UInt32?
    private var overlayProblem: String?

    var label: String { "vxlan (unencrypted)" }
    var mtu: Int { kernel.config.mtu }
    var deviceName: String { kernel.config.name }

    /// Creates the device (a leftover of a killed node is replaced).
    init(config: KernelVXLAN.Config, logger: Logger) throws(KernelNetError) {
        kernel = try KernelVXLAN(config: config)
        self.logger = logger
        try kernel.create()
        logger.notice("VXLAN device up (data NOT encrypted)", metadata: [
            "event": "vxlan-up", "device": .string(config.name), "vni": .stringConvertible(config.vni),
            "port": .stringConvertible(config.port), "local": .string(IPAM.format(config.local)),
            "mtu": .stringConvertible(config.mtu), "mac": .string(config.mac.description),
        ])
    }

    func take(_ effects: [Node.Effect]) -> UInt32? {
        var changed = false, overlayChanged = false
        for e in effects where desired.apply(e) {
            changed = true
            if case .overlayAddress = e { overlayChanged = true }
        }
        // A refused address is retried by `resync` (once a second), not on every input.
        let configured = overlayChanged ? configureOverlay() : nil
        if changed { reconcile() }
        return configured
    }

    func resync() -> (counters: Netlink.LinkCounters?, configured: UInt32?) {
        let configured = configureOverlay()
        reconcile()
        return (kernel.counters(), configured)
    }

    /// Puts the desired overlay address on the device when it does not carry it yet; returns
    /// it when it was just set. A failure is retried on the next call (about once a second).
    private func configureOverlay() -> UInt32? {
        guard let o = desired.overlay, o.address != configuredOverlay else { return nil }
        do {
            try kernel.setAddress(o.address, prefixLength: o.prefixLength)
            configuredOverlay = o.address
            overlayProblem = nil
            logger.notice("VXLAN overlay address set", metadata: [
                "event": "tun-up", "device": .string(deviceName), "address": .string("\(IPAM.format(o.address))/\(o.prefixLength)"),
                "mtu": .stringConvertible(mtu),
            ])
            return o.address
        } catch {
            if overlayProblem != error.description {
                overlayProblem = error.description
                logger.error("cannot set the overlay address (retried)", metadata: ["event": "vxlan-error", "error": .string(error.description)])
            }
            return nil
        }
    }

    private func reconcile() {
        for id in desired.unsupported where !loggedUnsupported.contains(id) {
            loggedUnsupported.insert(id)
            logger.error("member has an IPv6 underlay address: VXLAN here carries IPv4 underlays only, it gets no FDB entry",
                         metadata: ["event": "vxlan-error", "member": .string(id.short)])
        }
        do {
            let (applied, failed) = try kernel.reconcile(desired.forwarding)
            for op in applied { logger.info("kernel forwarding changed", metadata: ["event": "vxlan-op", "op": .string(op.description)]) }
            for f in failed { logger.warning("kernel forwarding change failed (retried)", metadata: ["event": "vxlan-error", "error": .string(f.description)]) }
            lastProblem = failed.first?.description
        } catch {
            lastProblem = error.description
            logger.warning("cannot read the kernel's forwarding state (retried)", metadata: ["event": "vxlan-error", "error": .string(error.description)])
        }
    }

    func peers(names: [NodeID: String], ranges: [NodeID: [String]]) -> [API.PeerInfo] {
        let counters = kernel.counters()
        let device = counters.map {
            "device \(deviceName) totals: rx \($0.rxPackets) pkts/\($0.rxBytes) B, tx \($0.txPackets) pkts/\($0.txBytes) B, drops rx \($0.rxDropped) tx \($0.txDropped)"
        } ?? "device \(deviceName): counters unavailable"
        let port = kernel.config.port
        return desired.vteps.map { id, vtep in
            API.PeerInfo(
                id: id.hex, name: names[id] ?? "?", endpoint: "\(IPAM.format(vtep)):\(port)", state: label,
                detail: "VTEP \(IPAM.format(vtep)):\(port) vni \(kernel.config.vni) mac \(VXLAN.mac(for: id)); \(device)",
                lastHandshake: nil,
                rxBytes: counters?.rxBytes ?? 0, txBytes: counters?.txBytes ?? 0,
                rxPackets: counters?.rxPackets ?? 0, txPackets: counters?.txPackets ?? 0,
                drops: [:], ranges: ranges[id]
            )
        }.sorted { $0.name < $1.name }
    }

    func stop() {
        do {
            try kernel.destroy()
            logger.notice("VXLAN device removed", metadata: ["event": "vxlan-down", "device": .string(deviceName)])
        } catch {
            logger.error("cannot remove the VXLAN device", metadata: ["event": "vxlan-error", "error": .string(error.description)])
        }
    }
}

extension NodeRuntime {
    /// The seam's one call from `perform`: hands the effects over; DNS follows the overlay address.
    func forwardToKernel(_ effects: [Node.Effect]) {
        guard let k = kernelForwarding, let address = k.take(effects) else { return }
        Task { await self.startOverlayDNS(address: address) }
    }

    func setKernelForwarding(_ k: any KernelForwarding) {
        kernelForwarding = k
        metrics.dataPlaneMode(k.label)
    }

    /// `weft_data_plane_info{mode}` for the data planes without a kernel seam (encrypted, none).
    func setDataPlaneMode(_ label: String) { metrics.dataPlaneMode(label) }

    /// About once a second, beside the data-plane report: repair drift, count the device.
    func resyncKernelForwarding(now t: Instant) {
        guard let k = kernelForwarding, t - lastKernelResync >= .seconds(1) else { return }
        lastKernelResync = t
        let (counters, configured) = k.resync()
        if let configured { Task { await self.startOverlayDNS(address: configured) } }
        if let c = counters {
            metrics.vxlanDevice(rxBytes: c.rxBytes, txBytes: c.txBytes, rxPackets: c.rxPackets, txPackets: c.txPackets)
        }
    }
}
