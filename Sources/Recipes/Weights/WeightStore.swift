// MARK: - Weight catalogue, cache and download
//
// Resolution order for a weight file:
//   1. <cache>/<fileName>; the cache defaults to torchvision's own ($TORCH_HOME/hub/checkpoints, else
//      $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints), so weights a user
//      already downloaded with torchvision are reused as they are;
//   2. otherwise download from the file's URL into a temporary file in the cache directory, hashing as the
//      bytes arrive, and rename it into place only if the SHA-256 matches (the full hash when known, else
//      torchvision's convention: the 8 hex digits in `name-<8hex>.pth` are the hash's prefix).
// Offline, the error says which URL to fetch and exactly where to put the file.
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SIMDCore

/// One downloadable weight file.
public struct WeightFile: Sendable, Equatable {
    public enum Format: String, Sendable { case pytorch, safetensors }
    /// Model architecture in torchvision's naming ("resnet50", "vgg11_bn", "densenet121").
    public let architecture: String
    /// Name of the file in the cache directory.
    public let fileName: String
    public let url: URL
    /// Full SHA-256 (lowercase hex) when known.
    public let sha256: String?
    public let format: Format

    public init(architecture: String, fileName: String, url: URL, sha256: String? = nil, format: Format) {
        self.architecture = architecture; self.fileName = fileName; self.url = url
        self.sha256 = sha256?.lowercased(); self.format = format
    }

    /// Download size of the catalogue's ImageNet weights (torchvision's and timm's copies are
    /// within a few per cent of each other), for messages only; nil for other files.
    public var approximateSize: String? {
        switch architecture {
        case "resnet50": return "about 100 MB"
        case "vgg11_bn": return "about 510 MB"
        case "densenet121": return "about 31 MB"
        default: return nil
        }
    }

    /// torchvision's convention: `resnet50-0676ba61.pth` → "0676ba61", the first 8 hex digits of the SHA-256.
    public var hashPrefix: String? {
        let stem = (fileName as NSString).deletingPathExtension
        guard let dash = stem.lastIndex(of: "-") else { return nil }
        let tail = stem[stem.index(after: dash)...].lowercased()
        guard tail.count >= 8, tail.allSatisfy({ $0.isHexDigit }) else { return nil }
        return tail
    }
}

/// The weights the experiments use: torchvision IMAGENET1K_V1 and the same weights as timm safetensors.
public enum WeightCatalogue {
    static let torchvisionModels = "https://download.pytorch.org/models/"
    static let huggingFace = "https://huggingface.co/"

    public static let resnet50 = torchvision("resnet50", "resnet50-0676ba61.pth")
    public static let vgg11BN = torchvision("vgg11_bn", "vgg11_bn-6002323d.pth")
    public static let densenet121 = torchvision("densenet121", "densenet121-a639ec97.pth")

    /// Hugging Face `timm/<arch>.tv_in1k` (torchvision's weights re-saved by timm, timm's parameter names;
    /// map them with `StateDict.toTorchvisionNames(architecture:)`). No hash is published in the file name.
    public static let timmResNet50 = timm("resnet50", "resnet50.tv_in1k")
    public static let timmVGG11BN = timm("vgg11_bn", "vgg11_bn.tv_in1k")
    public static let timmDenseNet121 = timm("densenet121", "densenet121.tv_in1k")

    /// torchvision's IMAGENET1K_V1 file of every architecture `load_model` names (the 8 hex digits in
    /// each file name are the first 8 of its SHA-256, torchvision's convention).
    public static let torchvisionFiles: [ImageNetArchitecture: WeightFile] = {
        let files: [ImageNetArchitecture: String] = [
            .resnet18: "resnet18-f37072fd.pth", .resnet34: "resnet34-b627a593.pth", .resnet50: "resnet50-0676ba61.pth",
            .resnet101: "resnet101-63fe2227.pth", .resnet152: "resnet152-394f9c45.pth",
            .vgg11: "vgg11-8a719046.pth", .vgg13: "vgg13-19584684.pth", .vgg16: "vgg16-397923af.pth", .vgg19: "vgg19-dcbb9e9d.pth",
            .vgg11BN: "vgg11_bn-6002323d.pth", .vgg13BN: "vgg13_bn-abd245e5.pth", .vgg16BN: "vgg16_bn-6c64b313.pth",
            .vgg19BN: "vgg19_bn-c79401a0.pth",
            .densenet121: "densenet121-a639ec97.pth", .densenet161: "densenet161-8d451a50.pth",
            .densenet169: "densenet169-b2777c0a.pth", .densenet201: "densenet201-c1103571.pth",
        ]
        return files.mapValues { torchvision(String($0.prefix { $0 != "-" }), $0) }
    }()

