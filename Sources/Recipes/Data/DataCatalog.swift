// MARK: - Data catalogue and cache
//
// Full MNIST, CIFAR-10 and CIFAR-100 are fetched on demand into a cache directory
// (EP_DATA_DIR, default ~/.cache/excitation-pullbacks/data) and checked against the MD5 digests
// their publishers list (the same ones torchvision checks). The HTTP client is not ours: callers
// pass `fetch(remote, localFile)`; without it (tests, offline machines) a missing data set is an
// error that says exactly what to download, from where, and where to put it.
import Foundation

/// Downloads `remote` into the local file URL (the second argument). Plugged in by the caller.
public typealias DataFetch = (_ remote: URL, _ destination: URL) throws -> Void

/// One file as published: its name, where to get it (mirrors in order) and its MD5.
public struct RemoteFile: Equatable, Sendable {
    public let name: String
    public let urls: [URL]
    public let md5: String
    /// As stated by the publisher, for messages only.
    public let approximateSize: String

    public init(name: String, urls: [URL], md5: String, approximateSize: String) {
        self.name = name; self.urls = urls; self.md5 = md5.lowercased(); self.approximateSize = approximateSize
    }
}

/// A downloadable data set: what to fetch, and which files the readers then need.
public struct DataSetSource: Equatable, Sendable {
    public let id: String                 // "mnist", "cifar10", "cifar100"
    public let title: String
    public let directory: String          // sub-directory of the cache
    public let downloads: [RemoteFile]
    /// When set, `downloads` holds one .tar.gz whose listed members are unpacked into `directory`.
    public let unpack: [String]?
    /// Paths relative to `directory` that the readers need.
    public let requiredFiles: [String]
    /// Unpacked if present in the archive, never required.
    public let optionalFiles: [String]
    public let citation: String

    public init(id: String, title: String, directory: String, downloads: [RemoteFile], unpack: [String]?,
                requiredFiles: [String], optionalFiles: [String], citation: String) {
        precondition(!downloads.isEmpty && (unpack == nil || downloads.count == 1),
                     "DataSetSource \(id): an archive source has exactly one download")
        self.id = id; self.title = title; self.directory = directory; self.downloads = downloads
        self.unpack = unpack; self.requiredFiles = requiredFiles; self.optionalFiles = optionalFiles
        self.citation = citation
    }
}

public enum DataCatalog {
    private static func urls(_ bases: [String], _ name: String) -> [URL] { bases.map { URL(string: $0 + name)! } }

