import XCTest
import Recipes
import SIMDCore

/// The kernel machine of averaged gates, against an explicit computation on a tiny FC net.
final class KernelMachineTests: XCTestCase {
    // MARK: Helpers

    /// y = W v + b for W [out, in] (row-major).
    func affine(_ w: Tensor, _ b: Tensor, _ v: [Double]) -> [Double] {
        let out = w.shape[0], inp = w.shape[1]
        return (0..<out).map { o in (0..<inp).reduce(Double(b.scalars[o])) { $0 + Double(w.scalars[o * inp + $1]) * v[$1] } }
    }

    /// Wᵀ u.
    func transposed(_ w: Tensor, _ u: [Double]) -> [Double] {
        let out = w.shape[0], inp = w.shape[1]
        return (0..<inp).map { i in (0..<out).reduce(0.0) { $0 + Double(w.scalars[$1 * inp + i]) * u[$1] } }
    }

    func tinyNet() throws -> FCNet { try FCNet(inputs: 3, hidden: [4, 3], classes: 2, seed: 11) }

    // MARK: Tests

    func testGradientAndLogitsMatchTheExplicitGatedLinearModel() throws {
        let net = try tinyNet()
        let x = Tensor(shape: [2, 3], scalars: [0.5, -1, 0.25, -0.3, 0.8, 1.2])
        // Gates chosen by hand: some fixed (0 or 1), some averaged.
        let g1: [Float] = [1, 0, 0.5, 0.25, 0, 1, 1, 0.75]
        let g2: [Float] = [0.5, 1, 0, 1, 0.2, 1]
        let km = try KernelMachine(layers: ["relu1", "relu2"], examples: 2, gates: [g1, g2])
        let targets = [1, 0]
        let (logits, grad) = try km.gradient(of: net, images: x, targets: targets)
        let p = net.parameters
        for i in 0..<2 {
            let xi = (0..<3).map { Double(x.scalars[i * 3 + $0]) }
            let a1 = affine(p["fc1.weight"]!, p["fc1.bias"]!, xi).enumerated().map { $1 * Double(g1[i * 4 + $0]) }
            let a2 = affine(p["fc2.weight"]!, p["fc2.bias"]!, a1).enumerated().map { $1 * Double(g2[i * 3 + $0]) }
            let f = affine(p["fc3.weight"]!, p["fc3.bias"]!, a2)
            for c in 0..<2 { XCTAssertEqual(Double(logits.scalars[i * 2 + c]), f[c], accuracy: 1e-5) }
            var u = [0.0, 0.0]; u[targets[i]] = 1
            let d2 = transposed(p["fc3.weight"]!, u).enumerated().map { $1 * Double(g2[i * 3 + $0]) }
            let d1 = transposed(p["fc2.weight"]!, d2).enumerated().map { $1 * Double(g1[i * 4 + $0]) }
            let dx = transposed(p["fc1.weight"]!, d1)
            for k in 0..<3 { XCTAssertEqual(Double(grad.scalars[i * 3 + k]), dx[k], accuracy: 1e-5) }
        }
    }

    func testGatesOfTheFinalModelAloneGiveTheVanillaGradient() throws {
        // The degenerate case the kernel machine avoids: one checkpoint, the model itself.
        let net = try FCNet(inputs: 6, hidden: [8, 5], classes: 3, seed: 3)
        var rng = SeededRNG(seed: 9)
        let x = rng.uniformTensor([4, 6], bound: 1)
        let targets = [0, 1, 2, 1]
        let km = try KernelMachine(checkpoints: [try GatePattern(of: net, probe: x)])
        XCTAssertEqual(km.stableFraction, 1)
        let (kmLogits, kmGrad) = try km.gradient(of: net, images: x, targets: targets)
        let (logits, vanilla) = try ExplanationMethod.pullback(net, x, targets: targets, policy: .vanilla)
        for (a, b) in zip(kmLogits.scalars, logits.scalars) { XCTAssertEqual(a, b, accuracy: 1e-5) }
        for c in try KernelMachine.cosines(kmGrad, vanilla) { XCTAssertEqual(c, 1, accuracy: 1e-6) }
        for f in try KernelMachine.logitFractions(machine: kmLogits, network: logits, targets: targets) { XCTAssertEqual(f, 1, accuracy: 1e-5) }
        for e in try KernelMachine.logitErrors(machine: kmLogits, network: logits) { XCTAssertEqual(e, 0, accuracy: 1e-5) }
    }

