// MARK: - Claim expressions
//
// `check` steps state a paper's claim as a comparison over recorded metrics:
//   "dlgn_x1.test_accuracy / dnn.test_accuracy >= 0.835"
//   "abs(dgn_x1.test_accuracy - dgn_xx.test_accuracy) <= 0.02"
// Grammar:  claim := sum cmp sum;  sum := product (('+'|'-') product)*;
//           product := unary (('*'|'/') unary)*;  unary := '-' unary | atom;
//           atom := number | metric-name | 'abs(' sum ')' | 'min(' sum ',' sum ')' | 'max(' … ')' | '(' sum ')'
// Metric names may contain letters, digits, '_', '.', and '-' only between letters/digits.

/// A parsed claim: `lhs cmp rhs`.
public struct Claim: Sendable {
    indirect enum Expr: Sendable {
        case number(Double), metric(String)
        case binary(Character, Expr, Expr)
        case call(String, [Expr])
        case negate(Expr)
    }
    let lhs: Expr, op: String, rhs: Expr
    public let text: String

    /// Longest claim text: evaluation recurses once per operator.
    public static let maxLength = 1000

    public init(_ text: String) throws {
        self.text = text
        guard text.count <= Claim.maxLength else {
            throw RecipeError("claim '\(Limits.quoted(text))': longer than \(Claim.maxLength) characters")
        }
        var p = Parser(Array(text))
        let l = try p.sum()
        let op = try p.comparison()
        let r = try p.sum()
        p.skip()
        guard p.i == p.s.count else { throw RecipeError("claim '\(text)': unexpected '\(String(p.s[p.i...]))'") }
        lhs = l; self.op = op; rhs = r
    }

    /// Every metric name the claim reads.
    public var metrics: [String] {
        func walk(_ e: Expr) -> [String] {
            switch e {
            case .number: return []
            case .metric(let m): return [m]
            case .binary(_, let a, let b): return walk(a) + walk(b)
            case .call(_, let xs): return xs.flatMap(walk)
            case .negate(let a): return walk(a)
            }
        }
        return walk(lhs) + walk(rhs)
    }

    /// Evaluates both sides; a metric the run did not record is an error naming it.
    public func evaluate(_ lookup: (String) -> Double?) throws -> (holds: Bool, lhs: Double, rhs: Double) {
        func ev(_ e: Expr) throws -> Double {
            switch e {
            case .number(let v): return v
            case .metric(let m):
                guard let v = lookup(m) else { throw RecipeError("claim '\(text)': no metric '\(m)' was recorded by the steps before it") }
                return v
            case .negate(let a): return -(try ev(a))
            case .binary(let o, let a, let b):
                let x = try ev(a), y = try ev(b)
                switch o { case "+": return x + y; case "-": return x - y; case "*": return x * y; default: return x / y }
            case .call(let f, let xs):
                let v = try xs.map(ev)
                switch f { case "abs": return abs(v[0]); case "min": return v.min()!; default: return v.max()! }
            }
        }
        let a = try ev(lhs), b = try ev(rhs)
        let holds: Bool
        switch op {
        case ">=": holds = a >= b
        case "<=": holds = a <= b
        case ">": holds = a > b
        case "<": holds = a < b
        default: holds = a == b
        }
        return (holds, a, b)
    }

    // MARK: Parser

    struct Parser {
        let s: [Character]
        var i = 0
        /// Open parentheses, calls and unary minuses around the current position: bounded so a
        /// hostile claim cannot recurse the stack away.
        var depth = 0
        static let maxDepth = 100
        init(_ s: [Character]) { self.s = s }

        mutating func nested<T>(_ body: (inout Parser) throws -> T) throws -> T {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Parser.maxDepth else { throw fail("nested deeper than \(Parser.maxDepth) levels") }
            return try body(&self)
        }

        mutating func skip() { while i < s.count, s[i] == " " { i += 1 } }
        mutating func eat(_ c: Character) -> Bool { skip(); if i < s.count, s[i] == c { i += 1; return true }; return false }
        func fail(_ m: String) -> RecipeError { RecipeError("claim '\(String(s))': \(m) at character \(i + 1)") }

        mutating func comparison() throws -> String {
            skip()
            for op in [">=", "<=", "==", ">", "<"] where i + op.count <= s.count && String(s[i..<(i + op.count)]) == op {
                i += op.count; return op
            }
            throw fail("expected a comparison (>=, <=, >, <, ==)")
        }

        mutating func sum() throws -> Expr {
            var e = try product()
            while true {
                if eat("+") { e = .binary("+", e, try product()) }
                else if eat("-") { e = .binary("-", e, try product()) }
                else { return e }
            }
        }

        mutating func product() throws -> Expr {
            var e = try unary()
            while true {
                if eat("*") { e = .binary("*", e, try unary()) }
                else if eat("/") { e = .binary("/", e, try unary()) }
                else { return e }
            }
        }

        mutating func unary() throws -> Expr { eat("-") ? .negate(try nested { try $0.unary() }) : try atom() }

        mutating func atom() throws -> Expr {
            skip()
            guard i < s.count else { throw fail("unexpected end") }
            if eat("(") { let e = try nested { try $0.sum() }; guard eat(")") else { throw fail("expected ')'") }; return e }
            let start = i
            if s[i].isNumber || s[i] == "." {
                while i < s.count, s[i].isNumber || s[i] == "." || s[i] == "e" || ((s[i] == "-" || s[i] == "+") && i > start && s[i - 1] == "e") { i += 1 }
                guard let v = Double(String(s[start..<i])) else { throw fail("bad number '\(String(s[start..<i]))'") }
                return .number(v)
            }
            while i < s.count, s[i].isLetter || s[i].isNumber || s[i] == "_" || s[i] == "." ||
                    (s[i] == "-" && i > start && i + 1 < s.count && (s[i + 1].isLetter || s[i + 1].isNumber) && (s[i - 1].isLetter || s[i - 1].isNumber)) { i += 1 }
            guard i > start else { throw fail("expected a number or a metric name") }
            let name = String(s[start..<i])
            if ["abs", "min", "max"].contains(name), eat("(") {
                var args = [try nested { try $0.sum() }]
                while eat(",") { args.append(try nested { try $0.sum() }) }
                guard eat(")") else { throw fail("expected ')'") }
                guard (name == "abs" && args.count == 1) || (name != "abs" && args.count >= 2) else { throw fail("wrong number of arguments to \(name)") }
                return .call(name, args)
            }
            return .metric(name)
        }
    }
}
