// MARK: - Gated networks (paper B; docs/method.md, section 4)
//
// One architecture description drives four networks:
//   DNN       the ReLU network: q = W z_prev; G = 1[q > 0]; z = q * G (= relu(q)).
//   DGN       feature (gating) network = ReLU net on x_f; its pre-activations q_f make the gates
//             G = 1[q_f > 0] (hard) or sigmoid(beta q_f) (soft). The value network on x_v has no
//             ReLUs: q_v = W_v z_v,prev; z_v = q_v * G. Written DGN(x_f, x_v).
//   DLGN      as DGN with a deep LINEAR feature network (no ReLUs; BatchNorm kept; the architectures
//             here pool by averaging already, so there is no max-pool to replace).
//   DLGN-SF   "shallow features": the gates of layer l come from ONE linear map of the input itself,
//             average-pooled to layer l's resolution (conv 3x3 pad 1 for conv layers, a linear map of
//             the flattened input for FC layers; no BatchNorm).
// Layer permutation pi: the gates of feature layer l are applied in value layer pi(l).
//
// Each architecture's forward pass is written ONCE (see Architectures.swift) against a callback
// `activate(l, q)` that is called at every place a ReLU sits in the DNN. The callback decides what
// the layer is: relu(q) (DNN, DGN feature net), q (DLGN feature net), q * G (value net).
//
// Hard gates: 1[q_f > 0] enters the value network as a constant (`tape.input`, no gradient), so no
// gradient flows into the feature network through a hard gate (its derivative is 0 almost
// everywhere anyway). Soft gates are differentiable: softGate(q_f, beta) = sigmoid(beta q_f) on the
// tape, applied with gatedMul (its pullback reaches q_v and q_f in one pass), and both networks train
// together (DGN/DLGN from scratch in paper B).
//
// Parameters are `[String: Tensor]` named like PyTorch state dicts: "layers.0.weight" for the DNN,
// "feature.layers.0.weight" / "value.layers.0.weight" for gated networks, "feature.shallow.3.weight"
// for DLGN-SF gate maps. BatchNorm running statistics live in `statistics` (reference objects,
// updated in training mode by the batchNorm op).
import Foundation
import SIMDCore

/// Which network of paper B.
public enum GatedVariant: String, Sendable, CaseIterable {
    case dnn
    case dgn
    case dlgn
    case dlgnSF = "dlgn_sf"
}

/// The gate made from a feature pre-activation q_f.
public enum GateKind: Equatable, Sendable, CustomStringConvertible {
    /// 1[q_f > 0]; no gradient flows through it.
    case hard
    /// sigmoid(beta * q_f); paper B uses beta = 10.
    case soft(beta: Float)

    public static let paperB = GateKind.soft(beta: 10)

    public var description: String {
        switch self { case .hard: return "hard"; case .soft(let b): return "soft(beta=\(b))" }
    }
}

/// What the value network sees: the same input as the feature network (DGN(x, x)) or a constant
/// one tensor shaped like it (DGN(x, 1)).
public enum ValueInput: String, Sendable, CaseIterable {
    case same
    case ones
}

/// How a gated network is wired (ignored fields are harmless: a DNN has no value input).
///
/// ```swift
/// let c = GatingConfiguration.dlgn(valueInput: .ones)               // DLGN(x, 1), soft gates beta 10
/// let p = GatingConfiguration.dgn(valueInput: .same, gate: .hard, permutation: [1, 0, 3, 2])
/// ```
public struct GatingConfiguration: Equatable, Sendable, CustomStringConvertible {
    public var variant: GatedVariant
    public var gate: GateKind
    public var valueInput: ValueInput
    /// pi: the gates of feature layer l are used in value layer `permutation[l]`; nil = identity.
    public var permutation: [Int]?

    public init(variant: GatedVariant, gate: GateKind = .paperB, valueInput: ValueInput = .same, permutation: [Int]? = nil) {
        self.variant = variant; self.gate = gate; self.valueInput = valueInput; self.permutation = permutation
    }

