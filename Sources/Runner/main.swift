// MARK: - runner
//
// The command line face of the project: runs YAML recipes (notebook-like walkthroughs that
// reproduce one figure or table), verifies them against goldens, and lists what exists.
//
// Exit codes: 0 ok, 1 verification failed, 2 bad input (recipe, options, files) or a failed step,
// 130 / 143 interrupted by SIGINT / SIGTERM (after the current step or training iteration).
import ArgumentParser
import Foundation
import Recipes
#if EP_SERVE
import Explore
import Serve
#endif

/// Options shared by every command that runs a recipe.
struct RunOptions: ParsableArguments {
    @Argument(help: "Path to a recipe YAML file, e.g. recipes/mnist-pullbacks.yaml.")
    var recipe: String

    @Option(name: .customLong("set"), parsing: .singleValue,
            help: ArgumentHelp("Override a recipe parameter (repeatable), type-checked against its declaration.",
                               valueName: "key=value"))
    var overrides: [String] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Run directory (default: runs/<recipe name>).", valueName: "dir"))
    var out: String?

    // `.unconditional`: `--seed -5` reads -5 as the value (and refuses it clearly), not as an option.
    @Option(parsing: .unconditional, help: "Random seed, 0 to 2^64-1; overrides the recipe's `seed` parameter.",
            transform: { try RunOptions.seed($0) })
    var seed: UInt64?

    @Option(parsing: .unconditional, help: "Worker threads for the kernels, 1 to \(RunOptions.maxThreads) (default: all cores).")
    var threads: Int?

    @Flag(help: "Rerun every step, ignoring cached results.")
    var force = false

    @Flag(help: "Resolve and validate the recipe, print the plan, run nothing.")
    var dryRun = false

    @Flag(help: "No progress bars or step narration on stderr.")
    var quiet = false

    static let maxThreads = 512

    /// Seeds are unsigned: a negative one is refused rather than wrapped, so two spellings never
    /// name the same run.
    static func seed(_ text: String) throws -> UInt64 {
        guard let v = UInt64(text) else {
            throw ValidationError(text.hasPrefix("-") && Int64(text) != nil
                ? "a seed is a non-negative integer (0 to 2^64-1), got \(text)"
                : "a seed is an integer from 0 to 2^64-1, got '\(text)'")
        }
        return v
    }

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
        if let t = threads, t > RunOptions.maxThreads { throw ValidationError("--threads must be at most \(RunOptions.maxThreads), got \(t)") }
        if let o = out, o.trimmingCharacters(in: .whitespaces).isEmpty {
            throw ValidationError("--out needs a directory path, got an empty string (omit --out for runs/<recipe name>)")
        }
        for o in overrides where !o.contains("=") {
            throw ValidationError("--set expects key=value, got '\(o)'")
        }
    }

    var engineOptions: RunSettings {
        RunSettings(recipePath: recipe, overrides: overrides, outDirectory: out, seed: seed,
                    threads: threads, force: force, dryRun: dryRun, quiet: quiet)
    }
}

struct Runner: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runner",
        abstract: "Reproduce excitation pullbacks (paper A) and gated networks (paper B) from YAML recipes.",
        discussion: """
        A recipe is a notebook-like walkthrough that reproduces one figure or table: prose cells \
        explain each step, step cells load data and weights, train, explain, ascend, tabulate and \
        plot. Each run writes a directory with a report (report.md, report.html), every artifact \
        and a manifest, and checks its outputs against golden files.

        Quick start:
          runner recipes/mnist-pullbacks.yaml        run the offline default recipe
          runner list recipes                        what recipes exist
          runner list steps | methods | models       what a recipe can use
          runner show-config <recipe> --set k=v      a run's parameters; runs nothing
          runner verify recipes/mnist-pullbacks.yaml run and compare with golden/
          runner plan <recipe> --set scale=paper     the recipe's units of work and their cost
          runner slurm <recipe> --shards 100         job scripts that run it on a Slurm cluster

        The recipe format (every key, claims, goldens, the run directory): docs/recipes.md.

        Exit codes:
          0  ok
          1  verification failed (a golden value or a required claim)
          2  bad input (recipe, options, files) or a step that failed
          130, 143  interrupted (Ctrl-C / SIGTERM): the run stops after the current step or
                    training iteration; finished steps stay cached. A second Ctrl-C stops at once.
        """,
        version: ProjectInfo.versionLine,
        subcommands: Runner.commands,
        defaultSubcommand: Run.self)
}

