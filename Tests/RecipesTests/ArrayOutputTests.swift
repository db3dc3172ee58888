// The numbers behind `explain` and `ascend` grids: .npy files (NumPy format 1.0) that read back
// to exactly what the PNGs were drawn from, and the Python example in docs/recipes.md that
// recomputes recorded metrics from them (run when numpy is installed).
import Foundation
import XCTest
import Recipes
import SIMDCore

final class ArrayOutputTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    // MARK: The format

    func testNPYRoundTripAndHeader() throws {
        let t = Tensor(shape: [2, 3], scalars: [0, -1.5, 3.25, .greatestFiniteMagnitude, -0.0, 1e-30])
        let data = NPY.encode(t.scalars, shape: t.shape)
        let b = [UInt8](data)
        XCTAssertEqual(Array(b[0..<8]), [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0])
        let hlen = Int(b[8]) | Int(b[9]) << 8
        XCTAssertEqual((10 + hlen) % 64, 0, "data start on a 64-byte boundary")
        let header = String(bytes: b[10..<(10 + hlen)], encoding: .ascii)!
        XCTAssertTrue(header.hasPrefix("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), header)
        XCTAssertTrue(header.hasSuffix(" \n"))
        XCTAssertEqual(b.count, 10 + hlen + 24)
        // 3.25 = 0x40500000, little-endian.
        XCTAssertEqual(Array(b[(10 + hlen + 8)..<(10 + hlen + 12)]), [0x00, 0x00, 0x50, 0x40])
        let back = try NPY.decode(data)
        XCTAssertEqual(back.shape, [2, 3])
        XCTAssertEqual(back.type, .float32)
        XCTAssertEqual(back.floats.map(\.bitPattern), t.scalars.map(\.bitPattern))

        let ints = try NPY.decode(NPY.encode(ints: [0, 482, -7, 1 << 40], shape: [4]))
        XCTAssertEqual(ints.shape, [4])
        XCTAssertEqual(ints.ints, [0, 482, -7, 1 << 40])
        let one = [UInt8](NPY.encode(ints: [1], shape: [1]))
        let header1 = String(bytes: one[10..<(10 + (Int(one[8]) | Int(one[9]) << 8))], encoding: .ascii)!
        XCTAssertTrue(header1.hasPrefix("{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }"), header1)
        // A scalar (shape ()) and an empty array.
        XCTAssertEqual(try NPY.decode(NPY.encode([7], shape: [])).floats, [7])
        XCTAssertEqual(try NPY.decode(NPY.encode([], shape: [0, 5])).shape, [0, 5])
    }

    func testNPYErrorsSayWhatWasExpected() {
        func message(_ data: Data) -> String {
            do { _ = try NPY.decode(data, file: "x.npy"); return "no error" } catch { return "\(error)" }
        }
        let good = NPY.encode([1, 2, 3], shape: [3])
        XCTAssertEqual(message(Data("PK\u{3}\u{4}".utf8)), "x.npy: not a .npy file (expected the magic bytes \\x93NUMPY)")
        XCTAssertEqual(message(good.prefix(good.count - 1)), "x.npy: shape (3,) of <f4 needs 12 data bytes, the file has 11")
        func patched(_ from: String, _ to: String) -> Data {
            var b = [UInt8](good)
            let end = 10 + (Int(b[8]) | Int(b[9]) << 8)
            var text = String(decoding: b[10..<end], as: UTF8.self).replacingOccurrences(of: from, with: to)
            // Keep the header's length: take the growth out of the space padding.
            while text.utf8.count > end - 10, let r = text.range(of: "  \n") { text.replaceSubrange(r, with: " \n") }
            XCTAssertEqual(text.utf8.count, end - 10)
            b.replaceSubrange(10..<end, with: Array(text.utf8))
            return Data(b)
        }
        XCTAssertEqual(message(patched("'<f4'", "'>f4'")), "x.npy: element type '>f4'; this reader reads '<f4' (float32) and '<i8' (int64)")
        XCTAssertEqual(message(patched("False", "True ")), "x.npy: fortran_order is True; this reader reads C order only")
        XCTAssertEqual(message(patched("(3,)", "(9999999999999, 9999999999)")).prefix(60), "x.npy: shape (9999999999999, 9999999999) holds more elements")
        var v2 = [UInt8](good); v2[6] = 2
        XCTAssertEqual(message(Data(v2)), "x.npy: .npy format version 2.0; this reader reads version 1.0")
    }

    // MARK: A recipe's arrays

    /// One small run (synthetic ResNet50, two shipped images at 32x32) shared by the tests below.
    static var run: URL?
    func recipeRun() throws -> URL {
        if let r = Self.run { return r }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("arrays-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let recipe = dir.appendingPathComponent("arrays.yaml")
        try """
        title: arrays
        cells:
          - step: load_model
            id: net
            with: {architecture: resnet50, weights: synthetic}
          - step: load_images
            id: imgs
            with:
              size: 32
              files:
                - {name: chelsea, label: 281, file: data/images/chelsea.png}
                - {name: rocket, label: 657, file: data/images/rocket.jpg}
          - step: explain
            id: maps
            with:
              model: net
              data: imgs
              methods: [gradient, {method: excitation_pullback, temperature: 0.3, label: soft}]
          - step: ascend
            id: pga
            with: {model: net, data: imgs, targets: "0, 281, 657", method: {method: excitation_pullback, temperature: 0.3}, steps: 2, alpha: 3, eps: 15, show: both}
        """.write(to: recipe, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("run")
        _ = try RecipeEngine.run(RunSettings(recipePath: recipe.path, outDirectory: out.path, quiet: true), verify: false, updateGoldens: false)
        Self.run = out
        return out
    }

    override class func tearDown() {
        if let r = run { try? FileManager.default.removeItem(at: r.deletingLastPathComponent()) }
        super.tearDown()
    }

    func array(_ run: URL, _ file: String) throws -> NPYArray { try NPY.read(run.appendingPathComponent(file)) }

    func testExplainArraysAreWhatTheGridShows() throws {
        let run = try recipeRun()
        let maps = try array(run, "maps/attributions.npy"), images = try array(run, "maps/images.npy")
        let labels = try array(run, "maps/labels.npy"), targets = try array(run, "maps/targets.npy")
        let logits = try array(run, "maps/logits.npy")
        XCTAssertEqual(maps.shape, [2, 2, 3, 32, 32])
        XCTAssertEqual(images.shape, [2, 3, 32, 32])
        XCTAssertEqual(labels.ints, [281, 657])
        XCTAssertEqual(targets.ints, [281, 657])
        XCTAssertEqual(logits.shape, [2, 1000])
        XCTAssertTrue(images.floats.allSatisfy { $0 >= 0 && $0 <= 1 })
        // The two methods differ, and neither map is zero.
        let per = 3 * 32 * 32
        XCTAssertNotEqual(Array(maps.floats[0..<per]), Array(maps.floats[per..<(2 * per)]))
        XCTAssertGreaterThan(maps.floats.map(abs).max()!, 0)
        // The grid PNG is exactly the grid drawn from these arrays.
        let names = try ImageNetClasses.names()
        let grid = StepGrids.explain(images: images.tensor!, attributions: maps.tensor!, methodLabels: ["gradient", "soft"],
                                     columnTitles: StepGrids.explainColumnTitles(labels: labels.ints.map { Int($0) }, targets: targets.ints.map { Int($0) }, classNames: names),
                                     diverging: true, upscale: 1)
        XCTAssertEqual(try grid.render(), try PNG.read(run.appendingPathComponent("maps.png")))
        // Changing one map value changes the picture: the comparison can fail.
        var other = maps.tensor!
        other.scalars[5] += 10 * (maps.floats.map(abs).max()! + 1)
        let changed = StepGrids.explain(images: images.tensor!, attributions: other, methodLabels: ["gradient", "soft"],
                                        columnTitles: [names[281], names[657]], diverging: true, upscale: 1)
        XCTAssertNotEqual(try changed.render(), try PNG.read(run.appendingPathComponent("maps.png")))
    }

    func testAscendArraysAreWhatTheGridsShowAndGiveTheMetrics() throws {
        let run = try recipeRun()
        let images = try array(run, "pga/images.npy"), labels = try array(run, "pga/labels.npy")
        let targets = try array(run, "pga/targets.npy"), perturbed = try array(run, "pga/perturbed.npy")
        let differences = try array(run, "pga/differences.npy")
        let before = try array(run, "pga/logits_before.npy"), after = try array(run, "pga/logits_after.npy")
        XCTAssertEqual(images.shape, [2, 3, 32, 32])
        XCTAssertEqual(labels.ints, [281, 657])
        XCTAssertEqual(targets.ints, [0, 281, 657])
        XCTAssertEqual(perturbed.shape, [2, 3, 3, 32, 32])
        XCTAssertEqual(differences.shape, [2, 3, 3, 32, 32])
        XCTAssertEqual(before.shape, [2, 1000])
        XCTAssertEqual(after.shape, [2, 3, 1000])
        // differences = perturbed − clean in the model's space [-1, 1] = 2 · (perturbed01 − clean01).
        let per = 3 * 32 * 32
        var worst: Float = 0
        for i in 0..<2 { for k in 0..<3 { for j in 0..<per {
            let p = perturbed.floats[(i * 3 + k) * per + j], c = images.floats[i * per + j]
            worst = max(worst, abs(differences.floats[(i * 3 + k) * per + j] - 2 * (p - c)))
        } } }
        XCTAssertLessThan(worst, 1e-5)
        XCTAssertGreaterThan(differences.floats.map(abs).max()!, 0.01, "the ascent moved the images")

        let names = try ImageNetClasses.names()
        let rows = labels.ints.map { names[Int($0)] }, cols = ["clean"] + targets.ints.map { names[Int($0)] }
        let diffGrid = StepGrids.ascend(images: images.tensor!, cells: differences.tensor!, rowTitles: rows, columnTitles: cols, diverging: false, upscale: 1)
        XCTAssertEqual(try diffGrid.render(), try PNG.read(run.appendingPathComponent("pga.png")))
        let pertGrid = StepGrids.ascend(images: images.tensor!, cells: perturbed.tensor!, rowTitles: rows, columnTitles: cols, diverging: false, upscale: 1)
        XCTAssertEqual(try pertGrid.render(), try PNG.read(run.appendingPathComponent("pga_perturbed.png")))

        // The recorded success rate, from the arrays.
        var hits = 0, pairs = 0
        for i in 0..<2 { for k in 0..<3 where targets.ints[k] != labels.ints[i] {
            pairs += 1
            let row = Array(after.floats[((i * 3 + k) * 1000)..<((i * 3 + k + 1) * 1000)])
            if row.firstIndex(of: row.max()!) == Int(targets.ints[k]) { hits += 1 }
        } }
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: run.appendingPathComponent("metrics.json"))) as! [String: Any]
        XCTAssertEqual(pairs, 4)
        XCTAssertEqual(metrics["pga.success_rate"] as? Double, Double(hits) / Double(pairs))

        // Top-5 before and after, with class names, in the report.
        let report = try String(contentsOf: run.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("top-5 before"), report)
        XCTAssertTrue(report.contains("top-5 after"))
        let top = before.floats[0..<1000].enumerated().max { $0.element < $1.element }!.offset
        let first: String = "0: " + names[281], target: String = names[0]
        var row: [String]?
        for line in report.split(separator: "\n") {
            let cells: [String] = line.split(separator: "|").map { String($0).trimmingCharacters(in: .whitespaces) }
            if cells.count >= 4 && cells[0] == first && cells[1] == target { row = cells; break }
        }
        XCTAssertTrue(row?[2].hasPrefix("\(names[top]) ") ?? false, "the first image's most probable class \(names[top]) leads its top-5: \(row ?? [])")
        XCTAssertEqual(row?[3].split(separator: ",").count, 5)
    }

    // MARK: The documented Python example

    func testDocumentedPythonExampleRecomputesMetrics() throws {
        guard shell("python3", ["-c", "import numpy"]).status == 0 else { throw XCTSkip("numpy is not installed") }
        let doc = try String(contentsOf: Self.root.appendingPathComponent("docs/recipes.md"), encoding: .utf8)
        guard let marker = doc.range(of: "<!-- npy-example -->\n```python\n"),
              let end = doc.range(of: "\n```", range: marker.upperBound..<doc.endIndex) else {
            return XCTFail("docs/recipes.md has no `<!-- npy-example -->` Python block")
        }
        let run = try recipeRun()
        let script = run.deletingLastPathComponent().appendingPathComponent("example.py")
        try String(doc[marker.upperBound..<end.lowerBound]).write(to: script, atomically: true, encoding: .utf8)
        for step in ["pga", "maps"] {
            let r = shell("python3", [script.path, run.path, step])
            XCTAssertEqual(r.status, 0, r.output)
            XCTAssertTrue(r.output.contains("recorded"), r.output)
            print(r.output)
        }
    }

    func shell(_ tool: String, _ args: [String]) -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [tool] + args
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        do { try p.run() } catch { return (-1, "\(error)") }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
