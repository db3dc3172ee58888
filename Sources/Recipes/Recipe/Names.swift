// MARK: - Closed sets of names
//
// A recipe picks optimizers, schedules, regimes, architectures, gates, … from closed sets. Each
// set is an enum with `String` raw values, parsed once when the recipe is validated: a name that
// is not a case is an error at the value's file:line:column that lists the valid names (and the
// nearest one), so a misspelling can never quietly become another case.

/// A closed set of names a recipe can use.
///
/// ```swift
/// enum Optimizer: String, RecipeName { case adam, sgd; static let what = "optimizer" }
/// let o: Optimizer = try config.name(at: "optimizer", default: .adam)
/// // recipes/x.yaml:7:18: key 'cells[2].with.optimizer': optimizer must be one of adam, sgd, got 'adma'; did you mean 'adam'?
/// ```
public protocol RecipeName: RawRepresentable, CaseIterable, Sendable where RawValue == String {
    /// What one of these names is, in errors: "optimizer", "schedule", …
    static var what: String { get }
}

extension RecipeName {
    /// Every valid name, in declaration order.
    public static var names: [String] { allCases.map(\.rawValue) }

    /// The case named `text`, or an error listing the valid names.
    public static func named(_ text: String) throws -> Self {
        guard let v = Self(rawValue: text) else { throw RecipeError(unknown(text)) }
        return v
    }

    /// "optimizer must be one of adam, sgd, rmsprop, got 'adma'; did you mean 'adam'?"
    static func unknown(_ text: String) -> String {
        var msg = "\(what) must be one of \(names.joined(separator: ", ")), got '\(text)'"
        if let n = nearestName(to: text, candidates: names) { msg += "; did you mean '\(n)'?" }
        return msg
    }

    /// The case named by the scalar `node`; an unknown name is an error at the node.
    static func parse(_ node: YAMLNode) throws -> Self {
        let text = try node.string
        guard let v = Self(rawValue: text) else { throw node.error(unknown(text)) }
        return v
    }
}

extension YAMLNode {
    /// The name under `key`, parsed into its closed set.
    func name<N: RecipeName>(at key: String) throws -> N { try N.parse(try node(at: key)) }

    /// The name under `key`, or `d` when the key is absent.
    func name<N: RecipeName>(at key: String, default d: N) throws -> N { try optional(key).map { try N.parse($0) } ?? d }
}