extension Runner {
    #if EP_SERVE
    static let commands: [ParsableCommand.Type] = [Run.self, Verify.self, ShowConfig.self, List.self, Plan.self, Slurm.self, ServeCommand.self]
    #else
    static let commands: [ParsableCommand.Type] = [Run.self, Verify.self, ShowConfig.self, List.self, Plan.self, Slurm.self]
    #endif
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe and write its report (the default command).")
    @OptionGroup var options: RunOptions

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Compute only shard i of n of the recipe's units of work (see `runner plan`) into the run directory, and write no report; a run without --shard afterwards writes it.",
                               valueName: "i/n"))
    var shard: String?

    func validate() throws {
        if let s = shard {
            do { _ = try ShardSpec(parsing: s) } catch let e as RecipeError { throw ValidationError(e.message) }
        }
    }

    func run() throws {
        var settings = options.engineOptions
        settings.shard = try shard.map { try ShardSpec(parsing: $0) }
        let result = try RecipeEngine.run(settings, verify: false, updateGoldens: false)
        print(result.summary)
    }
}

// MARK: - plan: the units of work

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a recipe's independent units of work (one per training run), with id, cache key and estimated cost.",
        discussion: """
        Costs are estimates in seconds on one 2-core machine, scaled from a measured C4GAP epoch; \
        they balance shards (`runner <recipe> --shard i/n`). With --shards N each unit shows the \
        shard it belongs to. With --check-complete each unit shows whether the run directory \
        (--out) holds it; the exit status is 1 when any is missing, and the missing ones are named \
        on stderr.
        """)
    @OptionGroup var options: RunOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(help: "Show the shard (1…N) of each unit and the estimated work per shard.")
    var shards: Int?

    @Flag(help: "Show which units the run directory holds; exit 1 naming the missing ones.")
    var checkComplete = false

    func validate() throws {
        if let n = shards, n < 1 { throw ValidationError("--shards must be at least 1, got \(n)") }
    }

    func run() throws {
        let settings = options.engineOptions
        let units = try RecipeEngine.workUnits(settings)
        let assignment = shards.map { ShardSpec.assign(units, shards: $0) }
        let dir = try RecipeEngine.runDirectory(settings)
        let complete = checkComplete ? RecipeEngine.completion(of: units, runDirectory: dir) : nil
        let total = units.reduce(0) { $0 + $1.cost }
        if json {
            var rows: [[String: Any]] = []
            for (i, u) in units.enumerated() {
                var row: [String: Any] = ["id": u.id, "step": u.step, "unit": u.stem, "key": u.key,
                                          "cache": "cache/units/\(u.directoryName)", "estimated_seconds": (u.cost * 10).rounded() / 10]
                if let a = assignment { row["shard"] = a[u.id] }
                if let c = complete { row["complete"] = c[i] }
                rows.append(row)
            }
            let obj: [String: Any] = ["recipe": settings.recipePath, "run_directory": dir.path, "units": rows,
                                      "estimated_seconds": (total * 10).rounded() / 10]
            print(String(decoding: try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]), as: UTF8.self))
        } else {
            print("\(units.count) unit(s) of work in \(settings.recipePath), estimated \(formatDuration(total)) on one 2-core machine")
            let idWidth = max(4, units.map(\.id.count).max() ?? 0)
            var header = "unit".padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  est. cost   key              "
            if assignment != nil { header += "  shard" }
            if complete != nil { header += "  status" }
            print(header)
            for (i, u) in units.enumerated() {
                var line = u.id.padding(toLength: idWidth, withPad: " ", startingAt: 0) + "  "
                    + formatDuration(u.cost).padding(toLength: 10, withPad: " ", startingAt: 0) + "  " + u.key.prefix(16)
                if let a = assignment { line += "  " + String(a[u.id] ?? 0).padding(toLength: 5, withPad: " ", startingAt: 0) }
                if let c = complete { line += "  " + (c[i] ? "complete" : "missing") }
                print(line)
            }
            if let a = assignment, let n = shards {
                var load = [Double](repeating: 0, count: n)
                for u in units { load[(a[u.id] ?? 1) - 1] += u.cost }
                print("estimated work per shard: largest \(formatDuration(load.max() ?? 0)), smallest \(formatDuration(load.min() ?? 0))")
            }
        }
        if let c = complete {
            let missing = zip(units, c).filter { !$0.1 }.map(\.0.id)
            if !missing.isEmpty {
                FileHandle.standardError.write(Data("runner: \(missing.count) of \(units.count) unit(s) missing in \(dir.path): \(missing.joined(separator: ", "))\n".utf8))
                throw ExitCode(1)
            }
        }
    }
}

