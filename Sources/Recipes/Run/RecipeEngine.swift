// MARK: - RecipeEngine
//
// Runs one recipe:  load → resolve parameters → build every step (all validation happens here,
// before any work) → run the cells in order → write report.md / report.html, metrics.json and
// manifest.json → optionally verify against golden/<recipe>/.
//
// Run directory (default runs/<recipe>):
//   recipe.yaml          a copy of the recipe as run
//   resolved.txt         parameters after variant, --seed and --set
//   manifest.json        git commit + dirty flag, toolchain and C library versions, seed,
//                        SHA-256 of every input file, wall time per step
//   metrics.json         every recorded number
//   report.md, report.html, *.png, *.svg, *.csv
//   cache/<step>-<hash>/ outputs of cached steps, keyed by the content hash of their inputs
import Foundation
import SIMDCore

/// What a run produced.
public struct RunResult: Sendable {
    public let directory: URL
    public let verificationPassed: Bool
    public let summary: String
}

public enum RecipeEngine {
    /// Bumped when a change invalidates cached step outputs.
    static let cacheVersion = "1"

    // MARK: Planning

    struct Plan {
        let recipe: Recipe
        let parameters: ResolvedParameters
        let steps: [String: RecipeStep]
    }

    static func plan(_ settings: RunSettings) throws -> Plan {
        let recipe = try Recipe.load(URL(fileURLWithPath: settings.recipePath))
        let params = try recipe.resolve(overrides: settings.overrides, seed: settings.seed)
        // `${name}` in prose: an unknown name is an error now, not after the steps before it ran.
        for (i, cell) in recipe.cells.enumerated() {
            guard case .markdown(let md) = cell else { continue }
            do { _ = try params.interpolate(md) } catch let e as RecipeError {
                throw RecipeError("\(recipe.file): cell \(i + 1) (markdown): \(e.message)")
            }
        }
        var steps: [String: RecipeStep] = [:]
        var seen: Set<String> = []
        for case .step(let cell) in recipe.cells {
            let step = try StepRegistry.make(cell, params: params)
            for d in step.dependencies where !seen.contains(d) {
                var msg = "step '\(cell.id)' depends on '\(d)', which is not an earlier step"
                if let near = nearestName(to: d, candidates: Array(seen)) { msg += "; did you mean '\(near)'?" }
                throw cell.node.error(msg)
            }
            seen.insert(cell.id)
            steps[cell.id] = step
        }
        return Plan(recipe: recipe, parameters: params, steps: steps)
    }

