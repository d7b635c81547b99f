import XCTest
@testable import WeftCore

func ipamNode(_ n: UInt64) -> NodeID { NodeID(high: 0, low: n) }

final class IPAMRingTests: XCTestCase {
    let subnet = IPAM.Subnet.default
    let a = ipamNode(1), b = ipamNode(2), c = ipamNode(3)
    var cluster: IPAM.ClusterID { IPAM.ClusterID(creator: a, nonce: 42) }

    func testFreshRingOwnsEverything() {
        let r = IPAM.Ring(cluster: cluster, subnet: subnet)
        XCTAssertEqual(r.entries.count, 1)
        XCTAssertEqual(r.owner(of: 0x0A2A_1234), a)
        XCTAssertNil(r.owner(of: 0x0A2B_0000))
        XCTAssertEqual(r.entries[0].free, 65534)
        XCTAssertNil(r.invariantViolation)
    }

    func testOwnerLookupBinarySearch() throws {
        var r = IPAM.Ring(cluster: cluster, subnet: subnet)
        r.insert(IPAM.Entry(token: subnet.base + 100, owner: b, version: 1, free: 0))
        r.insert(IPAM.Entry(token: subnet.base + 200, owner: c, version: 1, free: 0))
        XCTAssertEqual(r.owner(of: subnet.base + 99), a)
        XCTAssertEqual(r.owner(of: subnet.base + 100), b)
        XCTAssertEqual(r.owner(of: subnet.base + 199), b)
        XCTAssertEqual(r.owner(of: subnet.base + 200), c)
        XCTAssertEqual(r.owner(of: subnet.last), c)
        XCTAssertEqual(r.size(ofEntryAt: 1), 100)
    }

    func testMergeKeepsHigherVersionAndReturnsOnlyChanges() throws {
        var r1 = IPAM.Ring(cluster: cluster, subnet: subnet)
        var r2 = r1
        r2.insert(IPAM.Entry(token: subnet.base + 0x8000, owner: b, version: 2, free: 10))
        r2.replace(IPAM.Entry(token: subnet.base, owner: a, version: 2, free: 5))
        let d = try r1.merge(r2)
        XCTAssertEqual(d.count, 2)
        XCTAssertEqual(r1, r2)
        XCTAssertEqual(try r1.merge(r2), [], "merging the same news twice must be quiet")
        // An older version does not overwrite.
        var old = IPAM.Ring(cluster: cluster, subnet: subnet)
        XCTAssertEqual(try r1.merge(old), [])
        XCTAssertEqual(r1.entries[0].version, 2)
        XCTAssertEqual(try old.merge(r1).count, 2)
    }

    func testTieBreakAtEqualVersion() throws {
        let base = subnet.base
        var r1 = IPAM.Ring(cluster: cluster, subnet: subnet)
        var r2 = r1
        r1.replace(IPAM.Entry(token: base, owner: b, version: 7, free: 1))
        r2.replace(IPAM.Entry(token: base, owner: c, version: 7, free: 0))
        var m1 = r1, m2 = r2
        try m1.merge(r2); try m2.merge(r1)
        XCTAssertEqual(m1, m2)
        XCTAssertEqual(m1.entries[0].owner, c, "equal version: larger owner ID wins")
        var r3 = r1
        r3.replace(IPAM.Entry(token: base, owner: b, version: 7, free: 9))
        try r1.merge(r3)
        XCTAssertEqual(r1.entries[0].free, 9, "equal version and owner: larger free wins")
    }

    func testRejectsDifferentClusterAndSubnet() throws {
        var mine = IPAM.Ring(cluster: cluster, subnet: subnet)
        let other = IPAM.Ring(cluster: IPAM.ClusterID(creator: a, nonce: 43), subnet: subnet)
        XCTAssertThrowsError(try mine.merge(other)) { e in
            XCTAssertEqual(e as? IPAM.RingError, .differentCluster(ours: cluster, theirs: other.cluster))
        }
        let otherNet = IPAM.Ring(cluster: cluster, subnet: try IPAM.Subnet(parsing: "10.43.0.0/16"))
        XCTAssertThrowsError(try mine.merge(otherNet))
        XCTAssertEqual(mine, IPAM.Ring(cluster: cluster, subnet: subnet), "refused merges change nothing")
    }

    func testRejectsInvalidRemoteEntries() {
        var mine = IPAM.Ring(cluster: cluster, subnet: subnet)
        let before = mine
        let e = { (t: UInt32, v: UInt64) in IPAM.Entry(token: t, owner: self.b, version: v, free: 0) }
        let bad: [[IPAM.Entry]] = [
            [e(subnet.base + 5, 1), e(subnet.base + 5, 2)],  // duplicate token
            [e(subnet.base + 9, 1), e(subnet.base + 5, 1)],  // unsorted
            [e(0x0B00_0000, 1)],                             // outside subnet
            [e(subnet.base + 1, IPAM.Ring.maxVersion + 1)],  // absurd version
            [IPAM.Entry(token: subnet.base + 1, owner: b, version: 1, free: 70000)],  // free > subnet
        ]
        for entries in bad {
            XCTAssertThrowsError(try mine.merge(entries: entries, cluster: cluster, subnet: subnet))
            XCTAssertEqual(mine, before)
        }
        XCTAssertThrowsError(try IPAM.Ring(cluster: cluster, subnet: subnet, entries: []))
        XCTAssertThrowsError(try IPAM.Ring(cluster: cluster, subnet: subnet, entries: [e(subnet.base + 1, 1)]))
    }

