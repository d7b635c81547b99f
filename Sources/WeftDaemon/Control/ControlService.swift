import Foundation
import WeftAPI
import WeftCore

/// Decodes control-socket requests, calls the node runtime, encodes responses. Malformed
/// requests get a `bad-request` error response; nothing a client sends can stop the node.
struct ControlService: Sendable {
    let runtime: NodeRuntime
    let resolver: @Sendable (String) -> Result<Endpoint, StartupError>
    /// Called after a `leave` has been answered: the daemon shuts down.
    let onLeave: @Sendable () -> Void
    /// `gc`: the attachment reconciliation (nil: `gc` answers not-ready).
    var attachments: AttachmentReconciler? = nil

    func handle(_ bytes: [UInt8]) async -> [UInt8] {
        let request: API.Request
        do {
            request = try JSONDecoder().decode(API.Request.self, from: Data(bytes))
        } catch {
            if let probe = try? JSONDecoder().decode(VersionProbe.self, from: Data(bytes)), probe.v > API.version {
                return encodeError(.unsupportedVersion, "request version \(probe.v) is newer than this node's \(API.version): upgrade the node")
            }
            return encodeError(.badRequest, "malformed request: \(Self.describe(error))")
        }
        guard request.v <= API.version else {
            return encodeError(.unsupportedVersion, "request version \(request.v) is newer than this node's \(API.version): upgrade the node")
        }
        // A change before the node has started would be taken in with nothing attached to
        // carry its effects (NodeRuntime.serving): refuse it; reads are fine.
        switch request.op {
        case .join, .leave, .alloc, .release, .dnsAdd, .dnsRemove, .gc, .reclaim, .keysInstall, .keysUse, .keysRemove, .evict:
            guard await runtime.serving else {
                return encodeError(.notReady, "the node is still starting (its data plane is not attached yet): try again in a moment")
            }
        case .status, .members, .ipam, .peers, .doctor, .dns, .keys:
            break
        }
        switch request.op {
        case .status:
            return encode(await runtime.fullStatus())
        case .members:
            return encode(await runtime.members())
        case .join:
            let texts = request.addresses ?? []
            guard !texts.isEmpty else { return encodeError(.badRequest, "join needs at least one HOST:PORT address") }
            var endpoints: [Endpoint] = []
            var own: [String] = []
            let me = runtime.identity.advertise
            for t in texts {
                switch resolver(t) {
                case .success(let e) where e == me: own.append(t)
                case .success(let e): endpoints.append(e)
                case .failure(let e): return encodeError(.badRequest, e.description)
                }
            }
            if endpoints.isEmpty {
                return encodeError(.badRequest, "\(own.joined(separator: ", ")) is this node's own address (\(me)): give the address of another member")
            }
            var result = await runtime.join(endpoints, remember: false)
            for t in own { result.failed[t] = "this node's own address" }
            return encode(result)
        case .leave:
            let result = await runtime.leave()
            onLeave()
            return encode(result)
        case .alloc:
            guard let handle = request.handle else { return encodeError(.badRequest, "alloc needs a handle") }
            if handle.trimmingCharacters(in: .whitespaces).isEmpty || handle != handle.trimmingCharacters(in: .whitespaces) {
                return encodeError(.badRequest, "invalid handle '\(handle)': it is blank or starts or ends with a space; use 1 to 256 bytes of printable text")
            }
            return encode(await runtime.allocate(handle, name: request.name))
        case .release:
            guard let handle = request.handle else { return encodeError(.badRequest, "release needs a handle") }
            return encode(await runtime.release(handle))
        case .ipam:
            return encode(await runtime.ipamInfo())
        case .peers:
            return encode(await runtime.withOverlayAddresses(Self.withRanges(await runtime.peers(), await runtime.ipamInfo()), ask: true))
        case .doctor:
            return encode(await runtime.doctor())
        case .dns:
            return encode(await runtime.dnsRecords())
        case .dnsAdd, .dnsRemove:
            guard let name = request.name, !name.isEmpty else { return encodeError(.badRequest, "dns add/remove needs a NAME") }
            let address = request.addresses?.first
            if request.op == .dnsAdd, address == nil { return encodeError(.badRequest, "dns add needs an ADDRESS") }
            return encode(await runtime.dnsChange(add: request.op == .dnsAdd, name: name, address: address))
        case .gc:
            guard let attachments else { return encodeError(.notReady, "attachment reconciliation is not running yet: try again shortly") }
            return encode(await attachments.reconcile(runtime: runtime, dryRun: request.dryRun ?? false, automatic: false))
        case .keys, .keysInstall, .keysUse, .keysRemove:
            return encode(await runtime.keysOperation(request.op, key: request.key, local: request.local ?? false))
        case .reclaim:
            guard let node = request.node, !node.isEmpty else { return encodeError(.badRequest, "reclaim needs a node (id, id prefix or name)") }
            return encode(await runtime.reclaim(node, force: request.force ?? false))
        case .evict:
            guard let node = request.node, !node.isEmpty else { return encodeError(.badRequest, "evict needs a node (id, id prefix or name)") }
            return encode(await runtime.evict(node, undo: request.undo ?? false))
        }
    }

    private func encode<R: Codable & Sendable>(_ result: Result<R, API.ErrorBody>) -> [UInt8] {
        switch result {
        case .success(let r): return encode(r)
        case .failure(let e): return encodeError(e.code, e.message)
        }
    }

    /// Adds to each peer the ring ranges it owns (what this node routes into its tunnel).
    static func withRanges(_ peers: [API.PeerInfo], _ ipam: API.IPAMInfo) -> [API.PeerInfo] {
        var byOwner: [String: [String]] = [:]
        for r in ipam.ranges { byOwner[r.owner, default: []].append(API.describeRange(start: r.start, end: r.end)) }
        return peers.map { p in
            var p = p
            p.ranges = byOwner[p.id] ?? []
            return p
        }
    }

    private struct VersionProbe: Decodable { let v: Int }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.dataCorrupted(let c): return c.debugDescription
        case DecodingError.keyNotFound(let k, _): return "missing field '\(k.stringValue)'"
        case DecodingError.typeMismatch(_, let c): return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.valueNotFound(_, let c): return "missing value at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        default: return "\(error)"
        }
    }

    private func encode<R: Codable & Sendable>(_ result: R) -> [UInt8] {
        (try? Array(JSONEncoder().encode(API.Response(result: result)))) ?? encodeError(.internal, "cannot encode response")
    }

    private func encodeError(_ code: API.ErrorCode, _ message: String) -> [UInt8] {
        let body = API.Response<API.Empty>(error: API.ErrorBody(code: code, message: message))
        return (try? Array(JSONEncoder().encode(body))) ?? Array(#"{"ok":false}"#.utf8)
    }
}
