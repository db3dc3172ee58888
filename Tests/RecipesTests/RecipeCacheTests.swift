import XCTest
import Foundation
import Recipes

/// The step cache is honest: a cached step recomputes when a file it depends on or the code
/// changes, and is reused when nothing did. A run directory holds one run's artifacts: files of an
/// earlier run with other settings do not linger beside the new report.
final class RecipeCacheTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func write(_ text: String, name: String) throws -> String {
        let url = tmp.appendingPathComponent("recipes/\(name).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func json(_ url: URL) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any], url.path)
    }

    /// Runs `path` into tmp/run and returns the manifest entry of step `id`.
    func run(_ path: String, step id: String, code: String = "code-1", overrides: [String] = []) throws -> [String: Any] {
        let s = RunSettings(recipePath: path, overrides: overrides, outDirectory: tmp.appendingPathComponent("run").path,
                            quiet: true, codeFingerprint: code)
        let r = try RecipeEngine.run(s, verify: false, updateGoldens: false)
        let steps = try XCTUnwrap(try json(r.directory.appendingPathComponent("manifest.json"))["steps"] as? [[String: Any]])
        return try XCTUnwrap(steps.first { $0["id"] as? String == id }, "\(steps)")
    }

    /// Two image files the test controls, a small FC net trained on them (cached).
    func imageRecipe() throws -> (path: String, image: URL) {
        let image = tmp.appendingPathComponent("a.png")
        try FileManager.default.copyItem(at: Self.repo.appendingPathComponent("data/images/camera.png"), to: image)
        let path = try write("""
        title: "Cached training on image files"
        parameters: {seed: 0}
        cells:
          - step: load_images
            id: pics
            with: {size: 8, files: [{file: \(image.path), label: 0}, {file: \(Self.repo.path)/data/images/chelsea.png, label: 1}]}
          - step: train
            id: net
            with: {model: {architecture: fc, width: 4, depth: 2}, train: pics, test: pics, epochs: 1, batch_size: 2}
        """, name: "images")
        return (path, image)
    }

    // MARK: Inputs

    func testChangedInputFileRecomputesTheStepsThatUseIt() throws {
        let (path, image) = try imageRecipe()
        let first = try run(path, step: "net")
        XCTAssertEqual(first["cached"] as? Bool, false)
        let again = try run(path, step: "net")
        XCTAssertEqual(again["cached"] as? Bool, true, "nothing changed: the cached model is used")
        XCTAssertEqual(again["hash"] as? String, first["hash"] as? String)

        // Same path, same recipe, other pixels: the training data changed, so the model must too.
        try FileManager.default.removeItem(at: image)
        try FileManager.default.copyItem(at: Self.repo.appendingPathComponent("data/images/chelsea.png"), to: image)
        let changed = try run(path, step: "net")
        XCTAssertEqual(changed["cached"] as? Bool, false, "a changed data file must not reuse the stale checkpoint")
        XCTAssertNotEqual(changed["hash"] as? String, first["hash"] as? String)
        XCTAssertEqual(try run(path, step: "net")["cached"] as? Bool, true)

        // The manifest names the file with its new content.
        let m = try json(tmp.appendingPathComponent("run/manifest.json"))
        let inputs = try XCTUnwrap(m["inputs"] as? [[String: String]])
        XCTAssertEqual(inputs.first { $0["path"] == image.path }?["sha256"], try SHA256.hexDigest(ofFile: image))
    }

    // MARK: Code

    func testChangedCodeFingerprintRecomputes() throws {
        let (path, _) = try imageRecipe()
        let a = try run(path, step: "net", code: "build-A")
        XCTAssertEqual(a["cached"] as? Bool, false)
        XCTAssertEqual(try run(path, step: "net", code: "build-A")["cached"] as? Bool, true)
        let b = try run(path, step: "net", code: "build-B")
        XCTAssertEqual(b["cached"] as? Bool, false, "other code: the step recomputes")
        XCTAssertNotEqual(b["hash"] as? String, a["hash"] as? String)
        XCTAssertEqual(try json(tmp.appendingPathComponent("run/manifest.json"))["code"] as? String, "build-B")
    }

    func testTheDefaultFingerprintIsTheExecutablesHash() throws {
        let f = CodeFingerprint.executable
        XCTAssertTrue(f.hasPrefix("sha256:"), f)
        XCTAssertEqual(f.count, 7 + 64, f)
        XCTAssertEqual(f, "sha256:" + (try SHA256.hexDigest(ofFile: URL(fileURLWithPath: "/proc/self/exe"))))
    }

    // MARK: The run directory

    func testStaleArtifactsOfAnEarlierRunAreRemoved() throws {
        let path = try write("""
        title: "Artifacts named by a parameter"
        parameters: {seed: 0, name: first, metric: test.count}
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test, per_class: 1, classes: [3]}
          - step: table
            id: counts
            with: {csv: "${name}.csv", rows: [{label: images, metric: $metric}]}
        """, name: "named")
        let out = tmp.appendingPathComponent("run")
        _ = try run(path, step: "counts")
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("first.csv").path))
        let listed = try XCTUnwrap(try json(out.appendingPathComponent("manifest.json"))["artifacts"] as? [String])
        XCTAssertTrue(listed.contains("first.csv") && listed.contains("report.html") && listed.contains("manifest.json"), "\(listed)")
        // A file the runner did not write is never touched.
        try Data("mine".utf8).write(to: out.appendingPathComponent("notes.txt"))

        _ = try run(path, step: "counts", overrides: ["name=second"])
        let names = try FileManager.default.contentsOfDirectory(atPath: out.path).sorted()
        XCTAssertTrue(names.contains("second.csv"), "\(names)")
        XCTAssertFalse(names.contains("first.csv"), "the earlier run's table lingers beside the new report: \(names)")
        XCTAssertTrue(names.contains("notes.txt"), "\(names)")
        XCTAssertEqual(names.filter { $0.hasPrefix(".") }, [], "no staging directory left behind")

        // A run that fails leaves the previous run whole, and no staging directory.
        let report = try Data(contentsOf: out.appendingPathComponent("report.md"))
        XCTAssertThrowsError(try run(path, step: "counts", overrides: ["name=third", "metric=nothing.recorded"]))
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("report.md")), report)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.appendingPathComponent("third.csv").path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out.path).filter { $0.hasPrefix(".") }, [])
    }
}
