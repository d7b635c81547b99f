// Fuzz target: GossipEnvelope — the outermost decoder of everything on the gossip port: the
// version-1 datagram, the version-2 TCP frame with its hello, the hello gate, and the
// version-2 replay-protected datagram. Random bytes almost never authenticate, so the target
// also seals the input under a fixed key and mutates one byte of the result (byte 0 of the
// input picks which), reaching the code behind the AEAD.
import WeftCore
import WeftCrypto

private let sealer = GossipSealer(clusterKey: try! ClusterKey(text: "weft1:" + "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="))
private let opener = GossipEnvelope.DatagramOpener(sealer: sealer, maxSenders: 8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEnvelope(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    for kind in [GossipEnvelope.Kind.datagram, .pushPullRequest, .pushPullReply, .ipam] {
        _ = GossipEnvelope.open(bytes, expecting: kind, with: sealer)
    }
    _ = GossipEnvelope.checkHello(Array(bytes.prefix(GossipEnvelope.helloLength)), frameLength: bytes.count, with: sealer)
    _ = GossipEnvelope.helloID(bytes)
    _ = opener.open(bytes)
    guard let pick = bytes.first else { return 0 }
    let body = Array(bytes.dropFirst())
    let kinds: [GossipEnvelope.Kind] = [.datagram, .pushPullRequest, .pushPullReply, .ipam]
    let kind = kinds[Int(pick % 4)]
    var sealed = GossipEnvelope.seal(body, kind: kind, with: sealer)
    guard case .success(let plain) = GossipEnvelope.open(sealed, expecting: kind, with: sealer), plain == body else {
        preconditionFailure("a sealed envelope must open to its plaintext")
    }
    let at = Int(pick) % sealed.count
    sealed[at] ^= 0x5a
    if case .success = GossipEnvelope.open(sealed, expecting: kind, with: sealer) {
        preconditionFailure("a changed byte must not authenticate")
    }
    let d = GossipEnvelope.DatagramSealer(sender: NodeID(high: 1, low: UInt64(pick)), sealer: sealer, base: 1 << 60)
    let v2 = d.seal(body)
    let fresh = GossipEnvelope.DatagramOpener(sealer: sealer, maxSenders: 2)
    guard case .success = fresh.open(v2), case .success = fresh.open(d.seal(body)) else { preconditionFailure("a fresh v2 datagram must open") }
    guard case .failure = fresh.open(v2) else { preconditionFailure("a replayed v2 datagram must be refused") }
    return 0
}
