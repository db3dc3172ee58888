// MARK: - VGG (torchvision vgg*_bn)
//
//   x [N,3,H,W] → features: per cfg entry  conv 3x3 (pad 1, bias) → BN → ReLU   or   max-pool 2x2/2
//     → adaptive average pool to 7x7 → flatten → classifier.0 Linear(512*49, 4096) → ReLU
//     → (dropout: identity in eval) → classifier.3 Linear(4096, 4096) → ReLU → (dropout)
//     → classifier.6 Linear(4096, classes)                                      → [N, classes]
//   Module indices follow torchvision's nn.Sequential numbering: "features.0" conv, "features.1"
//   BN, "features.2" ReLU, "features.3" max-pool, ...
import SIMDCore

/// torchvision's VGG with batch norm.
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
    public var parameters = ParameterStore()

    public init(name: String = "vgg_bn", cfg: [Layer], classes: Int = 1000) {
        self.name = name; self.cfg = cfg; self.classes = classes
        var index = 0, channels = 3
        for layer in cfg {
            switch layer {
            case .conv(let c):
                parameters.declare("features.\(index).weight", [c, channels, 3, 3])
                parameters.declare("features.\(index).bias", [c])
                parameters.declareBatchNorm("features.\(index + 1)", c)
                channels = c; index += 3
            case .maxPool:
                index += 1
            }
        }
        for (i, (out, inp)) in [(4096, channels * 49), (4096, 4096), (classes, 4096)].enumerated() {
            parameters.declare("classifier.\(3 * i).weight", [out, inp])
            parameters.declare("classifier.\(3 * i).bias", [out])
        }
    }

    /// VGG11 with batch norm (cfg "A").
    public static func vgg11BN(classes: Int = 1000) -> VGG {
        VGG(name: "vgg11_bn", cfg: [.conv(64), .maxPool, .conv(128), .maxPool, .conv(256), .conv(256), .maxPool,
                                    .conv(512), .conv(512), .maxPool, .conv(512), .conv(512), .maxPool],
            classes: classes)
    }

    public func logits(tape: Tape, input: Variable, policy: GatePolicy) throws -> Variable {
        let f = Forward(tape: tape, params: parameters, policy: policy, model: name)
        var x = input, index = 0
        for layer in cfg {
            switch layer {
            case .conv:
                x = try f.conv(x, "features.\(index)", padding: 1, bias: true)
                x = try f.batchNorm(x, "features.\(index + 1)")
                x = try f.relu(x, "features.\(index + 2)")
                index += 3
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
