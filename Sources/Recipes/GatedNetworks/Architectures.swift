// MARK: - Architectures of paper B and NeurIPS 2020
//
// Each forward pass is written once; `activate(l, q)` stands where the DNN has its l-th ReLU
// (see GatedNetwork.swift for what it becomes in each network). Shapes:
//
//   FC          x [N, inputs] (or [N, C, H, W], flattened) -> depth x [linear width, act] -> linear classes
//   C1GAP       x [N, C, H, W] -> conv3x3 width pad 1 -> act -> GAP -> linear classes
//   C4GAP       x -> 4 x [conv3x3 width, stride 1, pad 1, act] -> GAP -> linear classes   (paper B Table I)
//   VGG-16      13 x [conv3x3 pad 1 (no bias), BN, act] in blocks 64,64 | 128,128 | 256x3 | 512x3 | 512x3,
//               AVERAGE pool 2x2/2 after each block, GAP, linear classes                (paper B Table II)
//   ResNet-6n+2 He et al.'s CIFAR ResNet: conv3x3 16 + BN + act, 3 stages of n basic blocks (16, 32, 64
//               channels = baseWidth x 1, 2, 4; baseWidth 16 is the paper's, smaller ones are for tests; first block of stages 2 and 3 has stride 2), GAP, linear. Basic block:
//               q1 = BN(conv(z)); z1 = act(q1); q2 = BN(conv(z1)) + shortcut(z); z = act(q2).
//               Shortcut = OPTION A (parameter-free identity; when the shape changes, subsample by 2
//               and zero-pad the new channels, half each side), as in He et al.'s CIFAR experiments.
//               n = 18 is ResNet-110 (1 + 2*54 gated layers + the classifier).
//
// Conv layers followed by BatchNorm have no bias (it would be cancelled by BN); other convs and
// linears have PyTorch's default bias, except FC nets (NeurIPS 2020: no bias, so the output is
// exactly <phi(x), v> over paths; `bias: true` adds them).
import Foundation
import SIMDCore

/// The network shapes of paper B (C1GAP, C4GAP, VGG-16, ResNet-110) and NeurIPS 2020 (FC).
public enum GatedArchitecture: Equatable, Sendable, CustomStringConvertible {
    case fullyConnected(inputs: Int, width: Int, depth: Int, classes: Int, bias: Bool)
    case c1gap(inputChannels: Int, imageSize: Int, width: Int, classes: Int)
    case c4gap(inputChannels: Int, imageSize: Int, width: Int, classes: Int)
    case vgg16(inputChannels: Int, imageSize: Int, classes: Int, widthDivisor: Int)
    case cifarResNet(inputChannels: Int, imageSize: Int, blocksPerStage: Int, classes: Int, baseWidth: Int)

    /// NeurIPS 2020 FC net: `depth` hidden layers of `width`, no biases.
    public static func fc(inputs: Int, width: Int, depth: Int, classes: Int) -> GatedArchitecture {
        .fullyConnected(inputs: inputs, width: width, depth: depth, classes: classes, bias: false)
    }
    /// Paper B's VGG-16 on 32x32 images (widthDivisor 1; larger divisors shrink every block for tests).
    public static func vgg16(classes: Int) -> GatedArchitecture {
        .vgg16(inputChannels: 3, imageSize: 32, classes: classes, widthDivisor: 1)
    }
    /// He et al.'s CIFAR ResNet-110 (18 basic blocks per stage).
    public static func resnet110(classes: Int) -> GatedArchitecture {
        .cifarResNet(inputChannels: 3, imageSize: 32, blocksPerStage: 18, classes: classes, baseWidth: 16)
    }

    /// Shape of one example.
    public var inputShape: [Int] {
        switch self {
        case .fullyConnected(let inputs, _, _, _, _): return [inputs]
        case .c1gap(let c, let s, _, _), .c4gap(let c, let s, _, _), .vgg16(let c, let s, _, _),
             .cifarResNet(let c, let s, _, _, _): return [c, s, s]
        }
    }

    /// True if one example of shape `shape` fits (FC nets flatten any shape with `inputs` elements).
    public func accepts(exampleShape shape: [Int]) -> Bool {
        if case .fullyConnected(let inputs, _, _, _, _) = self { return shape.reduce(1, *) == inputs && !shape.isEmpty }
        return shape == inputShape
    }

    /// Number of places a ReLU sits in the DNN: the layers that take gates.
    public var gatedLayerCount: Int {
        switch self {
        case .fullyConnected(_, _, let d, _, _): return d
        case .c1gap: return 1
        case .c4gap: return 4
        case .vgg16: return 13
        case .cifarResNet(_, _, let n, _, _): return 1 + 6 * n
        }
    }

    var usesBias: Bool {
        if case .fullyConnected(_, _, _, _, let b) = self { return b }
        return true
    }

    public var description: String {
        switch self {
        case .fullyConnected(let i, let w, let d, let c, let b): return "FC(in \(i), width \(w), depth \(d), classes \(c)\(b ? ", bias" : ""))"
        case .c1gap(_, _, let w, let c): return "C1GAP(width \(w), classes \(c))"
        case .c4gap(_, _, let w, let c): return "C4GAP(width \(w), classes \(c))"
        case .vgg16(_, _, let c, let d): return "VGG-16(classes \(c)\(d > 1 ? ", widths/\(d)" : ""))"
        case .cifarResNet(_, _, let n, let c, let w): return "ResNet-\(6 * n + 2)(classes \(c), option A\(w != 16 ? ", base width \(w)" : ""))"
        }
    }

