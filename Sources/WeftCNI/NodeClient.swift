import WeftAPI

/// What the plugin asks the local `weft` node. `ControlClient` is the real one; tests pass a fake.
public protocol NodeClient: Sendable {
    func status() throws(ControlClientError) -> API.Status
    /// May wait (up to about 30 s) for the node to get space from a peer.
    /// `name`: the container's DNS name (one label), if it has one.
    func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation
    func release(handle: String) throws(ControlClientError)
    func ipam() throws(ControlClientError) -> API.IPAMInfo
}

/// The control-socket client, with a timeout long enough for an allocation that waits for space.
public struct ControlNodeClient: NodeClient {
    public var dataDir: String
    public init(dataDir: String) { self.dataDir = dataDir }

    private func client(_ seconds: Double) -> ControlClient { ControlClient(dataDir: dataDir, timeoutSeconds: seconds) }

    public func status() throws(ControlClientError) -> API.Status {
        try client(5).call(API.Request(op: .status), as: API.Status.self)
    }

    public func alloc(handle: String, name: String?) throws(ControlClientError) -> API.Allocation {
        try client(45).call(API.Request(op: .alloc, handle: handle, name: name), as: API.Allocation.self)
    }

    public func release(handle: String) throws(ControlClientError) {
        _ = try client(10).call(API.Request(op: .release, handle: handle), as: API.AllocationInfo.self)
    }

    public func ipam() throws(ControlClientError) -> API.IPAMInfo {
        try client(10).call(API.Request(op: .ipam), as: API.IPAMInfo.self)
    }
}

extension CNIError {
    /// Maps a node failure to a CNI error: no node or a node not ready → 11 (try again later),
    /// no addresses → 101, anything else → 100. `what` names the step, e.g. "allocating an address".
    static func node(_ e: ControlClientError, _ what: String) -> CNIError {
        switch e {
        case .noNode:
            return CNIError(.tryAgainLater, "no weft node is running: \(what) needs one", details: e.description)
        case .timeout:
            return CNIError(.tryAgainLater, "the weft node did not answer in time while \(what)", details: e.description)
        case .remote(let body):
            switch body.code {
            case .notReady: return CNIError(.tryAgainLater, "the weft node is not ready (\(what))", details: body.message)
            case .exhausted: return CNIError(.addressesExhausted, "no free address in the weft cluster", details: body.message)
            default: return CNIError(.nodeError, "the weft node refused \(what) (\(body.code.rawValue))", details: body.message)
            }
        case .permissionDenied:
            return CNIError(.nodeError, "cannot talk to the weft node while \(what): permission denied", details: e.description)
        case .protocolError, .system:
            return CNIError(.nodeError, "talking to the weft node failed while \(what)", details: e.description)
        }
    }
}
