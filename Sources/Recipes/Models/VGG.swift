// MARK: - VGG (torchvision vgg11/13/16/19, with and without batch norm)
//
//   x [N,3,H,W] → features: per cfg entry  conv 3x3 (pad 1, bias) → BN → ReLU   or   max-pool 2x2/2
//     (without batch norm: conv → ReLU)
//     → adaptive average pool to 7x7 → flatten → classifier.0 Linear(512*49, 4096) → ReLU
//     → (dropout: identity in eval) → classifier.3 Linear(4096, 4096) → ReLU → (dropout)
//     → classifier.6 Linear(4096, classes)                                      → [N, classes]
//   Module indices follow torchvision's nn.Sequential numbering: "features.0" conv, "features.1"
//   BN, "features.2" ReLU, "features.3" max-pool, ... (without BN: "features.0" conv, "features.1" ReLU, ...).
//   cfgs (torchvision): A = vgg11, B = vgg13, D = vgg16, E = vgg19.
import SIMDCore

/// torchvision's VGG, with or without batch norm.
///
/// ```swift
/// let net = VGG.vgg11BN()          // cfg A: 64 M 128 M 256 256 M 512 512 M 512 512 M
/// ```
public struct VGG: ImageClassifier {
    /// A cfg entry: a conv with that many output channels, or a max-pool.
    public enum Layer: Equatable, Sendable { case conv(Int), maxPool }

    public let name: String
    public let cfg: [Layer]
    public let classes: Int
    public let batchNorm: Bool
    public var parameters = ParameterStore()

    public init(name: String = "vgg_bn", cfg: [Layer], batchNorm: Bool = true, classes: Int = 1000) {
        self.name = name; self.cfg = cfg; self.batchNorm = batchNorm; self.classes = classes
        var index = 0, channels = 3
        for layer in cfg {
            switch layer {
            case .conv(let c):
                parameters.declare("features.\(index).weight", [c, channels, 3, 3])
                parameters.declare("features.\(index).bias", [c])
                if batchNorm { parameters.declareBatchNorm("features.\(index + 1)", c) }
                channels = c; index += batchNorm ? 3 : 2
            case .maxPool:
                index += 1
            }
        }
        for (i, (out, inp)) in [(4096, channels * 49), (4096, 4096), (classes, 4096)].enumerated() {
            parameters.declare("classifier.\(3 * i).weight", [out, inp])
            parameters.declare("classifier.\(3 * i).bias", [out])
        }
    }

    /// torchvision's cfgs by depth: 11 "A", 13 "B", 16 "D", 19 "E".
    public static func cfg(depth: Int) -> [Layer] {
        let perStage: [Int]
        switch depth {
        case 11: perStage = [1, 1, 2, 2, 2]
        case 13: perStage = [2, 2, 2, 2, 2]
        case 16: perStage = [2, 2, 3, 3, 3]
        default: perStage = [2, 2, 4, 4, 4]   // 19
        }
        return zip(perStage, [64, 128, 256, 512, 512]).flatMap { n, c in Array(repeating: Layer.conv(c), count: n) + [.maxPool] }
    }

    /// VGG of `depth` 11, 13, 16 or 19, with or without batch norm ("vgg16", "vgg16_bn").
    public static func vgg(depth: Int, batchNorm: Bool, classes: Int = 1000) -> VGG {
        VGG(name: "vgg\(depth)\(batchNorm ? "_bn" : "")", cfg: cfg(depth: depth), batchNorm: batchNorm, classes: classes)
    }

    /// VGG11 with batch norm (cfg "A").
    public static func vgg11BN(classes: Int = 1000) -> VGG { vgg(depth: 11, batchNorm: true, classes: classes) }

    public func logits(tape: Tape, input: Variable, policy: GatePolicy) throws -> Variable {
        let f = Forward(tape: tape, params: parameters, policy: policy, model: name)
        var x = input, index = 0
        for layer in cfg {
            switch layer {
            case .conv:
                x = try f.conv(x, "features.\(index)", padding: 1, bias: true)
                if batchNorm {
                    x = try f.batchNorm(x, "features.\(index + 1)")
                    x = try f.relu(x, "features.\(index + 2)")
                    index += 3
                } else {
                    x = try f.relu(x, "features.\(index + 1)")
                    index += 2
                }
            case .maxPool:
                x = try f.maxPool(x, "features.\(index)", kernel: 2, stride: 2)
                index += 1
            }
        }
        x = try tape.flatten(try tape.adaptiveAvgPool2d(x, outputHeight: 7, outputWidth: 7))
        x = try f.relu(try f.linear(x, "classifier.0"), "classifier.1")
        x = try f.relu(try f.linear(x, "classifier.3"), "classifier.4")
        return try f.linear(x, "classifier.6")
    }
}
