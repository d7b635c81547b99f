extension Tunnel {
    /// The tunnel state machine of one node: all its peers, their handshakes, sessions,
    /// timers, queues and the load defences. A pure value: every input is an `on…` call with
    /// `now`, every output a list of ``Directive``s. See docs/tunnel.md for the protocol.
    ///
    /// Typical use by the runtime (one owner, e.g. an actor):
    /// ```
    /// var tunnel = Tunnel.Instance(localID: me, staticKey: keys, presharedKey: psk, suite: SodiumTunnelSuite(),
    ///                              timestampOrigin: .init(wall: wallClockNow, instant: now), rng: seeded)
    /// tunnel.upsertPeer(id, staticKey: x25519Key, endpoint: address)   // from membership
    /// run(tunnel.onOutbound(ipPacket, to: id, now: now))               // TUN → peer
    /// switch Tunnel.kind(of: datagram) { case .data: run(tunnel.onData(datagram, from: src, now: now)) … }
    /// run(tunnel.onTick(now: now)); schedule(tunnel.nextWakeup)
    /// ```
    public struct Instance<Suite: TunnelCryptoSuite>: Sendable {
        public let settings: Settings
        public let localID: NodeID
        public let suite: Suite
        let staticKey: StaticKeyPair
        /// The pre-shared keys this node accepts, the primary (what it initiates with) first:
        /// more than one only during a cluster key rotation (docs/tunnel.md, "Key rotation").
        var pskSlots: [PSKSlot]
        let timestampOrigin: TimestampOrigin
        var rng: DeterministicRNG
        var peers: [NodeID: PeerRecord] = [:]
        var byStaticKey: [PublicKey: NodeID] = [:]
        var indices: [UInt32: NodeID] = [:]
        var sourceLimiter: RateLimiter
        var loadBucket: TokenBucket
        var cookieSecret: Secret?
        var cookieSecretBornAt = Instant.zero

        /// - Parameters:
        ///   - staticKey: this node's X25519 key pair (its identity key converted).
        ///   - presharedKey: `ClusterKey.derive(context: "weftpsk1", subkeyID: 1)`.
        ///   - timestampOrigin: a wall-clock reading and the `Instant` it was taken at; initiation
        ///     timestamps are derived from it and must grow across restarts.
        ///   - rng: seeded by the caller (jitter, receiver indices). Not used for key material.
        public init(localID: NodeID, staticKey: StaticKeyPair, presharedKey: PresharedKey, suite: Suite,
                    timestampOrigin: TimestampOrigin, settings: Settings = .default, rng: DeterministicRNG) {
            let problems = settings.validate()
            precondition(problems.isEmpty, "invalid Tunnel.Settings: \(problems.joined(separator: "; "))")
            self.settings = settings
            self.localID = localID
            self.suite = suite
            self.staticKey = staticKey
            self.timestampOrigin = timestampOrigin
            self.rng = rng
            pskSlots = [PSKSlot(suite, psk: presharedKey, staticKey: staticKey.publicKey)]
            sourceLimiter = RateLimiter(ratePerSecond: settings.initiationsPerSecondPerSource,
                                        burst: settings.initiationBurstPerSource, maxSources: settings.maxTrackedSources)
            loadBucket = TokenBucket(ratePerSecond: settings.initiationsPerSecondBeforeLoad, burst: settings.initiationBurstBeforeLoad)
        }

        /// This node's static public key (what peers use as `remoteStatic`).
        public var publicKey: PublicKey { staticKey.publicKey }

        /// The pre-shared keys to accept, the first the one to initiate with (a cluster key
        /// rotation: docs/security.md). Sessions keep their keys; handshakes from now on use these.
        public mutating func setPresharedKeys(_ keys: [PresharedKey]) {
            precondition(!keys.isEmpty, "at least one pre-shared key")
            pskSlots = keys.map { PSKSlot(suite, psk: $0, staticKey: staticKey.publicKey) }
            for (id, var p) in peers {
                p.mac1Key = Handshake.mac1Key(suite, psk: keys[0], staticKey: p.staticKey)
                p.cookieKey = Handshake.cookieKey(suite, psk: keys[0], staticKey: p.staticKey)
                peers[id] = p
            }
        }

        /// How many pre-shared keys are accepted.
        public var presharedKeyCount: Int { pskSlots.count }

        /// The slot whose MAC1 key gives `mac1` over `covered`, if any.
        func slot(matchingMAC1 mac1: [UInt8], over covered: [UInt8]) -> PSKSlot? {
            for slot in pskSlots where tunnelConstantTimeEqual(suite.mac(key: slot.ourMAC1Key, message: covered), mac1) {
                return slot
            }
            return nil
        }

        // MARK: - Peers

        /// Adds or updates a peer (from membership). A changed static key retires its sessions.
        public mutating func upsertPeer(_ id: NodeID, staticKey key: PublicKey, endpoint: Endpoint?) -> [Directive] {
            var out: [Directive] = []
            if var p = peers[id] {
                if p.staticKey != key {
                    out += retireAll(&p)
                    byStaticKey[p.staticKey] = nil
                    p = newPeer(id, key, endpoint ?? p.endpoint)
                } else if let e = endpoint {
                    p.endpoint = e
                }
                peers[id] = p
            } else {
                peers[id] = newPeer(id, key, endpoint)
            }
            byStaticKey[key] = id
            return out
        }

        /// Removes a peer and forgets its sessions and queue.
        public mutating func removePeer(_ id: NodeID) -> [Directive] {
            guard var p = peers.removeValue(forKey: id) else { return [] }
            byStaticKey[p.staticKey] = nil
            return retireAll(&p)
        }

        /// The member that owns a static key, if any (the responder's lookup of an initiator).
        public func knownPeer(staticKey key: PublicKey) -> NodeID? { byStaticKey[key] }

        /// Asks for a session with `id` even without traffic; the instance keeps one (handshakes,
        /// retries forever with backoff, rekeys) until the peer is removed.
        public mutating func connect(_ id: NodeID, now: Instant) -> [Directive] {
            guard var p = peers[id] else { return [.dropped(.unknownPeer)] }
            p.wanted = true
            p.persistent = true
            peers[id] = p
            var out: [Directive] = []
            if usableSendSession(p, now: now) == nil && p.pending == nil { initiate(id, now: now, into: &out) }
            return out
        }

        /// `weft peers` rows, sorted by NodeID.
        public func peerStatuses(now: Instant) -> [PeerStatus] {
            peers.keys.sorted().compactMap { status(of: $0, now: now) }
        }

        public func status(of id: NodeID, now: Instant) -> PeerStatus? {
            guard let p = peers[id] else { return nil }
            // A handed-off session counts as established: the data plane sends with it.
            let usable = p.current.flatMap { now - $0.createdAt < settings.rejectAfterTime ? $0 : nil }
            let state: PeerState
            if let s = usable {
                state = p.pending != nil ? .rekeying(attempt: p.attempts + 1) : .established(since: s.createdAt)
            } else if p.pending != nil && p.attempts == 0 {
                state = .handshaking(attempt: 1)
            } else if let e = p.lastError, p.attempts > 0 || p.pending == nil && p.wanted {
                state = .failing(attempts: p.attempts, lastError: e)
            } else if p.pending != nil {
                state = .handshaking(attempt: p.attempts + 1)
            } else {
                state = .idle
            }
            return PeerStatus(peer: id, endpoint: p.endpoint, state: state, lastHandshake: p.lastHandshakeAt,
                              currentSession: p.current?.localIndex, queuedPackets: p.queue.count,
                              packetsSent: p.packetsSent, packetsReceived: p.packetsReceived,
                              bytesSent: p.bytesSent, bytesReceived: p.bytesReceived,
                              nextAttempt: p.pending?.retryAt ?? (p.wanted && usable == nil ? p.nextAttemptAt : nil))
        }

        // MARK: - Outbound

        /// An inner IP packet for `peer` from the TUN device: sealed and sent when a session is
        /// usable, else queued (up to `maxQueuedPackets`) and a handshake started.
        public mutating func onOutbound(_ packet: [UInt8], to id: NodeID, now: Instant) -> [Directive] {
            guard packet.count <= maxInnerPacket else { return [.dropped(.packetTooLarge)] }
            guard var p = peers[id] else { return [.dropped(.unknownPeer)] }
            p.wanted = true
            p.lastSendActivity = now
            var out: [Directive] = []
            if var s = usableSendSession(p, now: now), let endpoint = p.endpoint {
                out.append(seal(packet, session: &s, peer: &p, endpoint: endpoint))
                p.current = s
                let needsRekey = s.sendCounter >= settings.rekeyAfterMessages && p.pending == nil && p.next == nil
                peers[id] = p
                if needsRekey { initiate(id, now: now, into: &out) }
                return out
            }
            if p.queue.count >= settings.maxQueuedPackets {
                if !p.queue.isEmpty { p.queue.removeFirst() }
                out.append(.dropped(.queueOverflow))
            }
            if settings.maxQueuedPackets > 0 { p.queue.append(packet) }
            let start = p.pending == nil && now >= firstAttemptDue(p)
            peers[id] = p
            if start { initiate(id, now: now, into: &out) }
            return out
        }

        // MARK: - Handshake messages

        /// A handshake initiation from `source`. `underLoad` lets the caller force cookie mode
        /// (e.g. its receive queue is long); the instance also enters it when initiations exceed
        /// `initiationsPerSecondBeforeLoad`. Anything that fails MAC1 gets no reply.
        public mutating func onHandshakeInitiation(_ bytes: [UInt8], from source: Endpoint, now: Instant,
                                                   underLoad: Bool = false) -> [Directive] {
            let message: HandshakeInitiation
            do { message = try HandshakeInitiation(decoding: bytes) } catch { return [.dropped(.malformed(error))] }
            guard let slot = slot(matchingMAC1: message.mac1, over: Array(bytes[0..<HandshakeInitiation.mac1Offset])) else {
                return [.dropped(.badMAC1)]
            }

            let loaded = !loadBucket.take(now: now) || underLoad
            if loaded {
                let cookie = makeCookie(for: source, now: now)
                let mac2 = suite.mac(key: Secret(cookie), message: Array(bytes[0..<HandshakeInitiation.mac2Offset]))
                if !tunnelConstantTimeEqual(mac2, message.mac2) {
                    return [.send(cookieReply(cookie: cookie, receiverIndex: message.senderIndex, mac1: message.mac1, slot: slot), to: source)]
                }
            }
            guard sourceLimiter.allow(source.address, now: now) else { return [.dropped(.rateLimited)] }

            guard let (state, timestamp) = Handshake.consumeInitiation(suite, message, local: staticKey) else {
                return [.dropped(.handshakeFailed)]
            }
            guard let id = byStaticKey[state.remoteStatic], var p = peers[id] else { return [.dropped(.unknownPeer)] }
            if let last = p.lastTimestamp, timestamp <= last { return [.dropped(.replayedInitiation)] }
            var out: [Directive] = []
            if let pending = p.pending {
                // Simultaneous initiations: the lower NodeID's initiation wins.
                if localID < id { return [.dropped(.initiationCollision)] }
                indices[pending.localIndex] = nil
                p.pending = nil
            }
            let localIndex = allocateIndex(for: id)
            let ephemeral = suite.generateEphemeralKeyPair()
            guard let (response, keys) = Handshake.createResponse(suite, state, psk: slot.psk, ephemeral: ephemeral,
                                                                  senderIndex: localIndex, receiverIndex: message.senderIndex) else {
                indices[localIndex] = nil
                return [.dropped(.handshakeFailed)]
            }
            p.lastTimestamp = timestamp
            p.endpoint = source
            p.lastHandshakeAt = now
            if let old = p.next { out.append(retire(old, peer: id)) }
            p.next = SessionState(localIndex: localIndex, remoteIndex: message.senderIndex,
                                  sendKey: SendKey(secret: keys.responderToInitiator),
                                  receiveKey: ReceiveKey(secret: keys.initiatorToResponder),
                                  createdAt: now, isInitiator: false, limit: settings.rejectAfterMessages)
            peers[id] = p
            // MAC1 of the response is keyed with the pre-shared key the initiator used.
            var macPeer = p
            if slot.psk.secret != pskSlots[0].psk.secret {
                macPeer.mac1Key = Handshake.mac1Key(suite, psk: slot.psk, staticKey: p.staticKey)
            }
            out.append(.send(withMACs(response.encoded, mac1Offset: HandshakeResponse.mac1Offset,
                                      mac2Offset: HandshakeResponse.mac2Offset, peer: macPeer, now: now), to: source))
            return out
        }

        /// A handshake response. On success the new session becomes current (the old one is kept
        /// for receiving), queued packets are flushed, or a keepalive confirms the session.
        public mutating func onHandshakeResponse(_ bytes: [UInt8], from source: Endpoint, now: Instant) -> [Directive] {
            let message: HandshakeResponse
            do { message = try HandshakeResponse(decoding: bytes) } catch { return [.dropped(.malformed(error))] }
            guard slot(matchingMAC1: message.mac1, over: Array(bytes[0..<HandshakeResponse.mac1Offset])) != nil else {
                return [.dropped(.badMAC1)]
            }
            guard let id = indices[message.receiverIndex], var p = peers[id], let pending = p.pending,
                  pending.localIndex == message.receiverIndex else { return [.dropped(.unknownReceiverIndex)] }
            guard let keys = Handshake.consumeResponse(suite, message, state: pending.state, local: staticKey, psk: pending.psk) else {
                p.lastError = .responseRejected(.handshakeFailed)
                peers[id] = p
                return [.dropped(.handshakeFailed)]
            }
            var out: [Directive] = []
            p.pending = nil
            p.attempts = 0
            p.lastError = nil
            p.nextAttemptAt = nil
            p.endpoint = source
            p.lastHandshakeAt = now
            let session = SessionState(localIndex: pending.localIndex, remoteIndex: message.senderIndex,
                                       sendKey: SendKey(secret: keys.initiatorToResponder),
                                       receiveKey: ReceiveKey(secret: keys.responderToInitiator),
                                       createdAt: now, isInitiator: true, limit: settings.rejectAfterMessages)
            if let n = p.next { out.append(retire(n, peer: id)); p.next = nil }
            if let old = p.previous { out.append(retire(old, peer: id)) }
            p.previous = p.current
            p.current = session
            out.append(.sessionEstablished(info(session, peer: p)))
            flush(&p, now: now, keepaliveIfEmpty: true, into: &out)
            peers[id] = p
            return out
        }

        /// A cookie reply to one of our initiations: remembered, and used as MAC2 key on the next
        /// initiation (sent by the retry timer).
        public mutating func onCookieReply(_ bytes: [UInt8], from source: Endpoint, now: Instant) -> [Directive] {
            let message: CookieReply
            do { message = try CookieReply(decoding: bytes) } catch { return [.dropped(.malformed(error))] }
            guard let id = indices[message.receiverIndex], var p = peers[id], let pending = p.pending,
                  pending.localIndex == message.receiverIndex else { return [.dropped(.unknownReceiverIndex)] }
            let key = suite.kdf(chainingKey: p.cookieKey, input: message.nonce, outputs: 1)[0]
            guard let cookie = suite.open(key: key, counter: 0, ciphertext: message.encryptedCookie, associatedData: pending.mac1),
                  cookie.count == macByteCount else { return [.dropped(.badCookieReply)] }
            p.cookie = cookie
            p.cookieReceivedAt = now
            peers[id] = p
            return []
        }

        // MARK: - Data

        /// A data packet. Delivers the inner packet when it authenticates under a live session
        /// and is not a replay; an empty inner packet is a keepalive and delivers nothing.
        public mutating func onData(_ bytes: [UInt8], from source: Endpoint, now: Instant) -> [Directive] {
            let header: DataHeader
            do { header = try DataHeader(parsing: bytes) } catch { return [.dropped(.malformed(error))] }
            guard let id = indices[header.receiverIndex], var p = peers[id] else { return [.dropped(.unknownReceiverIndex)] }
            let slot: SessionSlot
            if p.current?.localIndex == header.receiverIndex { slot = .current }
            else if p.previous?.localIndex == header.receiverIndex { slot = .previous }
            else if p.next?.localIndex == header.receiverIndex { slot = .next }
            else { return [.dropped(.unknownReceiverIndex)] }
            var s = p[slot]!
            if s.handedOff { return [.dropped(.sessionHandedOff)] }
            if now - s.createdAt >= settings.rejectAfterTime { return [.dropped(.sessionExpired)] }
            guard s.replay.wouldAccept(header.counter) else { return [.dropped(.replayedPacket)] }
            var plain = [UInt8](repeating: 0, count: bytes.count - dataOverhead)
            let opened = plain.withUnsafeMutableBytes { o in
                bytes.withUnsafeBytes { b in openData(suite: suite, key: s.receiveKey, header: header, packet: b, into: o) }
            }
            guard opened == plain.count else { return [.dropped(.authenticationFailed)] }
            guard s.replay.accept(header.counter) else { return [.dropped(.replayedPacket)] }
            p[slot] = s
            p.endpoint = source
            p.packetsReceived += 1
            p.bytesReceived += UInt64(plain.count)
            var out: [Directive] = []
            if !plain.isEmpty { out.append(.deliver(plain, from: id)) }
            if slot == .next {
                // Key confirmation: the initiator used the new session, so it becomes current.
                if let old = p.previous { out.append(retire(old, peer: id)) }
                p.previous = p.current
                p.current = s
                p.next = nil
                p.attempts = 0
                p.lastError = nil
                p.nextAttemptAt = nil
                out.append(.sessionEstablished(info(s, peer: p)))
                flush(&p, now: now, keepaliveIfEmpty: false, into: &out)
            }
            peers[id] = p
            return out
        }

        // MARK: - Data-plane hand-off

        /// Hands the current session with this receiver index to the data plane (see
        /// ``SessionSnapshot`` for the rules). Nil when no such current, live, not yet handed-off
        /// session exists. Afterwards the instance neither seals nor opens under it.
        public mutating func handOffSession(localIndex: UInt32, now: Instant) -> SessionSnapshot? {
            guard let id = indices[localIndex], var p = peers[id], var s = p.current, s.localIndex == localIndex,
                  !s.handedOff, now - s.createdAt < settings.rejectAfterTime else { return nil }
            s.handedOff = true
            p.current = s
            peers[id] = p
            return SessionSnapshot(info: info(s, peer: p), sendKey: s.sendKey, receiveKey: s.receiveKey,
                                   sendCounters: min(s.sendCounter, settings.rejectAfterMessages)..<settings.rejectAfterMessages,
                                   replayWindow: s.replay, rejectAfter: s.createdAt + settings.rejectAfterTime)
        }

        /// The data plane's progress on a handed-off session: the next counter it would use.
        /// Starts a rekey once `rekeyAfterMessages` is reached.
        public mutating func onDataPlaneReport(localIndex: UInt32, nextSendCounter: UInt64, now: Instant) -> [Directive] {
            guard let id = indices[localIndex], var p = peers[id], var s = p.current, s.localIndex == localIndex else { return [] }
            if nextSendCounter > s.sendCounter { p.lastSendActivity = now }
            s.sendCounter = max(s.sendCounter, nextSendCounter)
            p.current = s
            let rekey = s.sendCounter >= settings.rekeyAfterMessages && p.pending == nil && p.next == nil
            peers[id] = p
            var out: [Directive] = []
            if rekey { initiate(id, now: now, into: &out) }
            return out
        }

        // MARK: - Timers

        /// Runs every timer that is due: expiries, retries (with backoff and jitter), rekeys.
        public mutating func onTick(now: Instant) -> [Directive] {
            var out: [Directive] = []
            for id in peers.keys.sorted() {
                guard var p = peers[id] else { continue }
                for slot in [SessionSlot.current, .previous, .next] {
                    if let s = p[slot], now - s.createdAt >= settings.rejectAfterTime {
                        out.append(retire(s, peer: id))
                        p[slot] = nil
                        // An idle peer's session simply ends: no new handshake until there is
                        // something to send (or `connect` asked for a standing session).
                        if slot == .current && !p.persistent && p.pending == nil { p.wanted = false }
                    }
                }
                peers[id] = p
                if let pending = p.pending {
                    if now >= pending.retryAt {
                        p.attempts += 1
                        p.lastError = .noResponse
                        peers[id] = p
                        initiate(id, now: now, into: &out)
                    }
                    continue
                }
                if let s = p.current {
                    guard p.next == nil else { continue }
                    if let due = timedRekeyDue(p, session: s, peer: id), now >= due {
                        initiate(id, now: now, into: &out)
                    } else if s.sendCounter >= settings.rekeyAfterMessages {
                        initiate(id, now: now, into: &out)
                    }
                } else if p.wanted && now >= firstAttemptDue(p) {
                    initiate(id, now: now, into: &out)
                }
            }
            return out
        }

        /// The earliest instant at which ``onTick(now:)`` has something to do, if any.
        public var nextWakeup: Instant? {
            var best: Instant?
            func consider(_ t: Instant?) { if let t, best.map({ t < $0 }) ?? true { best = t } }
            for (id, p) in peers {
                for s in [p.current, p.previous, p.next] { consider(s.map { $0.createdAt + settings.rejectAfterTime }) }
                if let pending = p.pending {
                    consider(pending.retryAt)
                } else if let s = p.current, p.next == nil {
                    consider(timedRekeyDue(p, session: s, peer: id))
                } else if p.current == nil && p.wanted {
                    consider(firstAttemptDue(p))
                }
            }
            return best
        }
    }
}

