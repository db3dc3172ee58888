import XCTest
import Foundation
import SIMDCore
import Recipes

/// The gated networks against an independent PyTorch reference written from paper B
/// (reference/training/make_gated_goldens.py): logits, cross-entropy loss, every parameter gradient and
/// BatchNorm running statistics after a training-mode pass.
final class GatedNetworkGoldenTests: XCTestCase {
    static let cases: [(String, GatedArchitecture, GatingConfiguration, Bool)] = {
        let fc = GatedArchitecture.fc(inputs: 10, width: 6, depth: 3, classes: 4)
        let c4 = GatedArchitecture.c4gap(inputChannels: 3, imageSize: 6, width: 4, classes: 3)
        let vgg = GatedArchitecture.vgg16(inputChannels: 3, imageSize: 32, classes: 3, widthDivisor: 64)
        let resnet = GatedArchitecture.cifarResNet(inputChannels: 3, imageSize: 8, blocksPerStage: 1, classes: 3, baseWidth: 4)
        return [
            ("fc_dgn_soft_perm", fc, .dgn(valueInput: .same, gate: .soft(beta: 10), permutation: [2, 0, 1]), true),
            ("fc_dlgn_sf", fc, .dlgnSF(valueInput: .ones), true),
            ("c4_dlgn_ones_perm", c4, .dlgn(valueInput: .ones, permutation: [1, 0, 3, 2]), true),
            ("c4_dlgn_sf", c4, .dlgnSF(valueInput: .ones), true),
            ("c1_dnn", .c1gap(inputChannels: 3, imageSize: 6, width: 5, classes: 3), .dnn, true),
            ("vgg_dnn_train", vgg, .dnn, true),
            ("vgg_dlgn_eval", vgg, .dlgn(valueInput: .ones), false),
            ("vgg_dlgn_sf_train", vgg, .dlgnSF(valueInput: .ones), true),
            ("resnet8_dgn_hard_train", resnet, .dgn(valueInput: .same, gate: .hard), true),
            ("resnet8_dlgn_ones_eval", resnet, .dlgn(valueInput: .ones), false),
        ]
    }()

    func testGatedNetworksMatchPyTorchReference() throws {
        let url = TrainingTests.repositoryRoot.appendingPathComponent("Tests/Fixtures/training/gated_networks.safetensors")
        let st = try SafeTensors(contentsOf: url)
        for (name, arch, config, training) in Self.cases {
            let prefix = name + "/"
            var params: [String: Tensor] = [:], stats: [String: BatchNormStatistics] = [:]
            for (key, t) in st.tensors where key.hasPrefix(prefix) {
                let k = String(key.dropFirst(prefix.count))
                if k.hasPrefix("@") { continue }
                if k.hasSuffix(".running_mean") {
                    let layer = String(k.dropLast(".running_mean".count))
                    stats[layer] = BatchNormStatistics(mean: t, variance: try st.tensor(prefix + layer + ".running_var"))
                } else if !k.hasSuffix(".running_var") {
                    params[k] = t
                }
            }
            // The engine declares exactly the reference's parameters (names and shapes).
            let fresh = try GatedNetwork(architecture: arch, configuration: config, seed: 1)
            XCTAssertEqual(fresh.parameters.keys.sorted(), params.keys.sorted(), name)
            XCTAssertEqual(fresh.parameters.mapValues(\.shape), params.mapValues(\.shape), name)
            XCTAssertEqual(fresh.statistics.keys.sorted(), stats.keys.sorted(), name)

            let net = try GatedNetwork(architecture: arch, configuration: config, parameters: params, statistics: stats)
            let x = try st.tensor(prefix + "@x")
            let labels = try st.tensor(prefix + "@labels").scalars.map { Int($0) }
            let tape = Tape()
            let out = try net.forward(on: tape, input: x, training: training)
            let loss = try tape.crossEntropy(logits: out.logits, labels: labels)
            let grads = try tape.backward(from: loss)

            let want = try st.tensor(prefix + "@logits")
            let logitError = tape.value(out.logits).maxAbsDifference(want)
            let lossError = Float(Discrepancy(tape.value(loss).scalars, try st.tensor(prefix + "@loss").scalars).worst)
            var gradError: Float = 0, gradScale: Float = 0, compared = 0
            for (p, v) in out.parameters {
                let g = grads[v]
                if let ref = st.tensors[prefix + "@grad/" + p] {
                    guard let g else { XCTFail("\(name): no gradient for \(p)"); continue }
                    gradError = max(gradError, g.maxAbsDifference(ref))
                    gradScale = max(gradScale, ref.scalars.map(abs).max() ?? 0)
                    compared += 1
                } else if let g {
                    XCTAssertEqual(Discrepancy(g, Tensor(zeros: g.shape)).worst, 0, "\(name): reference has no gradient for \(p)")
                }
            }
            var statError: Float = 0
            if training {
                for (layer, s) in net.statistics {
                    statError = max(statError, s.mean.maxAbsDifference(try st.tensor(prefix + "@after/" + layer + ".running_mean")))
                    statError = max(statError, s.variance.maxAbsDifference(try st.tensor(prefix + "@after/" + layer + ".running_var")))
                }
            }
            print("golden \(name) [\(config)]: logits max|diff| \(logitError), loss |diff| \(lossError), \(compared) gradients max|diff| \(gradError) (max |grad| \(gradScale)), running stats max|diff| \(statError)")
            XCTAssertLessThan(logitError, 2e-5, name)
            XCTAssertLessThan(lossError, 2e-5, name)
            XCTAssertLessThan(gradError, 1e-4 * max(gradScale, 1), name)
            XCTAssertLessThan(statError, 2e-5, name)
            XCTAssertGreaterThan(compared, 0, name)
        }
    }
}
