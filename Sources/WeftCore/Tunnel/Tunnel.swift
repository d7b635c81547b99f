/// Weft's encrypted tunnels: a one-round-trip handshake (Noise IKpsk2, as in WireGuard) that
/// derives short-lived session keys, a replay window, the packet codecs, and a pure state
/// machine (``Tunnel/Instance``) that answers events with ``Tunnel/Directive``s.
///
/// Everything here is pure: no clock (time arrives as `now: Instant`), no global randomness
/// (a seeded `DeterministicRNG` for jitter and indices; key material comes from the injected
/// ``TunnelCryptoSuite``), no I/O. The construction, packet formats and timers are written
/// down in `docs/tunnel.md`.
public enum Tunnel {
    /// Envelope version byte (byte 0 of every Weft UDP datagram, shared with gossip).
    public static let version: UInt8 = 1

    /// Envelope kind numbers (byte 1). Gossip owns 1–3. These never change meaning; new
    /// messages get new numbers.
    public enum MessageKind: UInt8, Sendable, CaseIterable {
        /// Handshake initiation, initiator → responder (148 bytes).
        case handshakeInitiation = 4
        /// Handshake response, responder → initiator (92 bytes).
        case handshakeResponse = 5
        /// Cookie reply, responder under load → initiator (64 bytes).
        case cookieReply = 6
        /// Transport data: header (16) + AEAD ciphertext of one inner IP packet + tag (16).
        case data = 7
    }

    /// Byte 1 of a datagram, if it is a tunnel message; nil for gossip kinds or garbage.
    /// The data plane uses this to route a datagram without decoding it.
    public static func kind(of datagram: UnsafeRawBufferPointer) -> MessageKind? {
        guard datagram.count >= 2, datagram[0] == version else { return nil }
        return MessageKind(rawValue: datagram[1])
    }

    /// Array convenience for ``kind(of:)-(UnsafeRawBufferPointer)``.
    public static func kind(of datagram: [UInt8]) -> MessageKind? {
        datagram.withUnsafeBytes { kind(of: $0) }
    }
}