// MARK: - Internals

extension Tunnel {
    enum SessionSlot { case current, previous, next }

    struct SessionState: Sendable {
        var localIndex: UInt32
        var remoteIndex: UInt32
        var sendKey: SendKey
        var receiveKey: ReceiveKey
        var createdAt: Instant
        var isInitiator: Bool
        var sendCounter: UInt64 = 0
        var replay: ReplayWindow
        var handedOff = false

        init(localIndex: UInt32, remoteIndex: UInt32, sendKey: SendKey, receiveKey: ReceiveKey, createdAt: Instant,
             isInitiator: Bool, limit: UInt64) {
            self.localIndex = localIndex; self.remoteIndex = remoteIndex
            self.sendKey = sendKey; self.receiveKey = receiveKey
            self.createdAt = createdAt; self.isInitiator = isInitiator
            replay = ReplayWindow(limit: limit)
        }
    }

    struct PendingHandshake: Sendable {
        var localIndex: UInt32
        var state: Handshake.InitiatorState
        var retryAt: Instant
        /// MAC1 of the initiation sent, the associated data of a cookie reply to it.
        var mac1: [UInt8]
        /// The pre-shared key the initiation was made with (the primary at the time).
        var psk: PresharedKey
    }

    /// One accepted pre-shared key with the keys derived from it for this node's static key.
    struct PSKSlot: Sendable {
        var psk: PresharedKey
        var ourMAC1Key: Secret
        var ourCookieKey: Secret
        init<S: TunnelCryptoSuite>(_ suite: S, psk: PresharedKey, staticKey: PublicKey) {
            self.psk = psk
            ourMAC1Key = Handshake.mac1Key(suite, psk: psk, staticKey: staticKey)
            ourCookieKey = Handshake.cookieKey(suite, psk: psk, staticKey: staticKey)
        }
    }

