// Every torchvision architecture `load_model` names, checked against PyTorch's own parameter
// names and shapes (Tests/Fixtures/models/torchvision_parameters.tsv, written by
// reference/models/make_parameter_list.py); and weights from a file at any path — a fine-tuned
// 10-class ResNet50 as .pth and as .safetensors — loaded and explained.
import Foundation
import XCTest
import Recipes
import SIMDCore

final class ImageNetModelZooTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func tempDir() throws -> URL {
        let d = FileManager.default.temporaryDirectory.appendingPathComponent("zoo tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: d) }
        return d
    }

    // MARK: Architectures against PyTorch

    /// PyTorch's list: architecture → (IMAGENET1K_V1 URL, [(name, shape)]).
    func torchvisionList() throws -> [String: (url: String, parameters: [(String, [Int])])] {
        let file = Self.root.appendingPathComponent("Tests/Fixtures/models/torchvision_parameters.tsv")
        var out: [String: (url: String, parameters: [(String, [Int])])] = [:]
        for line in try String(contentsOf: file, encoding: .utf8).split(separator: "\n") where !line.hasPrefix("#") {
            let f = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            XCTAssertEqual(f.count, 3, String(line))
            guard f.count == 3 else { continue }
            var entry = out[f[0]] ?? ("", [])
            if f[1] == "@weights" { entry.url = f[2] } else { entry.parameters.append((f[1], f[2].split(separator: ",").map { Int($0)! })) }
            out[f[0]] = entry
        }
        return out
    }

    func testEveryArchitectureHasTorchvisionsParameterNamesAndShapes() throws {
        let list = try torchvisionList()
        XCTAssertEqual(Set(list.keys), Set(ImageNetArchitecture.names), "the PyTorch list covers exactly the architectures load_model names")
        for a in ImageNetArchitecture.allCases {
            guard let ref = list[a.rawValue] else { XCTFail("\(a.rawValue) is not in the PyTorch list"); continue }
            // Building declares names and shapes; no weights are allocated until read.
            let net = ImageNetModels.make(a)
            XCTAssertEqual(net.name, a.rawValue)
            let ours = net.parameterShapes
            XCTAssertEqual(ours.count, ref.parameters.count, a.rawValue)
            for (i, (mine, theirs)) in zip(ours, ref.parameters).enumerated() where mine.0 != theirs.0 || mine.1 != theirs.1 {
                XCTFail("\(a.rawValue) entry \(i): ours \(mine.0) \(mine.1), torchvision \(theirs.0) \(theirs.1)")
                break
            }
            // The catalogue's file is torchvision's IMAGENET1K_V1, with the SHA-256 prefix in its name.
            let file = try XCTUnwrap(WeightCatalogue.torchvisionFiles[a])
            XCTAssertEqual(file.url.absoluteString, ref.url, a.rawValue)
            XCTAssertEqual(file.hashPrefix?.count, 8, a.rawValue)
            XCTAssertEqual(WeightCatalogue.named(a.rawValue), file)
            XCTAssertEqual(ImageNetModels.make(a, classes: 10).parameterShapes.first { $0.0 == a.classifierWeight }?.1.first, 10)
        }
        XCTAssertEqual(WeightCatalogue.torchvisionFiles[.resnet18]?.fileName, "resnet18-f37072fd.pth")
        XCTAssertEqual(WeightCatalogue.torchvisionFiles[.resnet18]?.hashPrefix, "f37072fd")
    }

    /// The new depths compute: a basic-block ResNet and a VGG without batch norm give finite logits.
    func testSmallVariantsRun() throws {
        for a in [ImageNetArchitecture.resnet18, .vgg11] {
            var net = ImageNetModels.make(a, classes: 7)
            func fill<M: ImageClassifier>(_ m: M) throws -> any ImageClassifier { var m = m; try SyntheticWeights.fill(&m, seed: 3); return m }
            net = try fill(net)
            func logits<M: ImageClassifier>(_ m: M) throws -> Tensor {
                let tape = Tape(recording: false)
                return tape.value(try PixelModel(m).logits(tape, tape.input(SyntheticWeights.images(count: 1, size: 32)), policy: .vanilla))
            }
            let y = try logits(net)
            XCTAssertEqual(y.shape, [1, 7], a.rawValue)
            XCTAssertTrue(y.isFinite, a.rawValue)
            XCTAssertGreaterThan(y.scalars.map(abs).max()!, 0, a.rawValue)
        }
    }

