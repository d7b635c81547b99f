import Foundation
import XCTest

/// Runs tests/cni/netns-harness.sh (the plugin against a real kernel, inside namespaces the
/// script creates and removes) with the `weft` and `weft-cni` binaries built next to this test.
final class NetnsHarnessTests: XCTestCase {
    func testPluginInRealNamespaces() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root: the harness creates network namespaces") }
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let weft = products.appendingPathComponent("weft").path
        let cni = products.appendingPathComponent("weft-cni").path
        for b in [weft, cni] where !FileManager.default.isExecutableFile(atPath: b) {
            throw XCTSkip("\(b) is not built: run `swift build --product weft --product weft-cni` first")
        }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../tests/cni/netns-harness.sh").standardized.path
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/bash")
        p.arguments = [script]
        var env = ProcessInfo.processInfo.environment
        env["WEFT"] = weft
        env["WEFT_CNI"] = cni
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        // The script prints a few kilobytes: well inside the pipe buffer, so it never blocks on us.
        while p.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        if p.isRunning {
            p.terminate()  // SIGTERM: the script's EXIT trap removes what it made
            p.waitUntilExit()
            XCTFail("harness did not finish within 120 s")
        }
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        let text = String(decoding: output, as: UTF8.self)
        XCTAssertEqual(p.terminationStatus, 0, text)
        XCTAssertTrue(text.contains(" 0 failed"), text)
        XCTAssertFalse(text.contains("SKIP"), text)
        print(text)
    }
}
