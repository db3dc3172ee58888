import XCTest
import SIMDCore
import Foundation

// MARK: - Fast kernels against their naive references, on awkward shapes
// Each test prints the max difference it measured.

final class OpsKernelTests: XCTestCase {
    func report(_ name: String, _ d: Float) { print("[fast vs naive] \(name): max |diff| = \(d)") }

    func testElementwiseFastMatchesNaive() {
        var rng = SeededRNG(seed: 11)
        for n in [1, 15, 16, 17, 16 * 7 + 5, 70_001] {   // tails and a multi-chunk size
            let a = rng.uniformTensor([n], bound: 2), b = rng.uniformTensor([n], bound: 2)
            var worst: Float = 0
            worst = max(worst, Elementwise.add(a, b).maxAbsDifference(Elementwise.naiveAdd(a, b)))
            worst = max(worst, Elementwise.mul(a, b).maxAbsDifference(Elementwise.naiveMul(a, b)))
            worst = max(worst, Elementwise.scale(a, by: 0.37).maxAbsDifference(Elementwise.naiveScale(a, by: 0.37)))
            worst = max(worst, Elementwise.relu(a).maxAbsDifference(Elementwise.naiveRelu(a)))
            for gate in [Gate.hard, .sigmoid(temperature: 0.3), .normalCDF(temperature: 0.6)] {
                worst = max(worst, Elementwise.reluBackward(b, z: a, gate: gate).maxAbsDifference(Elementwise.naiveReluBackward(b, z: a, gate: gate)))
            }
            report("elementwise n=\(n)", worst)
            XCTAssertEqual(worst, 0, "elementwise kernels are exact")
        }
        for shape in [[2, 3, 5, 7], [3, 5], [1, 4, 33, 17], [4, 64, 31, 31]] {
            let x = rng.uniformTensor(shape, bound: 3)
            let s = (0..<shape[1]).map { Float($0) * 0.3 - 1 }, t = (0..<shape[1]).map { 0.5 - Float($0) * 0.1 }
            let d = Elementwise.channelAffine(x, scale: s, shift: t).maxAbsDifference(Elementwise.naiveChannelAffine(x, scale: s, shift: t))
            report("channelAffine \(shape)", d)
            XCTAssertLessThanOrEqual(d, 1e-6)
        }
        // FastMath: scalar and SIMD16 exp/sigmoid agree bit for bit; accuracy against Double libm.
        var expError = Discrepancy(tolerance: Tolerance(relative: 3e-7, absolute: 0))   // relative only
        for start in stride(from: Float(-100), to: 100, by: 16 * 0.0137) {
            let v = SIMD16<Float>((0..<16).map { start + Float($0) * 0.0137 })
            let ve = FastMath.exp(v), vs = FastMath.sigmoid(v)
            for k in 0..<16 {
                XCTAssertEqual(ve[k].bitPattern, FastMath.exp(v[k]).bitPattern, "exp(\(v[k]))")
                XCTAssertEqual(vs[k].bitPattern, FastMath.sigmoid(v[k]).bitPattern, "sigmoid(\(v[k]))")
                if abs(v[k]) < 87 { expError.add(actual: Double(ve[k]), expected: Foundation.exp(Double(v[k]))) }
                XCTAssertEqual(Double(vs[k]), 1 / (1 + Foundation.exp(-Double(v[k]))), accuracy: 3e-7)
            }
        }
        print("[fast vs naive] FastMath.exp on [-87, 87]: \(expError)")
        var cdfAbs = Discrepancy(tolerance: Tolerance(absolute: 2e-7))
        var cdfRelBulk = Discrepancy(tolerance: Tolerance(relative: 4e-6, absolute: 0))
        var cdfRel = Discrepancy(tolerance: Tolerance(relative: 3e-5, absolute: 0))
        for start in stride(from: Float(-14), to: 14, by: 16 * 0.00317) {
            let v = SIMD16<Float>((0..<16).map { start + Float($0) * 0.00317 })
            let vc = FastMath.normalCDF(v)
            for k in 0..<16 {
                XCTAssertEqual(vc[k].bitPattern, FastMath.normalCDF(v[k]).bitPattern, "normalCDF(\(v[k]))")
                let exact = 0.5 * Foundation.erfc(-Double(v[k]) / 2.0.squareRoot())
                cdfAbs.add(actual: Double(vc[k]), expected: exact)
                if exact > 1e-30 { cdfRel.add(actual: Double(vc[k]), expected: exact) }
                if exact > 1e-6 { cdfRelBulk.add(actual: Double(vc[k]), expected: exact) }
            }
        }
        print("[fast vs naive] FastMath.normalCDF on [-14, 14]: absolute \(cdfAbs); relative, Phi > 1e-6: \(cdfRelBulk); relative, Phi > 1e-30 (Float rounding of a^2 in the exponent): \(cdfRel)")
        XCTAssertTrue(cdfAbs.holds, "\(cdfAbs)"); XCTAssertTrue(cdfRelBulk.holds, "\(cdfRelBulk)"); XCTAssertTrue(cdfRel.holds, "\(cdfRel)")
        XCTAssertEqual(FastMath.normalCDF(0), 0.5, accuracy: 1e-7)
        XCTAssertTrue(expError.holds, "\(expError)")
        XCTAssertEqual(FastMath.sigmoid(0), 0.5); XCTAssertEqual(FastMath.exp(0), 1)
        XCTAssertTrue(FastMath.sigmoid(-1000) >= 0 && FastMath.sigmoid(-1000) < 1e-37); XCTAssertEqual(FastMath.sigmoid(1000), 1)
        for n in [5, 33, 70_001] {
            let a = rng.uniformTensor([n], bound: 20)
            let d = Elementwise.sigmoid(a).maxAbsDifference(Elementwise.naiveSigmoid(a))
            report("sigmoid n=\(n) (FastMath vs Double libm)", d)
            XCTAssertLessThanOrEqual(d, 3e-7)
        }
        // NaN passes through ReLU like PyTorch.
        XCTAssertTrue(Elementwise.relu(Tensor(shape: [17], repeating: .nan)).scalars.allSatisfy { $0.isNaN })
    }

