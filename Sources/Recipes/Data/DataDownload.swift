// MARK: - Downloading data sets through the shared downloader
//
// The data catalogue checks each file's published MD5 itself (DataCache.prepare); the transfer
// goes through WeightStore's streaming downloader (temporary file, rename on success, progress on
// a terminal), so the project has one HTTP client.
import Foundation

extension WeightStore {
    /// A `DataFetch` that downloads `remote` to `destination`.
    public static let fetchData: DataFetch = { remote, destination in
        let store = WeightStore(cacheDirectory: destination.deletingLastPathComponent(), allowDownload: true, verifyCached: false)
        let file = WeightFile(architecture: "data", fileName: destination.lastPathComponent, url: remote, format: .pytorch)
        _ = try store.download(file, to: destination)
    }
}
