// Writes the seed corpora in fuzz/corpus/<target>/ from the real encoders, so seeds follow the
// wire format. Run by `tests/fuzz/make-corpus.sh` (compiled with WeftCore's sources); the
// hand-written seeds (JSON, text) live in that script.
import Foundation

typealias M = Membership
func id(_ n: UInt64) -> NodeID { NodeID(high: 0x77, low: n) }
func ep(_ n: UInt32, v6: Bool = false) -> Endpoint {
    v6 ? Endpoint(address: .v6([0xfd] + [UInt8](repeating: 0, count: 14) + [UInt8(n)]), port: 7946)
       : Endpoint(address: .v4(0x7F00_0000 | n), port: 7946)
}
func update(_ n: UInt64, inc: UInt64 = 3, state: M.MemberState = .alive, v6: Bool = false) -> M.Update {
    M.Update(state: state, incarnation: inc, id: id(n), from: id(n), address: ep(UInt32(n), v6: v6),
             name: "node-\(n)", publicKey: id(n).bytes + id(n).bytes)
}

let root = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "fuzz/corpus"
func write(_ target: String, _ name: String, _ bytes: [UInt8]) {
    let dir = "\(root)/\(target)"
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: "\(dir)/\(name)", contents: Data(bytes))
}

let pig = M.Piggyback(updates: [update(2), update(3, state: .suspect, v6: true)],
                      broadcasts: [M.AppBroadcast(origin: id(4), payload: [1, 2, 3, 4])])
let messages: [(String, M.Message)] = [
    ("ping", .ping(seq: 1, target: id(1), source: id(2), M.Piggyback())),
    ("ping-piggyback", .ping(seq: 7, target: id(1), source: id(2), pig)),
    ("pingreq-v4", .pingReq(seq: 2, target: id(3), targetAddress: ep(3), source: id(2), wantNack: true, M.Piggyback())),
    ("pingreq-v6", .pingReq(seq: 3, target: id(3), targetAddress: ep(3, v6: true), source: id(2), wantNack: false, pig)),
    ("ack", .ack(seq: 4, source: id(1), pig)),
    ("nack", .nack(seq: 5, source: id(1), M.Piggyback())),
    ("gossip", .gossip(source: id(5), pig)),
]
for (name, m) in messages {
    write("membership_message", name, M.Codec.encode(m))
    write("membership_instance", "datagram-\(name)", [0] + M.Codec.encode(m))
}
let pp = M.PushPull(isReply: false, source: id(2), join: true, members: [update(2), update(6, state: .dead), update(7, v6: true)], appState: [9, 9, 9])
let reply = M.PushPull(isReply: true, source: id(2), join: false, members: [update(3, state: .left)], appState: [])
write("membership_pushpull", "request", M.Codec.encode(pp))
write("membership_pushpull", "reply", M.Codec.encode(reply))
write("membership_instance", "pushpull-request", [1] + M.Codec.encode(pp))

// Structured records for membership_instance: | state | who | incarnation u64 |.
func record(_ state: UInt8, _ who: UInt8, _ inc: UInt64) -> [UInt8] {
    var w = ByteWriter(); w.u8(state); w.u8(who); w.u64(inc); return w.bytes
}
// Issue 9's datagram: a suspect about the node itself with incarnation 2^64 − 1.
write("membership_instance", "issue9-suspect-uint64-max", [2] + record(1, 0, .max))
write("membership_instance", "refutations", [2] + record(1, 0, 5) + record(2, 0x20, 6) + record(3, 0, 1 << 62) + record(1, 0x80, (1 << 62) - 1))
write("membership_instance", "others", [2] + record(0, 1, 4) + record(1, 0x21, 4) + record(2, 2, .max - 1) + record(0, 0xc5, 9))

// IPAM (through the public entry point only).
let cluster = IPAM.ClusterID(creator: id(1), nonce: 42)
write("ipam_message", "ring-request", IPAM.Message.ringRequest.encoded())
write("ipam_message", "donation-request", IPAM.Message.donationRequest(cluster: cluster, wanted: 16).encoded())
write("ipam_message", "donation-deny", IPAM.Message.donationDeny(cluster: cluster).encoded())
var ipam = IPAM.Instance(me: id(1), settings: .default, seed: 1)
_ = ipam.createCluster(subnet: try! IPAM.Subnet(parsing: "10.42.0.0/16"), now: .zero)
if let ring = ipam.ring { write("ipam_message", "ring-full", IPAM.Message.ringFull(ring).encoded()) }