    func testPoolOutputSizesFollowPyTorch() {
        XCTAssertEqual(Pooling.outputSize(5, kernel: 2, stride: 2, padding: 1, ceilMode: true), 3)   // 4th window starts in padding
        XCTAssertEqual(Pooling.outputSize(5, kernel: 2, stride: 2, padding: 1, ceilMode: false), 3)
        XCTAssertEqual(Pooling.outputSize(8, kernel: 3, stride: 2, padding: 0, ceilMode: true), 4)
        XCTAssertEqual(Pooling.outputSize(8, kernel: 3, stride: 2, padding: 0, ceilMode: false), 3)
        XCTAssertEqual(Pooling.outputSize(112, kernel: 3, stride: 2, padding: 1, ceilMode: false), 56)
        XCTAssertEqual(Pooling.outputSize(7, kernel: 2, stride: 2, padding: 1, ceilMode: true), 4)
        XCTAssertEqual(Array(Pooling.adaptiveRange(0, input: 9, output: 7)), [0, 1])
        XCTAssertEqual(Array(Pooling.adaptiveRange(6, input: 9, output: 7)), [7, 8])
        XCTAssertEqual(Array(Pooling.adaptiveRange(3, input: 5, output: 7)), [2])
    }

    func testPoolingFastMatchesNaive() {
        var rng = SeededRNG(seed: 12)
        let configs = [(3, 2, 1, false), (2, 2, 0, false), (3, 2, 0, true), (2, 2, 1, true), (3, 1, 1, false), (5, 3, 2, true)]
        for shape in [[2, 3, 9, 9], [1, 2, 8, 7], [3, 1, 13, 6], [1, 5, 5, 5]] {
            let x = rng.normalTensor(shape)
            for (k, s, p, ceil) in configs {
                let g = PoolGeometry(input: shape, kernel: k, stride: s, padding: p, ceilMode: ceil)
                guard g.outH > 0, g.outW > 0 else { continue }
                let fast = Pooling.maxPool2d(x, g), naive = Pooling.naiveMaxPool2d(x, g)
                XCTAssertEqual(fast.output, naive.output, "maxPool \(shape) k\(k) s\(s) p\(p) ceil \(ceil)")
                XCTAssertEqual(fast.argmax, naive.argmax, "argmax \(shape) k\(k) s\(s) p\(p) ceil \(ceil)")
                var worst: Float = 0
                for inc in [true, false] {
                    worst = max(worst, Pooling.avgPool2d(x, g, countIncludePad: inc).maxAbsDifference(Pooling.naiveAvgPool2d(x, g, countIncludePad: inc)))
                }
                report("avgPool \(shape) k\(k) s\(s) p\(p) ceil \(ceil)", worst)
                XCTAssertLessThanOrEqual(worst, 1e-6)
            }
        }
        // NaN and infinities take the exact path: NaN propagates, +inf wins, -inf loses.
        var special = rng.normalTensor([1, 2, 6, 6])
        special.scalars[7] = .nan; special.scalars[40] = .infinity; special.scalars[41] = -.infinity
        let gs = PoolGeometry(input: special.shape, kernel: 3, stride: 2, padding: 1, ceilMode: false)
        let fs = Pooling.maxPool2d(special, gs), ns = Pooling.naiveMaxPool2d(special, gs)
        XCTAssertTrue(fs.output.scalars[0].isNaN && fs.output.scalars[1].isNaN && fs.output.scalars[3].isNaN)
        XCTAssertEqual(fs.argmax, ns.argmax)
        XCTAssertEqual(fs.output.scalars.filter { !$0.isNaN }, ns.output.scalars.filter { !$0.isNaN })
        XCTAssertTrue(fs.output.scalars.contains(.infinity))
        // Ties: the first maximum in row-major window order wins (PyTorch).
        let ties = Tensor(shape: [1, 1, 2, 2], repeating: 1)
        XCTAssertEqual(Pooling.maxPool2d(ties, PoolGeometry(input: [1, 1, 2, 2], kernel: 2, stride: 2, padding: 0, ceilMode: false)).argmax, [0])
        for shape in [[2, 3, 5, 7], [1, 4, 13, 11], [2, 64, 28, 28]] {
            let x = rng.normalTensor(shape)
            let d = Pooling.globalAvgPool(x).maxAbsDifference(Pooling.naiveGlobalAvgPool(x))
            report("globalAvgPool \(shape)", d)
            XCTAssertLessThanOrEqual(d, 1e-6)
        }
    }

