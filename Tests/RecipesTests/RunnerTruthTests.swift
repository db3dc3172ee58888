import XCTest
import Foundation
import Recipes
import SIMDCore

/// The runner tells a user the truth before a run (dry run: every file, its URL, destination and
/// presence; offline: every missing file at once), during it (progress lines in logs) and after
/// it (verify says what the goldens were made with; failed images are shown), and the small
/// facts it reports (parameter counts, error positions) are right.
final class RunnerTruthTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("runner-truth-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    // MARK: Helpers

    @discardableResult
    func write(_ text: String, name: String) throws -> String {
        let url = tmp.appendingPathComponent("recipes/\(name).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func recipe(_ name: String) -> String { Self.root.appendingPathComponent("recipes/\(name).yaml").path }

    func dir(_ name: String) throws -> URL {
        let d = tmp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    struct Output { let status: Int32; let stdout: String; let stderr: String }

    /// Runs the built `runner` in `tmp` with extra environment variables (stderr is a file, not a terminal).
    func runner(_ args: [String], environment: [String: String] = [:]) throws -> Output {
        guard let exe = RunnerCLITests.findRunner() else { throw XCTSkip("the runner executable is not built (swift build -c release)") }
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        p.currentDirectoryURL = tmp
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
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
        let o = Output(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                       stderr: String(decoding: try Data(contentsOf: errURL), as: UTF8.self))
        print("$ runner \(args.joined(separator: " "))  → exit \(o.status)\n\(o.stdout)\(o.stderr)")
        return o
    }

    /// A recipe that makes one small picture offline in well under a second: synthetic ResNet50
    /// weights, the shipped cat at 32x32, gradient maps.
    static let picture = """
    title: "One small picture"
    parameters:
      seed: 0
      size: {default: 32, min: 8, help: "image side"}
    cells:
      - step: load_model
        id: net
        with: {architecture: resnet50, weights: synthetic}
      - step: load_images
        id: cat
        with:
          size: $size
          files: [{name: chelsea, label: 281, file: \(root.appendingPathComponent("data/images/chelsea.png").path)}]
      - step: explain
        id: maps
        with: {model: net, data: cat, images: all, methods: [gradient]}
    """

    // MARK: 1. Know before running

    func testDryRunListsEveryNeededFileWithURLDestinationAndPresence() throws {
        let torch = try dir("torch"), images = try dir("images")
        try withEnvironment(["TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path, "EP_OFFLINE": "0"]) {
            // One image already in the cache: it shows as present.
            try Data("x".utf8).write(to: images.appendingPathComponent("0_tench.jpg"))
            let r = try RecipeEngine.run(RunSettings(recipePath: recipe("fig3"), overrides: ["scale=paper"], dryRun: true),
                                         verify: false, updateGoldens: false)
            print(r.summary)
            let weights = torch.appendingPathComponent("hub/checkpoints/densenet121-a639ec97.pth").path
            XCTAssertTrue(r.summary.contains("files (7, 6 missing"), r.summary)   // weights, 5 images, 1 published grid
            XCTAssertTrue(r.summary.contains("MISSING weights densenet121 (torchvision), about 31 MB: https://download.pytorch.org/models/densenet121-a639ec97.pth → \(weights)"), r.summary)
            XCTAssertTrue(r.summary.contains("present image tench: https://raw.githubusercontent.com/"), r.summary)
            for name in ["cassette player", "church", "garbage truck", "golf ball"] {
                XCTAssertTrue(r.summary.contains("MISSING image \(name): https://"), "\(name): \(r.summary)")
            }
            XCTAssertTrue(r.summary.contains(images.appendingPathComponent("2_cassette_player.jpg").path), r.summary)
            // The ci scale reads nothing from outside the repository.
            let ci = try RecipeEngine.run(RunSettings(recipePath: recipe("fig3"), dryRun: true), verify: false, updateGoldens: false)
            XCTAssertTrue(ci.summary.contains("files: none to download"), ci.summary)
        }
    }

    func testOfflineRunNamesEveryMissingFileAtOnce() throws {
        let torch = try dir("torch"), images = try dir("images"), out = tmp.appendingPathComponent("run")
        try withEnvironment(["TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path, "EP_OFFLINE": "1"]) {
            let t = errorText { try RecipeEngine.run(RunSettings(recipePath: self.recipe("fig3"), overrides: ["scale=paper"], outDirectory: out.path),
                                                     verify: false, updateGoldens: false) }
            XCTAssertTrue(t.contains("downloads are disabled (EP_OFFLINE) and 7 files are missing; nothing was run"), t)
            for name in ["tench", "cassette player", "church", "garbage truck", "golf ball"] {
                XCTAssertEqual(t.components(separatedBy: "  image \(name):").count, 2, "image \(name) must be named once:\n\(t)")
            }
            XCTAssertTrue(t.contains("weights densenet121 (torchvision) (about 31 MB): download https://download.pytorch.org/models/densenet121-a639ec97.pth"), t)
            XCTAssertTrue(t.contains("$TORCH_HOME") && t.contains("$EP_IMAGE_DIR"), t)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "an offline run that cannot start must not create its directory")
        }
    }

    /// Typed inputs are checked when the recipe is planned, so `--dry-run` catches a gated network
    /// passed where a classifier is needed (this held before; kept as a guard).
    func testDryRunChecksStepInputTypes() throws {
        let path = try write("""
        title: x
        cells:
          - step: load_data
            id: train
            with: {dataset: mnist5k, split: train, per_class: 2}
          - step: train
            id: dlgn
            with: {model: {architecture: c4gap, width: 8, variant: dlgn}, train: train, test: train, epochs: 1}
          - step: explain
            id: maps
            with: {model: dlgn, data: train, methods: [gradient]}
        """, name: "typed")
        let t = errorText { try RecipeEngine.run(RunSettings(recipePath: path, dryRun: true), verify: false, updateGoldens: false) }
        XCTAssertTrue(t.contains("step 'dlgn' produced GatedNetwork, not Classifier"), t)
    }

    // MARK: 2. Offline means offline

    func testOfflineCoversDataSets() throws {
        let data = try dir("data"), out = tmp.appendingPathComponent("run")
        try withEnvironment(["EP_DATA_DIR": data.path, "EP_OFFLINE": "1"]) {
            let t = errorText { try RecipeEngine.run(RunSettings(recipePath: self.recipe("dlgn-table1"), overrides: ["scale=paper"], outDirectory: out.path),
                                                     verify: false, updateGoldens: false) }
            XCTAssertTrue(t.contains("downloads are disabled (EP_OFFLINE)"), t)
            XCTAssertTrue(t.contains(data.appendingPathComponent("cifar10/cifar-10-binary.tar.gz").path), t)
            XCTAssertTrue(t.contains("$EP_DATA_DIR"), t)
            XCTAssertFalse(t.contains("TORCH_HOME") || t.contains("partial"), t)
            // The step itself honours EP_OFFLINE too (no downloader), with the data cache's advice.
            let s = errorText { try DataSets.load("cifar10", split: .test, cache: DataCache(root: data), fetch: nil) }
            XCTAssertTrue(s.contains("downloads are disabled (EP_OFFLINE) or unavailable") && s.contains("EP_DATA_DIR"), s)
        }
    }

    func testFailedDataDownloadNamesTheFinalFileAndTheDataVariable() throws {
        let remote = RemoteFile(name: "file.bin", urls: [URL(fileURLWithPath: tmp.appendingPathComponent("nowhere/file.bin").path)],
                                md5: String(repeating: "0", count: 32), approximateSize: "1 KB")
        let source = DataSetSource(id: "toy", title: "Toy", directory: "toy", downloads: [remote], unpack: nil,
                                   requiredFiles: ["file.bin"], optionalFiles: [], citation: "")
        let cache = DataCache(root: try dir("data"))
        let t = errorText { try cache.prepare(source, fetch: WeightStore.fetchData) }
        XCTAssertTrue(t.hasPrefix(tmp.appendingPathComponent("data/toy/file.bin").path + ": download failed"), t)
        XCTAssertTrue(t.contains("EP_DATA_DIR"), t)
        XCTAssertFalse(t.contains("partial"), "a temporary file name leaked into the message:\n\(t)")
        XCTAssertFalse(t.contains("TORCH_HOME"), "the weight cache's variable leaked into a data-set message:\n\(t)")
    }

    // MARK: 3. Discoverable parameters

    func testShowConfigAndRecipeHelpListEveryParameterWithDefaultChoicesAndHelp() throws {
        let cfg = try RecipeEngine.resolvedDescription(RunSettings(recipePath: recipe("fig3")))
        XCTAssertTrue(cfg.contains("  weights = synthetic\n      default torchvision; one of torchvision, timm, synthetic. torchvision IMAGENET1K_V1"), cfg)
        XCTAssertTrue(cfg.contains("  size = 64\n      default 224; min 8. Input side"), cfg)
        let help = try runner([recipe("fig3"), "--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.stdout.contains("--dry-run") && help.stdout.contains("Parameters of \(recipe("fig3"))"), help.stdout)
        XCTAssertTrue(help.stdout.contains("  temperature = 0.3\n      default 0.3; min 0.001. Gate temperature T"), help.stdout)
    }

    func testListRecipesSaysWhatEachScaleNeedsAndHowLong() throws {
        let list = try Catalogue.recipes(in: Self.root.appendingPathComponent("recipes").path)
        print(list)
        XCTAssertTrue(list.contains("    ci (default): offline; "), list)
        XCTAssertTrue(list.contains("    paper: downloads weights densenet121 (torchvision) about 31 MB, 5 images, 1 published grid to compare with; "), list)
        XCTAssertTrue(list.contains("    paper: downloads CIFAR-10 (binary version) cifar-10-binary.tar.gz about 162 MB; "), list)
        XCTAssertFalse(list.contains("time not stated"), "every shipped recipe states its time per scale:\n\(list)")
        // One rule for the default scale: every shipped recipe with scales defaults to ci.
        for f in try FileManager.default.contentsOfDirectory(atPath: Self.root.appendingPathComponent("recipes").path) where f.hasSuffix(".yaml") {
            let r = try Recipe.load(Self.root.appendingPathComponent("recipes/\(f)"))
            if let scale = r.parameters.first(where: { $0.name == "scale" }) { XCTAssertEqual("\(scale.defaultValue)", "ci", f) }
        }
    }

    // MARK: 5. Progress everywhere

    func testLongStepsWriteProgressLinesWhenStderrIsNotATerminal() throws {
        let path = try write("""
        title: "Progress"
        parameters: {seed: 0}
        cells:
          - step: load_data
            id: train
            with: {dataset: mnist5k, split: train, per_class: 8}
          - step: train
            id: cnn
            with: {model: mnist_cnn, train: train, test: train, epochs: 2, batch_size: 16}
        """, name: "progress")
        let r = try runner([path, "--out", tmp.appendingPathComponent("run").path], environment: ["EP_PROGRESS_INTERVAL": "0"])
        XCTAssertEqual(r.status, 0)
        let lines = r.stderr.split(separator: "\n").filter { $0.hasPrefix("progress: cnn ") }
        XCTAssertGreaterThanOrEqual(lines.count, 2, r.stderr)
        XCTAssertTrue(lines.contains { $0.contains("epoch 2 loss ") && $0.contains(" s elapsed, about ") && $0.contains(" s left") }, r.stderr)
        XCTAssertFalse(r.stderr.contains("\r"), "no bar redrawing in a log")
        // The default interval (30 s) writes nothing for a step this short; --quiet writes nothing at all.
        let quiet = try runner([path, "--quiet", "--force", "--out", tmp.appendingPathComponent("run").path], environment: ["EP_PROGRESS_INTERVAL": "0"])
        XCTAssertEqual(quiet.stderr, "")
    }

    // MARK: 4. Verify what you mean

    static let tiny = """
    title: "Tiny"
    parameters:
      seed: 0
      per_class: {default: 2, min: 1}
    cells:
      - step: load_data
        id: test
        with: {dataset: mnist5k, split: test, per_class: $per_class, classes: [0, 1]}
    """

    func testVerifyRefusesOverridesUnlessAskedAndGoldensRecordTheirParameters() throws {
        let path = try write(Self.tiny, name: "tiny")
        let out = tmp.appendingPathComponent("run").path
        _ = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out), verify: true, updateGoldens: true)
        let golden = tmp.appendingPathComponent("golden/tiny/expected.json")
        var obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: golden)) as? [String: Any])
        XCTAssertEqual(obj["parameters"] as? [String: String], ["seed": "0", "per_class": "2"])
        XCTAssertEqual(obj["overrides"] as? [String], [])

        // A different setting is refused before anything runs, naming both settings.
        let t = errorText { try RecipeEngine.run(RunSettings(recipePath: path, overrides: ["per_class=3"], outDirectory: out),
                                                 verify: true, updateGoldens: false) }
        XCTAssertTrue(t.contains("were made with per_class=2 (recorded in expected.json), but this run has per_class=3 (from --set per_class=3)"), t)
        XCTAssertTrue(t.contains("--allow-overrides"), t)
        var insist = RunSettings(recipePath: path, overrides: ["per_class=3"], outDirectory: out)
        insist.allowOverrides = true
        let r = try RecipeEngine.run(insist, verify: true, updateGoldens: false)
        XCTAssertFalse(r.verificationPassed)
        // An override equal to the goldens' setting changes nothing and is accepted.
        XCTAssertTrue(try RecipeEngine.run(RunSettings(recipePath: path, overrides: ["per_class=2"], outDirectory: out),
                                           verify: true, updateGoldens: false).verificationPassed)

        // --update-goldens with overrides records them; the report says what the goldens were made with.
        _ = try RecipeEngine.run(RunSettings(recipePath: path, overrides: ["per_class=3"], outDirectory: out, seed: 4), verify: true, updateGoldens: true)
        obj = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: golden)) as? [String: Any])
        XCTAssertEqual(obj["overrides"] as? [String], ["per_class=3", "seed=4"])
        XCTAssertEqual(obj["parameters"] as? [String: String], ["seed": "4", "per_class": "3"])
        let v = try RecipeEngine.run(RunSettings(recipePath: path, overrides: ["per_class=3"], outDirectory: out, seed: 4), verify: true, updateGoldens: false)
        XCTAssertTrue(v.verificationPassed, v.summary)
        let md = try String(contentsOf: v.directory.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("Made with `--set per_class=3 --set seed=4`; parameters: per_class=3, seed=4."), md)
        // Goldens that record nothing were made with the recipe's defaults.
        obj["parameters"] = nil; obj["overrides"] = nil
        try JSONSerialization.data(withJSONObject: obj).write(to: golden)
        let d = errorText { try RecipeEngine.run(RunSettings(recipePath: path, overrides: ["per_class=3"], outDirectory: out),
                                                 verify: true, updateGoldens: false) }
        XCTAssertTrue(d.contains("were made with per_class=2 (the recipe's defaults)"), d)
    }

    func testFailedImageCheckShowsWhereTheImagesAreAndSideBySide() throws {
        let path = try write(Self.picture, name: "picture")
        let out = tmp.appendingPathComponent("run")
        _ = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path), verify: true, updateGoldens: true)
        let golden = tmp.appendingPathComponent("golden/picture/maps.png")
        var img = try PNG.read(golden)
        for i in 0..<img.pixels.count { img.pixels[i] = 255 - img.pixels[i] }
        try PNG.write(img, to: golden)
        let r = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path), verify: true, updateGoldens: false)
        print(r.summary)
        XCTAssertFalse(r.verificationPassed)
        XCTAssertTrue(r.summary.contains("expected \(golden.path), actual \(out.appendingPathComponent("maps.png").path), difference \(out.appendingPathComponent("diff-maps.png").path)"), r.summary)
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("diff-maps.png").path))
        let side = try PNG.read(out.appendingPathComponent("compare-maps.png"))
        XCTAssertEqual(side.width, 3 * img.width + 16)
        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("compare-maps.png") && md.contains("golden (left), this run (middle)"), md)

        // A golden of another size says so.
        try PNG.write(RGBImage(width: img.width / 2, height: img.height / 2, fill: RGB(0, 0, 0)), to: golden)
        let s = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path), verify: true, updateGoldens: false)
        XCTAssertTrue(s.summary.contains("golden mismatch: maps.png: measured this run at \(img.width)x\(img.height), expected golden made at \(img.width / 2)x\(img.height / 2)"), s.summary)
    }

    // MARK: 7. Small truths

    func testParameterCountsAreTorchvisions() {
        // sum(p.numel() for p in torchvision.models.<m>().parameters()): BatchNorm statistics are buffers.
        XCTAssertEqual(ImageNetModels.make(.resnet50).parameters.learnableCount, 25_557_032)
        XCTAssertEqual(ImageNetModels.make(.densenet121).parameters.learnableCount, 7_978_856)
        XCTAssertEqual(ImageNetModels.make(.vgg11BN).parameters.learnableCount, 132_868_840)
    }

    func testMarkdownErrorCarriesItsLine() throws {
        let path = try write("""
        title: x
        parameters: {n: 1}
        cells:
          - markdown: "fine ${n}"
          - markdown: |
              first line
              second line with ${nn}
        """, name: "prose")
        let t = errorText { try RecipeEngine.resolvedDescription(RunSettings(recipePath: path)) }
        XCTAssertEqual(t, "\(path):7: cell 2 (markdown): markdown refers to unknown parameter '${nn}'; did you mean '${n}'?")
    }

    func testMissingImageListsEachPathOnce() throws {
        let here = FileManager.default.currentDirectoryPath
        FileManager.default.changeCurrentDirectoryPath(Self.root.path)
        defer { FileManager.default.changeCurrentDirectoryPath(here) }
        let t = errorText { try ImageStore(allowDownload: false).resolve(ImageSource(name: "gone", label: 1, file: "data/images/gone.png")) }
        let p = Self.root.appendingPathComponent("data/images/gone.png").path
        XCTAssertEqual(t, "image 'gone': file data/images/gone.png is in none of: \(p)")
    }

    func testDuplicateMethodLabelsAreAnError() throws {
        let path = try write(Self.picture.replacingOccurrences(of: "methods: [gradient]",
                                                               with: "methods: [gradient, {method: excitation_pullback, label: gradient}]"), name: "dup")
        let t = errorText { try RecipeEngine.resolvedDescription(RunSettings(recipePath: path)) }
        XCTAssertTrue(t.contains("two methods are labelled 'gradient' (the first at line 16)"), t)
    }

    func testFailedRunLeavesNoEmptyRunDirectory() throws {
        let path = try write(Self.tiny.replacingOccurrences(of: "per_class: $per_class", with: "per_class: 100000"), name: "fails")
        let out = tmp.appendingPathComponent("runs/fails")
        let t = errorText { try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path), verify: false, updateGoldens: false) }
        XCTAssertTrue(t.contains("step 'test' (load_data) failed"), t)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "a failed run left \(out.path)")
        // A directory that existed before is left alone.
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        _ = errorText { try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path), verify: false, updateGoldens: false) }
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.path))
    }

    func testUnknownOptionIsNamed() throws {
        let r = try runner(["--bogus"])
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.lowercased().contains("unknown option '--bogus'"), r.stderr)
    }

    // MARK: 6. Readable figures

    func testLongColumnTitlesWrapInsteadOfBeingCut() throws {
        XCTAssertEqual(BitmapFont.wrapped("cassette player", maxWidth: 130, scale: 2), ["cassette", "player"])
        XCTAssertEqual(BitmapFont.wrapped("tench", maxWidth: 130, scale: 2), ["tench"])
        let cell = Tensor(shape: [1, 8, 8], repeating: 0.5)
        var grid = ImageGrid(cells: [[cell, cell]], columnTitles: ["tench", "cassette player"])
        grid.upscale = 16                                  // 128-pixel cells, as fig1-6 at ci scale
        var short = grid; short.columnTitles = ["tench", "church"]
        XCTAssertEqual(try short.layout().columnTitleLines, 1)
        XCTAssertEqual(try grid.layout().columnTitleLines, 2)
        XCTAssertGreaterThan(try grid.layout().columnTitleBand, try short.layout().columnTitleBand)
        let drawn = try grid.render()
        XCTAssertEqual(drawn.height, try grid.layout().height)
    }

    func testSignedMapsGetAColourBarAndGridsCanShareAScale() throws {
        let a = Tensor(shape: [1, 4, 4], scalars: (0..<16).map { Float($0) - 8 })
        let b = Tensor(shape: [1, 4, 4], scalars: (0..<16).map { (Float($0) - 8) / 10 })
        var grid = ImageGrid(cells: [[a, b]])
        grid.colormap = .divergingBlueWhiteRed
        grid.upscale = 8
        let withBar = try grid.layout()
        XCTAssertGreaterThan(withBar.colourBarBand, 0)
        XCTAssertEqual(withBar.height, withBar.gridHeight + withBar.colourBarBand)
        let img = try grid.render()
        // The bar runs from blue (left) through white to red (right).
        let y = withBar.gridHeight + 3 * grid.fontScale + 2
        let left = img[withBar.rowTitleBand + grid.padding, y], right = img[withBar.rowTitleBand + withBar.gridWidth - grid.padding - 1, y]
        XCTAssertEqual([left.r, left.g, left.b], [0, 0, 255])
        XCTAssertEqual([right.r, right.g, right.b], [255, 0, 0])
        // Per cell, the weak map is as saturated as the strong one; on a shared (row or grid) scale it is paler.
        let perCell = try grid.normalizedCells()
        grid.scaling = .perRow
        let perRow = try grid.normalizedCells()
        grid.scaling = .grid
        let whole = try grid.normalizedCells()
        XCTAssertEqual(perCell[0][1]!.scalars[0], perCell[0][0]!.scalars[0], accuracy: 1e-6)
        XCTAssertGreaterThan(perRow[0][1]!.scalars[16], 0.85)              // green of a pale blue
        XCTAssertEqual(perRow[0][1]!.scalars, whole[0][1]!.scalars)
    }

    func testFigureRecipesUseSharedScalingForSweepsAndProseComesFromTheRun() throws {
        for fig in ["fig5", "fig6"] {
            let text = try String(contentsOfFile: recipe(fig), encoding: .utf8)
            XCTAssertTrue(text.contains("scaling: $scaling"), fig)
            XCTAssertFalse(text.contains("second grid"), fig)
        }
        let r = try RecipeEngine.run(RunSettings(recipePath: recipe("fig3"), outDirectory: tmp.appendingPathComponent("fig3").path),
                                     verify: false, updateGoldens: false)
        let md = try String(contentsOf: r.directory.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertFalse(md.contains("five images are pushed") || md.contains("six target classes"), md)
        XCTAssertTrue(md.contains("toward the target classes 0, 482, 497"), md)
    }

    func testProseNumbersComeFromTheRunsMetrics() throws {
        let path = try write(Self.tiny + """

          - markdown: "Loaded ${= test.count | %d} images, ${= test.count / 4 | %.1f} per quarter."
        """, name: "numbers")
        let r = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: tmp.appendingPathComponent("n").path), verify: false, updateGoldens: false)
        let md = try String(contentsOf: r.directory.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("Loaded 4 images, 1.0 per quarter."), md)
        let bad = try write(Self.tiny + "\n  - markdown: \"${= test.count | %s}\"\n", name: "badformat")
        let t = errorText { try RecipeEngine.resolvedDescription(RunSettings(recipePath: bad)) }
        XCTAssertTrue(t.contains("format '%s' is not one of"), t)
        let missing = try write(Self.tiny + "\n  - markdown: \"${= nope.metric}\"\n", name: "missing")
        let m = errorText { try RecipeEngine.run(RunSettings(recipePath: missing, outDirectory: self.tmp.appendingPathComponent("m").path), verify: false, updateGoldens: false) }
        XCTAssertTrue(m.contains("missing.yaml:9: cell 2 (markdown)") && m.contains("nope.metric"), m)
    }
}
