// MARK: - Table
//
// Result tables (accuracies, faithfulness numbers, timings) rendered to Markdown for report.md,
// CSV (RFC 4180) for machines, and HTML for report.html.
import Foundation

/// One table cell: text, an integer, or a number (shortest round-trip form, or fixed decimals).
public enum TableValue: Equatable, Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral {
    case text(String)
    case integer(Int)
    case number(Double)
    case fixed(Double, decimals: Int)
    case missing

    public init(stringLiteral value: String) { self = .text(value) }
    public init(integerLiteral value: Int) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .number(value) }

    /// The cell as text: numbers in Swift's shortest round-trip form ("0.1", "1e-05"), `.fixed`
    /// with `String(format: "%.*f")`, missing as "".
    public var text: String {
        switch self {
        case .text(let s): return s
        case .integer(let i): return String(i)
        case .number(let d): return d.isFinite && d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : "\(d)"
        case .fixed(let d, let n): return d.isFinite ? String(format: "%.\(max(0, n))f", d) : "\(d)"
        case .missing: return ""
        }
    }

    var isNumeric: Bool {
        switch self { case .integer, .number, .fixed: return true; default: return false }
    }
}

/// A table with headers, rows and per-column alignment.
///
/// ```swift
/// var t = Table(headers: ["model", "steps", "top-1 %"])
/// t.append(["ResNet50", 5, .fixed(76.13, decimals: 2)])
/// print(t.markdown())   // | model | steps | top-1 % | ...
/// try AtomicFile.write(t.csv(), to: url)
/// ```
public struct Table: Equatable, Sendable {
    public enum Alignment: Equatable, Sendable { case left, center, right }

    public var headers: [String]
    public var rows: [[TableValue]]
    /// Per-column alignment; nil = automatic (right if every non-missing cell is numeric, else left).
    public var alignments: [Alignment?]

    public init(headers: [String], rows: [[TableValue]] = [], alignments: [Alignment?] = []) {
        self.headers = headers
        self.rows = rows
        self.alignments = alignments
    }

    public mutating func append(_ row: [TableValue]) { rows.append(row) }

    /// Number of columns: the widest of the header and any row (short rows are padded with empty cells).
    public var columnCount: Int { max(headers.count, rows.map(\.count).max() ?? 0) }

    public func alignment(ofColumn c: Int) -> Alignment {
        if c < alignments.count, let a = alignments[c] { return a }
        let values = rows.compactMap { c < $0.count ? $0[c] : nil }.filter { $0 != .missing }
        return !values.isEmpty && values.allSatisfy(\.isNumeric) ? .right : .left
    }

    func cellText(_ r: Int, _ c: Int) -> String { c < rows[r].count ? rows[r][c].text : "" }
    func headerText(_ c: Int) -> String { c < headers.count ? headers[c] : "" }

    // MARK: Markdown (GitHub pipe table)

    /// A GitHub-flavoured pipe table. Cells are data, shown literally: Markdown syntax characters
    /// (`\ | < * _ ` [ ]`) are backslash-escaped, newlines become spaces.
    public func markdown() -> String {
        let n = columnCount
        guard n > 0 else { return "" }
        func esc(_ s: String) -> String {
            var out = ""
            for ch in s {
                if ch == "\n" || ch == "\r" || ch == "\r\n" { out.append(" "); continue }
                if "\\|<*_`[]".contains(ch) { out.append("\\") }
                out.append(ch)
            }
            return out
        }
        let header = (0..<n).map { esc(headerText($0)) }
        let body = rows.indices.map { r in (0..<n).map { esc(cellText(r, $0)) } }
        // Pad columns to a common width so the source is readable too.
        let widths = (0..<n).map { c in max(3, ([header[c]] + body.map { $0[c] }).map(\.count).max() ?? 0) }
        func pad(_ s: String, _ c: Int) -> String {
            let fill = String(repeating: " ", count: widths[c] - s.count)
            switch alignment(ofColumn: c) {
            case .right: return fill + s
            case .center: let l = fill.count / 2; return String(repeating: " ", count: l) + s + String(repeating: " ", count: fill.count - l)
            case .left: return s + fill
            }
        }
        func line(_ cells: [String]) -> String { "| " + cells.enumerated().map { pad($1, $0) }.joined(separator: " | ") + " |" }
        let rule = "|" + (0..<n).map { c -> String in
            let dashes = String(repeating: "-", count: widths[c] - 1)
            switch alignment(ofColumn: c) {
            case .left: return " :" + dashes + " "
            case .right: return " " + dashes + ": "
            case .center: return " :" + String(dashes.dropLast()) + ": "
            }
        }.joined(separator: "|") + "|"
        return ([line(header), rule] + body.map(line)).joined(separator: "\n") + "\n"
    }

    // MARK: CSV (RFC 4180)

    /// RFC 4180 CSV: CRLF line ends; a field containing a comma, double quote, CR or LF is enclosed
    /// in double quotes with inner quotes doubled. The header row comes first.
    public func csv() -> String {
        let n = columnCount
        var lines = [(0..<n).map { Self.csvField(headerText($0)) }.joined(separator: ",")]
        for r in rows.indices { lines.append((0..<n).map { Self.csvField(cellText(r, $0)) }.joined(separator: ",")) }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    public static func csvField(_ s: String) -> String {
        let needsQuotes = s.unicodeScalars.contains { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }
        return needsQuotes ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
    }

    // MARK: HTML

    /// An HTML `<table>` with every cell escaped.
    public func html() -> String {
        let n = columnCount
        func style(_ c: Int) -> String {
            switch alignment(ofColumn: c) { case .left: return ""; case .right: return " class=\"r\""; case .center: return " class=\"c\"" }
        }
        var s = "<table>\n<thead><tr>"
        for c in 0..<n { s += "<th\(style(c))>\(HTML.escape(headerText(c)))</th>" }
        s += "</tr></thead>\n<tbody>\n"
        for r in rows.indices {
            s += "<tr>"
            for c in 0..<n { s += "<td\(style(c))>\(HTML.escape(cellText(r, c)))</td>" }
            s += "</tr>\n"
        }
        return s + "</tbody>\n</table>\n"
    }
}

/// HTML/XML text escaping.
public enum HTML {
    /// Escapes `& < > " '` so the result is safe in element content and in quoted attributes.
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for ch in s.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters other than tab/newline are not allowed in XML 1.0.
                if ch.value < 0x20 && ch != "\t" && ch != "\n" && ch != "\r" { out += "\u{FFFD}" } else { out.unicodeScalars.append(ch) }
            }
        }
        return out
    }
}
