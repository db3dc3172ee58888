// MARK: - YAML node tree
//
// What YAMLParser (libyaml's event API) builds: scalars keep their text and quoting style,
// mappings keep key order, and every node knows its file, 1-based line:column and the key path
// that reached it, so a type error can say
//   recipe.yaml:12:5: key 'steps': expected a sequence, found a scalar 'abc'
// Scalars are typed on demand with the YAML 1.2 core schema (true/false, not yes/no/on/off);
// quoted scalars are always strings.
import Foundation

/// A position in a YAML file, 1-based.
public struct YAMLMark: Equatable, Hashable, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
}

/// A YAML syntax, structure or type error: `file:line:column: message`.
public struct YAMLError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let mark: YAMLMark
    public let message: String
    public init(file: String, mark: YAMLMark, _ message: String) { self.file = file; self.mark = mark; self.message = message }
    public var description: String { "\(file):\(mark): \(message)" }
}

/// One node of a parsed YAML document.
///
/// ```swift
/// let doc = try YAMLParser.parse(file: URL(fileURLWithPath: "recipes/fig1.yaml"))
/// let title = try doc.string(at: "title")
/// for step in try doc.array(at: "steps") { let alpha = try step.double(at: "alpha") }
/// ```
public struct YAMLNode: Sendable, CustomStringConvertible {
    public enum ScalarStyle: Sendable, Equatable {
        case plain, singleQuoted, doubleQuoted, literal, folded
        public var isQuoted: Bool { self != .plain }
    }

    public enum Kind: Sendable {
        case scalar(String, style: ScalarStyle)
        case sequence([YAMLNode])
        case mapping([(key: YAMLNode, value: YAMLNode)])
    }

    public var kind: Kind
    public let mark: YAMLMark
    public let file: String
    /// Key path from the document root, e.g. `steps[2].alpha`; empty for the root.
    public internal(set) var path: String
    /// Explicit tag (e.g. `tag:yaml.org,2002:str` for `!!str`), if any.
    public let tag: String?

    public init(_ kind: Kind, mark: YAMLMark, file: String, path: String = "", tag: String? = nil) {
        self.kind = kind; self.mark = mark; self.file = file; self.path = path; self.tag = tag
    }

    // MARK: Inspection

    /// The scalar's text, or nil for sequences and mappings.
    public var scalarText: String? { if case .scalar(let s, _) = kind { return s }; return nil }

    /// YAML 1.2 core null: a plain `null`, `Null`, `NULL`, `~` or empty scalar.
    public var isNull: Bool {
        guard case .scalar(let s, let style) = kind, style == .plain, tag == nil else { return false }
        return s.isEmpty || s == "~" || s == "null" || s == "Null" || s == "NULL"
    }

    var isStringTagged: Bool { tag == "tag:yaml.org,2002:str" }

    /// How the node reads in an error: "null", "a scalar 'abc'", "a quoted string '3'", "a sequence", "a mapping".
    public var kindDescription: String {
        switch kind {
        case .scalar(let s, let style):
            if isNull { return "null" }
            let shown = s.count > 40 ? String(s.prefix(40)) + "…" : s
            return style.isQuoted || isStringTagged ? "a quoted string '\(shown)'" : "a scalar '\(shown)'"
        case .sequence(let items): return "a sequence (\(items.count) item\(items.count == 1 ? "" : "s"))"
        case .mapping(let pairs): return "a mapping (\(pairs.count) key\(pairs.count == 1 ? "" : "s"))"
        }
    }

    public var description: String { "\(file):\(mark): \(kindDescription)" }

    /// An error located at this node, prefixed with its key path.
    public func error(_ message: String) -> YAMLError {
        YAMLError(file: file, mark: mark, path.isEmpty ? message : "key '\(Limits.quoted(path))': \(message)")
    }

    func expected(_ what: String) -> YAMLError { error("expected \(what), found \(kindDescription)") }

    // MARK: Typed values

    /// Any non-null scalar's text (plain scalars like `12` are fine as strings).
    public var string: String {
        get throws {
            guard case .scalar(let s, _) = kind, !isNull else { throw expected("a string") }
            return s
        }
    }

    /// A SHA-256 digest as a recipe gives one: 64 hex digits (case as written).
    public var sha256Digest: String {
        get throws {
            let s = try string
            guard s.count == 64, s.allSatisfy(\.isHexDigit) else { throw error("sha256 must be 64 hex digits, got '\(s)'") }
            return s
        }
    }

