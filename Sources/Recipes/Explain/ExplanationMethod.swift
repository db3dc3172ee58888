// MARK: - Explanation methods
//
// One registry, stable names (what recipes and `runner list methods` use):
//   gradient               d logit_t / d x with hard gates (vanilla gradient)
//   excitation_pullback    the same backward pass with soft gates: ReLU dy * g(z/T) with
//                          g = sigmoid (paper A) or normal_cdf (successor), and the surrogate
//                          soft max-pool (paper A) — the forward pass is unchanged.
//                          NOT Zennit's "excitation backprop" (Zhang et al. 2016, a probabilistic
//                          winner-take-all LRP-like rule): different method, similar name.
//   input_x_gradient       x ⊙ (base method's attribution)
//   smoothgrad             mean over n noisy copies x + N(0, sigma²) of the base attribution (seeded)
//   integrated_gradients   (x - x') ⊙ mean_k base(x' + (k - 1/2)/m · (x - x')), k = 1..m (midpoint rule)
import Foundation
import SIMDCore

/// The explanation methods a recipe can name (one per case of `ExplanationMethod`).
enum MethodName: String, CaseIterable {
    case gradient
    case excitationPullback = "excitation_pullback"
    case inputXGradient = "input_x_gradient"
    case smoothgrad
    case integratedGradients = "integrated_gradients"
}

/// The backward gate of every ReLU under an excitation pullback.
enum ExcitationGate: String, RecipeName {
    case hard
    case sigmoid
    case normalCDF = "normal_cdf"
    static let what = "gate"
}

/// A model whose logits can be pulled back to its input under a gate policy.
public protocol Classifier {
    /// Logits [N, classes] for x [N, C, H, W]; every ReLU / max-pool takes its backward gate from `policy`.
    func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy) throws -> Variable
    /// The names of the logits' classes, when the model carries them (else the data set's are used).
    var classNames: [String]? { get }
}

extension Classifier {
    public var classNames: [String]? { nil }

    /// Logits [N, classes] of x [N, C, H, W] with hard gates, `batchSize` images at a time, each
    /// batch on its own inference tape. A tape keeps every layer's output until it is dropped, so
    /// one tape over all N images holds N images' activations at once (ResNet50 at 224x224: about
    /// 150 MB per image; fig1 at paper scale evaluates 30 perturbed images).
    ///
    /// ```swift
    /// let after = try net.inferenceLogits(perturbed, batchSize: 6)   // [30, 1000]
    /// ```
    public func inferenceLogits(_ x: Tensor, batchSize: Int) throws -> Tensor {
        guard x.rank >= 1, batchSize > 0 else {
            throw EngineError(op: "inferenceLogits", "x must have a batch dimension and batchSize > 0; got \(x.shape), \(batchSize)")
        }
        let n = x.shape[0], per = n > 0 ? x.count / n : 0
        var out = [Float](), classes = 0
        for start in stride(from: 0, to: n, by: batchSize) {
            let end = Swift.min(start + batchSize, n)
            var shape = x.shape; shape[0] = end - start
            let batch = Tensor(shape: shape, scalars: Array(x.scalars[(start * per)..<(end * per)]))
            let tape = Tape(recording: false)
            let logits = tape.value(try self.logits(tape, tape.input(batch), policy: .vanilla))
            classes = logits.shape.last ?? 0
            out += logits.scalars
        }
        return Tensor(shape: [n, classes], scalars: out)
    }
}

