// Fuzz target: Membership.Instance fed whatever arrives (datagrams, push-pull messages) and
// structured updates about itself and its members, e.g. a suspect with incarnation 2^64 − 1
// (issue 9). Property: nothing traps, our incarnation never decreases, and never passes
// Membership.maxIncarnation.
//
// Input: byte 0 picks the mode (0 datagram, 1 push-pull, else structured); the rest is the
// message, or 10-byte records | state u8 | who u8 | incarnation u64 |.
import WeftCore

func fuzzID(_ n: UInt8) -> NodeID { NodeID(high: 0x77, low: UInt64(n % 6)) }
func fuzzMember(_ n: UInt8, inc: UInt64) -> Membership.Member {
    let id = fuzzID(n)
    return Membership.Member(id: id, name: "n\(n % 6)", address: Endpoint(address: .v4(0x7F00_0001), port: 7000 + UInt16(n % 6)),
                             publicKey: id.bytes + id.bytes, incarnation: inc, state: .alive,
                             recordSignature: [UInt8](repeating: 0, count: 64))  // accepted by .acceptAll (below)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMembershipInstance(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    var inst = Membership.Instance(
        myself: fuzzMember(0, inc: 5), settings: .fast, seed: 1, now: .zero,
        knownMembers: [fuzzMember(1, inc: 3), fuzzMember(2, inc: .max - 1)],
        identityCheck: { id, key in key == id.bytes + id.bytes }, signer: .acceptAll)
    let from = Endpoint(address: .v4(0x7F00_0001), port: 7001)
    var now = Instant.zero
    func step() {
        now = now + .milliseconds(100)
        _ = inst.onTick(now: now)
    }
    switch mode % 3 {
    case 0:
        _ = inst.onDatagram(body, from: from, now: now)
    case 1:
        _ = inst.onPushPull(body, from: from, appState: [], now: now)
    default:
        var i = 0
        while i + 10 <= body.count {
            let rawState = body[i] % 4, who = body[i + 1]
            var inc: UInt64 = 0
            for b in body[(i + 2)..<(i + 10)] { inc = inc << 8 | UInt64(b) }
            i += 10
            let before = inst.myself.incarnation
            var u = Membership.Update(fuzzMember(who, inc: inc), from: fuzzID(who &+ 1))
            u.state = Membership.MemberState(rawValue: rawState)!
            u.incarnation = inc
            let gossip = Membership.Codec.encode(Membership.Message.gossip(source: fuzzID(3), Membership.Piggyback(updates: [u])))
            if who & 0x80 == 0 {
                _ = inst.onDatagram(gossip, from: from, now: now)
            } else {
                let pp = Membership.Codec.encode(Membership.PushPull(isReply: who & 0x40 != 0, source: fuzzID(3), join: true, members: [u], appState: []))
                _ = inst.onPushPull(pp, from: from, appState: [], now: now)
            }
            precondition(inst.myself.incarnation >= before, "our incarnation went down")
            precondition(inst.myself.incarnation <= Membership.maxIncarnation, "incarnation above the ceiling")
            if who & 0x20 != 0 { step() }
        }
    }
    step()
    return 0
}
