// MARK: - ResNet (torchvision v1.5: Bottleneck with the stride on the 3x3 conv)
//
//   ResNet-18/34 use BasicBlock (two 3x3 convs, expansion 1), ResNet-50/101/152 Bottleneck
//   (expansion 4); blocks per stage 18: [2,2,2,2], 34 and 50: [3,4,6,3], 101: [3,4,23,3], 152: [3,8,36,3].
//
//   x [N,3,H,W] → conv1 7x7/2 → bn1 → relu → maxpool 3x3/2 (pad 1)
//     → layer1..layer4 (Bottleneck x [3,4,6,3], planes 64/128/256/512, stride 1/2/2/2)
//     → global average pool → fc                                              → [N, classes]
//   Bottleneck: conv1 1x1 → bn1 → relu → conv2 3x3/s → bn2 → relu → conv3 1x1 → bn3
//               (+ downsample.0 conv 1x1/s → downsample.1 bn when the shape changes) → add → relu
//   BasicBlock: conv1 3x3/s → bn1 → relu → conv2 3x3 → bn2 (+ downsample) → add → relu
//   The ReLUs of a block are ONE module in torchvision ("layerK.i.relu"), so one gate name.
import SIMDCore

/// torchvision's ResNet with BasicBlock or Bottleneck blocks.
///
/// ```swift
/// var net = ResNet.resnet50()              // 25.6M parameters, names as torchvision's state_dict
/// try net.load(try SafeTensors(contentsOf: url).tensors)
/// ```
public struct ResNet: ImageClassifier {
    public let name: String
    public let blocks: [Int]
    public let classes: Int
    /// Bottleneck blocks (ResNet-50 and deeper) or BasicBlocks (ResNet-18/34).
    public let bottleneck: Bool
    public var parameters = ParameterStore()
    var expansion: Int { bottleneck ? 4 : 1 }

    public init(name: String = "resnet", blocks: [Int], bottleneck: Bool = true, classes: Int = 1000) {
        self.name = name; self.blocks = blocks; self.bottleneck = bottleneck; self.classes = classes
        let expansion = bottleneck ? 4 : 1
        parameters.declare("conv1.weight", [64, 3, 7, 7])
        parameters.declareBatchNorm("bn1", 64)
        var inplanes = 64
        for (k, n) in blocks.enumerated() {
            let planes = 64 << k
            for i in 0..<n {
                let p = "layer\(k + 1).\(i)"
                let stride = (i == 0 && k > 0) ? 2 : 1
                if bottleneck {
                    parameters.declare("\(p).conv1.weight", [planes, inplanes, 1, 1])
                    parameters.declareBatchNorm("\(p).bn1", planes)
                    parameters.declare("\(p).conv2.weight", [planes, planes, 3, 3])
                    parameters.declareBatchNorm("\(p).bn2", planes)
                    parameters.declare("\(p).conv3.weight", [planes * expansion, planes, 1, 1])
                    parameters.declareBatchNorm("\(p).bn3", planes * expansion)
                } else {
                    parameters.declare("\(p).conv1.weight", [planes, inplanes, 3, 3])
                    parameters.declareBatchNorm("\(p).bn1", planes)
                    parameters.declare("\(p).conv2.weight", [planes, planes, 3, 3])
                    parameters.declareBatchNorm("\(p).bn2", planes)
                }
                if i == 0 && (stride != 1 || inplanes != planes * expansion) {
                    parameters.declare("\(p).downsample.0.weight", [planes * expansion, inplanes, 1, 1])
                    parameters.declareBatchNorm("\(p).downsample.1", planes * expansion)
                }
                inplanes = planes * expansion
            }
        }
        parameters.declare("fc.weight", [classes, inplanes])
        parameters.declare("fc.bias", [classes])
    }

    /// ResNet18: BasicBlocks [2, 2, 2, 2].
    public static func resnet18(classes: Int = 1000) -> ResNet {
        ResNet(name: "resnet18", blocks: [2, 2, 2, 2], bottleneck: false, classes: classes)
    }

    /// ResNet34: BasicBlocks [3, 4, 6, 3].
    public static func resnet34(classes: Int = 1000) -> ResNet {
        ResNet(name: "resnet34", blocks: [3, 4, 6, 3], bottleneck: false, classes: classes)
    }

    /// ResNet50: Bottleneck blocks [3, 4, 6, 3].
    public static func resnet50(classes: Int = 1000) -> ResNet {
        ResNet(name: "resnet50", blocks: [3, 4, 6, 3], classes: classes)
    }

    /// ResNet101: Bottleneck blocks [3, 4, 23, 3].
    public static func resnet101(classes: Int = 1000) -> ResNet {
        ResNet(name: "resnet101", blocks: [3, 4, 23, 3], classes: classes)
    }

    /// ResNet152: Bottleneck blocks [3, 8, 36, 3].
    public static func resnet152(classes: Int = 1000) -> ResNet {
        ResNet(name: "resnet152", blocks: [3, 8, 36, 3], classes: classes)
    }

    public func logits(tape: Tape, input: Variable, policy: GatePolicy) throws -> Variable {
        let f = Forward(tape: tape, params: parameters, policy: policy, model: name)
        var x = try f.conv(input, "conv1", stride: 2, padding: 3)
        x = try f.relu(try f.batchNorm(x, "bn1"), "relu")
        x = try f.maxPool(x, "maxpool", kernel: 3, stride: 2, padding: 1)
        for (k, n) in blocks.enumerated() {
            for i in 0..<n {
                let p = "layer\(k + 1).\(i)", stride = (i == 0 && k > 0) ? 2 : 1
                x = bottleneck ? try bottleneckBlock(f, x, p, stride: stride) : try basicBlock(f, x, p, stride: stride)
            }
        }
        return try f.linear(try tape.globalAvgPool(x), "fc")
    }

    func basicBlock(_ f: Forward, _ x: Variable, _ p: String, stride: Int) throws -> Variable {
        var y = try f.relu(try f.batchNorm(try f.conv(x, "\(p).conv1", stride: stride, padding: 1), "\(p).bn1"), "\(p).relu")
        y = try f.batchNorm(try f.conv(y, "\(p).conv2", padding: 1), "\(p).bn2")
        var identity = x
        if parameters.shapes["\(p).downsample.0.weight"] != nil {
            identity = try f.batchNorm(try f.conv(x, "\(p).downsample.0", stride: stride), "\(p).downsample.1")
        }
        return try f.relu(try f.tape.add(y, identity), "\(p).relu")
    }

    func bottleneckBlock(_ f: Forward, _ x: Variable, _ p: String, stride: Int) throws -> Variable {
        var y = try f.relu(try f.batchNorm(try f.conv(x, "\(p).conv1"), "\(p).bn1"), "\(p).relu")
        y = try f.relu(try f.batchNorm(try f.conv(y, "\(p).conv2", stride: stride, padding: 1), "\(p).bn2"), "\(p).relu")
        y = try f.batchNorm(try f.conv(y, "\(p).conv3"), "\(p).bn3")
        var identity = x
        if parameters.shapes["\(p).downsample.0.weight"] != nil {
            identity = try f.batchNorm(try f.conv(x, "\(p).downsample.0", stride: stride), "\(p).downsample.1")
        }
        return try f.relu(try f.tape.add(y, identity), "\(p).relu")
    }
}
