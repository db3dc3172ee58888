import XCTest
import Foundation
import SIMDCore
import Recipes

// MARK: - Engine ops against PyTorch goldens
//
// The files come from reference/ops/make_op_goldens.py (PyTorch, CPU, float32). Each case holds the
// inputs, an upstream gradient `dy`, and PyTorch's output `y` and gradients of sum(dy * y).
// Tolerances are absolute, stated per test; every comparison prints its measured max difference.

final class OpGoldenTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func golden(_ name: String) throws -> SafeTensors {
        try SafeTensors(contentsOf: Self.root.appendingPathComponent("Tests/Fixtures/ops/\(name).safetensors"))
    }

    /// `kernel=3 stride=2 ceil=1` -> ["kernel": "3", ...]; cases sorted by name.
    func cases(_ st: SafeTensors) -> [(String, [String: String])] {
        st.metadata.keys.sorted().map { name in
            var p: [String: String] = [:]
            for kv in st.metadata[name]!.split(separator: " ") {
                let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
                p[parts[0]] = parts[1]
            }
            return (name, p)
        }
    }

    func compare(_ label: String, _ got: Tensor?, _ want: Tensor, tol: Float, file: StaticString = #filePath, line: UInt = #line) {
        guard let got else { XCTFail("\(label): missing", file: file, line: line); return }
        XCTAssertEqual(got.shape, want.shape, "\(label): shape", file: file, line: line)
        guard got.shape == want.shape else { return }
        let d = got.maxAbsDifference(want)
        print("[golden] \(label): max |engine - torch| = \(d)")
        XCTAssertLessThanOrEqual(d, tol, label, file: file, line: line)
    }

    /// Runs a one-input op, compares y and dx.
    func check(_ st: SafeTensors, _ name: String, tol: Float, _ op: (Tape, Variable) throws -> Variable) throws {
        let tape = Tape()
        let x = tape.input(try st.tensor("\(name).x"), requiresGrad: true)
        let y = try op(tape, x)
        compare("\(name) y", tape.value(y), try st.tensor("\(name).y"), tol: tol)
        let g = try tape.backward(from: y, seed: try st.tensor("\(name).dy"))
        compare("\(name) dx", g[x], try st.tensor("\(name).dx"), tol: tol)
    }

    // MARK: Pools (tolerance 1e-6: same sums, same order up to rounding)

    func testMaxPoolMatchesPyTorch() throws {
        let st = try golden("maxpool")
        let cs = cases(st)
        XCTAssertEqual(cs.count, 5)
        for (name, p) in cs {
            try check(st, name, tol: 1e-6) { t, x in
                try t.maxPool2d(x, kernel: Int(p["kernel"]!)!, stride: Int(p["stride"]!)!,
                                padding: Int(p["padding"]!)!, ceilMode: p["ceil"] == "1")
            }
        }
    }

    func testAvgPoolMatchesPyTorch() throws {
        let st = try golden("avgpool")
        let cs = cases(st)
        XCTAssertEqual(cs.count, 7)
        for (name, p) in cs {
            try check(st, name, tol: 1e-6) { t, x in
                try t.avgPool2d(x, kernel: Int(p["kernel"]!)!, stride: Int(p["stride"]!)!, padding: Int(p["padding"]!)!,
                                ceilMode: p["ceil"] == "1", countIncludePad: p["include_pad"] == "1")
            }
        }
    }

    func testAdaptiveAndGlobalAvgPoolMatchPyTorch() throws {
        let st = try golden("adaptive_avgpool")
        let cs = cases(st)
        XCTAssertEqual(cs.map(\.0), ["13x10", "5x3", "7x7", "9x11", "global"])
        for (name, _) in cs {
            try check(st, name, tol: 1e-6) { t, x in
                name == "global" ? try t.globalAvgPool(x) : try t.adaptiveAvgPool2d(x, outputHeight: 7, outputWidth: 7)
            }
        }
    }

    // MARK: BatchNorm (tolerance 5e-6 on y and gradients, 1e-6 on running statistics)

    func testBatchNormMatchesPyTorch() throws {
        let st = try golden("batchnorm")
        let cs = cases(st)
        XCTAssertEqual(cs.map(\.0), ["eval2d", "eval4d", "train2d", "train4d"])
        for (name, p) in cs {
            let tape = Tape()
            let x = tape.input(try st.tensor("\(name).x"), requiresGrad: true)
            let w = tape.parameter(try st.tensor("\(name).weight")), b = tape.parameter(try st.tensor("\(name).bias"))
            let stats = BatchNormStatistics(mean: try st.tensor("\(name).running_mean"), variance: try st.tensor("\(name).running_var"))
            let y = try tape.batchNorm(x, weight: w, bias: b, running: stats, training: p["training"] == "1",
                                       momentum: Float(p["momentum"]!)!, eps: Float(p["eps"]!)!)
            compare("\(name) y", tape.value(y), try st.tensor("\(name).y"), tol: 5e-6)
            compare("\(name) running mean", stats.mean, try st.tensor("\(name).running_mean_after"), tol: 1e-6)
            compare("\(name) running var", stats.variance, try st.tensor("\(name).running_var_after"), tol: 1e-6)
            let g = try tape.backward(from: y, seed: try st.tensor("\(name).dy"))
            compare("\(name) dx", g[x], try st.tensor("\(name).dx"), tol: 5e-6)
            compare("\(name) dweight", g[w], try st.tensor("\(name).dweight"), tol: 5e-6)
            compare("\(name) dbias", g[b], try st.tensor("\(name).dbias"), tol: 5e-6)
        }
    }

    // MARK: Softmax and losses (tolerance 2e-6)

    func testSoftmaxAndLossesMatchPyTorch() throws {
        let st = try golden("softmax_losses")
        try check(st, "softmax", tol: 2e-6) { t, x in try t.softmax(x) }
        try check(st, "log_softmax", tol: 2e-6) { t, x in try t.logSoftmax(x) }

        let tape = Tape()
        let logits = tape.input(try st.tensor("cross_entropy.logits"), requiresGrad: true)
        let labels = try st.tensor("cross_entropy.labels").scalars.map { Int($0) }
        let ce = try tape.crossEntropy(logits: logits, labels: labels)
        compare("cross_entropy loss", tape.value(ce), try st.tensor("cross_entropy.loss"), tol: 2e-6)
        compare("cross_entropy dlogits", try tape.backward(from: ce)[logits], try st.tensor("cross_entropy.dlogits"), tol: 2e-6)

        let x = tape.input(try st.tensor("mse.x"), requiresGrad: true)
        let l = try tape.mse(x, target: try st.tensor("mse.target"))
        compare("mse loss", tape.value(l), try st.tensor("mse.loss"), tol: 2e-6)
        compare("mse dx", try tape.backward(from: l)[x], try st.tensor("mse.dx"), tol: 2e-6)
    }

    // MARK: Soft gates, paper A semantics (tolerance 1e-6 ReLU, 2e-6 soft max-pool)

    func testSoftGatesMatchPaperAReference() throws {
        let st = try golden("soft_gates")
        let cs = cases(st)
        XCTAssertEqual(cs.count, 5)
        for (name, p) in cs {
            let t = Float(p["temperature"]!)!
            XCTAssertEqual(t, 0.3)
            if name == "relu" {
                try check(st, name, tol: 1e-6) { tape, x in try tape.relu(x, gate: .sigmoid(temperature: t)) }
            } else {
                XCTAssertEqual(p["ceil"], "0")
                try check(st, name, tol: 2e-6) { tape, x in
                    try tape.maxPool2d(x, kernel: Int(p["kernel"]!)!, stride: Int(p["stride"]!)!, padding: Int(p["padding"]!)!,
                                       gate: .soft(temperature: t, detachWeights: p["detach"] == "1"))
                }
            }
        }
    }
}
