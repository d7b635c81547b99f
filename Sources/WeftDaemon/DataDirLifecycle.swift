import Foundation
import WeftCore
import WeftStore
#if canImport(Glibc)
import Glibc
#endif

/// The files of a data dir that `weft start` may create, and which of them existed before this
/// attempt. A start that fails removes exactly what it created (docs/operations.md, "Lifecycle"):
/// a data dir it made, a `cluster.key` it wrote, a `weft.db` (with `-wal`, `-shm`) it created.
/// An existing `weft.db` is never deleted.
struct DataDirFootprint: Sendable {
    let dir: String
    /// The topmost directory this attempt would create (the data dir or one of its parents), if any.
    let createdRoot: String?
    let hadKey: Bool
    let hadDatabase: Bool
    let hadWAL: Bool
    let hadSHM: Bool

    var keyPath: String { dir + "/cluster.key" }
    var databasePath: String { dir + "/weft.db" }

    init(dir: String) {
        self.dir = dir
        let fm = FileManager.default
        var root: String?
        var p = URL(fileURLWithPath: dir).standardizedFileURL.path
        while !p.isEmpty, p != "/", !fm.fileExists(atPath: p) {
            root = p
            p = (p as NSString).deletingLastPathComponent
        }
        createdRoot = root
        hadKey = fm.fileExists(atPath: dir + "/cluster.key")
        hadDatabase = fm.fileExists(atPath: dir + "/weft.db")
        hadWAL = fm.fileExists(atPath: dir + "/weft.db-wal")
        hadSHM = fm.fileExists(atPath: dir + "/weft.db-shm")
    }

    /// Removes what this attempt created. Returns the paths removed (for the log).
    @discardableResult
    func rollback() -> [String] {
        let fm = FileManager.default
        var removed: [String] = []
        func rm(_ path: String) {
            if (try? fm.removeItem(atPath: path)) != nil { removed.append(path) }
        }
        if let createdRoot {
            rm(createdRoot)
            return removed
        }
        if !hadDatabase {
            rm(databasePath)
            if !hadWAL { rm(databasePath + "-wal") }
            if !hadSHM { rm(databasePath + "-shm") }
        }
        if !hadKey { rm(keyPath) }
        return removed
    }
}

/// An exclusive `flock` on the data dir itself, held for the life of the node: a second
/// `weft start` on the same data dir is refused even while the first is still starting.
final class DataDirLock: Sendable {
    private let fd: Int32

    init(dir: String) throws {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StartupError("cannot open data dir \(dir) (\(String(cString: strerror(errno)))): check its permissions or choose another --data-dir")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw StartupError("a weft node is already running (or starting) for data dir \(dir): stop it first, or use another --data-dir")
        }
        self.fd = fd
    }

    deinit { close(fd) }
}

extension Daemon {
    /// The `weft start` command that restarts this node with `seeds` (or a `HOST:PORT`
    /// placeholder), keeping the flags that matter for how it runs.
    static func startCommand(_ o: NodeOptions, seeds: [String]? = nil, keyFile: String? = nil) -> String {
        var parts = ["weft", "start", "--data-dir", shellQuote(o.dataDir), "--listen", o.listen.description]
        if let a = o.advertise { parts += ["--advertise", a.description] }
        if let n = o.name { parts += ["--name", shellQuote(n)] }
        if o.noTun { parts.append("--no-tun") }
        if o.tunName != "weft0" { parts += ["--tun-name", shellQuote(o.tunName)] }
        if let m = o.mtu { parts += ["--mtu", String(m)] }
        if let m = o.metricsListen { parts += ["--metrics-listen", m.description] }
        if o.profile != .default { parts += ["--profile", o.profile.rawValue] }
        let s = seeds ?? (o.seeds.isEmpty ? ["HOST:PORT"] : o.seeds)
        for x in s { parts += ["--seed", shellQuote(x)] }
        if let keyFile { parts += ["--cluster-key-file", shellQuote(keyFile)] }
        return parts.joined(separator: " ")
    }

