// MARK: - SmallCNN: the offline recipe's MNIST network
//
//   x [N,1,28,28] in [-1,1]
//   conv1 3x3 1→16 pad 1 → relu1 → pool1 max 2x2   [N,16,14,14]
//   conv2 3x3 16→32 pad 1 → relu2 → pool2 max 2x2  [N,32,7,7]
//   flatten → fc1 1568→64 → relu3 → fc2 64→10      [N,10]
//
// Small enough to train in seconds on 2 cores, deep enough (three ReLU layers and two max-pools)
// that the excitation pullback's soft gates visibly change the input gradient. Layer names are
// what a GatePolicy override refers to. Initialisation is PyTorch's default for Conv2d/Linear
// (kaiming_uniform(a=√5): weight and bias ~ U(-1/√fan_in, 1/√fan_in)), drawn from SeededRNG.
import Foundation
import SIMDCore

public struct SmallCNN: Classifier {
    public static let name = "mnist_cnn"
    public static let shapes: [(String, [Int])] = [
        ("conv1.weight", [16, 1, 3, 3]), ("conv1.bias", [16]),
        ("conv2.weight", [32, 16, 3, 3]), ("conv2.bias", [32]),
        ("fc1.weight", [64, 32 * 7 * 7]), ("fc1.bias", [64]),
        ("fc2.weight", [10, 64]), ("fc2.bias", [10]),
    ]

    public var parameters: [String: Tensor]

    /// Fresh weights, PyTorch-default initialisation from `seed`.
    public init(seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        var p: [String: Tensor] = [:]
        for (name, shape) in SmallCNN.shapes {
            let fanIn = name.hasSuffix(".bias") ? SmallCNN.shapes.first { $0.0 == name.replacingOccurrences(of: ".bias", with: ".weight") }!.1.dropFirst().reduce(1, *)
                                                : shape.dropFirst().reduce(1, *)
            p[name] = rng.uniformTensor(shape, bound: 1 / Float(fanIn).squareRoot())
        }
        parameters = p
    }

    /// Weights from a checkpoint; names and shapes are checked.
    public init(parameters: [String: Tensor]) throws {
        for (name, shape) in SmallCNN.shapes {
            guard let t = parameters[name] else { throw EngineError(op: "SmallCNN", "missing parameter '\(name)'") }
            guard t.shape == shape else { throw EngineError(op: "SmallCNN", "parameter '\(name)' has shape \(t.shape), expected \(shape)") }
        }
        self.parameters = parameters
    }

    /// Logits with the given backward gates; weights enter the tape as constants.
    public func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy) throws -> Variable {
        try logits(tape, x, policy: policy, weights: { tape.input(self.parameters[$0]!) })
    }

    /// Logits with weights supplied by `weights` (parameters on the tape when training). `observe`
    /// sees each ReLU's pre-activation with the ReLU's name (gate patterns, path stability);
    /// `activation`, when given, replaces each ReLU (the kernel machine's fixed gates).
    public func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy, weights w: (String) -> Variable,
                       observe: ((String, Variable) -> Void)? = nil,
                       activation: ((String, Variable) throws -> Variable)? = nil) throws -> Variable {
        func relu(_ name: String, _ z: Variable) throws -> Variable {
            observe?(name, z)
            return try activation?(name, z) ?? tape.relu(z, gate: policy.relu(for: name))
        }
        var h = try tape.conv2d(x, weight: w("conv1.weight"), bias: w("conv1.bias"), stride: 1, padding: 1)
        h = try relu("relu1", h)
        h = try tape.maxPool2d(h, kernel: 2, stride: 2, gate: policy.pool(for: "pool1"))
        h = try tape.conv2d(h, weight: w("conv2.weight"), bias: w("conv2.bias"), stride: 1, padding: 1)
        h = try relu("relu2", h)
        h = try tape.maxPool2d(h, kernel: 2, stride: 2, gate: policy.pool(for: "pool2"))
        h = try tape.flatten(h)
        h = try tape.linear(h, weight: w("fc1.weight"), bias: w("fc1.bias"))
        h = try relu("relu3", h)
        return try tape.linear(h, weight: w("fc2.weight"), bias: w("fc2.bias"))
    }
}

// MARK: - Training

extension SmallCNN: TrainableModel {
    public var statistics: [String: BatchNormStatistics] { [:] }
    public var checkpointMetadata: [String: String] { ["architecture": SmallCNN.name] }

    /// Training uses hard gates: the soft gates change only how an explanation is pulled back.
    public func trainingForward(on tape: Tape, input: Tensor, training: Bool) throws -> (logits: Variable, parameters: [String: Variable]) {
        var vars: [String: Variable] = [:]
        for (name, t) in parameters { vars[name] = training ? tape.parameter(t) : tape.input(t) }
        let x = tape.input(input)
        return (try logits(tape, x, policy: .vanilla, weights: { vars[$0]! }), vars)
    }
}
