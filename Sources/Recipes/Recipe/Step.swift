// MARK: - Steps
//
// Each step kind is a small type: it declares the keys it accepts (so a typo in a recipe is an
// error with a did-you-mean before anything runs), validates its config when the recipe is
// loaded, names the earlier steps it depends on, and runs against a `RunContext`.
import Foundation
import SIMDCore

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
    /// Ids of earlier steps whose outputs this step reads.
    var dependencies: [String] { get }
    /// Does the work: reads earlier outputs from `ctx`, stores its own, adds report blocks.
    func run(_ ctx: RunContext) throws
}

extension RecipeStep {
    public static var cached: Bool { false }
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
