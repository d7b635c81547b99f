/// Errors that stop `weft start` before the node runs. The first line says what is wrong and
/// what to do; when the fix is a command, the commands follow, one per line, indented by four
/// spaces, exactly as the operator types them (`HOST:PORT` stands for a live member's address).
/// The command prints it and exits non-zero; the data dir is left as it was (see `Daemon.run`).
public struct StartupError: Error, CustomStringConvertible, Sendable {
    /// What is wrong and what to do, one line.
    public var problem: String
    /// Shell commands that fix it, in order (lines starting with `#` are alternatives to read).
    public var commands: [String]

    public init(_ problem: String, commands: [String] = []) {
        self.problem = problem
        self.commands = commands
    }

    public var description: String {
        ([problem] + commands.map { "    " + $0 }).joined(separator: "\n")
    }
}
