// Fuzz target: the control socket's request decoding (WeftAPI's `API.Request`, as
// ControlService decodes it, plus the version probe it falls back to).
import Foundation

private struct VersionProbe: Decodable { let v: Int }

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzControlRequest(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Data(UnsafeBufferPointer(start: data, count: size))
    if let r = try? JSONDecoder().decode(API.Request.self, from: bytes) {
        let again = try? JSONDecoder().decode(API.Request.self, from: JSONEncoder().encode(r))
        precondition(again == r, "request round trip")
    } else {
        _ = try? JSONDecoder().decode(VersionProbe.self, from: bytes)
    }
    return 0
}