    // MARK: Own weights

    /// A 10-class ResNet50 with synthetic weights, as an ordered state_dict.
    func tunedResNet50() throws -> (any ImageClassifier, [(String, Tensor)]) {
        var net = ResNet.resnet50(classes: 10)
        try SyntheticWeights.fill(&net, seed: 10)
        return (net, net.parameterShapes.map { ($0.0, net.parameters[$0.0]!) })
    }

    func testPthWriterRoundTrips() throws {
        let t: [(String, Tensor)] = [("a.weight", Tensor(shape: [2, 3], scalars: [1, -2, 3.5, 0, 1e-8, -0.25])), ("a.bias", Tensor(shape: [2], scalars: [7, 8]))]
        let url = try tempDir().appendingPathComponent("small.pth")
        try TorchCheckpoint.write(t, to: url)
        let back = try TorchCheckpoint(contentsOf: url)
        XCTAssertEqual(back.names, ["a.weight", "a.bias"])
        XCTAssertEqual(back.tensors["a.weight"], t[0].1)
        XCTAssertEqual(back.tensors["a.bias"], t[1].1)
        // Entries are 64-byte aligned, as torch.save writes them.
        let zip = try ZipArchive(contentsOf: url)
        XCTAssertEqual(Set(zip.names), ["small/data.pkl", "small/byteorder", "small/data/0", "small/data/1", "small/version"])
    }