    /// The resolved recipe, as `runner show-config` prints it.
    public static func resolvedDescription(_ settings: RunSettings) throws -> String {
        let p = try plan(settings)
        var lines = ["recipe: \(p.recipe.file)", "title: \(p.recipe.title)", "figure: \(p.recipe.figure)", "parameters:"]
        lines += p.parameters.lines.map { "  " + $0 }
        lines.append("steps:")
        for case .step(let c) in p.recipe.cells {
            let config = (try? p.parameters.substitute(c.config)).map(canonical) ?? "?"
            lines.append("  - \(c.id) (\(c.kind)): \(config)")
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Running

    public static func run(_ settings: RunSettings, verify: Bool, updateGoldens: Bool) throws -> RunResult {
        let plan = try plan(settings)
        let recipe = plan.recipe
        let dir = URL(fileURLWithPath: settings.outDirectory ?? "runs/\(recipe.name)")
        if settings.dryRun {
            return RunResult(directory: dir, verificationPassed: true,
                             summary: try resolvedDescription(settings) + "\n(dry run: nothing was executed)")
        }
        try prepareDirectory(dir)
        Interruption.removeIncompleteEntries(in: dir.appendingPathComponent("cache"))
        let ctx = RunContext(recipe: recipe, parameters: plan.parameters, settings: settings, directory: dir)
        var manifest = Manifest(recipe: recipe, parameters: plan.parameters, settings: settings)
        manifest.recordInput(URL(fileURLWithPath: recipe.file))
        // The recipe as run; written with the report at the end, so a run that fails part way
        // leaves the previous run's recipe.yaml / resolved.txt beside its report.
        let recipeBytes = try Data(contentsOf: URL(fileURLWithPath: recipe.file))

        let narrate = ctx.narrator
        narrate.say("▶ \(recipe.title)  [\(recipe.name)]  → \(dir.path)")
        if !recipe.summary.isEmpty { ctx.markdown(recipe.summary) }

        var hashes: [String: String] = [:]
        let started = Date()
        let body = {
            for cell in recipe.cells {
                try Interruption.check()
                switch cell {
                case .markdown(let md): ctx.markdown(try plan.parameters.interpolate(md))
                case .step(let c):
                    let step = plan.steps[c.id]!
                    let type = Swift.type(of: step)
                    ctx.currentStep = c.id
                    if let t = c.title { ctx.add(.heading(t, level: 2)) }
                    // Content hash: step kind, its resolved config, the hashes of what it reads, the seed.
                    var h = SHA256()
                    h.update(Data("\(cacheVersion)|\(c.kind)|\(canonical(try plan.parameters.substitute(c.config)))|seed=\(ctx.seed)".utf8))
                    for d in step.dependencies { h.update(Data("|\(d)=\(hashes[d] ?? "")".utf8)) }
                    let hash = h.finalizeHex()
                    hashes[c.id] = hash
                    ctx.cacheDirectory = nil; ctx.cacheHit = false
                    if type.cached {
                        let cdir = dir.appendingPathComponent("cache/\(c.id)-\(hash.prefix(16))")
                        if settings.force { try? FileManager.default.removeItem(at: cdir) }
                        ctx.cacheHit = FileManager.default.fileExists(atPath: cdir.appendingPathComponent("complete").path)
                        try FileManager.default.createDirectory(at: cdir, withIntermediateDirectories: true)
                        ctx.cacheDirectory = cdir
                    }
                    narrate.say("• \(c.id) (\(c.kind))\(ctx.cacheHit ? " — cached" : "")")
                    let t0 = Date()
                    do { try step.run(ctx) } catch {
                        // A half-written entry must not look like a result to a later run.
                        if !ctx.cacheHit, let cdir = ctx.cacheDirectory { try? FileManager.default.removeItem(at: cdir) }
                        if let i = error as? Interrupted { throw Interrupted(signal: i.signal, step: c.id) }
                        throw StepFailure(step: c.id, kind: c.kind, file: c.node.file, line: c.node.mark.line, underlying: error,
                                          cacheEntry: ctx.cacheHit ? ctx.cacheDirectory?.path : nil)
                    }
                    if let cdir = ctx.cacheDirectory, !ctx.cacheHit {
                        try AtomicFile.write("\(hash)\n", to: cdir.appendingPathComponent("complete"))
                    }
                    manifest.steps.append(.init(id: c.id, kind: c.kind, seconds: Date().timeIntervalSince(t0),
                                                cached: ctx.cacheHit, hash: hash))
                }
            }
        }
        if let t = settings.threads { try Parallel.$threadCount.withValue(t) { try body() } } else { try body() }
        manifest.inputs.append(contentsOf: ctx.inputFiles)
        manifest.wallSeconds = Date().timeIntervalSince(started)

        // Results, goldens, report.
        if !ctx.metrics.isEmpty {
            ctx.add(.heading("Measured values", level: 2))
            ctx.add(.table(Table(headers: ["metric", "value"],
                                 rows: ctx.metrics.map { [.text($0.name), .text(formatMetric($0.value))] }),
                           caption: "Every number this run recorded (also in metrics.json).", csvFile: "metrics.csv"))
        }
        if !ctx.checks.isEmpty {
            ctx.add(.heading("Claims checked", level: 2))
            ctx.add(.checks(ctx.checks))
        }
        var passed = true
        var verifyLines: [String] = []
        if verify || updateGoldens {
            let golden = Golden(recipe: recipe)
            let outcome = try golden.verify(ctx, update: updateGoldens)
            passed = outcome.passed
            verifyLines = outcome.lines
            ctx.add(.heading("Golden verification", level: 2))
            ctx.markdown(golden.provenance)
            ctx.add(.checks(outcome.checks))
        }
        if verify || updateGoldens {
            for claim in ctx.failedRequiredClaims {
                passed = false
                verifyLines.append("required claim does not hold: \(claim)")
            }
        }
        try AtomicFile.write(recipeBytes, to: dir.appendingPathComponent("recipe.yaml"))
        try ctx.write(plan.parameters.lines.joined(separator: "\n") + "\n", to: "resolved.txt")
        try writeMetrics(ctx)
        manifest.verification = (verify || updateGoldens) ? (passed ? "passed" : "failed") : "not run"
        try AtomicFile.write(try manifest.json(), to: dir.appendingPathComponent("manifest.json"))
        let (_, html) = try ctx.report.write(to: dir, encodePNG: PNGCodec.encode)
        narrate.say("✓ report: \(html.path)")

        var summary = ["run: \(dir.path)", "report: \(dir.appendingPathComponent("report.html").path)"]
        summary += ctx.metrics.map { "metric \($0.name) = \(formatMetric($0.value))" }
        summary += ctx.checks.map { "claim \($0.passed ? "holds" : "does not hold"): \($0.name) (measured \($0.measured), expected \($0.expected))" }
        summary += verifyLines
        if verify || updateGoldens { summary.append(updateGoldens ? "goldens: updated" : (passed ? "verify: passed" : "verify: FAILED")) }
        return RunResult(directory: dir, verificationPassed: passed, summary: summary.joined(separator: "\n"))
    }

    // MARK: Helpers

    static func prepareDirectory(_ dir: URL) throws {
        // Name the part of the path that is in the way: Foundation only says "error 512".
        var p = dir.path.hasPrefix("/") ? dir.path : FileManager.default.currentDirectoryPath + "/" + dir.path
        p = (p as NSString).standardizingPath
        var isDirectory: ObjCBool = false
        while p.count > 1 {
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) {
                guard isDirectory.boolValue else {
                    throw RecipeError("cannot create run directory \(dir.path): \(p) is a file, not a directory (choose another with --out)")
                }
                break
            }
            p = (p as NSString).deletingLastPathComponent
        }
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw RecipeError("cannot create run directory \(dir.path): \(error.localizedDescription) (choose another with --out)")
        }
        guard FileManager.default.isWritableFile(atPath: dir.path) else {
            throw RecipeError("run directory \(dir.path) is not writable (choose another with --out)")
        }
    }

