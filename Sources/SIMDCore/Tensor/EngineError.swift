// MARK: - EngineError
//
// Bad input to the engine is an error, not a crash: every user-reachable op validates its
// shapes and throws an error that names the op and the shapes involved.

/// An error raised by an engine op on invalid input.
public struct EngineError: Error, CustomStringConvertible, Equatable, Sendable {
    public let op: String
    public let message: String

    public init(op: String, _ message: String) { self.op = op; self.message = message }

    public var description: String { "\(op): \(message)" }

    /// `op: expected <what>, got shapes a and b`.
    public static func shapeMismatch(_ op: String, _ a: [Int], _ b: [Int], expected: String) -> EngineError {
        EngineError(op: op, "shape mismatch: \(expected); got \(a) and \(b)")
    }

    /// `op: <name> must be finite`.
    public static func nonFinite(_ op: String, _ name: String, shape: [Int]) -> EngineError {
        EngineError(op: op, "\(name) of shape \(shape) contains NaN or infinity")
    }
}
