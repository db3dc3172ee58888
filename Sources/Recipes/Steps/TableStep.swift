// MARK: - table: measured numbers side by side with a paper's
//
//   - step: table
//     id: table1
//     with:
//       caption: "Paper B, Table I (C4GAP)"
//       paper_for: $dataset            # optional: picks a `paper:` entry when it is a mapping
//       rows:
//         - {label: DNN, metric: dnn.test_accuracy, std_metric: dnn.test_accuracy_std,
//            paper: {cifar10: "80.5±0.4", cifar100: "51.8±0.4"}}
//         - {label: "DLGN(x,1)/DNN", expr: "dlgn_x1.test_accuracy / dnn.test_accuracy * 100",
//            name: ratio, paper: "93.66"}
//         - {label: "DGN(x,x), permuted", mean_of: [p1.test_accuracy, p2.test_accuracy], name: dgn_perm}
//
// Renders "model | measured (mean ± std) | paper". A row reads one recorded metric (`metric`,
// optional `std_metric`), evaluates an expression over metrics (`expr`, the claim grammar's
// arithmetic), or averages metrics (`mean_of`, std across them). Derived values (expr, mean_of)
// are recorded as metrics `<id>.<name>` (name defaults to a slug of the label) so `check` steps
// and goldens can use them.
//
// Optional wide layout, one measured/paper column pair per model, rows e.g. per permutation regime:
//       columns: [DNN, "DGN(x,x)"]
//       rows:
//         - label: "no permutation"
//           cells: [{metric: dnn.test_accuracy, paper: "80.5±0.4"}, {metric: dgn_xx.test_accuracy, paper: "77.4±0.3"}]
import Foundation

/// One measured number of a table and the paper's number beside it.
struct TableCellSpec {
    enum Source { case metric(String, std: String?), expr(String), meanOf([String]), none }
    let source: Source
    let name: String?
    let paper: [(key: String, value: String)]
    let decimals: Int

    static let keys = ["metric", "std_metric", "expr", "mean_of", "name", "paper", "decimals"]

    init(_ node: YAMLNode, label: String?) throws {
        let given = try ["metric", "expr", "mean_of"].filter { try node.optional($0) != nil }
        guard given.count <= 1 else { throw node.error("a table cell reads one of metric, expr or mean_of, not \(given.joined(separator: " and "))") }
        if let m = try node.optional("metric") {
            source = .metric(try m.string, std: try node.optional("std_metric")?.string)
        } else if let e = try node.optional("expr") {
            let text = try e.string
            do { _ = try Claim(TableCellSpec.claimText(text)) } catch let err as RecipeError { throw e.error(err.message) }
            source = .expr(text)
        } else if let m = try node.optional("mean_of") {
            let names = try m.array.map { try $0.string }
            guard !names.isEmpty else { throw m.error("mean_of needs at least one metric name") }
            source = .meanOf(names)
        } else {
            source = .none
        }
        if try node.optional("std_metric") != nil {
            guard case .metric = source else { throw node.error("std_metric goes with metric") }
        }
        let explicit = try node.optional("name")?.string
        switch source {
        case .expr, .meanOf: name = explicit ?? label.map(TableCellSpec.slug)
        default: name = explicit
        }
        if let p = try node.optional("paper") {
            if case .mapping = p.kind { paper = try p.entries.map { ($0.key, try $0.value.string) } }
            else { paper = [("", try p.string)] }
        } else { paper = [] }
        decimals = try node.int(at: "decimals", default: 2)
    }

    /// An expression is evaluated as the left side of the claim `(expr) >= 0`, reusing the claim parser.
    static func claimText(_ expr: String) -> String { "(\(expr)) >= 0" }

    /// "DLGN(x,1)/DNN" → "dlgn_x_1_dnn"
    static func slug(_ s: String) -> String {
        var out = ""
        for ch in s.lowercased() {
            if ch.isLetter || ch.isNumber { out.append(ch) } else if !out.hasSuffix("_") && !out.isEmpty { out.append("_") }
        }
        while out.hasSuffix("_") { out.removeLast() }
        return out.isEmpty ? "value" : out
    }

    /// The paper's number for `key` (a mapping falls back to its first entry, named in `usedKey`).
    func paperText(for key: String?) -> (text: String, usedKey: String?) {
        guard let first = paper.first else { return ("–", nil) }
        if first.key.isEmpty { return (first.value, nil) }
        if let k = key, let e = paper.first(where: { $0.key == k }) { return (e.value, e.key) }
        return (first.value, first.key)
    }

    /// (mean, std?) from recorded metrics; a metric that was not recorded is an error naming it.
    func measure(_ lookup: (String) -> Double?) throws -> (value: Double, std: Double?)? {
        func need(_ m: String) throws -> Double {
            guard let v = lookup(m) else { throw RecipeError("table: no metric '\(m)' was recorded by the steps before it") }
            return v
        }
        switch source {
        case .none: return nil
        case .metric(let m, let s): return (try need(m), try s.map(need))
        case .expr(let e): return (try Claim(TableCellSpec.claimText(e)).evaluate(lookup).lhs, nil)
        case .meanOf(let ms):
            let xs = try ms.map(need)
            let mean = xs.reduce(0, +) / Double(xs.count)
            let std = xs.count > 1 ? (xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(xs.count - 1)).squareRoot() : 0
            return (mean, std)
        }
    }
}

