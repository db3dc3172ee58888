import XCTest
import Foundation
import SIMDCore
import Recipes

final class StateDictTests: XCTestCase {
    func fixture(_ name: String) -> URL { TorchCheckpointTests.dir.appendingPathComponent(name) }

    static let tinySpecs = [
        ParameterSpec("conv1.weight", [4, 3, 3, 3]), ParameterSpec("bn1.weight", [4]), ParameterSpec("bn1.bias", [4]),
        ParameterSpec("bn1.running_mean", [4]), ParameterSpec("bn1.running_var", [4]),
        ParameterSpec("layer1.0.weight", [4, 4, 1, 1]), ParameterSpec("layer1.0.bias", [4]),
        ParameterSpec("fc.weight", [3, 4]), ParameterSpec("fc.bias", [3]),
    ]

    func testLoadsBothFormatsByContent() throws {
        let a = try StateDict(contentsOf: fixture("tiny_model.pth"))
        let b = try StateDict(contentsOf: fixture("tiny_model.safetensors"))
        XCTAssertEqual(a.names.count, 10)
        XCTAssertEqual(Set(a.names), Set(b.names))
        for n in a.names { XCTAssertEqual(a.tensors[n], b.tensors[n], n) }
        let z = try StateDict(contentsOf: fixture("zip64.pth"))       // ZIP64 records (sizes, offsets, end record)
        XCTAssertEqual(z.names, a.names)
        for n in a.names { XCTAssertEqual(z.tensors[n], a.tensors[n], n) }
    }

    func testMatchingAcceptsAndIgnoresNumBatchesTracked() throws {
        let sd = try StateDict(contentsOf: fixture("tiny_model.pth"))
        let w = try sd.matching(Self.tinySpecs, model: "tiny")
        XCTAssertEqual(w.count, 9)
        XCTAssertEqual(w["fc.weight"]?.shape, [3, 4])
    }

    func testMismatchNamesEveryProblemInOneError() throws {
        let sd = try StateDict(contentsOf: fixture("tiny_model.pth"))
        var specs = Self.tinySpecs.filter { $0.name != "fc.bias" }                 // fc.bias becomes unexpected
        specs[0] = ParameterSpec("conv1.weight", [4, 3, 7, 7])                      // wrong shape
        specs.append(ParameterSpec("layer2.0.weight", [8, 4, 3, 3]))               // missing
        XCTAssertThrowsError(try sd.matching(specs, model: "tiny")) { e in
            let m = "\(e)"
            print(m)
            XCTAssertTrue(m.contains("tiny_model.pth"), m)
            XCTAssertTrue(m.contains("conv1.weight: expected [4, 3, 7, 7], found [4, 3, 3, 3]"), m)
            XCTAssertTrue(m.contains("missing (1): layer2.0.weight [8, 4, 3, 3]"), m)
            XCTAssertTrue(m.contains("unexpected (1): fc.bias [3]"), m)
        }
    }

    func testDenseNetLegacyNames() throws {
        let names = ["features.conv0.weight", "features.norm0.running_var",
                     "features.denseblock1.denselayer1.norm.1.weight", "features.denseblock1.denselayer1.conv.1.weight",
                     "features.denseblock4.denselayer16.norm.2.running_mean", "features.denseblock4.denselayer16.conv.2.weight",
                     "features.transition1.norm.weight", "features.transition1.conv.weight", "features.norm5.bias", "classifier.weight",
                     "features.denseblock1.denselayer1.norm1.weight"]
        let t = Tensor(scalar: 1)
        // The last name is already modern, and would collide with the first legacy one: an error, not a silent overwrite.
        let all = StateDict(names: names, tensors: Dictionary(uniqueKeysWithValues: names.map { ($0, t) }), file: "d.pth")
        XCTAssertThrowsError(try all.mapped(StateDict.toTorchvisionNames(architecture: "densenet121"))) {
            XCTAssertTrue("\($0)".contains("two tensors map to 'features.denseblock1.denselayer1.norm1.weight'"), "\($0)")
        }
        let legacy = Array(names.dropLast())
        let sd = try StateDict(names: legacy, tensors: Dictionary(uniqueKeysWithValues: legacy.map { ($0, t) }), file: "d.pth")
            .mapped(StateDict.toTorchvisionNames(architecture: "densenet121"))
        XCTAssertEqual(sd.names, ["features.conv0.weight", "features.norm0.running_var",
                                  "features.denseblock1.denselayer1.norm1.weight", "features.denseblock1.denselayer1.conv1.weight",
                                  "features.denseblock4.denselayer16.norm2.running_mean", "features.denseblock4.denselayer16.conv2.weight",
                                  "features.transition1.norm.weight", "features.transition1.conv.weight", "features.norm5.bias", "classifier.weight"])
    }

