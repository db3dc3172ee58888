// MARK: - Work units and shards
//
// A recipe's expensive work splits into independent *units*: one training run of one model
// (a `train` step with `runs: R` and `permutations: P` has R x P units, e.g. `dgn_x1_perm/perm0132-run2`:
// the layer permutation 0 1 3 2, run 2).
// Every unit has a stable id, a cache key and an estimated cost. `runner plan` lists them;
// `runner <recipe> --shard i/n` computes only the units assigned to shard i of n; a plain run
// afterwards finds every unit in the cache and writes the report.
//
// Where a unit's result lives: `<run dir>/cache/units/<step>-<stem>-<key16>/`, published by
// renaming a finished `.partial-<uuid>/` directory into place. A rename is atomic, so a unit
// directory that exists is complete, and a shard killed mid-unit leaves only a `.partial-`
// directory, which nothing reads. The unit directory also lists (file `inputs`) the SHA-256 of
// every data file the unit was computed from: a changed file makes the unit stale.
//
// The unit key: SHA-256 of the key layout version, the code fingerprint, the step's kind and
// resolved config without the settings that only say how many units there are (`runs`,
// `permutations`), the seed, the keys of the steps it depends on (the same chain for each) and
// the unit's stem. So `--set runs=5` after a 3-run sweep reuses runs 0-2. It depends on
// configurations, not on data contents, so `runner plan` can name it without loading data (a
// data set that is not downloaded yet).
import Foundation

/// One independent piece of a recipe's work.
public struct WorkUnit: Sendable, Equatable {
    /// `<step>/<stem>`, e.g. `dnn/run0` or `dgn_x1_perm/perm0132-run2`.
    public var id: String { "\(step)/\(stem)" }
    public let step: String
    /// The unit within its step, e.g. `run0` or `perm0132-run2`.
    public let stem: String
    /// Hex SHA-256 (see the file header).
    public let key: String
    /// Estimated seconds on one 2-core machine (see `CostModel`); used to balance shards.
    public let cost: Double

    public init(step: String, stem: String, key: String, cost: Double) {
        self.step = step; self.stem = stem; self.key = key; self.cost = cost
    }

    /// The unit's directory name under `cache/units/`.
    public var directoryName: String { "\(step)-\(stem)-\(key.prefix(16))" }
}

/// What a step that splits into units says about each of them.
struct UnitSpec: Equatable {
    let stem: String
    let cost: Double
}

/// A step kind whose work splits into independent units.
protocol UnitSplittable {
    /// Settings (keys under `with:`) that only say how many units there are: left out of the
    /// unit keys, so that more units leave the existing ones valid.
    static var unitCountSettings: [String] { get }
    /// The units, in the order the step runs them. `shapes`: the estimated shape of every
    /// earlier step's data set, by step id.
    func unitSpecs(shapes: [String: DataShape]) -> [UnitSpec]
}

/// The size of a data set as far as it is known before loading it.
struct DataShape: Equatable {
    var count: Int, channels: Int, height: Int, width: Int, classes: Int
}

/// A step that produces a data set whose shape is known from its configuration.
protocol ShapeEstimating {
    var estimatedShape: DataShape { get }
}

// MARK: - Cost model

/// Estimated seconds per training image for C4GAP, width 128, 3x32x32 inputs, batch 32, Adam,
/// 2 cores with AVX-512: measured by `PAPER_B_TIMING=1 swift test -c release --filter
/// testPaperScaleEpochCost` (timing 256 images). Other widths and image sizes scale with
/// width² x pixels; other architectures use the same rule, which is rough but only balances
/// shards. The test pass is counted as a third of a training pass per image.
public enum CostModel {
    public static let dnnSecondsPerImage = 0.0190
    public static let gatedSecondsPerImage = 0.0332

    static func seconds(epochs: Int, train: DataShape?, test: DataShape?, width: Int, networks: Int) -> Double {
        let shape = train ?? DataShape(count: 1, channels: 1, height: 32, width: 32, classes: 10)
        let images = Double(shape.count) + Double(test?.count ?? 0) / 3
        let scale = Double(width * width) / (128 * 128) * Double(shape.height * shape.width) / 1024
        let perImage = networks > 1 ? gatedSecondsPerImage : dnnSecondsPerImage
        return Double(epochs) * images * perImage * scale
    }
}

// MARK: - Shards

/// `--shard i/n`: shard i (1-based) of n.
public struct ShardSpec: Sendable, Equatable, CustomStringConvertible {
    public let index: Int
    public let count: Int

