import WeftAPI
import WeftCore
import XCTest

@testable import WeftDaemon

/// NodeMetrics without a running node: per-peer series (which a --no-tun integration test
/// cannot produce), counter growth from values kept elsewhere, removal of vanished peers,
/// and kebab-case membership reasons.
final class NodeMetricsTests: XCTestCase {
    private func peer(_ id: String, _ name: String, rx: UInt64, tx: UInt64, handshake: Double?) -> API.PeerInfo {
        API.PeerInfo(id: id, name: name, endpoint: "127.0.0.1:1", state: "established", detail: "", lastHandshake: handshake,
                     rxBytes: rx, txBytes: tx, rxPackets: rx / 100, txPackets: tx / 100, drops: [:])
    }

    private func value(_ text: String, _ series: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Double(line.dropFirst(series.count + 1))
        }
        return nil
    }

    func testPeerSeriesGrowAndDisappear() {
        var m = NodeMetrics()
        let id = "a1b2c3d4e5f60718" + "0000000000000000"
        m.peers([peer(id, "peer-x", rx: 1000, tx: 500, handshake: 3)])
        var text = NodeMetrics.exposition()
        let rx = #"weft_peer_bytes_total{peer="a1b2c3d4e5f60718",peer_name="peer-x",direction="in"}"#
        let age = #"weft_peer_last_handshake_age_seconds{peer="a1b2c3d4e5f60718",peer_name="peer-x"}"#
        XCTAssertEqual(value(text, rx), 1000, text)
        XCTAssertEqual(value(text, age), 3)
        XCTAssertTrue(text.contains("# HELP weft_peer_bytes_total "), "help text")
        XCTAssertTrue(text.contains("# TYPE weft_peer_last_handshake_age_seconds gauge"))
        XCTAssertEqual(value(text, #"weft_peers{state="established"}"#), 1)

        // Growth is added; a lower value (the peer's counters restarted) counts from zero.
        m.peers([peer(id, "peer-x", rx: 1500, tx: 500, handshake: 4)])
        XCTAssertEqual(value(NodeMetrics.exposition(), rx), 1500)
        m.peers([peer(id, "peer-x", rx: 200, tx: 500, handshake: 1)])
        text = NodeMetrics.exposition()
        XCTAssertEqual(value(text, rx), 1700, "a reset source adds its new value")
        XCTAssertEqual(value(text, age), 1)

        // Gone peers take their series with them; a returning peer starts again at its value.
        m.peers([])
        text = NodeMetrics.exposition()
        XCTAssertNil(value(text, rx), text)
        XCTAssertNil(value(text, age))
        XCTAssertEqual(value(text, #"weft_peers{state="established"}"#), 0)
        m.peers([peer(id, "peer-x", rx: 10, tx: 0, handshake: nil)])
        text = NodeMetrics.exposition()
        XCTAssertEqual(value(text, rx), 10)
        XCTAssertNil(value(text, age), "no handshake yet: no age series")
    }

    func testMembershipReasonsAreKebabCaseAndCountedForStatus() {
        XCTAssertEqual(NodeMetrics.label(.staleAck), "stale-ack")
        XCTAssertEqual(NodeMetrics.label(.unsupportedVersion), "unsupported-version")
        XCTAssertEqual(NodeMetrics.label(.malformed), "malformed")
        var m = NodeMetrics()
        let before = value(NodeMetrics.exposition(), #"weft_dropped_packets_total{reason="not-for-me"}"#) ?? -1
        XCTAssertGreaterThanOrEqual(before, 0, "present before the first drop")
        m.drop(membership: .notForMe)
        XCTAssertEqual(value(NodeMetrics.exposition(), #"weft_dropped_packets_total{reason="not-for-me"}"#), before + 1)
        XCTAssertEqual(m.dropCounts["not-for-me"], 1)
        // The node's effects carry membership reasons by raw name: counted under the kebab-case label.
        m.drop(reason: "staleAck")
        XCTAssertEqual(m.dropCounts["stale-ack"], 1)
        XCTAssertNil(m.dropCounts["staleAck"])
        XCTAssertNotNil(value(NodeMetrics.exposition(), #"weft_dropped_packets_total{reason="stale-ack"}"#))
        XCTAssertFalse(NodeMetrics.exposition().contains("staleAck"))
        m.message(.ping, direction: .out)
        m.datagram(.out)
        XCTAssertEqual(m.messageCounts["ping-out"], 1)
        XCTAssertEqual(m.messageCounts["udp-out"], 1)
        XCTAssertEqual(NodeMetrics.MessageType(membership: [1, Membership.MessageType.pingReq.rawValue]), .pingReq)
        XCTAssertEqual(NodeMetrics.MessageType(membership: [1]), .unknown)
    }

    /// The pure node's signature counters are exported as their growth, per claim and op.
    func testSignatureCountersFollowTheNodesStats() {
        var m = NodeMetrics()
        let verify = #"weft_signatures_total{claim="member",op="verify"}"#
        let frameSign = #"weft_signatures_total{claim="ipam-frame",op="sign"}"#
        let pairKey = #"weft_signatures_total{claim="ipam-frame",op="pair-key"}"#
        let before = NodeMetrics.exposition()
        let v0 = value(before, verify) ?? -1, f0 = value(before, frameSign) ?? -1, p0 = value(before, pairKey) ?? -1
        XCTAssertGreaterThanOrEqual(v0, 0, "the series exist from the start")
        XCTAssertGreaterThanOrEqual(p0, 0)
        XCTAssertNil(value(before, #"weft_signatures_total{claim="ipam-frame",op="cached"}"#), "frames are never cached")
        var member = Membership.ClaimStats(), frames = Membership.ClaimStats()
        member.verifications = 5; member.cacheHits = 7; frames.signatures = 2; frames.pairKeys = 3
        m.signatures(member: member, ipamFrame: frames)
        member.verifications = 9
        m.signatures(member: member, ipamFrame: frames)
        let after = NodeMetrics.exposition()
        XCTAssertEqual(value(after, verify), v0 + 9, after)
        XCTAssertEqual(value(after, frameSign), f0 + 2)
        XCTAssertEqual(value(after, pairKey), p0 + 3)
    }

    func testEveryFamilyHasHelpAndAConventionalName() {
        _ = NodeMetrics()  // registers every family, as a starting node does
        let text = NodeMetrics.exposition()
        for f in NodeMetrics.families {
            XCTAssertFalse(f.help.isEmpty, f.name)
            XCTAssertEqual(f.type == .counter, f.name.hasSuffix("_total"), "\(f.name): counters and only counters end in _total")
            XCTAssertNotNil(f.name.range(of: "^weft_[a-z0-9_]+$", options: .regularExpression), f.name)
            if !NodeMetrics.peerFamilyNames.contains(f.name) {
                XCTAssertTrue(text.contains("# HELP \(f.name) \(f.help)"), "\(f.name) is exported with its help from the start")
            }
        }
    }
}
