import XCTest
import Foundation
import SIMDCore
import Recipes

final class GatedNetworkTests: XCTestCase {
    /// Small instances of every architecture (fast enough for tests, same code paths as full size).
    static let architectures: [GatedArchitecture] = [
        .fc(inputs: 12, width: 6, depth: 3, classes: 4),
        .c1gap(inputChannels: 3, imageSize: 6, width: 5, classes: 3),
        .c4gap(inputChannels: 3, imageSize: 6, width: 4, classes: 3),
        .vgg16(inputChannels: 3, imageSize: 32, classes: 3, widthDivisor: 32),
        .cifarResNet(inputChannels: 3, imageSize: 8, blocksPerStage: 1, classes: 3, baseWidth: 4),
    ]

    func batch(_ arch: GatedArchitecture, _ n: Int, seed: UInt64) -> Tensor {
        var rng = SeededRNG(seed: seed)
        return rng.normalTensor([n] + arch.inputShape)
    }

    func logits(_ net: GatedNetwork, _ x: Tensor, training: Bool = false) throws -> Tensor {
        let tape = Tape(recording: false)
        return tape.value(try net.forward(on: tape, input: x, training: training).logits)
    }

    // MARK: Structure

    /// DGN with hard gates, identical feature and value weights and x_f = x_v IS the ReLU DNN:
    /// z_v = q * 1[q > 0] = relu(q) layer by layer, so the logits agree exactly.
    func testHardDGNWithSharedWeightsEqualsDNNExactly() throws {
        for arch in Self.architectures {
            let dnn = try GatedNetwork(architecture: arch, configuration: .dnn, seed: 7)
            var dgn = try GatedNetwork(architecture: arch, configuration: .dgn(valueInput: .same, gate: .hard), seed: 99)
            for name in dgn.parameters.keys {
                let plain = name.hasPrefix("feature.") ? String(name.dropFirst(8)) : String(name.dropFirst(6))
                dgn.parameters[name] = try XCTUnwrap(dnn.parameters[plain], "\(arch): no DNN parameter \(plain)")
            }
            XCTAssertEqual(Set(dgn.parameters.keys.filter { $0.hasPrefix("value.") }.map { String($0.dropFirst(6)) }),
                           Set(dnn.parameters.keys), "\(arch)")
            let x = batch(arch, 3, seed: 1)
            let a = try logits(dnn, x), b = try logits(dgn, x)
            XCTAssertEqual(a, b, "\(arch): max difference \(a.maxAbsDifference(b))")
            // Training mode (BatchNorm on batch statistics) too; both update their own running stats.
            let at = try logits(dnn.copy(), x, training: true), bt = try logits(dgn.copy(), x, training: true)
            XCTAssertEqual(at, bt, "\(arch) (training mode)")
            // And the soft-gated DGN is a different function.
            let soft = try GatedNetwork(architecture: arch, configuration: .dgn(valueInput: .same, gate: .soft(beta: 10)),
                                        parameters: dgn.parameters, statistics: dgn.statistics)
            XCTAssertNotEqual(try logits(soft, x), a, "\(arch)")
            print("\(arch): hard DGN == DNN, max |difference| \(a.maxAbsDifference(b)); \(arch.gatedLayerCount) gated layers, \(dnn.trainableParameterCount) DNN parameters")
        }
    }

    func testEveryVariantRunsOnEveryArchitecture() throws {
        let variants: [GatingConfiguration] = [.dnn, .dgn(valueInput: .same), .dgn(valueInput: .ones, gate: .hard),
                                               .dlgn(valueInput: .same), .dlgn(valueInput: .ones), .dlgnSF(valueInput: .ones)]
        for arch in Self.architectures {
            for c in variants {
                if c.variant == .dlgnSF, case .cifarResNet = arch {
                    XCTAssertThrowsError(try GatedNetwork(architecture: arch, configuration: c, seed: 1))
                    continue
                }
                let net = try GatedNetwork(architecture: arch, configuration: c, seed: 1)
                let tape = Tape()
                let x = batch(arch, 2, seed: 3)
                let out = try net.forward(on: tape, input: x, training: true)
                XCTAssertEqual(tape.shape(out.logits)[0], 2)
                XCTAssertTrue(tape.value(out.logits).isFinite, "\(arch) \(c)")
                XCTAssertEqual(out.preActivations.count, arch.gatedLayerCount, "\(arch) \(c)")
                XCTAssertEqual(out.gates.count, c.variant == .dnn ? 0 : arch.gatedLayerCount)
                // Gradients reach every trainable parameter except through hard gates.
                let loss = try tape.crossEntropy(logits: out.logits, labels: [0, 1])
                let grads = try tape.backward(from: loss)
                for (name, v) in out.parameters {
                    let hasGrad = grads[v] != nil
                    let expectNone = c.gate == .hard && c.variant != .dnn && name.hasPrefix("feature.")
                    XCTAssertEqual(hasGrad, !expectNone, "\(arch) \(c): gradient of \(name)")
                }
            }
        }
    }

