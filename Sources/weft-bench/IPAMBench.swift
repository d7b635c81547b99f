import ArgumentParser

// Owned by the IPAM work: replaced by the real benchmark.
struct IPAMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ipam", abstract: "IPAM benchmark (not written yet).")
    func run() throws { throw ValidationError("the IPAM benchmark is not written yet") }
}