    public static let dnn = GatingConfiguration(variant: .dnn, gate: .hard)
    public static func dgn(valueInput: ValueInput = .same, gate: GateKind = .paperB, permutation: [Int]? = nil) -> GatingConfiguration {
        GatingConfiguration(variant: .dgn, gate: gate, valueInput: valueInput, permutation: permutation)
    }
    public static func dlgn(valueInput: ValueInput = .ones, gate: GateKind = .paperB, permutation: [Int]? = nil) -> GatingConfiguration {
        GatingConfiguration(variant: .dlgn, gate: gate, valueInput: valueInput, permutation: permutation)
    }
    public static func dlgnSF(valueInput: ValueInput = .ones, gate: GateKind = .paperB, permutation: [Int]? = nil) -> GatingConfiguration {
        GatingConfiguration(variant: .dlgnSF, gate: gate, valueInput: valueInput, permutation: permutation)
    }

    /// Paper-style name: `DNN`, `DGN(x,x)`, `DLGN(x,1)`, `DLGN-SF(x,1)`, with the permutation if any.
    public var description: String {
        let base: String
        switch variant {
        case .dnn: return "DNN"
        case .dgn: base = "DGN"
        case .dlgn: base = "DLGN"
        case .dlgnSF: base = "DLGN-SF"
        }
        let v = valueInput == .same ? "x" : "1"
        let p = permutation.map { " pi=\($0)" } ?? ""
        return "\(base)(x,\(v)) \(gate)\(p)"
    }
}

// MARK: - The model

/// A DNN / DGN / DLGN / DLGN-SF of one architecture, with its parameters.
///
/// ```swift
/// var net = try GatedNetwork(architecture: .c4gap(inputChannels: 3, width: 128, classes: 10),
///                            configuration: .dlgn(valueInput: .ones), seed: 1)
/// let tape = Tape()
/// let out = try net.forward(on: tape, input: images, training: true)
/// let loss = try tape.crossEntropy(logits: out.logits, labels: labels)
/// ```
public struct GatedNetwork {
    public let architecture: GatedArchitecture
    public let configuration: GatingConfiguration
    /// All parameters by name (trainable and frozen).
    public var parameters: [String: Tensor]
    /// BatchNorm running statistics by layer name (e.g. "value.stem.bn"). Reference objects:
    /// use `copy()` for an independent network.
    public var statistics: [String: BatchNormStatistics]
    /// Parameters that get no gradient (NeurIPS 2020 regimes FR and FL freeze the feature network).
    public var frozen: Set<String>

    /// Builds and initialises the network like PyTorch's defaults: conv/linear weights
    /// kaiming-uniform(a = sqrt(5)) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)), biases the same bound,
    /// BatchNorm weight 1, bias 0, running mean 0, variance 1. Parameters are drawn from
    /// `SeededRNG(seed)` in the order the forward pass first uses them: feature network, then value
    /// network (so in a DGN the two are independent draws).
    public init(architecture: GatedArchitecture, configuration: GatingConfiguration, seed: UInt64) throws {
        self.architecture = architecture
        self.configuration = configuration
        self.parameters = [:]
        self.statistics = [:]
        self.frozen = []
        try validateConfiguration()
        let pass = NetworkPass(tape: Tape(recording: false), training: false, parameters: [:], statistics: [:],
                               frozen: [], declaring: SeededRNG(seed: seed))
        let probe = Tensor(zeros: [1] + architecture.inputShape)
        _ = try run(pass, featureInput: probe, valueInput: valueInputTensor(for: probe))
        parameters = pass.parameters
        statistics = pass.statistics
    }

    /// Same architecture and configuration with given parameters (e.g. from a checkpoint).
    public init(architecture: GatedArchitecture, configuration: GatingConfiguration,
                parameters: [String: Tensor], statistics: [String: BatchNormStatistics], frozen: Set<String> = []) throws {
        self.architecture = architecture; self.configuration = configuration
        self.parameters = parameters; self.statistics = statistics; self.frozen = frozen
        try validateConfiguration()
    }

    /// A deep copy (BatchNorm statistics are reference objects).
    public func copy() -> GatedNetwork {
        var c = self
        c.statistics = statistics.mapValues { BatchNormStatistics.make(mean: $0.mean, variance: $0.variance) }
        return c
    }

