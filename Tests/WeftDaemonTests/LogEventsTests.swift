import Foundation
import XCTest
@testable import WeftDaemon

/// The logged event names: one scheme, the catalog equal to what the code emits, the doc equal
/// to the catalog (docs/operations.md "Logs").
final class LogEventsTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Event names with an interpolation, and what they expand to.
    static let dynamic: [String: [String]] = [
        #"member-\(m.state)"#: ["member-alive", "member-suspect", "member-dead", "member-left"],
    ]

    /// Every event name literal in Sources/: `"event": "x"` (swift-log metadata), `event: "x"`
    /// (Node.Log), `LogEvent(.level, "x"` (the IPAM instance's log directives).
    func emittedEvents() throws -> (names: Set<String>, unknownDynamic: [String]) {
        let patterns = [#""event":\s*"((?:[^"\\]|\\\([^)]*\))+)""#, #"\bevent:\s*"((?:[^"\\]|\\\([^)]*\))+)""#,
                        #"LogEvent\(\.\w+,\s*"((?:[^"\\]|\\\([^)]*\))+)""#]
        let regexes = try patterns.map { try NSRegularExpression(pattern: $0) }
        var names = Set<String>(), unknown: [String] = []
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!
        for case let url as URL in files where url.pathExtension == "swift" {
            let text = try String(contentsOf: url, encoding: .utf8)
            let ns = text as NSString
            for r in regexes {
                for m in r.matches(in: text, range: NSRange(location: 0, length: ns.length)) {
                    let raw = ns.substring(with: m.range(at: 1))
                    if raw.contains("\\(") {
                        if let expanded = Self.dynamic[raw] { names.formUnion(expanded) } else { unknown.append("\(url.lastPathComponent): \(raw)") }
                    } else {
                        names.insert(LogEvents.name(raw))
                    }
                }
            }
        }
        return (names, unknown)
    }

    /// The first column of the table under "## Logs" in docs/operations.md.
    func documentedEvents() throws -> Set<String> {
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        guard let start = doc.range(of: "\n## Logs\n") else { XCTFail("docs/operations.md has no '## Logs' section"); return [] }
        let section = doc[start.upperBound...].prefix { _ in true }
        let end = section.range(of: "\n## ")?.lowerBound ?? section.endIndex
        var names = Set<String>()
        for line in section[..<end].split(separator: "\n") where line.hasPrefix("| `") {
            let first = line.split(separator: "|", omittingEmptySubsequences: true).first ?? ""
            for part in first.split(separator: ",") {
                let n = part.trimmingCharacters(in: .whitespaces).trimmingCharacters(in: CharacterSet(charactersIn: "`"))
                if !n.isEmpty { names.insert(n) }
            }
        }
        return names
    }

    func testEveryEmittedEventIsInTheCatalogAndBack() throws {
        let (emitted, unknown) = try emittedEvents()
        XCTAssertEqual(unknown, [], "event names with an interpolation must be listed in LogEventsTests.dynamic")
        XCTAssertGreaterThan(emitted.count, 20, "the collector found too few event names; is the pattern still right?")
        XCTAssertEqual(emitted.subtracting(LogEvents.catalog).sorted(), [], "logged but not in LogEvents.catalog")
        XCTAssertEqual(LogEvents.catalog.subtracting(emitted).sorted(), [], "in LogEvents.catalog but never logged")
    }

    func testTheDocumentedListIsTheCatalog() throws {
        let documented = try documentedEvents()
        XCTAssertEqual(LogEvents.catalog.subtracting(documented).sorted(), [], "logged but missing from docs/operations.md Logs")
        XCTAssertEqual(documented.subtracting(LogEvents.catalog).sorted(), [], "documented in docs/operations.md Logs but never logged")
    }

    func testOneNamingScheme() throws {
        let scheme = try NSRegularExpression(pattern: "^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
        for n in LogEvents.catalog {
            XCTAssertNotNil(scheme.firstMatch(in: n, range: NSRange(location: 0, length: (n as NSString).length)), "\(n) is not lower-case kebab-case")
        }
        XCTAssertEqual(LogEvents.name("ipam.cluster.created"), "ipam-cluster-created")
        XCTAssertEqual(LogEvents.name("tun-up"), "tun-up")
    }
}
