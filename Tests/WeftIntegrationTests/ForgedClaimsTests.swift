import Foundation
import WeftAPI
@testable import WeftCore
import WeftCrypto
@testable import WeftDaemon
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// Issue 9 (2) with real processes: an attacker that holds the cluster key (it read
/// cluster.key) but no member's identity key does one push-pull (which hands it every
/// member's record and signature), then tries each forgery of the issue with sealed,
/// replay-fresh datagrams and a push-pull: a dead about a healthy member, an alive at a higher
/// incarnation moving its address, a left, a suspect about the receiver itself. None is
/// accepted: the accused stays up and alive at its address everywhere, the receivers count
/// the drops by reason. Only 127.0.0.1 is used.
final class ForgedClaimsTests: XCTestCase {
    private var root: TempDir!
    private var nodes: [NodeProcess] = []

    override func setUp() { root = TempDir("claims") }

    override func tearDown() {
        for n in nodes { n.kill9() }
        if testRun?.hasSucceeded == false {
            for n in nodes { print("---- log of \(n.name) ----\n\(n.log().suffix(6000))") }
        }
        root.remove()
    }

    typealias M = Membership

    func testClusterKeyHolderCannotForgeMembershipClaims() throws {
        let metricsPort = freePort()
        let victim = NodeProcess(name: "victim", root: root.path)
        nodes.append(victim)
        try victim.start()
        XCTAssertTrue(victim.waitReady(), "victim never answered")
        let keyFile = victim.dataDir + "/cluster.key"
        let b = NodeProcess(name: "b", root: root.path,
                            extraArgs: ["--seed", victim.address, "--cluster-key-file", keyFile,
                                        "--metrics-listen", "127.0.0.1:\(metricsPort)"])
        let c = NodeProcess(name: "c", root: root.path, extraArgs: ["--seed", victim.address, "--cluster-key-file", keyFile])
        nodes += [b, c]
        try b.start(); try c.start()
        let all = [victim, b, c]
        for n in all { XCTAssertTrue(n.waitReady(), "\(n.name) never became ready") }
        XCTAssertTrue(eventually(timeout: 30) { all.allSatisfy { self.aliveCount($0) == 3 } }, "no convergence")

        // The attacker: the cluster key, an identity of its own that is no member's.
        let clusterKey = try ClusterKey(text: String(contentsOfFile: keyFile, encoding: .utf8))
        let sealer = GossipSealer(clusterKey: clusterKey)
        let attacker = IdentityKeyPair.generate()
        let datagrams = GossipEnvelope.DatagramSealer(sender: attacker.nodeID, sealer: sealer,
                                                      base: UInt64(Date().timeIntervalSince1970 * 1e9))

        // One push-pull: every member's record and signature.
        let request = M.PushPull(isReply: false, source: attacker.nodeID, join: false, members: [], appState: [])
        let replyFrame = try tcpExchange(port: b.port, GossipEnvelope.seal(M.Codec.encode(request), kind: .pushPullRequest, with: sealer))
        guard case .success(let plain) = GossipEnvelope.open(replyFrame, expecting: .pushPullReply, with: sealer) else {
            return XCTFail("the push-pull reply did not open")
        }
        let records = try M.Codec.decodePushPull(plain, maxBytes: 1 << 24).members
        func record(_ n: NodeProcess) throws -> M.Update { try XCTUnwrap(records.first { $0.name == n.name }, "\(n.name) in \(records)") }
        let v = try record(victim), rb = try record(b), rc = try record(c)
        XCTAssertEqual(v.signature.count, 64)
        let before = snapshot(all)

        // The forgeries.
        var forged: [M.Update] = []
        var moved = v; moved.incarnation += 1; moved.address = Endpoint(address: .v4(0x7F00_0001), port: 9)
        forged.append(moved)                                   // the victim's old signature on a new record
        moved.signature = attacker.sign(M.Claims.record(of: moved)); forged.append(moved)  // the attacker's
        var dead = v; dead.state = .dead; dead.from = rc.id   // "c says the victim is dead"
        dead.stateSignature = attacker.sign(M.Claims.accusation(subject: v.id, incarnation: v.incarnation, accuser: rc.id))
        forged.append(dead)
        var deadByVictim = dead; deadByVictim.from = v.id; deadByVictim.stateSignature = v.signature
        forged.append(deadByVictim)                            // the subject "accusing itself"
        var deadByStranger = dead; deadByStranger.from = attacker.nodeID
        deadByStranger.stateSignature = attacker.sign(M.Claims.accusation(subject: v.id, incarnation: v.incarnation, accuser: attacker.nodeID))
        forged.append(deadByStranger)                          // an accuser nobody knows
        var left = v; left.state = .left; left.from = v.id; left.stateSignature = v.signature
        forged.append(left)
        var suspectB = rb; suspectB.state = .suspect; suspectB.from = rc.id
        suspectB.stateSignature = attacker.sign(M.Claims.accusation(subject: rb.id, incarnation: rb.incarnation, accuser: rc.id))
        forged.append(suspectB)                                // about the receiver itself

        for round in 0..<5 {
            for target in [b, c] {
                for u in forged {
                    let msg = M.Message.gossip(source: attacker.nodeID, M.Piggyback(updates: [u]))
                    udpSend(port: target.port, datagrams.seal(M.Codec.encode(msg)))
                }
            }
            if round == 0 {
                let pp = M.PushPull(isReply: false, source: attacker.nodeID, join: false, members: forged, appState: [])
                _ = try? tcpExchange(port: c.port, GossipEnvelope.seal(M.Codec.encode(pp), kind: .pushPullRequest, with: sealer))
            }
            usleep(300_000)
        }

        // Nothing moved, for longer than a suspicion timeout of the fast profile.
        let deadline = Date().addingTimeInterval(6)
        while Date() < deadline {
            XCTAssertEqual(snapshot(all), before, "a forgery was accepted")
            usleep(500_000)
        }
        for n in all { XCTAssertTrue(n.isRunning, "\(n.name) went down") }
        XCTAssertEqual(snapshot(all), before)

        let metrics = try curl("http://127.0.0.1:\(metricsPort)/metrics")
        for reason in ["bad-record-signature", "bad-accusation", "unknown-accuser", "bad-left-signature"] {  // NodeMetrics.label: kebab-case
            XCTAssertGreaterThan(counter(metrics, reason), 0, "b did not count \(reason) drops:\n\(metrics.split(separator: "\n").filter { $0.contains("dropped_packets") }.joined(separator: "\n"))")
        }
    }

