import ArgumentParser
import Dispatch
import Foundation
import WeftAPI
import WeftCNI
import WeftDocker
#if canImport(Glibc)
import Glibc
#endif

/// `weft docker-plugin`: Docker's remote network and IPAM driver, a process beside the node
/// (docs/docker.md says why it is not inside the node).
struct DockerPluginCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "docker-plugin",
        abstract: "Serve Docker's network and IPAM plugin API for the local node.",
        discussion: """
            Runs beside `weft start` on the same host, as root, until SIGTERM. Then:
              docker network create --driver weft --ipam-driver weft weft
              docker run --network weft IMAGE
            Examples:
              weft docker-plugin --data-dir /var/lib/weft
              weft docker-plugin --socket /run/docker/plugins/weft.sock --docker-host /run/docker.sock
            """
    )

    @Option(name: .long, help: ArgumentHelp("The node's data dir (default: $WEFT_DATA_DIR or /var/lib/weft).", valueName: "dir"))
    var dataDir: String?

    @Option(name: .long, help: ArgumentHelp("Where Docker looks for the plugin: <dockerd's /run>/docker/plugins/<driver name>.sock.", valueName: "path"))
    var socket = "/run/docker/plugins/weft.sock"

    @Option(name: .long, help: ArgumentHelp("dockerd's API socket, read to learn container names for DNS ('' to skip).", valueName: "path"))
    var dockerHost = "/var/run/docker.sock"

    @Option(name: .long, help: ArgumentHelp("Append one line per call to this file (default: stderr).", valueName: "path"))
    var logFile: String?

    func validate() throws {
        let dir = API.resolveDataDir(dataDir)
        if let problem = InputCheck.dataDir(dir) { throw ValidationError(problem) }
        guard socket.hasPrefix("/") else { throw ValidationError("--socket must be an absolute path (got '\(socket)')") }
        guard socket.utf8.count < 108 else { throw ValidationError("--socket is longer than 107 bytes: choose a shorter path") }
        if !dockerHost.isEmpty, !dockerHost.hasPrefix("/") && !dockerHost.hasPrefix("unix:///") {
            throw ValidationError("--docker-host must be an absolute socket path or unix:///path (got '\(dockerHost)')")
        }
        if let f = logFile, !f.hasPrefix("/") { throw ValidationError("--log-file must be an absolute path (got '\(f)')") }
    }

    func run() throws {
        let dir = API.resolveDataDir(dataDir)
        let logFD: Int32
        if let f = logFile {
            logFD = open(f, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            guard logFD >= 0 else { throw CLIFailure.usage("cannot open --log-file \(f): \(String(cString: strerror(errno)))") }
        } else {
            logFD = 2
        }
        let log: @Sendable (String) -> Void = { line in
            let stamp = ISO8601DateFormatter().string(from: Date())
            let bytes = Array("\(stamp) docker-plugin \(line)\n".utf8)
            _ = bytes.withUnsafeBytes { write(logFD, $0.baseAddress, $0.count) }
        }
        let host = dockerHost.hasPrefix("unix://") ? String(dockerHost.dropFirst("unix://".count)) : dockerHost
        let plugin = DockerPlugin(
            node: DockerNodeClient(dataDir: dir), network: LinuxNetwork(),
            names: host.isEmpty ? nil : DockerdNames(socketPath: host), log: log
        )
        let server = PluginServer(socketPath: socket, plugin: plugin, log: log)
        do { try server.start() } catch {
            throw CLIFailure.runtime("plugin-socket", "cannot serve \(socket): \(error.description)")
        }
        log("listening on \(socket) for the node at \(API.socketPath(dataDir: dir)); dockerd API \(host.isEmpty ? "off" : host)")
        var sources: [DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                server.stop()
                log("stopped (signal \(sig)); removed \(server.socketPath)")
                Glibc.exit(0)
            }
            s.resume()
            sources.append(s)
        }
        while true { sleep(3600) }
    }
}