    /// timm's re-saved torchvision weights, for paper A's three architectures.
    public static let timmFiles: [ImageNetArchitecture: WeightFile] = [
        .resnet50: timmResNet50, .vgg11BN: timmVGG11BN, .densenet121: timmDenseNet121,
    ]

    public static let all: [WeightFile] = ImageNetArchitecture.allCases.map { torchvisionFiles[$0]! }
        + [timmResNet50, timmVGG11BN, timmDenseNet121]

    /// Looks up by file name ("resnet50-0676ba61.pth"), timm id ("timm/resnet50.tv_in1k") or architecture ("resnet50",
    /// which means the torchvision file).
    public static func named(_ name: String) -> WeightFile? {
        all.first { $0.fileName == name } ?? all.first { $0.url.absoluteString.contains("/\(name)/") }
            ?? all.first { $0.architecture == name && $0.format == .pytorch }
    }

    static func torchvision(_ arch: String, _ file: String) -> WeightFile {
        WeightFile(architecture: arch, fileName: file, url: URL(string: torchvisionModels + file)!, format: .pytorch)
    }
    static func timm(_ arch: String, _ id: String) -> WeightFile {
        WeightFile(architecture: arch, fileName: "timm--\(id).safetensors",
                   url: URL(string: "\(huggingFace)timm/\(id)/resolve/main/model.safetensors")!, format: .safetensors)
    }
}

/// Finds weight files in a cache directory, downloading and verifying them when absent.
///
/// ```swift
/// let store = WeightStore()                                  // torchvision's cache
/// let url = try store.resolve(WeightCatalogue.resnet50)      // cached, or downloaded + SHA-256 checked
/// let sd = try store.load(WeightCatalogue.resnet50)          // StateDict in torchvision names
/// ```
public struct WeightStore {
    public var cacheDirectory: URL
    /// When false, a missing file is an error telling the user where to get it (no network access).
    public var allowDownload: Bool
    /// Re-hash files already in the cache (~0.5 s per 100 MB); catches partial or corrupted copies.
    public var verifyCached: Bool
    /// Progress lines on stderr; default: only when stderr is a terminal.
    public var showProgress: Bool
    public var timeout: TimeInterval = 60
    /// Hugging Face hub cache searched for timm files before downloading (nil: don't look).
    public var huggingFaceCache: URL?

    public init(cacheDirectory: URL? = nil, allowDownload: Bool = true, verifyCached: Bool = true,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.cacheDirectory = cacheDirectory ?? Self.defaultCacheDirectory(environment: environment)
        self.huggingFaceCache = Self.defaultHuggingFaceCache(environment: environment)
        self.allowDownload = allowDownload
        self.verifyCached = verifyCached
        self.showProgress = isatty(2) != 0
    }

