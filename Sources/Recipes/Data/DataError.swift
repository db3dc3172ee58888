// MARK: - DataError
//
// Every failure reading, checking or locating a data set names the file (or the data set) and
// says what was expected, so the fix is obvious from the message alone.
import Foundation

/// An error reading, verifying or locating a data set.
///
/// ```swift
/// do { _ = try IDX.read(url) } catch let e as DataError { print(e) }   // "<path>: truncated: ..."
/// ```
public struct DataError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        case format      // bad magic, wrong size, truncated, labels out of range
        case checksum    // a downloaded or cached file does not have the published digest
        case missing     // not on disk and no way (or no permission) to fetch it
        case io          // the operating system refused a read or a write
    }
    public let kind: Kind
    public let file: String
    public let message: String

    public init(_ kind: Kind, file: String, _ message: String) {
        self.kind = kind; self.file = file; self.message = message
    }

    public var description: String { "\(file): \(message)" }
}

/// Reads a whole file, turning the Foundation error into a `DataError` that names the file.
func readFileData(_ url: URL) throws -> Data {
    do { return try Data(contentsOf: url, options: .mappedIfSafe) } catch {
        let what = FileManager.default.fileExists(atPath: url.path) ? "cannot read file" : "no such file"
        throw DataError(.io, file: url.path, "\(what) (\(error.localizedDescription))")
    }
}