    func testSoftMaxPoolBackwardFastMatchesNaive() {
        var rng = SeededRNG(seed: 16)
        let configs = [(3, 2, 1, false), (2, 2, 0, false), (3, 2, 0, true), (2, 2, 1, true), (3, 1, 1, false), (5, 3, 2, true)]
        // Rows of 1..40 windows; stride 2 with 16 windows inside the image takes the vector gather.
        for shape in [[2, 3, 9, 9], [1, 2, 8, 37], [3, 1, 13, 6], [1, 2, 40, 40], [1, 2, 12, 80]] {
            let x = rng.normalTensor(shape, std: 0.7)
            for (k, s, p, ceil) in configs {
                let g = PoolGeometry(input: shape, kernel: k, stride: s, padding: p, ceilMode: ceil)
                let dy = rng.normalTensor(g.outputShape)
                var worst: Float = 0
                for detach in [false, true] {
                    let fast = Pooling.softMaxPool2dBackward(dy, x: x, g, temperature: 0.3, detachWeights: detach)
                    let naive = Pooling.naiveSoftMaxPool2dBackward(dy, x: x, g, temperature: 0.3, detachWeights: detach)
                    worst = max(worst, fast.maxAbsDifference(naive))
                }
                report("soft maxPool backward \(shape) k\(k) s\(s) p\(p) ceil \(ceil)", worst)
                XCTAssertLessThanOrEqual(worst, 2e-5)
            }
        }
    }