    /// Names of the parameters that the optimizer updates.
    public var trainableParameterNames: [String] { parameters.keys.filter { !frozen.contains($0) }.sorted() }

    /// Number of scalars in trainable parameters.
    public var trainableParameterCount: Int { trainableParameterNames.reduce(0) { $0 + parameters[$1]!.count } }

    // MARK: Forward

    /// The recorded forward pass.
    public struct Output {
        /// [N, classes].
        public let logits: Variable
        /// Tape variables of every parameter, by name (frozen ones do not require a gradient).
        public let parameters: [String: Variable]
        /// Pre-activations of the gating layers, in feature-layer order: q_f for DGN/DLGN/DLGN-SF,
        /// the DNN's own q for a DNN. Their hard gates are 1[q > 0].
        public let preActivations: [Variable]
        /// The gates applied (value networks only; empty for a DNN), in feature-layer order.
        public let gates: [Variable]
    }

    /// Runs the network on a batch `input` ([N] + architecture.inputShape; FC nets also take any
    /// example shape with `inputs` elements, e.g. MNIST [N, 1, 28, 28], and flatten it). The value network's
    /// input is `valueInput` if given, else the configuration's (`x` itself or a ones tensor).
    public func forward(on tape: Tape, input: Tensor, valueInput: Tensor? = nil, training: Bool) throws -> Output {
        guard input.rank >= 2, architecture.accepts(exampleShape: Array(input.shape.dropFirst())) else {
            throw EngineError.shapeMismatch("GatedNetwork.forward", input.shape, [-1] + architecture.inputShape,
                                            expected: "input batch [N] + the architecture's input shape")
        }
        let xv = valueInput ?? valueInputTensor(for: input)
        guard xv.shape == input.shape else {
            throw EngineError.shapeMismatch("GatedNetwork.forward", input.shape, xv.shape, expected: "value input shaped like the feature input")
        }
        let pass = NetworkPass(tape: tape, training: training, parameters: parameters, statistics: statistics,
                               frozen: frozen, declaring: nil)
        return try run(pass, featureInput: input, valueInput: xv)
    }

    func valueInputTensor(for x: Tensor) -> Tensor {
        configuration.valueInput == .ones ? Tensor(shape: x.shape, repeating: 1) : x
    }

    func validateConfiguration() throws {
        let layers = architecture.gatedLayerCount
        if let p = configuration.permutation {
            guard configuration.variant != .dnn else {
                throw EngineError(op: "GatedNetwork", "a layer permutation needs a gated network (DGN, DLGN, DLGN-SF), not a DNN")
            }
            guard p.count == layers, Set(p) == Set(0..<layers) else {
                throw EngineError(op: "GatedNetwork", "permutation \(p) is not a permutation of the \(layers) gated layers of \(architecture)")
            }
        }
        if configuration.variant == .dlgnSF, case .cifarResNet = architecture {
            throw EngineError(op: "GatedNetwork", "DLGN-SF is defined here for FC, C1GAP, C4GAP and VGG-16, not for \(architecture)")
        }
    }

