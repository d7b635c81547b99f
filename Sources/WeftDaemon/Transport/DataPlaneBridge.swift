import WeftCore
import WeftDataPlane

/// Receives the data plane's callbacks on its threads and queues them, in order, for the node
/// runtime actor. Cheap by design: the receive thread must not wait for the actor.
final class DataPlaneBridge: DataPlaneDelegate, @unchecked Sendable {
    enum Event: Sendable {
        case datagram([UInt8], from: Endpoint)
        case noSession(NodeID, packet: [UInt8])
        case exhausted(UInt32)
    }

    private let sink: AsyncStream<Event>.Continuation

    init(sink: AsyncStream<Event>.Continuation) { self.sink = sink }

    func dataPlane(received datagram: [UInt8], from: Endpoint) { sink.yield(.datagram(datagram, from: from)) }
    func dataPlane(noSessionFor peer: NodeID, packet: [UInt8]) { sink.yield(.noSession(peer, packet: packet)) }
    func dataPlane(sessionExhausted localIndex: UInt32) { sink.yield(.exhausted(localIndex)) }
}
