import ArgumentParser
import WeftAPI

/// `weft gc`: release the addresses of containers that are certainly gone (their runtime never
/// sent DEL). The node does the same on its own after `--gc-after`; this runs it now.
struct GC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Release the addresses of containers that are certainly gone (a runtime skipped DEL).",
        discussion: """
            An attachment is released only when its host-side veth is gone AND its container's network \
            namespace is gone, as recorded by weft-cni in <data-dir>/attachments. Everything else is kept \
            and listed with the reason. The node runs the same check on its own (weft start --gc-after, \
            default 2m); weft gc does it now, without waiting.
            Examples:
              weft gc --dry-run
              weft gc --json
            """
    )
    @OptionGroup var node: NodeSelection
    @Flag(name: .long, help: "Only report what would be released.")
    var dryRun = false

    func run() throws {
        var request = API.Request(op: .gc)
        request.dryRun = dryRun
        let r = try node.call(request, as: API.GCResult.self, timeout: 30)
        if node.json { return try printJSON(r) }
        let verb = dryRun ? "would release" : "released"
        if r.released.isEmpty {
            print("nothing to release")
        } else {
            print("\(verb) \(r.released.count):")
            printTable(["HANDLE", "ADDRESS", "WHY"], r.released.map { [$0.handle, $0.address, $0.reason] })
        }
        if !r.kept.isEmpty {
            print()
            print("kept \(r.kept.count):")
            printTable(["HANDLE", "ADDRESS", "WHY"], r.kept.map { [$0.handle, $0.address, $0.reason] })
        }
    }
}
