import ArgumentParser
import Foundation
import Logging
import WeftAPI
import WeftCore
import WeftCrypto
import WeftDaemon
#if canImport(Glibc)
import Glibc
#endif

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
        subcommands: [Start.self, Status.self, Members.self, Peers.self, Doctor.self, Join.self, Leave.self, Alloc.self, Release.self, GC.self, IPAMCommand.self, DNSCommand.self, Keygen.self, KeysCommand.self, Evict.self, DockerPluginCommand.self]
    )

    /// The contract (exit 0/1/2, --json errors on stdout) lives in `CLI.run`.
    static func main() async {
        let status = await CLI.run(Array(CommandLine.arguments.dropFirst()))
        #if canImport(Glibc)
        Glibc.exit(status)
        #else
        Darwin.exit(status)
        #endif
    }
}

/// Options shared by every command that talks to a running node.
struct NodeSelection: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The node's data dir (default: $WEFT_DATA_DIR or /var/lib/weft).", valueName: "dir"))
    var dataDir: String?

    @Flag(name: .long, help: "Print JSON instead of a table; an error is then a JSON object on stdout too.")
    var json = false

    var resolvedDataDir: String { API.resolveDataDir(dataDir) }

    func validate() throws {
        if let problem = InputCheck.dataDir(resolvedDataDir) { throw ValidationError(problem) }
    }

    func client() -> ControlClient { ControlClient(dataDir: resolvedDataDir) }

    /// One request to the node; `timeout` for operations that may wait (leave, alloc).
    /// Failures become `CLIFailure`s with the client's stable code.
    func call<R: Codable & Sendable>(_ request: API.Request, as: R.Type, timeout: Double = 10) throws -> R {
        var c = client()
        c.timeoutSeconds = timeout
        do { return try c.call(request, as: R.self) } catch { throw CLIFailure(error) }
    }
}

func printJSON<T: Encodable>(_ value: T) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Prints rows as left-aligned columns separated by two spaces, aligned by terminal width
/// (East Asian wide characters and emoji take two columns, combining marks none).
func printTable(_ header: [String], _ rows: [[String]]) {
    var widths = header.map(displayWidth)
    for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], displayWidth(c)) } }
    func line(_ cells: [String]) -> String {
        cells.enumerated().map { i, c in
            i == cells.count - 1 ? c : pad(c, to: widths[i])
        }.joined(separator: "  ")
    }
    print(line(header))
    for r in rows { print(line(r)) }
}

/// `text` followed by spaces up to `width` terminal columns.
func pad(_ text: String, to width: Int) -> String {
    let w = displayWidth(text)
    return w >= width ? text : text + String(repeating: " ", count: width - w)
}

/// Terminal columns `text` takes: 2 for East Asian wide/fullwidth characters and emoji, 0 for
/// combining marks and zero-width characters, 1 otherwise (a small wcwidth).
func displayWidth(_ text: String) -> Int {
    var total = 0
    for ch in text {
        var w = 0
        for (i, u) in ch.unicodeScalars.enumerated() {
            let v = u.value
            if i > 0 { continue }  // the first scalar decides; the rest combine with it
            switch u.properties.generalCategory {
            case .nonspacingMark, .enclosingMark, .format, .control: w = 0; continue
            default: break
            }
            let wide = (0x1100...0x115F).contains(v) || (0x2E80...0x303E).contains(v) || (0x3041...0x33FF).contains(v)
                || (0x3400...0x4DBF).contains(v) || (0x4E00...0x9FFF).contains(v) || (0xA000...0xA4CF).contains(v)
                || (0xAC00...0xD7A3).contains(v) || (0xF900...0xFAFF).contains(v) || (0xFE30...0xFE4F).contains(v)
                || (0xFF00...0xFF60).contains(v) || (0xFFE0...0xFFE6).contains(v) || (0x1F300...0x1F64F).contains(v)
                || (0x1F900...0x1F9FF).contains(v) || (0x20000...0x3FFFD).contains(v)
            w = wide ? 2 : 1
        }
        total += w
    }
    return total
}

/// "1 member", "3 members".
func plural(_ n: Int, _ singular: String, _ pluralForm: String? = nil) -> String {
    "\(n) \(n == 1 ? singular : (pluralForm ?? singular + "s"))"
}

func formatSeconds(_ s: Double) -> String {
    if s < 60 { return String(format: "%.0fs", s) }
    if s < 3600 { return String(format: "%.0fm%02.0fs", (s / 60).rounded(.down), s.truncatingRemainder(dividingBy: 60)) }
    return String(format: "%.0fh%02.0fm", (s / 3600).rounded(.down), (s.truncatingRemainder(dividingBy: 3600) / 60).rounded(.down))
}
