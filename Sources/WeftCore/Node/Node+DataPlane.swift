extension Node.Instance {
    /// The data plane a push-pull's sender runs, from its app state (nil: not a push-pull this
    /// node can read; the normal path reports that).
    static func dataPlane(ofPushPull plaintext: [UInt8], maxBytes: Int) -> (source: NodeID, dataPlane: String)? {
        guard let pp = try? Membership.Codec.decodePushPull(plaintext, maxBytes: maxBytes) else { return nil }
        guard let parts = unpackAppState(pp.appState) else {
            // An older node's bare ring (or no app state yet): it runs the default data plane.
            return (pp.source, Node.encryptedDataPlane)
        }
        return (pp.source, parts.dataPlane ?? Node.encryptedDataPlane)
    }

    /// A push-pull request from a node on another data plane: not merged (it must not become a
    /// member, tunnel peer or VXLAN neighbour); answered with only this node and its mode, so
    /// the requester refuses itself with a clear message. Nil when the modes agree.
    mutating func refuseOtherDataPlane(request plaintext: [UInt8], from: Endpoint, now: Instant) -> (reply: [UInt8]?, effects: [Node.Effect])? {
        guard let (source, theirs) = Self.dataPlane(ofPushPull: plaintext, maxBytes: membership.settings.maxPushPullBytes) else { return nil }
        guard theirs != settings.dataPlane else {
            if source != me { dataPlaneConfirmed = true }
            return nil
        }
        let app = Self.packAppState(ipam: [], dns: [], dataPlane: settings.dataPlane == Node.encryptedDataPlane ? nil : settings.dataPlane)
        let reply = Membership.Codec.encode(Membership.PushPull(
            isReply: true, source: me, join: false, members: [Membership.Update(membership.myself)], appState: app))
        let log = Node.Log(.warning, "refused a node on another data plane: it runs '\(theirs)', this cluster '\(settings.dataPlane)'",
                           event: "data-plane-mismatch", ["from": from.description, "member": source.short, "theirs": theirs, "ours": settings.dataPlane])
        return (reply, [.dropped("data-plane-mismatch"), .log(log)])
    }

    /// The answer to our push-pull came from a node on another data plane. Before any member on
    /// our own data plane answered since this start, the cluster runs the other mode: this
    /// node is refused and stops. After one did, the answer is dropped with a warning.
    mutating func refuseOtherDataPlane(reply plaintext: [UInt8], from: Endpoint, now: Instant) -> [Node.Effect]? {
        guard let (source, theirs) = Self.dataPlane(ofPushPull: plaintext, maxBytes: membership.settings.maxPushPullBytes) else { return nil }
        guard theirs != settings.dataPlane else {
            if source != me { dataPlaneConfirmed = true }
            return nil
        }
        if dataPlaneConfirmed || phase != .running {
            let log = Node.Log(.warning, "ignored a node on another data plane: it runs '\(theirs)', this cluster '\(settings.dataPlane)'",
                               event: "data-plane-mismatch", ["from": from.description, "member": source.short, "theirs": theirs, "ours": settings.dataPlane])
            return [.dropped("data-plane-mismatch"), .log(log)]
        }
        let message = "the cluster at \(from) runs the '\(theirs)' data plane but this node was started with --data-plane \(settings.dataPlane): a cluster runs one data plane; start this node with --data-plane \(theirs)"
            + (theirs == "vxlan" ? " --accept-unencrypted" : "")
        refusal = message
        phase = .refused
        return [.log(Node.Log(.error, message, event: "data-plane-mismatch", ["from": from.description, "theirs": theirs, "ours": settings.dataPlane])),
                .stop(.refused, message: message)]
    }
}
