// MARK: - Path stability (paper A's hypothesis)
//
// For a fixed input, a ReLU network's gates (which units are on, 1[z > 0]) pick the active
// sub-network. Paper A's path-stability hypothesis: these binary activation patterns settle early in
// training, and the final pre-activations encode them (a gate far from 0 does not flip any more).
// Measured here on a fixed probe set, against a reference pattern (the final model's):
//   * per layer, the fraction of (example, unit) gates whose state differs from the reference;
//   * the same fraction within bins of the REFERENCE pre-activation magnitude |z|, to show which gates
//     still flip (the hypothesis says: those with small |z|);
//   * when a series of such fractions settles: the first checkpoint after which it stays below a bound.
import Foundation
import SIMDCore

// MARK: Pre-activations of a model

/// A model that reports the pre-activation z of every ReLU (in forward order, with its layer name).
public protocol PreActivationProbe {
    /// [(ReLU name, z [N, ...])] for a batch x, hard forward pass.
    func preActivations(_ x: Tensor) throws -> [(name: String, values: Tensor)]
}

extension SmallCNN: PreActivationProbe {
    public func preActivations(_ x: Tensor) throws -> [(name: String, values: Tensor)] {
        let tape = Tape(recording: false)
        var seen: [(String, Variable)] = []
        _ = try logits(tape, tape.input(x), policy: .vanilla, weights: { tape.input(self.parameters[$0]!) },
                       observe: { seen.append(($0, $1)) })
        return seen.map { (name: $0.0, values: tape.value($0.1)) }
    }
}

extension GatedNetwork: PreActivationProbe {
    /// The gating pre-activations (the DNN's own ReLU inputs; q_f of a gated network), named "gate.<l>".
    public func preActivations(_ x: Tensor) throws -> [(name: String, values: Tensor)] {
        let tape = Tape(recording: false)
        let out = try forward(on: tape, input: x, training: false)
        return out.preActivations.enumerated().map { (name: "gate.\($0.offset)", values: tape.value($0.element)) }
    }
}

// MARK: Gate patterns

/// The gate states (1[z > 0]) and pre-activations of a model on a probe set, per ReLU layer.
///
/// ```swift
/// let final = try GatePattern(of: model, probe: x)
/// let early = try GatePattern(of: checkpoint, probe: x)
/// try early.flipFractions(against: final)     // per layer, e.g. [0.04, 0.07, 0.02]
/// ```
public struct GatePattern: Sendable {
    public let layers: [String]
    /// Probe examples.
    public let examples: Int
    /// Per layer, z of every (example, unit), example-major.
    public let preActivations: [[Float]]

    public init(layers: [String], examples: Int, preActivations: [[Float]]) throws {
        guard layers.count == preActivations.count else {
            throw EngineError(op: "GatePattern", "\(layers.count) layer names for \(preActivations.count) layers of pre-activations")
        }
        for (l, z) in preActivations.enumerated() where examples == 0 || z.count % examples != 0 {
            throw EngineError(op: "GatePattern", "layer '\(layers[l])' has \(z.count) pre-activations, not a multiple of \(examples) examples")
        }
        self.layers = layers; self.examples = examples; self.preActivations = preActivations
    }

    /// The pattern of `model` on the probe batch `probe` [N, ...].
    public init(of model: PreActivationProbe, probe: Tensor) throws {
        let z = try model.preActivations(probe)
        try self.init(layers: z.map(\.name), examples: probe.shape.first ?? 0, preActivations: z.map(\.values.scalars))
    }

    /// Gates per example in layer `l`.
    public func units(_ l: Int) -> Int { examples == 0 ? 0 : preActivations[l].count / examples }

    /// Gate on/off of layer `l`, example-major.
    public func gates(_ l: Int) -> [Bool] { preActivations[l].map { $0 > 0 } }

