// MARK: - Image classifiers (paper A's ImageNet ReLU networks)
//
// ResNet50, VGG11_BN and DenseNet121 as torchvision builds them, in eval mode, on the tape ops.
// Parameters carry torchvision's state_dict names ("layer1.0.conv1.weight", "features.0.bias",
// running statistics included), so pretrained weights load by name. Every ReLU and max-pool asks the
// `GatePolicy` for its backward gate under its torchvision module path ("layer1.0.relu",
// "features.3", "features.pool0"): the forward pass never changes, only the backward rule does.
import Foundation
import SIMDCore

/// A classifier of normalised images: `[N, 3, H, W]` → logits `[N, classes]`.
///
/// ```swift
/// var net = ResNet.resnet50()
/// try SyntheticWeights.fill(&net, seed: 50)
/// let tape = Tape()
/// let x = tape.input(images, requiresGrad: true)
/// let y = try net.logits(tape: tape, input: try ModelInput.imageNet.apply(tape: tape, x), policy: .vanilla)
/// ```
public protocol ImageClassifier {
    /// torchvision's constructor name, e.g. `resnet50`.
    var name: String { get }
    /// Every tensor of the state_dict except `num_batches_tracked`, in state_dict order.
    var parameterShapes: [(String, [Int])] { get }
    /// The current parameter values by name.
    var parameters: ParameterStore { get set }
    /// Replaces every parameter by the tensor of the same name; extra names are ignored.
    mutating func load(_ tensors: [String: Tensor]) throws
    /// Logits of an already normalised batch (see `ModelInput`). Weights enter the tape as
    /// constants unless `parameters.requiresGrad`, so an input pullback pays for no weight gradient.
    func logits(tape: Tape, input: Variable, policy: GatePolicy) throws -> Variable
}

extension ImageClassifier {
    public var parameterShapes: [(String, [Int])] { parameters.names.map { ($0, parameters.shapes[$0]!) } }
    /// The same list as `StateDict.matching` wants it.
    public var parameterSpecs: [ParameterSpec] { parameterShapes.map { ParameterSpec($0.0, $0.1) } }
    public mutating func load(_ tensors: [String: Tensor]) throws { try parameters.load(tensors, model: name) }
}

/// Paper A's model `backbone ∘ Normalize ∘ ((x + 1) / 2)` on pixels in [-1, 1], as the `Classifier`
/// that `ExplanationMethod` attributes.
///
/// ```swift
/// let m = PixelModel(ResNet.resnet50())
/// let g = try ExplanationMethod.gradient.attribute(m, images, targets: [0])
/// ```
public struct PixelModel<M: ImageClassifier>: Classifier {
    public var backbone: M
    public var input: ModelInput
    /// The classes' names when the weights came with them (`load_model`'s `classes:` file).
    public var classNames: [String]?
    public init(_ backbone: M, input: ModelInput = .imageNet, classNames: [String]? = nil) {
        self.backbone = backbone; self.input = input; self.classNames = classNames
    }

    public func logits(_ tape: Tape, _ x: Variable, policy: GatePolicy) throws -> Variable {
        guard tape.shape(x).count == 4, tape.shape(x)[1] == input.mean.count else {
            throw EngineError(op: backbone.name, "images must be [N, \(input.mean.count), H, W], got \(tape.shape(x))")
        }
        return try backbone.logits(tape: tape, input: try input.apply(tape: tape, x), policy: policy)
    }
}

/// A model's problem with its parameters: names the model and the tensor.
public struct ModelError: Error, CustomStringConvertible, Equatable {
    public let model: String
    public let message: String
    public init(model: String, _ message: String) { self.model = model; self.message = message }
    public var description: String { "\(model): \(message)" }
}

// MARK: - ParameterStore

/// Named tensors in state_dict order with their expected shapes (zeros until loaded).
public struct ParameterStore {
    public private(set) var names: [String] = []
    public private(set) var shapes: [String: [Int]] = [:]
    public private(set) var tensors: [String: Tensor] = [:]
    /// When true the forward pass records weights as parameters (gradients wanted: training).
    public var requiresGrad = false
    /// GEMM-ready conv weights, packed once and reused by every forward / pullback while the
    /// weights are constants (not used when `requiresGrad`). Copies of the store share it; it is
    /// never stale (an entry is matched to the tensor's storage, see SIMDCore's PackedWeights.swift).
    public let weightCache = PackedWeightCache()

    public init() {}

    /// Declares a tensor (zeros until set; the zeros are made only when read, so an architecture's
    /// names and shapes cost no memory). Declaration order is the state_dict order.
    mutating func declare(_ name: String, _ shape: [Int]) {
        precondition(shapes[name] == nil, "ParameterStore: '\(name)' declared twice")
        names.append(name); shapes[name] = shape
    }

    /// Declares a BatchNorm's four tensors: weight, bias, running_mean, running_var.
    mutating func declareBatchNorm(_ prefix: String, _ channels: Int) {
        for s in ["weight", "bias", "running_mean", "running_var"] { declare("\(prefix).\(s)", [channels]) }
    }

    /// The tensor `name`: its value once set, zeros of its declared shape before.
    public subscript(_ name: String) -> Tensor? { tensors[name] ?? shapes[name].map { Tensor(zeros: $0) } }

    /// Learnable parameters as torchvision counts them (`sum(p.numel() for p in model.parameters())`):
    /// BatchNorm running statistics are buffers, not parameters, so they are left out.
    public var learnableCount: Int {
        names.filter { !Self.isBuffer($0) }.reduce(0) { $0 + shapes[$1]!.reduce(1, *) }
    }