    func testCheckpointGatesAreMeanActivity() throws {
        let a = try GatePattern(layers: ["r"], examples: 2, preActivations: [[1, -1, 2, 3]])
        let b = try GatePattern(layers: ["r"], examples: 2, preActivations: [[1, 1, -2, 3]])
        let c = try GatePattern(layers: ["r"], examples: 2, preActivations: [[1, -1, -2, 3]])
        let c2 = try GatePattern(layers: ["r"], examples: 2, preActivations: [[0.5, -0.5, -1, 4]])
        let km = try KernelMachine(checkpoints: [a, b, c, c2])
        XCTAssertEqual(km.gates, [[1, 0.25, 0.25, 1]])
        XCTAssertEqual(km.stableFraction, 0.5)
        XCTAssertEqual(km.stableFractions, [0.5])
        let other = try GatePattern(layers: ["q"], examples: 2, preActivations: [[1, 1, 1, 1]])
        XCTAssertThrowsError(try KernelMachine(checkpoints: [a, other]))
        XCTAssertThrowsError(try KernelMachine(checkpoints: []))
        XCTAssertThrowsError(try KernelMachine(layers: ["r"], examples: 2, gates: [[0, 1.5, 0, 0]]))
    }

    func testCosinesAndMismatches() throws {
        let a = Tensor(shape: [3, 2], scalars: [1, 0, 1, 1, 0, 0])
        let b = Tensor(shape: [3, 2], scalars: [0, 2, -2, -2, 1, 1])
        let c = try KernelMachine.cosines(a, b)
        XCTAssertEqual(c[0], 0, accuracy: 1e-12); XCTAssertEqual(c[1], -1, accuracy: 1e-12); XCTAssertEqual(c[2], 0)
        XCTAssertThrowsError(try KernelMachine.cosines(a, Tensor(zeros: [2, 3])))
        let km = try KernelMachine(layers: ["relu1", "relu2"], examples: 2, gates: [[Float](repeating: 1, count: 8), [Float](repeating: 1, count: 6)])
        XCTAssertThrowsError(try km.gradient(of: try tinyNet(), images: Tensor(zeros: [3, 3]), targets: [0, 0, 0]))
        XCTAssertThrowsError(try km.gradient(of: try tinyNet(), images: Tensor(zeros: [2, 3]), targets: [0, 2]))
        let wrongLayers = try KernelMachine(layers: ["relu1", "reluX"], examples: 2, gates: [[Float](repeating: 1, count: 8), [Float](repeating: 1, count: 6)])
        XCTAssertThrowsError(try wrongLayers.gradient(of: try tinyNet(), images: Tensor(zeros: [2, 3]), targets: [0, 1]))
    }

    func testKernelAlignmentStepRejectsBadSettingsNamingTheLine() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("kernel-alignment-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases = [("model: mnist_cn", "did you mean 'mnist_cnn'"), ("temperatures: [0.3, -1]", "temperatures must be"),
                     ("checkpoints: 0", "checkpoints must be"), ("hidden: []", "hidden must be")]
        for (setting, expected) in cases {
            let yaml = """
            title: "bad kernel alignment"
            paper: A
            figure: t
            summary: "x"
            cells:
              - step: load_data
                id: d
                with: {dataset: mnist5k, split: test}
              - step: kernel_alignment
                id: km
                with: {train: d, probe: d, \(setting)}
            """
            let path = dir.appendingPathComponent("bad.yaml")
            try yaml.write(to: path, atomically: true, encoding: .utf8)
            do {
                _ = try RecipeEngine.run(RunSettings(recipePath: path.path, dryRun: true), verify: false, updateGoldens: false)
                XCTFail("\(setting): expected an error")
            } catch {
                let text = "\(error)"
                XCTAssertTrue(text.contains(expected), text)
                XCTAssertTrue(text.contains("bad.yaml:11:"), text)
            }
        }
    }
}

