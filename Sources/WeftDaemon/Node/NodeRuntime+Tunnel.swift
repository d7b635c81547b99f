import Logging
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDataPlane

/// Tunnels inside the node runtime: members become tunnel peers, the IPAM ring becomes the data
/// plane's route table, handshakes run in the pure `Tunnel.Instance`, and established sessions
/// are handed to the data plane's fast path (`docs/dataplane.md`).
extension NodeRuntime {
    /// Handshake, cookie and (slow-path) data datagrams: kinds 4–7.
    func onTunnelDatagram(_ bytes: [UInt8], from: Endpoint) {
        guard tunnel != nil else {
            metrics.drop(reason: "tunnel-disabled")
            return
        }
        let t = now
        let directives: [Tunnel.Directive]
        switch bytes[1] {
        case 4: directives = tunnel!.onHandshakeInitiation(bytes, from: from, now: t, underLoad: false)
        case 5: directives = tunnel!.onHandshakeResponse(bytes, from: from, now: t)
        case 6: directives = tunnel!.onCookieReply(bytes, from: from, now: t)
        default: directives = tunnel!.onData(bytes, from: from, now: t)
        }
        execute(tunnel: directives)
    }

    /// The data plane had a packet for `peer` but no usable session for it.
    func onNoSession(peer: NodeID, packet: [UInt8]) {
        guard tunnel != nil else { return }
        execute(tunnel: tunnel!.onOutbound(packet, to: peer, now: now))
    }

    /// A handed-off session ran out of counters or time: let the tunnel rekey.
    func onSessionExhausted(localIndex: UInt32) {
        guard tunnel != nil else { return }
        execute(tunnel: tunnel!.onDataPlaneReport(localIndex: localIndex, nextSendCounter: .max, now: now))
    }

    func tickTunnel(now t: Instant) {
        guard tunnel != nil else { return }
        execute(tunnel: tunnel!.onTick(now: t))
    }

    /// About once a second: tell the tunnel how far each handed-off session has counted, so
    /// the message-count rekey fires.
    func reportDataPlane(now t: Instant) {
        guard let dataPlane, t - lastDataPlaneReport >= .seconds(1) else { return }
        lastDataPlaneReport = t
        metrics.dataPlane(dataPlane.counters())
        // The overlay address is announced once (an edge): a TUN that refused it is retried here.
        configureOverlayIfNeeded()
        guard tunnel != nil else { return }
        for r in dataPlane.sendCounterReports() {
            execute(tunnel: tunnel!.onDataPlaneReport(localIndex: r.localIndex, nextSendCounter: r.nextSendCounter, now: t))
        }
    }

    func execute(tunnel directives: [Tunnel.Directive]) {
        guard let dataPlane else { return }
        for d in directives {
            switch d {
            case .send(let bytes, let to):
                dataPlane.send(bytes, to: to)
            case .deliver(let packet, _):
                dataPlane.deliverToTUN(packet)
            case .dropped(let reason):
                metrics.drop(reason: "tunnel-" + reason.name)
            case .sessionEstablished(let info):
                guard let snapshot = tunnel?.handOffSession(localIndex: info.localIndex, now: now) else { continue }
                dataPlane.install(snapshot, endpoint: info.endpoint, rejectAfter: info.establishedAt + tunnelRejectAfter, now: now)
                logger.info("tunnel established", metadata: [
                    "event": "tunnel-up", "peer": .string(info.peer.short), "endpoint": .string(info.endpoint.description),
                    "initiator": .stringConvertible(info.isInitiator),
                ])
            case .sessionRetired(_, let localIndex):
                dataPlane.retire(localIndex: localIndex)
            }
        }
    }

    /// Sessions are refused this long after their handshake (WireGuard's REJECT_AFTER_TIME).
    var tunnelRejectAfter: Duration { .seconds(180) }

    /// The node says how a member's tunnel must change.
    func apply(_ change: Node.TunnelPeerChange) {
        guard tunnel != nil else { return }
        switch change {
        case .upsert(let id, let publicKey, let endpoint, let restarted):
            guard let pk = try? PublicKey(bytes: publicKey), let key = SodiumTunnelSuite.staticPublicKey(pk) else {
                metrics.drop(reason: "tunnel-bad-member-key")
                return
            }
            if restarted { execute(tunnel: tunnel!.removePeer(id)) }
            execute(tunnel: tunnel!.upsertPeer(id, staticKey: key, endpoint: endpoint))
            dataPlane?.updateEndpoint(peer: id, endpoint: endpoint)
        case .remove(let id):
            execute(tunnel: tunnel!.removePeer(id))
        }
    }

    /// Gives the TUN device the node's overlay address once both exist.
    func configureOverlayIfNeeded() {
        guard let dataPlane, dataPlane.tunName != nil, let (address, prefixLength) = pendingOverlay, address != tunAddress else { return }
        if let name = dataPlane.tunName, let problem = Overlay.disableIPv6(device: name) {
            logger.warning("cannot turn IPv6 off on the TUN device", metadata: ["event": "tun-ipv6-error", "device": .string(name), "error": .string(problem)])
        }
        do {
            try dataPlane.configureTUN(address: address, prefixLength: prefixLength, mtu: tunMTU)
            tunAddress = address
            overlayProblem = nil
            Task { await self.startOverlayDNS(address: address) }
            logger.notice("TUN device up", metadata: [
                "event": "tun-up", "device": .string(dataPlane.tunName ?? "?"),
                "address": .string("\(IPAM.format(address))/\(prefixLength)"), "mtu": .stringConvertible(tunMTU),
            ])
        } catch {
            // Retried about once a second (reportDataPlane); said again only when it changes.
            guard overlayProblem != error.description else { return }
            overlayProblem = error.description
            logger.error("cannot configure the TUN device (retried)", metadata: ["event": "tun-error", "error": .string(error.description)])
        }
    }

    /// `weft peers`.
    func peers() -> [API.PeerInfo] {
        if let kernelForwarding {
            var ranges: [NodeID: [String]] = [:]
            for r in node.routes { ranges[r.peer, default: []].append("\(IPAM.format(r.start))-\(IPAM.format(r.end))") }
            return kernelForwarding.peers(names: memberNames(), ranges: ranges)
        }
        guard let tunnel else { return [] }
        let t = now
        let counters = dataPlane?.counters()
        let names = memberNames()
        return tunnel.peerStatuses(now: t).map { s in
            let state: String, detail: String
            switch s.state {
            case .idle: state = "idle"; detail = ""
            case .handshaking(let a): state = "handshaking"; detail = "attempt \(a)"
            case .established: state = "established"; detail = ""
            case .rekeying(let a): state = "rekeying"; detail = "attempt \(a)"
            case .failing(let a, let e): state = "failing"; detail = "\(a) attempts, last: \(e)"
            }
            let fast = counters?.peers[s.peer]
            return API.PeerInfo(
                id: s.peer.hex, name: names[s.peer] ?? "?", endpoint: s.endpoint?.description, state: state, detail: detail,
                lastHandshake: s.lastHandshake.map { max(0, (t - $0).seconds) },
                rxBytes: s.bytesReceived + (fast?.rxBytes ?? 0), txBytes: s.bytesSent + (fast?.txBytes ?? 0),
                rxPackets: s.packetsReceived + (fast?.rxPackets ?? 0), txPackets: s.packetsSent + (fast?.txPackets ?? 0),
                drops: fast?.drops ?? [:]
            )
        }.sorted { $0.name < $1.name }
    }
}