// MARK: - slurm: job scripts for a cluster

struct Slurm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write sbatch scripts that run a recipe's units as a Slurm job array, then merge them into the report.",
        discussion: """
        Writes <run dir>/slurm/shards.sbatch (a job array, one task per shard: `runner <recipe> \
        --shard i/N`, threads from SLURM_CPUS_PER_TASK) and merge.sbatch (names the units still \
        missing, else writes the report). The run directory (--out) must be on a file system \
        every node shares. With --submit, submits both (the merge with --dependency=afterok on \
        the array) and prints the job ids. A failed shard can be resubmitted alone: \
        `sbatch --array=<i> shards.sbatch`, then the merge again with \
        `sbatch --dependency=afterok:<new job id> merge.sbatch`.
        """)
    @OptionGroup var options: RunOptions

    @Option(help: "Array tasks (shards).")
    var shards: Int = 8

    @Option(help: "CPUs per array task (the runner's --threads).")
    var cpusPerTask: Int = 2

    @Option(help: ArgumentHelp("Time limit per task, in Slurm's format (e.g. 2-00:00:00).", valueName: "time"))
    var time: String?

    @Option(help: "Slurm partition.")
    var partition: String?

    @Flag(help: "Submit both scripts with sbatch and print the job ids.")
    var submit = false

    func validate() throws {
        if shards < 1 { throw ValidationError("--shards must be at least 1, got \(shards)") }
        if cpusPerTask < 1 || cpusPerTask > RunOptions.maxThreads {
            throw ValidationError("--cpus-per-task must be 1 to \(RunOptions.maxThreads), got \(cpusPerTask)")
        }
        for (name, v) in [("--time", time), ("--partition", partition)] {
            if let v, v.isEmpty || v.contains(where: { $0.isWhitespace || $0 == "'" || $0 == "\"" }) {
                throw ValidationError("\(name) needs a value without spaces or quotes, got '\(v)'")
            }
        }
    }

    func run() throws {
        let settings = options.engineOptions
        let units = try RecipeEngine.workUnits(settings)      // validates the recipe and overrides
        let fm = FileManager.default
        let cwd = fm.currentDirectoryPath
        func absolute(_ p: String) -> String { ((p.hasPrefix("/") ? p : cwd + "/" + p) as NSString).standardizingPath }
        let dir = absolute(try RecipeEngine.runDirectory(settings).path)
        let runner = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        let name = URL(fileURLWithPath: settings.recipePath).deletingPathExtension().lastPathComponent
        let job = SlurmJob(runner: runner, recipe: absolute(settings.recipePath), overrides: settings.overrides, seed: settings.seed,
                           runDirectory: dir, workingDirectory: cwd, shards: shards, cpusPerTask: cpusPerTask,
                           time: time, partition: partition, jobName: name)
        let (shardsURL, mergeURL) = try job.write()
        let assignment = ShardSpec.assign(units, shards: shards)
        var load = [Double](repeating: 0, count: shards)
        for u in units { load[(assignment[u.id] ?? 1) - 1] += u.cost }
        print("\(units.count) unit(s) over \(shards) shard(s); estimated work per shard at most \(formatDuration(load.max() ?? 0)) on 2 cores")
        print("wrote \(shardsURL.path)")
        print("wrote \(mergeURL.path)")
        guard submit else {
            print("submit: sbatch \(shardsURL.path)   then   sbatch --dependency=afterok:<its job id> \(mergeURL.path)")
            return
        }
        let array = try SlurmJob.sbatch([shardsURL.path])
        let merge = try SlurmJob.sbatch(["--dependency=afterok:\(array)", mergeURL.path])
        print("shards job: \(array) (array 1-\(shards))")
        print("merge job: \(merge)")
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe (reusing cached steps) and compare its outputs with golden/<recipe>/, or with the published grids its `reference_grids` declare for the run's scale (paper A's figures at scale paper).")
    @OptionGroup var options: RunOptions
    @Flag(help: "Deliberately rewrite the golden values from this run (tolerances are kept); records the overrides and every parameter.")
    var updateGoldens = false

    @Flag(help: "Compare even when --set / --seed make the run's parameters differ from those the goldens were made with.")
    var allowOverrides = false

    func run() throws {
        var settings = options.engineOptions
        settings.allowOverrides = allowOverrides
        let result = try RecipeEngine.run(settings, verify: true, updateGoldens: updateGoldens)
        print(result.summary)
        if !result.verificationPassed { throw ExitCode(1) }
    }
}

struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-config",
        abstract: "Print the resolved recipe (parameters after variants and --set overrides).")
    @OptionGroup var options: RunOptions

    func run() throws {
        print(try RecipeEngine.resolvedDescription(options.engineOptions))
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List what exists: recipes, explanation methods, models or step kinds.")

    enum What: String, ExpressibleByArgument, CaseIterable {
        case recipes, methods, models, steps
    }

    @Argument(help: ArgumentHelp("One of: \(What.allCases.map(\.rawValue).joined(separator: ", ")).",
                                 valueName: "what"))
    var what: What = .recipes

    @Option(help: "Directory to look for recipes in.")
    var dir: String = "recipes"

    func run() throws {
        switch what {
        case .recipes: print(try Catalogue.recipes(in: dir))
        case .methods: print(Catalogue.methods())
        case .models: print(Catalogue.models())
        case .steps: print(Catalogue.steps())
        }
    }
}

#if EP_SERVE
/// `runner serve`: the interactive page (Sources/Serve). Runs until SIGINT / SIGTERM.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Start the interactive page: pullbacks and counterfactuals in a browser (loopback only by default).")
    @Option(help: "Port to listen on (0: any free port; the URL printed says which).")
    var port: Int = 8080
    @Option(help: "Address to bind; anything but 127.0.0.1 / ::1 makes the page reachable from other machines.")
    var host: String = "127.0.0.1"
    @Option(parsing: .unconditional, help: "Worker threads for the kernels, 1 to \(RunOptions.maxThreads) (default: all cores).")
    var threads: Int?
    @Option(help: "Where the trained MNIST CNN is kept (default: ~/.cache/excitation-pullbacks/serve, or EP_SERVE_CACHE).")
    var cacheDir: String?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be in 0...65535, got \(port)") }
        if let t = threads, !(1...RunOptions.maxThreads).contains(t) {
            throw ValidationError("--threads must be in 1...\(RunOptions.maxThreads), got \(t)")
        }
    }

    func run() throws {
        var config = ServeConfiguration()
        config.host = host; config.port = port; config.threads = threads
        if let d = cacheDir { config.cacheDirectory = URL(fileURLWithPath: d, isDirectory: true) }
        let failure = ServeFailure()
        let shownHost = host.contains(":") ? "[\(host)]" : host
        let app = ServeApp.make(config) { port in
            print("runner serve: http://\(shownHost):\(port)/  (Ctrl-C stops it)")
            fflush(stdout)
        }
        Task.detached {
            do { try await app.run() } catch { failure.set("\(error)") }
            failure.set(nil)
        }
        // The main thread waits for the server to fail or for SIGINT / SIGTERM (Interruption).
        while true {
            if let f = failure.value {
                if let message = f { throw RecipeError("serve: the server on \(shownHost):\(port) stopped: \(message)") }
                return
            }
            if Interruption.requested != nil { print("runner serve: stopped"); return }
            usleep(100_000)
        }
    }
}

