import ArgumentParser

/// Benchmarks over the deterministic simulator. Results are quoted in docs/benchmarks.md.
@main
struct WeftBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "weft-bench",
        abstract: "Benchmarks of Weft's protocols over the deterministic simulator.",
        subcommands: [MembershipBench.self, IPAMBench.self, DurableAllocBench.self, NodeBench.self, FrameAuthBench.self]
    )
}