    func testDLGNFeatureNetworkIsLinearAndValueInputIsOnes() throws {
        // A deep linear feature network: q_f(a x) = a q_f(x) for a > 0 ... (with biases it is affine;
        // the FC architecture here has none), so the gates of x and 3x coincide for DLGN(x,1).
        let arch = GatedArchitecture.fc(inputs: 12, width: 6, depth: 3, classes: 4)
        let net = try GatedNetwork(architecture: arch, configuration: .dlgn(valueInput: .ones, gate: .hard), seed: 4)
        let x = batch(arch, 4, seed: 2)
        let x3 = Tensor(shape: x.shape, scalars: x.scalars.map { 3 * $0 })
        let t1 = Tape(recording: false), t2 = Tape(recording: false)
        let o1 = try net.forward(on: t1, input: x, training: false), o2 = try net.forward(on: t2, input: x3, training: false)
        for l in 0..<3 {
            let q1 = t1.value(o1.preActivations[l]), q3 = t2.value(o2.preActivations[l])
            XCTAssertLessThan(Tensor(shape: q1.shape, scalars: q1.scalars.map { 3 * $0 }).maxAbsDifference(q3), 1e-4)
        }
        // value input is 1: hard gates identical => identical logits
        XCTAssertEqual(t1.value(o1.logits), t2.value(o2.logits))
    }

    func testIdentityPermutationEqualsUnpermuted() throws {
        for arch in [GatedArchitecture.c4gap(inputChannels: 3, imageSize: 6, width: 4, classes: 3),
                     .fc(inputs: 12, width: 6, depth: 3, classes: 4)] {
            let plain = try GatedNetwork(architecture: arch, configuration: .dlgn(valueInput: .ones), seed: 5)
            let identity = try GatedNetwork(architecture: arch, configuration: .dlgn(valueInput: .ones, permutation: Array(0..<arch.gatedLayerCount)),
                                            parameters: plain.parameters, statistics: plain.statistics)
            let x = batch(arch, 3, seed: 6)
            XCTAssertEqual(try logits(plain, x), try logits(identity, x))
            var p = Array(0..<arch.gatedLayerCount); p.swapAt(0, 2)
            let permuted = try GatedNetwork(architecture: arch, configuration: .dlgn(valueInput: .ones, permutation: p),
                                            parameters: plain.parameters, statistics: plain.statistics)
            XCTAssertGreaterThan(try logits(permuted, x).maxAbsDifference(try logits(plain, x)), 1e-6)
            // pi(0) = 2: value layer 2 uses feature layer 0's gates.
            let t = Tape(recording: false)
            let out = try permuted.forward(on: t, input: x, training: false)
            let g0 = t.value(out.gates[0]), q0 = t.value(out.preActivations[0])
            XCTAssertEqual(g0.maxAbsDifference(Tensor(shape: q0.shape, scalars: q0.scalars.map { 1 / (1 + exp(-10 * $0)) })), 0, accuracy: 1e-6)
        }
        let fc = GatedArchitecture.fc(inputs: 12, width: 6, depth: 3, classes: 4)
        XCTAssertThrowsError(try GatedNetwork(architecture: fc, configuration: .dlgn(permutation: [0, 0, 1]), seed: 1))
        XCTAssertThrowsError(try GatedNetwork(architecture: fc, configuration: GatingConfiguration(variant: .dnn, permutation: [0, 1, 2]), seed: 1))
        // VGG layers of different widths cannot swap gates: a clear error, not a crash.
        let vgg = GatedArchitecture.vgg16(inputChannels: 3, imageSize: 32, classes: 3, widthDivisor: 32)
        var p = Array(0..<13); p.swapAt(0, 12)
        let net = try GatedNetwork(architecture: vgg, configuration: .dlgn(), seed: 1)
        let swapped = try GatedNetwork(architecture: vgg, configuration: .dlgn(permutation: p), parameters: net.parameters, statistics: net.statistics)
        XCTAssertThrowsError(try logits(swapped, batch(vgg, 1, seed: 1))) { XCTAssertTrue("\($0)".contains("feature layer"), "\($0)") }
    }