    /// The point-to-point IPAM frames over TCP: a key holder that names a member as the sender
    /// (with no signature, or its own) cannot make another member act on it — here: give part
    /// of its space to c by a donation request c never sent. Refused and counted; nothing moves.
    func testClusterKeyHolderCannotSendIPAMFramesInAMembersName() throws {
        let metricsPort = freePort()
        let a = NodeProcess(name: "a", root: root.path, extraArgs: ["--metrics-listen", "127.0.0.1:\(metricsPort)"])
        nodes.append(a)
        try a.start()
        XCTAssertTrue(a.waitReady(), "a never answered")
        let keyFile = a.dataDir + "/cluster.key"
        let c = NodeProcess(name: "c", root: root.path, extraArgs: ["--seed", a.address, "--cluster-key-file", keyFile])
        nodes.append(c)
        try c.start()
        XCTAssertTrue(c.waitReady(), "c never answered")
        XCTAssertTrue(eventually(timeout: 30) { [a, c].allSatisfy { self.aliveCount($0) == 2 } }, "no convergence")
        func ranges(_ n: NodeProcess) -> [String] {
            ((try? n.client.call(API.Request(op: .ipam), as: API.IPAMInfo.self))?.ranges ?? []).map { "\($0.start)-\($0.end) \($0.owner)" }
        }
        XCTAssertTrue(eventually(timeout: 30) { Set(ranges(a).map { $0.split(separator: " ").last! }).count == 2 }, "c never got space")
        let cID = try XCTUnwrap(c.status().flatMap { NodeID(hex: $0.id) })
        let aID = try XCTUnwrap(a.status().flatMap { NodeID(hex: $0.id) })

        let clusterKey = try ClusterKey(text: String(contentsOfFile: keyFile, encoding: .utf8))
        let sealer = GossipSealer(clusterKey: clusterKey)
        let attacker = IdentityKeyPair.generate()
        // The ring's cluster id, from one push-pull (the app state carries the full ring).
        let request = M.PushPull(isReply: false, source: attacker.nodeID, join: false, members: [], appState: [])
        let replyFrame = try tcpExchange(port: a.port, GossipEnvelope.seal(M.Codec.encode(request), kind: .pushPullRequest, with: sealer))
        guard case .success(let plain) = GossipEnvelope.open(replyFrame, expecting: .pushPullReply, with: sealer) else {
            return XCTFail("the push-pull reply did not open")
        }
        let pushPull = try M.Codec.decodePushPull(plain, maxBytes: 1 << 24)
        let app = try XCTUnwrap(Node.Instance.unpackAppState(pushPull.appState))
        guard case .fullState(let ring, _) = try IPAM.Message(decoding: app.ipam) else { return XCTFail("no full state in the app state") }
        let aKey = try XCTUnwrap(pushPull.members.first { $0.id == aID }?.publicKey, "a's member record in the push-pull")
        let before = ranges(a)

        let donation = IPAM.Message.donationRequest(cluster: ring.cluster, wanted: 1 << 12).encoded()
        let ctr = UInt64(Date().timeIntervalSince1970 * 1e9) + (1 << 40)  // ahead of every real counter
        func claim(_ sender: NodeID) -> [UInt8] { Node.Instance.ipamFrameClaim(sender: sender, recipient: aID, counter: ctr, message: donation) }
        // The key the attacker shares with a (its own identity's X25519 with a's): the best it can
        // tag with, since the key c shares with a needs c's secret or a's.
        let attackerSigner = Membership.ClaimSigner.ed25519(identity: attacker)
        let attackerPair = try XCTUnwrap(attackerSigner.pairKey(aKey))
        let frames: [[UInt8]] = [
            Node.Instance.ipamFrame(sender: cID, counter: ctr, message: donation, tag: [UInt8](repeating: 0, count: 32)),  // c's name, no tag
            Node.Instance.ipamFrame(sender: cID, counter: ctr, message: donation, tag: attackerSigner.mac(attackerPair, claim(cID))),  // c's name, the attacker's key
            Node.Instance.ipamFrame(sender: attacker.nodeID, counter: ctr, message: donation, tag: attackerSigner.mac(attackerPair, claim(attacker.nodeID))),  // no member
            [Node.Instance.ipamFrameVersion] + cID.bytes + donation,                    // too short to carry a tag
        ]
        for _ in 0..<3 {
            for f in frames { _ = try? tcpExchange(port: a.port, GossipEnvelope.seal(f, kind: .ipam, with: sealer)) }
            usleep(200_000)
        }
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline, ranges(a) == before { usleep(300_000) }
        XCTAssertEqual(ranges(a), before, "a forged IPAM frame moved space")
        XCTAssertTrue(a.isRunning && c.isRunning)
        let metrics = try curl("http://127.0.0.1:\(metricsPort)/metrics")
        XCTAssertGreaterThanOrEqual(counter(metrics, "ipam-bad-signature"), 6, "the frames in c's name were not refused as unsigned")
        XCTAssertGreaterThanOrEqual(counter(metrics, "ipam-unknown-sender"), 3, "the frame from a non-member was not refused")
        XCTAssertGreaterThanOrEqual(counter(metrics, "malformed-ipam"), 3)
    }