    struct PeerRecord: Sendable {
        var id: NodeID
        var staticKey: PublicKey
        var endpoint: Endpoint?
        var mac1Key: Secret
        var cookieKey: Secret
        var current: SessionState?
        var previous: SessionState?
        /// Responder side: a session whose key confirmation (first data packet) is pending.
        var next: SessionState?
        var pending: PendingHandshake?
        var attempts = 0
        var lastError: HandshakeFailure?
        var nextAttemptAt: Instant?
        var wanted = false
        /// Set by `connect`: keep a session even without traffic.
        var persistent = false
        /// When this node last had something to send to the peer (an outbound packet, or the
        /// data plane's send counter moving). Idle peers are not rekeyed; their session expires.
        var lastSendActivity: Instant?
        var queue: [[UInt8]] = []
        var lastTimestamp: Timestamp?
        var lastSentTimestamp: Timestamp?
        var cookie: [UInt8]?
        var cookieReceivedAt = Instant.zero
        var lastHandshakeAt: Instant?
        var packetsSent: UInt64 = 0
        var packetsReceived: UInt64 = 0
        var bytesSent: UInt64 = 0
        var bytesReceived: UInt64 = 0

        subscript(slot: SessionSlot) -> SessionState? {
            get {
                switch slot {
                case .current: return current
                case .previous: return previous
                case .next: return next
                }
            }
            set {
                switch slot {
                case .current: current = newValue
                case .previous: previous = newValue
                case .next: next = newValue
                }
            }
        }
    }
}