    static func writeMetrics(_ ctx: RunContext) throws {
        let pairs = ctx.metrics.map { "  \"\(jsonEscape($0.name))\": \(jsonNumber($0.value))" }
        try ctx.write("{\n" + pairs.joined(separator: ",\n") + "\n}\n", to: "metrics.json")
    }

    /// A stable one-line rendering of a config node (key order kept), for hashing and display.
    static func canonical(_ n: YAMLNode) -> String {
        switch n.kind {
        case .scalar(let s, _): return s.contains(where: { " ,:{}[]".contains($0) }) ? "\"\(s)\"" : s
        case .sequence(let items): return "[" + items.map(canonical).joined(separator: ", ") + "]"
        case .mapping(let pairs): return "{" + pairs.map { "\(canonical($0.key)): \(canonical($0.value))" }.joined(separator: ", ") + "}"
        }
    }
}

/// A step that failed while running: names the step, its kind and where it is in the recipe.
public struct StepFailure: Error, CustomStringConvertible {
    public let step: String, kind: String, file: String, line: Int
    public let underlying: Error
    /// The cache entry the step was reading when it failed (it may be damaged), if any.
    public var cacheEntry: String? = nil
    public var description: String {
        "\(file):\(line): step '\(step)' (\(kind)) failed: \(underlying)"
            + (cacheEntry.map { " (while reading its cached outputs in \($0); rerun with --force to recompute them)" } ?? "")
    }
}

func formatMetric(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e9 { return String(Int(v)) }
    return String(format: abs(v) >= 1e-3 && abs(v) < 1e6 ? "%.4f" : "%.4e", v)
}

func jsonNumber(_ v: Double) -> String { v.isFinite ? "\(v)" : "null" }

func jsonEscape(_ s: String) -> String {
    var o = ""
    for ch in s.unicodeScalars {
        switch ch {
        case "\"": o += "\\\""
        case "\\": o += "\\\\"
        case "\n": o += "\\n"
        default: o.unicodeScalars.append(ch)
        }
    }
    return o
}
