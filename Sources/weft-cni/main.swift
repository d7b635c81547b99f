// weft-cni: the CNI plugin for Weft. See docs/cni.md.
// Reads CNI_* from the environment and the network configuration from stdin, prints the result
// (or a CNI error) on stdout, exits 0 on success and 1 on error.
import WeftCNI
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

func readStdin() -> [UInt8] {
    if isatty(0) != 0 { return [] }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    while out.count < 16 << 20 {
        let n = read(0, &buf, buf.count)
        if n > 0 { out += buf[0..<n]; continue }
        if n < 0 && errno == EINTR { continue }
        break
    }
    return out
}

func writeAll(_ fd: Int32, _ text: String) {
    let bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes[off...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { return }
        off += n
    }
}

func environment() -> [String: String] {
    var env: [String: String] = [:]
    var p = environ
    while let entry = p.pointee {
        let s = String(cString: entry)
        if let eq = s.firstIndex(of: "=") { env[String(s[..<eq])] = String(s[s.index(after: eq)...]) }
        p += 1
    }
    return env
}

func timestamp() -> String {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    var t = ts.tv_sec
    var tm = tm()
    gmtime_r(&t, &tm)
    func pad(_ v: Int32, _ w: Int) -> String { let s = String(v); return String(repeating: "0", count: max(0, w - s.count)) + s }
    return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(Int32(ts.tv_nsec / 1_000_000), 3))Z"
}

func monotonicMs() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) * 1000 + Double(ts.tv_nsec) / 1e6
}

let started = monotonicMs()
let output = Plugin.live.run(environment: environment(), stdin: readStdin())
if !output.stdout.isEmpty { writeAll(1, output.stdout + "\n") }
for w in output.stderr { writeAll(2, w + "\n") }
if let log = output.logFile {
    let fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
    if fd >= 0 {
        let ms = (monotonicMs() - started).rounded()
        writeAll(fd, "\(timestamp()) pid=\(getpid()) \(output.logLine) ms=\(Int(ms))\n")
        close(fd)
    }
}
exit(output.exitCode)
