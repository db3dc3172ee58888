// MARK: - Catalogue: what `runner list` prints
import Foundation

public enum Catalogue {
    /// Every recipe in `dir` with its figure and title.
    public static func recipes(in dir: String) throws -> String {
        let fm = FileManager.default
        guard let files = try? fm.contentsOfDirectory(atPath: dir) else {
            throw RecipeError("\(dir): no such directory (run from the repository root, or pass --dir)")
        }
        var rows: [[String]] = []
        var scales: [String: [String]] = [:]
        for f in files.sorted() where f.hasSuffix(".yaml") || f.hasSuffix(".yml") {
            let path = (dir as NSString).appendingPathComponent(f)
            if let r = try? Recipe.load(URL(fileURLWithPath: path)) {
                rows.append([path, r.paper.isEmpty ? "-" : r.paper, r.figure, r.title])
                scales[path] = scaleLines(r)
            } else {
                rows.append([path, "?", "?", "(does not load: run it to see the error)"])
            }
        }
        let table = columns(["recipe", "paper", "figure", "title"], rows).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        // Under each recipe, per scale: what it needs and roughly how long it takes.
        var out = [table[0]]
        for (row, line) in zip(rows, table.dropFirst()) { out.append(line); out += scales[row[0]] ?? [] }
        return out.joined(separator: "\n")
    }

    /// `    ci (default): offline; ≈ 20 s` for each value of `scale` (or the recipe's only setting).
    static func scaleLines(_ r: Recipe) -> [String] {
        let scale = r.parameters.first { $0.name == "scale" }
        var values: [String] = []
        if case .choice(let c)? = scale?.type { values = c } else if let d = scale?.defaultValue { values = ["\(d)"] }
        let times = Dictionary(r.time.map { ($0.scale, $0.text) }, uniquingKeysWith: { a, _ in a })
        if values.isEmpty {
            return ["    " + needs(r, overrides: []) + (r.time.first.map { "; \($0.text)" } ?? "")]
        }
        return values.map { v in
            let isDefault = scale.map { "\($0.defaultValue)" == v } ?? false
            return "    \(v)\(isDefault ? " (default)" : ""): \(needs(r, overrides: ["scale=\(v)"])); \(times[v] ?? "time not stated")"
        }
    }

    /// "offline", or what the run downloads: each weight file and data set with its size, and the number of images.
    static func needs(_ r: Recipe, overrides: [String]) -> String {
        guard let plan = try? RecipeEngine.plan(RunSettings(recipePath: r.file, overrides: overrides)) else { return "does not plan" }
        let files = RecipeEngine.neededFiles(plan).filter { $0.url != nil }   // local files ship with the project
        guard !files.isEmpty else { return "offline" }
        let images = files.filter { $0.what.hasPrefix("image ") }, grids = files.filter { $0.what.hasPrefix("reference grid ") }
        var parts = files.filter { !$0.what.hasPrefix("image ") && !$0.what.hasPrefix("reference grid ") }.map { f in
            f.what + (f.approximateSize.map { " \($0.hasPrefix("about") ? $0 : "about " + $0)" } ?? "")
        }
        if !images.isEmpty { parts.append("\(images.count) image\(images.count == 1 ? "" : "s")") }
        if !grids.isEmpty { parts.append("\(grids.count) published grid\(grids.count == 1 ? "" : "s") to compare with") }
        return "downloads " + parts.joined(separator: ", ")
    }

    public static func methods() -> String {
        columns(["method", "what it computes"], ExplanationMethod.catalogue.map { [$0.name, $0.summary] })
    }

    public static func models() -> String {
        columns(["model", "what it is"], ModelCatalogue.entries.map { [$0.name, $0.summary] })
    }

    public static func steps() -> String {
        columns(["step", "what it does"], StepRegistry.all.map { [$0.kind, $0.summary] })
    }

    static func columns(_ headers: [String], _ rows: [[String]]) -> String {
        let widths = headers.indices.map { c in ([headers[c]] + rows.map { $0[c] }).map(\.count).max()! }
        func line(_ r: [String]) -> String {
            zip(r, widths).enumerated().map { i, p in i == r.count - 1 ? p.0 : p.0.padding(toLength: p.1, withPad: " ", startingAt: 0) }
                .joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }
}
