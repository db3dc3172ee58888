// MARK: - Report
//
// The human-readable artifact of a recipe run: an ordered list of blocks written as report.md
// (images linked by relative path, plots as .svg files beside it) and a self-contained
// report.html (images as base64 data URIs, SVG inline). Everything user-supplied is escaped.
import Foundation

/// One pass/fail check: what was measured against what was expected.
///
/// ```swift
/// CheckResult(name: "top-1 accuracy", measured: 0.7611, expected: 0.7613, tolerance: 0.002)
/// ```
public struct CheckResult: Equatable, Sendable {
    public var name: String
    public var passed: Bool
    public var measured: String
    public var expected: String
    public var note: String

    public init(name: String, passed: Bool, measured: String, expected: String, note: String = "") {
        self.name = name; self.passed = passed; self.measured = measured; self.expected = expected; self.note = note
    }

    /// Passes when |measured - expected| <= tolerance (NaN fails). Expected shows as "e ± tol".
    public init(name: String, measured: Double, expected: Double, tolerance: Double, note: String = "") {
        self.init(name: name, passed: abs(measured - expected) <= tolerance,
                  measured: "\(measured)", expected: "\(expected) ± \(tolerance)", note: note)
    }
}

/// A run report built from ordered blocks.
///
/// ```swift
/// var r = Report(title: "Figure 1 — ResNet50, 5-step PGA")
/// r.add(.markdown("Excitation pullbacks with *T* = 0.3; cells are `perturbed - clean`."))
/// r.add(.canvas(try grid.render(), file: "fig1.png", caption: "Figure 1"))
/// r.add(.checks([CheckResult(name: "diagonal top-1", passed: true, measured: "5/5", expected: "5/5")]))
/// let (md, html) = try r.write(to: URL(fileURLWithPath: "runs/fig1"))
/// ```
public struct Report: Sendable {
    public enum Block: Sendable {
        /// A heading; level 1...6 (the report title is level 1).
        case heading(String, level: Int)
        /// Prose in the Markdown subset described at `MarkdownHTML`.
        case markdown(String)
        /// An existing image file, path relative to the report directory.
        case image(path: String, caption: String)
        /// An image drawn in memory, written by `write(to:)` as PNG to `file` (relative), then
        /// shown like `.image`.
        case canvas(RGBImage, file: String, caption: String)
        /// A table; with `csvFile` its CSV is written beside the report and linked.
        case table(Table, caption: String, csvFile: String?)
        /// A plot written as SVG to `file` (relative) and linked from report.md; inlined in report.html.
        case plot(LinePlot, file: String, caption: String)
        /// Pass/fail checks, shown as one table with a summary line.
        case checks([CheckResult])
        /// A preformatted block (config, command line, log excerpt).
        case code(String, language: String)
        /// Key/value pairs (versions, seeds, hashes), shown as a two-column table.
        case metadata([KeyValue])
    }

    public struct KeyValue: Equatable, Sendable {
        public var key: String, value: String
        public init(_ key: String, _ value: String) { self.key = key; self.value = value }
    }

    public var title: String
    public var blocks: [Block]

    public init(title: String, blocks: [Block] = []) {
        self.title = title
        self.blocks = blocks
    }

    public mutating func add(_ block: Block) { blocks.append(block) }

    /// All checks in the report.
    public var checks: [CheckResult] {
        blocks.flatMap { b -> [CheckResult] in if case .checks(let c) = b { return c } else { return [] } }
    }

    // MARK: Writing

    /// Writes the files of `.canvas`, `.plot` and `.table(csvFile:)` blocks, then report.md and
    /// report.html, all atomically, into `directory`. Returns the two report URLs.
    @discardableResult
    public func write(to directory: URL) throws -> (markdown: URL, html: URL) {
        var written: [String: Data] = [:]          // relative path -> bytes, reused for inlining
        for (k, block) in blocks.enumerated() {
            switch block {
            case .canvas(let canvas, let file, _):
                try Self.checkRelative(file)
                let data = try PNG.encode(canvas)
                try AtomicFile.write(data, to: directory.appendingPathComponent(file))
                written[file] = data
            case .plot(let plot, let file, _):
                try Self.checkRelative(file)
                let data = Data(try plot.svg(id: "plot\(k)").utf8)
                try AtomicFile.write(data, to: directory.appendingPathComponent(file))
                written[file] = data
            case .table(let table, _, let csv?):
                try Self.checkRelative(csv)
                try AtomicFile.write(table.csv(), to: directory.appendingPathComponent(csv))
            default: break
            }
        }
        let md = directory.appendingPathComponent("report.md")
        let html = directory.appendingPathComponent("report.html")
        try AtomicFile.write(markdown(), to: md)
        try AtomicFile.write(try self.html(resolve: { path in
            if let d = written[path] { return d }
            let url = path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
            guard let d = FileManager.default.contents(atPath: url.path) else {
                throw ReportError.missingFile("Report '\(title)': image '\(path)' not found at \(url.path)")
            }
            return d
        }), to: html)
        return (md, html)
    }

