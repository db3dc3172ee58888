import XCTest
import Foundation
import SIMDCore
import Recipes

/// Goldens: reference/images/make_image_goldens.py (PIL + torchvision, as paper A's app).
final class ImageTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let golden = root.appendingPathComponent("Tests/Fixtures/images")
    static let images = root.appendingPathComponent("data/images")

    /// Largest per-byte difference between two images of the same size.
    func maxDiff(_ a: RGBImage, _ b: RGBImage, file: StaticString = #filePath, line: UInt = #line) -> Int {
        XCTAssertEqual(a.width, b.width, file: file, line: line); XCTAssertEqual(a.height, b.height, file: file, line: line)
        guard a.pixels.count == b.pixels.count else { return Int.max }
        return zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("imagetests-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    // MARK: PNG

    func testPNGFixturesDecodeLikePIL() throws {
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.golden.appendingPathComponent("fixtures/expected.json"))) as! [String: [String: Any]]
        XCTAssertEqual(json.count, 6)
        for (name, e) in json.sorted(by: { $0.key < $1.key }) {
            let img = try PNG.read(Self.golden.appendingPathComponent("fixtures/\(name)"))
            let want = RGBImage(width: e["width"] as! Int, height: e["height"] as! Int, pixels: (e["rgb"] as! [Int]).map(UInt8.init))
            let d = maxDiff(img, want)
            print("PNG fixture \(name): max |ours - expected| = \(d)")
            XCTAssertEqual(d, 0, name)
        }
    }

    func testPNGWriteReadRoundTripAtomically() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SeededRNG(seed: 7)
        let img = RGBImage(width: 13, height: 9, pixels: (0..<(13 * 9 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt64()) })
        let url = dir.appendingPathComponent("sub/rgb.png")
        try PNG.write(img, to: url)
        XCTAssertEqual(try PNG.read(url), img)
        XCTAssertEqual(try ImageFile.read(url), img)
        let gray = (0..<(5 * 4)).map { UInt8($0 * 12) }
        let gurl = dir.appendingPathComponent("gray.png")
        try PNG.write(gray: gray, width: 5, height: 4, to: gurl)
        XCTAssertEqual(try PNG.read(gurl), RGBImage(width: 5, height: 4, gray: gray))
        // No temporary files are left behind.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted(), ["gray.png", "sub"])
        XCTAssertThrowsError(try PNG.write(gray: gray, width: 5, height: 5, to: gurl)) {
            XCTAssertTrue("\($0)".contains("gray.png") && "\($0)".contains("needs 25 bytes"), "\($0)")
        }
    }

    func testPNGErrorsNameFileAndLibpngMessage() throws {
        let dir = try tempDir(); defer { try? FileManager.default.removeItem(at: dir) }
        let good = try Data(contentsOf: Self.images.appendingPathComponent("chelsea.png"))
        let cut = dir.appendingPathComponent("cut.png")
        try good.prefix(good.count / 2).write(to: cut)
        XCTAssertThrowsError(try PNG.read(cut)) { e in
            print("truncated PNG: \(e)")
            XCTAssertTrue("\(e)".hasPrefix(cut.path + ": cannot decode PNG: "), "\(e)")
        }
        var bad = good; bad[20] ^= 0xFF   // corrupt IHDR → CRC error
        XCTAssertThrowsError(try PNG.decode(bad, file: "bad.png")) { e in
            print("corrupt PNG: \(e)")
            XCTAssertTrue("\(e)".hasPrefix("bad.png: not a readable PNG: "), "\(e)")
            XCTAssertGreaterThan("\(e)".count, "bad.png: not a readable PNG: ".count + 3)
        }
        XCTAssertThrowsError(try ImageFile.decode(Data("hello".utf8), file: "x.txt")) {
            XCTAssertTrue("\($0)".contains("x.txt: not a PNG or JPEG"), "\($0)")
        }
        XCTAssertThrowsError(try ImageFile.read(dir.appendingPathComponent("missing.png"))) {
            XCTAssertTrue("\($0)".contains("missing.png: cannot read file"), "\($0)")
        }
    }

    // MARK: JPEG

    func testJPEGDecodeMatchesPIL() throws {
        for stem in ["small_chelsea", "small_camera_gray"] {
            let ours = try JPEG.read(Self.golden.appendingPathComponent("fixtures/\(stem).jpg"))
            let pil = try PNG.read(Self.golden.appendingPathComponent("jpeg_decode_\(stem).png"))
            let d = maxDiff(ours, pil)
            print("JPEG decode \(stem) \(ours.width)x\(ours.height): max |ours - PIL| = \(d) levels")
            XCTAssertLessThanOrEqual(d, 1)
        }
        // rocket.jpg: per-channel sums over the whole image and a 160x120 crop.
        let rocket = try ImageFile.read(Self.images.appendingPathComponent("rocket.jpg"))
        XCTAssertEqual(rocket.width, 640); XCTAssertEqual(rocket.height, 427)
        var sums = [0, 0, 0]
        for i in 0..<(rocket.width * rocket.height) { for c in 0..<3 { sums[c] += Int(rocket.pixels[3 * i + c]) } }
        let pilSums = [14283182, 16750506, 22483056]
        print("JPEG decode rocket.jpg channel sums ours \(sums) PIL \(pilSums)")
        let crop = try PNG.read(Self.golden.appendingPathComponent("jpeg_decode_rocket_crop.png"))
        var mine = [UInt8]()
        for y in 100..<220 { for x in 200..<360 { for c in 0..<3 { mine.append(rocket[x, y, c]) } } }
        let d = maxDiff(RGBImage(width: 160, height: 120, pixels: mine), crop)
        print("JPEG decode rocket.jpg crop: max |ours - PIL| = \(d) levels")
        XCTAssertLessThanOrEqual(d, 1)
        // Measured: identical sums. The bound allows one level on 1% of the pixels (a different
        // libjpeg's IDCT rounding), not the one level on every pixel a sum over width x height would.
        for c in 0..<3 { XCTAssertLessThanOrEqual(abs(sums[c] - pilSums[c]), rocket.width * rocket.height / 100, "channel \(c)") }
    }

    func testJPEGCorruptOrTruncatedGivesErrorNotExit() throws {
        let good = try Data(contentsOf: Self.images.appendingPathComponent("rocket.jpg"))
        XCTAssertThrowsError(try JPEG.decode(good.prefix(good.count / 2), file: "half.jpg")) { e in
            print("truncated JPEG: \(e)")
            XCTAssertEqual("\(e)", "half.jpg: cannot decode JPEG: Premature end of JPEG file")
        }
        XCTAssertThrowsError(try JPEG.decode(good.prefix(300), file: "head.jpg")) { e in
            print("JPEG cut inside the header: \(e)")
            XCTAssertTrue("\(e)".hasPrefix("head.jpg: cannot decode JPEG: "), "\(e)")
        }
        var garbage = Data([0xFF, 0xD8]); garbage.append(Data(repeating: 0x42, count: 100))
        XCTAssertThrowsError(try ImageFile.decode(garbage, file: "garbage.jpg")) { e in
            print("garbage JPEG: \(e)")
            XCTAssertTrue("\(e)".hasPrefix("garbage.jpg: cannot decode JPEG: "), "\(e)")
        }
        XCTAssertThrowsError(try JPEG.decode(Data([0xFF, 0xD8, 0xFF, 0xD9]), file: "noimage.jpg")) { e in
            print("JPEG without an image: \(e)")
            XCTAssertTrue("\(e)".hasPrefix("noimage.jpg: cannot decode JPEG: "), "\(e)")
            XCTAssertFalse("\(e)".contains("Premature"), "\(e)")
        }
        XCTAssertThrowsError(try JPEG.decode(Data(), file: "empty.jpg")) { XCTAssertTrue("\($0)".contains("empty.jpg")) }
        // Still decodes fine afterwards (no global state left broken).
        XCTAssertEqual(try JPEG.decode(good).width, 640)
    }

    // MARK: Pre-processing

    func testPaperAPreprocessingMatchesTorchvision() throws {
        for (name, stem) in [("chelsea.png", "paperA_chelsea"), ("rocket.jpg", "paperA_rocket"), ("camera.png", "paperA_camera")] {
            let img = try ImageFile.read(Self.images.appendingPathComponent(name))
            let ours = try ImagePreprocessing.paperA(img)
            let want = try PNG.read(Self.golden.appendingPathComponent("\(stem).png"))
            let d = maxDiff(ours, want)
            let mismatched = zip(ours.pixels, want.pixels).filter { $0 != $1 }.count
            print("paper A pre-processing \(name) \(img.width)x\(img.height) -> 224x224: max |ours - torchvision| = \(d)/255, \(mismatched) of \(want.pixels.count) bytes differ")
            // Tolerance: 1/255 on the [0, 1] scale (measured: see the printed line).
            XCTAssertLessThanOrEqual(d, 1, name)
            let t = try ImagePreprocessing.paperATensor(contentsOf: Self.images.appendingPathComponent(name))
            XCTAssertEqual(t.shape, [3, 224, 224])
            let wt = want.tensor()
            let dt = Discrepancy(t.scalars, wt.scalars, tolerance: Tolerance(absolute: 1.0 / 255 + 1e-6))
            XCTAssertTrue(dt.holds, "\(name): \(dt)")
        }
    }

    func testUpsamplingAndDatasetTransformMatchTorchvision() throws {
        // Imagenette-160 inputs are enlarged by Resize(256): upsampling path, landscape and square.
        for stem in ["small_chelsea", "small_camera_gray"] {
            let img = try JPEG.read(Self.golden.appendingPathComponent("fixtures/\(stem).jpg"))
            let ours = try ImagePreprocessing.paperA(img)
            let d = maxDiff(ours, try PNG.read(Self.golden.appendingPathComponent("paperA_\(stem).png")))
            print("paper A pre-processing (upsampling) \(stem) \(img.width)x\(img.height) -> 224x224: max |ours - torchvision| = \(d)/255")
            XCTAssertLessThanOrEqual(d, 1, stem)
        }
        let cam = try PNG.read(Self.images.appendingPathComponent("camera.png"))
        let ours = try ImagePreprocessing.resizeThenCenterCrop(cam)
        let d = maxDiff(ours, try PNG.read(Self.golden.appendingPathComponent("dataset_camera.png")))
        print("dataset transform Resize(256)+CenterCrop(224) camera.png 512x512: max |ours - torchvision| = \(d)/255")
        XCTAssertLessThanOrEqual(d, 1)
        // The two pipelines really differ on square inputs.
        XCTAssertNotEqual(ours, try ImagePreprocessing.paperA(cam))
    }

    func testResampleFixedPointAgainstDoubleReference() {
        var rng = SeededRNG(seed: 11)
        // Smooth-ish random image so rounding, not aliasing, dominates the difference.
        let w = 97, h = 61
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for y in 0..<h { for x in 0..<w { for c in 0..<3 {
            px[(y * w + x) * 3 + c] = UInt8(truncatingIfNeeded: (x * 2 + y * 3 + c * 40) + Int(rng.nextUInt64() % 16))
        } } }
        let img = RGBImage(width: w, height: h, pixels: px)
        for (ow, oh) in [(40, 25), (97, 30), (50, 61), (130, 90), (7, 3)] {
            let fast = PILResample.bilinear(img, width: ow, height: oh)
            let ref = PILResample.bilinearReference(img, width: ow, height: oh)
            let d = maxDiff(fast, ref)
            print("PIL bilinear \(w)x\(h) -> \(ow)x\(oh): max |fixed-point two-pass - double reference| = \(d)")
            XCTAssertLessThanOrEqual(d, 1)
        }
        XCTAssertEqual(PILResample.bilinear(img, width: w, height: h), img)
    }

    func testResizeSizeAndCenterCropRounding() throws {
        // torchvision: long side = int(256 * long / short).
        XCTAssertTrue(ImagePreprocessing.resizedSize(width: 451, height: 300, shortSide: 256) == (384, 256))
        XCTAssertTrue(ImagePreprocessing.resizedSize(width: 427, height: 640, shortSide: 256) == (256, 383))
        // CenterCrop offsets use Python's round (half to even): (341-224)/2 = 58.5 -> 58, (343-224)/2 = 59.5 -> 60.
        for (w, left) in [(341, 58), (343, 60), (226, 1)] {
            let img = RGBImage(width: w, height: 1, pixels: (0..<(w * 3)).map { UInt8(($0 / 3) % 256) })
            let c = try ImagePreprocessing.centerCrop(img, width: 224, height: 1)
            XCTAssertEqual(Int(c[0, 0, 0]), left, "width \(w)")
        }
        XCTAssertThrowsError(try ImagePreprocessing.centerCrop(RGBImage(width: 10, height: 10, gray: [UInt8](repeating: 0, count: 100)), width: 224, height: 224)) {
            XCTAssertTrue("\($0)".contains("larger than the 10x10 image"), "\($0)")
        }
    }

    func testTensorConversion() throws {
        let img = RGBImage(width: 2, height: 1, pixels: [0, 51, 255, 10, 20, 30])
        let t = img.tensor()
        XCTAssertEqual(t.shape, [3, 1, 2])
        XCTAssertEqual(t.scalars, [0, 10, 51, 20, 255, 30].map { Float($0) / 255 })
        XCTAssertEqual(try RGBImage(tensor: t), img)
        XCTAssertEqual(try RGBImage(tensor: t.reshaped([1, 3, 1, 2])), img)
        XCTAssertThrowsError(try RGBImage(tensor: Tensor(zeros: [2, 2, 2]))) { XCTAssertTrue("\($0)".contains("[2, 2, 2]")) }
    }
}