extension Tunnel.Instance {

    func newPeer(_ id: NodeID, _ key: Tunnel.PublicKey, _ endpoint: Endpoint?) -> Tunnel.PeerRecord {
        Tunnel.PeerRecord(id: id, staticKey: key, endpoint: endpoint,
                   mac1Key: Tunnel.Handshake.mac1Key(suite, psk: pskSlots[0].psk, staticKey: key),
                   cookieKey: Tunnel.Handshake.cookieKey(suite, psk: pskSlots[0].psk, staticKey: key))
    }

    /// When a wanted peer without session or pending handshake should get an initiation: at
    /// its backoff time, but not before an unconfirmed responder session had `rekeyTimeout` to
    /// be confirmed (the peer's keepalive may just be in flight).
    func firstAttemptDue(_ p: Tunnel.PeerRecord) -> Instant {
        var due = p.nextAttemptAt ?? .zero
        if let n = p.next { due = max(due, n.createdAt + settings.rekeyTimeout) }
        return due
    }

    /// When the current session should be rekeyed by time, or nil while the peer is idle: the
    /// lower NodeID at `rekeyAfterTime`, the other side at `fallbackRekeyAfterTime`, and only
    /// if this node had something to send within `rekeyAfterTime` before that moment (or the
    /// peer is persistent). Idle sessions expire at `rejectAfterTime` instead of being renewed,
    /// so a quiet full mesh does not handshake N² times every two minutes.
    func timedRekeyDue(_ p: Tunnel.PeerRecord, session s: Tunnel.SessionState, peer id: NodeID) -> Instant? {
        let due = s.createdAt + (localID < id ? settings.rekeyAfterTime : settings.fallbackRekeyAfterTime)
        if p.persistent { return due }
        guard let active = p.lastSendActivity, active > due - settings.rekeyAfterTime else { return nil }
        return max(due, active)
    }

