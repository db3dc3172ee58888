// MARK: - RecipeEngine
//
// Runs one recipe:  load → resolve parameters → build every step (all validation happens here,
// before any work) → run the cells in order → write report.md / report.html, metrics.json and
// manifest.json → optionally verify against golden/<recipe>/.
//
// Run directory (default runs/<recipe>):
//   recipe.yaml          a copy of the recipe as run
//   resolved.txt         parameters after variant, --seed and --set
//   manifest.json        git commit + dirty flag, code fingerprint, toolchain and C library
//                        versions, seed, SHA-256 of every input file, wall time per step, and
//                        the list of artifacts below (so the next run can remove stale ones)
//   metrics.json         every recorded number
//   report.md, report.html, *.png, *.svg, *.csv
//   cache/<step>-<hash>/ outputs of cached steps (markers; a train step's models live in
//                        cache/units/, one directory per unit of work: WorkUnits.swift)
//
// A run writes into a fresh `.incomplete-<uuid>/` inside the run directory and moves its
// artifacts into place only when it succeeds (see `publish`).
//
// Cache key of a step: the key layout version, the code fingerprint (the running executable's
// SHA-256), the step kind, its resolved config, the seed, and for each step it depends on, that
// step's key plus the SHA-256 of every file it read (data, weights, images). A cached step's
// entry also lists the files the step itself read; a changed one makes the entry stale.
import Foundation
import SIMDCore

/// What a run produced.
public struct RunResult: Sendable {
    public let directory: URL
    public let verificationPassed: Bool
    public let summary: String
}

public enum RecipeEngine {
    /// Version of the cache key's layout (the code itself is covered by the code fingerprint).
    static let cacheVersion = "3"

    // MARK: Planning

    struct Plan {
        let recipe: Recipe
        let parameters: ResolvedParameters
        let steps: [String: RecipeStep]
    }

    static func plan(_ settings: RunSettings) throws -> Plan {
        let recipe = try Recipe.load(URL(fileURLWithPath: settings.recipePath))
        let params = try recipe.resolve(overrides: settings.overrides, seed: settings.seed)
        // `${name}` in prose: an unknown name is an error before any step runs, not after the steps before it.
        for (i, cell) in recipe.cells.enumerated() {
            guard case .markdown(let md) = cell else { continue }
            do { _ = try params.interpolate(md) } catch let e as ProseError {
                throw RecipeError("\(recipe.proseLocation(cell: i, lineOffset: e.lineOffset)): cell \(i + 1) (markdown): \(e.message)")
            }
        }
        do { _ = try params.interpolate(recipe.summary) } catch let e as ProseError {
            throw RecipeError("\(recipe.file): summary: \(e.message)")
        }
        // Every input must name an earlier step that produces the type the input needs.
        var steps: [String: RecipeStep] = [:]
        var earlier: [String] = []
        var produced: [String: StepValueType?] = [:]
        for case .step(let cell) in recipe.cells {
            let step = try StepRegistry.make(cell, params: params)
            for input in step.inputs {
                guard let made = produced[input.step] else {
                    var msg = "step '\(cell.id)' depends on '\(input.step)', which is not an earlier step"
                    if let near = nearestName(to: input.step, candidates: earlier) { msg += "; did you mean '\(near)'?" }
                    throw cell.node.error(msg)
                }
                guard let type = made else {
                    throw input.node.error("step '\(input.step)' produces nothing for later steps; `\(input.key)` needs a \(input.type)")
                }
                guard type == input.type else {
                    throw input.node.error("step '\(input.step)' produced \(type), not \(input.type)")
                }
            }
            if let refs = (step as? AscendStep)?.referenceConfig { try checkEntryNames(refs, cell: cell, recipe: recipe) }
            earlier.append(cell.id)
            produced.updateValue(step.output, forKey: cell.id)
            steps[cell.id] = step
        }
        return Plan(recipe: recipe, parameters: params, steps: steps)
    }