    func testParameterNamesAndInitialisationBounds() throws {
        let arch = GatedArchitecture.c4gap(inputChannels: 3, imageSize: 6, width: 4, classes: 3)
        let net = try GatedNetwork(architecture: arch, configuration: .dgn(), seed: 1)
        XCTAssertEqual(net.parameters.keys.sorted(), [
            "feature.layers.0.bias", "feature.layers.0.weight", "feature.layers.1.bias", "feature.layers.1.weight",
            "feature.layers.2.bias", "feature.layers.2.weight", "feature.layers.3.bias", "feature.layers.3.weight",
            "value.head.bias", "value.head.weight",
            "value.layers.0.bias", "value.layers.0.weight", "value.layers.1.bias", "value.layers.1.weight",
            "value.layers.2.bias", "value.layers.2.weight", "value.layers.3.bias", "value.layers.3.weight"])
        // PyTorch default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)); fan_in = 3*3*3 for layer 0, 4*9 for the others.
        let w0 = net.parameters["value.layers.0.weight"]!, w1 = net.parameters["value.layers.1.weight"]!
        XCTAssertEqual(w0.shape, [4, 3, 3, 3])
        XCTAssertLessThanOrEqual(w0.scalars.map(abs).max()!, 1 / Float(27).squareRoot())
        XCTAssertGreaterThan(w0.scalars.map(abs).max()!, 0.8 / Float(27).squareRoot())
        XCTAssertLessThanOrEqual(w1.scalars.map(abs).max()!, 1 / Float(36).squareRoot())
        XCTAssertNotEqual(net.parameters["feature.layers.1.weight"], net.parameters["value.layers.1.weight"])
        let resnet110 = GatedArchitecture.resnet110(classes: 10)
        XCTAssertEqual(resnet110.gatedLayerCount, 109)
    }

    // MARK: Neural path kernel

    /// NPK(x, x') = <x, x'> prod_l <G_l(x), G_l(x')> equals <phi(x), phi(x')> with phi enumerated over
    /// all paths (input i -> unit a of layer 1 -> unit b of layer 2), and the network output equals
    /// <phi(x), v> with v(p) the product of the weights on p.
    func testNPKEqualsExplicitPathEnumeration() throws {
        let inputs = 4, width = 3
        let arch = GatedArchitecture.fc(inputs: inputs, width: width, depth: 2, classes: 1)
        let net = try GatedNetwork(architecture: arch, configuration: .dnn, seed: 21)
        let n = 6
        let x = batch(arch, n, seed: 22)
        let gates = try PathKernel.gates(of: net, inputs: x)
        let k = try PathKernel.gram(of: net, inputs: x)
        let w1 = net.parameters["layers.0.weight"]!, w2 = net.parameters["layers.1.weight"]!, wh = net.parameters["head.weight"]!
        var phi = [[Double]](), v = [Double]()
        for e in 0..<n {
            var f = [Double]()
            for i in 0..<inputs { for a in 0..<width { for b in 0..<width {
                f.append(Double(x[e, i]) * Double(gates[0][e, a]) * Double(gates[1][e, b]))
                if e == 0 { v.append(Double(w1[a, i]) * Double(w2[b, a]) * Double(wh[0, b])) }
            } } }
            phi.append(f)
        }
        XCTAssertEqual(phi[0].count, inputs * width * width)
        var npk = Discrepancy(tolerance: Tolerance(relative: 1e-12, absolute: 1e-300))
        for i in 0..<n { for j in 0..<n {
            npk.add(actual: k[i, j], expected: zip(phi[i], phi[j]).reduce(0) { $0 + $1.0 * $1.1 })
        } }
        print("NPK vs path enumeration: \(npk)")
        XCTAssertTrue(npk.holds, "\(npk)")
        let y = try logits(net, x)
        var dual = Discrepancy(tolerance: Tolerance(absolute: 1e-5))
        for e in 0..<n {
            dual.add(actual: Double(y[e, 0]), expected: zip(phi[e], v).reduce(0) { $0 + $1.0 * $1.1 })
        }
        print("output vs <phi, v>: \(dual)")
        XCTAssertTrue(dual.holds, "\(dual)")
        // Some gates must be on and some off, or the test would be vacuous.
        let on = gates.flatMap(\.scalars).reduce(0, +)
        XCTAssertGreaterThan(on, 0); XCTAssertLessThan(on, Float(2 * n * width))
    }

