// MARK: - Recipe parameters
//
// A recipe declares its parameters with defaults; a run resolves them in layers:
//   defaults  →  variant selected by `scale` (e.g. ci / paper)  →  --seed  →  --set key=value
// Every layer is type-checked against the declaration. Step configs refer to parameters as
// `$name` (a whole scalar: keeps the parameter's type) or `${name}` inside a longer string.
import Foundation

/// A parameter's value. Integers widen to floats where a float is declared.
public enum ParamValue: Equatable, Sendable, CustomStringConvertible {
    case int(Int), float(Double), string(String), bool(Bool)

    public var description: String {
        switch self {
        case .int(let v): return String(v)
        case .float(let v): return v == v.rounded() && abs(v) < 1e15 ? String(format: "%.1f", v) : String(v)
        case .string(let s): return s
        case .bool(let b): return b ? "true" : "false"
        }
    }
}

/// The declared type of a parameter.
public enum ParamType: Equatable, Sendable, CustomStringConvertible {
    case int, float, string, bool
    case choice([String])

    public var description: String {
        switch self {
        case .int: return "an integer"
        case .float: return "a number"
        case .string: return "a string"
        case .bool: return "a boolean (true or false)"
        case .choice(let c): return "one of \(Limits.listed(c))"
        }
    }
}

/// One declared parameter of a recipe.
///
/// ```yaml
/// parameters:
///   seed: 0                                   # short form: type from the default
///   temperature: {default: 0.3, min: 0.001, help: "Gate temperature T"}
///   scale: {default: ci, choices: [ci, paper]}
/// ```
public struct RecipeParameter: Sendable {
    public let name: String
    public let type: ParamType
    public let defaultValue: ParamValue
    public let help: String
    public let minimum: Double?
    public let maximum: Double?

    static let keys = ["default", "type", "help", "choices", "min", "max"]

    init(name: String, node: YAMLNode) throws {
        self.name = name
        if case .mapping = node.kind {
            try node.checkKeys(allowed: RecipeParameter.keys)
            let dnode = try node.node(at: "default")
            help = try node.string(at: "help", default: "")
            minimum = try node.optional("min")?.double
            maximum = try node.optional("max")?.double
            if let choices = try node.optional("choices") {
                let list = try choices.array.map { try $0.string }
                type = .choice(list)
            } else if let t = try node.optional("type") {
                switch try t.string {
                case "int": type = .int
                case "float": type = .float
                case "string": type = .string
                case "bool": type = .bool
                case let other:
                    var msg = "unknown parameter type '\(other)' (int, float, string, bool)"
                    if let n = nearestName(to: other, candidates: ["int", "float", "string", "bool"]) { msg += "; did you mean '\(n)'?" }
                    throw t.error(msg)
                }
            } else {
                type = RecipeParameter.inferType(dnode)
            }
            defaultValue = try RecipeParameter.convert(dnode, to: type, name: name)
        } else {
            type = RecipeParameter.inferType(node)
            defaultValue = try RecipeParameter.convert(node, to: type, name: name)
            help = ""; minimum = nil; maximum = nil
        }
        try check(defaultValue, at: node)
    }

    /// Default, choices or bounds, and help, for `show-config` and `runner <recipe> --help`.
    public var details: String {
        var parts = ["default \(defaultValue)"]
        switch type {
        case .choice(let c): parts.append("one of \(c.joined(separator: ", "))")
        case .bool: parts.append("true or false")
        default:
            if minimum != nil || maximum != nil {
                func bound(_ v: Double) -> String { type == .int && v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : "\(ParamValue.float(v))" }
                parts.append([minimum.map { "min \(bound($0))" }, maximum.map { "max \(bound($0))" }].compactMap { $0 }.joined(separator: ", "))
            }
        }
        return parts.joined(separator: "; ") + (help.isEmpty ? "" : ". \(help)")
    }