    func usableSendSession(_ p: Tunnel.PeerRecord, now: Instant) -> Tunnel.SessionState? {
        guard let s = p.current, !s.handedOff, now - s.createdAt < settings.rejectAfterTime,
              s.sendCounter < settings.rejectAfterMessages else { return nil }
        return s
    }

    func info(_ s: Tunnel.SessionState, peer p: Tunnel.PeerRecord) -> Tunnel.SessionInfo {
        Tunnel.SessionInfo(peer: p.id, localIndex: s.localIndex, remoteIndex: s.remoteIndex,
                           endpoint: p.endpoint ?? Endpoint(address: .v4(0), port: 1),
                           isInitiator: s.isInitiator, establishedAt: s.createdAt)
    }

    mutating func retire(_ s: Tunnel.SessionState, peer id: NodeID) -> Tunnel.Directive {
        indices[s.localIndex] = nil
        return .sessionRetired(peer: id, localIndex: s.localIndex)
    }

    mutating func retireAll(_ p: inout Tunnel.PeerRecord) -> [Tunnel.Directive] {
        var out: [Tunnel.Directive] = []
        for slot in [Tunnel.SessionSlot.current, .previous, .next] {
            if let s = p[slot] { out.append(retire(s, peer: p.id)); p[slot] = nil }
        }
        if let pending = p.pending { indices[pending.localIndex] = nil; p.pending = nil }
        return out
    }

