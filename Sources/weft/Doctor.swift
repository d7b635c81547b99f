import ArgumentParser
import Foundation
import WeftAPI

struct Doctor: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check this node and the path to every member; say what to do about each problem.",
        discussion: """
            The node probes each member itself: UDP and TCP both ways, a full-size (TUN MTU) \
            datagram, the clock, the tunnel handshake. It also reports datagrams that failed to \
            open with the cluster key (by source), IPAM conflicts and shortages; this command adds \
            whether the CNI plugin and a conflist naming it are installed on this host.

            Each line is ok, warn or fail with what to do. Exit 0 when nothing failed (warnings \
            included), 1 when any check failed; --json prints the whole report either way.

            Examples:
              weft doctor
              weft doctor --json | jq '.checks[] | select(.status != "ok")'
            """
    )
    @OptionGroup var node: NodeSelection

    @Option(help: ArgumentHelp("Where CNI plugins are installed (repeatable).", valueName: "dir"))
    var cniBinDir: [String] = ["/opt/cni/bin", "/usr/lib/cni", "/usr/libexec/cni"]

    @Option(help: ArgumentHelp("Where CNI network configs are (repeatable).", valueName: "dir"))
    var cniConfDir: [String] = ["/etc/cni/net.d"]

    func run() throws {
        // The node waits up to ~4 s per member (all in parallel).
        let nodeReport = try node.call(API.Request(op: .doctor), as: API.DoctorReport.self, timeout: 30)
        let me = nodeReport.checks.first { $0.scope == "node" }
        let cni = CNICheck.run(binDirs: cniBinDir, confDirs: cniConfDir, subject: me?.subject ?? "", subjectID: me?.subjectID ?? "")
        // This node's lines first (the node's, then this host's CNI install), then each member's.
        let report = API.DoctorReport(checks: nodeReport.checks.filter { $0.scope == "node" } + cni + nodeReport.checks.filter { $0.scope != "node" })
        if node.json {
            try printJSON(report)
        } else {
            var current = ""
            for c in report.checks {
                let heading = c.scope == "node" ? "this node (\(c.subject))" : "member \(c.subject) (\(c.subjectID.prefix(12)))"
                if heading != current {
                    if !current.isEmpty { print() }
                    print(heading)
                    current = heading
                }
                print("  " + pad(c.status, to: 5) + " " + pad(c.check, to: 14) + " " + c.message)
                if !c.hint.isEmpty { print("  " + String(repeating: " ", count: 21) + "-> " + c.hint) }
            }
            print()
            print("\(report.summary["ok"] ?? 0) ok, \(report.summary["warn"] ?? 0) warn, \(report.summary["fail"] ?? 0) fail")
        }
        if !report.ok { throw ExitCode(CLI.Status.failure) }
    }
}

/// Is the CNI plugin installed where runtimes look (docs/cni.md), and a conflist naming it?
enum CNICheck {
    static func run(binDirs: [String], confDirs: [String], subject: String, subjectID: String) -> [API.DoctorCheck] {
        func check(_ name: String, _ status: String, _ message: String, _ hint: String = "") -> API.DoctorCheck {
            API.DoctorCheck(scope: "node", subject: subject, subjectID: subjectID, check: name, status: status, message: message, hint: hint)
        }
        var out: [API.DoctorCheck] = []
        let fm = FileManager.default
        let found = binDirs.map { ($0 as NSString).appendingPathComponent("weft-cni") }.filter { fm.fileExists(atPath: $0) }
        if let path = found.first {
            if access(path, X_OK) == 0 {
                out.append(check("cni-plugin", "ok", "\(path) is installed"))
            } else {
                out.append(check("cni-plugin", "fail", "\(path) is not executable", "chmod 0755 \(path)"))
            }
        } else {
            out.append(check("cni-plugin", "warn", "weft-cni is not in \(binDirs.joined(separator: ", ")): containers on this host get no weft network",
                             "install -m 0755 weft-cni /opt/cni/bin/weft-cni (docs/cni.md); ignore if this host runs no containers"))
        }
        var configs: [String] = []
        var broken: [String] = []
        for dir in confDirs {
            guard let names = try? fm.contentsOfDirectory(atPath: dir) else { continue }
            for n in names.sorted() where n.hasSuffix(".conflist") || n.hasSuffix(".conf") || n.hasSuffix(".json") {
                let path = (dir as NSString).appendingPathComponent(n)
                guard let data = fm.contents(atPath: path), let text = String(data: data, encoding: .utf8), text.contains("weft-cni") else { continue }
                guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { broken.append("\(path): not valid JSON"); continue }
                let plugins = (obj["plugins"] as? [[String: Any]]) ?? [obj]
                guard plugins.contains(where: { ($0["type"] as? String) == "weft-cni" }) else { continue }
                if obj["cniVersion"] == nil { broken.append("\(path): no cniVersion"); continue }
                if obj["name"] == nil { broken.append("\(path): no name"); continue }
                configs.append(path)
            }
        }
        for b in broken { out.append(check("cni-config", "fail", b, "fix the file: see the conflist in docs/cni.md")) }
        if !configs.isEmpty {
            out.append(check("cni-config", "ok", "\(configs.joined(separator: ", ")) uses weft-cni"))
        } else if broken.isEmpty {
            out.append(check("cni-config", "warn", "no network config in \(confDirs.joined(separator: ", ")) uses weft-cni",
                             "write /etc/cni/net.d/weft.conflist as in docs/cni.md; ignore if this host runs no containers"))
        }
        return out
    }
}
