// Fuzz target: text addresses from the CLI, control requests (`join` addresses) and the
// store (`HOST:PORT`, IPv4/IPv6 literals, the `--subnet` CIDR). Never traps; what
// parses prints back to something that parses to the same value.
import WeftCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEndpointText(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    if let e = Endpoint(text) { precondition(Endpoint(e.description) == e, "endpoint round trip") }
    if let a = IPAddress(text) { precondition(IPAddress(a.description) == a, "address round trip") }
    _ = Endpoint.split(text)
    if let s = try? IPAM.Subnet(parsing: text) {
        precondition((try? IPAM.Subnet(parsing: s.description)) == s, "subnet round trip")
    }
    return 0
}