    public init(index: Int, count: Int) throws {
        guard count >= 1 else { throw RecipeError("--shard i/n needs n >= 1, got \(count)") }
        guard (1...count).contains(index) else { throw RecipeError("--shard i/n needs 1 <= i <= n, got \(index)/\(count)") }
        self.index = index; self.count = count
    }

    /// Parses `i/n`, e.g. `2/5`.
    public init(parsing text: String) throws {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]) else {
            throw RecipeError("--shard expects i/n (shard i of n, e.g. 2/5), got '\(text)'")
        }
        try self.init(index: i, count: n)
    }

    public var description: String { "\(index)/\(count)" }

    /// The shard (1…n) of every unit: longest estimated cost first, each to the shard with the
    /// least estimated work so far (ties: the lower shard). Deterministic: ties in cost are
    /// broken by unit id.
    public static func assign(_ units: [WorkUnit], shards n: Int) -> [String: Int] {
        let order = units.sorted { $0.cost != $1.cost ? $0.cost > $1.cost : $0.id < $1.id }
        var load = [Double](repeating: 0, count: max(n, 1))
        var out: [String: Int] = [:]
        for u in order {
            var best = 0
            for s in 1..<load.count where load[s] < load[best] { best = s }
            load[best] += u.cost
            out[u.id] = best + 1
        }
        return out
    }
}

// MARK: - The unit store

/// The directory of finished units of one run directory: `<run dir>/cache/units`.
struct UnitStore {
    let root: URL
    static let partialPrefix = ".partial-"

    init(runDirectory: URL) { root = runDirectory.appendingPathComponent("cache/units") }

    func directory(_ unit: WorkUnit) -> URL { root.appendingPathComponent(unit.directoryName) }

    /// Whether `unit` is in the store and every data file it was computed from still has the
    /// content it had then. `sha256(path)` gives a file's current hash.
    func isComplete(_ unit: WorkUnit, sha256: (String) -> String) -> Bool {
        let dir = directory(unit)
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("inputs").path) else { return false }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2 else { return false }
            if sha256(parts[1].trimmingCharacters(in: .whitespaces)) != parts[0] { return false }
        }
        return true
    }

    /// Writes a unit: `fill` writes its files into a fresh partial directory, which is then
    /// renamed into place (replacing a stale entry).
    func publish(_ unit: WorkUnit, inputs: [Manifest.Input], fill: (URL) throws -> Void) throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let partial = root.appendingPathComponent(UnitStore.partialPrefix + UUID().uuidString)
        try fm.createDirectory(at: partial, withIntermediateDirectories: false)
        do {
            try fill(partial)
            let lines = inputs.sorted { $0.path < $1.path }.map { "\($0.sha256)  \($0.path)\n" }.joined()
            try AtomicFile.write(lines, to: partial.appendingPathComponent("inputs"))
            let final = directory(unit)
            if rename(partial.path, final.path) != 0 {
                // A stale entry (changed data, --force) is in the way: replace it.
                try? fm.removeItem(at: final)
                guard rename(partial.path, final.path) == 0 else {
                    throw RecipeError("cannot move unit \(unit.id) into \(final.path): \(String(cString: strerror(errno)))")
                }
            }
        } catch {
            try? fm.removeItem(at: partial)
            throw error
        }
    }

    /// Removes what killed runs left half-written. Only a run that owns the whole run directory
    /// (not a shard: others may be writing) does this.
    func removePartials() {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where name.hasPrefix(UnitStore.partialPrefix) {
            try? fm.removeItem(at: root.appendingPathComponent(name))
        }
    }
}

// MARK: - What a step sees of the units

/// The units of the current step and what this run does with them (RunContext.units).
struct UnitContext {
    let store: UnitStore
    /// The step's unit key base (see the file header); a unit's key is derived from it and the stem.
    let stepKey: String
    let step: String
    /// In a shard: the stems this shard computes. nil: a whole run (every unit).
    let assigned: Set<String>?
    /// In a shard: whether a later step of the shard needs this step's output (its first model).
    let outputNeeded: Bool
    /// The data files the units are computed from (recorded in each unit's `inputs`).
    let inputs: [Manifest.Input]
    let force: Bool

    func unit(_ stem: String) -> WorkUnit { WorkUnit.make(step: step, stem: stem, stepKey: stepKey, cost: 0) }
}

extension WorkUnit {
    static func make(step: String, stem: String, stepKey: String, cost: Double) -> WorkUnit {
        var h = SHA256()
        h.update(Data("\(stepKey)|unit=\(stem)".utf8))
        return WorkUnit(step: step, stem: stem, key: h.finalizeHex(), cost: cost)
    }
}