// Tunnel packets: well-formed layouts with arbitrary cryptographic fields.
let eph = Tunnel.PublicKey(bytes: [UInt8](repeating: 9, count: 32))!
write("tunnel_messages", "initiation", Tunnel.HandshakeInitiation(senderIndex: 1, ephemeral: eph,
      encryptedStatic: [UInt8](repeating: 1, count: 48), encryptedTimestamp: [UInt8](repeating: 2, count: 28)).encoded)
write("tunnel_messages", "response", Tunnel.HandshakeResponse(senderIndex: 2, receiverIndex: 1, ephemeral: eph,
      encryptedNothing: [UInt8](repeating: 3, count: 16)).encoded)
write("tunnel_messages", "cookie", Tunnel.CookieReply(receiverIndex: 1, nonce: [UInt8](repeating: 4, count: 24),
      encryptedCookie: [UInt8](repeating: 5, count: 32)).encoded)
var data = [UInt8](repeating: 0, count: 16 + 20 + 16)
data.withUnsafeMutableBytes { Tunnel.DataHeader(receiverIndex: 7, counter: 99).write(to: $0) }
write("tunnel_messages", "data", data)
write("tunnel_messages", "timestamp", Tunnel.Timestamp(seconds: 1_700_000_000, nanoseconds: 5).bytes)

// Replay guard: | sender | counter |.
var rg = ByteWriter()
for (s, c) in [(0, 5000), (0, 5000), (0, 4990), (1, 1), (0, 7000), (0, 3000), (2, UInt64.max), (2, 0)] as [(UInt8, UInt64)] {
    rg.u8(s); rg.u64(c)
}
write("replay_guard", "walk", rg.bytes)

// Envelope: plaintexts (the target seals them itself; byte 0 picks kind and the mutated byte).
write("envelope", "datagram", [0] + M.Codec.encode(messages[1].1))
write("envelope", "pushpull", [1] + M.Codec.encode(pp))
write("envelope", "ipam", [3] + id(1).bytes + IPAM.Message.ringRequest.encoded())
// node_inputs with evictions (Node+Eviction.swift): the fuzz node is member 0 of 0, 1, 2 and
// signs with the accept-all twin, so these records verify there. | kind | length | body |.
func fid(_ n: UInt8) -> NodeID { NodeID(high: 0x99, low: UInt64(n)) }
func eviction(_ subject: UInt8, by: UInt8, version: UInt64, evicted: Bool) -> [UInt8] {
    Node.Eviction(subject: fid(subject), name: "n\(subject)", version: version, evicted: evicted, by: fid(by),
                  byKey: fid(by).bytes + fid(by).bytes, signature: [UInt8](repeating: 0, count: 64)).broadcast
}
func record(_ kind: UInt8, _ body: [UInt8]) -> [UInt8] { [kind, UInt8(min(body.count, 255))] + body.prefix(255) }
func evictionGossip(_ payload: [UInt8]) -> [UInt8] {
    M.Codec.encode(.gossip(source: fid(1), M.Piggyback(broadcasts: [M.AppBroadcast(origin: fid(1), payload: payload)])))
}
write("node_inputs", "evict-other-then-undo",
      record(0x42, evictionGossip(eviction(2, by: 1, version: 1, evicted: true)))
      + record(0xC2, evictionGossip(eviction(2, by: 1, version: 2, evicted: false))))
write("node_inputs", "evict-me-then-undo",
      record(0x42, evictionGossip(eviction(0, by: 1, version: 1, evicted: true)))
      + record(0xC0, [0, 0, 0, 0, 0, 0, 0, 1] + IPAM.Message.ringRequest.encoded())
      + record(0xC2, evictionGossip(eviction(0, by: 2, version: 2, evicted: false))))
write("node_inputs", "mutual-eviction",
      record(0x42, evictionGossip(eviction(2, by: 1, version: 1, evicted: true)))
      + record(0x82, evictionGossip(eviction(1, by: 2, version: 1, evicted: true))))

print("seed corpora written to \(root)")
