// MARK: - The workbench: models, images and the computations behind the page
//
// Independent of HTTP, so the tests call it directly. Models are loaded once and kept (the MNIST
// CNN is trained on first use and cached on disk); uploads are kept in memory, a bounded number.
// Every computation runs on the job queue's one compute thread (JobQueue), so the caches below
// are touched by one computation at a time; the lock guards them against the HTTP threads that
// list models or store uploads meanwhile.
import Foundation
import Recipes
import SIMDCore

/// Models, images and the page's computations.
public final class Workbench: @unchecked Sendable {
    /// Where the trained MNIST CNN is kept between runs.
    public let cacheDirectory: URL
    /// Epochs of the MNIST CNN's training on first use (the offline recipe's 4).
    public let mnistEpochs: Int
    /// torchvision's weight cache; never downloads (the page says what to fetch).
    public let weightStore: WeightStore
    /// Uploads kept in memory (oldest dropped first).
    public static let maxUploads = 16
    /// Largest upload, in pixels (checked from the header before decoding).
    public static let maxUploadPixels = 4096 * 4096
    /// Largest side of an upload.
    public static let maxUploadSide = 8192

    private let lock = NSLock()
    private var models: [String: Classifier] = [:]
    private var uploads: [(id: String, image: RGBImage)] = []
    private var mnistTest: Dataset?
    private var imageNetNames: [String]?

    public init(cacheDirectory: URL, mnistEpochs: Int = 4, weightStore: WeightStore? = nil) {
        self.cacheDirectory = cacheDirectory
        self.mnistEpochs = mnistEpochs
        self.weightStore = weightStore ?? WeightStore(allowDownload: false)
    }

    /// ~/.cache/excitation-pullbacks/serve ($XDG_CACHE_HOME honoured; EP_SERVE_CACHE overrides).
    public static func defaultCacheDirectory(_ env: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let d = env["EP_SERVE_CACHE"], !d.isEmpty { return URL(fileURLWithPath: d, isDirectory: true) }
        let base = env["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache", isDirectory: true)
        return base.appendingPathComponent("excitation-pullbacks/serve", isDirectory: true)
    }

    // MARK: Catalogue

    /// One model choice of the page, with what is missing when it cannot be used.
    public struct ModelEntry: Sendable {
        public let model: ServeModel
        public let weights: ServeWeights
        public let available: Bool
        public let note: String
        public var label: String {
            switch weights {
            case .trained: return "MNIST CNN (trained on the shipped digits)"
            case .torchvision: return "\(model.rawValue) (torchvision ImageNet weights)"
            case .synthetic: return "\(model.rawValue) (synthetic weights: mechanics only)"
            }
        }
    }

    /// Every model the page offers; ImageNet weights that are absent say how to get them.
    public func catalogue() -> [ModelEntry] {
        var out = [ModelEntry(model: .mnistCNN, weights: .trained, available: true,
                              note: mnistCheckpointExists ? "cached" : "trained on first use (\(mnistEpochs) epochs, some seconds)")]
        for m in ServeModel.allCases where m != .mnistCNN {
            let file = Self.weightFile(m)
            let local = weightStore.localURL(for: file)
            let present = FileManager.default.fileExists(atPath: local.path) || weightStore.huggingFaceCopy(of: file) != nil
            out.append(ModelEntry(model: m, weights: .torchvision, available: present,
                                  note: present ? "weights at \(local.path)"
                                                : "weights missing: download \(file.url.absoluteString) to \(local.path) (or run `runner recipes/fig1.yaml --set scale=paper` once)"))
            out.append(ModelEntry(model: m, weights: .synthetic, available: true, note: "deterministic random weights; no meaningful pictures"))
        }
        return out
    }

    static func weightFile(_ m: ServeModel) -> WeightFile {
        switch m {
        case .resnet50: return WeightCatalogue.resnet50
        case .vgg11BN: return WeightCatalogue.vgg11BN
        case .densenet121, .mnistCNN: return WeightCatalogue.densenet121
        }
    }

    var mnistCheckpoint: URL { cacheDirectory.appendingPathComponent("mnist_cnn-seed0-epochs\(mnistEpochs).safetensors") }
    var mnistCheckpointExists: Bool { FileManager.default.fileExists(atPath: mnistCheckpoint.path) }