struct TableStep: RecipeStep {
    static let kind = "table"
    static let summary = "Show measured metrics (mean ± std, ratios, means over steps) side by side with a paper's numbers."
    static let keys = ["rows", "columns", "caption", "paper_for", "csv", "label_header"]

    struct Row { let label: String; let cells: [TableCellSpec] }

    let id: String
    let rows: [Row]
    let columns: [String]?
    let caption: String
    let paperFor: String?
    let csv: String
    let labelHeader: String
    var inputs: [StepInput] { [] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        columns = try config.optional("columns")?.array.map { try $0.string }
        caption = try config.string(at: "caption", default: "")
        paperFor = try config.optional("paper_for")?.string
        csv = try config.string(at: "csv", default: "\(id).csv")
        labelHeader = try config.string(at: "label_header", default: "model")
        let rowNodes = try config.node(at: "rows").array
        guard !rowNodes.isEmpty else { throw config.error("table needs at least one row") }
        var rows: [Row] = []
        for r in rowNodes {
            let label = try r.string(at: "label")
            if let cols = columns {
                try r.checkKeys(allowed: ["label", "cells"])
                let cells = try r.node(at: "cells").array
                guard cells.count == cols.count else {
                    throw r.error("row '\(label)' has \(cells.count) cells for \(cols.count) columns (\(cols.joined(separator: ", ")))")
                }
                rows.append(Row(label: label, cells: try cells.enumerated().map { (i, c) in
                    try c.checkKeys(allowed: TableCellSpec.keys)
                    return try TableCellSpec(c, label: "\(label) \(cols[i])")
                }))
            } else {
                try r.checkKeys(allowed: ["label"] + TableCellSpec.keys)
                rows.append(Row(label: label, cells: [try TableCellSpec(r, label: label)]))
            }
        }
        self.rows = rows
    }

    static func format(_ m: (value: Double, std: Double?)?, decimals: Int) -> String {
        guard let m else { return "–" }
        let v = String(format: "%.\(decimals)f", m.value)
        return m.std.map { v + " ± " + String(format: "%.\(decimals)f", $0) } ?? v
    }

    /// The rendered table and the derived metrics (`<id>.<name>`), from recorded metrics.
    func render(_ lookup: (String) -> Double?) throws -> (table: Table, derived: [(name: String, value: Double)]) {
        var derived: [(String, Double)] = []
        var usedKey: String?
        var body: [[TableValue]] = []
        // Derived values are visible to later rows (e.g. a ratio of two mean_of rows).
        func look(_ n: String) -> Double? { derived.last { $0.0 == n }?.1 ?? lookup(n) }
        for row in rows {
            var line: [TableValue] = [.text(row.label)]
            for cell in row.cells {
                let m = try cell.measure(look)
                if let m, let n = cell.name { derived.append(("\(id).\(n)", m.value)) }
                let p = cell.paperText(for: paperFor)
                if let k = p.usedKey { usedKey = k }
                line += [.text(TableStep.format(m, decimals: cell.decimals)), .text(p.text)]
            }
            body.append(line)
        }
        let paperHeader = usedKey.map { "paper (\($0))" } ?? "paper"
        let headers: [String]
        if let cols = columns { headers = [labelHeader] + cols.flatMap { ["\($0) measured", "\($0) \(paperHeader)"] } }
        else { headers = [labelHeader, "measured (mean ± std)", paperHeader] }
        return (Table(headers: headers, rows: body, alignments: [.left] + Array(repeating: .right, count: headers.count - 1)), derived)
    }

    func run(_ ctx: RunContext) throws {
        let (table, derived) = try render { ctx.metric($0) }
        for (n, v) in derived { ctx.record(n, v) }
        ctx.add(.table(table, caption: caption, csvFile: csv))
        if !ctx.settings.quiet { ctx.narrator.say(table.markdown()) }
    }
}

// MARK: - Public entry point (tests, tools)

/// Renders a `table` step from its `with:` config and given metrics, without a run.
///
/// ```swift
/// let (t, derived) = try ResultTable.render(config: "rows: [{label: DNN, metric: dnn.acc, paper: '80.5'}]",
///                                           metrics: ["dnn.acc": 80.1])
/// print(t.markdown())   // | model | measured (mean ± std) | paper | …
/// ```
public enum ResultTable {
    public static func render(config yaml: String, id: String = "table",
                              metrics: [String: Double]) throws -> (table: Table, derived: [(name: String, value: Double)]) {
        let node = try YAMLParser.parse(yaml)
        try node.checkKeys(allowed: TableStep.keys)
        return try TableStep(id: id, config: node).render { metrics[$0] }
    }
}