    mutating func allocateIndex(for id: NodeID) -> UInt32 {
        while true {
            let candidate = UInt32(truncatingIfNeeded: rng.next())
            if candidate != 0 && indices[candidate] == nil {
                indices[candidate] = id
                return candidate
            }
        }
    }

    /// Seals one packet under `s` with the next counter.
    mutating func seal(_ packet: [UInt8], session s: inout Tunnel.SessionState, peer p: inout Tunnel.PeerRecord, endpoint: Endpoint) -> Tunnel.Directive {
        let counter = s.sendCounter
        s.sendCounter += 1
        var datagram = [UInt8](repeating: 0, count: packet.count + Tunnel.dataOverhead)
        let n = datagram.withUnsafeMutableBytes { o in
            packet.withUnsafeBytes { Tunnel.sealData(suite: suite, key: s.sendKey, receiverIndex: s.remoteIndex,
                                                     counter: counter, plaintext: $0, into: o) }
        }
        precondition(n == datagram.count, "sealData wrote an unexpected length")
        p.packetsSent += 1
        p.bytesSent += UInt64(packet.count)
        return .send(datagram, to: endpoint)
    }

    /// Sends the queue under the current session (or an empty keepalive when asked and empty).
    mutating func flush(_ p: inout Tunnel.PeerRecord, now: Instant, keepaliveIfEmpty: Bool, into out: inout [Tunnel.Directive]) {
        guard var s = usableSendSession(p, now: now), let endpoint = p.endpoint else { return }
        if p.queue.isEmpty && keepaliveIfEmpty { p.queue.append([]) }
        for packet in p.queue where s.sendCounter < settings.rejectAfterMessages {
            out.append(seal(packet, session: &s, peer: &p, endpoint: endpoint))
        }
        p.queue.removeAll()
        p.current = s
    }

