import XCTest
import Foundation

/// The `runner` executable as a user meets it: help text, `list`, exit codes (0 ok,
/// 1 verification failed, 2 bad input) and messages on stderr. Runs the built binary
/// (`swift test` builds every product first) on small recipes in a temporary directory.
final class RunnerCLITests: XCTestCase {
    var tmp: URL!
    var runner: URL!

    /// <repo>/.build/<configuration>/runner, beside the test bundle.
    static func findRunner() -> URL? {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        var candidates: [URL] = []
        // The directory holding the test bundle is the build directory of this configuration.
        var b = Bundle.main.bundleURL
        while b.pathComponents.count > 1 {
            if b.pathExtension == "xctest" { candidates.append(b.deletingLastPathComponent().appendingPathComponent("runner")); break }
            b = b.deletingLastPathComponent()
        }
        for c in CommandLine.arguments.prefix(2) where c.hasSuffix(".xctest") {
            candidates.append(URL(fileURLWithPath: c).deletingLastPathComponent().appendingPathComponent("runner"))
        }
        candidates += ["release", "debug"].map { repo.appendingPathComponent(".build/\($0)/runner") }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    override func setUpWithError() throws {
        guard let r = Self.findRunner() else { throw XCTSkip("the runner executable is not built (swift build -c release)") }
        runner = r
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("runner-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    /// Runs `runner args…` in the temporary directory.
    func run(_ args: [String]) throws -> Output {
        let p = Process()
        p.executableURL = runner
        p.arguments = args
        p.currentDirectoryURL = tmp
        // stdout through a pipe, stderr into a file: no second reader thread needed.
        let out = Pipe()
        let errURL = tmp.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let err = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = out; p.standardError = err
        try p.run()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        try err.close()
        let errData = try Data(contentsOf: errURL)
        let o = Output(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                       stderr: String(decoding: errData, as: UTF8.self))
        print("$ runner \(args.joined(separator: " "))  → exit \(o.status)\n\(o.stdout)\(o.stderr)")
        return o
    }

    @discardableResult
    func write(_ text: String, name: String = "tiny") throws -> String {
        let url = tmp.appendingPathComponent("recipes/\(name).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static let tiny = """
    title: "Tiny CLI recipe"
    paper: B
    figure: t2
    parameters:
      seed: 0
      per_class: {default: 2, min: 1}
    cells:
      - markdown: "Two classes."
      - step: load_data
        id: test
        with: {dataset: mnist5k, split: test, per_class: $per_class, classes: [0, 1]}
      - step: check
        with: {claim: "test.count == 2 * ${per_class}"}
    """

    // MARK: Help and list

    func testHelpNamesSubcommandsAndExitCodes() throws {
        let h = try run(["--help"])
        XCTAssertEqual(h.status, 0)
        for s in ["run", "verify", "show-config", "list"] { XCTAssertTrue(h.stdout.contains("  \(s) "), "help lacks \(s)") }
        let flat = h.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")   // help text is wrapped
        XCTAssertTrue(h.stdout.contains("""
            Exit codes:
              0  ok
              1  verification failed (a golden value or a required claim)
              2  bad input (recipe, options, files) or a step that failed
            """), h.stdout)
        XCTAssertTrue(flat.contains("docs/recipes.md"), h.stdout)
        XCTAssertTrue(h.stdout.contains("runner list recipes"), h.stdout)

        let r = try run(["run", "--help"])
        XCTAssertEqual(r.status, 0)
        for o in ["--set <key=value>", "--out <dir>", "--seed", "--threads", "--force", "--dry-run", "--quiet"] {
            XCTAssertTrue(r.stdout.contains(o), "run --help lacks \(o)")
        }
        let v = try run(["verify", "--help"])
        XCTAssertTrue(v.stdout.contains("--update-goldens"), v.stdout)
        let l = try run(["list", "--help"])
        XCTAssertTrue(l.stdout.contains("recipes, methods, models, steps"), l.stdout)
    }

    func testListPrintsWhatExists() throws {
        let steps = try run(["list", "steps"])
        XCTAssertEqual(steps.status, 0)
        XCTAssertTrue(steps.stdout.hasPrefix("step "), steps.stdout)
        for k in ["load_data", "check", "explain", "ascend"] { XCTAssertTrue(steps.stdout.contains("\n\(k) "), "list steps lacks \(k)") }

        let methods = try run(["list", "methods"])
        XCTAssertEqual(methods.status, 0)
        for m in ["gradient", "excitation_pullback"] { XCTAssertTrue(methods.stdout.contains("\n\(m) "), "list methods lacks \(m)") }

        let models = try run(["list", "models"])
        XCTAssertEqual(models.status, 0)
        XCTAssertTrue(models.stdout.hasPrefix("model "), models.stdout)

        try write(Self.tiny)
        try write("title: x\ncells: [{step: nope}]\n", name: "broken")
        let recipes = try run(["list", "recipes", "--dir", tmp.appendingPathComponent("recipes").path])
        XCTAssertEqual(recipes.status, 0)
        XCTAssertTrue(recipes.stdout.contains("tiny.yaml") && recipes.stdout.contains("Tiny CLI recipe"), recipes.stdout)
        XCTAssertTrue(recipes.stdout.contains("broken.yaml") && recipes.stdout.contains("does not load"), recipes.stdout)
        // Default directory: ./recipes under the working directory.
        let here = try run(["list", "recipes"])
        XCTAssertEqual(here.status, 0)
        XCTAssertTrue(here.stdout.contains("\nrecipes/tiny.yaml ") && here.stdout.contains("\nrecipes/broken.yaml "), here.stdout)

        let missing = try run(["list", "recipes", "--dir", "nowhere"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("nowhere: no such directory"), missing.stderr)
        let bogus = try run(["list", "recipse"])
        XCTAssertEqual(bogus.status, 2)
        XCTAssertTrue(bogus.stderr.contains("recipse"), bogus.stderr)
    }

    // MARK: Exit codes

    func testBadInputExitsTwoWithAMessage() throws {
        let path = try write(Self.tiny)
        let bad = try write("titel: x\ncells: []\n", name: "bad")
        let e1 = try run([bad])
        XCTAssertEqual(e1.status, 2)
        XCTAssertTrue(e1.stderr.contains("runner: error: \(bad):1:1: unknown key 'titel'; did you mean 'title'?"), e1.stderr)
        XCTAssertEqual(e1.stdout, "")

        let e2 = try run([path, "--set", "per_class=abc"])
        XCTAssertEqual(e2.status, 2)
        XCTAssertTrue(e2.stderr.contains("--set per_class=abc: parameter 'per_class' expects an integer"), e2.stderr)
        let e3 = try run([path, "--set", "per_clas=3"])
        XCTAssertEqual(e3.status, 2)
        XCTAssertTrue(e3.stderr.contains("did you mean 'per_class'?"), e3.stderr)
        let e4 = try run([path, "--set", "per_class"])
        XCTAssertEqual(e4.status, 2)
        XCTAssertTrue(e4.stderr.contains("--set expects key=value, got 'per_class'"), e4.stderr)
        XCTAssertTrue(e4.stderr.contains("See 'runner run --help'"), e4.stderr)

        let missing = tmp.appendingPathComponent("recipes/none.yaml").path
        let e5 = try run([missing])
        XCTAssertEqual(e5.status, 2)
        XCTAssertTrue(e5.stderr.contains("\(missing): no such recipe file"), e5.stderr)

        let e6 = try run([path, "--threads", "0"])
        XCTAssertEqual(e6.status, 2)
        XCTAssertTrue(e6.stderr.contains("--threads must be at least 1"), e6.stderr)
        let e7 = try run([path, "--bogus-flag"])
        XCTAssertEqual(e7.status, 2)
        XCTAssertTrue(e7.stderr.contains("--bogus-flag"), e7.stderr)

        // Unwritable run directory: its parent is a regular file.
        try Data("x".utf8).write(to: tmp.appendingPathComponent("file"))
        let e8 = try run([path, "--quiet", "--out", tmp.appendingPathComponent("file/run").path])
        XCTAssertEqual(e8.status, 2)
        XCTAssertTrue(e8.stderr.contains("runner: error: cannot create run directory \(tmp.appendingPathComponent("file/run").path): \(tmp.appendingPathComponent("file").path) is a file, not a directory"), e8.stderr)

        // The same with a relative --out (resolved against the working directory).
        let e8b = try run([path, "--quiet", "--out", "file/sub/run"])
        XCTAssertEqual(e8b.status, 2)
        XCTAssertTrue(e8b.stderr.contains("runner: error: cannot create run directory \(tmp.appendingPathComponent("file/sub/run").path): \(tmp.appendingPathComponent("file").path) is a file, not a directory"), e8b.stderr)

        // A step that fails while running names the step, its kind and its line.
        let failing = try write("title: x\ncells:\n  - step: check\n    id: c\n    with: {claim: \"nothing.here > 0\"}\n", name: "failing")
        let e9 = try run([failing, "--quiet", "--out", tmp.appendingPathComponent("f").path])
        XCTAssertEqual(e9.status, 2)
        XCTAssertTrue(e9.stderr.contains("\(failing):3: step 'c' (check) failed: claim 'nothing.here > 0': no metric 'nothing.here'"), e9.stderr)
    }

    func testRunVerifyAndDryRunExitCodes() throws {
        let path = try write(Self.tiny)
        let out = tmp.appendingPathComponent("out")

        let dry = try run([path, "--dry-run", "--out", out.path])
        XCTAssertEqual(dry.status, 0)
        XCTAssertTrue(dry.stdout.contains("(dry run: nothing was executed)"), dry.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "--dry-run created the run directory")

        let cfg = try run(["show-config", path, "--set", "per_class=3"])
        XCTAssertEqual(cfg.status, 0)
        XCTAssertTrue(cfg.stdout.contains("  per_class = 3"), cfg.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))

        let ok = try run([path, "--quiet", "--out", out.path, "--seed", "3"])
        XCTAssertEqual(ok.status, 0)
        XCTAssertTrue(ok.stdout.contains("run: \(out.path)"), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("metric test.count = 4"), ok.stdout)
        XCTAssertEqual(ok.stderr, "", "--quiet must keep stderr empty")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("report.html").path))
        // Narration goes to stderr without --quiet; stdout stays the summary.
        let loud = try run(["run", path, "--out", out.path])
        XCTAssertEqual(loud.status, 0)
        XCTAssertTrue(loud.stderr.contains("• test (load_data)"), loud.stderr)
        XCTAssertEqual(loud.stdout.split(separator: "\n").first, "run: \(out.path)")

        let update = try run(["verify", path, "--quiet", "--out", out.path, "--update-goldens"])
        XCTAssertEqual(update.status, 0)
        let expected = tmp.appendingPathComponent("golden/tiny/expected.json")
        XCTAssertTrue(FileManager.default.fileExists(atPath: expected.path))
        let pass = try run(["verify", path, "--quiet", "--out", out.path])
        XCTAssertEqual(pass.status, 0)
        XCTAssertTrue(pass.stdout.contains("verify: passed"), pass.stdout)

        let text = try String(contentsOf: expected, encoding: .utf8).replacingOccurrences(of: "\"value\" : 4", with: "\"value\" : 40")
        try text.write(to: expected, atomically: true, encoding: .utf8)
        let fail = try run(["verify", path, "--quiet", "--out", out.path])
        XCTAssertEqual(fail.status, 1)
        XCTAssertTrue(fail.stdout.contains("golden mismatch: test.count: measured 4, expected 40"), fail.stdout)
        XCTAssertTrue(fail.stdout.contains("verify: FAILED"), fail.stdout)
    }

    // MARK: Option values that look like options, empty paths

    func testNegativeNumbersParseAsValuesAndAreRefused() throws {
        let path = try write(Self.tiny)
        let threads = try run([path, "--quiet", "--threads", "-1"])
        XCTAssertEqual(threads.status, 2)
        XCTAssertTrue(threads.stderr.contains("runner: error: --threads must be at least 1, got -1"), threads.stderr)
        XCTAssertFalse(threads.stderr.contains("Missing value"), threads.stderr)
        let many = try run([path, "--quiet", "--threads", "100000"])
        XCTAssertEqual(many.status, 2)
        XCTAssertTrue(many.stderr.contains("--threads must be at most 512, got 100000"), many.stderr)

        let seed = try run([path, "--quiet", "--seed", "-5"])
        XCTAssertEqual(seed.status, 2)
        XCTAssertTrue(seed.stderr.contains("a seed is a non-negative integer (0 to 2^64-1), got -5"), seed.stderr)
        XCTAssertFalse(seed.stderr.contains("Missing value"), seed.stderr)
        let word = try run([path, "--quiet", "--seed", "abc"])
        XCTAssertEqual(word.status, 2)
        XCTAssertTrue(word.stderr.contains("a seed is an integer from 0 to 2^64-1, got 'abc'"), word.stderr)

        // The largest seed is a value like any other.
        let out = tmp.appendingPathComponent("big-seed")
        let big = try run([path, "--quiet", "--out", out.path, "--seed", "18446744073709551615"])
        XCTAssertEqual(big.status, 0, big.stderr)
    }

    func testEmptyOutIsRefused() throws {
        let path = try write(Self.tiny)
        for empty in ["", "  "] {
            let r = try run([path, "--quiet", "--out", empty])
            XCTAssertEqual(r.status, 2)
            XCTAssertTrue(r.stderr.contains("runner: error: --out needs a directory path, got an empty string (omit --out for runs/<recipe name>)"), r.stderr)
        }
        // Nothing was written into the working directory.
        let left = try FileManager.default.contentsOfDirectory(atPath: tmp.path).filter { !$0.hasPrefix("stderr-") }
        XCTAssertEqual(left.sorted(), ["recipes"])
    }

    // MARK: Interrupts

    static let training = """
    title: "Interrupted training"
    parameters:
      seed: 0
    cells:
      - step: load_data
        id: train
        with: {dataset: mnist5k, split: train}
      - step: load_data
        id: test
        with: {dataset: mnist5k, split: test, per_class: 1}
      - step: train
        id: cnn
        with: {model: mnist_cnn, train: train, test: test, epochs: 100, batch_size: 8}
    """

    /// Starts the runner, waits until stderr shows `marker`, sends `signal`, and returns the exit
    /// status and stderr (the run is killed after 120 s so a hang fails rather than blocks).
    func interrupted(_ args: [String], after marker: String, signal: Int32) throws -> Output {
        let p = Process()
        p.executableURL = runner
        p.arguments = args
        p.currentDirectoryURL = tmp
        let errURL = tmp.appendingPathComponent("stderr-\(UUID().uuidString).txt")
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let err = try FileHandle(forWritingTo: errURL)
        defer { try? FileManager.default.removeItem(at: errURL) }
        p.standardOutput = FileHandle.nullDevice; p.standardError = err
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        func stderrText() -> String { String(decoding: (try? Data(contentsOf: errURL)) ?? Data(), as: UTF8.self) }
        while !stderrText().contains(marker), p.isRunning, Date() < deadline { usleep(20_000) }
        usleep(300_000)                                         // well inside the step
        XCTAssertTrue(p.isRunning, "the run ended before it could be interrupted:\n\(stderrText())")
        kill(p.processIdentifier, signal)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL); XCTFail("no exit within 120 s of \(signal)") }
        p.waitUntilExit()
        try err.close()
        let o = Output(status: p.terminationStatus, stdout: "", stderr: stderrText())
        print("$ runner \(args.joined(separator: " "))  (signal \(signal))  → exit \(o.status)\n\(o.stderr)")
        return o
    }

    func testInterruptStopsTrainingCleanly() throws {
        let path = try write(Self.training, name: "interrupt")
        for (sig, code, name) in [(SIGINT, Int32(130), "SIGINT"), (SIGTERM, Int32(143), "SIGTERM")] {
            let out = tmp.appendingPathComponent("run-\(name)")
            let r = try interrupted([path, "--out", out.path, "--threads", "1"], after: "• cnn (train)", signal: sig)
            XCTAssertEqual(r.status, code)
            XCTAssertEqual(r.stderr.split(separator: "\n").last.map(String.init),
                           "runner: interrupted by \(name) during step 'cnn'; finished steps are cached, rerun to continue")
            // No cache entry without its `complete` marker: the training step's is gone.
            let cache = out.appendingPathComponent("cache")
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []
            for e in entries {
                XCTAssertTrue(FileManager.default.fileExists(atPath: cache.appendingPathComponent("\(e)/complete").path), "incomplete cache entry \(e)")
            }
            XCTAssertFalse(entries.contains { $0.hasPrefix("cnn-") }, "\(entries)")
        }
    }

    func testIncompleteCacheEntriesAreSweptAtStart() throws {
        let path = try write(Self.tiny)
        let out = tmp.appendingPathComponent("out")
        let stale = out.appendingPathComponent("cache/train-0123456789abcdef")
        let kept = out.appendingPathComponent("cache/done-0123456789abcdef")
        for d in [stale, kept] { try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true) }
        try Data("partial".utf8).write(to: stale.appendingPathComponent("model.safetensors"))
        try Data("x\n".utf8).write(to: kept.appendingPathComponent("complete"))
        let ok = try run([path, "--quiet", "--out", out.path])
        XCTAssertEqual(ok.status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: stale.path), "an entry without `complete` survived")
        XCTAssertTrue(FileManager.default.fileExists(atPath: kept.path))
    }
}