    // MARK: helpers

    private func aliveCount(_ n: NodeProcess) -> Int { (n.members() ?? []).filter { $0.state == "alive" }.count }

    /// (observer, member) -> state, address, incarnation.
    private func snapshot(_ nodes: [NodeProcess]) -> [String: String] {
        var out: [String: String] = [:]
        for n in nodes {
            for m in n.members() ?? [] { out["\(n.name)/\(m.name)"] = "\(m.state) \(m.address) \(m.incarnation)" }
        }
        return out
    }

    private func counter(_ metrics: String, _ reason: String) -> Double {
        for line in metrics.split(separator: "\n") where line.hasPrefix("weft_dropped_packets_total") && line.contains("reason=\"\(reason)\"") {
            if let v = line.split(separator: " ").last, let d = Double(v) { return d }
        }
        return 0
    }

    private func curl(_ url: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
        p.arguments = ["-s", "--max-time", "5", url]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    private func loopback(_ port: UInt16) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return addr
    }

    private func udpSend(port: UInt16, _ bytes: [UInt8]) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return XCTFail("no UDP socket") }
        defer { close(fd) }
        var addr = loopback(port)
        let sent = bytes.withUnsafeBytes { buf in
            withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buf.baseAddress, buf.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        XCTAssertEqual(sent, bytes.count)
    }

    /// One framed request and its framed reply (u32 length prefix), bounded by a 5 s timeout.
    private func tcpExchange(port: UInt16, _ frame: [UInt8]) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = loopback(port)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else { throw POSIXError(.ECONNREFUSED) }
        var out = ByteWriter(capacity: frame.count + 4)
        out.u32(UInt32(frame.count)); out.raw(frame)
        let bytes = out.bytes
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { throw POSIXError(.EPIPE) }
            off += n
        }
        func read(_ count: Int) throws -> [UInt8] {
            var buf = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = buf[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                guard n > 0 else { throw POSIXError(.ECONNRESET) }
                got += n
            }
            return buf
        }
        let len = try read(4).reduce(0) { $0 << 8 | Int($1) }
        guard len <= 1 << 24 else { throw POSIXError(.EMSGSIZE) }
        return try read(len)
    }
}