    func timestamp(now: Instant) -> Tunnel.Timestamp {
        timestampOrigin.timestamp(at: now, granularity: settings.timestampGranularity)
    }

    /// How long to wait for a response to attempt number `attempts + 1`.
    mutating func retryDelay(afterAttempts attempts: Int) -> Duration {
        var base = settings.rekeyTimeout.nanoseconds
        if attempts >= settings.backoffAfterAttempts {
            let doublings = min(attempts - settings.backoffAfterAttempts + 1, 32)
            let (scaled, overflow) = base.multipliedReportingOverflow(by: Int64(1) << doublings)
            base = overflow ? settings.maxRetryInterval.nanoseconds : min(scaled, settings.maxRetryInterval.nanoseconds)
        }
        let j = settings.retryJitter.nanoseconds
        let jitter = j > 0 ? Int64.random(in: -j...j, using: &rng) : 0
        return .nanoseconds(base + jitter)
    }

    /// Sends a (new) initiation to `id`, replacing any pending one.
    mutating func initiate(_ id: NodeID, now: Instant, into out: inout [Tunnel.Directive]) {
        guard var p = peers[id] else { return }
        if let old = p.pending { indices[old.localIndex] = nil; p.pending = nil }
        guard let endpoint = p.endpoint else {
            p.lastError = .noEndpoint
            p.attempts += 1
            p.nextAttemptAt = now + retryDelay(afterAttempts: p.attempts)
            peers[id] = p
            out.append(.dropped(.noEndpoint))
            return
        }
        var ts = timestamp(now: now)
        if let last = p.lastSentTimestamp, ts <= last { ts = Tunnel.Timestamp(seconds: last.seconds, nanoseconds: last.nanoseconds + 1) }
        let localIndex = allocateIndex(for: id)
        let ephemeral = suite.generateEphemeralKeyPair()
        guard let (message, state) = Tunnel.Handshake.createInitiation(suite, local: staticKey, remoteStatic: p.staticKey,
                                                                       ephemeral: ephemeral, senderIndex: localIndex,
                                                                       timestamp: ts) else {
            // Only a bad (small-order) static key gets here; retry later rather than spin.
            indices[localIndex] = nil
            p.attempts += 1
            p.lastError = .responseRejected(.handshakeFailed)
            p.nextAttemptAt = now + retryDelay(afterAttempts: p.attempts)
            peers[id] = p
            out.append(.dropped(.handshakeFailed))
            return
        }
        p.lastSentTimestamp = ts
        let bytes = withMACs(message.encoded, mac1Offset: Tunnel.HandshakeInitiation.mac1Offset,
                             mac2Offset: Tunnel.HandshakeInitiation.mac2Offset, peer: p, now: now)
        let mac1 = Array(bytes[Tunnel.HandshakeInitiation.mac1Offset..<Tunnel.HandshakeInitiation.mac2Offset])
        p.pending = Tunnel.PendingHandshake(localIndex: localIndex, state: state,
                                            retryAt: now + retryDelay(afterAttempts: p.attempts), mac1: mac1, psk: pskSlots[0].psk)
        p.nextAttemptAt = nil
        peers[id] = p
        out.append(.send(bytes, to: endpoint))
    }

