import CWeftShim
import Glibc
import WeftCore

extension DataPlane {
    /// The TUN thread: read up to a batch of packets, route each by its IPv4 destination,
    /// seal it for the peer's send session into the batch slot, then one `sendmmsg`.
    func tunLoop(delegate: any DataPlaneDelegate) {
        let batchSize = config.batchSize
        guard let batch = weft_batch_new(Int32(batchSize), Int32(DataPlane.slotBytes + Tunnel.dataOverhead)) else { return }
        defer { weft_batch_free(batch) }
        weft_batch_set_family(batch, udpFD)
        let slotBytes = Int(weft_batch_slot_bytes(batch))
        var gso = false
        var gsoRefusedByKernel = false
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: DataPlane.slotBytes, alignment: 64)
        defer { scratch.deallocate() }

        while !isStopped {
            let w = weft_wait_readable(tunFD, wakeFD, 250)
            if w == 2 || isStopped { break }
            if w < 0 {
                counterBlock.drop(.tunReadFailed)
                usleep(10_000)
                continue
            }
            if w == 0 { continue }
            var rounds = 0
            while rounds < 64 && !isStopped {
                rounds += 1
                let tables = currentTables()
                let now = weft_monotonic_ns()
                var n: Int32 = 0
                var bytes = 0
                var drained = false
                while Int(n) < batchSize {
                    let r = weft_tun_read(tunFD, scratch.baseAddress, scratch.count)
                    if r == 0 { drained = true; break }
                    if r < 0 { counterBlock.drop(.tunReadFailed); drained = true; break }
                    counterBlock.add(.tunIn)
                    let packet = UnsafeRawBufferPointer(rebasing: scratch[0..<Int(r)])
                    let dest: UInt32
                    switch InnerPacket.check(packet) {
                    case .ipv4(let d): dest = d
                    case .notIPv4: counterBlock.drop(.notIPv4); continue
                    case .malformed: counterBlock.drop(.malformed); continue
                    }
                    guard let peer = tables.routes.lookup(dest) else { counterBlock.drop(.noRoute); continue }
                    guard let target = tables.sendTo[peer] else {
                        counterBlock.drop(.noSession)
                        delegate.dataPlane(noSessionFor: peer, packet: Array(packet))
                        continue
                    }
                    let s = target.session
                    guard packet.count + Tunnel.dataOverhead <= DataPlane.maxDatagram else {
                        counterBlock.drop(.tooLarge)
                        s.stats.drop(.tooLarge)
                        continue
                    }
                    if now >= s.expiresAtMonotonicNanos {
                        exhausted(s, packet: packet, delegate: delegate)
                        continue
                    }
                    let counter = s.nextCounter.wrappingAdd(1, ordering: .relaxed).oldValue
                    if counter >= s.sendLimit {
                        exhausted(s, packet: packet, delegate: delegate)
                        continue
                    }
                    let out = UnsafeMutableRawBufferPointer(start: weft_batch_slot(batch, n), count: slotBytes)
                    let len = Tunnel.sealData(suite: suite, key: s.sendKey, receiverIndex: s.remoteIndex, counter: counter,
                                              plaintext: packet, into: out)
                    var ep = target.endpoint
                    weft_batch_set(batch, n, Int32(len), &ep)
                    s.stats.sent(bytes: packet.count)
                    bytes += len
                    n += 1
                }
                if n > 0 {
                    let want = gsoWanted.load(ordering: .relaxed) && !gsoRefusedByKernel
                    if want != gso { weft_batch_set_gso(batch, want ? 1 : 0); gso = want }
                    flush(batch, count: n, bytes: bytes)
                    if gso && weft_batch_gso(batch) == 0 {
                        gsoRefusedByKernel = true
                        gso = false
                        counterBlock.add(.gsoFallbacks)
                    }
                }
                if drained { break }
            }
        }
    }

    private func exhausted(_ s: InstalledSession, packet: UnsafeRawBufferPointer, delegate: any DataPlaneDelegate) {
        if !s.exhaustedReported.exchange(true, ordering: .relaxed) {
            counterBlock.add(.sessionsExhausted)
            delegate.dataPlane(sessionExhausted: s.localIndex)
        }
        counterBlock.drop(.noSession)
        delegate.dataPlane(noSessionFor: s.peer, packet: Array(packet))
    }

    private func flush(_ batch: OpaquePointer, count n: Int32, bytes: Int) {
        counterBlock.add(.sendBatches)
        var err: Int32 = 0, refused: Int32 = 0
        let sent = weft_batch_send(batch, udpFD, n, 5, &err, &refused)
        counterBlock.add(.udpOutPackets, UInt64(max(0, sent)))
        if sent == n {
            counterBlock.add(.udpOutBytes, UInt64(bytes))
        } else {
            counterBlock.drop(.udpSendFailed, UInt64(n - max(0, sent)))
        }
    }
}
