import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Replacing a small file so that a crash leaves either the old contents or the new ones, never
/// a mix: write a private temporary file beside it, flush it to disk, rename it over the target.
/// Used for `cluster.key` (the daemon) and attachment records (weft-cni, the Docker plugin).
public enum AtomicFile {
    /// What failed, with the path and the system's reason.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public enum Step: String, Sendable { case create = "write", rename = "replace" }
        public var step: Step
        public var path: String
        public var reason: String
        public var description: String { "cannot \(step.rawValue) \(path): \(reason)" }
    }

    /// Writes `data` to `path` atomically with permissions `mode`. The temporary file
    /// (`path.tmp-PID`) is removed when anything fails.
    public static func write(_ data: Data, to path: String, mode: Int = 0o600) throws(Failure) {
        let tmp = path + ".tmp-\(getpid())"
        unlink(tmp)
        guard FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: mode]) else {
            throw Failure(step: .create, path: tmp, reason: "check that its directory exists and is writable")
        }
        let fd = open(tmp, O_RDONLY)
        if fd >= 0 { _ = fsync(fd); close(fd) }
        guard rename(tmp, path) == 0 else {
            let e = errno
            unlink(tmp)
            throw Failure(step: .rename, path: path, reason: String(cString: strerror(e)))
        }
    }
}