    /// Output file names must stay inside the report directory.
    static func checkRelative(_ path: String) throws {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard !path.isEmpty, !path.hasPrefix("/"), !parts.contains(".."), !parts.contains("") else {
            throw ReportError.invalidInput("Report: output file '\(path)' must be a relative path inside the report directory (no '..', no leading '/')")
        }
    }

    // MARK: Markdown

    /// report.md: images and plots linked by relative path.
    public func markdown() -> String {
        var out = "# \(Self.mdInline(title))\n\n"
        for block in blocks {
            switch block {
            case .heading(let text, let level):
                out += String(repeating: "#", count: min(max(level, 1), 6)) + " " + Self.mdInline(text) + "\n\n"
            case .markdown(let text):
                out += text.trimmingCharacters(in: .newlines) + "\n\n"
            case .image(let path, let caption), .canvas(_, let path, let caption), .plot(_, let path, let caption):
                out += "![\(Self.mdInline(caption))](\(Self.mdPath(path)))\n\n"
                if !caption.isEmpty { out += "*\(Self.mdInline(caption))*\n\n" }
            case .table(let table, let caption, let csv):
                if !caption.isEmpty { out += "**\(Self.mdInline(caption))**\n\n" }
                out += table.markdown() + "\n"
                if let csv { out += "[CSV](\(Self.mdPath(csv)))\n\n" }
            case .checks(let checks):
                let passed = checks.filter(\.passed).count
                out += "**Checks: \(passed)/\(checks.count) passed**\n\n"
                out += Self.checkTable(checks, markdown: true).markdown() + "\n"
            case .code(let code, let language):
                // A fence longer than any backtick run inside the code.
                var longest = 0, run = 0
                for ch in code { if ch == "`" { run += 1; longest = max(longest, run) } else { run = 0 } }
                let fence = String(repeating: "`", count: max(3, longest + 1))
                out += fence + language.filter { !$0.isWhitespace && $0 != "`" } + "\n" + code.trimmingCharacters(in: .newlines) + "\n" + fence + "\n\n"
            case .metadata(let pairs):
                out += Table(headers: ["key", "value"], rows: pairs.map { [.text($0.key), .text($0.value)] }).markdown() + "\n"
            }
        }
        return out
    }

    static func checkTable(_ checks: [CheckResult], markdown: Bool) -> Table {
        Table(headers: ["status", "check", "measured", "expected", "note"],
              rows: checks.map { c in
                  [.text(markdown ? (c.passed ? "\u{2705} PASS" : "\u{274C} FAIL") : (c.passed ? "PASS" : "FAIL")), .text(c.name), .text(c.measured),
                   .text(c.expected), .text(c.note)]
              },
              alignments: [.left, .left, .right, .right, .left])
    }

    /// Escapes Markdown inline syntax characters in user text (captions, headings).
    static func mdInline(_ s: String) -> String {
        var out = ""
        for ch in s {
            if "\\`*_[]<#|".contains(ch) { out.append("\\") }
            out.append(ch == "\n" ? " " : ch)
        }
        return out
    }