    static func shellQuote(_ s: String) -> String {
        let safe = s.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@%+,[]".contains($0) }
        return safe && !s.isEmpty ? s : "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The key file a recovery command must name: none when the data dir keeps `cluster.key`.
    static func recoveryKeyFile(_ o: NodeOptions, keyInDataDir: Bool) -> String? {
        if keyInDataDir { return nil }
        if case .file(let f) = o.clusterKey { return f }
        return "CLUSTER_KEY_FILE"
    }

    /// `weft.db` is damaged: move it (and its `-wal`/`-shm`) aside, rejoin through a member as a
    /// new node; or, if it was the only member, also move the key aside to start a new cluster.
    static func corruptDatabaseError(detail: String, options o: NodeOptions) -> StartupError {
        let d = o.dataDir
        let db = d + "/weft.db"
        let fm = FileManager.default
        let files = [db, db + "-wal", db + "-shm"].filter { fm.fileExists(atPath: $0) }.map(shellQuote)
        let aside = shellQuote(d + "/damaged")
        let keyInDataDir = fm.fileExists(atPath: d + "/cluster.key")
        let commands = [
            "mkdir -p \(aside) && mv \(files.joined(separator: " ")) \(aside)/",
            startCommand(o, keyFile: recoveryKeyFile(o, keyInDataDir: keyInDataDir)),
        ]
        var problem = "the database \(db) is damaged (\(detail)). This node cannot go on as itself; it rejoins the cluster as a new member (new id, new addresses; its old id turns dead and its space is reclaimed by its heir). Move the files aside and start through any live member (HOST:PORT as in `weft members` there):"
        if keyInDataDir {
            problem += " (If this was the cluster's only member, there is nobody to join: instead move \(d)/cluster.key into \(d)/damaged too and start without --seed to create a new cluster.)"
        }
        return StartupError(problem, commands: commands)
    }

    /// Maps a store error met while starting; damage gets the full recovery path.
    static func startupError(_ e: StoreError, options: NodeOptions) -> StartupError {
        if case .corrupt(_, let detail) = e { return corruptDatabaseError(detail: detail, options: options) }
        return StartupError(e.description)
    }

    /// `weft.db` is gone but its `-wal`/`-shm` are not: SQLite would replay the old log into a
    /// new database. Refuse and say what to move.
    static func checkLeftoverJournal(_ footprint: DataDirFootprint) throws {
        guard !footprint.hadDatabase, footprint.hadWAL || footprint.hadSHM else { return }
        let db = footprint.databasePath
        let files = [db + "-wal", db + "-shm"].filter { FileManager.default.fileExists(atPath: $0) }.map(shellQuote)
        let aside = shellQuote(footprint.dir + "/damaged")
        throw StartupError(
            "\(files.joined(separator: " and ")) are left over from a database that was moved or deleted; a new weft.db would replay them. Move them aside too, then start again:",
            commands: ["mkdir -p \(aside) && mv \(files.joined(separator: " ")) \(aside)/"]
        )
    }

    /// The data dir has `cluster.key` but no database: this node's state is gone while its
    /// cluster may still exist. It may only come back by joining through a member.
    static func recoveryWithoutDatabaseError(options o: NodeOptions, clusterID: String?) -> StartupError {
        let d = o.dataDir
        let which = clusterID.map { " (cluster \($0))" } ?? ""
        return StartupError(
            "data dir \(d) has cluster.key\(which) but no weft.db: it belonged to a cluster and its state is gone. Starting without --seed would create a second cluster under the same key. Rejoin as a new member through any live member (HOST:PORT as in `weft members` there):",
            commands: [
                startCommand(o),
                "# or, if that cluster no longer exists, start a new one: mv \(shellQuote(d + "/cluster.key")) \(shellQuote(d + "/cluster.key.old")) && " + startCommand(o, seeds: []),
            ]
        )
    }

    /// The node left and knows nobody to rejoin through.
    static func leftWithoutContactsError(options o: NodeOptions, clusterID: String?, leftAt: String) -> StartupError {
        let d = o.dataDir
        return StartupError(
            "this node left cluster \(clusterID ?? "?") (\(describeLeftAt(leftAt))) and knows no other member to rejoin through. Rejoin through any live member (HOST:PORT as in `weft members` there):",
            commands: [
                startCommand(o),
                "# or, to start a new cluster instead: mv \(shellQuote(d)) \(shellQuote(d + ".old")) && " + startCommand(o, seeds: []),
            ]
        )
    }

    static func describeLeftAt(_ text: String) -> String {
        guard let ms = Int64(text) else { return "at \(text)" }
        let date = Date(timeIntervalSince1970: Double(ms) / 1000)
        let f = ISO8601DateFormatter()
        return "at \(f.string(from: date))"
    }
}
