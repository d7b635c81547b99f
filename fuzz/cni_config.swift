// Fuzz target: the CNI plugin's inputs — the network configuration on stdin
// (`PluginConfig.parse`, over WeftCNI's own JSON parser) and the CNI_* environment
// (`CNIEnvironment.parse`). Input: byte 0 even → stdin; odd → environment, the rest split at
// NUL or newline into KEY=VALUE lines.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCNIConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let mode = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    if mode & 1 == 0 {
        _ = try? PluginConfig.parse(body)
        _ = try? JSON.parse(body)
    } else {
        var env: [String: String] = [:]
        for line in body.split(whereSeparator: { $0 == 0 || $0 == 10 }) {
            let text = String(decoding: line, as: UTF8.self)
            guard let eq = text.firstIndex(of: "=") else { continue }
            env[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        _ = try? CNIEnvironment.parse(env)
    }
    return 0
}
