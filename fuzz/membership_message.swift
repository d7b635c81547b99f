// Fuzz target: Membership.Codec.decodeMessage (every gossip datagram's plaintext).
// Property: never traps; whatever decodes re-encodes to the same bytes' meaning.
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMembershipMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let m = try? Membership.Codec.decodeMessage(bytes) else { return 0 }
    let again = try? Membership.Codec.decodeMessage(Membership.Codec.encode(m))
    precondition(again == m, "decode(encode(m)) != m")
    _ = Membership.Codec.headerSize(m)
    for u in m.piggyback.updates { _ = u.encodedSize }
    return 0
}