    static func inferType(_ n: YAMLNode) -> ParamType {
        if (try? n.int) != nil { return .int }
        if (try? n.double) != nil { return .float }
        if (try? n.bool) != nil { return .bool }
        return .string
    }

    static func convert(_ n: YAMLNode, to type: ParamType, name: String) throws -> ParamValue {
        switch type {
        case .int: return .int(try n.int)
        case .float: return .float(try n.double)
        case .bool: return .bool(try n.bool)
        case .string: return .string(try n.string)
        case .choice(let c):
            let s = try n.string
            guard c.contains(s) else {
                var msg = "parameter '\(name)' must be one of \(Limits.listed(c)), got '\(Limits.quoted(s))'"
                if let near = nearestName(to: s, candidates: c) { msg += "; did you mean '\(near)'?" }
                throw n.error(msg)
            }
            return .string(s)
        }
    }

    /// Parses a `--set` value for this parameter.
    func parse(_ text: String) throws -> ParamValue {
        func bad() -> RecipeError { RecipeError("--set \(name)=\(Limits.quoted(text)): parameter '\(name)' expects \(type)") }
        let v: ParamValue
        switch type {
        case .int: guard let i = Int(text) else { throw bad() }; v = .int(i)
        case .float: guard let d = Double(text), d.isFinite else { throw bad() }; v = .float(d)
        case .bool:
            guard text == "true" || text == "false" else { throw bad() }
            v = .bool(text == "true")
        case .string: v = .string(text)
        case .choice(let c):
            guard c.contains(text) else {
                var msg = "--set \(name)=\(Limits.quoted(text)): parameter '\(name)' must be one of \(Limits.listed(c))"
                if let near = nearestName(to: text, candidates: c) { msg += "; did you mean '\(near)'?" }
                throw RecipeError(msg)
            }
            v = .string(text)
        }
        try check(v, at: nil)
        return v
    }

    func check(_ v: ParamValue, at node: YAMLNode?) throws {
        let x: Double
        switch v { case .int(let i): x = Double(i); case .float(let d): x = d; default: return }
        func fail(_ m: String) -> Error { node.map { $0.error(m) } ?? RecipeError(m) }
        if let lo = minimum, x < lo { throw fail("parameter '\(name)' = \(v) is below its minimum \(lo)") }
        if let hi = maximum, x > hi { throw fail("parameter '\(name)' = \(v) is above its maximum \(hi)") }
    }
}

/// The parameter values of one run, in declaration order.
public struct ResolvedParameters: Sendable {
    public private(set) var values: [String: ParamValue]
    public let order: [String]

    init(values: [String: ParamValue], order: [String]) { self.values = values; self.order = order }

    public subscript(_ name: String) -> ParamValue? { values[name] }

    mutating func set(_ name: String, _ v: ParamValue) { values[name] = v }

    /// `name=value` lines in declaration order (for show-config and the manifest).
    public var lines: [String] { order.map { "\($0) = \(values[$0]!)" } }

    // MARK: Substitution into step configs

