// Fuzz target: the tunnel's packet codecs (handshake initiation, response, cookie reply, data
// header, TAI64N timestamp). Property: never traps; what decodes re-encodes byte for byte.
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTunnelMessages(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let m = try? Tunnel.HandshakeInitiation(decoding: bytes) { precondition(m.encoded == bytes, "initiation round trip") }
    if let m = try? Tunnel.HandshakeResponse(decoding: bytes) { precondition(m.encoded == bytes, "response round trip") }
    if let m = try? Tunnel.CookieReply(decoding: bytes) { precondition(m.encoded == bytes, "cookie round trip") }
    if let h = try? Tunnel.DataHeader(parsing: bytes) {
        var out = [UInt8](repeating: 0, count: Tunnel.DataHeader.byteCount)
        out.withUnsafeMutableBytes { h.write(to: $0) }
        precondition(out == Array(bytes.prefix(Tunnel.DataHeader.byteCount)), "data header round trip")
    }
    if let t = Tunnel.Timestamp(bytes: Array(bytes.prefix(Tunnel.Timestamp.byteCount))) {
        precondition(t.bytes == Array(bytes.prefix(Tunnel.Timestamp.byteCount)), "timestamp round trip")
    }
    var w = Tunnel.ReplayWindow()
    var r = ByteReader(bytes)
    while let c = try? r.u64("counter") { _ = w.wouldAccept(c); _ = w.accept(c) }
    return 0
}
