import ArgumentParser

// Owned by the membership work: replaced by the real benchmark.
struct MembershipBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "membership", abstract: "Membership benchmark (not written yet).")
    func run() throws { throw ValidationError("the membership benchmark is not written yet") }
}