/// The value / feature split of the tangent kernel (NeurIPS 2020 Figure 2, right), against explicit
/// gradients of a one-hidden-layer net.
final class TangentKernelTests: XCTestCase {
    func testOneHiddenLayerKernelMatchesExplicitGradients() throws {
        // f(x) = v · (g ⊙ W x), g = 1[W x > 0], no biases: df/dv = g ⊙ W x, df/dW = (v ⊙ g) xᵀ.
        let net = try GatedNetwork(architecture: .fc(inputs: 3, width: 4, depth: 1, classes: 1), configuration: .dnn, seed: 5)
        let x = Tensor(shape: [3, 3], scalars: [1, -0.5, 0.25, 0.3, 0.8, -1.2, -0.7, 0.1, 0.9])
        let w = net.parameters["layers.0.weight"]!, v = net.parameters["head.weight"]!
        func hidden(_ i: Int) -> (h: [Double], vg: [Double], x: [Double]) {
            let xi = (0..<3).map { Double(x.scalars[i * 3 + $0]) }
            let z = (0..<4).map { o in (0..<3).reduce(0.0) { $0 + Double(w.scalars[o * 3 + $1]) * xi[$1] } }
            return (z.map { max($0, 0) }, z.enumerated().map { $1 > 0 ? Double(v.scalars[$0]) : 0 }, xi)
        }
        let all = try PathKernel.tangentKernel(of: net, inputs: x, parameterPrefix: "")
        let head = try PathKernel.tangentKernel(of: net, inputs: x, parameterPrefix: "head")
        for i in 0..<3 {
            for j in 0..<3 {
                let a = hidden(i), b = hidden(j)
                let hh = zip(a.h, b.h).reduce(0) { $0 + $1.0 * $1.1 }
                let gg = zip(a.vg, b.vg).reduce(0) { $0 + $1.0 * $1.1 } * zip(a.x, b.x).reduce(0) { $0 + $1.0 * $1.1 }
                XCTAssertEqual(head[i, j], hh, accuracy: 1e-5)
                XCTAssertEqual(all[i, j], hh + gg, accuracy: 1e-5)
            }
        }
        XCTAssertEqual(all.frobeniusNorm, all.values.reduce(0) { $0 + $1 * $1 }.squareRoot(), accuracy: 1e-12)
        XCTAssertThrowsError(try PathKernel.tangentKernel(of: net, inputs: x, parameterPrefix: "nothing."))
    }

    func testValueAndFeatureKernelsOfADGNAddUpToTheWholeKernel() throws {
        let net = try GatedNetwork(architecture: .fc(inputs: 5, width: 6, depth: 2, classes: 1), configuration: .dgn(gate: .soft(beta: 2)), seed: 8)
        var rng = SeededRNG(seed: 2)
        let x = rng.uniformTensor([4, 5], bound: 1)
        let parts = try PathKernel.tangentKernels(of: net, inputs: x, parameterPrefixes: ["value.", "feature.", ""])
        XCTAssertGreaterThan(parts[1].trace, 0)   // soft gates: the feature network has a gradient
        for k in 0..<16 { XCTAssertEqual(parts[0].values[k] + parts[1].values[k], parts[2].values[k], accuracy: 1e-4 * max(1, abs(parts[2].values[k]))) }
    }
}
