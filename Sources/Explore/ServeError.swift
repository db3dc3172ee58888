// MARK: - Errors the server answers with
//
// Every refusal is one of these: an HTTP status and one line that names the parameter, file or
// limit and what was expected. The page shows the line as is; scripts read the status.

/// A request the server refuses, with the HTTP status that says why.
public struct ServeError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The HTTP status codes the server uses for refusals (a closed set).
    public enum Status: Int, Sendable {
        case badRequest = 400
        case notFound = 404
        case methodNotAllowed = 405
        case conflict = 409            // cancelled by a newer request of the same client
        case contentTooLarge = 413
        case unsupportedMediaType = 415
        case unprocessable = 422       // well-formed, but the model or data cannot serve it
        case serviceUnavailable = 503  // the queue is full
        case internalError = 500
    }

    public let status: Status
    public let message: String

    public init(_ status: Status, _ message: String) { self.status = status; self.message = message }
    public var description: String { "\(status.rawValue): \(message)" }
}
