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
    /// Where this run writes its artifacts: a fresh directory inside the run directory, moved into
    /// place only when the run succeeds (see RecipeEngine.publish).
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
    /// One line per grid compared with a published one (`reference_grids`), for the summary.
    public internal(set) var referenceLines: [String] = []

    /// Every file a step read (data, weights, images), with its SHA-256, for the manifest.
    public private(set) var inputFiles: [Manifest.Input] = []
    /// The files each step read, by step id: they are part of what its outputs depend on, so they
    /// enter the cache key of every step downstream (see RecipeEngine).
    private(set) var stepInputs: [String: [Manifest.Input]] = [:]

    private var outputs: [String: StepValue] = [:]
    var currentStep = ""

    /// The current step's units of work, when it splits into units (WorkUnits.swift).
    var units: UnitContext?
    /// Units this run computed, and units it found complete in the store.
    var unitsComputed = 0, unitsReused = 0

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

    /// Stores the current step's output for later steps.
    public func store(_ value: StepValue) { outputs[currentStep] = value }

    /// The type of what step `id` stored, if anything.
    public func outputType(of id: String) -> StepValueType? { outputs[id]?.type }

    // Inputs were matched to outputs when the recipe was validated; the errors below guard that.

    public func dataset(_ input: StepInput) throws -> Dataset {
        guard case .dataset(let d) = try value(input) else { throw mismatch(input) }
        return d
    }

    public func classifier(_ input: StepInput) throws -> Classifier {
        guard case .classifier(let c) = try value(input) else { throw mismatch(input) }
        return c
    }

    public func gatedNetwork(_ input: StepInput) throws -> GatedNetwork {
        guard case .gatedNetwork(let g) = try value(input) else { throw mismatch(input) }
        return g
    }

    private func value(_ input: StepInput) throws -> StepValue {
        guard let v = outputs[input.step] else {
            throw input.node.error("step '\(input.step)' has stored nothing for `\(input.key)` to read")
        }
        return v
    }

    private func mismatch(_ input: StepInput) -> Error {
        input.node.error("step '\(input.step)' produced \(outputs[input.step]?.type.description ?? "nothing"), not \(input.type)")
    }

    /// Records that the current step read `url`: its SHA-256 (computed once per path and run)
    /// goes into the manifest and into the cache keys of the steps that use this step's outputs.
    public func recordInput(_ url: URL) {
        _ = input(url)
    }

    /// The SHA-256 of the file at `path`, from this run's records when it read the file,
    /// without recording it as read by the current step.
    func knownSHA256(_ path: String) -> String {
        if let known = inputFiles.first(where: { $0.path == path }) { return known.sha256 }
        return (try? SHA256.hexDigest(ofFile: URL(fileURLWithPath: path))) ?? "unreadable"
    }

    /// The files that `steps` read, each once, sorted by path.
    func files(readBy steps: Set<String>) -> [Manifest.Input] {
        var seen = Set<String>(), out: [Manifest.Input] = []
        for s in steps.sorted() { for f in stepInputs[s] ?? [] where seen.insert(f.path).inserted { out.append(f) } }
        return out.sorted { $0.path < $1.path }
    }

    /// The recorded SHA-256 of `url`, hashing it on first use, and noting that the current step read it.
    @discardableResult
    func input(_ url: URL) -> Manifest.Input {
        let entry: Manifest.Input
        if let known = inputFiles.first(where: { $0.path == url.path }) { entry = known } else {
            entry = .init(path: url.path, sha256: (try? SHA256.hexDigest(ofFile: url)) ?? "unreadable")
            inputFiles.append(entry)
        }
        if !(stepInputs[currentStep]?.contains { $0.path == entry.path } ?? false) {
            stepInputs[currentStep, default: []].append(entry)
        }
        return entry
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

    /// Writes a float32 array artifact (`.npy`, NumPy format 1.0; docs/recipes.md, "Arrays").
    public func writeArray(_ t: Tensor, to file: String) throws {
        try NPY.write(t, to: directory.appendingPathComponent(file))
    }

    /// Writes an int64 array artifact (`.npy`), one-dimensional unless `shape` says otherwise.
    public func writeArray(ints: [Int], shape: [Int]? = nil, to file: String) throws {
        try NPY.write(ints: ints, shape: shape ?? [ints.count], to: directory.appendingPathComponent(file))
    }

    /// Writes a text artifact.
    public func write(_ text: String, to file: String) throws {
        try AtomicFile.write(text, to: directory.appendingPathComponent(file))
    }
}
