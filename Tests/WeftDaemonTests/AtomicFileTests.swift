import Foundation
import WeftAPI
import XCTest

/// `AtomicFile.write` (cluster.key, attachment records): replaces the whole file with private
/// permissions, leaves no temporary file, and says which path failed and why.
final class AtomicFileTests: XCTestCase {
    func testReplacesPrivatelyAndLeavesNothingBehind() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("weft-atomic-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/cluster.key"
        try Data("old contents that are longer".utf8).write(to: URL(fileURLWithPath: path))
        try AtomicFile.write(Data("new".utf8), to: path)
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "new")
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        XCTAssertEqual(mode?.intValue, 0o600)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["cluster.key"], "a temporary file was left")

        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: dir + "/missing/cluster.key")) { error in
            let f = error as? AtomicFile.Failure
            XCTAssertEqual(f?.step, .create)
            XCTAssertTrue(f?.description.contains(dir + "/missing/cluster.key") ?? false, "\(error)")
        }
        // A directory where the file should be: the rename fails, the temporary file is removed.
        try FileManager.default.createDirectory(atPath: dir + "/taken/x", withIntermediateDirectories: true)
        XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: dir + "/taken")) { error in
            XCTAssertEqual((error as? AtomicFile.Failure)?.step, .rename, "\(error)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir).sorted(), ["cluster.key", "taken"])
    }
}