    /// Replaces `$name` scalars (keeping the type) and `${name}` inside strings, recursively.
    public func substitute(_ node: YAMLNode) throws -> YAMLNode {
        switch node.kind {
        case .scalar(let s, let style):
            guard s.contains("$") else { return node }
            if style == .plain, s.hasPrefix("$"), !s.hasPrefix("${") || s.hasSuffix("}") {
                let name = s.hasPrefix("${") ? String(s.dropFirst(2).dropLast()) : String(s.dropFirst())
                if name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
                    let v = try lookup(name, node)
                    return YAMLNode(.scalar(v.description, style: .plain), mark: node.mark, file: node.file, path: node.path)
                }
            }
            var out = "", rest = Substring(s)
            while let r = rest.range(of: "${") {
                out += rest[..<r.lowerBound]
                guard let close = rest[r.upperBound...].firstIndex(of: "}") else {
                    throw node.error("unterminated '${' in '\(s)'")
                }
                out += try lookup(String(rest[r.upperBound..<close]), node).description
                rest = rest[rest.index(after: close)...]
            }
            out += rest
            return YAMLNode(.scalar(out, style: style == .plain ? .doubleQuoted : style), mark: node.mark, file: node.file, path: node.path)
        case .sequence(let items):
            var n = node; n.kind = .sequence(try items.map(substitute)); return n
        case .mapping(let pairs):
            var n = node; n.kind = .mapping(try pairs.map { ($0.key, try substitute($0.value)) }); return n
        }
    }

    /// `${name}` replaced by the parameter's value in prose (a `$` not followed by `{` is left alone),
    /// and `${= expression | %.1f}` by the value of an expression over the metrics recorded so far
    /// (the format is optional: `%.Nf`, `%.Ne`, `%.Ng` or `%d`), so numbers in prose are this run's.
    /// Without `metrics` (planning) an expression is only checked, and left as written.
    public func interpolate(_ text: String, metrics: ((String) -> Double?)? = nil) throws -> String {
        var out = "", rest = Substring(text)
        while let r = rest.range(of: "${") {
            out += rest[..<r.lowerBound]
            guard let close = rest[r.upperBound...].firstIndex(of: "}") else { out += rest[r.lowerBound...]; return out }
            let name = String(rest[r.upperBound..<close])
            let lineOffset = text[..<r.lowerBound].reduce(0) { $1 == "\n" ? $0 + 1 : $0 }
            if name.hasPrefix("=") {
                let parts = name.dropFirst().split(separator: "|", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                let format = parts.count > 1 ? parts[1] : nil
                if let f = format, !Self.isNumberFormat(f) {
                    throw ProseError(lineOffset: lineOffset, message: "'${\(name)}': format '\(f)' is not one of %.Nf, %.Ne, %.Ng (N a digit) or %d")
                }
                let claim: Claim
                do { claim = try Claim("\(parts.first ?? "") == 0") } catch {
                    throw ProseError(lineOffset: lineOffset, message: "'${\(name)}': not an expression over metrics (\(error))")
                }
                if let metrics {
                    let v: Double
                    do { v = try claim.evaluate(metrics).lhs } catch {
                        throw ProseError(lineOffset: lineOffset, message: "'${\(name)}': \(error)")
                    }
                    if let f = format { out += f == "%d" ? String(Int(v.rounded())) : String(format: f, v) } else { out += formatMetric(v) }
                } else {
                    out += rest[r.lowerBound...close]
                }
                rest = rest[rest.index(after: close)...]
                continue
            }
            guard let v = values[name] else {
                var msg = "markdown refers to unknown parameter '${\(name)}'"
                if let near = nearestName(to: name, candidates: order) { msg += "; did you mean '${\(near)}'?" }
                throw ProseError(lineOffset: lineOffset, message: msg)
            }
            out += v.description
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The printf formats prose may use for one number (anything else could read past the argument).
    static func isNumberFormat(_ f: String) -> Bool {
        if f == "%d" { return true }
        let c = Array(f)
        return c.count == 4 && c[0] == "%" && c[1] == "." && c[2].isNumber && "feg".contains(c[3])
    }

    private func lookup(_ name: String, _ node: YAMLNode) throws -> ParamValue {
        if let v = values[name] { return v }
        var msg = "unknown parameter '$\(name)'"
        if let near = nearestName(to: name, candidates: order) { msg += "; did you mean '$\(near)'?" }
        else { msg += " (declared: \(Limits.listed(order)))" }
        throw node.error(msg)
    }
}

/// A problem in a Markdown cell's text, `lineOffset` lines into the cell (the engine turns it
/// into file:line:column).
public struct ProseError: Error, CustomStringConvertible, Equatable {
    public let lineOffset: Int
    public let message: String
    public var description: String { message }
}

/// An error in a recipe or its options that has no YAML position (e.g. a --set value).
public struct RecipeError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
