// MARK: - The kernel machine of the stable gates (paper A's kernel-machine view)
//
// Paper A argues that when path stability holds, a ReLU network behaves like a kernel machine over
// its highly activated paths, f(x) ≈ <phi(x), v>, with the gates (which paths are open) settled by
// training and v the value weights, and that the excitation pullback is aligned with that machine's
// gradient. The paper states this in words and builds no such machine. This file builds one:
//
//   * gates g from checkpoints over the last part of training: on each probe input, each ReLU's
//     gate is the MEAN of 1[z > 0] over the checkpoints — its fixed state where it no longer
//     changes, its average activity where it still flips;
//   * f_KM(x) = the final model's layers with every ReLU replaced by the product g ⊙ z, the final
//     model's weights as value weights. With g held constant this is linear in x (affine with the
//     biases) through the ReLU layers; max-pools, where the model has them, keep their hard selection;
//   * its exact input gradient by backpropagation through g ⊙ z (d/dz = g).
//
// Why not the gates of the final model alone: a ReLU network with its own hard gates frozen at x is
// its local linear model, whose gradient is exactly the vanilla gradient — a degenerate comparison.
// Here the two differ exactly where training left gates unsettled.
import Foundation
import SIMDCore

/// A classifier whose ReLUs can be replaced by a given activation (the kernel machine's g ⊙ z).
public protocol GateReplaceable: Classifier, PreActivationProbe {
    /// Logits with each ReLU `name` computed as `activation(name, z)` in place of relu(z).
    func logits(_ tape: Tape, _ x: Variable, replacingReLUs activation: @escaping (String, Variable) throws -> Variable) throws -> Variable
}

extension SmallCNN: GateReplaceable {
    public func logits(_ tape: Tape, _ x: Variable, replacingReLUs activation: @escaping (String, Variable) throws -> Variable) throws -> Variable {
        try logits(tape, x, policy: .vanilla, weights: { tape.input(self.parameters[$0]!) }, activation: activation)
    }
}

extension FCNet: GateReplaceable {
    public func logits(_ tape: Tape, _ x: Variable, replacingReLUs activation: @escaping (String, Variable) throws -> Variable) throws -> Variable {
        try logits(tape, x, policy: .vanilla, weights: { tape.input(self.parameters[$0]!) }, activation: activation)
    }
}

/// The gates of a kernel machine on a fixed probe set: per ReLU layer, per (example, unit), the mean
/// gate state over training checkpoints.
///
/// ```swift
/// let km = try KernelMachine(checkpoints: lastPatterns)          // GatePattern per checkpoint
/// let (logits, grad) = try km.gradient(of: finalModel, images: probe, targets: labels)
/// let cos = KernelMachine.cosines(pullback, grad)                   // one per image
/// ```
public struct KernelMachine: Sendable {
    public let layers: [String]
    public let examples: Int
    /// Per layer, g in [0, 1] for every (example, unit), example-major.
    public let gates: [[Float]]

    public init(layers: [String], examples: Int, gates: [[Float]]) throws {
        guard layers.count == gates.count else {
            throw EngineError(op: "KernelMachine", "\(layers.count) layer names for \(gates.count) layers of gates")
        }
        for (l, g) in gates.enumerated() where examples == 0 || g.count % examples != 0 || !g.allSatisfy({ $0 >= 0 && $0 <= 1 }) {
            throw EngineError(op: "KernelMachine", "layer '\(layers[l])': \(g.count) gates for \(examples) examples, each must be in [0, 1]")
        }
        self.layers = layers; self.examples = examples; self.gates = gates
    }

    /// Mean gate state over `checkpoints` (gate patterns of the same model and probe set, e.g. over
    /// the last epoch, the final model last).
    public init(checkpoints: [GatePattern]) throws {
        guard let first = checkpoints.first else { throw EngineError(op: "KernelMachine", "no checkpoints") }
        var sums = first.preActivations.map { [Double](repeating: 0, count: $0.count) }
        for c in checkpoints {
            try c.checkComparable(first)
            for l in sums.indices { for i in sums[l].indices where c.preActivations[l][i] > 0 { sums[l][i] += 1 } }
        }
        let n = Double(checkpoints.count)
        try self.init(layers: first.layers, examples: first.examples, gates: sums.map { $0.map { Float($0 / n) } })
    }

    /// Per layer, the fraction of gates that are stable (g exactly 0 or 1 over the checkpoints).
    public var stableFractions: [Double] {
        gates.map { g in Double(g.reduce(0) { $0 + ($1 == 0 || $1 == 1 ? 1 : 0) }) / Double(max(g.count, 1)) }
    }