    func testBatchNormFastMatchesNaive() {
        var rng = SeededRNG(seed: 13)
        for shape in [[2, 3, 5, 7], [6, 5], [3, 4, 17, 9], [2, 32, 28, 28]] {
            let x = rng.normalTensor(shape, mean: 0.7, std: 2)
            let c = shape[1]
            let fast = BatchNorm.statistics(x), naive = BatchNorm.naiveStatistics(x)
            let dm = Discrepancy(fast.mean, naive.mean, tolerance: Tolerance(absolute: 1e-6))
            let dv = Discrepancy(fast.variance, naive.variance, tolerance: Tolerance(relative: 1e-5, absolute: 1e-5))
            report("batchNorm statistics \(shape) mean", Float(dm.worst)); report("batchNorm statistics \(shape) variance", Float(dv.worst))
            XCTAssertTrue(dm.holds, "\(dm)"); XCTAssertTrue(dv.holds, "\(dv)")
            let w = rng.uniformTensor([c], bound: 1).scalars
            let invstd = fast.variance.map { 1 / ($0 + 1e-5).squareRoot() }
            let dy = rng.normalTensor(shape)
            for training in [false, true] {
                let f = BatchNorm.backward(dy, x: x, mean: fast.mean, invstd: invstd, weight: w, training: training, needInput: true)
                let n = BatchNorm.naiveBackward(dy, x: x, mean: fast.mean, invstd: invstd, weight: w, training: training)
                let ddx = f.dx!.maxAbsDifference(n.dx)
                var dp = Discrepancy(f.dweight, n.dweight, tolerance: Tolerance(relative: 1e-5, absolute: 1e-5))
                dp.merge(Discrepancy(f.dbias, n.dbias, tolerance: dp.tolerance))
                report("batchNorm backward \(shape) training \(training): dx", ddx)
                report("batchNorm backward \(shape) training \(training): dweight, dbias", Float(dp.worst))
                XCTAssertLessThanOrEqual(ddx, 2e-5); XCTAssertTrue(dp.holds, "\(dp)")
            }
        }
    }

    func testSoftmaxFastMatchesNaive() {
        var rng = SeededRNG(seed: 14)
        for shape in [[1, 1], [3, 7], [5, 1000], [2, 3, 17]] {
            let x = rng.normalTensor(shape, std: 5)
            for log in [false, true] {
                let naive = Softmax.naiveForward(x, log: log)
                let d = Softmax.forward(x, log: log).maxAbsDifference(naive)
                let scale = max(1, Float(Discrepancy(naive, naive).maxExpected))   // log-probabilities reach -40 here
                report("\(log ? "logSoftmax" : "softmax") \(shape) (largest |y| \(scale))", d)
                XCTAssertLessThanOrEqual(d, 4e-7 * scale)
            }
        }
        // Stability: huge logits do not overflow.
        let big = Tensor(shape: [1, 3], scalars: [1000, 999, -1000])
        XCTAssertTrue(Softmax.forward(big, log: false).isFinite); XCTAssertTrue(Softmax.forward(big, log: true).isFinite)
        XCTAssertEqual(Softmax.forward(big, log: false).scalars[0], 1 / (1 + exp(-1)), accuracy: 1e-6)
    }

