// MARK: - Recipe
//
// A recipe is a notebook: metadata, declared parameters, optional variants (selected by the
// `scale` parameter), and an ordered list of cells — Markdown prose and steps. See docs/recipes.md.
//
//   title: "…"          paper: A | B       figure: fig1
//   summary: "…"        parameters: {…}    variants: {ci: {…}, paper: {…}}
//   cells:
//     - markdown: |
//         ## What the figure shows …
//     - step: train
//       id: cnn
//       title: "Train the CNN"
//       with: {model: mnist_cnn, epochs: $epochs}
import Foundation

/// One cell of a recipe.
public enum Cell: Sendable {
    case markdown(String)
    case step(StepCell)
}

/// A step cell as written in the recipe (its `with:` config is validated by the step kind).
public struct StepCell: Sendable {
    public let kind: String
    public let id: String
    public let title: String?
    public let config: YAMLNode
    public let node: YAMLNode
}

/// A parsed, validated recipe (parameters not yet resolved).
public struct Recipe: Sendable {
    /// File stem, e.g. `fig1`; names the run directory and `golden/<name>/`.
    public let name: String
    public let file: String
    public let title: String
    public let paper: String
    public let figure: String
    public let summary: String
    public let parameters: [RecipeParameter]
    /// Overrides per value of the `scale` parameter.
    public let variants: [String: [(key: String, value: YAMLNode)]]
    public let cells: [Cell]
    /// Rough wall time per value of `scale` (`time:`), as the recipe states it, in recipe order.
    public let time: [(scale: String, text: String)]
    /// Where each cell starts (same order as `cells`): a prose error names the line it is on.
    public let cellNodes: [YAMLNode]

    static let topKeys = ["title", "paper", "figure", "summary", "parameters", "variants", "cells", "time"]
    static let cellKeys = ["markdown", "step", "id", "title", "with"]