    /// Over all layers (each gate counts once).
    public var stableFraction: Double {
        let total = gates.reduce(0) { $0 + $1.count }
        let stable = gates.reduce(0) { $0 + $1.reduce(0) { $0 + ($1 == 0 || $1 == 1 ? 1 : 0) } }
        return Double(stable) / Double(max(total, 1))
    }

    /// The kernel machine's logits f_KM(x) and the exact input gradient of f_KM[i, targets[i]] for
    /// the probe images `images` (the same N examples, in the same order, as the gates).
    public func gradient<M: GateReplaceable>(of model: M, images: Tensor, targets: [Int]) throws -> (logits: Tensor, gradient: Tensor) {
        guard images.rank >= 2, images.shape[0] == examples, targets.count == examples else {
            throw EngineError(op: "KernelMachine", "gates are for \(examples) probe images; got images \(images.shape) and \(targets.count) targets")
        }
        let tape = Tape()
        let xv = tape.input(images, requiresGrad: true)
        let y = try model.logits(tape, xv, replacingReLUs: { name, z in
            guard let l = self.layers.firstIndex(of: name) else {
                throw EngineError(op: "KernelMachine", "the model has ReLU '\(name)', the gates are for \(self.layers)")
            }
            let shape = tape.shape(z)
            guard shape.reduce(1, *) == self.gates[l].count else {
                throw EngineError(op: "KernelMachine", "ReLU '\(name)' has \(shape.reduce(1, *)) units on this batch, the gates \(self.gates[l].count)")
            }
            return try tape.mul(z, tape.input(Tensor(shape: shape, scalars: self.gates[l])))
        })
        let logits = tape.value(y)
        let classes = logits.shape.last ?? 0
        var seed = Tensor(zeros: logits.shape)
        for (i, t) in targets.enumerated() {
            guard t >= 0 && t < classes else { throw EngineError(op: "KernelMachine", "target \(t) out of range for \(classes) classes") }
            seed.scalars[i * classes + t] = 1
        }
        let grads = try tape.backward(from: y, seed: seed)
        return (logits, grads[xv] ?? Tensor(zeros: images.shape))
    }

    // MARK: Alignment measures

    /// Cosine similarity of `a` and `b` [N, ...] per leading index (0 where either is all zeros).
    public static func cosines(_ a: Tensor, _ b: Tensor) throws -> [Double] {
        guard a.shape == b.shape, a.rank >= 1 else {
            throw EngineError(op: "KernelMachine.cosines", "shapes differ: \(a.shape) vs \(b.shape)")
        }
        let n = a.shape[0], size = n == 0 ? 0 : a.count / n
        return (0..<n).map { i in
            var ab = 0.0, aa = 0.0, bb = 0.0
            for k in (i * size)..<((i + 1) * size) {
                let x = Double(a.scalars[k]), y = Double(b.scalars[k])
                ab += x * y; aa += x * x; bb += y * y
            }
            return aa == 0 || bb == 0 ? 0 : ab / (aa * bb).squareRoot()
        }
    }

    /// Per image, the kernel machine's target logit as a fraction of the network's:
    /// f_KM[i, t_i] / f[i, t_i] (1 = reproduced exactly).
    public static func logitFractions(machine: Tensor, network: Tensor, targets: [Int]) throws -> [Double] {
        guard machine.shape == network.shape, machine.rank == 2, targets.count == machine.shape[0] else {
            throw EngineError(op: "KernelMachine.logitFractions", "logits \(machine.shape) vs \(network.shape), \(targets.count) targets")
        }
        let c = machine.shape[1]
        return targets.enumerated().map { i, t in Double(machine.scalars[i * c + t]) / Double(network.scalars[i * c + t]) }
    }

    /// Per image, ‖f_KM − f‖ / ‖f‖ over the whole logit vector (0 = reproduced exactly).
    public static func logitErrors(machine: Tensor, network: Tensor) throws -> [Double] {
        guard machine.shape == network.shape, machine.rank == 2 else {
            throw EngineError(op: "KernelMachine.logitErrors", "logits \(machine.shape) vs \(network.shape)")
        }
        let c = machine.shape[1]
        return (0..<machine.shape[0]).map { i in
            var d = 0.0, f = 0.0
            for k in (i * c)..<((i + 1) * c) {
                let a = Double(machine.scalars[k]), b = Double(network.scalars[k])
                d += (a - b) * (a - b); f += b * b
            }
            return f == 0 ? (d == 0 ? 0 : .infinity) : (d / f).squareRoot()
        }
    }
}
