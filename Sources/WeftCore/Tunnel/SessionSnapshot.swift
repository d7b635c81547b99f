extension Tunnel {
    /// Everything a data-plane thread needs to seal and open under one session without calling
    /// into the ``Instance``: immutable and `Sendable`.
    ///
    /// A snapshot is an **ownership transfer**, obtained with
    /// ``Instance/handOffSession(localIndex:now:)``. From then on the instance never seals or
    /// opens under that session (it answers `.dropped(.sessionHandedOff)`), so the two sides
    /// cannot both use a counter or both accept the same packet:
    ///
    /// - **Sending:** the data plane owns the counters in ``sendCounters``. Keep one atomic
    ///   `UInt64` per snapshot starting at `sendCounters.lowerBound`; each packet takes
    ///   `fetchAdd(1)` and is sealed with it. A value `>= sendCounters.upperBound` must never be
    ///   used: stop sealing with this snapshot, and call ``Instance/onOutbound(_:to:now:)`` for
    ///   the packet (it queues it and starts a handshake). Never seal at or after
    ///   ``rejectAfter`` either. Every counter is used at most once, so no nonce repeats.
    /// - **Receiving:** keep ``replayWindow`` (a copy of the instance's window at hand-off time)
    ///   behind a lock, one per snapshot. For each packet whose receiver index is
    ///   ``localIndex``: `wouldAccept(counter)` → open → `accept(counter)` (after
    ///   authentication only) → deliver. Refuse everything at or after ``rejectAfter``.
    /// - Report progress with ``Instance/onDataPlaneReport(localIndex:nextSendCounter:now:)``
    ///   (about once a second) so rekey-after-messages works, and forget the snapshot on
    ///   `.sessionRetired(localIndex:)`.
    /// - Send with the newest snapshot of a peer; keep older ones for receiving until retired.
    public struct SessionSnapshot: Sendable {
        public let info: SessionInfo
        public var peer: NodeID { info.peer }
        /// Receiver index on packets to us: route inbound data packets by it.
        public var localIndex: UInt32 { info.localIndex }
        /// Receiver index to write on packets to the peer.
        public var remoteIndex: UInt32 { info.remoteIndex }
        public let sendKey: SendKey
        public let receiveKey: ReceiveKey
        /// Counters this snapshot may seal with; exclusively the data plane's.
        public let sendCounters: Range<UInt64>
        /// Replay state at hand-off time.
        public let replayWindow: ReplayWindow
        /// Neither seal nor open at or after this instant.
        public let rejectAfter: Instant
    }
}


extension Tunnel {
    /// Seals one data packet into `output` without allocating: header (16 bytes) then
    /// AEAD(inner packet) with the header as associated data. `output` needs
    /// `plaintext.count + Tunnel.dataOverhead` bytes; returns the datagram length.
    /// The caller guarantees `counter` is fresh for `key` (see ``SessionSnapshot``).
    public static func sealData<S: TunnelCryptoSuite>(suite: S, key: SendKey, receiverIndex: UInt32, counter: UInt64,
                                                     plaintext: UnsafeRawBufferPointer,
                                                     into output: UnsafeMutableRawBufferPointer) -> Int {
        precondition(plaintext.count <= maxInnerPacket, "sealData: inner packet larger than \(maxInnerPacket)")
        precondition(output.count >= plaintext.count + dataOverhead, "sealData: output buffer too small")
        DataHeader(receiverIndex: receiverIndex, counter: counter).write(to: output)
        let header = UnsafeRawBufferPointer(rebasing: output[0..<DataHeader.byteCount])
        let body = UnsafeMutableRawBufferPointer(rebasing: output[DataHeader.byteCount...])
        let n = suite.seal(key: key.secret, counter: counter, plaintext: plaintext, associatedData: header, into: body)
        return DataHeader.byteCount + n
    }

    /// Opens one data packet whose header was parsed with ``DataHeader/init(parsing:)``.
    /// Writes the inner packet to `output` (at least `packet.count - dataOverhead` bytes) and
    /// returns its length, or nil when authentication fails. Does not check the replay window.
    public static func openData<S: TunnelCryptoSuite>(suite: S, key: ReceiveKey, header: DataHeader,
                                                     packet: UnsafeRawBufferPointer,
                                                     into output: UnsafeMutableRawBufferPointer) -> Int? {
        guard packet.count >= dataOverhead, output.count >= packet.count - dataOverhead else { return nil }
        let ad = UnsafeRawBufferPointer(rebasing: packet[0..<DataHeader.byteCount])
        let body = UnsafeRawBufferPointer(rebasing: packet[DataHeader.byteCount...])
        return suite.open(key: key.secret, counter: header.counter, ciphertext: body, associatedData: ad, into: output)
    }
}
