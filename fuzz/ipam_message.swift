// Fuzz target: IPAM.Message(decoding:) — the public entry point for every IPAM message
// (ring state, donation request/grant/deny, leave handover); the IPAM decoders behind it are
// owned elsewhere and fuzzed only through it.
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIPAMMessage(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    _ = try? IPAM.Message(decoding: bytes)
    return 0
}
