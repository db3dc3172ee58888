// MARK: - FCNet: a fully connected ReLU classifier
//
//   x [N, ...] → flatten → fc1 → relu1 → … → fc<k> → relu<k> → fc<k+1> → logits [N, classes]
//
// The FC net beside the MNIST CNN in the path-stability and kernel-alignment recipes: only ReLU
// gates (no max-pools), so its gated-linear reading is exact. Layer names: fc1…fc<k+1>, relu1…relu<k>.
// Initialisation is PyTorch's default for Linear (weight and bias ~ U(-1/√fan_in, 1/√fan_in)).
import Foundation
import SIMDCore

public struct FCNet: Classifier {
    public static let name = "mnist_fc"

    /// Input size (flattened), hidden widths, classes.
    public let inputs: Int
    public let hidden: [Int]
    public let classes: Int
    public var parameters: [String: Tensor]

    /// (name, shape) of every parameter, in layer order.
    public static func shapes(inputs: Int, hidden: [Int], classes: Int) -> [(String, [Int])] {
        let sizes = [inputs] + hidden + [classes]
        return (1..<sizes.count).flatMap { l in [("fc\(l).weight", [sizes[l], sizes[l - 1]]), ("fc\(l).bias", [sizes[l]])] }
    }

    /// Fresh weights, PyTorch-default initialisation from `seed`.
    public init(inputs: Int, hidden: [Int], classes: Int, seed: UInt64) throws {
        guard inputs >= 1, classes >= 1, !hidden.isEmpty, hidden.allSatisfy({ $0 >= 1 }) else {
            throw EngineError(op: "FCNet", "need inputs >= 1, classes >= 1 and at least one hidden layer of width >= 1; got \(inputs), \(hidden), \(classes)")
        }
        self.inputs = inputs; self.hidden = hidden; self.classes = classes
        var rng = SeededRNG(seed: seed)
        var p: [String: Tensor] = [:]
        for (name, shape) in FCNet.shapes(inputs: inputs, hidden: hidden, classes: classes) {
            let fanIn = name.hasSuffix(".bias") ? p[name.replacingOccurrences(of: ".bias", with: ".weight")]!.shape[1] : shape[1]
            p[name] = rng.uniformTensor(shape, bound: 1 / Float(fanIn).squareRoot())
        }
        parameters = p
    }

    /// Given weights; names and shapes are checked.
    public init(inputs: Int, hidden: [Int], classes: Int, parameters: [String: Tensor]) throws {
        for (name, shape) in FCNet.shapes(inputs: inputs, hidden: hidden, classes: classes) {
            guard let t = parameters[name] else { throw EngineError(op: "FCNet", "missing parameter '\(name)'") }
            guard t.shape == shape else { throw EngineError(op: "FCNet", "parameter '\(name)' has shape \(t.shape), expected \(shape)") }
        }
        self.inputs = inputs; self.hidden = hidden; self.classes = classes; self.parameters = parameters
    }

    public func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy) throws -> Variable {
        try logits(tape, x, policy: policy, weights: { tape.input(self.parameters[$0]!) })
    }

    /// Logits with weights from `weights`; `observe` sees each ReLU's pre-activation, `activation`
    /// (when given) replaces each ReLU.
    public func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy, weights w: (String) -> Variable,
                       observe: ((String, Variable) -> Void)? = nil,
                       activation: ((String, Variable) throws -> Variable)? = nil) throws -> Variable {
        let s = tape.shape(x)
        guard s.count >= 2, s.dropFirst().reduce(1, *) == inputs else {
            throw EngineError(op: "FCNet", "input \(s) does not flatten to [N, \(inputs)]")
        }
        var h = try tape.flatten(x)
        for l in 1...hidden.count {
            h = try tape.linear(h, weight: w("fc\(l).weight"), bias: w("fc\(l).bias"))
            observe?("relu\(l)", h)
            h = try activation?("relu\(l)", h) ?? tape.relu(h, gate: policy.relu(for: "relu\(l)"))
        }
        let k = hidden.count + 1
        return try tape.linear(h, weight: w("fc\(k).weight"), bias: w("fc\(k).bias"))
    }
}

// MARK: - Training and probing

extension FCNet: TrainableModel {
    public var statistics: [String: BatchNormStatistics] { [:] }
    public var checkpointMetadata: [String: String] {
        ["architecture": FCNet.name, "hidden": hidden.map(String.init).joined(separator: ",")]
    }

    public func trainingForward(on tape: Tape, input: Tensor, training: Bool) throws -> (logits: Variable, parameters: [String: Variable]) {
        var vars: [String: Variable] = [:]
        for (name, t) in parameters { vars[name] = training ? tape.parameter(t) : tape.input(t) }
        return (try logits(tape, tape.input(input), policy: .vanilla, weights: { vars[$0]! }), vars)
    }
}

extension FCNet: PreActivationProbe {
    public func preActivations(_ x: Tensor) throws -> [(name: String, values: Tensor)] {
        let tape = Tape(recording: false)
        var seen: [(String, Variable)] = []
        _ = try logits(tape, tape.input(x), policy: .vanilla, weights: { tape.input(self.parameters[$0]!) },
                       observe: { seen.append(($0, $1)) })
        return seen.map { (name: $0.0, values: tape.value($0.1)) }
    }
}
