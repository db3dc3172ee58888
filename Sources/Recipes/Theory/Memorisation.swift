// MARK: - The memorisation task (NeurIPS 2020 appendix)
//
// A deep gated network whose gates carry all the information: the input is the constant 1, the
// gates of each of the d - 1 hidden layers are drawn Bernoulli(1/2) independently PER EXAMPLE and
// frozen, and only the value network (no ReLUs: q = W z_prev; z = q ⊙ G) is trained, by full-batch
// gradient descent on the squared loss, to fit labels y ~ U[-1, 1]. Nothing generalises; how fast
// the loss falls measures how well-conditioned the neural path kernel of those gates is, and it is
// that kernel's spectrum (`MemorisationSpectrum`) which explains "depth helps up to a point".
import Foundation
import SIMDCore

/// n examples with their frozen random gates and labels.
///
/// ```swift
/// let task = MemorisationTask(examples: 200, width: 25, depth: 8, seed: 0)
/// let losses = try task.train(steps: 200, learningRate: 1e-2, seed: 1)   // losses[0] at initialisation
/// ```
public struct MemorisationTask: Sendable {
    public let examples: Int
    public let width: Int
    /// d: the network has d - 1 gated hidden layers.
    public let depth: Int
    /// Per hidden layer, gates [n, width] in {0, 1}.
    public let gates: [Tensor]
    /// y ~ U[-1, 1], [n, 1].
    public let labels: Tensor

    public init(examples n: Int, width: Int, depth: Int, seed: UInt64) {
        precondition(n >= 1 && width >= 1 && depth >= 2, "MemorisationTask: need n >= 1, width >= 1, depth >= 2")
        examples = n; self.width = width; self.depth = depth
        var rng = SeededRNG(seed: seed)
        gates = (0..<(depth - 1)).map { _ in Tensor(shape: [n, width]) { _ in rng.nextUInt64() >> 63 == 1 ? 1 : 0 } }
        labels = Tensor(shape: [n, 1]) { _ in rng.uniform(-1, 1) }
    }

    /// The NPK Gram of the task's gates (input 1), trace-normalised to trace n.
    public func gram() -> SymmetricMatrix {
        let k = try! PathKernel.gram(inputs: Tensor(shape: [examples, 1], repeating: 1), gates: gates)   // shapes consistent by construction
        return k.scaled(Double(examples) / max(k.trace, 1e-300))
    }

    /// Value weights: "layers.0.weight" [w, 1], "layers.l.weight" [w, w] (l = 1 ..< d - 1),
    /// "head.weight" [1, w]; every entry N(0, sigma^2), sigma = sqrt(2 / w) by default.
    public func initialWeights(seed: UInt64, sigma: Float? = nil) -> [String: Tensor] {
        let s = sigma ?? (2 / Float(width)).squareRoot()
        var rng = SeededRNG(seed: seed)
        var w: [String: Tensor] = ["layers.0.weight": rng.normalTensor([width, 1], std: s)]
        for l in 1..<(depth - 1) { w["layers.\(l).weight"] = rng.normalTensor([width, width], std: s) }
        w["head.weight"] = rng.normalTensor([1, width], std: s)
        return w
    }

    /// Outputs [n, 1] of the gated value network with `weights` on `tape`.
    public func forward(_ tape: Tape, weights: [String: Variable]) throws -> Variable {
        var h = tape.input(Tensor(shape: [examples, 1], repeating: 1))
        for l in 0..<(depth - 1) {
            guard let w = weights["layers.\(l).weight"] else { throw EngineError(op: "MemorisationTask", "missing layers.\(l).weight") }
            h = try tape.mul(try tape.linear(h, weight: w, bias: nil), tape.input(gates[l]))
        }
        guard let head = weights["head.weight"] else { throw EngineError(op: "MemorisationTask", "missing head.weight") }
        return try tape.linear(h, weight: head, bias: nil)
    }

    /// Mean squared error mean_s (out_s - y_s)^2 of `weights`.
    public func loss(_ weights: [String: Tensor]) throws -> Double {
        let tape = Tape(recording: false)
        let out = try forward(tape, weights: weights.mapValues { tape.input($0) })
        return Double(tape.value(try tape.mse(out, target: labels)).scalars[0])
    }

    /// Full-batch gradient descent on the mean squared error from `initialWeights(seed:)`; returns the
    /// loss before each step and after the last (steps + 1 values).
    public func train(steps: Int, learningRate: Float, seed: UInt64, sigma: Float? = nil) throws -> [Double] {
        var w = initialWeights(seed: seed, sigma: sigma)
        var losses: [Double] = []
        for _ in 0..<steps {
            let tape = Tape()
            var vars: [String: Variable] = [:]
            for (k, t) in w { vars[k] = tape.parameter(t) }
            let loss = try tape.mse(try forward(tape, weights: vars), target: labels)
            let l = Double(tape.value(loss).scalars[0])
            guard l.isFinite else { throw EngineError(op: "MemorisationTask", "loss diverged (\(l)) at depth \(depth); lower the learning rate") }
            losses.append(l)
            let g = try tape.backward(from: loss)
            for (k, v) in vars {
                guard let gk = g[v] else { continue }
                w[k] = Tensor(shape: gk.shape, scalars: zip(w[k]!.scalars, gk.scalars).map { $0 - learningRate * $1 })
            }
        }
        losses.append(try loss(w))
        return losses
    }
}
