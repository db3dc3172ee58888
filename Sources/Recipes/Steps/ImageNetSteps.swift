// MARK: - load_model and load_images: paper A's ImageNet models and example images
//
//   - step: load_model
//     id: net
//     with: {architecture: resnet50, weights: torchvision}      # torchvision | timm | synthetic
//   - step: load_model                                          # your own weights, any number of classes
//     id: tuned
//     with:
//       architecture: resnet50
//       weights: {file: models/tuned.pth, sha256: <optional>, names: torchvision}   # or .safetensors; names: timm
//       classes: models/classes.txt                             # optional: one name a line
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
    static let summary = "A torchvision ImageNet architecture (\(ImageNetArchitecture.names.joined(separator: ", "))) with torchvision / timm weights (downloaded with SHA-256), your own .pth / .safetensors file, or synthetic CI weights."
    static let keys = ["architecture", "weights", "seed", "classes"]
    static let fileKeys = ["file", "sha256", "names"]

    /// Catalogued weights by name.
    enum Weights: String, RecipeName {
        case torchvision, timm, synthetic
        static let what = "weights"
    }

    /// Whose parameter names a weight file uses.
    enum NameScheme: String, RecipeName {
        case torchvision, timm
        static let what = "names"
    }

    /// Where the weights come from: the catalogue, or a file the recipe names.
    enum Source: Equatable {
        case catalogue(Weights)
        case file(path: String, sha256: String?, names: NameScheme)
    }

    let id: String
    let architecture: ImageNetArchitecture
    let source: Source
    let seed: UInt64?
    /// A text file of class names, one a line (else ImageNet's names for 1000 classes, indices otherwise).
    let classesFile: String?
    var inputs: [StepInput] { [] }
    var output: StepValueType? { .classifier }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        architecture = try config.name(at: "architecture")
        let w = try config.node(at: "weights")
        if case .scalar = w.kind {
            source = .catalogue(try config.name(at: "weights"))
        } else {
            try w.checkKeys(allowed: Self.fileKeys)
            let file = try w.string(at: "file")
            guard !file.isEmpty else { throw try w.node(at: "file").error("file must name a .pth or .safetensors file") }
            let sha = try w.optional("sha256")?.sha256Digest.lowercased()
            source = .file(path: file, sha256: sha, names: try w.name(at: "names", default: NameScheme.torchvision))
        }
        if case .catalogue(.timm) = source, WeightCatalogue.timmFiles[architecture] == nil {
            throw try config.node(at: "weights").error("timm weights are catalogued for \(ImageNetArchitecture.paperA.map(\.rawValue).joined(separator: ", ")); for \(architecture.rawValue) give the file: weights: {file: <path>, names: timm}")
        }
        if let s = try config.optional("seed") {
            guard source == .catalogue(.synthetic) else { throw s.error("seed applies to synthetic weights only") }
            let v = try s.int
            guard v >= 0 else { throw s.error("seed must be non-negative, got \(v)") }
            seed = UInt64(v)
        } else { seed = nil }
        classesFile = try config.optional("classes")?.string
    }

    /// The catalogue entry of the real weights.
    var weightFile: WeightFile? {
        switch source {
        case .catalogue(.torchvision): return WeightCatalogue.torchvisionFiles[architecture]
        case .catalogue(.timm): return WeightCatalogue.timmFiles[architecture]
        case .catalogue(.synthetic), .file: return nil
        }
    }

    func run(_ ctx: RunContext) throws {
        var net: any ImageClassifier
        if let file = weightFile {
            net = ImageNetModels.make(architecture)
            let store = WeightStore(allowDownload: !downloadsDisabled())
            let url = try store.resolve(file)
            ctx.recordInput(url)
            let sd = try StateDict(contentsOf: url).mapped(StateDict.toTorchvisionNames(architecture: architecture.rawValue))
            try net.load(try sd.matching(net.parameterSpecs, model: architecture.rawValue))
            ctx.markdown("Loaded **\(architecture.rawValue)** with \(file.format == .safetensors ? "timm" : "torchvision") ImageNet weights `\(file.fileName)` (SHA-256 checked) from \(url.deletingLastPathComponent().path).")
        } else if case .file(let path, let sha, let names) = source {
            let url = try Self.locate(path, recipe: ctx.recipe.file)
            if let want = sha {
                let got = try SHA256.hexDigest(ofFile: url)
                guard got == want else { throw WeightsError(file: url.path, "fails its checksum: expected SHA-256 \(want), got \(got)") }
            }
            ctx.recordInput(url)
            net = try Self.load(architecture, from: url, names: names)
            ctx.markdown("Loaded **\(architecture.rawValue)** (\(classCount(net)) classes) with the weights in `\(url.path)` (\(names.rawValue) parameter names\(sha == nil ? "" : ", SHA-256 checked")).")
        } else {
            net = ImageNetModels.make(architecture)
            let s = seed ?? SyntheticWeights.goldenSeeds[architecture.rawValue] ?? 0
            try fillSynthetic(&net, seed: s)
            ctx.markdown("**Synthetic weights** (\(architecture.rawValue), seed \(s)): deterministic random weights for CI-scale runs. They make **no meaningful pictures**: this run checks that the pipeline works, not what the paper shows. Run with `--set scale=paper` for the real figure.")
        }
        let classes = classCount(net)
        var names: [String]?
        if let f = classesFile {
            let url = try Self.locate(f, recipe: ctx.recipe.file)
            ctx.recordInput(url)
            names = try Self.classNames(url, count: classes)
        } else if classes != 1000 {
            names = (0..<classes).map(String.init)
        }
        ctx.store(.classifier(pixelModel(net, classNames: names)))
        ctx.record("\(id).parameters", Double(net.parameters.learnableCount))
        ctx.record("\(id).classes", Double(classes))
    }

    /// `architecture` with the weights in `url` (.pth or .safetensors, by content); the number of
    /// classes is the first dimension of the file's classifier weight.
    static func load(_ architecture: ImageNetArchitecture, from url: URL, names: NameScheme) throws -> any ImageClassifier {
        let mappings: [StateDictMapping] = names == .timm || architecture.family == .densenet
            ? StateDict.toTorchvisionNames(architecture: architecture.rawValue) : [.identity]
        let sd = try StateDict(contentsOf: url).mapped(mappings)
        let head = architecture.classifierWeight
        guard let w = sd.tensors[head] else {
            throw WeightsError(file: url.path, "has no tensor '\(head)' (the classifier of \(architecture.rawValue)\(names == .timm ? " after mapping timm's names" : "")); its tensors begin \(sd.names.prefix(4).joined(separator: ", ")). Is it a \(architecture.rawValue) state_dict with \(names.rawValue) names?")
        }
        guard w.rank == 2, w.shape[0] >= 1 else {
            throw WeightsError(file: url.path, "tensor '\(head)': expected [classes, features], found \(w.shape)")
        }
        var net = ImageNetModels.make(architecture, classes: w.shape[0])
        try net.load(try sd.matching(net.parameterSpecs, model: architecture.rawValue))
        return net
    }

    /// Class names, one a line (blank lines at the end ignored); exactly `count` of them when given.
    static func classNames(_ url: URL, count: Int?) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw RecipeError("\(url.path): cannot read the class names file") }
        var lines = String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        while lines.last == "" { lines.removeLast() }
        guard count == nil || lines.count == count else {
            throw RecipeError("\(url.path): \(lines.count) class names, but there are \(count ?? 0) classes (one name a line)")
        }
        if let blank = lines.firstIndex(of: "") { throw RecipeError("\(url.path):\(blank + 1): empty class name") }
        guard !lines.isEmpty else { throw RecipeError("\(url.path): no class names (one name a line)") }
        return lines
    }

    /// A file a recipe names: absolute, else relative to the working directory, then to the recipe's directory.
    static func locate(_ path: String, recipe: String) throws -> URL {
        let expanded = (path as NSString).expandingTildeInPath
        let candidates = expanded.hasPrefix("/") ? [URL(fileURLWithPath: expanded)]
            : [URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(expanded),
               URL(fileURLWithPath: recipe).deletingLastPathComponent().appendingPathComponent(expanded)]
        guard let url = candidates.first(where: { FileManager.default.fileExists(atPath: $0.path) }) else {
            throw RecipeError("\(path) is in none of: \(candidates.map(\.path).joined(separator: ", "))")
        }
        return url
    }
}

