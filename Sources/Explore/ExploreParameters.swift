// MARK: - The parameters of one view of the page
//
// Every parameter of a view is a query parameter (so a URL reproduces the view):
//
//   model    mnist_cnn | resnet50 | vgg11_bn | densenet121
//   weights  trained (mnist_cnn) | torchvision | synthetic (ImageNet architectures)
//   image    digit:<0…999> (MNIST test set) | example:<name> (shipped photographs) | upload:<id>
//   target   class index (0…9, or 0…999)
//   method   excitation_pullback | gradient | input_x_gradient | smoothgrad | integrated_gradients
//   gate     sigmoid | normal_cdf (excitation_pullback)
//   T        gate temperature, 0.001…100
//   steps    PGA steps, 0…20
//   alpha    L2 length of one step, 0…1000
//   eps      L2 radius of the ball, 0…10000
//   size     ImageNet input side, 32…224 (paper A: 224)
//   client   the page's own id: a newer request with the same id cancels the older one
//
// Unknown keys, repeated keys and values out of range are refused with 400, naming the key.
import Foundation
import Recipes

/// The models the page offers (a closed set).
public enum ServeModel: String, CaseIterable, Sendable {
    case mnistCNN = "mnist_cnn"
    case resnet50
    case vgg11BN = "vgg11_bn"
    case densenet121

    /// The ImageNet architecture, nil for the MNIST CNN.
    public var imageNet: ImageNetArchitecture? { ImageNetArchitecture(rawValue: rawValue) }
    public var classCount: Int { self == .mnistCNN ? 10 : 1000 }
}

/// Where a model's weights come from.
public enum ServeWeights: String, CaseIterable, Sendable {
    /// The MNIST CNN trained on the shipped subset (on first use, then cached).
    case trained
    /// torchvision's ImageNet weights, when present in the weight cache.
    case torchvision
    /// Deterministic random weights: the mechanics without meaningful pictures.
    case synthetic
}

/// The explanation methods the page offers (the registered ones).
public enum ServeMethod: String, CaseIterable, Sendable {
    case excitationPullback = "excitation_pullback"
    case gradient
    case inputXGradient = "input_x_gradient"
    case smoothgrad
    case integratedGradients = "integrated_gradients"
}

/// Backward gates of the excitation pullback.
public enum ServeGate: String, CaseIterable, Sendable {
    case sigmoid
    case normalCDF = "normal_cdf"
}

/// Which image a view explains.
public enum ImageReference: Equatable, Sendable, CustomStringConvertible {
    case digit(Int)
    case example(String)
    case upload(String)

    public var description: String {
        switch self {
        case .digit(let i): return "digit:\(i)"
        case .example(let n): return "example:\(n)"
        case .upload(let id): return "upload:\(id)"
        }
    }
}

/// One view: everything `/api/explain`, `/api/strip` and `/api/recipe` need.
public struct ExploreParameters: Equatable, Sendable {
    public var model: ServeModel = .mnistCNN
    public var weights: ServeWeights = .trained
    public var image: ImageReference = .digit(0)
    public var target: Int = 0
    public var method: ServeMethod = .excitationPullback
    public var gate: ServeGate = .sigmoid
    public var temperature: Float = 0.3
    public var steps: Int = 5
    public var alpha: Float = 1.5
    public var eps: Float = 7
    public var size: Int = 224
    public var client: String?

    public init() {}

    // MARK: Ranges

    public static let temperatureRange: ClosedRange<Float> = 0.001...100
    public static let stepsRange: ClosedRange<Int> = 0...20
    public static let alphaRange: ClosedRange<Float> = 0...1000
    public static let epsRange: ClosedRange<Float> = 0...10000
    public static let sizeRange: ClosedRange<Int> = 32...224
    /// Images of the MNIST test split (100 per digit).
    public static let digitCount = 1000
    public static let keys = ["model", "weights", "image", "target", "method", "gate", "T", "steps", "alpha", "eps", "size", "client"]

    /// Paper A's settings for a model: alpha 20 and eps 100 at 3x224x224; the MNIST CNN's
    /// (1.5, 7) are the same scaled by sqrt(784 / 150528), as in the offline recipe.
    public static func defaults(for model: ServeModel) -> ExploreParameters {
        var p = ExploreParameters()
        p.model = model
        if model != .mnistCNN {
            p.weights = .torchvision; p.image = .example("chelsea"); p.target = 281
            p.alpha = 20; p.eps = 100
        }
        return p
    }

    // MARK: Parsing

