// MARK: - StateDict: checkpoint tensors matched against a model's parameters
//
// Name mappings to torchvision's current module names (read from timm's and torchvision's source):
//  - resnet50: identity. timm's ResNet (timm/models/resnet.py) uses conv1, bn1, layer1.0.conv1 ...
//    layerN.0.downsample.{0,1}, fc — the same names as torchvision; timm `resnet50.tv_in1k` is loaded with no filter.
//  - vgg11_bn: timm's VGG (timm/models/vgg.py) keeps `features.*` but replaces torchvision's classifier with
//    `pre_logits` = ConvMlp (fc1: Conv2d 512→4096 k7, fc2: Conv2d 4096→4096 k1) and `head.fc` (Linear); its
//    `_filter_fn` maps torchvision → timm by classifier.0 → pre_logits.fc1 (weight reshaped to [-1,512,7,7]),
//    classifier.3 → pre_logits.fc2 ([-1,4096,1,1]), classifier.6 → head.fc. We apply the inverse
//    (`.timmVGG`): the conv weights are reshaped back to Linear [out, in·kh·kw]; same values, row-major order.
//  - densenet121: torchvision's published checkpoint (densenet121-a639ec97.pth) predates the rule that module
//    names have no dots: its dense layers are `...denselayerK.norm.1.weight`; torchvision's densenet.py and timm's
//    `_filter_torchvision_pretrained` both rename with the regex
//    ^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$ → \1\2
//    (`.denseNetLegacy`, e.g. norm.1 → norm1). timm's DenseNet otherwise uses torchvision's names (features.conv0,
//    norm0, denseblockN.denselayerK.{norm1,conv1,norm2,conv2}, transitionN.{norm,conv}, norm5, classifier).
import Foundation
import SIMDCore

/// A model parameter the checkpoint must provide.
public struct ParameterSpec: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public init(_ name: String, _ shape: [Int]) { self.name = name; self.shape = shape }
}

/// A renaming (and, for timm VGG, reshaping) of checkpoint tensors to torchvision names.
public enum StateDictMapping: Sendable {
    case identity
    /// torchvision's old DenseNet keys `denselayerK.norm.1.*` → `denselayerK.norm1.*`.
    case denseNetLegacy
    /// timm VGG `pre_logits.fc1/fc2`, `head.fc` → torchvision `classifier.0/3/6` (conv weights flattened to Linear).
    case timmVGG

    func apply(_ name: String, _ t: Tensor) -> (String, Tensor) {
        switch self {
        case .identity:
            return (name, t)
        case .denseNetLegacy:
            return (Self.denseNetRename(name), t)
        case .timmVGG:
            for (from, to) in [("pre_logits.fc1.", "classifier.0."), ("pre_logits.fc2.", "classifier.3."), ("head.fc.", "classifier.6.")]
            where name.hasPrefix(from) {
                let renamed = to + name.dropFirst(from.count)
                return (renamed, name.hasSuffix(".weight") && t.rank == 4 ? t.reshaped([t.shape[0], -1]) : t)
            }
            return (name, t)
        }
    }

    /// `features.denseblock1.denselayer1.norm.1.weight` → `features.denseblock1.denselayer1.norm1.weight`.
    static func denseNetRename(_ name: String) -> String {
        let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // ... denselayer<d+> . (norm|relu|conv) . (1|2) . (weight|bias|running_mean|running_var)   (end of name)
        guard parts.count >= 4 else { return name }
        let n = parts.count
        let layer = parts[n - 4], kind = parts[n - 3], index = parts[n - 2], field = parts[n - 1]
        guard layer.hasPrefix("denselayer"), layer.count > 10, layer.dropFirst(10).allSatisfy(\.isASCII),
              layer.dropFirst(10).allSatisfy(\.isNumber),
              ["norm", "relu", "conv"].contains(kind), ["1", "2"].contains(index),
              ["weight", "bias", "running_mean", "running_var"].contains(field) else { return name }
        return (parts[..<(n - 3)] + [kind + index, field]).joined(separator: ".")
    }
}