/// The number of logits: the classifier weight's first dimension.
private func classCount(_ net: any ImageClassifier) -> Int {
    let head = ImageNetArchitecture(rawValue: net.name)?.classifierWeight
    return head.flatMap { net.parameters.shapes[$0]?.first } ?? 1000
}

/// Opens the existential so the generic helpers apply.
private func fillSynthetic(_ net: inout any ImageClassifier, seed: UInt64) throws {
    func fill<M: ImageClassifier>(_ m: M) throws -> any ImageClassifier { var m = m; try SyntheticWeights.fill(&m, seed: seed); return m }
    net = try fill(net)
}

private func pixelModel(_ net: any ImageClassifier, classNames: [String]?) -> Classifier {
    func wrap<M: ImageClassifier>(_ m: M) -> Classifier { PixelModel(m, classNames: classNames) }
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
    /// The file name in the image cache (default: the URL's last path component); set when two
    /// URLs end in the same name, as the authors' grids in different folders do.
    public var cacheName: String?
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
        src.url.map { cacheDirectory.appendingPathComponent(src.cacheName ?? $0.lastPathComponent) }
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
    static let summary = "Image files (local, by URL with SHA-256, or a folder in ImageFolder layout or with labels.csv) pre-processed as paper A's app, as a labelled data set."
    static let keys = ["files", "sets", "use", "size", "name", "dir", "limit"]
    static let fileKeys = ["name", "label", "file", "url", "sha256"]
    /// Largest `size`: one 2048² image is 48 MiB of floats.
    static let maxSize = 2048

    let id: String
    let sources: [ImageSource]
    /// `dir:`: a folder read when the step runs (ImageFolder layout or labels.csv).
    let directory: String?
    let limit: Int?
    let size: Int
    let name: String
    var inputs: [StepInput] { [] }
    var output: StepValueType? { .dataset }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        size = try config.int(at: "size", default: 224, in: 8...LoadImagesStep.maxSize)
        limit = try config.optional("limit").map { n in
            let v = try n.int
            guard v >= 1 else { throw n.error("limit must be at least 1, got \(v)") }
            return v
        }
        if let d = try config.optional("dir") {
            guard try config.optional("files") == nil, try config.optional("sets") == nil else {
                throw config.error("give one of `dir:`, `files:` or `sets:` + `use:`")
            }
            directory = try d.string
            name = try config.string(at: "name", default: (directory! as NSString).lastPathComponent)
            sources = []
            return
        }
        directory = nil
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
            let sha = try n.optional("sha256")?.sha256Digest
            if url != nil && sha == nil { throw n.error("an image by `url:` needs its `sha256:` (the download is checked against it)") }
            let label = try n.int(at: "label")
            guard (0..<1000).contains(label) else { throw try n.node(at: "label").error("label must be an ImageNet class index 0…999, got \(label)") }
            let nm = try n.string(at: "name", default: url?.deletingPathExtension().lastPathComponent ?? (file! as NSString).lastPathComponent)
            out.append(ImageSource(name: nm, label: label, file: file, url: url, sha256: sha))
        }
        guard !out.isEmpty else { throw list.error("no images listed") }
        sources = out
    }

    func run(_ ctx: RunContext) throws {
        if let dir = directory {
            let folder = try LoadModelStep.locate(dir, recipe: ctx.recipe.file)
            var (found, classNames, layout) = try ImageFolder.list(folder)
            if let l = limit { found = Array(found.prefix(l)) }
            let values = found.count * 3 * size * size
            guard values <= Limits.maxTensorElements else {
                throw RecipeError("\(folder.path): \(found.count) images at \(size)x\(size) need \(values) values, more than the limit \(Limits.maxTensorElements); choose fewer with `limit:` or a smaller `size:`")
            }
            let d = try ImageStore().dataset(found, size: size, name: name, classNames: classNames) { ctx.recordInput($0) }
            ctx.store(.dataset(d))
            ctx.record("\(id).count", Double(d.count))
            ctx.markdown("Loaded \(d.count) images from \(folder.path) (\(layout)) at \(size)×\(size), \(classNames.count) classes: " + d.classCounts.enumerated().filter { $0.element > 0 }.map { "\(classNames[$0.offset]) \($0.element)" }.joined(separator: ", ") + ".")
            return
        }
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
    public func dataset(_ sources: [ImageSource], size: Int = 224, name: String = "images", classNames: [String]? = nil,
                        read: (URL) -> Void = { _ in }) throws -> Dataset {
        let classes = try classNames ?? ImageNetClasses.names()
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

// MARK: - A folder of images

/// The images of a folder, labelled by a `labels.csv` in it or by ImageFolder's layout.
///
///   <dir>/labels.csv       file,label — one row per image (paths relative to <dir>); labels are
///                          class names, or integers (ImageNet class indices, named as ImageNet's)
///   <dir>/<class>/…        otherwise: torchvision's ImageFolder — one sub-folder per class, classes
///                          in sorted order, images (.png, .jpg, .jpeg) found recursively
/// Order is stable: labels.csv's row order, or class by class and sorted paths within each.
public enum ImageFolder {
    static let extensions: Set<String> = ["png", "jpg", "jpeg"]

    /// The images, the class names, and which layout was read.
    public static func list(_ dir: URL) throws -> (images: [ImageSource], classNames: [String], layout: String) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw RecipeError("\(dir.path) is not a folder")
        }
        let csv = dir.appendingPathComponent("labels.csv")
        if FileManager.default.fileExists(atPath: csv.path) { return try fromCSV(csv, dir: dir) }
        let classes = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { c in
            var d: ObjCBool = false
            return !c.hasPrefix(".") && FileManager.default.fileExists(atPath: dir.appendingPathComponent(c).path, isDirectory: &d) && d.boolValue
        }.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        guard !classes.isEmpty else {
            throw RecipeError("\(dir.path) has neither a labels.csv (file,label) nor class sub-folders (<dir>/<class>/<image>)")
        }
        var out: [ImageSource] = []
        for (label, c) in classes.enumerated() {
            let base = dir.appendingPathComponent(c)
            guard let walk = FileManager.default.enumerator(atPath: base.path) else { continue }
            let files = walk.compactMap { $0 as? String }
                .filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) && !($0 as NSString).lastPathComponent.hasPrefix(".") }
                .sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            out += files.map { ImageSource(name: "\(c)/\($0)", label: label, file: base.appendingPathComponent($0).path) }
        }
        guard !out.isEmpty else { throw RecipeError("\(dir.path): the class folders \(Limits.listed(classes)) hold no .png, .jpg or .jpeg images") }
        return (out, classes, "ImageFolder layout")
    }

    /// `file,label` rows; the header row is required.
    static func fromCSV(_ csv: URL, dir: URL) throws -> (images: [ImageSource], classNames: [String], layout: String) {
        let text = String(decoding: try Data(contentsOf: csv), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? String($0.dropLast()) : String($0) }
        guard let header = lines.first, header.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) == ["file", "label"] else {
            throw RecipeError("\(csv.path):1: the first row must be the header `file,label`")
        }
        var rows: [(file: String, label: String, line: Int)] = []
        for (i, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let comma = line.lastIndex(of: ",") else { throw RecipeError("\(csv.path):\(i + 1): expected `file,label`, got '\(line)'") }
            let file = line[..<comma].trimmingCharacters(in: .whitespaces), label = line[line.index(after: comma)...].trimmingCharacters(in: .whitespaces)
            guard !file.isEmpty, !label.isEmpty else { throw RecipeError("\(csv.path):\(i + 1): expected `file,label`, got '\(line)'") }
            rows.append((file, label, i + 1))
        }
        guard !rows.isEmpty else { throw RecipeError("\(csv.path): no images listed") }
        let classNames: [String], labelOf: (String) -> Int?
        if rows.allSatisfy({ Int($0.label) != nil }) {
            classNames = try ImageNetClasses.names()
            labelOf = { Int($0).flatMap { (0..<1000).contains($0) ? $0 : nil } }
        } else {
            classNames = Array(Set(rows.map(\.label))).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
            let index = Dictionary(uniqueKeysWithValues: classNames.enumerated().map { ($1, $0) })
            labelOf = { index[$0] }
        }
        let images: [ImageSource] = try rows.map { r in
            guard let l = labelOf(r.label) else {
                throw RecipeError("\(csv.path):\(r.line): label \(r.label) is not an ImageNet class index 0…999 (integer labels are ImageNet's; use class names otherwise)")
            }
            let path = r.file.hasPrefix("/") ? r.file : dir.appendingPathComponent(r.file).path
            guard FileManager.default.fileExists(atPath: path) else { throw RecipeError("\(csv.path):\(r.line): no such image \(path)") }
            return ImageSource(name: r.file, label: l, file: path)
        }
        return (images, classNames, "labels.csv")
    }
}