    /// `reference_grids: {use: $scale, …}`: each entry must be a value of `scale` (with a
    /// did-you-mean), or `papr:` would silently never be compared.
    static func checkEntryNames(_ refs: ReferenceGridsConfig, cell: StepCell, recipe: Recipe) throws {
        guard let raw = try? cell.config.optional("reference_grids")?.optional("use")?.string else { return }
        let name = raw.hasPrefix("${") && raw.hasSuffix("}") ? String(raw.dropFirst(2).dropLast()) : raw.hasPrefix("$") ? String(raw.dropFirst()) : nil
        guard let name, let p = recipe.parameters.first(where: { $0.name == name }), case .choice(let values) = p.type else { return }
        for e in refs.entries where !values.contains(e.name) {
            var msg = "reference_grids entry '\(e.name)' is not a value of `\(name)` (\(values.joined(separator: ", ")))"
            if let near = nearestName(to: e.name, candidates: values) { msg += "; did you mean '\(near)'?" }
            throw e.key.error(msg)
        }
    }

    /// The resolved recipe, as `runner show-config` prints it.
    public static func resolvedDescription(_ settings: RunSettings) throws -> String {
        let p = try plan(settings)
        var lines = ["recipe: \(p.recipe.file)", "title: \(p.recipe.title)", "figure: \(p.recipe.figure)", "parameters:"]
        lines += parameterLines(p)
        lines.append("steps:")
        for case .step(let c) in p.recipe.cells {
            let config = (try? p.parameters.substitute(c.config)).map(canonical) ?? "?"
            lines.append("  - \(c.id) (\(c.kind)): \(config)")
        }
        return lines.joined(separator: "\n")
    }

    /// Each parameter as `name = value`, and under it its default, choices or bounds and help.
    static func parameterLines(_ p: Plan) -> [String] {
        let specs = Dictionary(uniqueKeysWithValues: p.recipe.parameters.map { ($0.name, $0) })
        return p.parameters.order.flatMap { name -> [String] in
            ["  \(name) = \(p.parameters[name]!)"] + (specs[name].map { ["      \($0.details)"] } ?? [])
        }
    }

    /// The parameters of a recipe, for `runner <recipe> --help`.
    public static func parameterHelp(_ settings: RunSettings) throws -> String {
        let p = try plan(settings)
        return (["Parameters of \(p.recipe.file) (change with --set name=value; `scale` selects a variant first):"]
                + parameterLines(p)).joined(separator: "\n")
    }

    /// The dry run's list of files from outside the repository.
    static func filesDescription(_ plan: Plan) -> String {
        let files = neededFiles(plan)
        guard files.contains(where: { $0.url != nil || !$0.present }) else {
            return (["files: none to download (everything this run reads ships with the project)"] + files.map { "  " + $0.line }).joined(separator: "\n")
        }
        let missing = files.filter { !$0.present }.count
        return (["files (\(files.count), \(missing) missing\(missing > 0 && downloadsDisabled() ? "; downloads are disabled (EP_OFFLINE), so the run will stop" : missing > 0 ? "; the run downloads them" : "")):"]
                + files.map { "  " + $0.line }).joined(separator: "\n")
    }

    // MARK: Units of work

    /// The run's seed as steps see it (`RunContext.seed`).
    static func seed(of params: ResolvedParameters) -> UInt64 {
        if case .int(let s)? = params["seed"] { return UInt64(truncatingIfNeeded: s) }
        return 0
    }

    /// Every splittable step's unit key base and every unit of work, in recipe order. Keys come
    /// from configurations only (see WorkUnits.swift).
    static func units(_ plan: Plan, code: String) throws -> (stepKeys: [String: String], units: [WorkUnit]) {
        var keys: [String: String] = [:], unitBases: [String: String] = [:]
        var shapes: [String: DataShape] = [:]
        var out: [WorkUnit] = []
        let seed = seed(of: plan.parameters)
        func key(_ c: StepCell, _ step: RecipeStep, leaving omitted: [String]) throws -> String {
            var config = try plan.parameters.substitute(c.config)
            if case .mapping(let pairs) = config.kind, !omitted.isEmpty {
                config.kind = .mapping(pairs.filter { p in !omitted.contains { (try? p.key.string) == $0 } })
            }
            var h = SHA256()
            h.update(Data("\(cacheVersion)|code=\(code)|\(c.kind)|\(canonical(config))|seed=\(seed)".utf8))
            for d in step.dependencies { h.update(Data("|\(d)=\(keys[d] ?? "")".utf8)) }
            return h.finalizeHex()
        }
        for case .step(let c) in plan.recipe.cells {
            let step = plan.steps[c.id]!
            keys[c.id] = try key(c, step, leaving: [])
            if let s = step as? ShapeEstimating { shapes[c.id] = s.estimatedShape }
            if let s = step as? UnitSplittable {
                let base = try key(c, step, leaving: type(of: s).unitCountSettings)
                unitBases[c.id] = base
                out += s.unitSpecs(shapes: shapes).map { WorkUnit.make(step: c.id, stem: $0.stem, stepKey: base, cost: $0.cost) }
            }
        }
        return (unitBases, out)
    }

