import XCTest
import Foundation
import SIMDCore
import Recipes

/// Fixtures: reference/weights/make_pth_fixtures.py (PyTorch torch.save; expected tensors as safetensors).
final class TorchCheckpointTests: XCTestCase {
    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/weights")
    func fixture(_ name: String) -> URL { Self.dir.appendingPathComponent(name) }

    func assertMatches(_ pth: String, _ reference: String, order: [String]? = nil) throws {
        let ckpt = try TorchCheckpoint(contentsOf: fixture(pth))
        let ref = try SafeTensors(contentsOf: fixture(reference))
        XCTAssertEqual(Set(ckpt.names), Set(ref.names))
        if let order { XCTAssertEqual(ckpt.names, order) }
        var maxDiff = 0.0
        for name in ref.names {
            let a = try XCTUnwrap(ckpt.tensors[name], name), b = try ref.tensor(name)
            maxDiff = max(maxDiff, Discrepancy(a, b).worst)   // +infinity on a shape mismatch or a NaN
        }
        print("\(pth) vs \(reference): \(ckpt.names.count) tensors, max |diff| = \(maxDiff)")
        XCTAssertEqual(maxDiff, 0)   // same conversions (f16/bf16/f64/i64 -> f32) as torch's .float()
    }

    func testTinyModelStateDict() throws {
        try assertMatches("tiny_model.pth", "tiny_model.safetensors", order: [
            "conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean", "bn1.running_var", "bn1.num_batches_tracked",
            "layer1.0.weight", "layer1.0.bias", "fc.weight", "fc.bias"])
        let ckpt = try TorchCheckpoint(contentsOf: fixture("tiny_model.pth"))
        XCTAssertEqual(ckpt.tensors["bn1.num_batches_tracked"], Tensor(scalar: 2))   // int64 buffer -> Float
        XCTAssertEqual(ckpt.tensors["conv1.weight"]?.shape, [4, 3, 3, 3])
    }

    func testViewsStridesSharedStorageAndDtypes() throws {
        try assertMatches("views.pth", "views.safetensors", order: [
            "transposed", "strided", "shared.a", "shared.b", "half", "bf16", "double", "long", "scalar", "param"])
        let c = try TorchCheckpoint(contentsOf: fixture("views.pth"))
        // transposed = (arange(24).reshape(4,6)/8 - 1).t(): element [i,j] = (6j + i)/8 - 1
        let t = try XCTUnwrap(c.tensors["transposed"])
        XCTAssertEqual(t[5, 3], Float(6 * 3 + 5) / 8 - 1)
        XCTAssertEqual(c.tensors["long"]?.scalars, [Float(3), -7, 1_048_576])
    }

