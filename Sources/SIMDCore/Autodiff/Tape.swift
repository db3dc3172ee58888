// MARK: - Tape: reverse-mode autodiff
//
// A Wengert list. Every op appends a node holding its output value and, when any input needs a
// gradient, a pullback closure that maps the output's gradient to the inputs' gradients. The
// backward pass walks the list once in reverse.
//
// Pay only for what is asked: a node `needsGrad` iff one of its inputs does; leaves decide
// (`input(_:requiresGrad:)`, `parameter(_:)`). An excitation pullback marks the image as
// requiring a gradient and the weights as constants, so no weight gradient is ever computed.
// Pullbacks receive `needs[i]` and return nil for inputs that need nothing.

/// Handle to a value recorded on a `Tape`.
public struct Variable: Hashable, Sendable {
    public let id: Int
}

/// A recorded computation and its reverse pass.
///
/// ```swift
/// let tape = Tape()
/// let x = tape.input(image, requiresGrad: true)
/// let y = try tape.relu(try tape.linear(x, weight: w, bias: b), gate: .sigmoid(temperature: 0.3))
/// let grads = try tape.backward(from: y, seed: Tensor(shape: y.shape..., repeating: 1))
/// let pullback = grads[x]!
/// ```
public final class Tape {
    /// `(gradient of output, needs[i]) -> gradient of input i (nil where needs[i] is false)`.
    public typealias Pullback = (_ outputGrad: Tensor, _ needs: [Bool]) -> [Tensor?]

    struct Node {
        var value: Tensor
        let inputs: [Int]
        let needsGrad: Bool
        let pullback: Pullback?
    }

    private(set) var nodes: [Node] = []

    /// When false, ops record values only (no pullbacks): pure inference.
    public let recording: Bool

    /// Packed GEMM panels of constant conv weights, reused across tapes when the same cache is
    /// passed to each (PGA steps, pullbacks of a fixed model). nil: weights are packed per call.
    /// Never stale: see PackedWeights.swift. Leave nil when weights change every step (training).
    /// A model may attach its own cache when it records its constant weights.
    public var weightCache: PackedWeightCache?

    public init(recording: Bool = true, weightCache: PackedWeightCache? = nil) {
        self.recording = recording
        self.weightCache = weightCache
    }

    // MARK: Leaves

    /// A leaf: an image, a batch of data, or a constant.
    public func input(_ value: Tensor, requiresGrad: Bool = false) -> Variable {
        append(Node(value: value, inputs: [], needsGrad: requiresGrad && recording, pullback: nil))
    }

    /// A trainable parameter: a leaf whose gradient is wanted.
    public func parameter(_ value: Tensor) -> Variable { input(value, requiresGrad: true) }

    // MARK: Access

    public func value(_ v: Variable) -> Tensor { nodes[v.id].value }
    public func shape(_ v: Variable) -> [Int] { nodes[v.id].value.shape }
    public func needsGrad(_ v: Variable) -> Bool { nodes[v.id].needsGrad }
    public var count: Int { nodes.count }

    // MARK: Recording ops

    /// Records an op's output. `pullback` is stored only if some input needs a gradient.
    /// Ops are written as: validate shapes (throw EngineError) → run the forward kernel →
    /// `record(output, inputs: [...]) { dy, needs in [...] }`.
    @discardableResult
    public func record(_ value: Tensor, inputs: [Variable], pullback: @escaping Pullback) -> Variable {
        let needs = recording && inputs.contains { nodes[$0.id].needsGrad }
        return append(Node(value: value, inputs: inputs.map(\.id), needsGrad: needs,
                           pullback: needs ? pullback : nil))
    }

    private func append(_ n: Node) -> Variable {
        nodes.append(n)
        return Variable(id: nodes.count - 1)
    }

    // MARK: Backward

    /// Gradients of `sum(seed * value(output))` with respect to every node that needs one.
    public func backward(from output: Variable, seed: Tensor) throws -> Gradients {
        guard seed.shape == shape(output) else {
            throw EngineError.shapeMismatch("Tape.backward", seed.shape, shape(output),
                                            expected: "seed gradient with the output's shape")
        }
        var grads = [Tensor?](repeating: nil, count: nodes.count)
        grads[output.id] = seed
        for id in stride(from: output.id, through: 0, by: -1) {
            guard let g = grads[id], let pb = nodes[id].pullback else { continue }
            let inputs = nodes[id].inputs
            let needs = inputs.map { nodes[$0].needsGrad }
            let gin = pb(g, needs)
            for (k, i) in inputs.enumerated() where needs[k] {
                guard let gi = gin[k] else { continue }
                // Fan-in (e.g. a DLGN pre-activation feeding a conv and a gate): SIMD, both cores.
                if let acc = grads[i] { grads[i] = Elementwise.add(acc, gi) } else { grads[i] = gi }
            }
            if id != output.id { grads[id] = nil }   // free intermediate gradients early
        }
        return Gradients(storage: grads)
    }

    /// Gradient of the scalar `output` (shape [] or [1]).
    public func backward(from output: Variable) throws -> Gradients {
        try backward(from: output, seed: Tensor(shape: shape(output), repeating: 1))
    }
}

/// The result of `Tape.backward`: gradients of leaves (and the output) by variable.
public struct Gradients {
    fileprivate var storage: [Tensor?]
    public subscript(_ v: Variable) -> Tensor? { v.id < storage.count ? storage[v.id] : nil }
}