    /// Whether `name` is a state_dict buffer (BatchNorm statistics) rather than a learnable tensor.
    static func isBuffer(_ name: String) -> Bool {
        name.hasSuffix(".running_mean") || name.hasSuffix(".running_var") || name.hasSuffix(".num_batches_tracked")
    }

    /// Sets one tensor; its shape must match the declaration.
    public mutating func set(_ name: String, _ t: Tensor, model: String = "model") throws {
        guard let shape = shapes[name] else { throw ModelError(model: model, "has no parameter '\(name)'") }
        guard shape == t.shape else {
            throw ModelError(model: model, "parameter '\(name)' has shape \(shape), got \(t.shape)")
        }
        tensors[name] = t
    }

    /// Loads every declared tensor from `source`; a missing one is an error listing the first few.
    public mutating func load(_ source: [String: Tensor], model: String) throws {
        let missing = names.filter { source[$0] == nil }
        guard missing.isEmpty else {
            throw ModelError(model: model, "\(missing.count) parameter(s) missing from the weights, e.g. \(missing.prefix(5).joined(separator: ", "))")
        }
        for n in names { try set(n, source[n]!, model: model) }
    }
}

// MARK: - ModelInput

/// Paper A's input wrapper: pixels x in [-1, 1] → (x + 1) / 2 → Normalize(mean, std), fused into one
/// per-channel affine map y = x * 0.5/std + (0.5 - mean)/std.
public struct ModelInput: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]
    public init(mean: [Float], std: [Float]) { self.mean = mean; self.std = std }

    /// torchvision's ImageNet statistics.
    public static let imageNet = ModelInput(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])

    public var scale: [Float] { std.map { Float(0.5 / Double($0)) } }
    public var shift: [Float] { zip(mean, std).map { Float((0.5 - Double($0)) / Double($1)) } }

    public func apply(tape: Tape, _ x: Variable) throws -> Variable {
        try tape.channelAffine(x, scale: scale, shift: shift)
    }
}

// MARK: - Forward-pass helpers shared by the architectures

/// One forward pass: parameters become tape leaves, gates come from the policy by layer name.
struct Forward {
    let tape: Tape
    let params: ParameterStore
    let policy: GatePolicy
    let model: String

    func leaf(_ name: String) throws -> Variable {
        guard let t = params[name] else { throw ModelError(model: model, "has no parameter '\(name)'") }
        return tape.input(t, requiresGrad: params.requiresGrad)
    }

    func conv(_ x: Variable, _ name: String, stride: Int = 1, padding: Int = 0, bias: Bool = false) throws -> Variable {
        if !params.requiresGrad && tape.weightCache == nil { tape.weightCache = params.weightCache }
        return try tape.conv2d(x, weight: try leaf("\(name).weight"), bias: bias ? try leaf("\(name).bias") : nil,
                        stride: stride, padding: padding)
    }

    /// Eval-mode BatchNorm with the stored running statistics.
    func batchNorm(_ x: Variable, _ name: String) throws -> Variable {
        let stats = BatchNormStatistics(mean: params["\(name).running_mean"]!, variance: params["\(name).running_var"]!)
        return try tape.batchNorm(x, weight: try leaf("\(name).weight"), bias: try leaf("\(name).bias"),
                                  running: stats, training: false)
    }

    func linear(_ x: Variable, _ name: String) throws -> Variable {
        try tape.linear(x, weight: try leaf("\(name).weight"), bias: try leaf("\(name).bias"))
    }

    func relu(_ x: Variable, _ name: String) throws -> Variable {
        try tape.relu(x, gate: policy.relu(for: name))
    }

    func maxPool(_ x: Variable, _ name: String, kernel: Int, stride: Int, padding: Int = 0) throws -> Variable {
        try tape.maxPool2d(x, kernel: kernel, stride: stride, padding: padding, gate: policy.pool(for: name))
    }
}

// MARK: - By name

/// torchvision's ImageNet architectures by constructor name.
///
/// ```swift
/// var net = try ImageNetModels.make("densenet121")
/// let tuned = ImageNetModels.make(.resnet50, classes: 10)
/// ```
public enum ImageNetModels {
    public static var names: [String] { ImageNetArchitecture.names }

    public static func make(_ name: String, classes: Int = 1000) throws -> any ImageClassifier {
        guard let a = ImageNetArchitecture(rawValue: name) else {
            throw ModelError(model: name, "unknown architecture; known: \(names.joined(separator: ", "))")
        }
        return make(a, classes: classes)
    }

    public static func make(_ a: ImageNetArchitecture, classes: Int = 1000) -> any ImageClassifier {
        switch a {
        case .resnet18: return ResNet.resnet18(classes: classes)
        case .resnet34: return ResNet.resnet34(classes: classes)
        case .resnet50: return ResNet.resnet50(classes: classes)
        case .resnet101: return ResNet.resnet101(classes: classes)
        case .resnet152: return ResNet.resnet152(classes: classes)
        case .vgg11, .vgg13, .vgg16, .vgg19, .vgg11BN, .vgg13BN, .vgg16BN, .vgg19BN:
            return VGG.vgg(depth: a.vggDepth!, batchNorm: a.rawValue.hasSuffix("_bn"), classes: classes)
        case .densenet121: return DenseNet.densenet121(classes: classes)
        case .densenet161: return DenseNet.densenet161(classes: classes)
        case .densenet169: return DenseNet.densenet169(classes: classes)
        case .densenet201: return DenseNet.densenet201(classes: classes)
        }
    }
}
