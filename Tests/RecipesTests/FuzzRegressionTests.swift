import XCTest
import Foundation
import Recipes
import SIMDCore

/// Inputs that once trapped, hung or allocated without bound (found by fuzzing the runner), each
/// now refused with a typed error that names the limit it crossed. Small mutant files are
/// committed in Tests/Fixtures/fuzz-regressions/ (written by Fuzz/make-corpus.py); large ones
/// are built here.
final class FuzzRegressionTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/fuzz-regressions")

    func fixture(_ name: String) throws -> Data { try Data(contentsOf: Self.fixtures.appendingPathComponent(name)) }

    var tmp: URL!
    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-regressions-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { if let tmp { try? FileManager.default.removeItem(at: tmp) } }

    /// `text` written as tmp/t.yaml.
    func recipeFile(_ text: String) throws -> URL {
        let url = tmp.appendingPathComponent("t.yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    /// The error `body` throws, as `T` (fails the test on no error or another type).
    func error<T: Error>(_ type: T.Type, file: StaticString = #filePath, line: UInt = #line,
                         _ body: () throws -> Any) -> T? {
        do { _ = try body(); XCTFail("expected a \(T.self)", file: file, line: line) } catch let e as T {
            return e
        } catch { XCTFail("expected a \(T.self), got \(Swift.type(of: error)): \(error)", file: file, line: line) }
        return nil
    }

    // MARK: safetensors: five overflow traps

    func testSafeTensorsOffsetOverflowsAreRefused() throws {
        for name in ["safetensors-offset-begin-overflow", "safetensors-offset-end-overflow"] {
            let e = error(WeightsError.self) { try SafeTensors(data: try self.fixture(name + ".safetensors"), file: name) }
            XCTAssertEqual(e?.file, name)
            XCTAssertTrue(e?.message.contains("lie outside the 16 data bytes after the header") ?? false, "\(String(describing: e))")
        }
    }

    func testSafeTensorsShapeOverflowsAreRefused() throws {
        for name in ["safetensors-shape-product-overflow", "safetensors-f32-count-overflow", "safetensors-f16-count-overflow"] {
            let e = error(WeightsError.self) { try SafeTensors(data: try self.fixture(name + ".safetensors"), file: name) }
            XCTAssertTrue(e?.message.contains("more than Limits.maxTensorElements = 268435456 elements") ?? false, "\(String(describing: e))")
        }
    }

    func testSafeTensorsNegativeDimensionIsRefused() throws {
        var st = try SafeTensors.encode(["w": Tensor(shape: [2], scalars: [1, 2])])
        let text = String(decoding: st, as: UTF8.self).replacingOccurrences(of: "\"shape\":[2]", with: "\"shape\":[-2]")
        st = Data(text.utf8)
        let e = error(WeightsError.self) { try SafeTensors(data: st) }
        XCTAssertEqual(e?.message, "tensor 'w': shape [-2] has a negative dimension")
    }

    func testSafeTensorsHugeShapeIsQuotedShort() throws {
        let dims = Array(repeating: "1", count: 100_000).joined(separator: ",")
        var json = "{\"w\":{\"dtype\":\"F32\",\"shape\":[\(dims)],\"data_offsets\":[0,8]}}"
        while (8 + json.utf8.count) % 8 != 0 { json += " " }
        var data = Data()
        withUnsafeBytes(of: UInt64(json.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(json.utf8))
        data.append(Data(count: 8))
        let e = error(WeightsError.self) { try SafeTensors(data: data) }
        XCTAssertLessThan(e?.message.count ?? .max, 400, "\(String(describing: e))")
    }

    // MARK: Images: sides and pixel count checked before allocating

    func testPNGWithHugeDimensionsIsRefusedBeforeDecoding() throws {
        let e = error(ImageError.self) { try PNG.decode(try self.fixture("png-huge-dimensions.png"), file: "big.png") }
        XCTAssertEqual(e?.description, "big.png: PNG dimensions 32768x32768 exceed Limits.maxImagePixels = 67108864 pixels")
    }

    func testJPEGWithHugeDimensionsIsRefusedBeforeDecoding() throws {
        let e = error(ImageError.self) { try JPEG.decode(try self.fixture("jpeg-huge-dimensions.jpg"), file: "big.jpg") }
        XCTAssertEqual(e?.description, "big.jpg: cannot decode JPEG: JPEG dimensions 65000x65000 exceed the limits "
                       + "(each side at most 32768: Limits.maxImageSide; at most 67108864 pixels: Limits.maxImagePixels)")
    }

    // MARK: Archives

    func testTarMemberWithNegativeSizeIsRefused() throws {
        let e = error(DataError.self) { try Tar.members(try self.fixture("tar-negative-size.tar"), wanted: ["a"], file: "neg.tar") }
        XCTAssertEqual(e?.description, "neg.tar: tar header at byte 0 has an unreadable size field")
    }

    /// `tar` with the first header's size field replaced and its checksum recomputed.
    func withSize(_ field: [UInt8], _ tar: Data) -> Data {
        var t = tar
        t.replaceSubrange(124..<136, with: field)
        t.replaceSubrange(148..<156, with: Data(repeating: 0x20, count: 8))
        let sum = t.prefix(512).reduce(0) { $0 + Int($1) }
        t.replaceSubrange(148..<156, with: Data(String(format: "%06o\0 ", sum).utf8))
        return t
    }

    func testTarMemberSizeBeyondIntIsRefused() throws {
        let tar = try fixture("tar-negative-size.tar")
        // Base-256, positive, 2^88 - 1: more than Int holds.
        let e = error(DataError.self) { try Tar.members(self.withSize([0x80] + Array(repeating: 0xFF, count: 11), tar), wanted: ["a"], file: "big.tar") }
        XCTAssertEqual(e?.description, "big.tar: tar header at byte 0 has an unreadable size field")
        // Int.max itself must not overflow `dataStart + size`.
        let max = withSize([0x80, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], tar)
        let e2 = error(DataError.self) { try Tar.members(max, wanted: ["a"], file: "big.tar") }
        XCTAssertEqual(e2?.description, "big.tar: truncated tar archive: member at byte 0 needs \(Int.max) bytes, 9728 left")
    }

    func testGzipBombIsRefusedAtTheLimit() throws {
        let packed = try Gzip.compress(Data(count: 1 << 22))      // 4 MiB of zeros in ~4 KiB
        let e = error(DataError.self) { try Gzip.decompress(packed, file: "bomb.gz", limit: 1 << 20) }
        XCTAssertEqual(e?.description.hasPrefix("bomb.gz: gzip stream inflates to more than the limit of 1048576 bytes"), true, "\(String(describing: e))")
        XCTAssertEqual(try Gzip.decompress(packed, limit: 1 << 22).count, 1 << 22)
    }

    // MARK: YAML: depth and node count counted as events stream in

    func testDeeplyNestedYAMLIsRefusedAtTheDepthLimit() throws {
        for (open, close) in [("[", "]"), ("{a: ", "}")] {
            let text = String(repeating: open, count: 100_000) + "1" + String(repeating: close, count: 100_000)
            let e = error(YAMLError.self) { try YAMLParser.parse(text, file: "deep.yaml") }
            XCTAssertEqual(e?.message, "YAML nested deeper than Limits.maxYAMLDepth = 100 levels")
            XCTAssertEqual(e?.mark.line, 1)
        }
        // Block style nests the same way.
        var block = ""
        for i in 0..<150 { block += String(repeating: " ", count: i) + "k:\n" }
        let e = error(YAMLError.self) { try YAMLParser.parse(block, file: "deep.yaml") }
        XCTAssertEqual(e?.message, "YAML nested deeper than Limits.maxYAMLDepth = 100 levels")
        XCTAssertEqual(e?.mark.line, 101)                   // the 101st nested mapping
        // 100 levels are fine.
        XCTAssertNoThrow(try YAMLParser.parse(String(repeating: "[", count: 100) + String(repeating: "]", count: 100), file: "ok.yaml"))
    }

    func testYAMLNodeCountIsLimited() throws {
        let text = "[" + String(repeating: "1,", count: Limits.maxYAMLNodes) + "1]"
        let e = error(YAMLError.self) { try YAMLParser.parse(text, file: "wide.yaml") }
        XCTAssertEqual(e?.message, "more than Limits.maxYAMLNodes = 1000000 YAML nodes")
    }

    // MARK: Error messages stay short

    func testHugeChoicesListGivesAShortError() throws {
        let choices = (0..<100_000).map { "c\($0)" }.joined(separator: ", ")
        let text = "title: t\nparameters:\n  mode: {default: nope, choices: [\(choices)]}\ncells: []\n"
        let url = try recipeFile(text)
        let e = error(YAMLError.self) { try Recipe.load(url) }
        XCTAssertEqual(e?.description, "\(url.path):3:19: key 'parameters.mode.default': parameter 'mode' must be one of "
                       + (0..<20).map { "c\($0)" }.joined(separator: ", ") + ", … (100000 in all), got 'nope'")
    }

    func testHugeSetValueIsQuotedShort() throws {
        let text = "title: t\nparameters:\n  n: 1\ncells: []\n"
        let r = try Recipe.load(try recipeFile(text))
        let e = error(RecipeError.self) { try r.resolve(overrides: ["n=" + String(repeating: "9", count: 1_000_000)], seed: nil) }
        XCTAssertEqual(e?.message, "--set n=" + String(repeating: "9", count: 200) + "… (1000000 bytes): parameter 'n' expects an integer")
    }

    // MARK: Step settings with a maximum

    /// `runner show-config` of a one-step recipe: every step setting validated, nothing run.
    func plan(_ config: String, kind: String) throws -> Any {
        let text = "title: t\ncells:\n  - step: \(kind)\n    id: s\n    with: \(config)\n"
        return try RecipeEngine.resolvedDescription(RunSettings(recipePath: try recipeFile(text).path))
    }

    func testLoadImagesSizeHasAMaximum() throws {
        let files = "files: [{name: a, label: 1, file: a.png}]"
        for size in ["9223372036854775807", "30000", "2049"] {
            let e = error(YAMLError.self) { try self.plan("{\(files), size: \(size)}", kind: "load_images") }
            XCTAssertEqual(e?.description, "\(tmp.path)/t.yaml:5:61: key 'cells[0].with.size': size must be in 8...2048, got \(size)")
        }
        XCTAssertNoThrow(try plan("{\(files), size: 2048}", kind: "load_images"))
    }

    func testNegativeSeedOffsetIsAnError() throws {
        let e = error(YAMLError.self) {
            try self.plan("{model: mnist_cnn, train: a, test: b, epochs: 1, seed_offset: -1}", kind: "train")
        }
        XCTAssertTrue(e?.description.hasSuffix("seed_offset must be in 0...\(Int.max), got -1") ?? false, "\(String(describing: e))")
    }

    // MARK: Claims: nesting and length bounded before recursing

    func testDeeplyNestedClaimIsRefused() throws {
        let deep = String(repeating: "(", count: 150) + "1" + String(repeating: ")", count: 150) + " > 0"
        let e = error(RecipeError.self) { try Claim(deep) }
        XCTAssertTrue(e?.message.hasSuffix("nested deeper than 100 levels at character 102") ?? false, "\(String(describing: e))")
        let minus = String(repeating: "-", count: 500) + "1 > 0"
        XCTAssertTrue(error(RecipeError.self) { try Claim(minus) }?.message.contains("nested deeper than 100 levels") ?? false)
        XCTAssertNoThrow(try Claim(String(repeating: "(", count: 99) + "1" + String(repeating: ")", count: 99) + " > 0"))
    }

    func testOverlongClaimIsRefused() throws {
        let long = Array(repeating: "1", count: 600).joined(separator: "+") + " > 0"
        let e = error(RecipeError.self) { try Claim(long) }
        XCTAssertEqual(e?.message, "claim '\(long.prefix(200))… (\(long.utf8.count) bytes)': longer than 1000 characters")
    }

    // MARK: Pickles: deep nesting and cycles

    func load(_ bytes: [UInt8]) throws -> PickleValue {
        var vm = RestrictedUnpickler(data: Data(bytes), file: "p.pkl")
        return try vm.load()
    }

    func testDeeplyNestedPickleIsRefused() throws {
        // PROTO 2, EMPTY_TUPLE, then a million TUPLE1: freeing that tuple recursed a million frames.
        let e = error(WeightsError.self) { try self.load([0x80, 2, 0x29] + Array(repeating: 0x85, count: 1_000_000) + [0x2e]) }
        XCTAssertEqual(e?.description, "p.pkl: pickle: objects nested deeper than Limits.maxPickleDepth = 100 at byte 103")
        // Lists nest the same way (EMPTY_LIST, then LIST of it, again and again).
        let lists: [UInt8] = [0x80, 2] + Array(repeating: [0x28, 0x5d], count: 200).flatMap { $0 } + Array(repeating: 0x6c, count: 200) + [0x2e]
        XCTAssertTrue(error(WeightsError.self) { try self.load(lists) }?.message.hasPrefix("pickle: objects nested deeper than Limits.maxPickleDepth = 100") ?? false)
        XCTAssertNoThrow(try load([0x80, 2, 0x29] + Array(repeating: 0x85, count: 98) + [0x2e]))
    }

    func testSelfContainingPickleContainersAreRefused() throws {
        // EMPTY_LIST, DUP, APPEND: a list inside itself would never be freed.
        let e = error(WeightsError.self) { try self.load([0x80, 2, 0x5d, 0x32, 0x61, 0x2e]) }
        XCTAssertEqual(e?.description, "p.pkl: pickle: a list that contains itself (byte 5); not supported")
        // EMPTY_DICT, DUP, key, DUP-ed dict as value via SETITEM.
        let d: [UInt8] = [0x80, 2, 0x7d, 0x71, 0, 0x4b, 1, 0x68, 0, 0x73, 0x2e]
        XCTAssertEqual(error(WeightsError.self) { try self.load(d) }?.description, "p.pkl: pickle: a dict that contains itself (byte 10); not supported")
        // A list changed after it went into another one (how a longer cycle or a deep chain would be built).
        let later: [UInt8] = [0x80, 2, 0x5d, 0x5d, 0x71, 1, 0x61, 0x68, 1, 0x5d, 0x61, 0x2e]
        XCTAssertEqual(error(WeightsError.self) { try self.load(later) }?.description,
                       "p.pkl: pickle: a list changed after it was placed in another object (byte 11); not supported")
    }

    func testExtremeAspectRatioIsRefusedBeforeResizing() throws {
        // 1 x 32768 is within the decoder's limits; its short side to 256 would make 256 x 8388608.
        let thin = RGBImage(width: 1, height: 32768, pixels: [UInt8](repeating: 7, count: 3 * 32768))
        let e = error(ImageError.self) { try ImagePreprocessing.paperA(thin) }
        XCTAssertEqual(e?.message, "resizing the 1x32768 image to short side 256 gives 256x8388608, more than Limits.maxImagePixels = 67108864 pixels (aspect ratio too extreme)")
        XCTAssertEqual(try ImagePreprocessing.paperA(RGBImage(width: 100, height: 300, pixels: [UInt8](repeating: 7, count: 3 * 30000))).width, 224)
    }

    func testHugeKeyIsQuotedShort() throws {
        let key = String(repeating: "k", count: 1_000_000)
        let url = try recipeFile("title: t\n? \(key)\n: 1\ncells: []\n")   // explicit key: no 1024-character cap
        let e = error(YAMLError.self) { try Recipe.load(url) }
        XCTAssertEqual(e?.message, "unknown key '\(String(repeating: "k", count: 200))… (1000000 bytes)' (allowed: title, paper, figure, summary, parameters, variants, cells, time)")
    }
}