    /// A YAML 1.2 core integer: `[-+]?[0-9]+`, `0x…`, `0o…`. Quoted scalars are strings, not integers.
    public var int: Int {
        get throws {
            guard case .scalar(let s, let style) = kind, !style.isQuoted, !isStringTagged, !isNull else { throw expected("an integer") }
            if let v = YAMLNode.coreInt(s) { return v }
            let body = s.drop { $0 == "-" || $0 == "+" }
            if !body.isEmpty, body.allSatisfy({ $0.isASCII && $0.isNumber }) { throw error("integer '\(s)' is out of range") }
            if YAMLNode.coreFloat(s) != nil { throw error("expected an integer, found the number '\(s)' (not a whole number)") }
            throw expected("an integer")
        }
    }

    /// A YAML 1.2 core float (or integer): `1`, `-2.5`, `3e-4`, `.inf`, `-.inf`, `.nan`.
    public var double: Double {
        get throws {
            guard case .scalar(let s, let style) = kind, !style.isQuoted, !isStringTagged, !isNull else { throw expected("a number") }
            if let v = YAMLNode.coreInt(s) { return Double(v) }
            if let v = YAMLNode.coreFloat(s) { return v }
            throw expected("a number")
        }
    }

    /// A YAML 1.2 core boolean: `true`/`false` (also `True`, `TRUE`, `False`, `FALSE`).
    /// YAML 1.1's yes/no/on/off are rejected with a hint.
    public var bool: Bool {
        get throws {
            guard case .scalar(let s, let style) = kind, !style.isQuoted, !isStringTagged, !isNull else { throw expected("a boolean (true or false)") }
            switch s {
            case "true", "True", "TRUE": return true
            case "false", "False", "FALSE": return false
            case "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", "y", "Y", "n", "N":
                throw error("expected a boolean (true or false), found '\(s)' (YAML 1.1 spellings like yes/no/on/off are not booleans in YAML 1.2)")
            default: throw expected("a boolean (true or false)")
            }
        }
    }

    /// The items of a sequence.
    public var array: [YAMLNode] {
        get throws {
            guard case .sequence(let items) = kind else { throw expected("a sequence") }
            return items
        }
    }

    /// The pairs of a mapping, keys as strings, in file order.
    public var entries: [(key: String, value: YAMLNode)] {
        get throws {
            guard case .mapping(let pairs) = kind else { throw expected("a mapping") }
            return try pairs.map { (try $0.key.string, $0.value) }
        }
    }

    /// Keys of a mapping in file order.
    public var keys: [String] {
        get throws { try entries.map(\.key) }
    }

    // MARK: Keyed access

    /// The value for `key`, or nil if absent. Throws if this node is not a mapping.
    public func value(at key: String) throws -> YAMLNode? {
        guard case .mapping(let pairs) = kind else { throw expected("a mapping") }
        return pairs.first { $0.key.scalarText == key }?.value
    }

    /// The value for `key`; a missing key is an error (with a did-you-mean from the keys present).
    public func node(at key: String) throws -> YAMLNode {
        if let v = try value(at: key) { return v }
        let present = (try? keys) ?? []
        var msg = "missing key '\(key)'"
        if let near = nearestName(to: key, candidates: present) {
            msg += " (the mapping has '\(near)': a typo for '\(key)'?)"
        }
        throw error(msg)
    }

    public func string(at key: String) throws -> String { try node(at: key).string }
    public func int(at key: String) throws -> Int { try node(at: key).int }
    public func double(at key: String) throws -> Double { try node(at: key).double }
    public func bool(at key: String) throws -> Bool { try node(at: key).bool }
    public func array(at key: String) throws -> [YAMLNode] { try node(at: key).array }

    /// Optional keys: `default` when the key is absent or explicitly null.
    public func string(at key: String, default d: String) throws -> String { try optional(key)?.string ?? d }
    public func int(at key: String, default d: Int) throws -> Int { try optional(key)?.int ?? d }
    public func double(at key: String, default d: Double) throws -> Double { try optional(key)?.double ?? d }
    public func bool(at key: String, default d: Bool) throws -> Bool { try optional(key)?.bool ?? d }

    /// An optional integer setting that must lie in `range` (sizes and counts get a maximum, so a
    /// typo cannot ask for terabytes); the error names the key, the range and the value.
    ///
    /// ```swift
    /// let size = try config.int(at: "size", default: 224, in: 8...2048)
    /// ```
    public func int(at key: String, default d: Int, in range: ClosedRange<Int>) throws -> Int {
        let v = try int(at: key, default: d)
        guard range.contains(v) else {
            throw (try optional(key) ?? self).error("\(key) must be in \(range.lowerBound)...\(range.upperBound), got \(v)")
        }
        return v
    }

