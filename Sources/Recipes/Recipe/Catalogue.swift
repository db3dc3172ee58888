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
        for f in files.sorted() where f.hasSuffix(".yaml") || f.hasSuffix(".yml") {
            let path = (dir as NSString).appendingPathComponent(f)
            if let r = try? Recipe.load(URL(fileURLWithPath: path)) {
                rows.append([path, r.paper.isEmpty ? "-" : r.paper, r.figure, r.title])
            } else {
                rows.append([path, "?", "?", "(does not load: run it to see the error)"])
            }
        }
        return columns(["recipe", "paper", "figure", "title"], rows)
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