    // torchvision's mirrors; LeCun's site is second because it often refuses scripted downloads.
    static let mnistMirrors = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]

    public static let mnist = DataSetSource(
        id: "mnist", title: "MNIST", directory: "mnist",
        downloads: [
            RemoteFile(name: "train-images-idx3-ubyte.gz", urls: urls(mnistMirrors, "train-images-idx3-ubyte.gz"),
                       md5: "f68b3c2dcbeaaa9fbdd348bbdeb94873", approximateSize: "9.9 MB"),
            RemoteFile(name: "train-labels-idx1-ubyte.gz", urls: urls(mnistMirrors, "train-labels-idx1-ubyte.gz"),
                       md5: "d53e105ee54ea40749a09fcbcd1e9432", approximateSize: "29 KB"),
            RemoteFile(name: "t10k-images-idx3-ubyte.gz", urls: urls(mnistMirrors, "t10k-images-idx3-ubyte.gz"),
                       md5: "9fb629c4189551a2d022fa330f9573f3", approximateSize: "1.6 MB"),
            RemoteFile(name: "t10k-labels-idx1-ubyte.gz", urls: urls(mnistMirrors, "t10k-labels-idx1-ubyte.gz"),
                       md5: "ec29112dd5afa0611ce80d1b7f02629c", approximateSize: "4.5 KB"),
        ],
        unpack: nil,
        requiredFiles: ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"],
        optionalFiles: [],
        citation: "Y. LeCun, C. Cortes, C. J. C. Burges, The MNIST database of handwritten digits")

    public static let cifar10 = DataSetSource(
        id: "cifar10", title: "CIFAR-10 (binary version)", directory: "cifar10",
        downloads: [RemoteFile(name: "cifar-10-binary.tar.gz",
                               urls: [URL(string: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")!],
                               md5: "c32a1d4ab5d03f1284b67883e8d87530", approximateSize: "162 MB")],
        unpack: (1...5).map { "cifar-10-batches-bin/data_batch_\($0).bin" } + ["cifar-10-batches-bin/test_batch.bin"],
        requiredFiles: (1...5).map { "cifar-10-batches-bin/data_batch_\($0).bin" } + ["cifar-10-batches-bin/test_batch.bin"],
        optionalFiles: ["cifar-10-batches-bin/batches.meta.txt"],
        citation: "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009")

    public static let cifar100 = DataSetSource(
        id: "cifar100", title: "CIFAR-100 (binary version)", directory: "cifar100",
        downloads: [RemoteFile(name: "cifar-100-binary.tar.gz",
                               urls: [URL(string: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz")!],
                               md5: "03b5dce01913d631647c71ecec9e9cb8", approximateSize: "161 MB")],
        unpack: ["cifar-100-binary/train.bin", "cifar-100-binary/test.bin"],
        requiredFiles: ["cifar-100-binary/train.bin", "cifar-100-binary/test.bin"],
        optionalFiles: ["cifar-100-binary/fine_label_names.txt", "cifar-100-binary/coarse_label_names.txt"],
        citation: "A. Krizhevsky, Learning Multiple Layers of Features from Tiny Images, 2009")

    public static let all = [mnist, cifar10, cifar100]

    public static func source(_ id: String) -> DataSetSource? { all.first { $0.id == id } }
}

/// Where downloaded data sets live, and how they get there.
///
/// ```swift
/// let cache = DataCache()                                   // $EP_DATA_DIR or ~/.cache/excitation-pullbacks/data
/// let dir = try cache.prepare(DataCatalog.cifar10, fetch: downloader)   // verified, unpacked
/// let dir2 = try cache.prepare(DataCatalog.mnist)           // offline: throws DataError(.missing) with instructions
/// ```
public struct DataCache: Sendable {
    public static let environmentVariable = "EP_DATA_DIR"
    public let root: URL

    public init(root: URL) { self.root = root }

    /// `EP_DATA_DIR` when set (and not empty), else `$HOME/.cache/excitation-pullbacks/data`.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let dir = environment[Self.environmentVariable], !dir.isEmpty {
            root = URL(fileURLWithPath: (dir as NSString).expandingTildeInPath, isDirectory: true)
        } else {
            let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
                ?? FileManager.default.homeDirectoryForCurrentUser
            root = home.appendingPathComponent(".cache/excitation-pullbacks/data", isDirectory: true)
        }
    }

    public func directory(for source: DataSetSource) -> URL {
        root.appendingPathComponent(source.directory, isDirectory: true)
    }

    /// Makes the files `source.requiredFiles` available and returns the directory holding them.
    /// Order: already unpacked → use; downloaded file present → verify MD5 (and unpack);
    /// missing → `fetch` it from each mirror in turn and verify; no `fetch` → `DataError(.missing)`
    /// whose message is `offlineInstructions(for:)`.
    @discardableResult
    public func prepare(_ source: DataSetSource, fetch: DataFetch? = nil) throws -> URL {
        let dir = directory(for: source)
        let fm = FileManager.default
        let haveAll = source.requiredFiles.allSatisfy { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
        if haveAll && source.unpack != nil { return dir }      // unpacked .bin files: sizes are checked by the reader

        for remote in source.downloads {
            let local = dir.appendingPathComponent(remote.name)
            if fm.fileExists(atPath: local.path) {
                try verify(local, remote)
            } else if let fetch {
                try download(remote, to: local, fetch: fetch, source: source)
            } else {
                throw DataError(.missing, file: local.path, "downloads are disabled (EP_OFFLINE) or unavailable. " + offlineInstructions(for: source))
            }
        }
        if let members = source.unpack, let archive = source.downloads.first {
            try unpack(dir.appendingPathComponent(archive.name), members: members,
                       optional: source.optionalFiles, into: dir)
        }
        for f in source.requiredFiles where !fm.fileExists(atPath: dir.appendingPathComponent(f).path) {
            throw DataError(.missing, file: dir.appendingPathComponent(f).path, "still missing after preparing \(source.title)")
        }
        return dir
    }

    /// What to download, from where, and where to put it, for a machine without network access.
    public func offlineInstructions(for source: DataSetSource) -> String {
        let dir = directory(for: source).path
        var s = "\(source.title) is not in the data cache.\n"
        s += "Download \(source.downloads.count == 1 ? "this file" : "these files"):\n"
        for r in source.downloads {
            s += "  \(r.urls[0].absoluteString)   (\(r.approximateSize), MD5 \(r.md5))\n"
            for m in r.urls.dropFirst() { s += "      mirror: \(m.absoluteString)\n" }
        }
        s += "and put \(source.downloads.count == 1 ? "it" : "them"), unchanged (still compressed), in:\n  \(dir)/\n"
        s += "with the file name\(source.downloads.count == 1 ? "" : "s") "
            + source.downloads.map(\.name).joined(separator: ", ") + ".\n"
        s += "For example:\n  mkdir -p '\(dir)' && cd '\(dir)'"
        for r in source.downloads { s += " && curl -fLO \(r.urls[0].absoluteString)" }
        s += "\n"
        if let members = source.unpack, let archive = source.downloads.first {
            s += "It is checked and unpacked there on first use into "
                + members.joined(separator: ", ")
                + " (or unpack it yourself: tar -xzf \(archive.name) -C '\(dir)').\n"
        }
        s += "The data directory is $\(Self.environmentVariable) when set, else ~/.cache/excitation-pullbacks/data "
            + "(now: \(root.path))."
        return s
    }

    // MARK: Steps

    func verify(_ local: URL, _ remote: RemoteFile) throws {
        let md5 = try MD5.hex(ofFile: local)
        guard md5 == remote.md5 else {
            throw DataError(.checksum, file: local.path,
                            "MD5 is \(md5), expected \(remote.md5) (published for \(remote.urls[0].absoluteString)); "
                            + "the file is damaged or a different version: delete it and download it again")
        }
    }

    func download(_ remote: RemoteFile, to local: URL, fetch: DataFetch, source: DataSetSource) throws {
        let dir = local.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw DataError(.io, file: dir.path, "cannot create the data directory (\(error.localizedDescription))")
        }
        var failures: [String] = []
        for url in remote.urls {
            let partial = dir.appendingPathComponent(".\(remote.name).partial-\(getpid())")
            defer { try? FileManager.default.removeItem(at: partial) }
            do {
                try fetch(url, partial)
                try verify(partial, remote)
                guard rename(partial.path, local.path) == 0 else {
                    throw DataError(.io, file: local.path, "cannot move the download into place: \(String(cString: strerror(errno)))")
                }
                return
            } catch {
                failures.append("  \(url.absoluteString): \(error)")
            }
        }
        throw DataError(.missing, file: local.path,
                        "download failed from every mirror:\n" + failures.joined(separator: "\n") + "\n"
                        + offlineInstructions(for: source))
    }

    func unpack(_ archive: URL, members: [String], optional: [String], into dir: URL) throws {
        let tar = try Gzip.decompress(readFileData(archive), file: archive.path)
        let found = try Tar.members(tar, wanted: Set(members + optional), file: archive.path)
        for m in members where found[m] == nil {
            throw DataError(.format, file: archive.path, "archive has no member '\(m)' (expected \(members.joined(separator: ", ")))")
        }
        for (name, data) in found.sorted(by: { $0.key < $1.key }) {
            let dest = dir.appendingPathComponent(name)
            do { try AtomicFile.write(data, to: dest) } catch {
                throw DataError(.io, file: dest.path, "cannot write unpacked member (\(error.localizedDescription))")
            }
        }
    }
}
