import Foundation
import WeftCore
import WeftCrypto
import XCTest

@testable import WeftDaemon

/// The doctor's wire pieces without a running node: operator frames and probes open only with
/// the cluster key and pass the TCP hello gate; the operator state stays bounded and counts only
/// datagrams that failed to open, by source.
final class OperatorWireTests: XCTestCase {
    override func setUp() { try? Sodium.initialize() }

    func testOperatorFramesAndProbesNeedTheClusterKey() throws {
        let sealer = GossipSealer(clusterKey: ClusterKey.generate())
        let other = GossipSealer(clusterKey: ClusterKey.generate())
        let body = Array(#"{"mode":"info"}"#.utf8)
        let frame = GossipEnvelope.seal(body, kind: .operatorRequest, with: sealer)
        XCTAssertTrue(NodeRuntime.isOperatorFrame(frame))
        XCTAssertFalse(NodeRuntime.isOperatorFrame(GossipEnvelope.seal(body, kind: .pushPullRequest, with: sealer)))
        XCTAssertNil(GossipEnvelope.checkHello(Array(frame.prefix(GossipEnvelope.helloLength)), frameLength: frame.count, with: sealer),
                     "the TCP admission gate lets operator frames through")
        XCTAssertEqual(GossipEnvelope.checkHello(Array(frame.prefix(GossipEnvelope.helloLength)), frameLength: frame.count, with: other), .unauthenticated)
        guard case .success(let plain) = GossipEnvelope.open(frame, expecting: .operatorRequest, with: sealer) else { return XCTFail("does not open") }
        XCTAssertEqual(plain, body)
        guard case .failure(let f) = GossipEnvelope.open(frame, expecting: .operatorRequest, with: other) else { return XCTFail("opened with another key") }
        XCTAssertEqual(f.reason, .unauthenticated)

        // Probes are version-1 datagrams (not framed), 64 bytes and TUN MTU + 32 long.
        XCTAssertFalse(GossipEnvelope.Kind.operatorProbe.isFramed)
        XCTAssertTrue(GossipEnvelope.Kind.operatorReply.isFramed)
        let probe = GossipEnvelope.seal([UInt8](repeating: 7, count: 22), kind: .operatorProbe, with: sealer)
        XCTAssertEqual(probe.count, 64)
        XCTAssertEqual(Array(probe.prefix(2)), [GossipEnvelope.version, 19])
        guard case .success = GossipEnvelope.open(probe, expecting: .operatorProbe, with: sealer) else { return XCTFail("probe does not open") }
        guard case .failure(let g) = GossipEnvelope.open(probe, expecting: .operatorProbe, with: other) else { return XCTFail("probe opened with another key") }
        XCTAssertEqual(g.reason, .unauthenticated)
        // Garbage and truncations never trap.
        for n in 0..<probe.count { _ = GossipEnvelope.open(Array(probe.prefix(n)), expecting: .operatorProbe, with: sealer) }
    }

    func testOperatorStateIsBoundedAndCountsOnlyUnauthenticatedBySource() {
        var s = OperatorState()
        let t = Instant(nanoseconds: 5_000_000_000)
        for i in 0..<(OperatorState.maxProbes * 3) { s.sawProbe(nonce: UInt64(i), big: i % 2 == 0, at: t) }
        XCTAssertLessThanOrEqual(s.probes.count, OperatorState.maxProbes)
        s.sawProbe(nonce: 42_000_000, big: false, at: t)
        s.sawProbe(nonce: 42_000_000, big: true, at: t)
        XCTAssertEqual(s.probes[42_000_000]?.small, true)
        XCTAssertEqual(s.probes[42_000_000]?.big, true)

        let a = Endpoint(address: .v4(0x7f00_0001), port: 7000)
        s.dropped("unauthenticated", from: a, at: t)
        s.dropped("unauthenticated", from: a, at: t + .seconds(3))
        s.dropped("short-packet", from: a, at: t)
        s.dropped("unauthenticated", from: nil, at: t)
        XCTAssertEqual(s.unauthenticated.count, 1)
        XCTAssertEqual(s.unauthenticated[a.description]?.count, 2)
        XCTAssertEqual(s.unauthenticated[a.description]?.last, t + .seconds(3))
        for p in 0..<(OperatorState.maxSources + 50) {
            s.dropped("unauthenticated", from: Endpoint(address: .v4(0x7f00_0002), port: UInt16(10_000 + p)), at: t + .seconds(Int64(10 + p)))
        }
        XCTAssertEqual(s.unauthenticated.count, OperatorState.maxSources, "the oldest sources are forgotten first")
        XCTAssertNil(s.unauthenticated[a.description], "the oldest source went first")
    }
}
