import CWeftShim
import Glibc
import WeftCore

extension DataPlane {
    /// The UDP receive thread: `recvmmsg` batches, decrypt data for installed sessions in
    /// place, everything else to the delegate. With TUN offload the opened packets go through a
    /// ``TCPCoalescer`` (flushed at the end of every `recvmmsg` batch): consecutive segments of
    /// one TCP flow reach the TUN device as one super-packet. Exits within one poll timeout
    /// (250 ms) of ``stop()``, at once when the eventfd fires.
    func receiveLoop(delegate: any DataPlaneDelegate) {
        guard let batch = weft_batch_new(Int32(config.batchSize), Int32(DataPlane.slotBytes)) else { return }
        defer { weft_batch_free(batch) }
        // Opened packets land behind room for a virtio-net header (the coalescer's frame).
        let framed = UnsafeMutableRawBufferPointer.allocate(byteCount: VirtioNetHeader.byteCount + DataPlane.slotBytes, alignment: 64)
        defer { framed.deallocate() }
        let plain = UnsafeMutableRawBufferPointer(rebasing: framed[VirtioNetHeader.byteCount...])
        let receiver = Receiver(plane: self, framed: framed)
        let batchSize = Int32(config.batchSize)

        while !isStopped {
            let w = weft_wait_readable(udpFD, wakeFD, 250)
            if w == 2 || isStopped { break }
            if w < 0 {
                // poll itself failed (EBADF after an abnormal close): do not spin.
                counterBlock.drop(.udpReceiveFailed)
                usleep(10_000)
                continue
            }
            if w == 0 { continue }
            // Drain what is queued, bounded so a flood cannot keep us from seeing stop().
            var rounds = 0
            while rounds < 64 && !isStopped {
                rounds += 1
                let n = weft_batch_recv(batch, udpFD)
                if n < 0 { counterBlock.drop(.udpReceiveFailed); break }
                if n == 0 { break }
                counterBlock.add(.receiveBatches)
                let tables = currentTables()
                let now = weft_monotonic_ns()
                for i in 0..<n {
                    handleDatagram(batch, Int32(i), tables: tables, now: now, plain: plain, receiver: receiver, delegate: delegate)
                }
                receiver.flush()
                if n < batchSize { break }
            }
        }
    }

    @inline(__always)
    private func handleDatagram(_ batch: OpaquePointer, _ i: Int32, tables: ForwardingTables, now: Int64,
                                plain: UnsafeMutableRawBufferPointer, receiver: Receiver, delegate: any DataPlaneDelegate) {
        let len = Int(weft_batch_length(batch, i))
        guard len >= 0 else { counterBlock.drop(.tooLarge); return }
        counterBlock.add(.udpInPackets)
        counterBlock.add(.udpInBytes, UInt64(len))
        let datagram = UnsafeRawBufferPointer(start: weft_batch_slot(batch, i), count: len)
        switch PacketClass.classify(datagram) {
        case .malformedData:
            counterBlock.drop(.malformed)
        case .control:
            toDelegate(batch, i, datagram, delegate)
        case .data(let index, let counter):
            guard let s = tables.byIndex[index] else {
                toDelegate(batch, i, datagram, delegate)
                return
            }
            guard now < s.expiresAtMonotonicNanos else { counterBlock.drop(.sessionExpired); s.stats.drop(.sessionExpired); return }
            guard s.replay.withLock({ $0.wouldAccept(counter) }) else { counterBlock.drop(.replayedPacket); s.stats.drop(.replayedPacket); return }
            let header = Tunnel.DataHeader(receiverIndex: index, counter: counter)
            guard let m = Tunnel.openData(suite: suite, key: s.receiveKey, header: header, packet: datagram, into: plain) else {
                counterBlock.drop(.authenticationFailed)
                s.stats.drop(.authenticationFailed)
                return
            }
            // A racing duplicate (or a slow-path copy) loses here.
            guard s.replay.withLock({ $0.accept(counter) }) else { counterBlock.drop(.replayedPacket); s.stats.drop(.replayedPacket); return }
            var source = weft_endpoint()
            weft_batch_source(batch, i, &source)
            if !source.sameAs(s.installedEndpoint) { counterBlock.add(.dataFromOtherEndpoint) }
            if m == 0 { counterBlock.add(.keepalivesIn); return }
            let inner = UnsafeRawBufferPointer(rebasing: plain[0..<m])
            switch InnerPacket.check(inner) {
            case .notIPv4: counterBlock.drop(.notIPv4); s.stats.drop(.notIPv4); return
            case .malformed: counterBlock.drop(.malformed); s.stats.drop(.malformed); return
            case .ipv4: break
            }
            let src = UInt32(inner[12]) << 24 | UInt32(inner[13]) << 16 | UInt32(inner[14]) << 8 | UInt32(inner[15])
            if tables.routes.lookup(src) != s.peer {
                counterBlock.add(.innerSourceMismatch)
                if config.enforceInnerSource { counterBlock.drop(.wrongInnerSource); s.stats.drop(.wrongInnerSource); return }
            }
            s.stats.received(bytes: m)
            guard tunFD >= 0 else { counterBlock.drop(.noTUN); return }
            if let coalescer = receiver.coalescer {
                coalescer.add(UnsafeMutableRawBufferPointer(rebasing: receiver.framed[0..<(VirtioNetHeader.byteCount + m)]), receiver.write)
                return
            }
            if weft_tun_write(tunFD, inner.baseAddress, m, tunOffload ? 1 : 0) < 0 {
                counterBlock.drop(.tunWriteFailed)
                s.stats.drop(.tunWriteFailed)
            } else {
                counterBlock.add(.tunOut)
            }
        }
    }

