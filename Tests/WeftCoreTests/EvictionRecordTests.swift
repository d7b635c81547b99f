import WeftCore
import XCTest

/// `Node.Evictions` is a join-semilattice and its evicted set a pure function of the records:
/// nodes that received the same records in any order, any number of times, agree.
final class EvictionRecordTests: XCTestCase {
    func record(_ subject: UInt64, by: UInt64, version: UInt64, evicted: Bool) -> Node.Eviction {
        Node.Eviction(subject: NodeID(high: 1, low: subject), name: "n\(subject)", version: version, evicted: evicted,
                      by: NodeID(high: 1, low: by), byKey: [UInt8](repeating: UInt8(by), count: 32),
                      signature: [UInt8](repeating: UInt8(truncatingIfNeeded: version), count: 64))
    }

    func testAnyOrderAnyRepetitionGivesTheSameTableAndEvictedSet() {
        var rng = DeterministicRNG(seed: 7)
        for round in 0..<300 {
            var list: [Node.Eviction] = []
            for _ in 0..<Int.random(in: 1...12, using: &rng) {
                list.append(record(UInt64.random(in: 0..<5, using: &rng), by: UInt64.random(in: 0..<5, using: &rng),
                                   version: UInt64.random(in: 1...4, using: &rng), evicted: Bool.random(using: &rng)))
            }
            let reference = Node.Evictions(list)
            for _ in 0..<5 {
                var shuffled = list + list.prefix(Int.random(in: 0...list.count, using: &rng))
                shuffled.shuffle(using: &rng)
                let other = Node.Evictions(shuffled)
                XCTAssertEqual(other, reference, "round \(round)")
                XCTAssertEqual(other.effective.keys.sorted(), reference.effective.keys.sorted(), "round \(round)")
            }
            // The kept record per subject is the one that supersedes every other about it.
            for (subject, kept) in reference.records {
                for e in list where e.subject == subject && e != kept { XCTAssertTrue(kept.supersedes(e), "round \(round)") }
            }
        }
    }

    func testEffectiveSkipsRecordsOfEvictedSignersAndUndoWins() {
        // 1 evicts 2 (v1); 2 evicts 3 (v2, after its own eviction): skipped; 4 undoes 2 (v3).
        var e = Node.Evictions([record(2, by: 1, version: 1, evicted: true), record(3, by: 2, version: 2, evicted: true)])
        XCTAssertEqual(Set(e.effective.keys), [NodeID(high: 1, low: 2)])
        XCTAssertEqual(e.merge(record(2, by: 4, version: 3, evicted: false)), .stored)
        XCTAssertEqual(Set(e.effective.keys), [NodeID(high: 1, low: 3)], "readmitted 2's earlier record counts again")
        XCTAssertEqual(e.merge(record(2, by: 1, version: 1, evicted: true)), .old, "a stale ban cannot come back")
        XCTAssertEqual(e.maxVersion, 3)
        // At equal versions a ban beats an undo.
        XCTAssertTrue(record(5, by: 1, version: 9, evicted: true).supersedes(record(5, by: 9, version: 9, evicted: false)))
    }

    func testCodecsRoundTripAndRefuseGarbage() {
        let list = (0..<5).map { record($0, by: 9, version: $0 + 1, evicted: $0 % 2 == 0) }
        XCTAssertEqual(Node.Eviction.decode(list: Node.Eviction.encode(list: list)), list)
        XCTAssertEqual(Node.Eviction.decode(list: []), [])
        for e in list { XCTAssertEqual(Node.Eviction.decode(broadcast: e.broadcast), e) }
        let good = list[0].broadcast
        XCTAssertNil(Node.Eviction.decode(broadcast: Array(good.dropLast())), "truncated")
        XCTAssertNil(Node.Eviction.decode(broadcast: good + [0]), "trailing byte")
        var badVerb = good
        badVerb[1 + 16 + 1 + 2 + 8] = 7  // tag, subject, name length, "n0", version: the verb
        XCTAssertNil(Node.Eviction.decode(broadcast: badVerb))
        XCTAssertNil(Node.Eviction.decode(list: [0xFF, 0xFF]), "more records than the table holds")
        XCTAssertNil(Node.Eviction.decode(list: [0, 2] + Array(good.dropFirst())), "a count larger than what follows")
    }
}