/// The server task's outcome, read by the waiting main thread.
final class ServeFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var outcome: String?? = .none
    func set(_ message: String?) { lock.lock(); if case .none = outcome { outcome = .some(message) }; lock.unlock() }
    var value: String?? { lock.lock(); defer { lock.unlock() }; return outcome }
}
#endif

// MARK: - Entry point with the project's exit codes

MemoryTuning.keepFreedMemory()
Interruption.installHandlers()
let arguments = Array(CommandLine.arguments.dropFirst())

/// The error to show for `error`: with no recipe given, ArgumentParser reports the missing recipe
/// before an unknown option (`runner --bogus`); the unknown option is the user's real mistake.
func userFacing(_ error: Error) -> Error {
    guard Runner.fullMessage(for: error).contains("Missing expected argument") else { return error }
    do { _ = try Runner.parseAsRoot(arguments + ["recipe.yaml"]) } catch let e {
        if Runner.fullMessage(for: e).contains("Unknown option") { return e }
    }
    return error
}

// `runner <recipe> --help`: the options, then the recipe's own parameters.
if arguments.contains(where: { $0 == "--help" || $0 == "-h" }),
   let recipe = arguments.first(where: { ($0.hasSuffix(".yaml") || $0.hasSuffix(".yml")) && FileManager.default.fileExists(atPath: $0) }) {
    let subcommand: ParsableCommand.Type = arguments.first == "verify" ? Verify.self : arguments.first == "show-config" ? ShowConfig.self : Run.self
    print(Runner.helpMessage(for: subcommand))
    do { print("\n" + (try RecipeEngine.parameterHelp(RunSettings(recipePath: recipe)))) } catch {
        FileHandle.standardError.write(Data("runner: error: \(error)\n".utf8))
        Foundation.exit(2)
    }
    Foundation.exit(0)
}

do {
    var command = try Runner.parseAsRoot()
    try command.run()
} catch let code as ExitCode {
    Foundation.exit(code.rawValue)
} catch let i as Interrupted {
    let step = i.step.map { " during step '\($0)'" } ?? ""
    FileHandle.standardError.write(Data("runner: interrupted by \(i.signalName)\(step); finished steps are cached, rerun to continue\n".utf8))
    Foundation.exit(i.exitCode)
} catch let thrown {
    let error = userFacing(thrown)
    let code = Runner.exitCode(for: error)
    if code == .success {                       // --help, --version
        print(Runner.fullMessage(for: error))
        Foundation.exit(0)
    }
    var message = Runner.fullMessage(for: error)
    if message.hasPrefix("Error: ") { message.removeFirst("Error: ".count) }   // we say "error:" ourselves
    FileHandle.standardError.write(Data("runner: error: \(message)\n".utf8))
    if (error is ValidationError || code == .validationFailure) && !message.contains("--help") {
        FileHandle.standardError.write(Data("(see `runner --help`)\n".utf8))
    }
    Foundation.exit(2)
}
