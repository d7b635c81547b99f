import WeftAPI

/// The CNI commands this plugin implements.
public enum CNICommand: String, Sendable, CaseIterable {
    case add = "ADD", del = "DEL", check = "CHECK", version = "VERSION", gc = "GC", status = "STATUS"
}

/// Spec versions this plugin speaks. Results for versions before 1.0.0 carry `"version": "4"` in
/// each `ips` entry; 1.1.0 results also carry each interface's `mtu`.
public enum CNIVersion {
    public static let supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]
    /// Used in output when the input names no version we know (VERSION and errors).
    public static let fallback = "1.0.0"

    /// Compares dotted versions numerically ("0.10.0" > "0.4.0").
    static func atLeast(_ v: String, _ min: String) -> Bool {
        let a = v.split(separator: ".").map { Int($0) ?? 0 }
        let b = min.split(separator: ".").map { Int($0) ?? 0 }
        for i in 0..<max(a.count, b.count) {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return x > y }
        }
        return true
    }
}

/// The plugin's own configuration keys, validated. Unknown keys are ignored (other plugins and
/// runtimes add their own).
public struct PluginConfig: Sendable, Equatable {
    public var cniVersion: String
    public var name: String
    /// The node's data dir (its control socket is `<dataDir>/weft.sock`).
    public var dataDir: String
    /// MTU of both veth ends; nil: the node's overlay MTU (1420 when it runs without a TUN).
    public var mtu: Int?
    /// Adds `default dev <ifname>` in the container.
    public var defaultRoute: Bool
    /// Appends one line per invocation here when set.
    public var logFile: String?
    /// `prevResult`, when the runtime passed one.
    public var prevResult: JSON?
    /// GC: `cni.dev/valid-attachments`, nil when absent.
    public var validAttachments: [Attachment]?

    public static let defaultMTU = 1420

    public struct Attachment: Hashable, Sendable {
        public var containerID: String
        public var ifname: String
        public init(containerID: String, ifname: String) { self.containerID = containerID; self.ifname = ifname }
    }

    /// Parses stdin. Errors: 6 (not JSON / not an object), 1 (unknown cniVersion), 7 (a key has
    /// the wrong type or value).
    public static func parse(_ stdin: [UInt8]) throws(CNIError) -> PluginConfig {
        let root: JSON
        do { root = try JSON.parse(stdin) } catch {
            throw CNIError(.decodeFailure, "cannot decode the network configuration on stdin", details: error.description)
        }
        guard root.isObject else { throw CNIError(.decodeFailure, "the network configuration on stdin is not a JSON object") }
        guard let version = root["cniVersion"]?.stringValue, !version.isEmpty else {
            throw CNIError(.incompatibleVersion, "the network configuration has no cniVersion",
                           details: "supported: \(CNIVersion.supported.joined(separator: ", "))")
        }
        guard CNIVersion.supported.contains(version) else {
            throw CNIError(.incompatibleVersion, "incompatible CNI version \(version)",
                           details: "weft-cni supports \(CNIVersion.supported.joined(separator: ", "))")
        }
        func badKey(_ key: String, _ want: String) -> CNIError {
            CNIError(.invalidNetworkConfig, "network configuration key \"\(key)\" must be \(want)", details: "got \(root[key]?.text ?? "nothing")")
        }
        var c = PluginConfig(cniVersion: version, name: "", dataDir: API.defaultDataDir, mtu: nil, defaultRoute: false, logFile: nil)
        if let n = root["name"], n != .null {
            guard let s = n.stringValue else { throw badKey("name", "a string") }
            c.name = s
        }
        if let d = root["dataDir"], d != .null {
            guard let s = d.stringValue, s.hasPrefix("/") else { throw badKey("dataDir", "an absolute path") }
            c.dataDir = s
        }
        if let m = root["mtu"], m != .null {
            guard let v = m.intValue, (576...65535).contains(v) else { throw badKey("mtu", "a whole number from 576 to 65535") }
            c.mtu = v
        }
        if let r = root["defaultRoute"], r != .null {
            guard let b = r.boolValue else { throw badKey("defaultRoute", "true or false") }
            c.defaultRoute = b
        }
        if let l = root["logFile"], l != .null {
            guard let s = l.stringValue, s.hasPrefix("/") else { throw badKey("logFile", "an absolute path") }
            c.logFile = s
        }
        if let p = root["prevResult"], p != .null {
            guard p.isObject else { throw badKey("prevResult", "an object") }
            c.prevResult = p
        }
        if let v = root["cni.dev/valid-attachments"], v != .null {
            guard let items = v.arrayValue else { throw badKey("cni.dev/valid-attachments", "a list") }
            var list: [Attachment] = []
            for item in items {
                guard let id = item["containerID"]?.stringValue, let ifn = item["ifname"]?.stringValue else {
                    throw badKey("cni.dev/valid-attachments", "a list of {\"containerID\", \"ifname\"} objects")
                }
                list.append(Attachment(containerID: id, ifname: ifn))
            }
            c.validAttachments = list
        }
        return c
    }
}

/// The CNI_* environment of one invocation.
public struct CNIEnvironment: Sendable, Equatable {
    public var command: CNICommand
    public var containerID: String
    public var netns: String
    public var ifname: String
    public var args: String
    public var path: String

    /// Reads and checks what `command` requires (spec section 2). Error 4 names the variables.
    public static func parse(_ env: [String: String]) throws(CNIError) -> CNIEnvironment {
        guard let raw = env["CNI_COMMAND"], !raw.isEmpty else {
            throw CNIError(.invalidEnvironment, "CNI_COMMAND is not set",
                           details: "weft-cni is a CNI plugin: a container runtime runs it with CNI_COMMAND=ADD|DEL|CHECK|VERSION|GC|STATUS")
        }
        guard let command = CNICommand(rawValue: raw) else {
            throw CNIError(.invalidEnvironment, "unknown CNI_COMMAND \(raw)", details: "expected ADD, DEL, CHECK, VERSION, GC or STATUS")
        }
        let e = CNIEnvironment(
            command: command, containerID: env["CNI_CONTAINERID"] ?? "", netns: env["CNI_NETNS"] ?? "",
            ifname: env["CNI_IFNAME"] ?? "", args: env["CNI_ARGS"] ?? "", path: env["CNI_PATH"] ?? "")
        var required: [String] = []
        switch command {
        case .add, .check: required = ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"]
        case .del: required = ["CNI_CONTAINERID", "CNI_IFNAME"]
        case .version, .gc, .status: break
        }
        let missing = required.filter { (env[$0] ?? "").isEmpty }
        if !missing.isEmpty {
            throw CNIError(.invalidEnvironment, "missing environment variables: \(missing.joined(separator: ", "))",
                           details: "CNI_COMMAND=\(raw) needs \(required.joined(separator: ", "))")
        }
        if !required.isEmpty {
            if let why = Naming.invalidContainerID(e.containerID) {
                throw CNIError(.invalidEnvironment, "invalid CNI_CONTAINERID \"\(e.containerID)\"", details: why)
            }
            if let why = Naming.invalidInterfaceName(e.ifname) {
                throw CNIError(.invalidEnvironment, "invalid CNI_IFNAME \"\(e.ifname)\"", details: why)
            }
        }
        return e
    }
}