/// An attribution method, built from its recipe name and options.
///
/// ```swift
/// let m = try ExplanationMethod.named("excitation_pullback", options: ["temperature": "0.3"])
/// let maps = try m.attribute(model, images, targets: [0, 482])   // same shape as images
/// ```
public indirect enum ExplanationMethod: Sendable, CustomStringConvertible {
    case gradient
    case excitationPullback(GatePolicy)
    case inputXGradient(ExplanationMethod)
    case smoothGrad(ExplanationMethod, samples: Int, sigma: Float, seed: UInt64)
    case integratedGradients(ExplanationMethod, baseline: Float, steps: Int)

    public struct Entry: Sendable { public let name: String; public let summary: String; public let options: [String] }

    public static let catalogue: [Entry] = [
        Entry(name: "gradient", summary: "vanilla input gradient of the target logit (hard gates 1[z>0])", options: []),
        Entry(name: "excitation_pullback", summary: "input gradient with soft gates sigmoid(z/T) or Phi(z/T) and soft max-pool (paper A); not Zennit's excitation backprop",
              options: ["gate (sigmoid|normal_cdf)", "temperature (0.3)", "soft_pool (true)", "detach_pool_weights (false)", "hard_layers ([])"]),
        Entry(name: "input_x_gradient", summary: "input ⊙ attribution of `base` (default gradient)", options: ["base"]),
        Entry(name: "smoothgrad", summary: "mean attribution of `base` over noisy inputs, seeded", options: ["base", "samples (16)", "sigma (0.15)", "seed"]),
        Entry(name: "integrated_gradients", summary: "(x - baseline) ⊙ mean of `base` along the straight path (midpoint rule)", options: ["base", "baseline (0)", "steps (32)"]),
    ]

    public static var names: [String] { catalogue.map(\.name) }

    public var name: String {
        switch self {
        case .gradient: return "gradient"
        case .excitationPullback: return "excitation_pullback"
        case .inputXGradient: return "input_x_gradient"
        case .smoothGrad: return "smoothgrad"
        case .integratedGradients: return "integrated_gradients"
        }
    }

    public var description: String {
        switch self {
        case .gradient: return "gradient"
        case .excitationPullback(let p): return "excitation_pullback(relu \(p.relu), pool \(p.pool))"
        case .inputXGradient(let b): return "input_x_gradient(\(b))"
        case .smoothGrad(let b, let n, let s, _): return "smoothgrad(\(b), n=\(n), sigma=\(s))"
        case .integratedGradients(let b, let x0, let m): return "integrated_gradients(\(b), baseline=\(x0), steps=\(m))"
        }
    }

    /// Builds a method from a recipe node: either a name (`gradient`) or a mapping
    /// `{method: excitation_pullback, temperature: 0.3, …}`.
    public static func parse(_ node: YAMLNode, seed: UInt64 = 0) throws -> ExplanationMethod {
        if case .scalar = node.kind { return try named(try node.string, node: node, seed: seed) }
        let name = try node.string(at: "method")
        return try named(name, node: node, seed: seed)
    }

    static func named(_ name: String, node: YAMLNode, seed: UInt64) throws -> ExplanationMethod {
        guard let kind = MethodName(rawValue: name) else {
            var msg = "unknown explanation method '\(name)'"
            if name.replacingOccurrences(of: "-", with: "_").lowercased().hasPrefix("excitation_backprop") {
                msg += " — that is Zennit's excitation backprop (Zhang et al. 2016), a different method; paper A's method is 'excitation_pullback'"
            } else if let near = nearestName(to: name, candidates: names) { msg += "; did you mean '\(near)'?" }
            msg += " (methods: \(names.joined(separator: ", ")))"
            throw node.error(msg)
        }
        let isMap: Bool = { if case .mapping = node.kind { return true }; return false }()
        func opt(_ k: String) throws -> YAMLNode? { isMap ? try node.optional(k) : nil }
        func base() throws -> ExplanationMethod { try opt("base").map { try parse($0, seed: seed) } ?? .gradient }
        let allowed: [String]
        let method: ExplanationMethod
        switch kind {
        case .gradient:
            allowed = ["method"]; method = .gradient
        case .excitationPullback:
            allowed = ["method", "gate", "temperature", "soft_pool", "detach_pool_weights", "hard_layers"]
            let t = Float(try opt("temperature")?.double ?? 0.3)
            guard t > 0 else { throw node.error("temperature must be positive, got \(t)") }
            var policy: GatePolicy
            do {
                let gate = try opt("gate").map { try ExcitationGate.parse($0) } ?? .sigmoid
                policy = try GatePolicy.excitation(temperature: t, gate: gate.rawValue,
                                                   softPool: try opt("soft_pool")?.bool ?? true,
                                                   detachPoolWeights: try opt("detach_pool_weights")?.bool ?? false)
            } catch let e as EngineError { throw node.error(e.message) }
            for l in try opt("hard_layers")?.array ?? [] { policy.reluOverrides[try l.string] = .hard }
            method = .excitationPullback(policy)
        case .inputXGradient:
            allowed = ["method", "base"]; method = .inputXGradient(try base())
        case .smoothgrad:
            allowed = ["method", "base", "samples", "sigma", "seed"]
            let n = try opt("samples")?.int ?? 16
            guard n >= 1 else { throw node.error("samples must be at least 1, got \(n)") }
            method = .smoothGrad(try base(), samples: n, sigma: Float(try opt("sigma")?.double ?? 0.15),
                                 seed: UInt64(try opt("seed")?.int ?? Int(truncatingIfNeeded: seed)))
        case .integratedGradients:
            allowed = ["method", "base", "baseline", "steps"]
            let m = try opt("steps")?.int ?? 32
            guard m >= 1 else { throw node.error("steps must be at least 1, got \(m)") }
            method = .integratedGradients(try base(), baseline: Float(try opt("baseline")?.double ?? 0), steps: m)
        }
        // `label` names the method in grids and metrics (e.g. "normal_cdf T=0.6").
        if isMap { try node.checkKeys(allowed: allowed + ["label"]) }
        return method
    }

    // MARK: Attribution

    /// The attribution of logit `targets[i]` of image `i`, same shape as `x` [N, C, H, W].
    public func attribute(_ model: Classifier, _ x: Tensor, targets: [Int]) throws -> Tensor {
        switch self {
        case .gradient:
            return try Self.pullback(model, x, targets: targets, policy: .vanilla).gradient
        case .excitationPullback(let policy):
            return try Self.pullback(model, x, targets: targets, policy: policy).gradient
        case .inputXGradient(let b):
            var g = try b.attribute(model, x, targets: targets)
            for i in 0..<g.count { g.scalars[i] *= x.scalars[i] }
            return g
        case .smoothGrad(let b, let n, let sigma, let seed):
            var rng = SeededRNG(seed: seed)
            var acc = Tensor(zeros: x.shape)
            for _ in 0..<n {
                var noisy = x
                for i in 0..<noisy.count { noisy.scalars[i] += sigma * rng.normal() }
                let g = try b.attribute(model, noisy, targets: targets)
                for i in 0..<acc.count { acc.scalars[i] += g.scalars[i] }
            }
            for i in 0..<acc.count { acc.scalars[i] /= Float(n) }
            return acc
        case .integratedGradients(let b, let x0, let m):
            var acc = Tensor(zeros: x.shape)
            for k in 0..<m {
                let a = (Float(k) + 0.5) / Float(m)
                var xi = x
                for i in 0..<xi.count { xi.scalars[i] = x0 + a * (x.scalars[i] - x0) }
                let g = try b.attribute(model, xi, targets: targets)
                for i in 0..<acc.count { acc.scalars[i] += g.scalars[i] }
            }
            for i in 0..<acc.count { acc.scalars[i] *= (x.scalars[i] - x0) / Float(m) }
            return acc
        }
    }

    /// Logits and the input gradient of `sum_i logits[i, targets[i]]` under `policy`. The
    /// weights are constants on the tape, so no weight gradient is computed.
    public static func pullback(_ model: Classifier, _ x: Tensor, targets: [Int], policy: GatePolicy) throws -> (logits: Tensor, gradient: Tensor) {
        guard x.rank >= 2, targets.count == x.shape[0] else {
            throw EngineError(op: "pullback", "need one target per image: input \(x.shape), \(targets.count) targets")
        }
        guard x.isFinite else { throw EngineError.nonFinite("pullback", "input", shape: x.shape) }
        let tape = Tape()
        let xv = tape.input(x, requiresGrad: true)
        let y = try model.logits(tape, xv, policy: policy)
        let logits = tape.value(y)
        let classes = logits.shape.last ?? 0
        var seed = Tensor(zeros: logits.shape)
        for (i, t) in targets.enumerated() {
            guard t >= 0 && t < classes else { throw EngineError(op: "pullback", "target \(t) out of range for \(classes) classes") }
            seed.scalars[i * classes + t] = 1
        }
        let grads = try tape.backward(from: y, seed: seed)
        return (logits, grads[xv] ?? Tensor(zeros: x.shape))
    }
}
