// Paper A's figure recipes (recipes/fig1…fig6.yaml): they validate at both scales, run offline at
// ci scale, and the image / weight fetching fails with errors that say what to do.
import Foundation
import XCTest
import Recipes
import SIMDCore

final class FigureRecipeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let figures = (1...6).map { "fig\($0)" }

    func recipe(_ name: String) -> String { Self.root.appendingPathComponent("recipes/\(name).yaml").path }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("figtests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    /// Sets environment variables for the duration of `body` (tests run serially).

    // MARK: Validation

    func testEveryFigureRecipeValidatesAtBothScales() throws {
        for fig in Self.figures {
            for scale in ["paper", "ci"] {
                let r = try RecipeEngine.run(RunSettings(recipePath: recipe(fig), overrides: ["scale=\(scale)"], dryRun: true),
                                             verify: false, updateGoldens: false)
                XCTAssertTrue(r.summary.contains("dry run"), "\(fig) \(scale)")
                XCTAssertTrue(r.summary.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "scale = \(scale)" }, r.summary)
                // The paper scale uses real weights and paper A's images; ci is synthetic and shipped.
                XCTAssertTrue(r.summary.contains(scale == "paper" ? "weights: torchvision" : "weights: synthetic"), "\(fig) \(scale): \(r.summary)")
                XCTAssertTrue(r.summary.contains(scale == "paper" ? "use: paper" : "use: shipped"), "\(fig) \(scale)")
            }
        }
    }

    /// The recipes carry paper A's example images by full SHA-256; each must extend the prefix paper A's repository publishes.
    func testExampleImageHashesMatchSpecPrefixes() throws {
        let prefixes = ["0_tench.jpg": "ecb4d4f2", "2_cassette_player.jpg": "9c8e0cab", "4_church.jpg": "2249a80e",
                        "6_garbage_truck.jpg": "1e6772d0", "8_golf_ball.jpg": "19c430b4"]
        for fig in Self.figures {
            let text = try String(contentsOfFile: recipe(fig), encoding: .utf8)
            for (file, prefix) in prefixes {
                guard let line = text.split(separator: "\n").first(where: { $0.contains("/examples/\(file)") }) else {
                    XCTFail("\(fig) does not list \(file)"); continue
                }
                guard let r = line.range(of: "sha256: ") else { XCTFail("\(fig) \(file): no sha256"); continue }
                let hash = String(line[r.upperBound...].prefix(64))
                XCTAssertEqual(hash.count, 64)
                XCTAssertTrue(hash.hasPrefix(prefix), "\(fig) \(file): \(hash) vs the published prefix \(prefix)")
            }
        }
    }

    func testImageNetClassNames() throws {
        let names = try ImageNetClasses.names()
        XCTAssertEqual(names.count, 1000)
        XCTAssertEqual([0, 9, 482, 497, 569, 574, 281, 657].map { names[$0] },
                       ["tench", "ostrich", "cassette player", "church", "garbage truck", "golf ball", "tabby", "missile"])
    }

    // MARK: CI scale runs offline

    func testEveryFigureRunsAtCIScaleOffline() throws {
        let expected: [String: [String]] = [
            "fig1": ["pga.png", "pga_perturbed.png"], "fig2": ["pga.png", "pga_perturbed.png"], "fig3": ["pga.png", "pga_perturbed.png"],
            "fig4": ["pga_resnet.png", "pga_vgg.png", "pga_densenet.png"],
            "fig5": ["pga_steps_short.png", "pga_steps.png", "pga_steps_long.png"],
            "fig6": ["pga_t0.png", "pga_t_low.png", "pga_temperature.png", "pga_t_high.png"],
        ]
        let torch = try tempDir(), images = try tempDir()
        try withEnvironment(["EP_OFFLINE": "1", "TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path]) {
            for fig in Self.figures {
                let out = try tempDir()
                // Every figure's ci variant is verified against golden/<fig>/ (engine-generated goldens).
                let r = try RecipeEngine.run(RunSettings(recipePath: recipe(fig), overrides: ["scale=ci"], outDirectory: out.path),
                                             verify: true, updateGoldens: false)
                print(r.summary.split(separator: "\n").filter { $0.contains("golden") }.joined(separator: "\n"))
                XCTAssertTrue(r.verificationPassed, "\(fig): \(r.summary)")
                for file in expected[fig]! {
                    let img = try PNG.read(out.appendingPathComponent(file))
                    // 2 rows (chelsea, rocket) x 4 columns (clean + 3 targets) of 64x64 cells, upscaled 2x, plus titles.
                    XCTAssertGreaterThanOrEqual(img.width, 4 * 128, "\(fig)/\(file)")
                    XCTAssertGreaterThanOrEqual(img.height, 2 * 128, "\(fig)/\(file)")
                    XCTAssertLessThan(img.width, 4 * 128 + 300, "\(fig)/\(file)")
                    // Not blank: the cells vary.
                    XCTAssertGreaterThan(Set(img.pixels).count, 50, "\(fig)/\(file)")
                }
                let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
                XCTAssertTrue(report.contains("no meaningful pictures"), "\(fig): the report must say synthetic weights make no meaningful pictures")
                XCTAssertTrue(r.summary.contains("success_rate"), r.summary)
            }
        }
    }

    // MARK: Paper scale without weights

    func testPaperScaleWithoutWeightsSaysWhatToDownload() throws {
        let torch = try tempDir(), images = try tempDir(), out = try tempDir()
        try withEnvironment(["EP_OFFLINE": "1", "TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path]) {
            for (fig, file) in [("fig1", "resnet50-0676ba61.pth"), ("fig2", "vgg11_bn-6002323d.pth"), ("fig3", "densenet121-a639ec97.pth")] {
                XCTAssertThrowsError(try RecipeEngine.run(RunSettings(recipePath: recipe(fig), overrides: ["scale=paper"], outDirectory: out.path), verify: false, updateGoldens: false)) { e in
                    let msg = "\(e)"
                    XCTAssertTrue(msg.contains("downloads are disabled"), msg)
                    XCTAssertTrue(msg.contains("https://download.pytorch.org/models/\(file)"), msg)
                    XCTAssertTrue(msg.contains(torch.appendingPathComponent("hub/checkpoints/\(file)").path), msg)
                }
            }
        }
    }

    func testOfflineSwitch() {
        XCTAssertTrue(downloadsDisabled(["EP_OFFLINE": "1"]))
        XCTAssertTrue(downloadsDisabled(["EP_OFFLINE": "yes"]))
        XCTAssertFalse(downloadsDisabled(["EP_OFFLINE": "0"]))
        XCTAssertFalse(downloadsDisabled([:]))
        XCTAssertFalse(ImageStore(environment: ["EP_OFFLINE": "1", "HOME": "/h"]).allowDownload)
        XCTAssertEqual(ImageStore(environment: ["HOME": "/h"]).cacheDirectory.path, "/h/.cache/excitation-pullbacks/images")
        XCTAssertEqual(ImageStore(environment: ["EP_IMAGE_DIR": "/x/imgs"]).cacheDirectory.path, "/x/imgs")
    }

    // MARK: load_images: checksums, cache, offline instructions (file:// URLs)

    /// A "remote" copy of the shipped chelsea.png in a temp dir, and an empty cache.
    func remoteImage() throws -> (source: URL, cache: URL, sha: String) {
        let remote = try tempDir(), cache = try tempDir()
        let src = remote.appendingPathComponent("cat.png")
        try FileManager.default.copyItem(at: Self.root.appendingPathComponent("data/images/chelsea.png"), to: src)
        return (src, cache, try SHA256.hexDigest(ofFile: src))
    }

    func testImageStoreDownloadsVerifiesAndCaches() throws {
        let (src, cache, sha) = try remoteImage()
        XCTAssertEqual(sha, "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb")
        let store = ImageStore(cacheDirectory: cache, allowDownload: true)
        let item = ImageSource(name: "cat", label: 281, url: src, sha256: sha)
        let got = try store.resolve(item)
        XCTAssertEqual(got.path, cache.appendingPathComponent("cat.png").path)
        XCTAssertEqual(try SHA256.hexDigest(ofFile: got), sha)
        // Cached: the source may go away; offline still resolves.
        try FileManager.default.removeItem(at: src)
        XCTAssertEqual(try ImageStore(cacheDirectory: cache, allowDownload: false).resolve(item).path, got.path)
    }

    func testImageStoreWrongHashNamesExpectedAndActual() throws {
        let (src, cache, sha) = try remoteImage()
        let wrong = String(repeating: "0", count: 64)
        let store = ImageStore(cacheDirectory: cache, allowDownload: true)
        XCTAssertThrowsError(try store.resolve(ImageSource(name: "cat", label: 281, url: src, sha256: wrong))) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains("expected SHA-256 \(wrong)"), msg)
            XCTAssertTrue(msg.contains("got \(sha)"), msg)
            XCTAssertTrue(msg.contains("not kept"), msg)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.appendingPathComponent("cat.png").path), "a bad download must not be kept")
        // A corrupted cached copy is caught too.
        try Data("not a png".utf8).write(to: cache.appendingPathComponent("cat.png"))
        XCTAssertThrowsError(try store.resolve(ImageSource(name: "cat", label: 281, url: src, sha256: sha))) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains("expected SHA-256 \(sha)") && msg.contains("Delete it"), msg)
        }
        // Local files are checked as well.
        XCTAssertThrowsError(try store.resolve(ImageSource(name: "cat", label: 281, file: src.path, sha256: wrong))) { e in
            XCTAssertTrue("\(e)".contains("expected SHA-256 \(wrong), got \(sha)"), "\(e)")
        }
    }

    func testImageStoreOfflineMissingGivesInstructions() throws {
        let (src, cache, sha) = try remoteImage()
        let store = ImageStore(cacheDirectory: cache, allowDownload: false)
        XCTAssertThrowsError(try store.resolve(ImageSource(name: "cat", label: 281, url: src, sha256: sha))) { e in
            let msg = "\(e)"
            XCTAssertTrue(msg.contains("downloads are disabled"), msg)
            XCTAssertTrue(msg.contains("Download \(src.absoluteString)"), msg)
            XCTAssertTrue(msg.contains("put it at \(cache.appendingPathComponent("cat.png").path)"), msg)
            XCTAssertTrue(msg.contains(sha), msg)
        }
        // A failing "download" (source missing) also ends in the instructions, nothing kept.
        try FileManager.default.removeItem(at: src)
        XCTAssertThrowsError(try ImageStore(cacheDirectory: cache, allowDownload: true).resolve(ImageSource(name: "cat", label: 281, url: src, sha256: sha))) { e in
            XCTAssertTrue("\(e)".contains("Download \(src.absoluteString) and put it at"), "\(e)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: cache.path), [])
    }

    /// The same paths through the step and the engine: a recipe with file:// URLs in a temp dir.
    func testLoadImagesStepChecksumAndOffline() throws {
        let (src, cache, sha) = try remoteImage()
        let dir = try tempDir()
        func write(_ hash: String) throws -> String {
            let url = dir.appendingPathComponent("imgs.yaml")
            try """
            title: "load_images test"
            cells:
              - step: load_images
                id: imgs
                with:
                  size: 32
                  files:
                    - {name: cat, label: 281, url: "\(src.absoluteString)", sha256: \(hash)}
                    - {name: rocket, label: 657, file: data/images/rocket.jpg}
            """.write(to: url, atomically: true, encoding: .utf8)
            return url.path
        }
        let out = try tempDir()
        let wrong = String(repeating: "a", count: 64)
        try withEnvironment(["EP_IMAGE_DIR": cache.path, "EP_OFFLINE": "0"]) {
            XCTAssertThrowsError(try RecipeEngine.run(RunSettings(recipePath: try write(wrong), outDirectory: out.path), verify: false, updateGoldens: false)) { e in
                let msg = "\(e)"
                XCTAssertTrue(msg.contains("load_images") && msg.contains("expected SHA-256 \(wrong), got \(sha)"), msg)
            }
            let r = try RecipeEngine.run(RunSettings(recipePath: try write(sha), outDirectory: out.path), verify: false, updateGoldens: false)
            XCTAssertTrue(r.summary.contains("metric imgs.count = 2"), r.summary)
            let manifest = try String(contentsOf: out.appendingPathComponent("manifest.json"), encoding: .utf8)
            XCTAssertTrue(manifest.contains(sha), "the manifest records the image and its SHA-256")
        }
        try FileManager.default.removeItem(at: cache.appendingPathComponent("cat.png"))
        try withEnvironment(["EP_IMAGE_DIR": cache.path, "EP_OFFLINE": "1"]) {
            XCTAssertThrowsError(try RecipeEngine.run(RunSettings(recipePath: try write(sha), outDirectory: out.path), verify: false, updateGoldens: false)) { e in
                let msg = "\(e)"
                // Checked before any step runs: what to download, and where to put it.
                XCTAssertTrue(msg.contains("download \(src.absoluteString)\n      to \(cache.appendingPathComponent("cat.png").path)"), msg)
            }
        }
    }

    func testLoadImagesPreprocessesAsPaperA() throws {
        // The shipped chelsea.png through the step's loader equals ImagePreprocessing.paperA at 224.
        var used: [URL] = []
        let d = try ImageStore(cacheDirectory: try tempDir(), allowDownload: false)
            .dataset([ImageSource(name: "cat", label: 281, file: "data/images/chelsea.png")], size: 224) { used.append($0) }
        let want = try ImagePreprocessing.paperATensor(contentsOf: Self.root.appendingPathComponent("data/images/chelsea.png"))
        XCTAssertEqual(d.images.shape, [1, 3, 224, 224])
        XCTAssertEqual(d.images.scalars, want.scalars)
        XCTAssertEqual(d.classNames[281], "tabby")
        XCTAssertEqual(used.map(\.lastPathComponent), ["chelsea.png"])
        XCTAssertEqual(ImageStore.resizeSide(224), 256)
        XCTAssertEqual(ImageStore.resizeSide(64), 73)
    }

    /// Bad step configs are errors at load time (dry run), naming the problem.
    func testLoadImagesAndModelConfigErrors() throws {
        let dir = try tempDir()
        func fails(_ kind: String, _ with: String, _ needle: String, file: StaticString = #filePath, line: UInt = #line) {
            let url = dir.appendingPathComponent("bad.yaml")
            let body = with.split(separator: "\n").map { "      " + $0 }.joined(separator: "\n")
            try? "title: t\ncells:\n  - step: \(kind)\n    with:\n\(body)\n".write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try RecipeEngine.run(RunSettings(recipePath: url.path, dryRun: true), verify: false, updateGoldens: false),
                                 file: file, line: line) { e in
                XCTAssertTrue("\(e)".contains(needle), "\(e)", file: file, line: line)
            }
        }
        fails("load_images", "files:\n  - {name: a, label: 1, url: \"https://x/a.jpg\"}", "needs its `sha256:`")
        fails("load_images", "files:\n  - {name: a, label: 1000, file: a.jpg}", "0…999")
        fails("load_images", "files:\n  - {name: a, label: 1, file: a.jpg, url: \"https://x/a.jpg\"}", "exactly one of")
        fails("load_images", "use: papr\nsets: {paper: [{label: 1, file: a.jpg}]}", "did you mean 'paper'")
        fails("load_images", "files:\n  - {label: 1, file: a.jpg, sha256: abc}", "64 hex digits")
        fails("load_model", "architecture: resnet5\nweights: synthetic", "did you mean 'resnet50'")
        fails("load_model", "architecture: resnet50\nweights: imagenet", "torchvision, timm, synthetic")
        fails("load_model", "architecture: resnet50\nweights: torchvision\nseed: 3", "synthetic weights only")
        fails("ascend", "model: m\ndata: d\ntargets: \"0, x\"\nmethod: gradient", "comma-separated")
    }
}

// MARK: - fig1 at ci scale against its engine-generated goldens (golden/fig1/)
