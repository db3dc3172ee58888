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
    static let commands: [ParsableCommand.Type] = [Run.self, Verify.self, ShowConfig.self, List.self, ServeCommand.self]
    #else
    static let commands: [ParsableCommand.Type] = [Run.self, Verify.self, ShowConfig.self, List.self]
    #endif
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe and write its report (the default command).")
    @OptionGroup var options: RunOptions

    func run() throws {
        let result = try RecipeEngine.run(options.engineOptions, verify: false, updateGoldens: false)
        print(result.summary)
    }
}

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a recipe (reusing cached steps) and compare its outputs with golden/<recipe>/.")
    @OptionGroup var options: RunOptions
    @Flag(help: "Deliberately rewrite the golden values from this run (tolerances are kept).")
    var updateGoldens = false

    func run() throws {
        let result = try RecipeEngine.run(options.engineOptions, verify: true, updateGoldens: updateGoldens)
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
do {
    var command = try Runner.parseAsRoot()
    try command.run()
} catch let code as ExitCode {
    Foundation.exit(code.rawValue)
} catch let i as Interrupted {
    let step = i.step.map { " during step '\($0)'" } ?? ""
    FileHandle.standardError.write(Data("runner: interrupted by \(i.signalName)\(step); finished steps are cached, rerun to continue\n".utf8))
    Foundation.exit(i.exitCode)
} catch {
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