    static let vggBlocks: [[Int]] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]

    /// The single forward description. Returns logits when `head` is true, else nil (a feature
    /// network's last layer only makes gates).
    func forward(_ pass: NetworkPass, _ x: Variable, head: Bool,
                 activate: (Int, Variable) throws -> Variable) throws -> Variable? {
        let tape = pass.tape
        switch self {
        case .fullyConnected(_, let width, let depth, let classes, let bias):
            var z = tape.shape(x).count == 2 ? x : try tape.flatten(x)
            for l in 0..<depth {
                z = try activate(l, try pass.linear("layers.\(l)", z, out: width, bias: bias))
            }
            return head ? try pass.linear("head", z, out: classes, bias: bias) : nil

        case .c1gap(_, _, let width, let classes):
            let z = try activate(0, try pass.conv("layers.0", x, out: width, kernel: 3, stride: 1, padding: 1, bias: true))
            return head ? try pass.linear("head", try tape.globalAvgPool(z), out: classes, bias: true) : nil

        case .c4gap(_, _, let width, let classes):
            var z = x
            for l in 0..<4 {
                z = try activate(l, try pass.conv("layers.\(l)", z, out: width, kernel: 3, stride: 1, padding: 1, bias: true))
            }
            return head ? try pass.linear("head", try tape.globalAvgPool(z), out: classes, bias: true) : nil

        case .vgg16(_, _, let classes, let divisor):
            var z = x
            var l = 0
            for block in GatedArchitecture.vggBlocks {
                for channels in block {
                    let q = try pass.batchNorm("layers.\(l).bn",
                                               try pass.conv("layers.\(l).conv", z, out: max(1, channels / divisor),
                                                             kernel: 3, stride: 1, padding: 1, bias: false))
                    z = try activate(l, q)
                    l += 1
                }
                z = try tape.avgPool2d(z, kernel: 2, stride: 2)
            }
            return head ? try pass.linear("head", try tape.globalAvgPool(z), out: classes, bias: true) : nil

        case .cifarResNet(_, _, let n, let classes, let base):
            var z = try activate(0, try pass.batchNorm("stem.bn", try pass.conv("stem.conv", x, out: base, kernel: 3, stride: 1, padding: 1, bias: false)))
            var l = 1
            for (s, channels) in [base, 2 * base, 4 * base].enumerated() {
                for b in 0..<n {
                    let stride = (s > 0 && b == 0) ? 2 : 1
                    let name = "stages.\(s).\(b)"
                    let q1 = try pass.batchNorm(name + ".bn1", try pass.conv(name + ".conv1", z, out: channels, kernel: 3, stride: stride, padding: 1, bias: false))
                    let z1 = try activate(l, q1)
                    let q2 = try pass.batchNorm(name + ".bn2", try pass.conv(name + ".conv2", z1, out: channels, kernel: 3, stride: 1, padding: 1, bias: false))
                    let shortcut = stride == 1 && tape.shape(z)[1] == channels ? z : try tape.shortcutA(z, outChannels: channels)
                    z = try activate(l + 1, try tape.add(q2, shortcut))
                    l += 2
                }
            }
            return head ? try pass.linear("head", try tape.globalAvgPool(z), out: classes, bias: true) : nil
        }
    }
}

// MARK: - Option-A shortcut of the CIFAR ResNet

extension Tape {
    /// He et al.'s option-A shortcut: `x[:, :, ::2, ::2]` zero-padded with (outChannels - C) / 2
    /// channels on each side. x [N, C, H, W] -> [N, outChannels, ceil(H/2), ceil(W/2)]. No parameters.
    public func shortcutA(_ x: Variable, outChannels: Int) throws -> Variable {
        let s = shape(x)
        guard s.count == 4, outChannels >= s[1], (outChannels - s[1]) % 2 == 0 else {
            throw EngineError.shapeMismatch("shortcutA", s, [outChannels], expected: "x [N,C,H,W] and outChannels >= C with an even difference")
        }
        let (n, c, h, w) = (s[0], s[1], s[2], s[3])
        let oh = (h + 1) / 2, ow = (w + 1) / 2, pad = (outChannels - c) / 2
        let xs = value(x)
        var y = Tensor(zeros: [n, outChannels, oh, ow])
        xs.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for b in 0..<n { for ch in 0..<c { for i in 0..<oh { for j in 0..<ow {
                    yp[((b * outChannels + ch + pad) * oh + i) * ow + j] = xp[((b * c + ch) * h + 2 * i) * w + 2 * j]
                } } } }
            }
        }
        return record(y, inputs: [x]) { dy, _ in
            var dx = Tensor(zeros: s)
            dy.withUnsafeBufferPointer { gp in
                dx.withUnsafeMutableBufferPointer { dp in
                    for b in 0..<n { for ch in 0..<c { for i in 0..<oh { for j in 0..<ow {
                        dp[((b * c + ch) * h + 2 * i) * w + 2 * j] = gp[((b * outChannels + ch + pad) * oh + i) * ow + j]
                    } } } }
                }
            }
            return [dx]
        }
    }
}
