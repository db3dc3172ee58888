// MARK: - Faithfulness of an attribution map
//
// Three scores of how well an attribution map a (same shape as the input x) predicts what the model
// does when the input changes. f is a scalar score of one example: the target's logit, or its
// softmax probability (say which; the curves are shaped alike, the levels differ).
//
// Deletion (Petsiuk et al. 2018, RISE): rank the input's positions by attribution (summed over
//   channels, largest first) and replace them, a growing fraction at a time, by a baseline (0 here:
//   mid-grey for inputs in [-1, 1]). Score f after each step. A faithful map makes f fall fast:
//   LOWER area under the curve is better.
// Insertion (same paper): start from the baseline and put back the input's positions in the same
//   order. A faithful map makes f rise fast: HIGHER area is better.
//   Both curves are sampled at fractions k / steps of the positions, k = 0...steps, and the area is the
//   trapezoid rule over the fraction axis [0, 1].
// Infidelity (Yeh et al. 2019, "On the (in)fidelity and sensitivity of explanations"):
//     INFD(a, f, x) = E_I[ (I . a - (f(x) - f(x - I)))^2 ]
//   over random perturbations I. For a model that is linear around x, the gradient has infidelity 0
//   under every perturbation. The successor work of paper A reports Captum's OPTIMALLY SCALED variant:
//     beta = E[(I . a)(f(x) - f(x - I))] / E[(I . a)^2],   INFD_s = E[(beta I . a - (f(x) - f(x - I)))^2]
//   (scale-free: multiplying a by any c > 0 leaves it unchanged), with perturbations that replace
//   square patches of the image by uniform noise U[-1, 1] — patch after patch, each perturbation keeping
//   the earlier patches replaced, as its evaluation code does. Both variants are computed here; both
//   are LOWER-is-better.
import Foundation
import SIMDCore

/// Faithfulness metrics of attribution maps; every score is computed from an arbitrary batched
/// score function, so the metrics are model-agnostic and testable on a linear model.
///
/// ```swift
/// let f = Faithfulness.logitScore(model, target: 3)
/// let del = try Faithfulness.deletion(input: x, attribution: a, steps: 16, score: f)
/// del.area   // lower = more faithful
/// ```
public enum Faithfulness {
    /// Scores of a batch of inputs [K, ...] (one example's variants): one Double per row.
    public typealias Score = (Tensor) throws -> [Double]

    /// A deletion or insertion curve.
    public struct Curve: Sendable, Equatable {
        /// k / steps, k = 0...steps.
        public let fractions: [Double]
        public let scores: [Double]
        /// Trapezoid rule over `fractions`.
        public var area: Double { Faithfulness.area(fractions, scores) }
    }

    // MARK: Ranking

    /// Positions of one example's attribution [C, H, W] (or [D]: every entry its own position),
    /// ranked by the attribution summed over channels, largest first; ties keep index order.
    public static func ranking(_ attribution: Tensor) -> [Int] {
        let (channels, positions) = layout(attribution.shape)
        var total = [Double](repeating: 0, count: positions)
        for c in 0..<channels { for p in 0..<positions { total[p] += Double(attribution.scalars[c * positions + p]) } }
        return (0..<positions).sorted { total[$0] != total[$1] ? total[$0] > total[$1] : $0 < $1 }
    }

    /// (channels, positions per channel) of one example: [C, H, W] → (C, H·W); anything else → (1, count).
    static func layout(_ shape: [Int]) -> (Int, Int) {
        if shape.count == 3 { return (shape[0], shape[1] * shape[2]) }
        return (1, shape.reduce(1, *))
    }

    // MARK: Deletion and insertion

    /// Deletion curve of one example `input` [C, H, W] or [D] under `attribution` (same shape):
    /// positions are replaced by `baseline` in ranked order, `steps` + 1 points.
    public static func deletion(input x: Tensor, attribution a: Tensor, baseline: Float = 0, steps: Int, score: Score) throws -> Curve {
        try curve(from: x, to: Tensor(shape: x.shape, repeating: baseline), order: try checkedRanking(x, a), steps: steps, score: score)
    }