    /// torch.hub's rule: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch; then hub/checkpoints.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        let torchHome: URL
        if let t = environment["TORCH_HOME"], !t.isEmpty { torchHome = URL(fileURLWithPath: (t as NSString).expandingTildeInPath) }
        else if let x = environment["XDG_CACHE_HOME"], !x.isEmpty { torchHome = URL(fileURLWithPath: x).appendingPathComponent("torch") }
        else {
            let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
            torchHome = home.appendingPathComponent(".cache/torch")
        }
        return torchHome.appendingPathComponent("hub/checkpoints")
    }

    /// huggingface_hub's rule: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
    public static func defaultHuggingFaceCache(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let c = environment["HF_HUB_CACHE"], !c.isEmpty { return URL(fileURLWithPath: c) }
        if let h = environment["HF_HOME"], !h.isEmpty { return URL(fileURLWithPath: h).appendingPathComponent("hub") }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/huggingface/hub")
    }

    public func localURL(for file: WeightFile) -> URL { cacheDirectory.appendingPathComponent(file.fileName) }

    /// For https://huggingface.co/<org>/<repo>/resolve/<rev>/<path>: a copy already in the Hugging Face cache
    /// (<hub>/models--<org>--<repo>/snapshots/<any>/<path>), so timm users reuse their download.
    public func huggingFaceCopy(of file: WeightFile) -> URL? {
        guard let hub = huggingFaceCache, file.url.host == "huggingface.co" else { return nil }
        let parts = file.url.path.split(separator: "/").map(String.init)   // org, repo, "resolve", rev, path...
        guard parts.count >= 5, parts[2] == "resolve" else { return nil }
        let snapshots = hub.appendingPathComponent("models--\(parts[0])--\(parts[1])/snapshots")
        let revs = ((try? FileManager.default.contentsOfDirectory(atPath: snapshots.path)) ?? []).sorted()
        for rev in revs {
            let candidate = snapshots.appendingPathComponent(rev).appendingPathComponent(parts[4...].joined(separator: "/"))
            if FileManager.default.fileExists(atPath: candidate.path) { return candidate }
        }
        return nil
    }

    // MARK: Resolve

    /// A verified local copy of `file`: the cached one, or a fresh download.
    public func resolve(_ file: WeightFile) throws -> URL {
        let dest = localURL(for: file)
        if FileManager.default.fileExists(atPath: dest.path) {
            if verifyCached {
                let digest = try SHA256.hexDigest(ofFile: dest)
                if let problem = Self.mismatch(digest, file) {
                    throw WeightsError(file: dest.path, "cached file fails its checksum: \(problem). Delete it to download again from \(file.url.absoluteString)")
                }
            }
            return dest
        }
        if let hf = huggingFaceCopy(of: file) {
            if verifyCached, let problem = Self.mismatch(try SHA256.hexDigest(ofFile: hf), file) {
                throw WeightsError(file: hf.path, "Hugging Face cached file fails its checksum: \(problem)")
            }
            return hf
        }
        guard allowDownload else {
            throw WeightsError(file: dest.path, "weights not found and downloads are disabled. \(Self.instructions(file, dest))")
        }
        return try download(file, to: dest)
    }

    /// Resolves and reads the file (either format) into a `StateDict` with torchvision's parameter names
    /// (see `StateDict.toTorchvisionNames(architecture:)`).
    public func load(_ file: WeightFile) throws -> StateDict {
        try StateDict(contentsOf: try resolve(file)).mapped(StateDict.toTorchvisionNames(architecture: file.architecture))
    }

    static func instructions(_ file: WeightFile, _ dest: URL) -> String {
        "Download \(file.url.absoluteString) and put it at \(dest.path) (for example: mkdir -p '\(dest.deletingLastPathComponent().path)' && curl -L -o '\(dest.path)' '\(file.url.absoluteString)'), or point the weight cache elsewhere (TORCH_HOME)."
    }

    /// nil if `digest` is acceptable for `file`, else a description naming expected and actual hashes.
    static func mismatch(_ digest: String, _ file: WeightFile) -> String? {
        if let full = file.sha256 {
            return digest == full ? nil : "expected SHA-256 \(full), got \(digest)"
        }
        if let prefix = file.hashPrefix {
            return digest.hasPrefix(prefix) ? nil : "expected SHA-256 starting with \(prefix) (from the file name), got \(digest)"
        }
        return nil   // no published hash (e.g. timm safetensors): the format parser is the only check
    }

    // MARK: Download

    /// Downloads to a temporary file beside `dest`, verifies, then renames into place. Nothing is left behind on failure.
    public func download(_ file: WeightFile, to dest: URL) throws -> URL {
        let dir = dest.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw WeightsError(file: dir.path, "cannot create the weight cache directory (\(error.localizedDescription)). \(Self.instructions(file, dest))")
        }
        let tmp = dir.appendingPathComponent(".\(file.fileName).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil), let handle = try? FileHandle(forWritingTo: tmp) else {
            throw WeightsError(file: dir.path, "cannot write in the weight cache directory. \(Self.instructions(file, dest))")
        }
        let sink = DownloadSink(handle: handle, label: file.fileName, showProgress: showProgress)
        var keep = false
        defer { if !keep { try? FileManager.default.removeItem(at: tmp) } }

        if file.url.isFileURL { try sink.copy(from: file.url) } else { try fetch(file.url, into: sink) }
        try? handle.close()
        if let failure = sink.failure {
            let progress = sink.expected > 0 ? " after \(sink.received) of \(sink.expected) bytes" : ""
            throw WeightsError(file: dest.path, "download of \(file.url.absoluteString) failed\(progress): \(failure); nothing was kept. \(Self.instructions(file, dest))")
        }
        if sink.expected >= 0 && sink.received != sink.expected {
            throw WeightsError(file: dest.path, "download of \(file.url.absoluteString) is truncated: got \(sink.received) of \(sink.expected) bytes; nothing was kept. \(Self.instructions(file, dest))")
        }
        let digest = sink.hasher.finalizeHex()
        if let problem = Self.mismatch(digest, file) {
            throw WeightsError(file: dest.path, "downloaded \(file.url.absoluteString) but the checksum is wrong: \(problem); the file was not kept")
        }
        if file.sha256 == nil && file.hashPrefix == nil && showProgress {
            FileHandle.standardError.write(Data("note: \(file.fileName) has no published SHA-256; not verified (SHA-256 \(digest))\n".utf8))
        }
        guard rename(tmp.path, dest.path) == 0 else {
            throw WeightsError(file: dest.path, "cannot move the download into place: \(String(cString: strerror(errno)))")
        }
        keep = true
        return dest
    }

    private func fetch(_ url: URL, into sink: DownloadSink) throws {
        let config = URLSessionConfiguration.ephemeral
        config.timeoutIntervalForRequest = timeout
        let session = URLSession(configuration: config, delegate: sink, delegateQueue: nil)
        session.dataTask(with: url).resume()
        sink.done.wait()
        session.finishTasksAndInvalidate()
    }
}