    /// Parses query parameters; `extra` names keys an endpoint adds (e.g. `kind`).
    public static func parse(_ query: [(String, String)], extra: [String] = []) throws -> ExploreParameters {
        var seen: [String: String] = [:]
        for (k, v) in query {
            guard keys.contains(k) || extra.contains(k) else {
                throw ServeError(.badRequest, "unknown parameter '\(Limits.quoted(k))'; known: \((keys + extra).joined(separator: ", "))")
            }
            guard seen[k] == nil else { throw ServeError(.badRequest, "parameter '\(k)' given twice") }
            seen[k] = v
        }
        let model: ServeModel = try seen["model"].map { try name($0, key: "model") } ?? .mnistCNN
        var p = defaults(for: model)
        if let w = seen["weights"] { p.weights = try name(w, key: "weights") }
        if model == .mnistCNN && p.weights != .trained {
            throw ServeError(.badRequest, "weights: mnist_cnn has weights 'trained' only, got '\(Limits.quoted(p.weights.rawValue))'")
        }
        if model != .mnistCNN && p.weights == .trained {
            throw ServeError(.badRequest, "weights: \(model.rawValue) takes 'torchvision' or 'synthetic', got 'trained'")
        }
        if let s = seen["image"] { p.image = try image(s, model: model) }
        if let s = seen["target"] { p.target = try integer(s, key: "target", in: 0...(model.classCount - 1)) }
        if let s = seen["method"] { p.method = try name(s, key: "method") }
        if let s = seen["gate"] { p.gate = try name(s, key: "gate") }
        if let s = seen["T"] { p.temperature = try real(s, key: "T", in: temperatureRange) }
        if let s = seen["steps"] { p.steps = try integer(s, key: "steps", in: stepsRange) }
        if let s = seen["alpha"] { p.alpha = try real(s, key: "alpha", in: alphaRange) }
        if let s = seen["eps"] { p.eps = try real(s, key: "eps", in: epsRange) }
        if let s = seen["size"] {
            guard model != .mnistCNN else { throw ServeError(.badRequest, "size: mnist_cnn takes 28x28 digits; size is for the ImageNet models") }
            p.size = try integer(s, key: "size", in: sizeRange)
        }
        if let c = seen["client"] {
            guard (1...64).contains(c.count), c.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else {
                throw ServeError(.badRequest, "client: expected 1 to 64 letters, digits or '-', got '\(Limits.quoted(c))'")
            }
            p.client = c
        }
        return p
    }

    /// The query string of this view (without `client`), in a fixed key order.
    public var query: String {
        var items = [("model", model.rawValue), ("weights", weights.rawValue), ("image", image.description),
                     ("target", String(target)), ("method", method.rawValue), ("gate", gate.rawValue),
                     ("T", number(temperature)), ("steps", String(steps)), ("alpha", number(alpha)), ("eps", number(eps))]
        if model != .mnistCNN { items.append(("size", String(size))) }
        return items.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._:"))) ?? $0.1)" }
            .joined(separator: "&")
    }

    // MARK: Value parsers

    public static func name<E: RawRepresentable & CaseIterable>(_ s: String, key: String) throws -> E where E.RawValue == String {
        guard let v = E(rawValue: s) else {
            throw ServeError(.badRequest, "\(key): expected one of \(E.allCases.map(\.rawValue).joined(separator: ", ")), got '\(Limits.quoted(s))'")
        }
        return v
    }

    static func integer(_ s: String, key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let v = Int(s) else { throw ServeError(.badRequest, "\(key): expected an integer in \(range.lowerBound)…\(range.upperBound), got '\(Limits.quoted(s))'") }
        guard range.contains(v) else { throw ServeError(.badRequest, "\(key): \(v) is out of range \(range.lowerBound)…\(range.upperBound)") }
        return v
    }

    static func real(_ s: String, key: String, in range: ClosedRange<Float>) throws -> Float {
        guard let v = Float(s), v.isFinite else { throw ServeError(.badRequest, "\(key): expected a number in \(number(range.lowerBound))…\(number(range.upperBound)), got '\(Limits.quoted(s))'") }
        guard range.contains(v) else { throw ServeError(.badRequest, "\(key): \(number(v)) is out of range \(number(range.lowerBound))…\(number(range.upperBound))") }
        return v
    }

    static func image(_ s: String, model: ServeModel) throws -> ImageReference {
        let parts = s.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2 else {
            throw ServeError(.badRequest, "image: expected digit:<0…\(digitCount - 1)>, example:<name> or upload:<id>, got '\(Limits.quoted(s))'")
        }
        switch parts[0] {
        case "digit":
            guard model == .mnistCNN else { throw ServeError(.badRequest, "image: digit images go with mnist_cnn; \(model.rawValue) takes example:<name> or upload:<id>") }
            return .digit(try integer(parts[1], key: "image digit", in: 0...(digitCount - 1)))
        case "example":
            guard model != .mnistCNN else { throw ServeError(.badRequest, "image: mnist_cnn takes digit:<index> or upload:<id>") }
            guard ExampleImages.names.contains(parts[1]) else {
                throw ServeError(.badRequest, "image: no example '\(Limits.quoted(parts[1]))'; examples: \(ExampleImages.names.joined(separator: ", "))")
            }
            return .example(parts[1])
        case "upload":
            guard parts[1].count == 16, parts[1].allSatisfy({ $0.isHexDigit }) else {
                throw ServeError(.badRequest, "image: an upload id is 16 hexadecimal digits, got '\(Limits.quoted(parts[1]))'")
            }
            return .upload(parts[1].lowercased())
        default:
            throw ServeError(.badRequest, "image: expected digit:, example: or upload:, got '\(Limits.quoted(parts[0]))'")
        }
    }
}

/// Shortest text of a number that reads back the same ("0.3", "20", "1e-05").
func number(_ v: Float) -> String {
    if v == v.rounded(), abs(v) < 1e7 { return String(Int(v)) }
    return "\(v)"
}

/// The photographs shipped in data/images (ImageNet labels as in the figure recipes).
public enum ExampleImages {
    public static let files: [(name: String, file: String, label: Int)] = [
        ("chelsea", "chelsea.png", 281), ("rocket", "rocket.jpg", 657), ("camera", "camera.png", 759),
    ]
    public static var names: [String] { files.map(\.name) }
}
