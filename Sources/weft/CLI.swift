import ArgumentParser
import Foundation
import WeftAPI
import WeftCore

/// The command-line contract (docs/operations.md, "The command-line contract"), the same for
/// every command and flag:
///
/// * exit 0: success; 1: runtime failure (no node, node refused, nothing reachable, start-up
///   failed); 2: usage error (unknown command or flag, a bad value, a missing argument, a file
///   named by a flag that is missing or unusable), found before anything is contacted or written.
/// * Errors are one line on stderr, `Error: <what is wrong>: <what to do>`; usage errors add the
///   command's usage. With `--json` the error is instead a JSON object on stdout:
///   `{"ok": false, "error": {"code": "<stable code>", "message": "…", "details": {…}}}`.
enum CLI {
    enum Status {
        static let ok: Int32 = 0
        static let failure: Int32 = 1
        static let usage: Int32 = 2
    }

    /// Parses and runs `arguments` (without the program name); returns the exit status.
    static func run(_ arguments: [String]) async -> Int32 {
        let json = arguments.prefix { $0 != "--" }.contains("--json")
        if arguments.isEmpty {
            let failure = CLIFailure.usage("no command given: run `weft start` on each host, then `weft status`; `weft --help` lists every command")
            if !json { FileHandle.standardError.write(Data((Weft.helpMessage() + "\n").utf8)) }
            return report(failure, json: json)
        }
        do {
            var command = try Weft.parseAsRoot(arguments)
            if var async = command as? AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
            return Status.ok
        } catch {
            return report(error, json: json)
        }
    }

    /// Prints `error` the contract's way and returns the exit status for it.
    static func report(_ error: any Error, json: Bool) -> Int32 {
        if let failure = error as? CLIFailure {
            emit(failure, json: json, usage: nil)
            return failure.status
        }
        if let exit = error as? ExitCode { return exit.rawValue }
        if let client = error as? ControlClientError {
            let f = CLIFailure(client)
            emit(f, json: json, usage: nil)
            return f.status
        }
        // ArgumentParser: help and --version are clean exits; everything else it throws is a usage error.
        let code = Weft.exitCode(for: error)
        if code == .success {
            print(Weft.fullMessage(for: error))
            return Status.ok
        }
        if code == .validationFailure {
            let f = CLIFailure.usage(Weft.message(for: error))
            emit(f, json: json, usage: Weft.fullMessage(for: error))
            return f.status
        }
        let f = CLIFailure(code: "internal", message: "\(error)", status: Status.failure)
        emit(f, json: json, usage: nil)
        return f.status
    }

    /// `usage`: ArgumentParser's full text for a usage error (message, usage, help hint).
    private static func emit(_ f: CLIFailure, json: Bool, usage: String?) {
        if json {
            print(f.jsonText())
        } else {
            let text = usage ?? "Error: \(f.message)"
            FileHandle.standardError.write(Data((text + "\n").utf8))
        }
    }
}

/// A failure with a stable code, printed per the contract (see `CLI`).
struct CLIFailure: Error, CustomStringConvertible {
    /// Stable machine-readable code: `usage`, `not-running`, `permission-denied`, `timeout`,
    /// `protocol-error`, `system-error`, `join-failed`, `start-failed`, or a node's `API.ErrorCode`.
    let code: String
    let message: String
    let status: Int32
    var details: [String: String]? = nil

    var description: String { message }

    init(code: String, message: String, status: Int32, details: [String: String]? = nil) {
        self.code = code; self.message = message; self.status = status; self.details = details
    }

    static func usage(_ message: String) -> CLIFailure {
        CLIFailure(code: "usage", message: message, status: CLI.Status.usage)
    }

    static func runtime(_ code: String, _ message: String, details: [String: String]? = nil) -> CLIFailure {
        CLIFailure(code: code, message: message, status: CLI.Status.failure, details: details)
    }

    /// A control-socket failure. The node's `bad-request` means the input was wrong: exit 2.
    init(_ e: ControlClientError) {
        var status = CLI.Status.failure
        if case .remote(let body) = e, body.code == .badRequest { status = CLI.Status.usage }
        self.init(code: e.code, message: e.description, status: status)
    }