    /// The recipe's units of work (`runner plan`): ids, keys and estimated costs.
    public static func workUnits(_ settings: RunSettings) throws -> [WorkUnit] {
        try units(try plan(settings), code: settings.codeFingerprint ?? CodeFingerprint.executable).units
    }

    /// The run directory of `settings` (`--out`, or runs/<recipe name>).
    public static func runDirectory(_ settings: RunSettings) throws -> URL {
        if let o = settings.outDirectory { return URL(fileURLWithPath: o) }
        return URL(fileURLWithPath: "runs/\(try Recipe.load(URL(fileURLWithPath: settings.recipePath)).name)")
    }

    /// Whether each unit is complete in the run directory's store (hashing the data files the
    /// units list, as a run would).
    public static func completion(of units: [WorkUnit], runDirectory dir: URL) -> [Bool] {
        let store = UnitStore(runDirectory: dir)
        var hashes: [String: String] = [:]
        return units.map { u in
            store.isComplete(u) { path in
                if let h = hashes[path] { return h }
                let h = (try? SHA256.hexDigest(ofFile: URL(fileURLWithPath: path))) ?? "unreadable"
                hashes[path] = h
                return h
            }
        }
    }

    /// The steps `id` depends on, directly or through other steps.
    static func ancestors(of id: String, in plan: Plan) -> Set<String> {
        var out = Set<String>(), todo = plan.steps[id]?.dependencies ?? []
        while let d = todo.popLast() {
            guard out.insert(d).inserted else { continue }
            todo += plan.steps[d]?.dependencies ?? []
        }
        return out
    }

    /// Sets up `ctx.units` for step `c` (nil for a step that does not split into units).
    static func unitContext(for c: StepCell, _ plan: Plan, _ ctx: RunContext, stepKeys: [String: String], store: UnitStore,
                            assigned: Set<String>?, outputNeeded: Bool) -> UnitContext? {
        guard plan.steps[c.id] is UnitSplittable, let key = stepKeys[c.id] else { return nil }
        return UnitContext(store: store, stepKey: key, step: c.id, assigned: assigned, outputNeeded: outputNeeded,
                           inputs: ctx.files(readBy: ancestors(of: c.id, in: plan)), force: ctx.settings.force)
    }

    // MARK: Shards