    /// Parses and validates `url`: unknown keys, wrong types, unknown step kinds and duplicate ids
    /// are errors naming file:line:column.
    public static func load(_ url: URL) throws -> Recipe {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw RecipeError("\(url.path): no such recipe file (see `runner list recipes`)")
        }
        let root = try YAMLParser.parse(file: url)
        return try Recipe(root: root, url: url)
    }

    init(root: YAMLNode, url: URL) throws {
        try root.checkKeys(allowed: Recipe.topKeys)
        name = url.deletingPathExtension().lastPathComponent
        file = url.path
        title = try root.string(at: "title")
        paper = try root.string(at: "paper", default: "")
        figure = try root.string(at: "figure", default: name)
        summary = try root.string(at: "summary", default: "")

        var specs: [RecipeParameter] = []
        if let p = try root.optional("parameters") {
            for (k, v) in try p.entries { specs.append(try RecipeParameter(name: k, node: v)) }
        }
        parameters = specs

        var vars: [String: [(key: String, value: YAMLNode)]] = [:]
        if let v = try root.optional("variants") {
            guard let scale = specs.first(where: { $0.name == "scale" }) else {
                throw v.error("variants are selected by a parameter named 'scale', which this recipe does not declare")
            }
            for (k, body) in try v.entries {
                if case .choice(let c) = scale.type, !c.contains(k) {
                    throw body.error("variant '\(Limits.quoted(k))' is not a value of parameter 'scale' (\(Limits.listed(c)))")
                }
                let entries = try body.entries
                for (pk, pv) in entries {
                    guard let spec = specs.first(where: { $0.name == pk }) else {
                        var msg = "variant '\(k)' sets undeclared parameter '\(pk)'"
                        if let near = nearestName(to: pk, candidates: specs.map(\.name)) { msg += "; did you mean '\(near)'?" }
                        throw pv.error(msg)
                    }
                    // Type and range are checked for every variant when the recipe loads, not only for the one a run selects.
                    try spec.check(try RecipeParameter.convert(pv, to: spec.type, name: pk), at: pv)
                }
                vars[k] = entries
            }
        }
        variants = vars

        var times: [(scale: String, text: String)] = []
        if let t = try root.optional("time"), case .scalar = t.kind {
            times.append(("", try t.string))          // a recipe without scales: one time
        } else if let t = try root.optional("time") {
            let scale = specs.first { $0.name == "scale" }
            for (k, v) in try t.entries {
                if case .choice(let c)? = scale?.type, !c.contains(k) {
                    throw v.error("time: '\(Limits.quoted(k))' is not a value of parameter 'scale' (\(Limits.listed(c)))")
                }
                if scale == nil { throw v.error("time: is given per value of a parameter named 'scale', which this recipe does not declare") }
                times.append((k, try v.string))
            }
        }
        time = times

        var cells: [Cell] = []
        var nodes: [YAMLNode] = []
        var ids: [String: YAMLNode] = [:]
        for (i, c) in try root.array(at: "cells").enumerated() {
            try c.checkKeys(allowed: Recipe.cellKeys)
            if let md = try c.optional("markdown") {
                guard try c.optional("step") == nil else { throw c.error("a cell is either `markdown` or `step`, not both") }
                cells.append(.markdown(try md.string))
                nodes.append(md)
                continue
            }
            guard let kindNode = try c.optional("step") else {
                throw c.error("cell \(i + 1) needs `markdown: …` or `step: <kind>`")
            }
            let kind = try kindNode.string
            guard StepRegistry.kinds[kind] != nil else {
                var msg = "unknown step kind '\(kind)'"
                if let near = nearestName(to: kind, candidates: StepRegistry.names) { msg += "; did you mean '\(near)'?" }
                msg += " (step kinds: \(StepRegistry.names.joined(separator: ", ")))"
                throw kindNode.error(msg)
            }
            let id = try c.string(at: "id", default: "\(kind)\(i + 1)")
            if let prev = ids[id] {
                throw c.error("duplicate step id '\(id)' (first used at line \(prev.mark.line))")
            }
            ids[id] = c
            let config = try c.optional("with") ?? YAMLNode(.mapping([]), mark: c.mark, file: c.file, path: c.path + ".with")
            cells.append(.step(StepCell(kind: kind, id: id, title: try c.optional("title")?.string,
                                        config: config, node: c)))
            nodes.append(c)
        }
        self.cells = cells
        self.cellNodes = nodes
    }

    /// `file:line` of line `lineOffset` (0-based) inside markdown cell `index`: block scalars
    /// (`|`, `>`) start on the line after their indicator.
    func proseLocation(cell index: Int, lineOffset: Int) -> String {
        let n = cellNodes[index]
        var block = false
        if case .scalar(_, let style) = n.kind { block = style == .literal || style == .folded }
        let line = n.mark.line + lineOffset + (block ? 1 : 0)
        return "\(file):\(line)"
    }

    // MARK: Resolution

    /// Applies defaults, the variant for `scale`, the seed and `--set` overrides, in that order.
    public func resolve(overrides: [String], seed: UInt64?) throws -> ResolvedParameters {
        var r = ResolvedParameters(values: Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0.defaultValue) }),
                                   order: parameters.map(\.name))
        let byName = Dictionary(uniqueKeysWithValues: parameters.map { ($0.name, $0) })
        // --set scale=… chooses the variant, so look for it first.
        var sets: [(String, String)] = []
        for o in overrides {
            let parts = o.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw RecipeError("--set expects key=value, got '\(o)'") }
            guard byName[parts[0]] != nil else {
                var msg = "--set \(o): recipe \(name) has no parameter '\(parts[0])'"
                if let near = nearestName(to: parts[0], candidates: r.order) { msg += "; did you mean '\(near)'?" }
                else { msg += " (parameters: \(Limits.listed(r.order)))" }
                throw RecipeError(msg)
            }
            sets.append((parts[0], parts[1]))
        }
        if let s = sets.last(where: { $0.0 == "scale" }) { r.set("scale", try byName["scale"]!.parse(s.1)) }
        if case .string(let scale)? = r["scale"], let variant = variants[scale] {
            for (k, v) in variant { r.set(k, try RecipeParameter.convert(v, to: byName[k]!.type, name: k)) }
        }
        if let seed {
            guard byName["seed"] != nil else { throw RecipeError("--seed: recipe \(name) declares no `seed` parameter") }
            r.set("seed", .int(Int(truncatingIfNeeded: seed)))
        }
        for (k, v) in sets { r.set(k, try byName[k]!.parse(v)) }
        return r
    }
}
