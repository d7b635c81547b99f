/// Errors that stop `weft start` before the node runs. Each description is one line saying what
/// is wrong and what to do; the command prints it and exits non-zero.
public struct StartupError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}