    /// Wires feature and value passes through the architecture's single forward description.
    func run(_ pass: NetworkPass, featureInput: Tensor, valueInput: Tensor) throws -> Output {
        let tape = pass.tape
        let variant = configuration.variant
        var pre: [Variable] = []
        if variant == .dnn {
            pass.prefix = ""
            let x = tape.input(featureInput)
            let logits = try architecture.forward(pass, x, head: true) { _, q in
                pre.append(q)
                return try tape.relu(q)
            }!
            return Output(logits: logits, parameters: pass.variables, preActivations: pre, gates: [])
        }
        let xf = tape.input(featureInput)
        var gates: [Variable?] = Array(repeating: nil, count: architecture.gatedLayerCount)
        var gatePre: [Variable?] = gates   // the q_f each gate was made from
        if variant == .dgn || variant == .dlgn {
            pass.prefix = "feature."
            let linearFeatures = variant == .dlgn
            _ = try architecture.forward(pass, xf, head: false) { l, q in
                pre.append(q)
                gates[l] = try makeGate(tape, q)
                gatePre[l] = q
                return linearFeatures ? q : try tape.relu(q)
            }
        }
        let inverse = inversePermutation()
        pass.prefix = "value."
        let xv = tape.input(valueInput)
        var shallowPre = [Variable?](repeating: nil, count: architecture.gatedLayerCount)
        let logits = try architecture.forward(pass, xv, head: true) { m, q in
            let l = inverse[m]   // feature layer whose gates this value layer uses
            if variant == .dlgnSF {
                // Gate map of feature layer l evaluated at value layer m's resolution; the
                // permutation validation guarantees both layers share the shape (checked below).
                let qf = try shallowFeature(pass, l, xf, like: q)
                shallowPre[l] = qf
                gates[l] = try makeGate(tape, qf)
                gatePre[l] = qf
            }
            guard let g = gates[l] else {
                throw EngineError(op: "GatedNetwork", "internal: no gate for feature layer \(l)")
            }
            guard tape.shape(g) == tape.shape(q) else {
                throw EngineError.shapeMismatch("GatedNetwork (permutation \(configuration.permutation ?? []))", tape.shape(g), tape.shape(q),
                                                expected: "gates of feature layer \(l) shaped like value layer \(m)")
            }
            if case .soft(let beta) = configuration.gate, let qf = gatePre[l] {
                // q * sigmoid(beta q_f) with a one-pass pullback to q and q_f (same bits as mul).
                return try tape.gatedMul(q, gate: g, preActivation: qf, beta: beta)
            }
            return try tape.mul(q, g)
        }!
        if variant == .dlgnSF { pre = shallowPre.map { $0! } }
        return Output(logits: logits, parameters: pass.variables, preActivations: pre, gates: gates.map { $0! })
    }

    func makeGate(_ tape: Tape, _ q: Variable) throws -> Variable {
        switch configuration.gate {
        case .hard:
            // 1[q_f > 0] as a constant: no gradient through a hard gate.
            let v = tape.value(q)
            return tape.input(Tensor(shape: v.shape, scalars: v.scalars.map { $0 > 0 ? 1 : 0 }))
        case .soft(let beta):
            return try tape.softGate(q, beta: beta)   // = sigmoid(scale(q, by: beta)), one pass
        }
    }

    func inversePermutation() -> [Int] {
        let n = architecture.gatedLayerCount
        guard let p = configuration.permutation else { return Array(0..<n) }
        var inv = [Int](repeating: 0, count: n)
        for (l, m) in p.enumerated() { inv[m] = l }
        return inv
    }

    /// DLGN-SF gate pre-activation of layer l: one linear map of the input, average-pooled to the
    /// layer's resolution.
    func shallowFeature(_ pass: NetworkPass, _ l: Int, _ x: Variable, like q: Variable) throws -> Variable {
        let tape = pass.tape
        let qs = tape.shape(q), xs = tape.shape(x)
        let saved = pass.prefix
        pass.prefix = "feature."
        defer { pass.prefix = saved }
        if qs.count == 2 {
            let flat = xs.count == 2 ? x : try tape.flatten(x)
            return try pass.linear("shallow.\(l)", flat, out: qs[1], bias: architecture.usesBias)
        }
        guard xs.count == 4, xs[2] % qs[2] == 0, xs[3] % qs[3] == 0, xs[2] / qs[2] == xs[3] / qs[3] else {
            throw EngineError.shapeMismatch("DLGN-SF", xs, qs, expected: "input resolution an integer multiple of layer \(l)'s")
        }
        let f = xs[2] / qs[2]
        let pooled = f == 1 ? x : try tape.avgPool2d(x, kernel: f, stride: f)
        return try pass.conv("shallow.\(l)", pooled, out: qs[1], kernel: 3, stride: 1, padding: 1, bias: true)
    }
}

// MARK: - BatchNorm running statistics: fresh ones as PyTorch initialises them, and deep copies

