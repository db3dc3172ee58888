// MARK: - RunContext
//
// What steps share during a run: the outputs of earlier steps (by id), the metrics that golden
// verification compares, the report being written, and the run directory.
import Foundation
import SIMDCore

/// The state of one recipe run, handed to each step in order.
public final class RunContext {
    public let recipe: Recipe
    public let parameters: ResolvedParameters
    public let settings: RunSettings
    /// The run directory; every artifact is written inside it.
    public let directory: URL
    /// Per-step cache directory, when the step is cached (content-addressed; see RecipeEngine).
    public internal(set) var cacheDirectory: URL?
    /// Whether the current step's cache entry already existed when the step started.
    public internal(set) var cacheHit = false
    public let narrator: Narrator

    public internal(set) var report: Report
    /// Metrics recorded so far, in order: golden verification compares these.
    public private(set) var metrics: [(name: String, value: Double)] = []
    /// Images written so far (relative paths): golden verification compares their pixels.
    public private(set) var images: [String] = []
    /// Claims checked so far (`check` steps).
    public internal(set) var checks: [CheckResult] = []
    /// Claims marked `required: true` that did not hold: they fail `runner verify`.
    public internal(set) var failedRequiredClaims: [String] = []

    /// Every file a step read (data, weights, images), with its SHA-256, for the manifest.
    public private(set) var inputFiles: [Manifest.Input] = []

    private var outputs: [String: Any] = [:]
    var currentStep = ""

    init(recipe: Recipe, parameters: ResolvedParameters, settings: RunSettings, directory: URL) {
        self.recipe = recipe; self.parameters = parameters; self.settings = settings
        self.directory = directory
        self.narrator = Narrator(quiet: settings.quiet)
        self.report = Report(title: recipe.title)
    }

    /// The run's seed (the `seed` parameter, or 0).
    public var seed: UInt64 {
        if case .int(let s)? = parameters["seed"] { return UInt64(truncatingIfNeeded: s) }
        return 0
    }

    // MARK: Step outputs

    public func store(_ value: Any, as id: String) { outputs[id] = value }

    /// The output of step `id`, which must be of type `T`.
    public func output<T>(_ id: String, as type: T.Type, for key: String) throws -> T {
        guard let v = outputs[id] else {
            let known = outputs.keys.sorted()
            var msg = "step '\(currentStep)': key '\(key)' refers to step '\(id)', which has not run"
            if let near = nearestName(to: id, candidates: known) { msg += "; did you mean '\(near)'?" }
            throw RecipeError(msg)
        }
        guard let t = v as? T else {
            throw RecipeError("step '\(currentStep)': key '\(key)' refers to step '\(id)', which produced \(Swift.type(of: v)), not \(T.self)")
        }
        return t
    }

    /// Records that a step read `url` (hashed once per path).
    public func recordInput(_ url: URL) {
        guard !inputFiles.contains(where: { $0.path == url.path }) else { return }
        let hash = (try? SHA256.hexDigest(ofFile: url)) ?? "unreadable"
        inputFiles.append(.init(path: url.path, sha256: hash))
    }

    // MARK: Report and artifacts

    public func add(_ block: Report.Block) { report.blocks.append(block) }

    public func markdown(_ text: String) { add(.markdown(text)) }

    /// Records a number for the report's results table and for golden verification.
    public func record(_ name: String, _ value: Double) {
        if let i = metrics.firstIndex(where: { $0.name == name }) { metrics[i].value = value }
        else { metrics.append((name, value)) }
    }

    public func metric(_ name: String) -> Double? { metrics.last { $0.name == name }?.value }

    /// Writes an image artifact (PNG) and adds it to the report.
    public func addImage(_ canvas: RGBImage, file: String, caption: String) throws {
        let url = directory.appendingPathComponent(file)
        try PNG.write(canvas, to: url)
        images.append(file)
        add(.image(path: file, caption: caption))
    }

    /// Writes a text artifact.
    public func write(_ text: String, to file: String) throws {
        try AtomicFile.write(text, to: directory.appendingPathComponent(file))
    }
}