    func testCholeskyNuAndJacobiEigenvalues() throws {
        let a = SymmetricMatrix(n: 3, values: [4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2])
        let y = [1.0, -1.0, 0.5]
        let nu = try PathKernel.nu(a, labels: y)
        // Known value computed independently with numpy.linalg.solve: y @ solve(A, y).
        XCTAssertEqual(nu, 0.9046500704556129, accuracy: 1e-12)
        let eig = PathKernel.eigenvalues(SymmetricMatrix(n: 2, values: [2, 1, 1, 2]))
        XCTAssertEqual(eig[0], 1, accuracy: 1e-12); XCTAssertEqual(eig[1], 3, accuracy: 1e-12)
        let e3 = PathKernel.eigenvalues(a)
        XCTAssertEqual(e3.reduce(0, +), a.trace, accuracy: 1e-12)
        XCTAssertEqual(e3.reduce(1, *), 21.29, accuracy: 1e-10)   // det(A), numpy
        XCTAssertThrowsError(try PathKernel.cholesky(SymmetricMatrix(n: 2, values: [1, 2, 2, 1])))
    }

    func testMemorisationNetworkSpectrumMatchesIdeal() throws {
        let n = 200
        for (width, layers) in [(500, 3), (25, 3)] {
            let h = PathKernel.memorisationGram(examples: n, width: width, gatedLayers: layers, seed: 5)
            let measured = PathKernel.eigenvalues(h)
            let ideal = PathKernel.idealMemorisationSpectrum(examples: n, gatedLayers: layers)
            let medianMeasured = measured[n / 2], top = measured[n - 1]
            print("memorisation w=\(width) d-1=\(layers): top eigenvalue \(top) (ideal \(ideal[n - 1])), median \(medianMeasured) (ideal \(ideal[0])), min \(measured[0])")
            XCTAssertEqual(measured.reduce(0, +), Double(n), accuracy: 1e-8)   // trace preserved
            if width == 500 {
                XCTAssertEqual(top, ideal[n - 1], accuracy: 0.05 * ideal[n - 1])
                XCTAssertEqual(medianMeasured, ideal[0], accuracy: 0.05)
            } else {
                // Narrow layers: finite-width fluctuations spread the bulk well below the ideal value.
                XCTAssertLessThan(measured[0], 0.5 * ideal[0])
            }
        }
    }

    /// NeurIPS 2020 appendix sweep: depth d in {2, 4, 6, 8, 12, 16, 20}, widths 25 and 500, n = 200.
    /// Prints the measured spectra summary; asserts that depth first helps (bulk closer to 1 at d = 6
    /// than at d = 2 for both widths) and that the wide net tracks the ideal top eigenvalue.
    func testMemorisationDepthSweep() throws {
        let n = 200
        var deviation: [Int: [Int: Double]] = [25: [:], 500: [:]]
        for width in [25, 500] {
            for d in [2, 4, 6, 8, 12, 16, 20] {
                let e = PathKernel.eigenvalues(PathKernel.memorisationGram(examples: n, width: width, gatedLayers: d - 1, seed: 77))
                let ideal = PathKernel.idealMemorisationSpectrum(examples: n, gatedLayers: d - 1)
                let dev = PathKernel.bulkDeviationFromOne(e)
                deviation[width]![d] = dev
                print(String(format: "memorisation sweep w=%3d d=%2d: min %.4f median %.4f top %.3f | ideal bulk %.4f top %.3f | mean|bulk-1| %.4f (ideal %.4f)",
                             width, d, e[0], e[n / 2], e[n - 1], ideal[0], ideal[n - 1], dev, PathKernel.bulkDeviationFromOne(ideal)))
            }
        }
        XCTAssertLessThan(deviation[500]![6]!, deviation[500]![2]!)
        XCTAssertLessThan(deviation[25]![6]!, deviation[25]![2]!)
    }

