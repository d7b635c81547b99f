/// A CNI error result: printed on stdout as `{"cniVersion","code","msg","details"}` with a
/// non-zero exit status. Codes 1–99 are the spec's; 100+ are this plugin's (docs/cni.md).
public struct CNIError: Error, Equatable, Sendable, CustomStringConvertible {
    public var code: Int
    public var msg: String
    public var details: String

    public init(_ code: Code, _ msg: String, details: String = "") {
        self.code = code.rawValue
        self.msg = msg
        self.details = details
    }

    public var description: String { details.isEmpty ? "CNI error \(code): \(msg)" : "CNI error \(code): \(msg) (\(details))" }

    public enum Code: Int, Sendable {
        // Spec, section "Error" (1.0.0) and STATUS (1.1.0).
        case incompatibleVersion = 1
        case unsupportedField = 2
        case containerUnknown = 3
        case invalidEnvironment = 4
        case ioFailure = 5
        case decodeFailure = 6
        case invalidNetworkConfig = 7
        case tryAgainLater = 11
        case pluginNotAvailable = 50
        case pluginNotAvailableLimitedConnectivity = 51
        // weft-cni's own.
        /// The node refused or failed a request (its message says why).
        case nodeError = 100
        /// No free address anywhere in the cluster.
        case addressesExhausted = 101
        /// An interface called CNI_IFNAME already exists in the container and is not ours.
        case interfaceExists = 102
        /// A netlink or sysctl call failed while setting up or tearing down the interfaces.
        case linkSetupFailed = 103
        /// CHECK found the attachment different from prevResult.
        case checkFailed = 104
    }

    func json(cniVersion: String) -> JSON {
        var pairs: [(String, JSON)] = [("cniVersion", .string(cniVersion)), ("code", .number(Double(code))), ("msg", .string(msg))]
        if !details.isEmpty { pairs.append(("details", .string(details))) }
        return .object(pairs)
    }
}
