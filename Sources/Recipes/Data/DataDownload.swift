// MARK: - Downloading data sets through the shared downloader
//
// The data catalogue checks each file's published MD5 itself (DataCache.prepare); the transfer
// goes through WeightStore's streaming downloader (temporary file, rename on success, progress on
// a terminal), so the project has one HTTP client.
import Foundation

extension WeightStore {
    /// A `DataFetch` that downloads `remote` to `destination` (a temporary name the data cache
    /// chose). A failure says only what went wrong: the data cache names the final file and its
    /// own directory variable, so the weight cache's advice (TORCH_HOME) must not leak into it.
    public static let fetchData: DataFetch = { remote, destination in
        let store = WeightStore(cacheDirectory: destination.deletingLastPathComponent(), allowDownload: true, verifyCached: false)
        let file = WeightFile(architecture: "data", fileName: destination.lastPathComponent, url: remote, format: .pytorch)
        do { _ = try store.download(file, to: destination) } catch let e as WeightsError {
            var reason = e.message.components(separatedBy: " Download ").first ?? e.message
            reason = reason.components(separatedBy: "; nothing was kept").first ?? reason
            throw DataFetchFailure(reason: reason.hasSuffix(".") ? String(reason.dropLast()) : reason)
        }
    }
}

/// Why one download of a data file failed (the caller names the file and what to do).
public struct DataFetchFailure: Error, CustomStringConvertible, Equatable {
    public let reason: String
    public var description: String { reason }
}
