/// Names derived from an attachment: the node allocation handle and the host-side veth name.
public enum Naming {
    /// Handles this plugin creates start with this; GC only ever touches such handles.
    public static let handlePrefix = "cni:"

    /// `cni:<network>:<containerID>:<ifname>`. None of the three may contain ':' (the spec's
    /// character sets for network names and container ids exclude it; ifname is checked), so a
    /// handle parses back unambiguously. The network name scopes GC to one network.
    public static func handle(network: String, containerID: String, ifname: String) -> String {
        "\(handlePrefix)\(network):\(containerID):\(ifname)"
    }

    /// The (network, containerID, ifname) of a handle this plugin made, or nil.
    public static func parseHandle(_ handle: String) -> (network: String, containerID: String, ifname: String)? {
        guard handle.hasPrefix(handlePrefix) else { return nil }
        let parts = handle.dropFirst(handlePrefix.count).split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts.contains(where: \.isEmpty) else { return nil }
        return (String(parts[0]), String(parts[1]), String(parts[2]))
    }

    /// `wft` + 10 hex digits of a 64-bit FNV-1a hash of "<containerID>/<ifname>": 13 characters,
    /// stable across invocations, so DEL and GC find the link without any stored state.
    public static func hostInterface(containerID: String, ifname: String) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in "\(containerID)/\(ifname)".utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return "wft" + String((String(repeating: "0", count: 16 - hex.count) + hex).prefix(10))
    }

    /// Why `ifname` is not a usable Linux interface name (spec: 1–15 bytes, not "." or "..",
    /// no '/', ':' or whitespace), or nil.
    public static func invalidInterfaceName(_ ifname: String) -> String? {
        if ifname.isEmpty { return "it is empty" }
        if ifname.utf8.count > 15 { return "it is longer than 15 bytes" }
        if ifname == "." || ifname == ".." { return "it may not be \".\" or \"..\"" }
        if ifname.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0.properties.isWhitespace || $0.value < 0x20 }) {
            return "it may not contain '/', ':' or whitespace"
        }
        return nil
    }

    /// Why `id` is not a container id per the spec (alphanumeric first, then alphanumerics,
    /// '_', '.', '-'), or nil.
    public static func invalidContainerID(_ id: String) -> String? {
        if id.isEmpty { return "it is empty" }
        if id.utf8.count > 200 { return "it is longer than 200 bytes" }
        for (n, c) in id.unicodeScalars.enumerated() {
            let alnum = c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c))
            if n == 0 && !alnum { return "it must start with a letter or digit" }
            if !alnum && c != "_" && c != "." && c != "-" { return "it may contain only letters, digits, '_', '.' and '-'" }
        }
        return nil
    }

    /// Why `name` cannot name a network in a handle, or nil.
    public static func invalidNetworkName(_ name: String) -> String? {
        if name.isEmpty { return "the network configuration has no \"name\"" }
        if name.utf8.count > 32 { return "the network name is longer than 32 bytes" }
        if name.contains(":") { return "the network name may not contain ':'" }
        if name.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value > 0x7e }) {
            return "the network name may contain only printable ASCII without spaces"
        }
        return nil
    }
}