    /// A relative path usable as a Markdown link target (spaces and parentheses percent-encoded).
    static func mdPath(_ p: String) -> String {
        p.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: " ", with: "%20")
            .replacingOccurrences(of: "(", with: "%28").replacingOccurrences(of: ")", with: "%29")
    }

    // MARK: HTML

    /// report.html: self-contained. `resolve` returns the bytes of an image by its relative path.
    public func html(resolve: (String) throws -> Data) throws -> String {
        let esc = HTML.escape
        var body = "<h1>\(esc(title))</h1>\n"
        for (k, block) in blocks.enumerated() {
            switch block {
            case .heading(let text, let level):
                let l = min(max(level, 1), 6)
                body += "<h\(l)>\(esc(text))</h\(l)>\n"
            case .markdown(let text):
                body += MarkdownHTML.render(text)
            case .image(let path, let caption), .canvas(_, let path, let caption):
                let mime = try Self.mimeType(path)
                let data = try resolve(path)
                body += "<figure><img src=\"data:\(mime);base64,\(data.base64EncodedString())\" alt=\"\(esc(caption))\">"
                body += caption.isEmpty ? "</figure>\n" : "<figcaption>\(esc(caption))</figcaption></figure>\n"
            case .plot(let plot, _, let caption):
                body += "<figure>\n" + (try plot.svg(id: "plot\(k)"))
                body += caption.isEmpty ? "</figure>\n" : "<figcaption>\(esc(caption))</figcaption></figure>\n"
            case .table(let table, let caption, let csv):
                if !caption.isEmpty { body += "<p class=\"caption\">\(esc(caption))</p>\n" }
                body += table.html()
                if let csv { body += "<p class=\"csv\"><a href=\"\(esc(csv))\">CSV</a></p>\n" }
            case .checks(let checks):
                let passed = checks.filter(\.passed).count
                let cls = passed == checks.count ? "pass" : "fail"
                body += "<p class=\"summary \(cls)\">Checks: \(passed)/\(checks.count) passed</p>\n"
                body += "<table class=\"checks\">\n<thead><tr><th>status</th><th>check</th><th class=\"r\">measured</th><th class=\"r\">expected</th><th>note</th></tr></thead>\n<tbody>\n"
                for c in checks {
                    body += "<tr class=\"\(c.passed ? "pass" : "fail")\"><td class=\"status\">\(c.passed ? "PASS" : "FAIL")</td>"
                    body += "<td>\(esc(c.name))</td><td class=\"r\">\(esc(c.measured))</td><td class=\"r\">\(esc(c.expected))</td><td>\(esc(c.note))</td></tr>\n"
                }
                body += "</tbody>\n</table>\n"
            case .code(let code, _):
                body += "<pre><code>\(esc(code.trimmingCharacters(in: .newlines)))</code></pre>\n"
            case .metadata(let pairs):
                body += "<table class=\"meta\">\n<tbody>\n"
                for p in pairs { body += "<tr><th>\(esc(p.key))</th><td><code>\(esc(p.value))</code></td></tr>\n" }
                body += "</tbody>\n</table>\n"
            }
        }
        return """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(esc(title))</title>
        <style>
        \(Self.css)
        </style>
        </head>
        <body>
        \(body)</body>
        </html>

        """
    }

    static func mimeType(_ path: String) throws -> String {
        switch (path as NSString).pathExtension.lowercased() {
        case "png": return "image/png"
        case "jpg", "jpeg": return "image/jpeg"
        case "svg": return "image/svg+xml"
        case "gif": return "image/gif"
        case "webp": return "image/webp"
        default: throw ReportError.invalidInput("Report: cannot inline image '\(path)': unknown extension (png, jpg, svg, gif, webp)")
        }
    }

    static let css = """
    body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1.2em; color: #1d1d1f; line-height: 1.5; }
    h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
    h2 { border-bottom: 1px solid #eee; padding-bottom: .2em; margin-top: 1.8em; }
    figure { margin: 1.2em 0; }
    figure img { max-width: 100%; image-rendering: pixelated; border: 1px solid #eee; }
    figure svg { max-width: 100%; height: auto; }
    figcaption, p.caption { color: #555; font-size: .92em; margin: .4em 0; }
    p.caption { font-weight: 600; color: #333; }
    table { border-collapse: collapse; margin: .8em 0; font-size: .93em; }
    th, td { border: 1px solid #d0d0d0; padding: .3em .7em; text-align: left; vertical-align: top; }
    thead th { background: #f3f3f3; }
    .r { text-align: right; font-variant-numeric: tabular-nums; }
    .c { text-align: center; }
    table.meta th { background: #f7f7f7; font-weight: 600; }
    tr.pass td.status { color: #1a7f37; font-weight: 700; }
    tr.fail td.status { color: #cf222e; font-weight: 700; }
    tr.fail { background: #fff5f5; }
    p.summary { font-weight: 700; }
    p.summary.pass { color: #1a7f37; }
    p.summary.fail { color: #cf222e; }
    code { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .9em; background: #f4f4f4; padding: .1em .3em; border-radius: 3px; }
    pre { background: #f6f8fa; padding: .8em 1em; overflow-x: auto; border-radius: 4px; }
    pre code { background: none; padding: 0; }
    """
}