    /// `--shard i/n`: computes the units assigned to this shard (and the steps they need), each
    /// published into the run directory's unit store; writes no report and touches nothing else
    /// in the run directory, so shards can run at the same time.
    static func runShard(_ settings: RunSettings, _ plan: Plan, _ shard: ShardSpec, dir: URL) throws -> RunResult {
        let fm = FileManager.default
        let code = settings.codeFingerprint ?? CodeFingerprint.executable
        let (stepKeys, all) = try units(plan, code: code)
        let assignment = ShardSpec.assign(all, shards: shard.count)
        let mine = all.filter { assignment[$0.id] == shard.index }
        let cells = plan.recipe.cells.compactMap { cell -> StepCell? in if case .step(let c) = cell { return c } else { return nil } }
        // Steps with units of this shard, and every step they read from.
        var needed = Set(mine.map(\.step))
        for c in cells.reversed() where needed.contains(c.id) { needed.formUnion(plan.steps[c.id]!.dependencies) }
        var consumed = Set<String>()
        for c in cells where needed.contains(c.id) { consumed.formUnion(plan.steps[c.id]!.dependencies) }

        // Steps other than units write their artifacts here, never into the shared run directory.
        let scratch = fm.temporaryDirectory.appendingPathComponent("runner-shard-\(UUID().uuidString)")
        try fm.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }
        try prepareDirectory(dir)
        let store = UnitStore(runDirectory: dir)
        let ctx = RunContext(recipe: plan.recipe, parameters: plan.parameters, settings: settings, directory: scratch)
        ctx.narrator.say("▶ \(plan.recipe.name): shard \(shard) — \(mine.count) of \(all.count) units → \(dir.path)")
        let body = {
            for c in cells where needed.contains(c.id) {
                try Interruption.check()
                let step = plan.steps[c.id]!
                ctx.currentStep = c.id
                ctx.units = unitContext(for: c, plan, ctx, stepKeys: stepKeys, store: store,
                                        assigned: Set(mine.filter { $0.step == c.id }.map(\.stem)), outputNeeded: consumed.contains(c.id))
                ctx.narrator.say("• \(c.id) (\(c.kind))")
                do { try step.run(ctx) } catch {
                    if let i = error as? Interrupted { throw Interrupted(signal: i.signal, step: c.id) }
                    throw StepFailure(step: c.id, kind: c.kind, file: c.node.file, line: c.node.mark.line, underlying: error)
                }
            }
        }
        if let t = settings.threads { try Parallel.$threadCount.withValue(t) { try body() } } else { try body() }
        let cost = mine.reduce(0) { $0 + $1.cost }
        let summary = ["shard \(shard) of \(plan.recipe.name): \(mine.count) unit(s) assigned (estimated \(formatDuration(cost))), \(ctx.unitsComputed) computed, \(ctx.unitsReused) already complete",
                       "units: \(store.root.path)",
                       "no report written: once every shard has finished, run the recipe without --shard (same --set, --seed and --out) to write it"]
        return RunResult(directory: dir, verificationPassed: true, summary: summary.joined(separator: "\n"))
    }

    // MARK: Running

    public static func run(_ settings: RunSettings, verify: Bool, updateGoldens: Bool) throws -> RunResult {
        let plan = try plan(settings)
        let recipe = plan.recipe
        let dir = URL(fileURLWithPath: settings.outDirectory ?? "runs/\(recipe.name)")
        if settings.dryRun {
            return RunResult(directory: dir, verificationPassed: true,
                             summary: try resolvedDescription(settings) + "\n" + filesDescription(plan)
                                + (comparisonsDescription(plan).map { "\n" + $0 } ?? "") + "\n(dry run: nothing was executed)")
        }
        // With reference grids (paper A's published figures at scale paper) a run is verified
        // against them; goldens made with other parameters (the ci scale's) are then left out
        // instead of refusing the run.
        let references = referenceComparisons(plan)
        let givenOverrides = settings.overrides + (settings.seed.map { ["seed=\($0)"] } ?? [])
        var skipGoldens: String?
        if verify && !updateGoldens {
            let golden = Golden(recipe: recipe)
            let defaults = try recipe.resolve(overrides: [], seed: nil)
            if !references.isEmpty {
                if !golden.matches(plan.parameters, defaults: defaults) {
                    skipGoldens = "golden: not compared: \(golden.file.path) " + (golden.reference(defaults: defaults) == nil ? "does not exist"
                        : "was made with other parameters (\(golden.settingsText(run: plan.parameters, defaults: defaults)))") + "; this run is verified against its \(references.count) reference grid\(references.count == 1 ? "" : "s")"
                }
                if !settings.allowOverrides { try checkReferenceParameters(plan, overrides: givenOverrides) }
            } else if !settings.allowOverrides {
                try golden.checkParameters(plan.parameters, defaults: defaults, overrides: givenOverrides)
            }
        }
        try checkOffline(plan)
        let existed = FileManager.default.fileExists(atPath: dir.path)
        if let shard = settings.shard {
            guard !verify && !updateGoldens else { throw RecipeError("--shard computes units only; verify the merged run (without --shard)") }
            return try runShard(settings, plan, shard, dir: dir)
        }
        try prepareDirectory(dir)
        var succeeded = false
        // A run that fails before it has anything to keep leaves no directory behind: the user
        // should not find an empty runs/<recipe>/ and wonder what it holds.
        defer { if !succeeded && !existed { removeEmptyDirectories(dir) } }
        Interruption.removeIncompleteEntries(in: dir.appendingPathComponent("cache"))
        let store = UnitStore(runDirectory: dir)
        store.removePartials()
        let staging = try makeStaging(in: dir)
        defer { try? FileManager.default.removeItem(at: staging) }
        let ctx = RunContext(recipe: recipe, parameters: plan.parameters, settings: settings, directory: staging)
        var manifest = Manifest(recipe: recipe, parameters: plan.parameters, settings: settings)
        manifest.recordInput(URL(fileURLWithPath: recipe.file))
        let recipeBytes = try Data(contentsOf: URL(fileURLWithPath: recipe.file))
        let code = settings.codeFingerprint ?? CodeFingerprint.executable
        manifest.code = code
        let stepKeys = try units(plan, code: code).stepKeys

        let narrate = ctx.narrator
        narrate.say("▶ \(recipe.title)  [\(recipe.name)]  → \(dir.path)")
        if !recipe.summary.isEmpty { ctx.markdown(try plan.parameters.interpolate(recipe.summary)) }

        // What each step's outputs depend on: its cache key and the files it read. Downstream
        // keys include these, so a changed data file or image reaches every step that uses it.
        var results: [String: String] = [:]
        let started = Date()
        let body = {
            for cell in recipe.cells {
                try Interruption.check()
                switch cell {
                case .markdown(let md):
                    do { ctx.markdown(try plan.parameters.interpolate(md, metrics: { ctx.metric($0) })) } catch let e as ProseError {
                        let i = recipe.cells.firstIndex { if case .markdown(let m) = $0 { return m == md } else { return false } } ?? 0
                        throw RecipeError("\(recipe.proseLocation(cell: i, lineOffset: e.lineOffset)): cell \(i + 1) (markdown): \(e.message)")
                    }
                case .step(let c):
                    let step = plan.steps[c.id]!
                    let type = Swift.type(of: step)
                    ctx.currentStep = c.id
                    ctx.units = unitContext(for: c, plan, ctx, stepKeys: stepKeys, store: store, assigned: nil, outputNeeded: true)
                    if let t = c.title { ctx.add(.heading(t, level: 2)) }
                    var h = SHA256()
                    h.update(Data("\(cacheVersion)|code=\(code)|\(c.kind)|\(canonical(try plan.parameters.substitute(c.config)))|seed=\(ctx.seed)".utf8))
                    for d in step.dependencies { h.update(Data("|\(d)=\(results[d] ?? "")".utf8)) }
                    let hash = h.finalizeHex()
                    ctx.cacheDirectory = nil; ctx.cacheHit = false
                    if type.cached {
                        let cdir = dir.appendingPathComponent("cache/\(c.id)-\(hash.prefix(16))")
                        if settings.force { try? FileManager.default.removeItem(at: cdir) }
                        ctx.cacheHit = try isComplete(cdir, ctx)
                        if !ctx.cacheHit { try? FileManager.default.removeItem(at: cdir) }
                        try FileManager.default.createDirectory(at: cdir, withIntermediateDirectories: true)
                        ctx.cacheDirectory = cdir
                    }
                    narrate.say("• \(c.id) (\(c.kind))\(ctx.cacheHit ? " — cached" : "")")
                    let t0 = Date()
                    do {
                        try step.run(ctx)
                        guard ctx.outputType(of: c.id) == step.output else {
                            throw RecipeError("stored \(ctx.outputType(of: c.id).map { "\($0)" } ?? "nothing"), but declares \(step.output.map { "\($0)" } ?? "nothing")")
                        }
                    } catch {
                        // A half-written entry must not look like a result to a later run.
                        if !ctx.cacheHit, let cdir = ctx.cacheDirectory { try? FileManager.default.removeItem(at: cdir) }
                        if let i = error as? Interrupted { throw Interrupted(signal: i.signal, step: c.id) }
                        throw StepFailure(step: c.id, kind: c.kind, file: c.node.file, line: c.node.mark.line, underlying: error,
                                          cacheEntry: ctx.cacheHit ? ctx.cacheDirectory?.path : nil)
                    }
                    let read = (ctx.stepInputs[c.id] ?? []).sorted { $0.path < $1.path }
                    if let cdir = ctx.cacheDirectory, !ctx.cacheHit {
                        let lines = [hash] + read.map { "\($0.sha256)  \($0.path)" }
                        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: cdir.appendingPathComponent("complete"))
                    }
                    var r = SHA256()
                    r.update(Data(hash.utf8))
                    for f in read { r.update(Data("|\(f.path)=\(f.sha256)".utf8)) }
                    results[c.id] = r.finalizeHex()
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
        if let skip = skipGoldens {
            verifyLines.append(skip)
            ctx.add(.heading("Golden verification", level: 2))
            ctx.markdown(skip.replacingOccurrences(of: "golden: ", with: "Goldens ") + " (see \"Claims checked\").")
        } else if verify || updateGoldens {
            let golden = Golden(recipe: recipe)
            var made = settings.overrides
            if let seed = settings.seed { made.append("seed=\(seed)") }
            let outcome = try golden.verify(ctx, update: updateGoldens, overrides: made, published: dir)
            passed = outcome.passed
            verifyLines = outcome.lines
            ctx.add(.heading("Golden verification", level: 2))
            ctx.markdown(golden.provenance)
            ctx.add(.checks(outcome.checks))
            for block in outcome.comparisons { ctx.add(block) }
        }
        verifyLines.insert(contentsOf: ctx.referenceLines, at: 0)
        if verify || updateGoldens {
            for claim in ctx.failedRequiredClaims {
                passed = false
                verifyLines.append("required claim does not hold: \(claim)")
            }
        }
        try AtomicFile.write(recipeBytes, to: staging.appendingPathComponent("recipe.yaml"))
        try ctx.write(plan.parameters.lines.joined(separator: "\n") + "\n", to: "resolved.txt")
        try writeMetrics(ctx)
        manifest.verification = (verify || updateGoldens) ? (passed ? "passed" : "failed") : "not run"
        _ = try ctx.report.write(to: staging)
        manifest.artifacts = (try FileManager.default.contentsOfDirectory(atPath: staging.path) + ["manifest.json"]).sorted()
        try AtomicFile.write(try manifest.json(), to: staging.appendingPathComponent("manifest.json"))
        try publish(staging, into: dir)
        narrate.say("✓ report: \(dir.appendingPathComponent("report.html").path)")

        var summary = ["run: \(dir.path)", "report: \(dir.appendingPathComponent("report.html").path)"]
        summary += ctx.metrics.map { "metric \($0.name) = \(formatMetric($0.value))" }
        summary += ctx.checks.map { "claim \($0.passed ? "holds" : "does not hold"): \($0.name) (measured \($0.measured), expected \($0.expected))" }
        summary += (verify || updateGoldens) ? verifyLines : ctx.referenceLines
        if verify || updateGoldens { summary.append(updateGoldens ? "goldens: updated" : (passed ? "verify: passed" : "verify: FAILED")) }
        succeeded = true
        return RunResult(directory: dir, verificationPassed: passed, summary: summary.joined(separator: "\n"))
    }

    /// Reference grids were made with the recipe's settings at the run's scale: any other
    /// difference (a --set of temperature, steps, …) would measure the change of settings, so it
    /// is refused unless the user insists (--allow-overrides), as for goldens.
    static func checkReferenceParameters(_ plan: Plan, overrides: [String]) throws {
        let scale = plan.parameters["scale"].map { ["scale=\($0)"] } ?? []
        let reference = try plan.recipe.resolve(overrides: scale, seed: nil)
        let differing = plan.parameters.order.filter { reference[$0] != nil && reference[$0]!.description != plan.parameters[$0]!.description }
        guard !differing.isEmpty else { return }
        throw RecipeError("the reference grids (\(referenceComparisons(plan).map(\.reference.name).joined(separator: ", "))) were made with the recipe's settings at \(scale.first ?? "its defaults") ("
                          + differing.map { "\($0)=\(reference[$0]!)" }.joined(separator: ", ") + "), but this run has "
                          + differing.map { "\($0)=\(plan.parameters[$0]!)" }.joined(separator: ", ")
                          + (overrides.isEmpty ? "" : " (from --set \(overrides.joined(separator: " --set ")))")
                          + "; comparing them would measure the change of settings, not of the code. Verify without those overrides, or add --allow-overrides to compare anyway.")
    }

    /// Removes `dir` and the directories under it when they hold no file (a staging directory
    /// of a failed run counts as empty: it is being removed).
    static func removeEmptyDirectories(_ dir: URL) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else { return }
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] {
            let child = dir.appendingPathComponent(name)
            if name.hasPrefix(stagingPrefix) { try? fm.removeItem(at: child) } else { removeEmptyDirectories(child) }
        }
        if ((try? fm.contentsOfDirectory(atPath: dir.path)) ?? ["?"]).isEmpty { try? fm.removeItem(at: dir) }
    }

    // MARK: Cache entries

    /// Whether the cache entry `cdir` is complete and every file the step read when it filled the
    /// entry still has the content it had then (the `complete` marker lists them as
    /// `<sha256>  <path>` after the key). Those files count as read by the current step.
    static func isComplete(_ cdir: URL, _ ctx: RunContext) throws -> Bool {
        guard let data = FileManager.default.contents(atPath: cdir.appendingPathComponent("complete").path) else { return false }
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n").dropFirst() {
            let parts = line.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2 else { return false }
            let path = parts[1].trimmingCharacters(in: .whitespaces)
            if ctx.input(URL(fileURLWithPath: path)).sha256 != parts[0] { return false }
        }
        return true
    }

    // MARK: The run directory

    /// Prefix of the directory a run writes into before it succeeds.
    static let stagingPrefix = ".incomplete-"

    /// A fresh directory inside `dir` for this run's artifacts. Leftovers of runs that were killed
    /// are removed first: a run directory serves one run at a time.
    static func makeStaging(in dir: URL) throws -> URL {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(stagingPrefix) {
            try? fm.removeItem(at: dir.appendingPathComponent(name))
        }
        let staging = dir.appendingPathComponent(stagingPrefix + UUID().uuidString)
        do { try fm.createDirectory(at: staging, withIntermediateDirectories: false) } catch {
            throw RecipeError("cannot create \(staging.path): \(error.localizedDescription) (choose another run directory with --out)")
        }
        return staging
    }

    /// Moves a finished run's artifacts from `staging` into `dir`, and removes the artifacts the
    /// previous run listed in its manifest that this run did not write again: the run directory
    /// then holds exactly one run's results (beside `cache/`), never a figure left over from a
    /// run with other settings. A run that fails never gets here, so the previous run stays whole.
    static func publish(_ staging: URL, into dir: URL) throws {
        let fm = FileManager.default
        let produced = try fm.contentsOfDirectory(atPath: staging.path).sorted()
        for name in previousArtifacts(in: dir) where !produced.contains(name) {
            try? fm.removeItem(at: dir.appendingPathComponent(name))
        }
        // The manifest last: it names what is in place.
        for name in produced.filter({ $0 != "manifest.json" }) + produced.filter({ $0 == "manifest.json" }) {
            let from = staging.appendingPathComponent(name), to = dir.appendingPathComponent(name)
            if rename(from.path, to.path) != 0 {
                try? fm.removeItem(at: to)
                try fm.moveItem(at: from, to: to)
            }
        }
    }

    /// The artifacts the previous run in `dir` listed in its manifest (plain names only: never
    /// `cache`, a path, or anything the manifest did not name).
    static func previousArtifacts(in dir: URL) -> [String] {
        guard let data = FileManager.default.contents(atPath: dir.appendingPathComponent("manifest.json").path),
              let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let names = obj["artifacts"] as? [String] else { return [] }
        return names.filter { !$0.isEmpty && !$0.contains("/") && $0 != "." && $0 != ".." && $0 != "cache" && !$0.hasPrefix(stagingPrefix) }
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

/// A rough duration for estimates: "42 s", "17 min", "3.5 h", "12.3 days".
public func formatDuration(_ seconds: Double) -> String {
    if seconds < 90 { return String(format: "%.0f s", seconds) }
    if seconds < 5400 { return String(format: "%.0f min", seconds / 60) }
    if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
    return String(format: "%.1f days", seconds / 86400)
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
