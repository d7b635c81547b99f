// Fuzz target: Membership.Codec.decodePushPull (the TCP full-state exchange).
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMembershipPushPull(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let p = try? Membership.Codec.decodePushPull(bytes, maxBytes: 1 << 20) else { return 0 }
    let again = try? Membership.Codec.decodePushPull(Membership.Codec.encode(p), maxBytes: 1 << 21)
    precondition(again == p, "decode(encode(p)) != p")
    return 0
}