    /// Insertion curve: from the all-`baseline` input, positions of `input` are put back in ranked order.
    public static func insertion(input x: Tensor, attribution a: Tensor, baseline: Float = 0, steps: Int, score: Score) throws -> Curve {
        try curve(from: Tensor(shape: x.shape, repeating: baseline), to: x, order: try checkedRanking(x, a), steps: steps, score: score)
    }

    static func checkedRanking(_ x: Tensor, _ a: Tensor) throws -> [Int] {
        guard x.shape == a.shape else { throw EngineError.shapeMismatch("Faithfulness", x.shape, a.shape, expected: "an attribution shaped like its input") }
        return ranking(a)
    }

    /// Moves the positions `order` (all channels of each) from `start` to `end`, `steps` + 1 snapshots
    /// (k = 0: `start`; k = steps: `end`), scored in one batch.
    public static func curve(from start: Tensor, to end: Tensor, order: [Int], steps: Int, score: Score) throws -> Curve {
        guard steps >= 1 else { throw EngineError(op: "Faithfulness", "steps must be at least 1, got \(steps)") }
        let (channels, positions) = layout(start.shape)
        guard order.count == positions else { throw EngineError(op: "Faithfulness", "ranking has \(order.count) positions, input has \(positions)") }
        let size = start.count
        var batch = [Float](); batch.reserveCapacity((steps + 1) * size)
        var current = start.scalars
        var moved = 0
        for k in 0...steps {
            let target = Int((Double(k) * Double(positions) / Double(steps)).rounded())
            while moved < target {
                let p = order[moved]
                for c in 0..<channels { current[c * positions + p] = end.scalars[c * positions + p] }
                moved += 1
            }
            batch += current
        }
        let scores = try score(Tensor(shape: [steps + 1] + start.shape, scalars: batch))
        guard scores.count == steps + 1 else { throw EngineError(op: "Faithfulness", "score returned \(scores.count) values for \(steps + 1) inputs") }
        return Curve(fractions: (0...steps).map { Double($0) / Double(steps) }, scores: scores)
    }

    /// Trapezoid rule.
    public static func area(_ x: [Double], _ y: [Double]) -> Double {
        var s = 0.0
        for i in 1..<max(1, min(x.count, y.count)) { s += (x[i] - x[i - 1]) * (y[i] + y[i - 1]) / 2 }
        return s
    }

    // MARK: Infidelity

    /// The random perturbations I of the infidelity (x - I is what the model sees).
    public enum Perturbation: Sendable, Equatable {
        /// I ~ N(0, sigma^2) per entry (Yeh et al. 2019).
        case gaussian(sigma: Float)
        /// Square patches of side `size` (row-major over the image, all channels) replaced by uniform
        /// noise in [low, high], cumulatively within one sample: perturbation j has patches 0...j
        /// replaced. The successor work's setting: size 56 on 224x224, U[-1, 1], 5 samples.
        case uniformPatches(size: Int, low: Float, high: Float)
    }

    /// The perturbations I (same shape as one example `x` [C, H, W] or [D]) for `samples` draws.
    /// `gaussian` gives one I per sample; `uniformPatches` one per sample and patch.
    public static func perturbations(of x: Tensor, _ kind: Perturbation, samples: Int, seed: UInt64) throws -> [Tensor] {
        var rng = SeededRNG(seed: seed)
        var out: [Tensor] = []
        switch kind {
        case .gaussian(let sigma):
            for _ in 0..<samples { out.append(Tensor(shape: x.shape) { _ in sigma * rng.normal() }) }
        case .uniformPatches(let size, let low, let high):
            guard x.rank == 3, size >= 1 else { throw EngineError(op: "Faithfulness", "patch perturbations need one [C, H, W] example and a positive patch size") }
            let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
            for _ in 0..<samples {
                var perturbed = x.scalars
                for py in stride(from: 0, to: h, by: size) {
                    for px in stride(from: 0, to: w, by: size) {
                        for ch in 0..<c { for yy in py..<min(py + size, h) { for xx in px..<min(px + size, w) {
                            perturbed[(ch * h + yy) * w + xx] = rng.uniform(low, high)
                        } } }
                        out.append(Tensor(shape: x.shape, scalars: zip(x.scalars, perturbed).map { $0 - $1 }))
                    }
                }
            }
        }
        return out
    }