    /// Soft-gate kernels (fast, SIMD + threads) against plain loops (Double).
    func testSoftGateKernelsMatchNaive() {
        var rng = SeededRNG(seed: 31)
        let a = rng.normalTensor([5, 8, 65, 33]), q = rng.normalTensor([5, 8, 65, 33], std: 0.3)
        let dy = rng.normalTensor([5, 8, 65, 33])
        let s = Elementwise.softGate(q, beta: 10)
        let dGate = s.maxAbsDifference(Elementwise.naiveSoftGate(q, beta: 10))
        let fast = Elementwise.gatedProductBackward(dy, value: a, gate: s, beta: 10, needValue: true, needPreActivation: true)
        let naive = Elementwise.naiveGatedProductBackward(dy, value: a, gate: s, beta: 10)
        let dv = fast.value!.maxAbsDifference(naive.value), dq = fast.preActivation!.maxAbsDifference(naive.preActivation)
        let onlyQ = Elementwise.gatedProductBackward(dy, value: a, gate: s, beta: 10, needValue: false, needPreActivation: true)
        let onlyV = Elementwise.gatedProductBackward(dy, value: a, gate: s, beta: 10, needValue: true, needPreActivation: false)
        let dsb = Elementwise.softGateBackward(dy, gate: s, beta: 10)
            .maxAbsDifference(Tensor(shape: dy.shape, scalars: (0..<dy.count).map { dy.scalars[$0] * s.scalars[$0] * (1 - s.scalars[$0]) * 10 }))
        print("soft gate vs naive: gate \(dGate), backward value \(dv), pre-activation \(dq), softGateBackward \(dsb)")
        XCTAssertLessThan(dGate, 1e-6)
        XCTAssertLessThan(dv, 1e-6)
        XCTAssertLessThan(dq, 1e-5)
        XCTAssertLessThan(dsb, 1e-5)
        XCTAssertNil(onlyQ.value); XCTAssertEqual(onlyQ.preActivation, fast.preActivation)
        XCTAssertNil(onlyV.preActivation); XCTAssertEqual(onlyV.value, fast.value)
        // Same bits for any thread count.
        func run() -> [Tensor] {
            let r = Elementwise.gatedProductBackward(dy, value: a, gate: s, beta: 10, needValue: true, needPreActivation: true)
            return [Elementwise.softGate(q, beta: 10), r.value!, r.preActivation!, Elementwise.softGateBackward(dy, gate: s, beta: 10)]
        }
        let one = Parallel.$threadCount.withValue(1) { run() }
        XCTAssertEqual(one, Parallel.$threadCount.withValue(2) { run() })
        XCTAssertEqual(one, Parallel.$threadCount.withValue(3) { run() })
    }

    /// Results are bit-identical for 1, 2 and 3 worker threads.
    func testThreadCountIndependence() {
        var rng = SeededRNG(seed: 15)
        let x = rng.normalTensor([4, 16, 15, 15]), dy15 = rng.normalTensor([4, 16, 8, 8])
        let g = PoolGeometry(input: x.shape, kernel: 3, stride: 2, padding: 1, ceilMode: false)
        let dy7 = rng.normalTensor([4, 16, 7, 7])
        let logits = rng.normalTensor([37, 1000], std: 3), dLogits = rng.normalTensor([37, 1000])
        func run() -> [Tensor] {
            let st = BatchNorm.statistics(x)
            let mp = Pooling.maxPool2d(x, g)
            let p = Softmax.forward(logits, log: false), lp = Softmax.forward(logits, log: true)
            return [Tensor(shape: [16], scalars: st.mean), Tensor(shape: [16], scalars: st.variance),
                    mp.output, Pooling.softMaxPool2dBackward(dy15, x: x, g, temperature: 0.3, detachWeights: false),
                    Pooling.globalAvgPool(x), Elementwise.add(x, x),
                    BatchNorm.backward(x, x: x, mean: st.mean, invstd: st.variance, weight: st.mean, training: true, needInput: true).dx!,
                    // Average pooling, both padding conventions, forward and backward; adaptive pooling.
                    Pooling.avgPool2d(x, g, countIncludePad: true), Pooling.avgPool2d(x, g, countIncludePad: false),
                    Pooling.avgPool2dBackward(dy15, g, countIncludePad: true), Pooling.avgPool2dBackward(dy15, g, countIncludePad: false),
                    Pooling.adaptiveAvgPool2d(x, outH: 7, outW: 7), Pooling.adaptiveAvgPool2dBackward(dy7, inputShape: x.shape),
                    // Softmax and log-softmax, forward and backward.
                    p, lp, Softmax.backward(dLogits, y: p, log: false), Softmax.backward(dLogits, y: lp, log: true)]
        }
        let one = Parallel.$threadCount.withValue(1) { run() }
        let two = Parallel.$threadCount.withValue(2) { run() }
        let three = Parallel.$threadCount.withValue(3) { run() }
        for i in one.indices {
            XCTAssertEqual(one[i].scalars, two[i].scalars, "output \(i): 1 vs 2 threads")
            XCTAssertEqual(one[i].scalars, three[i].scalars, "output \(i): 1 vs 3 threads")
        }
    }
}