    /// timm vgg11_bn names → torchvision: ConvMlp conv weights back to Linear, same row-major values.
    func testTimmVGGNames() throws {
        let fc1 = Tensor(shape: [6, 2, 7, 7]) { Float($0) * 0.01 }, fc2 = Tensor(shape: [5, 6, 1, 1]) { Float($0) }
        let timm: [(String, Tensor)] = [
            ("features.0.weight", Tensor(zeros: [64, 3, 3, 3])), ("features.1.running_mean", Tensor(zeros: [64])),
            ("pre_logits.fc1.weight", fc1), ("pre_logits.fc1.bias", Tensor(zeros: [6])),
            ("pre_logits.fc2.weight", fc2), ("pre_logits.fc2.bias", Tensor(zeros: [5])),
            ("head.fc.weight", Tensor(zeros: [3, 5])), ("head.fc.bias", Tensor(zeros: [3])),
        ]
        let sd = try StateDict(names: timm.map(\.0), tensors: Dictionary(uniqueKeysWithValues: timm), file: "timm.safetensors")
            .mapped(StateDict.toTorchvisionNames(architecture: "vgg11_bn"))
        XCTAssertEqual(sd.names, ["features.0.weight", "features.1.running_mean", "classifier.0.weight", "classifier.0.bias",
                                  "classifier.3.weight", "classifier.3.bias", "classifier.6.weight", "classifier.6.bias"])
        XCTAssertEqual(sd.tensors["classifier.0.weight"]?.shape, [6, 98])
        XCTAssertEqual(sd.tensors["classifier.0.weight"]?.scalars, fc1.scalars)
        XCTAssertEqual(sd.tensors["classifier.3.weight"]?.shape, [5, 6])
        // torchvision names are left alone (the mapping is idempotent)
        let again = try sd.mapped(StateDict.toTorchvisionNames(architecture: "vgg11_bn"))
        XCTAssertEqual(again.names, sd.names)
        XCTAssertEqual(try StateDict(names: ["fc.weight"], tensors: ["fc.weight": Tensor(zeros: [2, 2])], file: "r")
                        .mapped(StateDict.toTorchvisionNames(architecture: "resnet50")).names, ["fc.weight"])
    }

    /// Optional full-size check (skipped unless PTH_LARGE is set): a torchvision-sized checkpoint and its safetensors twin,
    /// written by `reference/weights/make_large_check.py <prefix> <arch>` (random-init torchvision model; for densenet121 the
    /// .pth has the legacy names, for vgg11_bn the .safetensors has timm's names; both are mapped to torchvision names).
    func testLargeCheckpointIfAvailable() throws {
        guard let base = ProcessInfo.processInfo.environment["PTH_LARGE"] else { throw XCTSkip("set PTH_LARGE=/path/prefix to run") }
        let arch = ProcessInfo.processInfo.environment["PTH_LARGE_ARCH"] ?? "resnet50"
        let t0 = Date()
        var pth = try StateDict(contentsOf: URL(fileURLWithPath: base + ".pth"))
        let t1 = Date()
        var ref = try StateDict(contentsOf: URL(fileURLWithPath: base + ".safetensors"))
        let t2 = Date()
        pth = try pth.mapped(StateDict.toTorchvisionNames(architecture: arch))
        ref = try ref.mapped(StateDict.toTorchvisionNames(architecture: arch))
        _ = try pth.matching(ref.names.map { ParameterSpec($0, ref.tensors[$0]!.shape) }, model: arch)
        let hash = try SHA256.hexDigest(ofFile: URL(fileURLWithPath: base + ".pth"))
        let t3 = Date()
        var maxDiff = 0.0, count = 0
        for n in ref.names {
            let a = try XCTUnwrap(pth.tensors[n], n), b = ref.tensors[n]!
            maxDiff = max(maxDiff, Discrepancy(a, b).worst)   // +infinity on a shape mismatch or a NaN
            count += a.count
        }
        XCTAssertEqual(Set(pth.names), Set(ref.names))
        print(String(format: "large \(arch): %d tensors, %d scalars; .pth load %.2f s, safetensors load %.2f s, SHA-256 %.2f s; max |diff| = %g",
                     pth.names.count, count, t1.timeIntervalSince(t0), t2.timeIntervalSince(t1), t3.timeIntervalSince(t2), maxDiff))
        print("sha256", hash)
        XCTAssertEqual(maxDiff, 0)
    }
}