    /// Class names of a model's output, index order.
    public func classNames(_ model: ServeModel) throws -> [String] {
        if model == .mnistCNN { return MNIST.classNames }
        lock.lock(); defer { lock.unlock() }
        if let n = imageNetNames { return n }
        do { imageNetNames = try ImageNetClasses.names() } catch { throw ServeError(.internalError, "\(error)") }
        return imageNetNames!
    }

    // MARK: Models

    /// The model of a view, loaded (or trained) on first use. `progress` reports training.
    public func classifier(_ p: ExploreParameters, progress: ((String) -> Void)? = nil) throws -> Classifier {
        let key = "\(p.model.rawValue)/\(p.weights.rawValue)"
        lock.lock()
        if let m = models[key] { lock.unlock(); return m }
        lock.unlock()
        let m: Classifier
        switch (p.model, p.weights) {
        case (.mnistCNN, _): m = try mnistCNN(progress: progress)
        case (let model, .synthetic):
            var net = ImageNetModels.make(model.imageNet!)
            net = try Self.fillSynthetic(net, seed: SyntheticWeights.goldenSeeds[model.rawValue] ?? 0)
            m = Self.pixelModel(net)
        case (let model, _):
            let file = Self.weightFile(model)
            let local = weightStore.localURL(for: file)
            guard FileManager.default.fileExists(atPath: local.path) || weightStore.huggingFaceCopy(of: file) != nil else {
                throw ServeError(.unprocessable, "\(model.rawValue): torchvision weights are not on this machine; download \(file.url.absoluteString) to \(local.path), or choose synthetic weights")
            }
            var net = ImageNetModels.make(model.imageNet!)
            do {
                let sd = try weightStore.load(file)
                try net.load(try sd.matching(net.parameterSpecs, model: model.rawValue))
            } catch { throw ServeError(.unprocessable, "\(model.rawValue): \(error)") }
            m = Self.pixelModel(net)
        }
        lock.lock(); models[key] = m; lock.unlock()
        return m
    }

    private static func fillSynthetic(_ net: any ImageClassifier, seed: UInt64) throws -> any ImageClassifier {
        func fill<M: ImageClassifier>(_ m: M) throws -> any ImageClassifier { var m = m; try SyntheticWeights.fill(&m, seed: seed); return m }
        return try fill(net)
    }

    private static func pixelModel(_ net: any ImageClassifier) -> Classifier {
        func wrap<M: ImageClassifier>(_ m: M) -> Classifier { PixelModel(m) }
        return wrap(net)
    }