    func testNuOfTraceNormalisedNPK() throws {
        let arch = GatedArchitecture.fc(inputs: 10, width: 50, depth: 3, classes: 1)
        let net = try GatedNetwork(architecture: arch, configuration: .dnn, seed: 3)
        let x = batch(arch, 20, seed: 4)
        let h = try PathKernel.traceNormalised(try PathKernel.gram(of: net, inputs: x))
        XCTAssertEqual(h.trace, 1, accuracy: 1e-12)
        let y = (0..<20).map { $0 % 2 == 0 ? 1.0 : -1.0 }
        let nu = try PathKernel.nu(h, labels: y)
        // nu = sum_k (u_k . y)^2 / lambda_k >= |y|^2 / lambda_max
        let lmax = PathKernel.eigenvalues(h).last!
        print("nu = \(nu) for 20 examples, lambda_max \(lmax)")
        XCTAssertGreaterThanOrEqual(nu, 20 / lmax * (1 - 1e-9))
    }

    // MARK: Option-A shortcut (hand-written pullback)

    /// shortcutA's pullback against central differences of L = sum(seed * shortcutA(x * x)), on even
    /// and odd sizes, with and without channel padding. Tolerance |analytic - numeric| <=
    /// 1e-5 + 1e-3 |numeric|: the loss is quadratic in x, so the central difference is exact up to
    /// the Float32 rounding of the loss (measured: at most 3.1e-6).
    func testShortcutAPullbackMatchesFiniteDifferences() throws {
        let tol = Tolerance(relative: 1e-3, absolute: 1e-5)
        for (shape, out) in [([2, 3, 5, 6], 7), ([1, 2, 4, 4], 2), ([2, 4, 7, 7], 8)] {
            var rng = SeededRNG(seed: UInt64(shape.reduce(0, +) + out))
            let x = rng.uniformTensor(shape, bound: 1)
            let tape = Tape()
            let v = tape.input(x, requiresGrad: true)
            let y = try tape.shortcutA(tape.mul(v, v), outChannels: out)
            XCTAssertEqual(tape.shape(y), [shape[0], out, (shape[2] + 1) / 2, (shape[3] + 1) / 2])
            let seed = rng.uniformTensor(tape.shape(y), bound: 1)
            let g = try XCTUnwrap(try tape.backward(from: y, seed: seed)[v])
            func loss(_ x: Tensor) throws -> Double {
                let t = Tape(recording: false)
                let xv = t.input(x)
                let yy = t.value(try t.shortcutA(t.mul(xv, xv), outChannels: out))
                return zip(yy.scalars, seed.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            var d = Discrepancy(tolerance: tol)
            let h: Float = 1e-2
            for i in 0..<x.count {
                var xp = x, xm = x
                xp.scalars[i] += h; xm.scalars[i] -= h
                d.add(actual: Double(g.scalars[i]), expected: (try loss(xp) - loss(xm)) / Double(2 * h))
            }
            print("[FD] shortcutA \(shape) -> \(out) channels: \(d)")
            XCTAssertTrue(d.holds, "shortcutA \(shape) -> \(out): \(d)")
            XCTAssertGreaterThan(d.maxExpected, 0.1, "the gradient is not trivially zero")
        }
    }
}

final class PathKernelTrainingTests: XCTestCase {
    /// nu = y^T H^-1 y of the trace-normalised NPK falls as a ReLU FC net learns a binary task
    /// (NeurIPS 2020 Figure 2, middle, in miniature: ±1 labels, squared loss, RMSprop).
    func testNuDecreasesDuringTraining() throws {
        let train = try separableProblem(count: 200, dimension: 6, seed: 31)
        let test = try separableProblem(count: 100, dimension: 6, seed: 32)
        var net = try GatedNetwork(architecture: .fc(inputs: 6, width: 40, depth: 3, classes: 1), configuration: .dnn, seed: 2)
        net.initialiseBernoulli(sigma: (2 / Float(40)).squareRoot(), seed: 3)
        let y = train.labels.map { $0 == 1 ? 1.0 : -1.0 }
        var nus = [try PathKernel.nu(of: net, inputs: train.images, labels: y)]
        let lr: Float = 1e-2, epochs = 10
        var trainer = Trainer(optimizer: RMSprop(), schedule: ConstantLearningRate(lr),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: 20, loss: .squaredSigned, seed: 4))
        trainer.onEpochEnd = { _, model in nus.append(try PathKernel.nu(of: model as! GatedNetwork, inputs: train.images, labels: y)) }
        let report = try trainer.fit(&net, train: train, test: test)
        print("nu per epoch: \(nus.map { String(format: "%.1f", $0) }.joined(separator: ", ")); test accuracy \(report.finalTestAccuracy)%")
        XCTAssertEqual(nus.count, epochs + 1)
        XCTAssertLessThan(nus.last!, 0.8 * nus.first!)
        XCTAssertGreaterThan(report.finalTestAccuracy, 85)
    }
}
