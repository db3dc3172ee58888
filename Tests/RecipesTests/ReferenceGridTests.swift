// Paper-scale verification against published grids (`reference_grids` of an ascend step), offline:
// the dry run of fig1–fig5 at scale paper names every authors' grid with URL, destination and
// SHA-256 and says what is compared; the comparison finds a grid inside a saved figure (title band,
// resampled, JPEG noise, per-cell rescaling) and passes it, fails another grid and draws the worst
// cells; a run verified at scale paper compares and fails as stated; malformed declarations are
// errors at file:line:column.
import Foundation
import XCTest
import Recipes
import SIMDCore

final class ReferenceGridTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/Fixtures/grids")
    static let commit = "https://raw.githubusercontent.com/314-Foundation/ExcitationPullbacks/e2831e32bb97be82c085eabcdbd89175c110f7ec/media/"
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("reference-grids-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        if let tmp { try? FileManager.default.removeItem(at: tmp) }
    }

    // MARK: Helpers

    func recipe(_ name: String) -> String { Self.root.appendingPathComponent("recipes/\(name).yaml").path }

    func dir(_ name: String) throws -> URL {
        let d = tmp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// A figure as the authors' `plot_example_grid` saves one: `grid` resampled (bilinear) by
    /// `scale` below a band of dark title marks on white, as a PNG at `url`.
    func saveFigure(_ grid: RGBImage, scale: Double, to url: URL) throws -> (left: Int, top: Int) {
        let w = Int((Double(grid.width) * scale).rounded()), h = Int((Double(grid.height) * scale).rounded())
        let band = 17
        var fig = RGBImage(width: w, height: h + band, fill: .white)
        for k in 0..<5 { fig.fillRect(x: w / 20 + k * w / 5, y: 4, width: w / 10, height: 9, color: RGB(20, 20, 20)) }   // "titles"
        for y in 0..<h {
            let v = min(max((Double(y) + 0.5) / scale - 0.5, 0), Double(grid.height - 1))
            let y0 = Int(v), y1 = min(y0 + 1, grid.height - 1), wy = v - Double(y0)
            for x in 0..<w {
                let u = min(max((Double(x) + 0.5) / scale - 0.5, 0), Double(grid.width - 1))
                let x0 = Int(u), x1 = min(x0 + 1, grid.width - 1), wx = u - Double(x0)
                for c in 0..<3 {
                    let p = { (xx: Int, yy: Int) in Double(grid.pixels[(yy * grid.width + xx) * 3 + c]) }
                    let value = (p(x0, y0) * (1 - wx) + p(x1, y0) * wx) * (1 - wy) + (p(x0, y1) * (1 - wx) + p(x1, y1) * wx) * wy
                    fig.pixels[((y + band) * w + x) * 3 + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        try PNG.write(fig, to: url)
        return (0, band)
    }

    /// Each cell of `grid` turned by 180 degrees: the same pictures, in other places.
    func turned(_ grid: RGBImage, _ layout: GridLayout) -> RGBImage {
        var out = grid
        for r in 0..<layout.rows {
            for c in 0..<layout.columns {
                let (x0, y0) = layout.origin(row: r, column: c)
                for y in 0..<layout.cell {
                    for x in 0..<layout.cell {
                        for ch in 0..<3 {
                            out.pixels[((y0 + y) * grid.width + x0 + x) * 3 + ch] =
                                grid.pixels[((y0 + layout.cell - 1 - y) * grid.width + x0 + layout.cell - 1 - x) * 3 + ch]
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: 1. The dry run states what is compared and which files are needed

    func testDryRunOfFig1AtPaperScaleListsTheAuthorsGridsWithURLAndSHA256() throws {
        let torch = try dir("torch"), images = try dir("images")
        try withEnvironment(["TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path, "EP_OFFLINE": "0"]) {
            let r = try RecipeEngine.run(RunSettings(recipePath: recipe("fig1"), overrides: ["scale=paper"], dryRun: true),
                                         verify: true, updateGoldens: false)
            print(r.summary)
            XCTAssertTrue(r.summary.contains("files (7, 7 missing"), r.summary)
            let sha = "b238a4af47f8c3ab156a00f50669e2b39cb01ee4dab1bee76cbefbe8288d8cdb"
            let dest = images.appendingPathComponent("pullback_diff-resnet50_alpha_20_steps_5.jpg").path
            XCTAssertTrue(r.summary.contains("MISSING reference grid pullback_diff/resnet50_alpha_20_steps_5.jpg (compared with pga.png): \(Self.commit)pullback_diff/resnet50_alpha_20_steps_5.jpg → \(dest) (SHA-256 \(sha))"), r.summary)
            XCTAssertTrue(r.summary.contains("  pga.png (step 'pga', difference grid) with pullback_diff/resnet50_alpha_20_steps_5.jpg (SHA-256 \(sha.prefix(12))…): every cell's Pearson correlation ≥ 0.75; the worst cells side by side in worst-cells-pga.png"), r.summary)
            // The perturbed grids are not compared: they pass even for a network with random weights.
            XCTAssertFalse(r.summary.contains("pullback/resnet50_alpha_20_steps_5.jpg"), r.summary)
            XCTAssertTrue(r.summary.contains("compare (1 grid with published ones, cell by cell; a grid below its threshold in any cell fails `runner verify`):"), r.summary)

            // The other figures: fig5 its three step counts, fig4 three models, fig6 nothing.
            let fig5 = try RecipeEngine.run(RunSettings(recipePath: recipe("fig5"), overrides: ["scale=paper"], dryRun: true), verify: true, updateGoldens: false)
            for (file, n) in [("pga_steps_short.png", 1), ("pga_steps.png", 5), ("pga_steps_long.png", 10)] {
                XCTAssertTrue(fig5.summary.contains("reference grid pullback_diff/resnet50_alpha_20_steps_\(n).jpg (compared with \(file))"), fig5.summary)
            }
            let fig4 = try RecipeEngine.run(RunSettings(recipePath: recipe("fig4"), overrides: ["scale=paper"], dryRun: true), verify: true, updateGoldens: false)
            for (step, model) in [("pga_resnet", "resnet50"), ("pga_vgg", "vgg11_bn"), ("pga_densenet", "densenet121")] {
                XCTAssertTrue(fig4.summary.contains("\(step).png (step '\(step)', difference grid) with vanilla_grad_diff/\(model)_alpha_20_steps_5.jpg"), fig4.summary)
            }
            let fig6 = try RecipeEngine.run(RunSettings(recipePath: recipe("fig6"), overrides: ["scale=paper"], dryRun: true), verify: true, updateGoldens: false)
            XCTAssertFalse(fig6.summary.contains("\ncompare"), fig6.summary)
            // At ci nothing is compared, and the dry run says so.
            let ci = try RecipeEngine.run(RunSettings(recipePath: recipe("fig1"), dryRun: true), verify: true, updateGoldens: false)
            XCTAssertTrue(ci.summary.contains("compare: no reference grids at these settings (the recipe declares them for paper"), ci.summary)
            XCTAssertFalse(ci.summary.contains("reference grid pullback"), ci.summary)
        }
    }

    func testOfflineVerifyAtPaperScaleNamesTheAuthorsGridsAndWhatItCompares() throws {
        let torch = try dir("torch"), images = try dir("images"), out = tmp.appendingPathComponent("run")
        try withEnvironment(["TORCH_HOME": torch.path, "EP_IMAGE_DIR": images.path, "EP_OFFLINE": "1"]) {
            let t = errorText { try RecipeEngine.run(RunSettings(recipePath: self.recipe("fig1"), overrides: ["scale=paper"], outDirectory: out.path),
                                                     verify: true, updateGoldens: false) }
            XCTAssertTrue(t.contains("downloads are disabled (EP_OFFLINE) and 7 files are missing; nothing was run"), t)
            XCTAssertTrue(t.contains("  reference grid pullback_diff/resnet50_alpha_20_steps_5.jpg (compared with pga.png): download \(Self.commit)pullback_diff/resnet50_alpha_20_steps_5.jpg (SHA-256 b238a4af47f8c3ab156a00f50669e2b39cb01ee4dab1bee76cbefbe8288d8cdb)"), t)
            XCTAssertTrue(t.contains("compare (1 grid with published ones"), t)
            XCTAssertFalse(t.contains("were made with"), "verify at paper scale is not refused for the ci goldens' parameters:\n\(t)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        }
    }

    // MARK: 2. The comparison

    func testAGridInASavedFigureIsFoundAndAJPEGOfARescaledCopyPassesWhileAnotherGridFails() throws {
        let layout = GridLayout(rows: 3, columns: 4, cell: 32)
        let ours = try ImageFile.read(Self.fixtures.appendingPathComponent("grid_a.png"))
        let jpeg = try ImageFile.read(Self.fixtures.appendingPathComponent("grid_a_q75.jpg"))      // per-cell rescaled, JPEG q75
        let other = try ImageFile.read(Self.fixtures.appendingPathComponent("grid_b.png"))
        let remote = try dir("remote"), cache = try dir("cache")
        let same = remote.appendingPathComponent("pullback_diff/resnet50_alpha_20_steps_5.png")
        let wrong = remote.appendingPathComponent("pullback/resnet50_alpha_20_steps_5.png")
        for u in [same, wrong] { try FileManager.default.createDirectory(at: u.deletingLastPathComponent(), withIntermediateDirectories: true) }
        let placed = try saveFigure(jpeg, scale: 0.99, to: same)
        _ = try saveFigure(other, scale: 0.99, to: wrong)

        // The frame is found below the title band.
        let figure = try ImageFile.read(same)
        let frame = try GridComparison.locate(in: figure)
        print("frame \(frame) in a \(figure.width)x\(figure.height) figure")
        XCTAssertEqual([frame.left, frame.top, frame.right, frame.bottom], [placed.left, placed.top, figure.width - 1, figure.height - 1])

        let store = ImageStore(cacheDirectory: cache, allowDownload: true)
        let good = ReferenceGrid(grid: .difference, url: same, sha256: try SHA256.hexDigest(ofFile: same))
        var read: [URL] = []
        let pass = try good.compare(ours, layout: layout, ourFile: "pga.png", store: store) { read.append($0) }
        print(pass.line)
        XCTAssertTrue(pass.passed, pass.line)
        XCTAssertGreaterThan(pass.result.minimum, 0.75)
        XCTAssertEqual(read.map(\.lastPathComponent), ["pullback_diff-resnet50_alpha_20_steps_5.png"], "cached under folder and name")
        XCTAssertTrue(pass.line.hasPrefix("reference grid pga.png vs pullback_diff/resnet50_alpha_20_steps_5.png: min cell correlation 0."), pass.line)
        XCTAssertTrue(pass.line.hasSuffix("0 of 12 cells below 0.75: passed"), pass.line)
        XCTAssertTrue(pass.check.passed)

        let bad = ReferenceGrid(grid: .perturbed, url: wrong, sha256: try SHA256.hexDigest(ofFile: wrong))
        let fail = try bad.compare(ours, layout: layout, ourFile: "pga_perturbed.png", store: store)
        print(fail.line)
        XCTAssertFalse(fail.passed)
        XCTAssertTrue(fail.line.hasSuffix("12 of 12 cells below 0.75: FAILED"), fail.line)
        XCTAssertFalse(fail.check.passed)
        XCTAssertEqual(fail.worstCellsFile, "worst-cells-pga_perturbed.png")
        XCTAssertEqual(fail.worstCells.width, 2 * 32 + 12)
        XCTAssertEqual(fail.worstCells.height, 5 * 36 + 4)
        XCTAssertTrue(fail.caption.contains("The 5 worst cells of pga_perturbed.png"), fail.caption)

        // A wrong checksum is refused, naming both.
        let tampered = ReferenceGrid(grid: .difference, url: same, sha256: String(repeating: "0", count: 64))
        let t = errorText { try tampered.compare(ours, layout: layout, ourFile: "pga.png", store: ImageStore(cacheDirectory: try self.dir("cache2"), allowDownload: true)) }
        XCTAssertTrue(t.contains("0000000000") && t.contains(good.sha256), t)
        // A grid of another shape is named as such.
        let s = errorText { try good.compare(ours, layout: GridLayout(rows: 5, columns: 7, cell: 32), ourFile: "pga.png", store: store) }
        XCTAssertTrue(s.contains("a 5x7 grid of 32-pixel cells with padding 2 is 240x172, other proportions"), s)
    }

    // MARK: 3. A run verified at the scale with reference grids

    /// A one-image ascent on synthetic weights with `reference_grids` for scale `paper`.
    func tinyRecipe(reference: URL?, sha: String?) -> String {
        let refs = reference.map { url in
            """

                  reference_grids:
                    use: $scale
                    paper:
                      difference: {url: "\(url.absoluteString)", sha256: \(sha!)}
            """
        } ?? ""
        return """
        title: "A grid against a published one"
        parameters:
          scale: {default: ci, choices: [ci, paper]}
        cells:
          - step: load_model
            id: net
            with: {architecture: resnet50, weights: synthetic}
          - step: load_images
            id: cat
            with:
              size: 32
              files: [{name: chelsea, label: 281, file: \(Self.root.appendingPathComponent("data/images/chelsea.png").path)}]
          - step: ascend
            id: pga
            with:
              model: net
              data: cat
              images: all
              targets: [0, 9]
              method: gradient
              steps: 1
              alpha: 2
              eps: 10
              upscale: 2\(refs)
        """
    }

    func testVerifyAtPaperScaleComparesWithTheReferenceGridAndFailsOnAnotherOne() throws {
        let images = try dir("images"), remote = try dir("remote/pullback_diff"), out = tmp.appendingPathComponent("run")
        let path = tmp.appendingPathComponent("recipes/tiny.yaml")
        try withEnvironment(["EP_IMAGE_DIR": images.path, "EP_OFFLINE": "0"]) {
            // This run's grid as make_grid lays it out, from the arrays the step writes.
            try tinyRecipe(reference: nil, sha: nil).write(to: path, atomically: true, encoding: .utf8)
            _ = try RecipeEngine.run(RunSettings(recipePath: path.path, outDirectory: out.path), verify: false, updateGoldens: false)
            let clean = try XCTUnwrap(try NPY.read(out.appendingPathComponent("pga/images.npy")).tensor)
            let diffs = try XCTUnwrap(try NPY.read(out.appendingPathComponent("pga/differences.npy")).tensor)
            let grid = try StepGrids.ascend(images: clean, cells: diffs, rowTitles: [], columnTitles: [], diverging: false, upscale: 1).render()
            let layout = GridLayout(rows: 1, columns: 3, cell: 32)
            XCTAssertEqual([grid.width, grid.height], [layout.width, layout.height])

            // The "published" grid: every cell rescaled on its own, inside a figure.
            var rescaled = grid
            for i in 0..<rescaled.pixels.count { rescaled.pixels[i] = UInt8(40 + Int(rescaled.pixels[i]) * 3 / 5) }
            for y in 0..<layout.height { for x in 0..<layout.width where x % 34 < 2 || y % 34 < 2 {
                for c in 0..<3 { rescaled.pixels[(y * layout.width + x) * 3 + c] = 0 }      // make_grid's black padding
            } }
            let published = remote.appendingPathComponent("resnet50_alpha_20_steps_1.png")
            _ = try saveFigure(rescaled, scale: 1, to: published)   // a figure with a title band, not resampled: exact cells
            try tinyRecipe(reference: published, sha: try SHA256.hexDigest(ofFile: published)).write(to: path, atomically: true, encoding: .utf8)

            // At ci the reference is not used (and the run has no goldens to verify: a plain run).
            let ci = try RecipeEngine.run(RunSettings(recipePath: path.path, outDirectory: out.path), verify: false, updateGoldens: false)
            XCTAssertFalse(ci.summary.contains("reference grid"), ci.summary)
            // At paper it is compared; no golden file exists, which verify states instead of refusing.
            let r = try RecipeEngine.run(RunSettings(recipePath: path.path, overrides: ["scale=paper"], outDirectory: out.path), verify: true, updateGoldens: false)
            print(r.summary)
            XCTAssertTrue(r.verificationPassed, r.summary)
            XCTAssertTrue(r.summary.contains("reference grid pga.png vs pullback_diff/resnet50_alpha_20_steps_1.png: min cell correlation"), r.summary)
            XCTAssertTrue(r.summary.contains("0 of 3 cells below 0.75: passed"), r.summary)
            XCTAssertTrue(r.summary.contains("golden: not compared: \(tmp.appendingPathComponent("golden/tiny/expected.json").path) does not exist; this run is verified against its 1 reference grid"), r.summary)
            XCTAssertTrue(r.summary.contains("metric pga.reference_difference.min_correlation = "), r.summary)
            XCTAssertTrue(r.summary.hasSuffix("verify: passed"), r.summary)
            XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("worst-cells-pga.png").path))
            let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            XCTAssertTrue(md.contains("worst-cells-pga.png") && md.contains("cell by cell") && md.contains("Goldens not compared"), md)

            // Fewer targets than the published grid shows (as `--set images=shipped` has fewer images
            // than the paper's figure): the run stands and says the grid was not compared; verify fails.
            let narrow = tinyRecipe(reference: published, sha: try SHA256.hexDigest(ofFile: published))
                .replacingOccurrences(of: "targets: [0, 9]", with: "targets: [0]")
            try narrow.write(to: path, atomically: true, encoding: .utf8)
            let n = try RecipeEngine.run(RunSettings(recipePath: path.path, overrides: ["scale=paper"], outDirectory: out.path), verify: false, updateGoldens: false)
            print(n.summary)
            XCTAssertTrue(n.summary.contains("reference grid pga.png vs pullback_diff/resnet50_alpha_20_steps_1.png: not compared: this run's grid is 1 images x 1 targets, the published one shows other images or targets"), n.summary)
            XCTAssertTrue(n.summary.contains("a 1x2 grid of 32-pixel cells with padding 2 is 70x36, other proportions"), n.summary)
            XCTAssertFalse(n.summary.contains("reference_difference"), "no correlation is recorded for a grid that was not compared: \(n.summary)")
            let nv = try RecipeEngine.run(RunSettings(recipePath: path.path, overrides: ["scale=paper"], outDirectory: out.path), verify: true, updateGoldens: false)
            XCTAssertFalse(nv.verificationPassed, nv.summary)
            XCTAssertTrue(nv.summary.contains("required claim does not hold: pga.png reproduces pullback_diff/resnet50_alpha_20_steps_1.png cell by cell (not compared: a grid of another shape)"), nv.summary)
            XCTAssertTrue(nv.summary.hasSuffix("verify: FAILED"), nv.summary)

            // Another grid of the same shape (each cell turned round) fails verify, with the worst cells drawn.
            let other = remote.appendingPathComponent("resnet50_alpha_20_steps_5.png")
            _ = try saveFigure(turned(rescaled, layout), scale: 1, to: other)
            try tinyRecipe(reference: other, sha: try SHA256.hexDigest(ofFile: other)).write(to: path, atomically: true, encoding: .utf8)
            let f = try RecipeEngine.run(RunSettings(recipePath: path.path, overrides: ["scale=paper"], outDirectory: out.path), verify: true, updateGoldens: false)
            print(f.summary)
            XCTAssertFalse(f.verificationPassed, f.summary)
            XCTAssertTrue(f.summary.contains("reference grid pga.png vs pullback_diff/resnet50_alpha_20_steps_5.png: min cell correlation") && f.summary.contains(": FAILED"), f.summary)
            XCTAssertTrue(f.summary.contains("required claim does not hold: pga.png reproduces pullback_diff/resnet50_alpha_20_steps_5.png cell by cell"), f.summary)
            XCTAssertTrue(f.summary.hasSuffix("verify: FAILED"), f.summary)
            let side = try PNG.read(out.appendingPathComponent("worst-cells-pga.png"))
            XCTAssertEqual([side.width, side.height], [2 * 32 + 12, 3 * 36 + 4])

            // Settings other than the scale's would compare a different experiment: refused unless asked.
            let refused = errorText { try RecipeEngine.run(RunSettings(recipePath: self.recipe("fig1"), overrides: ["scale=paper", "temperature=0.5"], outDirectory: out.path),
                                                           verify: true, updateGoldens: false) }
            XCTAssertTrue(refused.contains("the reference grids (pullback_diff/resnet50_alpha_20_steps_5.jpg) were made with the recipe's settings at scale=paper (temperature=0.3), but this run has temperature=0.5"), refused)
            XCTAssertTrue(refused.contains("--allow-overrides"), refused)
        }
    }

    // MARK: 4. Malformed declarations

    func declarationError(_ refs: String) throws -> (text: String, message: String) {
        let text = tinyRecipe(reference: nil, sha: nil) + "\n" + refs
        let path = tmp.appendingPathComponent("recipes/bad.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let message = errorText { try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: self.tmp.appendingPathComponent("run").path), verify: false, updateGoldens: false) }
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.appendingPathComponent("run").path), "validation must stop before the run directory")
        return (text, message)
    }

    /// "line:column" of the first occurrence of `token` (1-based).
    func position(of token: String, in text: String) -> String {
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let r = l.range(of: token) { return "\(i + 1):\(l.distance(from: l.startIndex, to: r.lowerBound) + 1)" }
        }
        return "?"
    }

    func testMalformedDeclarationsAreErrorsAtTheirPosition() throws {
        let good = "sha256: " + String(repeating: "ab", count: 32)
        let file = tmp.appendingPathComponent("recipes/bad.yaml").path
        // (declaration, where the error points, what it says)
        let cases: [(refs: String, token: String, says: String)] = [
            ("      reference_grids:\n        use: $scale\n        paper:\n          difference: {url: \"https://x/a/b.jpg\", sha256: abc123}",
             "abc123", "sha256 must be 64 hex digits, got 'abc123'"),
            ("      reference_grids:\n        use: $scale\n        paper:\n          diference: {url: \"https://x/a/b.jpg\", \(good)}",
             "diference", "unknown key 'diference'; did you mean 'difference'?"),
            ("      reference_grids:\n        use: $scale\n        papr:\n          difference: {url: \"https://x/a/b.jpg\", \(good)}",
             "papr", "reference_grids entry 'papr' is not a value of `scale` (ci, paper); did you mean 'paper'?"),
            ("      reference_grids:\n        paper:\n          difference: {url: \"https://x/a/b.jpg\", \(good)}",
             "paper:", "reference_grids needs `use:` (normally $scale)"),
            ("      reference_grids:\n        use: $scale\n        paper:\n          difference: {url: \"https://x/a/b.jpg\"}",
             "{url: \"https://x/a/b.jpg\"}", "a reference grid needs its `sha256:`"),
            ("      reference_grids:\n        use: $scale\n        paper:\n          difference: {url: \"https://x/a/b.jpg\", \(good), threshold: 2}",
             "2}", "threshold is a correlation: it must be in (-1, 1], got 2.0"),
        ]
        for c in cases {
            let (text, message) = try declarationError(c.refs)
            let at = position(of: c.token, in: text)
            XCTAssertTrue(message.contains(c.says), "\(c.token): \(message)")
            XCTAssertTrue(message.hasPrefix("\(file):\(at): "), "\(c.token): expected \(file):\(at): \(message)")
        }
    }
}