// MARK: - Streaming download sink: file + SHA-256 + progress, fed by URLSession or a file copy

final class DownloadSink: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    // Mutated only from URLSession's serial delegate queue, read after `done` is signalled.
    let handle: FileHandle
    var hasher = SHA256()
    var received: Int64 = 0
    var expected: Int64 = -1
    var failure: String?
    let done = DispatchSemaphore(value: 0)
    private let label: String
    private let showProgress: Bool
    private var lastReport = Date.distantPast

    init(handle: FileHandle, label: String, showProgress: Bool) {
        self.handle = handle; self.label = label; self.showProgress = showProgress
    }

    func consume(_ data: Data) {
        guard failure == nil else { return }
        do { try handle.write(contentsOf: data) } catch { failure = "write error (\(error.localizedDescription))"; return }
        hasher.update(data)
        received += Int64(data.count)
        report(final: false)
    }

    func report(final: Bool) {
        guard showProgress else { return }
        let now = Date()
        guard final || now.timeIntervalSince(lastReport) > 0.25 else { return }
        lastReport = now
        let mb = Double(received) / 1e6
        let line = expected > 0 ? String(format: "\r%@: %.1f / %.1f MB (%.0f%%)", label, mb, Double(expected) / 1e6, 100 * Double(received) / Double(expected))
                                : String(format: "\r%@: %.1f MB", label, mb)
        FileHandle.standardError.write(Data((line + (final ? "\n" : "")).utf8))
    }

    func copy(from source: URL) throws {
        guard let input = try? FileHandle(forReadingFrom: source) else { failure = "cannot open \(source.path)"; return }
        defer { try? input.close() }
        if let size = (try? FileManager.default.attributesOfItem(atPath: source.path)[.size]) as? NSNumber { expected = size.int64Value }
        while failure == nil, let chunk = try input.read(upToCount: 1 << 20), !chunk.isEmpty { consume(chunk) }
        report(final: true)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse, !(200..<300).contains(http.statusCode) {
            failure = "HTTP status \(http.statusCode)"
            completionHandler(.cancel)
            return
        }
        expected = response.expectedContentLength
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) { consume(data) }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        if let error, failure == nil { failure = error.localizedDescription }
        report(final: true)
        done.signal()
    }
}