    /// The receive thread's TUN writer with coalescing: frames from the coalescer go out in one
    /// `write` each. The first super-packet the kernel refuses turns coalescing off for good
    /// (counted, `tunCoalescingFallbacks`); its packets are cut again and written one by one.
    final class Receiver {
        let plane: DataPlane
        let framed: UnsafeMutableRawBufferPointer
        private(set) var coalescer: TCPCoalescer?
        private let scratch: UnsafeMutableRawBufferPointer
        private(set) var write: (UnsafeRawBufferPointer) -> Void = { _ in }

        init(plane: DataPlane, framed: UnsafeMutableRawBufferPointer) {
            self.plane = plane
            self.framed = framed
            coalescer = plane.tunOffload && plane.tunFD >= 0 ? TCPCoalescer() : nil
            scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: coalescer == nil ? 0 : DataPlane.slotBytes, alignment: 64)
            write = { [unowned self] frame in self.writeFrame(frame) }
        }

        deinit { scratch.deallocate() }

        func flush() { coalescer?.flush(write) }

        private func writeFrame(_ frame: UnsafeRawBufferPointer) {
            let counters = plane.counterBlock
            let gso = frame[1] != VirtioNetHeader.gsoNone
            let r = weft_tun_write_frame(plane.tunFD, frame.baseAddress, frame.count)
            if r >= 0 {
                counters.add(.tunOut)
                if gso, let h = VirtioNetHeader(frame) {
                    counters.add(.coalescedWrites)
                    counters.add(.coalescedPackets, UInt64((frame.count - VirtioNetHeader.byteCount - Int(h.headerLength) + Int(h.gsoSize) - 1) / max(1, Int(h.gsoSize))))
                }
                return
            }
            guard gso, -r == EINVAL, let h = VirtioNetHeader(frame) else { counters.drop(.tunWriteFailed); return }
            // The kernel will not take our GSO frames: write this one's packets plainly, stop coalescing.
            counters.add(.coalesceFallbacks)
            coalescer = nil
            let packet = UnsafeRawBufferPointer(rebasing: frame[VirtioNetHeader.byteCount...])
            let fd = plane.tunFD
            // Cutting recomputes every checksum, so the partial one needs no completing.
            if TUNOffload.segmentTCPv4(packet, gsoSize: Int(h.gsoSize), scratch: scratch, { seg in
                if weft_tun_write(fd, seg.baseAddress, seg.count, 1) < 0 { counters.drop(.tunWriteFailed) } else { counters.add(.tunOut) }
            }) == nil {
                counters.drop(.tunWriteFailed)
            }
        }
    }

    private func toDelegate(_ batch: OpaquePointer, _ i: Int32, _ datagram: UnsafeRawBufferPointer, _ delegate: any DataPlaneDelegate) {
        var source = weft_endpoint()
        weft_batch_source(batch, i, &source)
        counterBlock.add(.controlIn)
        delegate.dataPlane(received: Array(datagram), from: source.endpoint)
    }
}