/// Tensors by name, in file order, from a `.pth` or `.safetensors` file.
///
/// ```swift
/// let sd = try StateDict(contentsOf: url).mapped(StateDict.toTorchvisionNames(architecture: "densenet121"))
/// let weights = try sd.matching(model.parameterSpecs)   // one error listing every missing/unexpected/mis-shaped tensor
/// ```
public struct StateDict {
    public let file: String
    public private(set) var names: [String]
    public private(set) var tensors: [String: Tensor]

    public init(names: [String], tensors: [String: Tensor], file: String) {
        self.names = names; self.tensors = tensors; self.file = file
    }

    /// Reads a torch.save checkpoint (ZIP) or a safetensors file, chosen by content, not by extension.
    public init(contentsOf url: URL) throws {
        let head: Data
        do {
            let h = try FileHandle(forReadingFrom: url); defer { try? h.close() }
            head = try h.read(upToCount: 4) ?? Data()
        } catch { throw WeightsError(file: url.path, "cannot read file (\(error.localizedDescription))") }
        if head.starts(with: [0x50, 0x4b]) || head.first == 0x80 {          // ZIP, or legacy pickle (refused inside)
            let c = try TorchCheckpoint(contentsOf: url)
            self.init(names: c.names, tensors: c.tensors, file: url.path)
        } else {
            let s = try SafeTensors(contentsOf: url)
            self.init(names: s.names, tensors: s.tensors, file: url.path)
        }
    }

    /// The mappings that bring a checkpoint of `architecture` (torchvision or timm) to torchvision names.
    public static func toTorchvisionNames(architecture: String) -> [StateDictMapping] {
        if architecture.hasPrefix("vgg") { return [.timmVGG] }
        if architecture.hasPrefix("densenet") { return [.denseNetLegacy] }
        return [.identity]
    }

    /// Applies `mappings` in order; two tensors mapping to one name is an error.
    public func mapped(_ mappings: [StateDictMapping]) throws -> StateDict {
        var outNames: [String] = [], out: [String: Tensor] = [:]
        for name in names {
            var (n, t) = (name, tensors[name]!)
            for m in mappings { (n, t) = m.apply(n, t) }
            guard out[n] == nil else { throw WeightsError(file: file, "two tensors map to '\(n)' (one of them is '\(name)')") }
            out[n] = t; outNames.append(n)
        }
        return StateDict(names: outNames, tensors: out, file: file)
    }

    /// The tensors for `expected`, or one error naming every missing, unexpected and mis-shaped tensor.
    /// Names for which `ignoring` is true (default: BatchNorm's `num_batches_tracked`) are skipped on both sides.
    public func matching(_ expected: [ParameterSpec], model: String = "model",
                         ignoring: (String) -> Bool = { $0.hasSuffix("num_batches_tracked") }) throws -> [String: Tensor] {
        var missing: [String] = [], misShaped: [String] = [], out: [String: Tensor] = [:]
        let wanted = Set(expected.map(\.name))
        for p in expected where !ignoring(p.name) {
            guard let t = tensors[p.name] else { missing.append("\(p.name) \(p.shape)"); continue }
            if t.shape != p.shape {
                misShaped.append("\(p.name): expected \(p.shape), found \(t.shape)")
            } else { out[p.name] = t }
        }
        let unexpected = names.filter { !wanted.contains($0) && !ignoring($0) }.map { "\($0) \(tensors[$0]!.shape)" }
        guard missing.isEmpty && unexpected.isEmpty && misShaped.isEmpty else {
            func list(_ title: String, _ xs: [String]) -> String {
                xs.isEmpty ? "" : "\n  \(title) (\(xs.count)): " + xs.prefix(12).joined(separator: "; ") + (xs.count > 12 ? "; …" : "")
            }
            throw WeightsError(file: file, "state_dict does not match \(model)"
                + list("wrong shape", misShaped) + list("missing", missing) + list("unexpected", unexpected))
        }
        return out
    }
}
