// MARK: - DenseNet (torchvision densenet121/161/169/201)
//
//   x [N,3,H,W] → features.conv0 7x7/2 → norm0 → relu0 → pool0 max 3x3/2 (pad 1)
//     → denseblock1 → transition1 → ... → denseblock4 → norm5
//     → F.relu (functional in torchvision: NOT a module, so paper A leaves it hard; gate name
//       "features.relu_final", hard unless the policy overrides that name)
//     → global average pool → classifier                                         → [N, classes]
//   Dense layer: cat(all earlier features) → norm1 → relu1 → conv1 1x1 (→ bn_size*growth)
//                → norm2 → relu2 → conv2 3x3 pad 1 (→ growth); its output joins the concatenation.
//   Transition: norm → relu → conv 1x1 (C → C/2) → average pool 2x2/2.
import SIMDCore

/// torchvision's DenseNet-BC.
///
/// ```swift
/// let net = DenseNet.densenet121()   // growth 32, blocks (6, 12, 24, 16), bn_size 4, 64 initial features
/// ```
public struct DenseNet: ImageClassifier {
    public let name: String
    public let growth: Int
    public let blocks: [Int]
    public let bottleneckWidth: Int   // bn_size
    public let initialFeatures: Int
    public let classes: Int
    public var parameters = ParameterStore()

    /// Gate name of the functional ReLU after norm5 (hard unless `GatePolicy.reluOverrides` names it).
    public static let finalReLU = "features.relu_final"

    public init(name: String = "densenet", growth: Int = 32, blocks: [Int], bottleneckWidth: Int = 4,
                initialFeatures: Int = 64, classes: Int = 1000) {
        self.name = name; self.growth = growth; self.blocks = blocks
        self.bottleneckWidth = bottleneckWidth; self.initialFeatures = initialFeatures; self.classes = classes
        parameters.declare("features.conv0.weight", [initialFeatures, 3, 7, 7])
        parameters.declareBatchNorm("features.norm0", initialFeatures)
        var c = initialFeatures
        for (b, n) in blocks.enumerated() {
            for l in 1...n {
                let p = "features.denseblock\(b + 1).denselayer\(l)"
                let cin = c + (l - 1) * growth
                parameters.declareBatchNorm("\(p).norm1", cin)
                parameters.declare("\(p).conv1.weight", [bottleneckWidth * growth, cin, 1, 1])
                parameters.declareBatchNorm("\(p).norm2", bottleneckWidth * growth)
                parameters.declare("\(p).conv2.weight", [growth, bottleneckWidth * growth, 3, 3])
            }
            c += n * growth
            if b != blocks.count - 1 {
                let p = "features.transition\(b + 1)"
                parameters.declareBatchNorm("\(p).norm", c)
                parameters.declare("\(p).conv.weight", [c / 2, c, 1, 1])
                c /= 2
            }
        }
        parameters.declareBatchNorm("features.norm5", c)
        parameters.declare("classifier.weight", [classes, c])
        parameters.declare("classifier.bias", [classes])
    }

    /// DenseNet121: growth 32, blocks (6, 12, 24, 16), bn_size 4, 64 initial features.
    public static func densenet121(classes: Int = 1000) -> DenseNet {
        DenseNet(name: "densenet121", growth: 32, blocks: [6, 12, 24, 16], bottleneckWidth: 4,
                 initialFeatures: 64, classes: classes)
    }

    /// DenseNet161: growth 48, blocks (6, 12, 36, 24), bn_size 4, 96 initial features.
    public static func densenet161(classes: Int = 1000) -> DenseNet {
        DenseNet(name: "densenet161", growth: 48, blocks: [6, 12, 36, 24], bottleneckWidth: 4, initialFeatures: 96, classes: classes)
    }

    /// DenseNet169: growth 32, blocks (6, 12, 32, 32), bn_size 4, 64 initial features.
    public static func densenet169(classes: Int = 1000) -> DenseNet {
        DenseNet(name: "densenet169", growth: 32, blocks: [6, 12, 32, 32], bottleneckWidth: 4, initialFeatures: 64, classes: classes)
    }

    /// DenseNet201: growth 32, blocks (6, 12, 48, 32), bn_size 4, 64 initial features.
    public static func densenet201(classes: Int = 1000) -> DenseNet {
        DenseNet(name: "densenet201", growth: 32, blocks: [6, 12, 48, 32], bottleneckWidth: 4, initialFeatures: 64, classes: classes)
    }

    public func logits(tape: Tape, input: Variable, policy: GatePolicy) throws -> Variable {
        let f = Forward(tape: tape, params: parameters, policy: policy, model: name)
        var x = try f.conv(input, "features.conv0", stride: 2, padding: 3)
        x = try f.relu(try f.batchNorm(x, "features.norm0"), "features.relu0")
        x = try f.maxPool(x, "features.pool0", kernel: 3, stride: 2, padding: 1)
        for (b, n) in blocks.enumerated() {
            var features = [x]
            for l in 1...n {
                let p = "features.denseblock\(b + 1).denselayer\(l)"
                let joined = features.count == 1 ? features[0] : try tape.concat(features, axis: 1)
                var y = try f.relu(try f.batchNorm(joined, "\(p).norm1"), "\(p).relu1")
                y = try f.conv(y, "\(p).conv1")
                y = try f.relu(try f.batchNorm(y, "\(p).norm2"), "\(p).relu2")
                features.append(try f.conv(y, "\(p).conv2", padding: 1))
            }
            x = try tape.concat(features, axis: 1)
            if b != blocks.count - 1 {
                let p = "features.transition\(b + 1)"
                x = try f.relu(try f.batchNorm(x, "\(p).norm"), "\(p).relu")
                x = try tape.avgPool2d(try f.conv(x, "\(p).conv"), kernel: 2, stride: 2)
            }
        }
        x = try f.batchNorm(x, "features.norm5")
        x = try tape.relu(x, gate: policy.reluOverrides[Self.finalReLU] ?? .hard)
        return try f.linear(try tape.globalAvgPool(x), "classifier")
    }
}
