// MARK: - Models a recipe can name (`runner list models`)
//
// The one list of model names: `load_model` accepts the ImageNet architectures, `train` the
// offline CNN and paper B's gated architectures; both steps, `runner list models` and the errors
// for an unknown name read these enums.

/// torchvision's ImageNet classifiers, by constructor name (`load_model`). Paper A uses
/// resnet50, vgg11_bn and densenet121; the other depths load the same way.
public enum ImageNetArchitecture: String, RecipeName {
    case resnet18, resnet34, resnet50, resnet101, resnet152
    case vgg11, vgg13, vgg16, vgg19
    case vgg11BN = "vgg11_bn", vgg13BN = "vgg13_bn", vgg16BN = "vgg16_bn", vgg19BN = "vgg19_bn"
    case densenet121, densenet161, densenet169, densenet201

    public static let what = "architecture"

    /// The three networks of paper A's figures.
    public static let paperA: [ImageNetArchitecture] = [.resnet50, .vgg11BN, .densenet121]

    public enum Family: Sendable { case resnet, vgg, densenet }

    public var family: Family {
        if rawValue.hasPrefix("resnet") { return .resnet }
        return rawValue.hasPrefix("vgg") ? .vgg : .densenet
    }

    /// 11, 13, 16 or 19 for the VGGs.
    var vggDepth: Int? { family == .vgg ? Int(rawValue.dropFirst(3).prefix(2)) : nil }

    /// The state_dict name of the classifier's weight, [classes, features] (torchvision names).
    public var classifierWeight: String {
        switch family {
        case .resnet: return "fc.weight"
        case .vgg: return "classifier.6.weight"
        case .densenet: return "classifier.weight"
        }
    }

    public var summary: String {
        let timm = Self.paperA.contains(self) ? ", or timm \(rawValue).tv_in1k" : ""
        switch family {
        case .resnet: return "load_model: torchvision \(rawValue) (IMAGENET1K_V1 weights\(timm))"
        case .vgg: return "load_model: torchvision \(rawValue)\(rawValue.hasSuffix("_bn") ? " (with BatchNorm)" : "") (IMAGENET1K_V1\(timm))"
        case .densenet: return "load_model: torchvision \(rawValue) (IMAGENET1K_V1\(timm)); final functional ReLU hard"
        }
    }
}

/// Paper B's gated-network architectures (`train` with `model: {architecture: …}`).
public enum GatedArchitectureName: String, RecipeName {
    case fc, c1gap, c4gap, vgg16, resnet110

    public static let what = "architecture"

    public var summary: String {
        switch self {
        case .fc: return "train step, paper B / NeurIPS 2020: fully connected, width x depth, no biases"
        case .c1gap: return "train step, paper B: conv 3x3 -> ReLU -> GAP -> FC"
        case .c4gap: return "train step, paper B: 4 x [conv 3x3, ReLU] -> GAP -> FC"
        case .vgg16: return "train step, paper B: 13 conv + BN + ReLU, average pools, GAP, FC"
        case .resnet110: return "train step, paper B: CIFAR ResNet-110 (option A shortcuts)"
        }
    }
}

public enum ModelCatalogue {
    public struct Entry: Sendable { public let name: String; public let summary: String }
    public static let entries: [Entry] =
        [Entry(name: SmallCNN.name, summary: "train step: 2 conv(3x3)+ReLU+maxpool blocks, FC 64, FC 10; the offline recipe's model")]
        + ImageNetArchitecture.allCases.map { Entry(name: $0.rawValue, summary: $0.summary) }
        + GatedArchitectureName.allCases.map { Entry(name: $0.rawValue, summary: $0.summary) }
}
