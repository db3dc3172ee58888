// MARK: - load_model and load_images: paper A's ImageNet models and example images
//
//   - step: load_model
//     id: net
//     with: {architecture: resnet50, weights: torchvision}      # torchvision | timm | synthetic
//   - step: load_images
//     id: examples
//     with:
//       size: 224                      # paper A's app: square → 224x224, else short side 256 → centre crop 224
//       use: $images                   # which of `sets` (or give `files:` directly)
//       sets:
//         paper:
//           - {name: tench, label: 0, url: "https://…/0_tench.jpg", sha256: ecb4d4f2…}
//         shipped:
//           - {name: chelsea, label: 281, file: data/images/chelsea.png, sha256: 596aa1e7…}
//
// load_model stores a `Classifier` (PixelModel: pixels in [-1, 1]); real weights come through
// `WeightStore` (torchvision's cache, SHA-256 checked; EP_OFFLINE=1 disables downloads and the
// error says what to download where). `synthetic` weights are SyntheticWeights: deterministic,
// for CI-scale runs only — they make no meaningful pictures.
//
// load_images stores a `Dataset` ([N, 3, size, size] in [0, 1]) whose class names are the 1000
// ImageNet classes (data/imagenet_classes.txt). `url:` images are cached like weights
// (EP_IMAGE_DIR, default ~/.cache/excitation-pullbacks/images) and checked against `sha256`;
// `file:` images are read in place (relative paths: the working directory, then the repository).
import Foundation
import SIMDCore

/// Whether the environment forbids network access (EP_OFFLINE=1, yes, true): missing weights and
/// images are then errors that say what to download and where to put it.
public func downloadsDisabled(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
    guard let v = env["EP_OFFLINE"]?.lowercased() else { return false }
    return !["", "0", "false", "no"].contains(v)
}

// MARK: - load_model

struct LoadModelStep: RecipeStep {
    static let kind = "load_model"
    static let summary = "An ImageNet classifier (\(ImageNetArchitecture.names.joined(separator: ", "))) with torchvision / timm weights (downloaded with SHA-256) or synthetic CI weights."
    static let keys = ["architecture", "weights", "seed"]

    enum Weights: String, RecipeName {
        case torchvision, timm, synthetic
        static let what = "weights"
    }

    let id: String
    let architecture: ImageNetArchitecture
    let weights: Weights
    let seed: UInt64?
    var inputs: [StepInput] { [] }
    var output: StepValueType? { .classifier }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        architecture = try config.name(at: "architecture")
        weights = try config.name(at: "weights")
        if let s = try config.optional("seed") {
            guard weights == .synthetic else { throw s.error("seed applies to synthetic weights only") }
            let v = try s.int
            guard v >= 0 else { throw s.error("seed must be non-negative, got \(v)") }
            seed = UInt64(v)
        } else { seed = nil }
    }

    /// The catalogue entry of the real weights.
    var weightFile: WeightFile? {
        switch (weights, architecture) {
        case (.torchvision, .resnet50): return WeightCatalogue.resnet50
        case (.torchvision, .vgg11BN): return WeightCatalogue.vgg11BN
        case (.torchvision, .densenet121): return WeightCatalogue.densenet121
        case (.timm, .resnet50): return WeightCatalogue.timmResNet50
        case (.timm, .vgg11BN): return WeightCatalogue.timmVGG11BN
        case (.timm, .densenet121): return WeightCatalogue.timmDenseNet121
        case (.synthetic, _): return nil
        }
    }

    func run(_ ctx: RunContext) throws {
        var net = ImageNetModels.make(architecture)
        if let file = weightFile {
            let store = WeightStore(allowDownload: !downloadsDisabled())
            let url = try store.resolve(file)
            ctx.recordInput(url)
            let sd = try StateDict(contentsOf: url).mapped(StateDict.toTorchvisionNames(architecture: architecture.rawValue))
            try net.load(try sd.matching(net.parameterSpecs, model: architecture.rawValue))
            ctx.markdown("Loaded **\(architecture.rawValue)** with \(weights.rawValue) ImageNet weights `\(file.fileName)` (SHA-256 checked) from \(url.deletingLastPathComponent().path).")
        } else {
            let s = seed ?? SyntheticWeights.goldenSeeds[architecture.rawValue] ?? 0
            try fillSynthetic(&net, seed: s)
            ctx.markdown("**Synthetic weights** (\(architecture.rawValue), seed \(s)): deterministic random weights for CI-scale runs. They make **no meaningful pictures**: this run checks that the pipeline works, not what the paper shows. Run with `--set scale=paper` for the real figure.")
        }
        ctx.store(.classifier(pixelModel(net)))
        ctx.record("\(id).parameters", Double(net.parameters.learnableCount))
    }
}