    /// Random replicas that share a history: each step one replica changes an entry as an owner
    /// would (bump, split, transfer) or merges another replica.
    func randomReplicas(seed: UInt64, count: Int = 3, steps: Int = 40) -> [IPAM.Ring] {
        var rng = DeterministicRNG(seed: seed)
        let owners = (1...5).map { ipamNode(UInt64($0)) }
        var reps = [IPAM.Ring](repeating: IPAM.Ring(cluster: cluster, subnet: try! IPAM.Subnet(parsing: "10.42.0.0/24")), count: count)
        for _ in 0..<steps {
            let r = Int.random(in: 0..<count, using: &rng)
            var ring = reps[r]
            let i = Int.random(in: 0..<ring.entries.count, using: &rng)
            var e = ring.entries[i]
            switch Int.random(in: 0..<4, using: &rng) {
            case 0:
                e.version += UInt64.random(in: 1...2, using: &rng); e.free = UInt32.random(in: 0...10, using: &rng)
                ring.replace(e)
            case 1:
                let size = ring.size(ofEntryAt: i)
                if size > 1 {
                    let t = e.token + UInt32.random(in: 1..<size, using: &rng)
                    ring.insert(IPAM.Entry(token: t, owner: owners.randomElement(using: &rng)!, version: e.version + 1, free: 0))
                }
            case 2:
                e.owner = owners.randomElement(using: &rng)!; e.version += 1
                ring.replace(e)
            default:
                let other = Int.random(in: 0..<count, using: &rng)
                _ = try! ring.merge(reps[other])
            }
            XCTAssertNil(ring.invariantViolation)
            reps[r] = ring
        }
        return reps
    }

    func testMergeLawsOverRandomHistories() throws {
        for seed in 0..<300 as Range<UInt64> {
            let reps = randomReplicas(seed: seed)
            let (x, y, z) = (reps[0], reps[1], reps[2])
            func m(_ p: IPAM.Ring, _ q: IPAM.Ring) throws -> IPAM.Ring { var r = p; try r.merge(q); return r }
            XCTAssertEqual(try m(x, y), try m(y, x), "commutative, seed \(seed)")
            XCTAssertEqual(try m(m(x, y), z), try m(x, m(y, z)), "associative, seed \(seed)")
            XCTAssertEqual(try m(x, x), x, "idempotent, seed \(seed)")
            var xx = x
            XCTAssertEqual(try xx.merge(x), [], "self-merge reports no change, seed \(seed)")
            let all = try m(m(x, y), z)
            XCTAssertNil(all.invariantViolation)
            // Delta property: applying only the returned delta gives the same result.
            var viaDelta = x
            var scratch = x
            let d = try scratch.merge(y)
            try viaDelta.merge(entries: d, cluster: cluster, subnet: y.subnet)
            XCTAssertEqual(viaDelta, scratch, "delta reproduces the merge, seed \(seed)")
        }
    }

    /// Small deltas against a large ring take the in-place path; it must agree with a plain
    /// reference join (dictionary of token -> max entry).
    func testSmallDeltaFastPathMatchesReference() throws {
        var rng = DeterministicRNG(seed: 99)
        var ring = IPAM.Ring(cluster: cluster, subnet: subnet)
        for k in 1..<300 { ring.insert(IPAM.Entry(token: subnet.base + UInt32(k * 200), owner: ipamNode(UInt64(k % 7)), version: 1, free: 3)) }
        var reference: [UInt32: IPAM.Entry] = [:]
        for e in ring.entries { reference[e.token] = e }
        for _ in 0..<2000 {
            var delta: [IPAM.Entry] = []
            var tokens = Set<UInt32>()
            for _ in 0..<Int.random(in: 1...3, using: &rng) {
                tokens.insert(subnet.base + UInt32.random(in: 0..<65536, using: &rng) / 50 * 50)
            }
            for t in tokens.sorted() {
                delta.append(IPAM.Entry(token: t, owner: ipamNode(UInt64.random(in: 0..<7, using: &rng)),
                                        version: UInt64.random(in: 0...4, using: &rng), free: UInt32.random(in: 0...3, using: &rng)))
            }
            let changed = try ring.merge(entries: delta, cluster: cluster, subnet: subnet)
            var expectChanged: [IPAM.Entry] = []
            for e in delta where reference[e.token].map({ e.beats($0) }) ?? true {
                reference[e.token] = e; expectChanged.append(e)
            }
            XCTAssertEqual(changed, expectChanged)
            XCTAssertNil(ring.invariantViolation)
        }
        XCTAssertEqual(ring.entries, reference.values.sorted { $0.token < $1.token })
    }
}
