import XCTest
import Foundation
import SIMDCore
import Recipes

/// The README's main job: the offline default recipe runs from a fresh checkout and verifies
/// against golden/mnist-pullbacks/ (engine-generated goldens: they guard against change).
final class OfflineRecipeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func testOfflineRecipeRunsAndVerifies() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("offline-\(getpid())")
        defer { try? FileManager.default.removeItem(at: out) }
        let settings = RunSettings(recipePath: Self.root.appendingPathComponent("recipes/mnist-pullbacks.yaml").path,
                                   outDirectory: out.path, quiet: true)
        let result = try RecipeEngine.run(settings, verify: true, updateGoldens: false)
        print(result.summary)
        XCTAssertTrue(result.verificationPassed, result.summary)
        for f in ["report.html", "report.md", "manifest.json", "metrics.json", "maps.png", "pga_pullback.png", "pga_gradient.png", "cnn-accuracy.svg"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent(f).path), "missing \(f)")
        }
        // The report is self-contained: images inlined, no relative links left in <img>.
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("data:image/png;base64,"))
        XCTAssertTrue(html.contains("<svg"))

        // A second run with nothing changed reuses the trained models from the step cache.
        let again = try RecipeEngine.run(settings, verify: true, updateGoldens: false)
        XCTAssertTrue(again.verificationPassed)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
        let steps = manifest["steps"] as! [[String: Any]]
        XCTAssertEqual(steps.first { $0["id"] as? String == "cnn" }?["cached"] as? Bool, true)
    }
}