/// Opens the existential so the generic helpers apply.
private func fillSynthetic(_ net: inout any ImageClassifier, seed: UInt64) throws {
    func fill<M: ImageClassifier>(_ m: M) throws -> any ImageClassifier { var m = m; try SyntheticWeights.fill(&m, seed: seed); return m }
    net = try fill(net)
}

private func pixelModel(_ net: any ImageClassifier) -> Classifier {
    func wrap<M: ImageClassifier>(_ m: M) -> Classifier { PixelModel(m) }
    return wrap(net)
}

// MARK: - ImageNet class names

public enum ImageNetClasses {
    /// data/imagenet_classes.txt (written by scripts/make_imagenet_classes.py from torchvision).
    public static var candidateFiles: [URL] {
        [repositoryRoot.appendingPathComponent("data/imagenet_classes.txt"),
         URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("data/imagenet_classes.txt")]
    }

    /// The 1000 class names in index order ("tench", "goldfish", …).
    public static func names() throws -> [String] {
        guard let url = candidateFiles.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw RecipeError("data/imagenet_classes.txt is in none of: \(candidateFiles.map(\.path).joined(separator: ", ")). It is part of the repository; regenerate it with scripts/make_imagenet_classes.py")
        }
        let lines = try String(contentsOf: url, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let names = lines.last == "" ? Array(lines.dropLast()) : lines
        guard names.count == 1000 else { throw RecipeError("\(url.path): expected 1000 ImageNet class names, found \(names.count)") }
        return names
    }
}

/// <repo>/ from this file's path (Sources/Recipes/Steps/ImageNetSteps.swift).
var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
}

// MARK: - Image files by checksum

/// One image a recipe names: a local file or a URL, with its SHA-256 and ImageNet label.
public struct ImageSource: Sendable, Equatable {
    public var name: String
    public var label: Int
    public var file: String?
    public var url: URL?
    public var sha256: String?
    public init(name: String, label: Int, file: String? = nil, url: URL? = nil, sha256: String? = nil) {
        self.name = name; self.label = label; self.file = file; self.url = url; self.sha256 = sha256?.lowercased()
    }
}

/// A problem with an image a recipe names; says what was expected and what to do.
public struct ImageFetchError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Finds recipe images: local files in place, URLs in a cache directory (downloaded, SHA-256 checked).
///
/// ```swift
/// let store = ImageStore()                                   // EP_IMAGE_DIR or ~/.cache/excitation-pullbacks/images
/// let url = try store.resolve(ImageSource(name: "tench", label: 0, url: u, sha256: "ecb4…"))
/// ```
public struct ImageStore {
    public var cacheDirectory: URL
    public var allowDownload: Bool

    public init(cacheDirectory: URL? = nil, allowDownload: Bool? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.cacheDirectory = cacheDirectory ?? Self.defaultCacheDirectory(environment: environment)
        self.allowDownload = allowDownload ?? !downloadsDisabled(environment)
    }