    /// The value for `key` unless it is absent or null.
    public func optional(_ key: String) throws -> YAMLNode? {
        guard let v = try value(at: key), !v.isNull else { return nil }
        return v
    }

    /// Rejects keys outside `allowed`, pointing at the offending key with a did-you-mean.
    ///
    /// ```swift
    /// try step.checkKeys(allowed: ["alpha", "steps", "temperature"])
    /// // recipe.yaml:7:5: key 'steps[0]': unknown key 'tempreature'; did you mean 'temperature'?
    /// ```
    public func checkKeys(allowed: [String]) throws {
        guard case .mapping(let pairs) = kind else { throw expected("a mapping") }
        for (k, _) in pairs {
            let name = try k.string
            guard !allowed.contains(name) else { continue }
            var msg = "unknown key '\(Limits.quoted(name))'"
            if let near = nearestName(to: name, candidates: allowed) { msg += "; did you mean '\(near)'?" }
            else { msg += " (allowed: \(allowed.joined(separator: ", ")))" }
            throw YAMLError(file: k.file, mark: k.mark, path.isEmpty ? msg : "key '\(Limits.quoted(path))': \(msg)")
        }
    }

    // MARK: Core schema scalars

    static func coreInt(_ s: String) -> Int? {
        var t = Substring(s)
        var sign = 1
        if t.first == "-" || t.first == "+" { if t.first == "-" { sign = -1 }; t = t.dropFirst() }
        var radix = 10
        if t.hasPrefix("0x") { radix = 16; t = t.dropFirst(2) } else if t.hasPrefix("0o") { radix = 8; t = t.dropFirst(2) }
        // Core schema: hex/octal carry no sign.
        if radix != 10 && s.count != t.count + 2 { return nil }
        guard !t.isEmpty, t.allSatisfy({ $0.isASCII && $0.isHexDigit }), let v = Int(t, radix: radix) else { return nil }
        return sign == 1 ? v : -v
    }

    static func coreFloat(_ s: String) -> Double? {
        switch s {
        case ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF": return .infinity
        case "-.inf", "-.Inf", "-.INF": return -.infinity
        case ".nan", ".NaN", ".NAN": return .nan
        default: break
        }
        // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
        var chars = Array(s.utf8)[...]
        if let f = chars.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { chars = chars.dropFirst() }
        func digits() -> Int { let n = chars.prefix { $0 >= 48 && $0 <= 57 }.count; chars = chars.dropFirst(n); return n }
        let intDigits = digits()
        var fracDigits = 0
        if chars.first == UInt8(ascii: ".") { chars = chars.dropFirst(); fracDigits = digits() }
        guard intDigits > 0 || fracDigits > 0 else { return nil }
        if let e = chars.first, e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            chars = chars.dropFirst()
            if let f = chars.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") { chars = chars.dropFirst() }
            guard digits() > 0 else { return nil }
        }
        guard chars.isEmpty else { return nil }
        return Double(s)
    }
}

// MARK: - Did you mean

/// Edit distance counting insertions, deletions, substitutions and swaps of two adjacent
/// characters as 1 each (optimal string alignment), by Unicode scalars: "stpes" → "steps" is 1.
public func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    // d[i][j] = distance between x[..<i] and y[..<j]; three rows are enough for the swap rule.
    var twoBack = [Int](repeating: 0, count: y.count + 1)
    var prev = Array(0...y.count), cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
            if i > 1, j > 1, x[i - 1] == y[j - 2], x[i - 2] == y[j - 1] { cur[j] = min(cur[j], twoBack[j - 2] + 1) }
        }
        (twoBack, prev, cur) = (prev, cur, twoBack)
    }
    return prev[y.count]
}

/// The candidate closest to `name` (case-insensitive `editDistance`), if close enough to be a
/// plausible typo: distance ≤ 1 for names up to 3 characters, ≤ 2 up to 8, else ≤ 3, and always
/// less than the name's length. Ties go to the earlier candidate.
///
/// ```swift
/// nearestName(to: "tempreature", candidates: ["alpha", "temperature"])   // "temperature"
/// nearestName(to: "zzz", candidates: ["alpha"])                          // nil
/// ```
public func nearestName(to name: String, candidates: [String]) -> String? {
    let n = name.unicodeScalars.count
    let limit = min(n <= 3 ? 1 : (n <= 8 ? 2 : 3), n - 1)
    var best: (String, Int)? = nil
    for c in candidates where c != name && abs(c.unicodeScalars.count - n) <= limit {   // cheap bound first
        let d = editDistance(name.lowercased(), c.lowercased())
        if d <= limit, best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}
