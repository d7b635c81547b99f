import ArgumentParser
import Foundation
import Logging
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDaemon

@main
struct Weft: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft",
        abstract: "A decentralized, encrypted container network.",
        discussion: """
            Every host runs one node (`weft start`). The other commands talk to the node of a data dir \
            (--data-dir, or WEFT_DATA_DIR, default /var/lib/weft) over its control socket.
            """,
        version: WeftVersion.current,
        subcommands: [Start.self, Status.self, Members.self, Peers.self, Join.self, Leave.self, Alloc.self, Release.self, IPAMCommand.self, Keygen.self]
    )
}

/// Options shared by every command that talks to a running node.
struct NodeSelection: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's data dir (default: $WEFT_DATA_DIR or /var/lib/weft).", valueName: "dir"))
    var dataDir: String?

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    var resolvedDataDir: String { API.resolveDataDir(dataDir) }

    func client() -> ControlClient { ControlClient(dataDir: resolvedDataDir) }

    /// One request to the node; `timeout` for operations that may wait (leave, alloc).
    func call<R: Codable & Sendable>(_ request: API.Request, as: R.Type, timeout: Double = 10) throws -> R {
        var c = client()
        c.timeoutSeconds = timeout
        do { return try c.call(request, as: R.self) } catch { throw CLIError(error.description) }
    }
}

/// An error printed as one line, with a non-zero exit status.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints rows as left-aligned columns separated by two spaces.
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            i == cells.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
}

func formatSeconds(_ s: Double) -> String {
    if s < 60 { return String(format: "%.0fs", s) }
    if s < 3600 { return String(format: "%.0fm%02.0fs", (s / 60).rounded(.down), s.truncatingRemainder(dividingBy: 60)) }
    return String(format: "%.0fh%02.0fm", (s / 3600).rounded(.down), (s.truncatingRemainder(dividingBy: 3600) / 60).rounded(.down))
}