    /// Fraction of gates that are on, per layer.
    public var onFractions: [Double] {
        preActivations.map { z in Double(z.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }) / Double(max(z.count, 1)) }
    }

    func checkComparable(_ other: GatePattern) throws {
        guard layers == other.layers, examples == other.examples,
              zip(preActivations, other.preActivations).allSatisfy({ $0.count == $1.count }) else {
            throw EngineError(op: "GatePattern", "patterns of different models or probe sets: layers \(layers) x \(examples) examples vs \(other.layers) x \(other.examples)")
        }
    }

    /// Per layer, the fraction of gates whose state differs from `reference`.
    public func flipFractions(against reference: GatePattern) throws -> [Double] {
        try checkComparable(reference)
        return zip(preActivations, reference.preActivations).map { z, r in
            var flips = 0
            for i in 0..<z.count where (z[i] > 0) != (r[i] > 0) { flips += 1 }
            return Double(flips) / Double(max(z.count, 1))
        }
    }

    /// Over all layers together (each gate counts once).
    public func overallFlipFraction(against reference: GatePattern) throws -> Double {
        try checkComparable(reference)
        var flips = 0, total = 0
        for (z, r) in zip(preActivations, reference.preActivations) {
            total += z.count
            for i in 0..<z.count where (z[i] > 0) != (r[i] > 0) { flips += 1 }
        }
        return Double(flips) / Double(max(total, 1))
    }

    /// One bin of gates grouped by the reference's |z|.
    public struct MagnitudeBin: Sendable, Equatable {
        /// |z_reference| in [lower, upper) (the last bin includes its upper edge).
        public let lower: Float
        public let upper: Float
        public let gates: Int
        public let flipped: Int
        public var flipFraction: Double { gates == 0 ? 0 : Double(flipped) / Double(gates) }
    }

    /// Layer `l`'s gates binned by the REFERENCE pre-activation magnitude |z| with bin `edges`
    /// (ascending, at least two); gates outside [edges.first, edges.last] are left out.
    public func flipsByMagnitude(against reference: GatePattern, layer l: Int, edges: [Float]) throws -> [MagnitudeBin] {
        try checkComparable(reference)
        guard edges.count >= 2, zip(edges, edges.dropFirst()).allSatisfy({ $0 < $1 }) else {
            throw EngineError(op: "GatePattern", "bin edges must be at least two ascending values, got \(edges)")
        }
        let bins = edges.count - 1
        var count = [Int](repeating: 0, count: bins), flipped = count
        let z = preActivations[l], r = reference.preActivations[l]
        for i in 0..<z.count {
            let m = abs(r[i])
            guard m >= edges[0], m <= edges[bins] else { continue }
            // Last edge <= m, by binary search.
            var lo = 0, hi = bins
            while hi - lo > 1 { let mid = (lo + hi) / 2; if edges[mid] <= m { lo = mid } else { hi = mid } }
            count[lo] += 1
            if (z[i] > 0) != (r[i] > 0) { flipped[lo] += 1 }
        }
        return (0..<bins).map { MagnitudeBin(lower: edges[$0], upper: edges[$0 + 1], gates: count[$0], flipped: flipped[$0]) }
    }
}

// MARK: Summaries

public enum PathStability {
    /// Edges splitting `values`' magnitudes into `bins` bins of (nearly) equal counts: the 0, 1/bins, …, 1
    /// quantiles of |v| (duplicates collapsed, so fewer bins may come back).
    public static func quantileEdges(of values: [Float], bins: Int) -> [Float] {
        let m = values.map { abs($0) }.sorted()
        guard !m.isEmpty, bins >= 1 else { return [] }
        var edges: [Float] = []
        for k in 0...bins {
            let e = m[min(m.count - 1, Int((Double(k) / Double(bins) * Double(m.count - 1)).rounded()))]
            if edges.last.map({ e > $0 }) ?? true { edges.append(e) }
        }
        return edges
    }

    /// The first index i such that `series[j] <= bound` for every j >= i (nil if the last value is
    /// above it): where a flip-fraction curve has settled.
    public static func settlingIndex(_ series: [Double], bound: Double) -> Int? {
        var i = series.count
        while i > 0 && series[i - 1] <= bound { i -= 1 }
        return i == series.count ? nil : i
    }
}