    /// Both infidelities of one example and attribution over the perturbations `I`.
    public struct Infidelity: Sendable, Equatable {
        /// Yeh et al. 2019: mean of (I . a - (f(x) - f(x - I)))^2.
        public let raw: Double
        /// Optimally scaled (Captum, the successor work): mean of (beta I . a - (f(x) - f(x - I)))^2.
        public let scaled: Double
        /// The optimal scale beta (1 when every I . a is 0).
        public let beta: Double
    }

    /// Infidelity of attribution `a` for one example `x` and its perturbations, with `score` f.
    public static func infidelity(input x: Tensor, attribution a: Tensor, perturbations: [Tensor], score: Score) throws -> Infidelity {
        guard x.shape == a.shape else { throw EngineError.shapeMismatch("Faithfulness.infidelity", x.shape, a.shape, expected: "an attribution shaped like its input") }
        guard !perturbations.isEmpty else { throw EngineError(op: "Faithfulness.infidelity", "need at least one perturbation") }
        var batch = x.scalars
        for p in perturbations {
            guard p.shape == x.shape else { throw EngineError.shapeMismatch("Faithfulness.infidelity", x.shape, p.shape, expected: "perturbations shaped like the input") }
            batch += zip(x.scalars, p.scalars).map { $0 - $1 }
        }
        let f = try score(Tensor(shape: [perturbations.count + 1] + x.shape, scalars: batch))
        guard f.count == perturbations.count + 1 else { throw EngineError(op: "Faithfulness.infidelity", "score returned \(f.count) values for \(perturbations.count + 1) inputs") }
        var a2 = 0.0, ab = 0.0, b2 = 0.0, raw = 0.0
        for (j, p) in perturbations.enumerated() {
            var dot = 0.0
            for i in 0..<p.count { dot += Double(p.scalars[i]) * Double(a.scalars[i]) }
            let drop = f[0] - f[j + 1]
            a2 += dot * dot; ab += dot * drop; b2 += drop * drop
            raw += (dot - drop) * (dot - drop)
        }
        let m = Double(perturbations.count)
        let beta = a2 != 0 ? ab / a2 : 1
        // (beta a - b)^2 summed = beta^2 a2 - 2 beta ab + b2; clamp tiny negative rounding.
        let scaled = max(0, beta * beta * a2 - 2 * beta * ab + b2) / m
        return Infidelity(raw: raw / m, scaled: scaled, beta: beta)
    }

    // MARK: Score functions of a classifier

    /// f = logit `target` of `model` (hard forward pass; the gate policy only affects backward passes).
    public static func logitScore(_ model: Classifier, target: Int) -> Score {
        { batch in try classScores(model, batch, target: target, softmax: false) }
    }

    /// f = softmax probability of `target`.
    public static func probabilityScore(_ model: Classifier, target: Int) -> Score {
        { batch in try classScores(model, batch, target: target, softmax: true) }
    }

    static func classScores(_ model: Classifier, _ batch: Tensor, target: Int, softmax: Bool) throws -> [Double] {
        let tape = Tape(recording: false)
        let logits = tape.value(try model.logits(tape, tape.input(batch), policy: .vanilla))
        let classes = logits.shape.last ?? 0
        guard target >= 0 && target < classes else { throw EngineError(op: "Faithfulness", "target \(target) out of range for \(classes) classes") }
        return (0..<(logits.shape.first ?? 0)).map { i in
            let row = logits.scalars[(i * classes)..<((i + 1) * classes)].map(Double.init)
            guard softmax else { return row[target] }
            let m = row.max()!
            let z = row.reduce(0) { $0 + Foundation.exp($1 - m) }
            return Foundation.exp(row[target] - m) / z
        }
    }
}
