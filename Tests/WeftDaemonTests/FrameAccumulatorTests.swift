import NIOCore
import XCTest

@testable import WeftDaemon

/// The length-prefixed framing used on the push-pull port and the control socket, fed the
/// ways TCP may deliver it: all at once, byte by byte, split inside the header.
final class FrameAccumulatorTests: XCTestCase {
    private func framed(_ body: [UInt8]) -> [UInt8] {
        let n = UInt32(body.count)
        return [UInt8(n >> 24), UInt8(n >> 16 & 0xff), UInt8(n >> 8 & 0xff), UInt8(n & 0xff)] + body
    }

    private func buffer(_ bytes: some Sequence<UInt8>) -> ByteBuffer { ByteBuffer(bytes: Array(bytes)) }

    func testWholeFrameAtOnce() {
        var acc = FrameAccumulator(maxFrame: 100)
        guard case .frame(let body) = acc.append(buffer(framed([1, 2, 3]))) else { return XCTFail("expected a frame") }
        XCTAssertEqual(body, [1, 2, 3])
    }

    func testByteByByte() {
        var acc = FrameAccumulator(maxFrame: 100)
        let bytes = framed(Array(0..<50))
        for (i, b) in bytes.enumerated() {
            let outcome = acc.append(buffer([b]))
            if i < bytes.count - 1 {
                guard case .needMore = outcome else { return XCTFail("frame reported early at byte \(i)") }
            } else {
                guard case .frame(let body) = outcome else { return XCTFail("no frame after the last byte") }
                XCTAssertEqual(body, Array(0..<50))
            }
        }
    }

    func testEmptyFrame() {
        var acc = FrameAccumulator(maxFrame: 100)
        guard case .frame(let body) = acc.append(buffer(framed([]))) else { return XCTFail("expected an empty frame") }
        XCTAssertEqual(body, [])
    }

    func testOversizedIsRefusedFromTheHeaderAlone() {
        var acc = FrameAccumulator(maxFrame: 10)
        guard case .oversized(let n) = acc.append(buffer([0, 0, 0, 11])) else { return XCTFail("expected oversized") }
        XCTAssertEqual(n, 11)
        var huge = FrameAccumulator(maxFrame: 1 << 20)
        guard case .oversized = huge.append(buffer([0xff, 0xff, 0xff, 0xff])) else { return XCTFail("a 4 GiB length must be refused") }
    }

    func testSplitHeader() {
        var acc = FrameAccumulator(maxFrame: 100)
        guard case .needMore = acc.append(buffer([0, 0])) else { return XCTFail("two header bytes are not a frame") }
        guard case .needMore = acc.append(buffer([0, 2, 9])) else { return XCTFail("one of two body bytes is not a frame") }
        guard case .frame(let body) = acc.append(buffer([8])) else { return XCTFail("expected the frame") }
        XCTAssertEqual(body, [9, 8])
    }
}
