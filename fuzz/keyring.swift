// Fuzz target: ClusterKeyring(text:) — the parser of cluster.key (a file an operator edits or
// copies, read at every start) and of keys given to `weft keys install` — and the keyring
// operations on what it parsed. Any text must parse or be refused with an error that never
// repeats a key; a keyring that parsed must survive its own file form unchanged and keep its
// rules (never empty, the primary never removed, no key twice, at most maxKeys).
import WeftCore
import WeftCrypto

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzKeyring(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    _ = try? ClusterKey(text: text)
    guard var ring = try? ClusterKeyring(text: text) else { return 0 }
    guard let again = try? ClusterKeyring(text: ring.text), again == ring else {
        preconditionFailure("a parsed keyring must read back from its own file form")
    }
    precondition(!ring.keys.isEmpty && ring.keys.count <= ClusterKeyring.maxKeys)
    let primary = ring.primary
    if (try? ring.remove(primary)) != nil { preconditionFailure("the primary key must not be removable") }
    if ring.keys.count > 1 {
        let other = ring.keys[ring.keys.count - 1]
        guard (try? ring.use(other)) == true, ring.primary == other else { preconditionFailure("an installed key can become primary") }
        guard (try? ring.remove(primary)) == true, !ring.contains(primary) else { preconditionFailure("a non-primary key can be removed") }
    }
    _ = ring.key(matching: String(text.prefix(16)))
    return 0
}
