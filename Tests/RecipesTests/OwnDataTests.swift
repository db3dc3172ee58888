// Your own images and data: `load_images` with `dir:` (ImageFolder layout or labels.csv, in a
// stable order) and `load_data` with IDX or CIFAR-format files at given paths.
import Foundation
import XCTest
import Recipes
import SIMDCore

final class OwnDataTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("own data-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    func copy(_ shipped: String, to url: URL) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Self.root.appendingPathComponent(shipped), to: url)
    }

    /// Runs a recipe of `cells` and returns the run directory.
    func run(_ dir: URL, _ cells: String) throws -> URL {
        let path = dir.appendingPathComponent("r.yaml")
        try "title: own data\ncells:\n\(cells)".write(to: path, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out-\(UUID().uuidString)")
        _ = try RecipeEngine.run(RunSettings(recipePath: path.path, outDirectory: out.path), verify: false, updateGoldens: false)
        return out
    }

    func errorText(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    /// The images and labels an `explain` step saw, read back from its arrays.
    func explained(_ out: URL) throws -> (labels: [Int64], images: NPYArray) {
        (try NPY.read(out.appendingPathComponent("maps/labels.npy")).ints, try NPY.read(out.appendingPathComponent("maps/images.npy")))
    }

    let explain = """
      - step: load_model
        id: net
        with: {architecture: resnet18, weights: synthetic}
      - step: explain
        id: maps
        with: {model: net, data: imgs, images: all, target: 0, methods: [gradient]}

    """

    func testImageFolderLayoutInStableOrder() throws {
        let dir = try tempDir()
        let folder = dir.appendingPathComponent("my images")
        // Classes sort by name (as torchvision's ImageFolder); files sort by path, sub-folders included.
        try copy("data/images/rocket.jpg", to: folder.appendingPathComponent("zebra/b.jpg"))
        try copy("data/images/chelsea.png", to: folder.appendingPathComponent("zebra/a/nested.png"))
        try copy("data/images/chelsea.png", to: folder.appendingPathComponent("cat/x.PNG"))
        try "not an image".write(to: folder.appendingPathComponent("cat/notes.txt"), atomically: true, encoding: .utf8)
        let out = try run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\", size: 16}\n" + explain)
        let (labels, images) = try explained(out)
        XCTAssertEqual(labels, [0, 1, 1])                 // cat, then zebra/a/nested.png, zebra/b.jpg
        XCTAssertEqual(images.shape, [3, 3, 16, 16])
        // Row 0 and row 1 are the same picture (chelsea), row 2 another (rocket).
        let per = 3 * 16 * 16
        XCTAssertEqual(Array(images.floats[0..<per]), Array(images.floats[per..<(2 * per)]))
        XCTAssertNotEqual(Array(images.floats[per..<(2 * per)]), Array(images.floats[(2 * per)..<(3 * per)]))
        let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("ImageFolder layout") && report.contains("cat 1, zebra 2"), report)
        // Again: the same order.
        XCTAssertEqual(try explained(try run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\", size: 16}\n" + explain)).labels, labels)
        // `limit:` keeps the first images in that order.
        let limited = try run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\", size: 16, limit: 2}\n" + explain)
        XCTAssertEqual(try explained(limited).labels, [0, 1])
    }

    func testLabelsCSV() throws {
        let dir = try tempDir()
        let folder = dir.appendingPathComponent("csv")
        try copy("data/images/rocket.jpg", to: folder.appendingPathComponent("r.jpg"))
        try copy("data/images/chelsea.png", to: folder.appendingPathComponent("sub/c.png"))
        // Class names: sorted; rows keep the file's order.
        try "file,label\nr.jpg,rocket\nsub/c.png,cat\n".write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        let out = try run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\", size: 16}\n" + explain)
        XCTAssertEqual(try explained(out).labels, [1, 0])
        // Integer labels are ImageNet classes.
        try "file,label\nsub/c.png,281\nr.jpg,657\n".write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        let out2 = try run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\", size: 16}\n" + explain)
        XCTAssertEqual(try explained(out2).labels, [281, 657])
        // Errors name the file and line.
        try "file,label\nsub/c.png,281\nmissing.jpg,3\n".write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        let e1 = errorText { _ = try self.run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\"}\n") }
        XCTAssertTrue(e1.contains("labels.csv:3: no such image"), e1)
        try "name,class\n".write(to: folder.appendingPathComponent("labels.csv"), atomically: true, encoding: .utf8)
        let e2 = errorText { _ = try self.run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(folder.path)\"}\n") }
        XCTAssertTrue(e2.contains("labels.csv:1: the first row must be the header `file,label`"), e2)
        // A folder with neither layout, and `dir:` beside `files:`.
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        let e3 = errorText { _ = try self.run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: \"\(empty.path)\"}\n") }
        XCTAssertTrue(e3.contains("has neither a labels.csv"), e3)
        let e4 = errorText { _ = try self.run(dir, "  - step: load_images\n    id: imgs\n    with: {dir: x, files: []}\n") }
        XCTAssertTrue(e4.contains("give one of `dir:`, `files:` or `sets:`"), e4)
    }

    func testLoadDataFromIDXAndCIFARFilesAtAnyPath() throws {
        let dir = try tempDir().appendingPathComponent("some where")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        // IDX: 5 images of 4x3 with labels up to 11 (more classes than MNIST's ten).
        let pixels: [UInt8] = (0..<60).map { UInt8($0 * 4) }
        try IDX.write(IDXArray(dims: [5, 4, 3], bytes: pixels), to: dir.appendingPathComponent("img-idx3-ubyte.gz"))
        try IDX.write(IDXArray(dims: [5], bytes: [0, 11, 3, 3, 7]), to: dir.appendingPathComponent("lab-idx1-ubyte"))
        let idx = "  - step: load_data\n    id: imgs\n    with: {files: {format: idx, images: \"\(dir.path)/img-idx3-ubyte.gz\", labels: \"\(dir.path)/lab-idx1-ubyte\"}}\n"
        let out = try run(dir, idx)
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
        XCTAssertEqual(metrics["imgs.count"] as? Double, 5)
        let manifest = try String(contentsOf: out.appendingPathComponent("manifest.json"), encoding: .utf8)
        XCTAssertTrue(manifest.contains("img-idx3-ubyte.gz") && manifest.contains("lab-idx1-ubyte"), "both files are recorded")
        let idxReport = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(idxReport.contains("5 images of 1×4×3, classes 0, 3, 7, 11"), idxReport)
        // CIFAR-10 format: two batch files of 2 records each.
        func record(_ label: UInt8, _ v: UInt8) -> [UInt8] { [label] + [UInt8](repeating: v, count: 3 * 32 * 32) }
        try Data(record(3, 10) + record(9, 20)).write(to: dir.appendingPathComponent("a.bin"))
        try Data(record(0, 30) + record(3, 40)).write(to: dir.appendingPathComponent("b.bin"))
        let cifar = "  - step: load_data\n    id: imgs\n    with: {files: {format: cifar10, batches: [\"\(dir.path)/a.bin\", \"\(dir.path)/b.bin\"]}, per_class: 1, classes: [3, 9]}\n"
        let out2 = try run(dir, cifar)
        let report = try String(contentsOf: out2.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(report.contains("2 images of 3×32×32, classes 3, 9"), report)   // the first of class 3 and of 9, across both files
        // Errors: a record size that does not divide, a wrong format name, dataset and files together.
        try Data(record(3, 10).dropLast()).write(to: dir.appendingPathComponent("bad.bin"))
        let e1 = errorText { _ = try self.run(dir, "  - step: load_data\n    id: imgs\n    with: {files: {format: cifar10, batches: [\"\(dir.path)/bad.bin\"]}}\n") }
        XCTAssertTrue(e1.contains("bad.bin"), e1)
        let e2 = errorText { _ = try self.run(dir, "  - step: load_data\n    id: imgs\n    with: {files: {format: npz, images: a}}\n") }
        XCTAssertTrue(e2.contains("format must be idx, cifar10 or cifar100, got 'npz'"), e2)
        let e3 = errorText { _ = try self.run(dir, "  - step: load_data\n    id: imgs\n    with: {dataset: mnist5k, split: test, files: {format: idx, images: a, labels: b}}\n") }
        XCTAssertTrue(e3.contains("give either `dataset:` and `split:`, or `files:`"), e3)
    }
}