    private struct Body: Encodable {
        struct Inner: Encodable {
            let code: String
            let message: String
            let details: [String: String]?
        }
        let ok: Bool
        let error: Inner
    }

    func jsonText() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let body = Body(ok: false, error: .init(code: code, message: message, details: details))
        guard let data = try? encoder.encode(body) else { return #"{"ok":false,"error":{"code":"internal","message":"cannot encode error"}}"# }
        return String(decoding: data, as: UTF8.self)
    }
}

// MARK: - Input checks shared by the commands (all usage errors: exit 2)

enum InputCheck {
    /// A node name: 1–63 bytes of printable text, not blank, no leading or trailing spaces.
    static func nodeName(_ name: String) -> String? {
        if name.trimmingCharacters(in: .whitespaces).isEmpty {
            return "--name must not be empty or blank: give 1 to 63 bytes of printable text, e.g. --name \(hostLabel())"
        }
        if name.utf8.count > 63 { return "--name is \(name.utf8.count) bytes long: at most 63 bytes" }
        if name != name.trimmingCharacters(in: .whitespaces) { return "--name '\(name)' starts or ends with a space: remove it" }
        if let c = controlCharacter(name) { return "--name contains control character \(c): use printable text" }
        return nil
    }

    /// An allocation handle: what `IPAM.Instance.validate` accepts, minus blank or space-padded text
    /// (a handle of one space would be accepted by the node, and is never what was meant).
    static func handle(_ handle: String) -> String? {
        if handle.trimmingCharacters(in: .whitespaces).isEmpty {
            return handle.isEmpty
                ? "invalid handle: it is empty; give 1 to 256 bytes of printable text, e.g. a container id"
                : "invalid handle: it is only spaces; give 1 to 256 bytes of printable text, e.g. a container id"
        }
        if handle != handle.trimmingCharacters(in: .whitespaces) { return "invalid handle '\(handle)': it starts or ends with a space; remove it" }
        if handle.utf8.count > 256 { return "invalid handle: it is \(handle.utf8.count) bytes long; at most 256 bytes" }
        if let c = controlCharacter(handle) { return "invalid handle: it contains control character \(c); use printable text" }
        if handle.hasPrefix("weft:") { return "invalid handle: handles starting with 'weft:' belong to the node itself; choose another handle" }
        return nil
    }

    /// `host:port` syntax only (host names are resolved later, by the node).
    static func hostPort(_ text: String, flag: String, example: String = "192.168.1.10:7946") -> String? {
        guard let (host, _) = Endpoint.split(text), !host.contains(" ") else {
            return "\(flag) '\(text)' is not an address: write HOST:PORT with a port from 1 to 65535, e.g. \(example) or [::1]:7946"
        }
        return nil
    }

    /// A file a flag names: it must exist, be a regular file, be readable and not be empty.
    static func readableFile(_ path: String, flag: String, what: String) -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            return "cannot read \(what) \(path): it does not exist; check the path given with \(flag)"
        }
        if isDir.boolValue { return "cannot read \(what) \(path): it is a directory; give the file itself with \(flag)" }
        guard access(path, R_OK) == 0 else {
            return "cannot read \(what) \(path): permission denied; run as a user that may read it (usually root)"
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? -1
        if size == 0 { return "\(what) \(path) is empty: create it with `weft keygen > \(path)`, or copy cluster.key from a member's data dir" }
        return nil
    }

    /// A data dir: the path, and every part of it that exists, must be a directory.
    /// `hint` says what to pass instead.
    static func dataDir(_ path: String, hint: String = "pass the --data-dir of the running node") -> String? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: prefix, isDirectory: &isDir) else { return nil }
            if !isDir.boolValue {
                return prefix == path || prefix == "./" + path
                    ? "data dir \(path) is a file, not a directory: \(hint)"
                    : "data dir \(path) cannot exist: \(prefix) is a file, not a directory; \(hint)"
            }
        }
        return nil
    }

    private static func controlCharacter(_ s: String) -> String? {
        for u in s.unicodeScalars where u.value < 0x20 || (0x7F...0x9F).contains(u.value) {
            return "U+" + String(format: "%04X", u.value)
        }
        return nil
    }

    private static func hostLabel() -> String {
        let h = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        return h.isEmpty ? "node-a" : h
    }
}
