// MARK: - Models a recipe can name (`runner list models`)
//
// The one list of model names: `load_model` accepts the ImageNet architectures, `train` the
// offline CNN and paper B's gated architectures; both steps, `runner list models` and the errors
// for an unknown name read these enums.

/// Paper A's ImageNet classifiers, by torchvision constructor name (`load_model`).
public enum ImageNetArchitecture: String, RecipeName {
    case resnet50
    case vgg11BN = "vgg11_bn"
    case densenet121

    public static let what = "architecture"

    public var summary: String {
        switch self {
        case .resnet50: return "load_model: torchvision ResNet50 (IMAGENET1K_V1 weights, or timm resnet50.tv_in1k)"
        case .vgg11BN: return "load_model: torchvision VGG11 with BatchNorm (IMAGENET1K_V1, or timm vgg11_bn.tv_in1k)"
        case .densenet121: return "load_model: torchvision DenseNet121 (IMAGENET1K_V1, or timm densenet121.tv_in1k); final functional ReLU hard"
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
