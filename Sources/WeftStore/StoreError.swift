/// What can go wrong with the node's database. Each `description` is one line that says what
/// is wrong and what the operator should do.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// The file is not a database, or SQLite found damage (`SQLITE_CORRUPT`, `SQLITE_NOTADB`,
    /// a failed `quick_check`, or a stored value that cannot be read back).
    case corrupt(path: String, detail: String)
    /// The file or its directory cannot be created or opened (permissions, missing directory,
    /// a directory where the file should be, ...).
    case cannotOpen(path: String, detail: String)
    /// The file was written by a newer Weft whose schema this build does not know.
    case newerSchema(path: String, version: Int)
    /// Any other failure while reading or writing (disk full, I/O error, lock timeout). The
    /// node keeps running; the caller decides whether to retry.
    case io(String)

    public var description: String {
        switch self {
        case .corrupt(let path, let detail):
            return "the database \(path) is damaged (\(detail)): stop the node and run `weft start` on this data dir again, which prints the exact recovery commands (move the database with its -wal/-shm aside, then rejoin as a new member with --seed HOST:PORT of a live member)"
        case .cannotOpen(let path, let detail):
            return "cannot open the database \(path) (\(detail)): check that the data directory exists, is writable by this user and has free space, or pass another --data-dir"
        case .newerSchema(let path, let version):
            return "the database \(path) has schema version \(version), newer than this weft understands (\(NodeStore.schemaVersion)): run a newer weft (moving the file aside would make this node a new member that must rejoin with --seed: docs/operations.md, Lifecycle)"
        case .io(let detail):
            return "database error (\(detail)): check free disk space and the data directory, then retry"
        }
    }
}
