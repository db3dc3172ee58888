// MARK: - Synthetic weights (bit-identical to reference/pullbacks/make_pullback_goldens.py)
//
// Deterministic stand-in weights for tests and benchmarks, drawn with SeededRNG (SplitMix64) in
// state_dict order, each tensor row-major, uniform(lo, hi) = lo + (hi - lo) * u in Float:
//   rank >= 2 (conv / linear weight)  ±Float(sqrt(6 / fan_in)); the last linear layer ±Float(sqrt(3 / fan_in))
//   running_var                       [0.5, 1.5)
//   running_mean                      [-0.1, 0.1)
//   rank-1 weight (BatchNorm gamma)   `gamma` (per architecture, keeps activations O(1) through depth)
//   rank-1 bias                       [-0.1, 0.1)
// The Python script documents the same recipe; the pullback golden tests check the first and last
// tensors bit for bit.
import Foundation
import SIMDCore

public enum SyntheticWeights {
    /// Per-architecture choices of the recipe.
    public struct Recipe: Equatable, Sendable {
        public var gamma: (Float, Float)
        /// The state_dict name of the output layer's weight (gets the smaller bound).
        public var lastLinear: String
        public init(gamma: (Float, Float), lastLinear: String) { self.gamma = gamma; self.lastLinear = lastLinear }
        public static func == (a: Recipe, b: Recipe) -> Bool {
            a.gamma == b.gamma && a.lastLinear == b.lastLinear
        }
    }

    /// The recipes of the golden script, by torchvision constructor name.
    public static func recipe(for model: String) throws -> Recipe {
        guard let architecture = ImageNetArchitecture(rawValue: model) else {
            throw ModelError(model: model, "no synthetic weight recipe; known: \(ImageNetArchitecture.names.joined(separator: ", "))")
        }
        // Per family: the golden script's recipes for resnet50, vgg11_bn and densenet121.
        switch architecture.family {
        case .resnet: return Recipe(gamma: (0.5, 1.0), lastLinear: architecture.classifierWeight)
        case .vgg: return Recipe(gamma: (0.8, 1.2), lastLinear: architecture.classifierWeight)
        case .densenet: return Recipe(gamma: (1.0, 1.25), lastLinear: architecture.classifierWeight)
        }
    }

    /// The golden weight seeds, by torchvision constructor name.
    public static let goldenSeeds: [String: UInt64] = ["resnet50": 50, "vgg11_bn": 11, "densenet121": 121]

    /// Fills every parameter of `model` from `seed` with the model's recipe.
    ///
    /// ```swift
    /// var net = DenseNet.densenet121()
    /// try SyntheticWeights.fill(&net, seed: 121)
    /// ```
    public static func fill<M: ImageClassifier>(_ model: inout M, seed: UInt64, recipe: Recipe? = nil) throws {
        let r = try recipe ?? Self.recipe(for: model.name)
        var rng = SeededRNG(seed: seed)
        var params = model.parameters
        for name in params.names {
            let shape = params.shapes[name]!
            let (lo, hi): (Float, Float)
            if shape.count >= 2 {
                let fanIn = shape.dropFirst().reduce(1, *)
                let b = Float(((name == r.lastLinear ? 3.0 : 6.0) / Double(fanIn)).squareRoot())
                (lo, hi) = (-b, b)
            } else if name.hasSuffix("running_var") {
                (lo, hi) = (0.5, 1.5)
            } else if name.hasSuffix("running_mean") {
                (lo, hi) = (-0.1, 0.1)
            } else if name.hasSuffix("weight") {
                (lo, hi) = r.gamma
            } else if name.hasSuffix("bias") {
                (lo, hi) = (-0.1, 0.1)
            } else {
                throw ModelError(model: model.name, "no synthetic recipe for parameter '\(name)'")
            }
            let n = shape.reduce(1, *)
            var scalars = [Float](repeating: 0, count: n)
            for i in 0..<n { scalars[i] = rng.uniform(lo, hi) }
            try params.set(name, Tensor(shape: shape, scalars: scalars), model: model.name)
        }
        model.parameters = params
    }

    /// The golden script's synthetic images: `[n, 3, size, size]` in [-1, 1], a nearest-upsampled
    /// 8x8 uniform(-1, 1) grid per channel times 0.7 plus uniform(-0.3, 0.3) noise, clamped.
    public static func images(seed: UInt64 = 2025, count n: Int = 2, size: Int = 64, grid: Int = 8) -> Tensor {
        var rng = SeededRNG(seed: seed)
        var coarse = [Float](repeating: 0, count: n * 3 * grid * grid)
        for i in coarse.indices { coarse[i] = rng.uniform(-1, 1) }
        let cell = size / grid
        var x = [Float](repeating: 0, count: n * 3 * size * size)
        for p in 0..<(n * 3) {
            for h in 0..<size {
                for w in 0..<size {
                    let s = coarse[(p * grid + h / cell) * grid + w / cell]
                    let noise = rng.uniform(-0.3, 0.3)
                    let v = Float(0.7) * s + noise   // two roundings, as numpy: no fused multiply-add
                    x[(p * size + h) * size + w] = Swift.min(Swift.max(v, -1), 1)
                }
            }
        }
        return Tensor(shape: [n, 3, size, size], scalars: x)
    }
}
