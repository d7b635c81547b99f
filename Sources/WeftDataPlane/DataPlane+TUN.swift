import CWeftShim
import Glibc
import WeftCore

extension DataPlane {
    /// The TUN thread: read up to a batch of packets, route each by its IPv4 destination,
    /// seal it for the peer's send session into the batch slot, then one `sendmmsg`. With TUN
    /// offloads (`tunOffload`) each read starts with a virtio-net header and may be a TCP
    /// super-segment, cut here into MTU-sized packets (`TUNOffload.segmentTCPv4`) that fill
    /// consecutive slots — equal lengths to one peer, so UDP GSO sends them as one message.
    func tunLoop(delegate: any DataPlaneDelegate) {
        let batchSize = config.batchSize
        guard let batch = weft_batch_new(Int32(batchSize), Int32(DataPlane.slotBytes + Tunnel.dataOverhead)) else { return }
        defer { weft_batch_free(batch) }
        weft_batch_set_family(batch, udpFD)
        let slotBytes = Int(weft_batch_slot_bytes(batch))
        var gso = false
        var gsoRefusedByKernel = false
        let offload = tunOffload
        let headerBytes = offload ? VirtioNetHeader.byteCount : 0
        // A read holds a header and up to 64 KiB; a segment is built in its own buffer.
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: headerBytes + DataPlane.readBytes, alignment: 64)
        defer { scratch.deallocate() }
        let segmentScratch = UnsafeMutableRawBufferPointer.allocate(byteCount: offload ? DataPlane.slotBytes : 0, alignment: 64)
        defer { segmentScratch.deallocate() }

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

                func flushBatch() {
                    guard n > 0 else { return }
                    let want = gsoWanted.load(ordering: .relaxed) && !gsoRefusedByKernel
                    if want != gso { weft_batch_set_gso(batch, want ? 1 : 0); gso = want }
                    flush(batch, count: n, bytes: bytes)
                    if gso && weft_batch_gso(batch) == 0 {
                        gsoRefusedByKernel = true
                        gso = false
                        counterBlock.add(.gsoFallbacks)
                    }
                    n = 0
                    bytes = 0
                }

                func send(_ packet: UnsafeRawBufferPointer) {
                    let dest: UInt32
                    switch InnerPacket.check(packet) {
                    case .ipv4(let d): dest = d
                    case .notIPv4: counterBlock.drop(.notIPv4); return
                    case .malformed: counterBlock.drop(.malformed); return
                    }
                    guard let peer = tables.routes.lookup(dest) else { counterBlock.drop(.noRoute); return }
                    guard let target = tables.sendTo[peer] else {
                        counterBlock.drop(.noSession)
                        delegate.dataPlane(noSessionFor: peer, packet: Array(packet))
                        return
                    }
                    let s = target.session
                    guard packet.count + Tunnel.dataOverhead <= DataPlane.maxDatagram else {
                        counterBlock.drop(.tooLarge)
                        s.stats.drop(.tooLarge)
                        return
                    }
                    if now >= s.expiresAtMonotonicNanos {
                        exhausted(s, packet: packet, delegate: delegate)
                        return
                    }
                    let counter = s.nextCounter.wrappingAdd(1, ordering: .relaxed).oldValue
                    if counter >= s.sendLimit {
                        exhausted(s, packet: packet, delegate: delegate)
                        return
                    }
                    let out = UnsafeMutableRawBufferPointer(start: weft_batch_slot(batch, n), count: slotBytes)
                    let len = Tunnel.sealData(suite: suite, key: s.sendKey, receiverIndex: s.remoteIndex, counter: counter,
                                              plaintext: packet, into: out)
                    var ep = target.endpoint
                    weft_batch_set(batch, n, Int32(len), &ep)
                    s.stats.sent(bytes: packet.count)
                    bytes += len
                    n += 1
                    if Int(n) == batchSize { flushBatch() }
                }

                while Int(n) < batchSize {
                    let r = weft_tun_read(tunFD, scratch.baseAddress, scratch.count)
                    if r == 0 { drained = true; break }
                    if r < 0 { counterBlock.drop(.tunReadFailed); drained = true; break }
                    counterBlock.add(.tunIn)
                    guard offload else {
                        send(UnsafeRawBufferPointer(rebasing: scratch[0..<Int(r)]))
                        continue
                    }
                    guard let header = VirtioNetHeader(UnsafeRawBufferPointer(rebasing: scratch[0..<Int(r)])) else {
                        counterBlock.drop(.malformed)
                        continue
                    }
                    let packet = UnsafeMutableRawBufferPointer(rebasing: scratch[headerBytes..<Int(r)])
                    switch header.gsoType & 0x7f {
                    case VirtioNetHeader.gsoTCPv4:
                        counterBlock.add(.superSegments)
                        if let k = TUNOffload.segmentTCPv4(UnsafeRawBufferPointer(packet), gsoSize: Int(header.gsoSize),
                                                           scratch: segmentScratch, send) {
                            counterBlock.add(.superSegmentPackets, UInt64(k))
                        } else {
                            counterBlock.drop(.malformed)
                        }
                    case VirtioNetHeader.gsoNone:
                        if header.flags & VirtioNetHeader.needsChecksum != 0,
                           !TUNOffload.completeChecksum(packet, start: Int(header.checksumStart), offset: Int(header.checksumOffset)) {
                            counterBlock.drop(.malformed)
                            continue
                        }
                        send(UnsafeRawBufferPointer(packet))
                    default:
                        counterBlock.drop(.malformed)  // a GSO kind this device was not offered (UDP, TCPv6)
                    }
                }
                flushBatch()
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