    /// The offline recipe's CNN: loaded from the cache, else trained (seed 0, Adam 1e-3, batch 32).
    func mnistCNN(progress: ((String) -> Void)?) throws -> SmallCNN {
        if mnistCheckpointExists, let t = try? SafeTensors(contentsOf: mnistCheckpoint).tensors, let m = try? SmallCNN(parameters: t) {
            return m
        }
        let train = try MNIST5k.load(split: .train)
        let test = try testDigits()
        func inputs(_ d: Dataset) -> Tensor { var x = d.images; for i in 0..<x.count { x.scalars[i] = 2 * x.scalars[i] - 1 }; return x }
        var model = SmallCNN(seed: 0)
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(0.001),
                              configuration: TrainingConfiguration(epochs: mnistEpochs, batchSize: 32, seed: 0))
        _ = try trainer.fit(&model, train: try LabelledImages(images: inputs(train), labels: train.labels),
                            test: try LabelledImages(images: inputs(test), labels: test.labels),
                            progress: { p in progress?("training the MNIST CNN: epoch \(p.epoch + 1) of \(self.mnistEpochs)") })
        try FileManager.default.createDirectory(at: cacheDirectory, withIntermediateDirectories: true)
        try Trainer<Adam>.saveCheckpoint(model, to: mnistCheckpoint)
        return model
    }

    func testDigits() throws -> Dataset {
        lock.lock(); defer { lock.unlock() }
        if let d = mnistTest { return d }
        let d = try MNIST5k.load(split: .test)
        mnistTest = d
        return d
    }

    // MARK: Images

    /// Stores an uploaded PNG or JPEG and returns its id. 415: not an image; 413: too many pixels.
    public func storeUpload(_ data: Data) throws -> String {
        let header = try ImageHeader.read(data)
        guard header.width >= 1, header.height >= 1, header.width <= Self.maxUploadSide, header.height <= Self.maxUploadSide,
              header.width * header.height <= Self.maxUploadPixels else {
            throw ServeError(.contentTooLarge, "the image is \(header.width)x\(header.height) pixels; uploads may have at most \(Self.maxUploadPixels) pixels (4096x4096) and sides of at most \(Self.maxUploadSide)")
        }
        let image: RGBImage
        do { image = try ImageFile.decode(data, file: "upload") } catch {
            throw ServeError(.unsupportedMediaType, "\(error)")
        }
        let id = String(SHA256.hexDigest(of: data).prefix(16))
        lock.lock(); defer { lock.unlock() }
        uploads.removeAll { $0.id == id }
        uploads.append((id, image))
        if uploads.count > Self.maxUploads { uploads.removeFirst(uploads.count - Self.maxUploads) }
        return id
    }

    /// The model's input for a view: [1, C, H, W] in [-1, 1], and the clean image's label if known.
    public func input(_ p: ExploreParameters) throws -> (x: Tensor, label: Int?) {
        let rgb: RGBImage
        var label: Int?
        switch p.image {
        case .digit(let i):
            let d = try testDigits()
            guard i < d.count else { throw ServeError(.badRequest, "image: digit \(i) is out of range 0…\(d.count - 1)") }
            var x = d.images(at: [i])
            for k in 0..<x.count { x.scalars[k] = 2 * x.scalars[k] - 1 }
            return (x, d.labels[i])
        case .example(let name):
            guard let e = ExampleImages.files.first(where: { $0.name == name }) else { throw ServeError(.badRequest, "image: no example '\(name)'") }
            guard let url = Self.dataFile("data/images/\(e.file)") else {
                throw ServeError(.unprocessable, "data/images/\(e.file) is not found next to the package or in the working directory")
            }
            do { rgb = try ImageFile.read(url) } catch { throw ServeError(.unprocessable, "\(error)") }
            label = e.label
        case .upload(let id):
            lock.lock()
            let found = uploads.first { $0.id == id }?.image
            lock.unlock()
            guard let found else { throw ServeError(.notFound, "image: upload \(id) is not (or no longer) held by this server; upload it again") }
            rgb = found
        }
        if p.model == .mnistCNN { return (Self.digitTensor(rgb), label) }
        let crop: RGBImage
        do { crop = try ImagePreprocessing.paperA(rgb, size: p.size, resizeTo: p.size * 256 / 224) } catch {
            throw ServeError(.unprocessable, "\(error)")
        }
        var x = crop.tensor()
        for k in 0..<x.count { x.scalars[k] = 2 * x.scalars[k] - 1 }
        return (x.reshaped([1, 3, p.size, p.size]), label)
    }

    /// An uploaded picture as an MNIST digit: 28x28 grey in [-1, 1], light backgrounds inverted
    /// (MNIST digits are white on black).
    static func digitTensor(_ img: RGBImage) -> Tensor {
        let small = PILResample.bilinear(img, width: 28, height: 28)
        var g = [Float](repeating: 0, count: 784)
        for i in 0..<784 {
            g[i] = (Float(small.pixels[3 * i]) + Float(small.pixels[3 * i + 1]) + Float(small.pixels[3 * i + 2])) / (3 * 255)
        }
        if g.reduce(0, +) / 784 > 0.5 { g = g.map { 1 - $0 } }
        return Tensor(shape: [1, 1, 28, 28], scalars: g.map { 2 * $0 - 1 })
    }

    /// A file shipped with the package: next to the sources, else under the working directory.
    static func dataFile(_ relative: String) -> URL? {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return [repo, cwd].map { $0.appendingPathComponent(relative) }.first { FileManager.default.fileExists(atPath: $0.path) }
    }

    // MARK: Methods

    /// The explanation method of a view.
    public static func method(_ p: ExploreParameters) throws -> ExplanationMethod {
        switch p.method {
        case .gradient: return .gradient
        case .excitationPullback:
            return .excitationPullback(try GatePolicy.excitation(temperature: p.temperature, gate: p.gate.rawValue))
        case .inputXGradient: return .inputXGradient(.gradient)
        case .smoothgrad: return .smoothGrad(.gradient, samples: 16, sigma: 0.15, seed: 0)
        case .integratedGradients: return .integratedGradients(.gradient, baseline: 0, steps: 32)
        }
    }
}
