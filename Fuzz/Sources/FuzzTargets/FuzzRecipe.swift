// MARK: - Recipe targets: YAML text through to a validated plan; `--set` values
import Foundation
@testable import Recipes

enum FuzzRecipe {
    /// Parse → recipe schema → parameter resolution → markdown interpolation → every step's
    /// config validated (what `runner --dry-run` does, without touching the file system).
    static func plan(_ data: Data) throws {
        let root = try YAMLParser.parse(data, file: "fuzz.yaml")
        let recipe = try Recipe(root: root, url: URL(fileURLWithPath: "/fuzz/fuzz.yaml"))
        let params = try recipe.resolve(overrides: [], seed: nil)
        for case .markdown(let md) in recipe.cells { _ = try params.interpolate(md) }
        for case .step(let cell) in recipe.cells { _ = try StepRegistry.make(cell, params: params) }
    }

    /// A recipe declaring one parameter of each type, and the input's lines as `--set` overrides.
    static let declared: Recipe = {
        let yaml = """
            title: fuzz
            parameters:
              seed: 0
              count: {default: 3, min: 1, max: 1000}
              rate: {default: 0.5, min: 0.0, max: 1.0}
              name: abc
              flag: true
              scale: {default: ci, choices: [ci, paper]}
            cells:
              - markdown: "${count} ${rate} ${name} ${flag} ${scale}"
              - step: table
                id: t
                with: {caption: "${name} $rate", rows: [{label: "${name}", paper: $rate, decimals: $count}]}
            """
        return try! Recipe(root: try! YAMLParser.parse(yaml, file: "fuzz.yaml"), url: URL(fileURLWithPath: "/fuzz/fuzz.yaml"))
    }()

    static func overrides(_ data: Data) throws {
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let params = try declared.resolve(overrides: lines, seed: nil)
        for case .markdown(let md) in declared.cells { _ = try params.interpolate(md) }
        for case .step(let cell) in declared.cells { _ = try params.substitute(cell.config) }
    }
}