    /// Fills MAC1 (keyed for the peer) and MAC2 (with a fresh cookie from the peer, else zeros).
    func withMACs(_ encoded: [UInt8], mac1Offset: Int, mac2Offset: Int, peer p: Tunnel.PeerRecord, now: Instant) -> [UInt8] {
        var bytes = encoded
        let mac1 = suite.mac(key: p.mac1Key, message: Array(bytes[0..<mac1Offset]))
        bytes.replaceSubrange(mac1Offset..<mac2Offset, with: mac1)
        if let cookie = p.cookie, now - p.cookieReceivedAt < settings.cookieLifetime {
            let mac2 = suite.mac(key: Tunnel.Secret(cookie), message: Array(bytes[0..<mac2Offset]))
            bytes.replaceSubrange(mac2Offset..<mac2Offset + Tunnel.macByteCount, with: mac2)
        }
        return bytes
    }

    /// cookie = MAC(rotating secret, source IP ‖ port). The secret is replaced every
    /// `cookieLifetime`.
    mutating func makeCookie(for source: Endpoint, now: Instant) -> [UInt8] {
        if cookieSecret == nil || now - cookieSecretBornAt >= settings.cookieLifetime {
            cookieSecret = Tunnel.Secret(suite.randomBytes(32))
            cookieSecretBornAt = now
        }
        return suite.mac(key: cookieSecret!, message: source.address.bytes + [UInt8(source.port >> 8), UInt8(source.port & 0xff)])
    }

    /// Cookie reply: nonce = 24 random bytes, key = KDF1(cookieKey(our static), nonce),
    /// AEAD(key, 0, cookie, ad: MAC1 of the initiation).
    func cookieReply(cookie: [UInt8], receiverIndex: UInt32, mac1: [UInt8], slot: Tunnel.PSKSlot) -> [UInt8] {
        let nonce = suite.randomBytes(Tunnel.CookieReply.nonceByteCount)
        let key = suite.kdf(chainingKey: slot.ourCookieKey, input: nonce, outputs: 1)[0]
        let sealed = suite.seal(key: key, counter: 0, plaintext: cookie, associatedData: mac1)
        return Tunnel.CookieReply(receiverIndex: receiverIndex, nonce: nonce, encryptedCookie: sealed).encoded
    }
}
