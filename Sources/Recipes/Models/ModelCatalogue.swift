// MARK: - Models a recipe can name (`runner list models`)
public enum ModelCatalogue {
    public struct Entry: Sendable { public let name: String; public let summary: String }
    public static let entries: [Entry] = [
        Entry(name: "mnist_cnn", summary: "train step: 2 conv(3x3)+ReLU+maxpool blocks, FC 64, FC 10; the offline recipe's model"),
        Entry(name: "resnet50", summary: "load_model: torchvision ResNet50 (IMAGENET1K_V1 weights, or timm resnet50.tv_in1k)"),
        Entry(name: "vgg11_bn", summary: "load_model: torchvision VGG11 with BatchNorm (IMAGENET1K_V1, or timm vgg11_bn.tv_in1k)"),
        Entry(name: "densenet121", summary: "load_model: torchvision DenseNet121 (IMAGENET1K_V1, or timm densenet121.tv_in1k); final functional ReLU hard"),
        Entry(name: "fc", summary: "train step, paper B / NeurIPS 2020: fully connected, width x depth, no biases"),
        Entry(name: "c1gap", summary: "train step, paper B: conv 3x3 -> ReLU -> GAP -> FC"),
        Entry(name: "c4gap", summary: "train step, paper B: 4 x [conv 3x3, ReLU] -> GAP -> FC"),
        Entry(name: "vgg16", summary: "train step, paper B: 13 conv + BN + ReLU, average pools, GAP, FC"),
        Entry(name: "resnet110", summary: "train step, paper B: CIFAR ResNet-110 (option A shortcuts)"),
    ]
}