    func testMaliciousPickleIsRefusedAndNothingRuns() throws {
        try? FileManager.default.removeItem(atPath: "/tmp/pwned")
        let url = fixture("malicious.pth")
        XCTAssertThrowsError(try TorchCheckpoint(contentsOf: url)) { e in
            let msg = "\(e)"
            print("malicious.pth ->", msg)
            XCTAssertTrue(msg.contains("posix.system") || msg.contains("os.system"), msg)
            XCTAssertTrue(msg.contains("malicious.pth"), msg)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/pwned"))
    }

    /// Hand-built pickles: other dangerous globals are refused at GLOBAL time, before any REDUCE.
    func testOtherGlobalsRefused() {
        for (module, name) in [("builtins", "eval"), ("os", "system"), ("subprocess", "Popen"), ("torch", "load"),
                               ("collections", "defaultdict"), ("builtins", "getattr")] {
            var p: [UInt8] = [0x80, 0x02, 0x63] + Array("\(module)\n\(name)\n".utf8)
            p += [0x58] + withUnsafeBytes(of: UInt32(2).littleEndian, Array.init) + Array("hi".utf8) + [0x85, 0x52, 0x2e]
            var vm = RestrictedUnpickler(data: Data(p), file: "crafted.pkl")
            XCTAssertThrowsError(try vm.load()) {
                XCTAssertTrue("\($0)".contains("'\(module).\(name)'"), "\($0)")
                XCTAssertTrue("\($0)".contains("crafted.pkl"))
            }
        }
        // A storage type used as a callable is refused too.
        var p: [UInt8] = [0x80, 0x02, 0x63] + Array("torch\nFloatStorage\n".utf8) + [0x29, 0x52, 0x2e]
        var vm = RestrictedUnpickler(data: Data(p), file: "crafted.pkl")
        XCTAssertThrowsError(try vm.load()) { XCTAssertTrue("\($0)".contains("not allowed"), "\($0)") }
        p = [0x80, 0x02, 0x63] + Array("collections\nOrderedDict\n".utf8) + [0x29, 0x81, 0x2e]   // NEWOBJ
        vm = RestrictedUnpickler(data: Data(p), file: "crafted.pkl")
        XCTAssertThrowsError(try vm.load()) { XCTAssertTrue("\($0)".contains("refused"), "\($0)") }
    }

    func testTruncatedFile() throws {
        let data = try Data(contentsOf: fixture("tiny_model.pth"))
        for cut in [data.count - 1, data.count - 30, data.count / 2, 100] {
            XCTAssertThrowsError(try TorchCheckpoint(data: data.prefix(cut), file: "cut.pth")) { e in
                XCTAssertTrue("\(e)".contains("cut.pth"), "\(e)")
                if cut == data.count / 2 { print("truncated at \(cut):", e) }
            }
        }
    }

    func testNotAZipAndLegacyAndCompressed() throws {
        XCTAssertThrowsError(try TorchCheckpoint(data: Data("hello world, not a checkpoint".utf8), file: "x.pth")) {
            XCTAssertTrue("\($0)".contains("not a ZIP file"), "\($0)")
        }
        XCTAssertThrowsError(try TorchCheckpoint(contentsOf: fixture("legacy.pth"))) {
            XCTAssertTrue("\($0)".contains("legacy (non-zip)"), "\($0)"); XCTAssertTrue("\($0)".contains("legacy.pth"))
        }
        XCTAssertThrowsError(try TorchCheckpoint(contentsOf: fixture("compressed.pth"))) {
            print("compressed.pth ->", $0)
            XCTAssertTrue("\($0)".contains("compressed (deflate)"), "\($0)")
        }
        XCTAssertThrowsError(try TorchCheckpoint(contentsOf: fixture("no-such.pth"))) {
            XCTAssertTrue("\($0)".contains("no-such.pth"))
        }
    }

    /// A corrupted storage byte is caught by the ZIP CRC-32; a view past its storage is refused.
    func testCorruptionAndOutOfBoundsView() throws {
        var data = try Data(contentsOf: fixture("tiny_model.pth"))
        let zip = try ZipArchive(data: data, file: "t")
        let e = try XCTUnwrap(zip.entries.first { $0.name.hasSuffix("data/0") })
        let h = e.localHeaderOffset
        let start = h + 30 + Int(data[h + 26]) + 256 * Int(data[h + 27]) + Int(data[h + 28]) + 256 * Int(data[h + 29])
        data[start + 5] ^= 0x40                                    // flip one bit of conv1.weight
        XCTAssertThrowsError(try TorchCheckpoint(data: data, file: "flipped.pth")) {
            XCTAssertTrue("\($0)".contains("CRC-32"), "\($0)"); XCTAssertTrue("\($0)".contains("flipped.pth"))
        }
        XCTAssertEqual(CRC32.checksum(Data("123456789".utf8)), 0xCBF4_3926)
        // zlib's CRC-32 vs a bit-at-a-time reference on lengths around zlib's 8-byte step.
        func bitwiseCRC32(_ d: Data) -> UInt32 {
            var c: UInt32 = 0xFFFF_FFFF
            for b in d { c ^= UInt32(b); for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 } }
            return ~c
        }
        let bytes = Data((0..<1037).map { UInt8(truncatingIfNeeded: $0 &* 167 &+ 13) })
        var mismatches = 0
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 100, 1037] where CRC32.checksum(bytes.prefix(n)) != bitwiseCRC32(bytes.prefix(n)) { mismatches += 1 }
        XCTAssertEqual(mismatches, 0)

