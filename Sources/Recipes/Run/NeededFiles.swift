// MARK: - Files a run needs
//
// Every step that reads something from outside the repository (weights, images by URL, data sets
// by download) says so before anything runs, so that
//   - `runner <recipe> --dry-run` lists each file with its URL, destination and whether it is there;
//   - an offline run (EP_OFFLINE=1) that lacks files fails at once, naming all of them, instead of
//     after the first steps have run and naming only the first.
import Foundation

/// One file a run reads that may have to be downloaded first.
public struct NeededFile: Sendable, Equatable {
    /// What it is, e.g. "weights resnet50", "image tench", "MNIST".
    public let what: String
    /// Where it comes from (nil for a local file the recipe names, which cannot be downloaded).
    public let url: URL?
    /// Where the run looks for it.
    public let destination: URL
    public let present: Bool
    /// Size as published (for messages only), if known.
    public let approximateSize: String?
    /// The environment variable that moves the directory holding `destination`.
    public let variable: String?
    /// The SHA-256 the file is checked against, when the listing should show it.
    public let sha256: String?

    public init(what: String, url: URL?, destination: URL, present: Bool, approximateSize: String? = nil, variable: String? = nil,
                sha256: String? = nil) {
        self.what = what; self.url = url; self.destination = destination; self.present = present
        self.approximateSize = approximateSize; self.variable = variable; self.sha256 = sha256
    }

    /// One line for the dry-run listing.
    public var line: String {
        let size = approximateSize.map { ", \($0)" } ?? ""
        return "\(present ? "present" : "MISSING") \(what)\(size): \(url?.absoluteString ?? "(local file)") → \(destination.path)"
            + (sha256.map { " (SHA-256 \($0))" } ?? "")
    }

    /// What to do about a missing file.
    var instruction: String {
        let dir = destination.deletingLastPathComponent().path
        guard let url else { return "  \(what): \(destination.path) does not exist (it is a local file the recipe names)" }
        return "  \(what)\(approximateSize.map { " (\($0))" } ?? ""): download \(url.absoluteString)\(sha256.map { " (SHA-256 \($0))" } ?? "")\n"
            + "      to \(destination.path)   e.g. mkdir -p '\(dir)' && curl -fL -o '\(destination.path)' '\(url.absoluteString)'"
            + (variable.map { "\n      (directory: $\($0) moves it)" } ?? "")
    }
}

extension RecipeEngine {
    /// Every file the planned steps need, each destination once, in recipe order.
    static func neededFiles(_ plan: Plan) -> [NeededFile] {
        var seen = Set<String>()
        var out: [NeededFile] = []
        for case .step(let c) in plan.recipe.cells {
            for f in plan.steps[c.id]!.neededFiles where seen.insert(f.destination.path).inserted { out.append(f) }
        }
        return out
    }

    /// Offline (EP_OFFLINE=1): one error naming every missing file, before anything runs.
    static func checkOffline(_ plan: Plan, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        guard downloadsDisabled(environment) else { return }
        let missing = neededFiles(plan).filter { !$0.present }
        guard !missing.isEmpty else { return }
        let compared = referenceComparisons(plan)
        throw RecipeError("downloads are disabled (EP_OFFLINE) and \(missing.count) file\(missing.count == 1 ? " is" : "s are") missing; nothing was run. Put each in place, or run without EP_OFFLINE to download them:\n"
                          + missing.map(\.instruction).joined(separator: "\n")
                          + (compared.isEmpty ? "" : "\n" + (comparisonsDescription(plan) ?? "")))
    }

    /// The reference grids this run compares: (step id, this run's grid file, reference), in recipe order.
    static func referenceComparisons(_ plan: Plan) -> [(step: String, file: String, reference: ReferenceGrid)] {
        plan.recipe.cells.flatMap { cell -> [(step: String, file: String, reference: ReferenceGrid)] in
            guard case .step(let c) = cell, let a = plan.steps[c.id] as? AscendStep else { return [] }
            return a.referenceGrids.map { (c.id, a.gridFile($0.grid), $0) }
        }
    }

    /// What the run compares with published grids, for the dry run and the offline error; nil
    /// for a recipe that declares none.
    static func comparisonsDescription(_ plan: Plan) -> String? {
        let declared = plan.steps.values.compactMap { ($0 as? AscendStep)?.referenceConfig }
        guard !declared.isEmpty else { return nil }
        let all = referenceComparisons(plan)
        guard !all.isEmpty else {
            let names = Set(declared.flatMap { $0.entries.map(\.name) }).sorted()
            return "compare: no reference grids at these settings (the recipe declares them for \(names.joined(separator: ", ")); `runner verify` uses the goldens)"
        }
        return (["compare (\(all.count) grid\(all.count == 1 ? "" : "s") with published ones, cell by cell; a grid below its threshold in any cell fails `runner verify`):"]
                + all.map { "  " + $0.reference.plan(ourFile: $0.file, step: $0.step) }).joined(separator: "\n")
    }
}

// MARK: - What each step needs

extension AscendStep {
    var neededFiles: [NeededFile] {
        referenceGrids.map { $0.neededFile(comparedWith: gridFile($0.grid)) }
    }
}

extension LoadModelStep {
    var neededFiles: [NeededFile] {
        // A file the recipe names is read where it is (load_model says so if it is missing); only
        // catalogued weights are downloaded.
        guard let file = weightFile, case .catalogue(let weights) = source else { return [] }
        let store = WeightStore(allowDownload: false)
        let dest = store.localURL(for: file)
        let present = FileManager.default.fileExists(atPath: dest.path) || store.huggingFaceCopy(of: file) != nil
        return [NeededFile(what: "weights \(architecture.rawValue) (\(weights.rawValue))", url: file.url, destination: dest,
                           present: present, approximateSize: file.approximateSize, variable: file.url.host == "huggingface.co" ? "HF_HOME" : "TORCH_HOME")]
    }
}

extension LoadImagesStep {
    var neededFiles: [NeededFile] {
        let store = ImageStore()
        return sources.map { src in
            if let f = src.file {
                let candidates = ImageStore.candidates(forFile: f)
                let found = candidates.first { FileManager.default.fileExists(atPath: $0.path) }
                return NeededFile(what: "image \(src.name)", url: nil, destination: found ?? candidates[0], present: found != nil)
            }
            let dest = store.localURL(for: src)!
            return NeededFile(what: "image \(src.name)", url: src.url, destination: dest,
                              present: FileManager.default.fileExists(atPath: dest.path), variable: "EP_IMAGE_DIR")
        }
    }
}

extension LoadDataStep {
    var neededFiles: [NeededFile] {
        guard let source = DataCatalog.source(dataset) else { return [] }   // mnist5k ships with the project
        let cache = DataCache()
        let dir = cache.directory(for: source)
        let fm = FileManager.default
        let unpacked = source.unpack != nil && source.requiredFiles.allSatisfy { fm.fileExists(atPath: dir.appendingPathComponent($0).path) }
        return source.downloads.map { r in
            let dest = dir.appendingPathComponent(r.name)
            return NeededFile(what: "\(source.title) \(r.name)", url: r.urls[0], destination: dest,
                              present: unpacked || fm.fileExists(atPath: dest.path), approximateSize: r.approximateSize,
                              variable: DataCache.environmentVariable)
        }
    }
}