extension BatchNormStatistics {
    /// Fresh running statistics (mean 0, variance 1) as PyTorch initialises them.
    static func fresh(channels: Int) -> BatchNormStatistics {
        make(mean: Tensor(zeros: [channels]), variance: Tensor(shape: [channels], repeating: 1))
    }

    static func make(mean: Tensor, variance: Tensor) -> BatchNormStatistics {
        BatchNormStatistics(mean: mean, variance: variance)
    }
}

// MARK: - NetworkPass: parameter lookup / lazy initialisation during one forward pass

/// The state of one forward pass: where parameters come from and which prefix ("feature." /
/// "value.") the layers being built belong to. In the declaring pass (model initialisation) missing
/// parameters are created from the RNG in first-use order.
final class NetworkPass {
    let tape: Tape
    let training: Bool
    var parameters: [String: Tensor]
    var statistics: [String: BatchNormStatistics]
    let frozen: Set<String>
    var rng: SeededRNG?
    var prefix = ""
    var variables: [String: Variable] = [:]

    init(tape: Tape, training: Bool, parameters: [String: Tensor], statistics: [String: BatchNormStatistics],
         frozen: Set<String>, declaring rng: SeededRNG?) {
        self.tape = tape; self.training = training; self.parameters = parameters; self.statistics = statistics
        self.frozen = frozen; self.rng = rng
    }

    /// The tape variable of parameter `prefix + name`, created with `initial` in a declaring pass.
    func parameter(_ name: String, shape: [Int], initial: (inout SeededRNG) -> Tensor) throws -> Variable {
        let key = prefix + name
        if let v = variables[key] { return v }
        if parameters[key] == nil, rng != nil {
            parameters[key] = initial(&rng!)
        }
        guard let t = parameters[key] else {
            throw WeightsError(file: "GatedNetwork", "missing parameter '\(key)' (shape \(shape))")
        }
        guard t.shape == shape else {
            throw WeightsError(file: "GatedNetwork", "parameter '\(key)' has shape \(t.shape), the architecture needs \(shape)")
        }
        let v = tape.input(t, requiresGrad: !frozen.contains(key))
        variables[key] = v
        return v
    }

    /// PyTorch's default bound for kaiming_uniform(a = sqrt(5)) weights and for biases: 1/sqrt(fan_in).
    static func defaultBound(fanIn: Int) -> Float { 1 / Float(fanIn).squareRoot() }

    func conv(_ name: String, _ x: Variable, out: Int, kernel: Int, stride: Int, padding: Int, bias: Bool) throws -> Variable {
        let cin = tape.shape(x)[1]
        let shape = [out, cin, kernel, kernel]
        let bound = NetworkPass.defaultBound(fanIn: cin * kernel * kernel)
        let w = try parameter(name + ".weight", shape: shape) { $0.uniformTensor(shape, bound: bound) }
        let b = bias ? try parameter(name + ".bias", shape: [out]) { $0.uniformTensor([out], bound: bound) } : nil
        return try tape.conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
    }

    func linear(_ name: String, _ x: Variable, out: Int, bias: Bool) throws -> Variable {
        let fin = tape.shape(x)[1]
        let shape = [out, fin]
        let bound = NetworkPass.defaultBound(fanIn: fin)
        let w = try parameter(name + ".weight", shape: shape) { $0.uniformTensor(shape, bound: bound) }
        let b = bias ? try parameter(name + ".bias", shape: [out]) { $0.uniformTensor([out], bound: bound) } : nil
        return try tape.linear(x, weight: w, bias: b)
    }

    func batchNorm(_ name: String, _ x: Variable) throws -> Variable {
        let c = tape.shape(x)[1]
        let w = try parameter(name + ".weight", shape: [c]) { _ in Tensor(shape: [c], repeating: 1) }
        let b = try parameter(name + ".bias", shape: [c]) { _ in Tensor(zeros: [c]) }
        let key = prefix + name
        if statistics[key] == nil, rng != nil { statistics[key] = .fresh(channels: c) }
        guard let running = statistics[key] else {
            throw WeightsError(file: "GatedNetwork", "missing BatchNorm running statistics '\(key)'")
        }
        return try tape.batchNorm(x, weight: w, bias: b, running: running, training: training)
    }
}