        let s = TorchStorageRef(dtype: .float32, key: "0", location: "cpu", count: 6)
        let raw = Data(count: 24)
        let ok = TorchTensorRef(storage: s, offset: 2, shape: [2, 2], strides: [2, 1])
        XCTAssertEqual(try TorchCheckpoint.gather(ok, raw: raw, name: "w", file: "f.pth").shape, [2, 2])
        let bad = TorchTensorRef(storage: s, offset: 3, shape: [2, 2], strides: [2, 1])
        XCTAssertThrowsError(try TorchCheckpoint.gather(bad, raw: raw, name: "w", file: "f.pth")) {
            XCTAssertTrue("\($0)".contains("out of bounds"), "\($0)"); XCTAssertTrue("\($0)".contains("'w'"))
        }
        let short = TorchStorageRef(dtype: .float32, key: "0", location: "cpu", count: 7)
        XCTAssertThrowsError(try TorchCheckpoint.gather(TorchTensorRef(storage: short, offset: 0, shape: [7], strides: [1]),
                                                        raw: raw, name: "w", file: "f.pth")) {
            XCTAssertTrue("\($0)".contains("truncated"), "\($0)")
        }
    }

    /// Corrupted files never crash and never load wrong numbers: 3000 seeded single-byte changes at random
    /// positions either throw a WeightsError naming the file, or (when they hit bytes nothing reads, such as ZIP
    /// alignment padding and timestamps) load exactly the original tensors. The pickle VM alone is also fed
    /// mutated data.pkl bytes (no CRC in the way): every mutant it refuses is refused with a
    /// WeightsError naming the file, never another error.
    func testByteFlipsNeverCrash() throws {
        var rng = SeededRNG(seed: 42)
        var thrown = 0, loaded = 0
        for name in ["tiny_model.pth", "views.pth", "zip64.pth"] {
            let original = try Data(contentsOf: fixture(name))
            let clean = try TorchCheckpoint(data: original, file: name)
            for _ in 0..<1000 {
                var d = original
                d[rng.below(d.count)] = UInt8(truncatingIfNeeded: rng.nextUInt64())
                do {
                    let c = try TorchCheckpoint(data: d, file: "flip-\(name)")
                    XCTAssertEqual(c.names, clean.names, "a corrupted \(name) loaded different names")
                    XCTAssertEqual(c.tensors, clean.tensors, "a corrupted \(name) loaded different values")
                    loaded += 1
                } catch let e as WeightsError {
                    XCTAssertEqual(e.file, "flip-\(name)"); thrown += 1
                }
            }
        }
        XCTAssertEqual(thrown + loaded, 3000)
        // The pickle VM alone on mutated data.pkl (no CRC in the way).
        let zip = try ZipArchive(contentsOf: fixture("tiny_model.pth"))
        let pkl = try zip.data(for: zip.names.first { $0.hasSuffix("data.pkl") }!)
        var vmThrown = 0
        for _ in 0..<3000 {
            var d = pkl
            d[rng.below(d.count)] = UInt8(truncatingIfNeeded: rng.nextUInt64())
            var vm = RestrictedUnpickler(data: d, file: "p")
            do { _ = try vm.load() } catch let e as WeightsError {
                XCTAssertEqual(e.file, "p", "\(e)"); vmThrown += 1
            } catch {
                XCTFail("a mutated data.pkl gave an untyped error: \(error)")
            }
        }
        print("byte flips: \(loaded) loaded unchanged, \(thrown) refused; data.pkl mutations: \(vmThrown)/3000 refused")
        XCTAssertGreaterThan(thrown, 1000, "most flips land in checked bytes (headers, CRC-protected entries)")
        XCTAssertGreaterThan(vmThrown, 1000, "most data.pkl mutations break an opcode, a length or a name")
    }
}