    /// $EP_IMAGE_DIR, else ~/.cache/excitation-pullbacks/images.
    public static func defaultCacheDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let d = environment["EP_IMAGE_DIR"], !d.isEmpty { return URL(fileURLWithPath: (d as NSString).expandingTildeInPath) }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0) } ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/excitation-pullbacks/images")
    }

    public func localURL(for src: ImageSource) -> URL? {
        src.url.map { cacheDirectory.appendingPathComponent($0.lastPathComponent) }
    }

    /// A verified local copy of the image.
    public func resolve(_ src: ImageSource) throws -> URL {
        if let f = src.file {
            let candidates = Self.candidates(forFile: f)
            guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
                throw ImageFetchError("image '\(src.name)': file \(f) is in none of: \(candidates.map(\.path).joined(separator: ", "))")
            }
            try check(url, src, cached: false)
            return url
        }
        guard let remote = src.url, let dest = localURL(for: src) else {
            throw ImageFetchError("image '\(src.name)' needs `file:` or `url:`")
        }
        if FileManager.default.fileExists(atPath: dest.path) {
            try check(dest, src, cached: true)
            return dest
        }
        guard allowDownload else {
            throw ImageFetchError("image '\(src.name)' is not in the image cache and downloads are disabled (EP_OFFLINE). \(instructions(src, dest))")
        }
        let file = WeightFile(architecture: "image", fileName: dest.lastPathComponent, url: remote, sha256: src.sha256, format: .pytorch)
        do {
            var store = WeightStore(cacheDirectory: cacheDirectory, allowDownload: true, verifyCached: true)
            store.showProgress = false
            return try store.download(file, to: dest)
        } catch let e as WeightsError {
            throw ImageFetchError("image '\(src.name)': \(e.message.components(separatedBy: " Download ").first ?? e.message). \(instructions(src, dest))")
        }
    }

    /// Where a relative `file:` may be: the working directory, then the repository; each path
    /// once (they coincide when the runner is started in the repository).
    static func candidates(forFile f: String) -> [URL] {
        if f.hasPrefix("/") { return [URL(fileURLWithPath: f)] }
        var out: [URL] = []
        for u in [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(f),
                  repositoryRoot.appendingPathComponent(f)] {
            let u = u.standardizedFileURL
            if !out.contains(where: { $0.path == u.path }) { out.append(u) }
        }
        return out
    }

    func check(_ url: URL, _ src: ImageSource, cached: Bool) throws {
        guard let want = src.sha256 else { return }
        let got = try SHA256.hexDigest(ofFile: url)
        guard got == want else {
            throw ImageFetchError("image '\(src.name)': \(url.path) fails its checksum: expected SHA-256 \(want), got \(got)"
                                  + (cached ? ". Delete it to download again from \(src.url?.absoluteString ?? "?")" : ""))
        }
    }

    func instructions(_ src: ImageSource, _ dest: URL) -> String {
        let u = src.url?.absoluteString ?? "?"
        return "Download \(u) and put it at \(dest.path)\(src.sha256.map { " (SHA-256 \($0))" } ?? "") — for example: mkdir -p '\(dest.deletingLastPathComponent().path)' && curl -L -o '\(dest.path)' '\(u)' — or point the image cache elsewhere with EP_IMAGE_DIR."
    }
}

// MARK: - load_images

struct LoadImagesStep: RecipeStep {
    static let kind = "load_images"
    static let summary = "Image files (local or by URL with SHA-256) pre-processed as paper A's app, as an ImageNet-labelled data set."
    static let keys = ["files", "sets", "use", "size", "name"]
    static let fileKeys = ["name", "label", "file", "url", "sha256"]
    /// Largest `size`: one 2048² image is 48 MiB of floats.
    static let maxSize = 2048

