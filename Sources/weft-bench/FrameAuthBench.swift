import ArgumentParser
import WeftCore
import WeftCrypto

/// What authenticating one point-to-point IPAM frame costs its two ends, with the real
/// libsodium signer (`Membership.ClaimSigner.ed25519`): version 1 (stops 18–24) signed each
/// frame with Ed25519 and checked the signature; version 2 tags it with keyed BLAKE2b under the
/// pair key and checks the tag. Both measured in the same run, alternating rounds; the row to
/// quote is the ratio of the medians. Results: docs/benchmarks.md, stop 25.
struct FrameAuthBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "frame-auth",
        abstract: "Per-frame cost of IPAM frame authentication: Ed25519 sign+verify against pair-key MAC tag+check.")

    @Option(help: "Message sizes in bytes, comma separated (a holdings ack is ~40, a write with 250 addresses ~1,100).")
    var sizes: String = "64,1100"

    @Option(help: "Frames per round.")
    var frames: Int = 2000

    @Option(help: "Rounds of each kind (alternating); the median is reported.")
    var rounds: Int = 7

    func run() throws {
        let parsed = sizes.split(separator: ",").compactMap { Int($0.trimmingCharacters()) }
        guard !parsed.isEmpty, parsed.allSatisfy({ $0 > 0 && $0 <= 1 << 20 }) else { throw ValidationError("--sizes: positive byte counts, comma separated") }
        guard frames > 0, rounds > 0 else { throw ValidationError("--frames and --rounds must be positive") }
        let a = IdentityKeyPair.generate(), b = IdentityKeyPair.generate()
        let sa = Membership.ClaimSigner.ed25519(identity: a), sb = Membership.ClaimSigner.ed25519(identity: b)
        let clock = ContinuousClock()

        // The pair key, derived once per peer (both ends).
        var derive: [Double] = []
        for _ in 0..<rounds {
            let t = clock.now
            for _ in 0..<frames / 10 { _ = sa.pairKey(b.publicKey.bytes) }
            derive.append(nanos(clock.now - t) / Double(frames / 10))
        }
        print("frame-auth: \(frames) frames per round, \(rounds) rounds each, medians")
        print("pair key (one X25519 + BLAKE2b, once per peer and end): \(fmt(median(derive))) ns")
        guard let key = sa.pairKey(b.publicKey.bytes), sb.pairKey(a.publicKey.bytes) == key else {
            throw ValidationError("the two ends derived different pair keys")
        }
        for size in parsed {
            let message = [UInt8](repeating: 0x5a, count: size)
            var ed: [Double] = [], mac: [Double] = []
            var ok = true
            for _ in 0..<rounds {
                var t = clock.now
                for _ in 0..<frames {
                    let sig = sa.sign(message)
                    ok = sb.verify(a.publicKey.bytes, message, sig) && ok
                }
                ed.append(nanos(clock.now - t) / Double(frames))
                t = clock.now
                for _ in 0..<frames {
                    let tag = sa.mac(key, message)
                    ok = sb.checkMAC(key, message, tag) && ok
                }
                mac.append(nanos(clock.now - t) / Double(frames))
            }
            guard ok else { throw ValidationError("a signature or tag did not check") }
            let e = median(ed), m = median(mac)
            print("message \(size) B: ed25519 sign+verify \(fmt(e)) ns, mac tag+check \(fmt(m)) ns, ratio \(fmt(e / m))x")
        }
    }

    func nanos(_ d: Duration) -> Double {
        let c = d.components
        return Double(c.seconds) * 1e9 + Double(c.attoseconds) / 1e9
    }

    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    func fmt(_ x: Double) -> String { x >= 100 ? String(Int(x.rounded())) : String(Double((x * 10).rounded()) / 10) }
}