// MARK: - Markdown subset → HTML

/// Renders the Markdown subset used in report prose, escaping all text (raw HTML is shown as text):
/// ATX headings (`#`…`######`), paragraphs, `-`/`*`/`+` and `1.` lists (one level), fenced code
/// blocks, `code spans`, `*em*`/`_em_`, `**strong**`, `[text](url)` links (http, https, mailto,
/// relative and `#` targets only) and backslash escapes. `$…$` math is left as text.
///
/// ```swift
/// MarkdownHTML.render("Use *soft* gates: `sigmoid(z/T)`")
/// // "<p>Use <em>soft</em> gates: <code>sigmoid(z/T)</code></p>\n"
/// ```
public enum MarkdownHTML {
    public static func render(_ markdown: String) -> String {
        var out = ""
        var paragraph: [String] = []
        var list: (ordered: Bool, items: [String])?
        var fence: (marker: String, lines: [String])?

        func flushParagraph() {
            if !paragraph.isEmpty { out += "<p>" + inline(paragraph.joined(separator: "\n")) + "</p>\n"; paragraph = [] }
        }
        func flushList() {
            if let l = list {
                let tag = l.ordered ? "ol" : "ul"
                out += "<\(tag)>\n" + l.items.map { "<li>" + inline($0) + "</li>\n" }.joined() + "</\(tag)>\n"
                list = nil
            }
        }

        let lines = markdown.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false)
        for rawLine in lines {
            let line = String(rawLine)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if var f = fence {
                if trimmed.hasPrefix(f.marker) && trimmed.allSatisfy({ $0 == f.marker.first }) {
                    out += "<pre><code>" + HTML.escape(f.lines.joined(separator: "\n")) + "</code></pre>\n"
                    fence = nil
                } else { f.lines.append(line); fence = f }
                continue
            }
            if trimmed.hasPrefix("```") || trimmed.hasPrefix("~~~") {
                flushParagraph(); flushList()
                let ch = trimmed.first!
                fence = (String(trimmed.prefix { $0 == ch }), [])
                continue
            }
            if trimmed.isEmpty { flushParagraph(); flushList(); continue }
            if let (level, text) = heading(trimmed) {
                flushParagraph(); flushList()
                out += "<h\(level)>" + inline(text) + "</h\(level)>\n"
                continue
            }
            if let (ordered, text) = listItem(trimmed) {
                flushParagraph()
                if let l = list, l.ordered != ordered { flushList() }
                if list == nil { list = (ordered, []) }
                list!.items.append(text)
                continue
            }
            if list != nil, line.first == " " || line.first == "\t" {   // continuation of a list item
                list!.items[list!.items.count - 1] += "\n" + trimmed
                continue
            }
            flushList()
            paragraph.append(trimmed)
        }
        if let f = fence { out += "<pre><code>" + HTML.escape(f.lines.joined(separator: "\n")) + "</code></pre>\n" }
        flushParagraph(); flushList()
        return out
    }

    static func heading(_ line: String) -> (Int, String)? {
        let hashes = line.prefix { $0 == "#" }.count
        guard (1...6).contains(hashes) else { return nil }
        let rest = line.dropFirst(hashes)
        guard rest.isEmpty || rest.first == " " else { return nil }
        var text = rest.trimmingCharacters(in: .whitespaces)
        while text.hasSuffix("#") { text.removeLast() }                       // closing hashes
        return (hashes, text.trimmingCharacters(in: .whitespaces))
    }

    static func listItem(_ line: String) -> (Bool, String)? {
        if let f = line.first, "-*+".contains(f), line.dropFirst().first == " " {
            return (false, String(line.dropFirst(2)).trimmingCharacters(in: .whitespaces))
        }
        let digits = line.prefix { $0.isASCII && $0.isNumber }
        if !digits.isEmpty, digits.count <= 9 {
            let rest = line.dropFirst(digits.count)
            if let d = rest.first, d == "." || d == ")", rest.dropFirst().first == " " {
                return (true, String(rest.dropFirst(2)).trimmingCharacters(in: .whitespaces))
            }
        }
        return nil
    }

    /// Inline spans of one block of text.
    public static func inline(_ text: String) -> String {
        render(Array(text)[...])
    }

    private static func render(_ s: ArraySlice<Character>) -> String {
        var out = ""
        var i = s.startIndex
        func find(_ delim: [Character], from: Int) -> Int? {
            var j = from
            while j + delim.count <= s.endIndex {
                if s[j] == "\\" { j += 2; continue }
                if Array(s[j..<(j + delim.count)]) == delim { return j }
                j += 1
            }
            return nil
        }
        // The ")" closing the "(" at `open`, allowing balanced parentheses inside the URL.
        func matchingParen(_ open: Int) -> Int? {
            var depth = 0
            for j in open..<s.endIndex {
                if s[j] == "(" { depth += 1 } else if s[j] == ")" { depth -= 1; if depth == 0 { return j } }
            }
            return nil
        }
        func isWordChar(_ k: Int) -> Bool { k >= s.startIndex && k < s.endIndex && (s[k].isLetter || s[k].isNumber) }

        while i < s.endIndex {
            let c = s[i]
            // Backslash escape of ASCII punctuation.
            if c == "\\", i + 1 < s.endIndex, s[i + 1].isASCII, s[i + 1].isPunctuation || s[i + 1].isSymbol {
                out += HTML.escape(String(s[i + 1])); i += 2; continue
            }
            // Code span: a run of n backticks closed by the next run of n.
            if c == "`" {
                let n = s[i...].prefix { $0 == "`" }.count
                let delim = [Character](repeating: "`", count: n)
                var j = i + n
                var close: Int?
                while j + n <= s.endIndex {
                    if Array(s[j..<(j + n)]) == delim, j + n == s.endIndex || s[j + n] != "`", s[j - 1] != "`" { close = j; break }
                    j += 1
                }
                if let close {
                    out += "<code>" + HTML.escape(String(s[(i + n)..<close]).trimmingCharacters(in: .whitespaces)) + "</code>"
                    i = close + n
                } else { out += HTML.escape(String(delim)); i += n }
                continue
            }
            // Inline math: left as text (escaped), not parsed for emphasis.
            if c == "$" {
                let n = (i + 1 < s.endIndex && s[i + 1] == "$") ? 2 : 1
                let delim = [Character](repeating: "$", count: n)
                if let close = find(delim, from: i + n), close > i + n {
                    out += "<span class=\"math\">" + HTML.escape(String(s[i..<(close + n)])) + "</span>"
                    i = close + n
                } else { out += "$"; i += 1 }
                continue
            }
            // Link [text](url).
            if c == "[", let closeBracket = find(["]"], from: i + 1), closeBracket + 1 < s.endIndex, s[closeBracket + 1] == "(",
               let closeParen = matchingParen(closeBracket + 1) {
                let url = String(s[(closeBracket + 2)..<closeParen]).trimmingCharacters(in: .whitespaces)
                let label = render(s[(i + 1)..<closeBracket])
                out += safeURL(url) ? "<a href=\"\(HTML.escape(url))\">\(label)</a>" : label
                i = closeParen + 1
                continue
            }
            // Strong **x**.
            if c == "*", i + 1 < s.endIndex, s[i + 1] == "*", i + 2 < s.endIndex, !s[i + 2].isWhitespace,
               let close = find(["*", "*"], from: i + 2), close > i + 2 {
                out += "<strong>" + render(s[(i + 2)..<close]) + "</strong>"
                i = close + 2
                continue
            }
            // Emphasis *x* or _x_ (underscores only at word boundaries, so snake_case stays literal).
            if c == "*" || c == "_", i + 1 < s.endIndex, !s[i + 1].isWhitespace, s[i + 1] != c,
               !(c == "_" && isWordChar(i - 1)),
               let close = find([c], from: i + 1), !s[close - 1].isWhitespace, !(c == "_" && isWordChar(close + 1)) {
                out += "<em>" + render(s[(i + 1)..<close]) + "</em>"
                i = close + 1
                continue
            }
            out += c == "\n" ? "\n" : HTML.escape(String(c))
            i += 1
        }
        return out
    }

    /// Only harmless link targets: http(s), mailto, fragments and scheme-less relative paths.
    static func safeURL(_ url: String) -> Bool {
        let lower = url.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") || lower.hasPrefix("mailto:") || lower.hasPrefix("#") { return true }
        // Scheme-less: no ':' before the first '/', '?' or '#'.
        let head = lower.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        return !head.contains(":") && !url.contains(where: { $0.isWhitespace })
    }
}
