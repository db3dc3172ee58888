// MARK: - Steps
//
// Each step kind is a small type: it declares the keys it accepts (so a typo in a recipe is an
// error with a did-you-mean before anything runs), validates its config when the recipe is
// loaded, names the earlier steps it depends on, and runs against a `RunContext`.
import Foundation
import SIMDCore

// MARK: - What steps pass to each other

/// The type of a value one step produces and a later step reads; matched when the recipe is
/// validated, so a wrong pairing is an error before any step runs.
public enum StepValueType: String, Sendable, CustomStringConvertible {
    case dataset = "Dataset"
    case classifier = "Classifier"
    case gatedNetwork = "GatedNetwork"

    public var description: String { rawValue }
}

/// A value a step produces for later steps.
public enum StepValue {
    /// Images in [0, 1] with labels (`load_data`, `load_images`).
    case dataset(Dataset)
    /// A model whose logits pull back to its input (`load_model`; `train` of mnist_cnn).
    case classifier(Classifier)
    /// One of paper B's gated networks (`train` of a DNN, DGN, DLGN, DLGN-SF or an FC regime).
    case gatedNetwork(GatedNetwork)

    public var type: StepValueType {
        switch self {
        case .dataset: return .dataset
        case .classifier: return .classifier
        case .gatedNetwork: return .gatedNetwork
        }
    }
}

/// One input of a step: the earlier step named under `key` and the type it must produce.
///
/// ```swift
/// data = try StepInput("data", in: config, type: .dataset)    // with: {data: test}
/// let d = try ctx.dataset(data)
/// ```
public struct StepInput: Sendable {
    public let key: String
    /// Id of the step that produces the value.
    public let step: String
    public let type: StepValueType
    /// The recipe value naming the step: errors point at it.
    public let node: YAMLNode

    init(_ key: String, in config: YAMLNode, type: StepValueType) throws {
        self.init(key: key, node: try config.node(at: key), step: try config.node(at: key).string, type: type)
    }

    /// The input under `key`, or nil when the key is absent.
    init?(optional key: String, in config: YAMLNode, type: StepValueType) throws {
        guard let n = try config.optional(key) else { return nil }
        self.init(key: key, node: n, step: try n.string, type: type)
    }

    private init(key: String, node: YAMLNode, step: String, type: StepValueType) {
        self.key = key; self.node = node; self.step = step; self.type = type
    }
}

// MARK: - Step kinds

/// A kind of step a recipe can use, e.g. `train`, `explain`, `ascend`.
public protocol RecipeStep {
    /// The name used after `step:` in a recipe.
    static var kind: String { get }
    /// One line for `runner list steps`.
    static var summary: String { get }
    /// Keys accepted under `with:`.
    static var keys: [String] { get }
    /// Whether the step's outputs are cached by the content hash of its inputs (expensive steps).
    static var cached: Bool { get }

    /// Builds and validates the step from its (parameter-substituted) config.
    init(id: String, config: YAMLNode) throws
    /// The earlier steps whose outputs this step reads, each with the type it needs.
    var inputs: [StepInput] { get }
    /// The type of what this step stores for later steps; nil when it stores nothing.
    var output: StepValueType? { get }
    /// Does the work: reads earlier outputs from `ctx`, stores its own, adds report blocks.
    func run(_ ctx: RunContext) throws
    /// Files from outside the repository the step reads (weights, images, data sets), so a dry
    /// run can list them and an offline run can name every missing one before anything runs.
    var neededFiles: [NeededFile] { get }
}

extension RecipeStep {
    public static var cached: Bool { false }
    public var neededFiles: [NeededFile] { [] }
    /// Ids of the earlier steps this step reads.
    public var dependencies: [String] { inputs.map(\.step) }
}

/// All step kinds, by name.
public enum StepRegistry {
    public static let all: [RecipeStep.Type] = registeredSteps
    public static let kinds: [String: RecipeStep.Type] = Dictionary(uniqueKeysWithValues: all.map { t in (t.kind, t) })
    public static var names: [String] { all.map { $0.kind } }

    /// Builds a step from its cell, after parameter substitution, checking its keys.
    static func make(_ cell: StepCell, params: ResolvedParameters) throws -> RecipeStep {
        let type = kinds[cell.kind]!
        let config = try params.substitute(cell.config)
        if case .mapping = config.kind { try config.checkKeys(allowed: type.keys) }
        else { throw config.error("`with:` must be a mapping of \(cell.kind) settings") }
        return try type.init(id: cell.id, config: config)
    }
}