    let id: String
    let sources: [ImageSource]
    let size: Int
    let name: String
    var inputs: [StepInput] { [] }
    var output: StepValueType? { .dataset }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        size = try config.int(at: "size", default: 224, in: 8...LoadImagesStep.maxSize)
        let list: YAMLNode
        if let sets = try config.optional("sets") {
            guard try config.optional("files") == nil else { throw config.error("give either `files:` or `sets:` + `use:`, not both") }
            let use = try config.node(at: "use")
            let names = try sets.entries.map(\.key)
            guard let chosen = try sets.optional(try use.string) else {
                var msg = "no image set named '\(try use.string)'"
                if let n = nearestName(to: try use.string, candidates: names) { msg += "; did you mean '\(n)'?" }
                throw use.error(msg + " (sets: \(names.joined(separator: ", ")))")
            }
            list = chosen
            name = try config.string(at: "name", default: try use.string)
        } else {
            list = try config.node(at: "files")
            name = try config.string(at: "name", default: id)
        }
        var out: [ImageSource] = []
        for n in try list.array {
            try n.checkKeys(allowed: Self.fileKeys)
            let file = try n.optional("file")?.string
            let urlText = try n.optional("url")?.string
            guard (file == nil) != (urlText == nil) else { throw n.error("each image needs exactly one of `file:` or `url:`") }
            var url: URL?
            if let u = urlText {
                guard let parsed = URL(string: u), parsed.scheme != nil else { throw try n.node(at: "url").error("not a URL: '\(u)'") }
                url = parsed
            }
            let sha = try n.optional("sha256")?.string
            if url != nil && sha == nil { throw n.error("an image by `url:` needs its `sha256:` (the download is checked against it)") }
            if let s = sha, s.count != 64 || !s.allSatisfy(\.isHexDigit) {
                throw try n.node(at: "sha256").error("sha256 must be 64 hex digits, got '\(s)'")
            }
            let label = try n.int(at: "label")
            guard (0..<1000).contains(label) else { throw try n.node(at: "label").error("label must be an ImageNet class index 0…999, got \(label)") }
            let nm = try n.string(at: "name", default: url?.deletingPathExtension().lastPathComponent ?? (file! as NSString).lastPathComponent)
            out.append(ImageSource(name: nm, label: label, file: file, url: url, sha256: sha))
        }
        guard !out.isEmpty else { throw list.error("no images listed") }
        sources = out
    }

    func run(_ ctx: RunContext) throws {
        let d = try ImageStore().dataset(sources, size: size, name: name) { ctx.recordInput($0) }
        ctx.store(.dataset(d))
        ctx.record("\(id).count", Double(d.count))
        ctx.markdown("Loaded \(d.count) images at \(size)×\(size) (paper A's pre-processing: square → resize, else short side \(ImageStore.resizeSide(size)) then centre crop): "
                     + sources.map { "\($0.name) (\(d.className($0.label)), \($0.label))" }.joined(separator: ", ") + ".")
    }
}

extension ImageStore {
    /// Paper A's app resizes the short side to 256 before a 224 crop; other sizes keep the ratio.
    public static func resizeSide(_ size: Int) -> Int { Int((Double(size) * 256 / 224).rounded()) }

    /// Resolves, decodes and pre-processes `sources` (paper A's app at `size`) into a data set
    /// [N, 3, size, size] in [0, 1] labelled with the ImageNet class names. `read` sees each file used.
    ///
    /// ```swift
    /// let d = try ImageStore().dataset([ImageSource(name: "cat", label: 281, file: "data/images/chelsea.png")], size: 224)
    /// ```
    public func dataset(_ sources: [ImageSource], size: Int = 224, name: String = "images", read: (URL) -> Void = { _ in }) throws -> Dataset {
        let classes = try ImageNetClasses.names()
        var scalars: [Float] = []
        scalars.reserveCapacity(sources.count * 3 * size * size)
        for src in sources {
            let url = try resolve(src)
            read(url)
            let img = try ImageFile.read(url)
            do { scalars += try ImagePreprocessing.paperA(img, size: size, resizeTo: Self.resizeSide(size)).tensor().scalars }
            catch let e as ImageError { throw ImageError(file: url.path, e.message) }
        }
        return try Dataset(name: name, images: Tensor(shape: [sources.count, 3, size, size], scalars: scalars),
                           labels: sources.map(\.label), classNames: classes)
    }
}
