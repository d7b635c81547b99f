// Fuzz target: the whole pure node (Node.Instance: membership, IPAM, DNS, routes) fed whatever
// can arrive from the network after the envelope opened — point-to-point IPAM frames from a
// member (the signature check is an accept-all twin here, so the fuzzer reaches the allocator
// with any message in a member's name), gossip datagrams, push-pull requests and replies — with
// timer ticks between them. Properties: nothing traps (no value from the wire may), no address
// is held by two handles, and the node keeps answering allocations from its own space.
//
// Input: a sequence of records | kind u8 | length u8 | body (length bytes) |. kind % 5: 0 IPAM
// frame from member 1, 1 from member 2 (body = counter u64 ‖ message; a signature is appended),
// 2 gossip datagram, 3 push-pull request, 4 push-pull reply. A kind with bit 7 set ticks 250 ms
// first; bit 6 allocates a handle first.
import WeftCore

final class FuzzStorage: NodeStorage, @unchecked Sendable {
    func commit(_ batch: Node.Batch) throws {}
}

func fuzzID(_ n: UInt8) -> NodeID { NodeID(high: 0x99, low: UInt64(n)) }
func fuzzMember(_ n: UInt8) -> Membership.Member {
    let id = fuzzID(n)
    return Membership.Member(id: id, name: "n\(n)", address: Endpoint(address: .v4(0x7F00_0001), port: 7000 + UInt16(n)),
                             publicKey: id.bytes + id.bytes, incarnation: 1, state: .alive,
                             recordSignature: [UInt8](repeating: 0, count: 64))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNodeInputs(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var now = Instant(nanoseconds: 1_000_000_000)
    let membership = Membership.Instance(
        myself: fuzzMember(0), settings: .fast, seed: 1, now: now, knownMembers: [fuzzMember(1), fuzzMember(2)],
        identityCheck: { id, key in key == id.bytes + id.bytes }, signer: .acceptAll)
    var ipam = IPAM.Instance(me: fuzzID(0), settings: .fast, seed: 2)
    let startup = ipam.createCluster(subnet: IPAM.Subnet.default, now: now)
    var node = Node.Instance(membership: membership, ipam: ipam, settings: .fast, storage: FuzzStorage(), frameCounterBase: 1 << 48)
    guard (try? node.start(seeds: [], ipamStartup: startup, now: now)) != nil else { return 0 }
    let from = Endpoint(address: .v4(0x7F00_0001), port: 7001)
    var i = 0, handles = 0
    while i + 2 <= bytes.count {
        let kind = bytes[i], length = Int(bytes[i + 1])
        i += 2
        let body = Array(bytes[i..<min(bytes.count, i + length)])
        i += length
        if kind & 0x80 != 0 {
            now = now + .milliseconds(250)
            _ = node.onTick(now: now)
        }
        if kind & 0x40 != 0 {
            handles += 1
            _ = node.allocate(handle: "h\(handles)", name: nil, now: now)
        }
        switch kind % 5 {
        case 0, 1:
            _ = node.onIPAMFrame([Node.Instance.ipamFrameVersion] + fuzzID(kind % 5 + 1).bytes + body + [UInt8](repeating: 0, count: 32), now: now)
        case 2:
            _ = node.onGossip(body, from: from, now: now)
        case 3:
            _ = node.onPushPullRequest(body, from: from, now: now)
        default:
            _ = node.onPushPullReply(body, from: from, now: now)
        }
        let held = Array(node.ipam.allocations.values)
        precondition(Set(held).count == held.count, "an address is held by two handles")
    }
    return 0
}