    /// With the reference environment ($TORCH_PYTHON, reference/README.md), PyTorch itself reads the
    /// file: torch.load(weights_only=True) gives the same names, shapes and values.
    func testPthWriterIsReadByPyTorch() throws {
        guard let python = ProcessInfo.processInfo.environment["TORCH_PYTHON"], FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("TORCH_PYTHON is not set (reference/setup-env.sh)")
        }
        let (_, tensors) = try tunedResNet50()
        let url = try tempDir().appendingPathComponent("tuned.pth")
        try TorchCheckpoint.write(tensors, to: url)
        let script = """
        import sys, torch
        sd = torch.load(sys.argv[1], weights_only=True)
        print(len(sd), list(sd)[0], tuple(sd["fc.weight"].shape), sd["fc.weight"].dtype, float(sd["fc.weight"].double().sum()), float(sd["conv1.weight"][0, 0, 0, 0]))
        """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: python)
        p.arguments = ["-c", script, url.path]
        let pipe = Pipe()
        p.standardOutput = pipe; p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        XCTAssertEqual(p.terminationStatus, 0, out)
        let fc = tensors.first { $0.0 == "fc.weight" }!.1
        let sum = fc.scalars.reduce(0.0) { $0 + Double($1) }
        let f = out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        XCTAssertEqual(f.count, 7, out)
        guard f.count == 7 else { return }
        XCTAssertEqual(Int(f[0]), tensors.count)
        XCTAssertEqual(f[1], "conv1.weight")
        XCTAssertEqual(f[2] + f[3], "(10,2048)")
        XCTAssertEqual(f[4], "torch.float32")
        XCTAssertEqual(Double(f[5])!, sum, accuracy: 1e-9 * max(1, abs(sum)))
        XCTAssertEqual(Float(f[6]), tensors[0].1.scalars[0])
    }

    func recipe(_ dir: URL, weights: String, classes: String?, target: String = "predicted") throws -> String {
        let path = dir.appendingPathComponent("tuned.yaml").path
        try """
        title: tuned
        cells:
          - step: load_model
            id: net
            with:
              architecture: resnet50
              weights: \(weights)
        \(classes.map { "      classes: \"\($0)\"" } ?? "")
          - step: load_images
            id: imgs
            with:
              size: 32
              files:
                - {name: chelsea, label: 281, file: data/images/chelsea.png}
                - {name: rocket, label: 657, file: data/images/rocket.jpg}
          - step: explain
            id: maps
            with: {model: net, data: imgs, target: \(target), methods: [gradient, excitation_pullback]}
          - step: ascend
            id: pga
            with: {model: net, data: imgs, targets: "0, 3", method: gradient, steps: 1, alpha: 2, eps: 10}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func testOwnTenClassResNet50FromPthAndSafetensorsAtAnyPath() throws {
        let dir = try tempDir()
        let (net, tensors) = try tunedResNet50()
        let weightsDir = dir.appendingPathComponent("my models/fine tuned")
        try FileManager.default.createDirectory(at: weightsDir, withIntermediateDirectories: true)
        let pth = weightsDir.appendingPathComponent("resnet50-tuned.pth")
        let st = weightsDir.appendingPathComponent("resnet50-tuned.safetensors")
        try TorchCheckpoint.write(tensors, to: pth)
        try SafeTensors.write(Dictionary(uniqueKeysWithValues: tensors), to: st)
        let classes = weightsDir.appendingPathComponent("classes.txt")
        let names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
        try (names.joined(separator: "\n") + "\n").write(to: classes, atomically: true, encoding: .utf8)

        // What the loaded model must compute: the same network, evaluated here.
        let images = try ImageStore().dataset([ImageSource(name: "chelsea", label: 281, file: "data/images/chelsea.png"),
                                               ImageSource(name: "rocket", label: 657, file: "data/images/rocket.jpg")], size: 32)
        var x = images.images
        for i in 0..<x.count { x.scalars[i] = 2 * x.scalars[i] - 1 }
        func logits<M: ImageClassifier>(_ m: M) throws -> Tensor {
            let tape = Tape(recording: false)
            return tape.value(try PixelModel(m).logits(tape, tape.input(x), policy: .vanilla))
        }
        let expected = try logits(net)

        for (file, sha) in [(pth, true), (st, false)] {
            let digest = try SHA256.hexDigest(ofFile: file)
            let w = "{file: \"\(file.path)\"\(sha ? ", sha256: \(digest)" : ""), names: torchvision}"
            let out = dir.appendingPathComponent("run-\(file.pathExtension)")
            let r = try RecipeEngine.run(RunSettings(recipePath: try recipe(dir, weights: w, classes: classes.path), outDirectory: out.path),
                                         verify: false, updateGoldens: false)
            XCTAssertTrue(r.summary.contains("net.classes"), r.summary)
            let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("metrics.json"))) as! [String: Any]
            XCTAssertEqual(metrics["net.classes"] as? Double, 10, file.lastPathComponent)
            let got = try NPY.read(out.appendingPathComponent("maps/logits.npy"))
            XCTAssertEqual(got.shape, [2, 10])
            XCTAssertEqual(got.floats, expected.scalars, "\(file.lastPathComponent): the loaded weights compute what the written ones do")
            let maps = try NPY.read(out.appendingPathComponent("maps/attributions.npy"))
            XCTAssertEqual(maps.shape, [2, 2, 3, 32, 32])
            XCTAssertGreaterThan(maps.floats.map(abs).max()!, 0)
            // The top-5 table names the model's classes from classes.txt.
            let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            XCTAssertTrue(report.contains(file.path), "the report says which file was loaded")
            XCTAssertTrue(report.contains("| 0: tabby") && report.contains("| airplane") && report.contains("| cat"), report)
            XCTAssertEqual(try NPY.read(out.appendingPathComponent("pga/logits_after.npy")).shape, [2, 2, 10])
            let manifest = try String(contentsOf: out.appendingPathComponent("manifest.json"), encoding: .utf8)
            XCTAssertTrue(manifest.contains(digest), "the manifest records the weight file's SHA-256")
        }

        // Without `classes:` the classes are indices; with a label that the model lacks, a clear error.
        let out = dir.appendingPathComponent("run-indices")
        _ = try RecipeEngine.run(RunSettings(recipePath: try recipe(dir, weights: "{file: \"\(st.path)\"}", classes: nil), outDirectory: out.path),
                                 verify: false, updateGoldens: false)
        XCTAssertEqual(try NPY.read(out.appendingPathComponent("maps/logits.npy")).shape, [2, 10])
        let e = errorText { _ = try RecipeEngine.run(RunSettings(recipePath: try self.recipe(dir, weights: "{file: \"\(st.path)\"}", classes: nil, target: "label"),
                                                                  outDirectory: dir.appendingPathComponent("run-bad").path), verify: false, updateGoldens: false) }
        XCTAssertTrue(e.contains("target 281 out of range for 10 classes"), e)
    }

    func errorText(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    func testOwnWeightErrorsNameTensorExpectedAndFound() throws {
        let dir = try tempDir()
        let (_, tensors) = try tunedResNet50()
        let pth = dir.appendingPathComponent("tuned.pth")
        try TorchCheckpoint.write(tensors, to: pth)
        func run(_ yaml: String) -> String {
            errorText {
                let path = dir.appendingPathComponent("bad.yaml").path
                try yaml.write(toFile: path, atomically: true, encoding: .utf8)
                _ = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: dir.appendingPathComponent("out").path), verify: false, updateGoldens: false)
            }
        }
        // A ResNet50 file loaded as ResNet18: every mis-shaped tensor, expected and found.
        let t1 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet18, weights: {file: \"\(pth.path)\"}}\n")
        XCTAssertTrue(t1.contains("state_dict does not match resnet18"), t1)
        XCTAssertTrue(t1.contains("layer1.0.conv1.weight: expected [64, 64, 3, 3], found [64, 64, 1, 1]"), t1)
        XCTAssertTrue(t1.contains(pth.path), t1)
        // No classifier tensor: says which tensor it looked for.
        let partial = dir.appendingPathComponent("partial.safetensors")
        try SafeTensors.write(["conv1.weight": tensors[0].1], to: partial)
        let t2 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: \"\(partial.path)\"}}\n")
        XCTAssertTrue(t2.contains("has no tensor 'fc.weight'"), t2)
        // A wrong SHA-256: expected and found.
        let zeros = String(repeating: "0", count: 64)
        let t3 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: \"\(pth.path)\", sha256: \(zeros)}}\n")
        XCTAssertTrue(t3.contains("expected SHA-256 \(zeros), got \(try SHA256.hexDigest(ofFile: pth))"), t3)
        // A missing file names where it looked; a class-names file of the wrong length says both counts.
        let t4 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: nowhere/tuned.pth}}\n")
        XCTAssertTrue(t4.contains("nowhere/tuned.pth is in none of"), t4)
        let three = dir.appendingPathComponent("three.txt")
        try "a\nb\nc\n".write(to: three, atomically: true, encoding: .utf8)
        let t5 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: \"\(pth.path)\"}, classes: \"\(three.path)\"}\n")
        XCTAssertTrue(t5.contains("3 class names, but there are 10 classes"), t5)
        // Keys: an unknown key in `weights`, an unknown name scheme, timm for an uncatalogued depth.
        let t6 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: a.pth, sha: x}}\n")
        XCTAssertTrue(t6.contains("unknown key 'sha'"), t6)
        let t7 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet50, weights: {file: a.pth, names: keras}}\n")
        XCTAssertTrue(t7.contains("keras"), t7)
        let t8 = run("title: x\ncells:\n  - step: load_model\n    id: net\n    with: {architecture: resnet18, weights: timm}\n")
        XCTAssertTrue(t8.contains("timm weights are catalogued for resnet50, vgg11_bn, densenet121"), t8)
    }
}
