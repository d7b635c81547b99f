import Metrics

/// Named counters kept twice: in memory for `weft status`, and in swift-metrics for the
/// Prometheus endpoint. Confined to the node runtime actor.
struct Counters {
    private(set) var values: [String: UInt64] = [:]
    private var metrics: [String: Counter] = [:]
    private let label: String
    private let dimension: String

    init(label: String, dimension: String) {
        self.label = label
        self.dimension = dimension
    }

    mutating func increment(_ key: String, by amount: UInt64 = 1) {
        values[key, default: 0] &+= amount
        let counter: Counter
        if let existing = metrics[key] {
            counter = existing
        } else {
            counter = Counter(label: label, dimensions: [(dimension, key)])
            metrics[key] = counter
        }
        counter.increment(by: Int64(truncatingIfNeeded: amount))
    }
}
