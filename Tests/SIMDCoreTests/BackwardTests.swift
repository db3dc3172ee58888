import XCTest
import SIMDCore

// MARK: - Finite-difference checks of every op's pullback
//
// L = sum(seed * f(inputs)) with a fixed random seed tensor; the tape's gradient of L is compared
// with central differences (L evaluated on a non-recording tape, accumulated in Double).
// Inputs of ReLU and max-pool are built away from kinks and ties (gaps >= 0.05 > step h).

/// A random seed tensor (upstream gradient) for a given output shape.
func seedTensor(_ shape: [Int], seed: UInt64 = 99) -> Tensor {
    var rng = SeededRNG(seed: seed)
    return rng.uniformTensor(shape, bound: 1)
}

func weightedSum(_ y: Tensor, _ w: Tensor) -> Double {
    var s = 0.0
    for i in 0..<y.count { s += Double(y.scalars[i]) * Double(w.scalars[i]) }
    return s
}

/// Values spaced by `gap` in random order (no ties, no two within `gap`), centred on `offset`.
func distinctTensor(_ shape: [Int], gap: Float = 0.05, offset: Float = 0, seed: UInt64 = 5) -> Tensor {
    var rng = SeededRNG(seed: seed)
    let n = shape.reduce(1, *)
    let p = rng.permutation(n)
    return Tensor(shape: shape) { Float(p[$0]) * gap - Float(n) * gap / 2 + offset }
}

/// Values with |v| >= margin (ReLU inputs away from the kink).
func awayFromZero(_ shape: [Int], margin: Float = 0.05, seed: UInt64 = 6) -> Tensor {
    var rng = SeededRNG(seed: seed)
    return Tensor(shape: shape) { _ in
        let u = rng.uniform(-1, 1)
        return u >= 0 ? u + margin : u - margin
    }
}

final class BackwardTests: XCTestCase {
    /// Compares the tape's gradient with central differences element by element:
    /// |analytic - numeric| <= tol.absolute + tol.relative * |numeric|, every element finite.
    /// Each test states its tolerance: relative to the gradient, with an absolute floor for
    /// gradients near 0 where the Float32 loss's rounding (~1e-7 |L| / h) dominates.
    @discardableResult
    func checkPullback(tol: Tolerance, _ name: String, _ inputs: [Tensor], h: Float = 1e-2,
                       file: StaticString = #filePath, line: UInt = #line,
                       _ f: (Tape, [Variable]) throws -> Variable) throws -> Discrepancy {
        let tape = Tape()
        let vars = inputs.map { tape.input($0, requiresGrad: true) }
        let y = try f(tape, vars)
        let seed = seedTensor(tape.shape(y))
        let grads = try tape.backward(from: y, seed: seed)
        func loss(_ xs: [Tensor]) throws -> Double {
            let t = Tape(recording: false)
            return weightedSum(t.value(try f(t, xs.map { t.input($0) })), seed)
        }
        var d = Discrepancy(tolerance: tol)
        for k in inputs.indices {
            guard let g = grads[vars[k]] else { XCTFail("\(name): no gradient for input \(k)", file: file, line: line); continue }
            XCTAssertEqual(g.shape, inputs[k].shape, "\(name): gradient shape", file: file, line: line)
            for i in 0..<inputs[k].count {
                var xs = inputs
                xs[k].scalars[i] += h
                let lp = try loss(xs)
                xs[k].scalars[i] -= 2 * h
                let lm = try loss(xs)
                d.add(actual: Double(g.scalars[i]), expected: (lp - lm) / Double(2 * h))
            }
        }
        print("[FD] \(name): \(d)")
        XCTAssertTrue(d.holds, "\(name): pullback disagrees with finite differences: \(d)", file: file, line: line)
        return d
    }

    // MARK: Elementwise, shape, softmax, losses

    func testElementwisePullbacks() throws {
        // 0.1% of the gradient, floor 1e-5 (measured worst: 9% of this band, sigmoid's O(h^2) term).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 1)
        let a = rng.uniformTensor([2, 3, 4], bound: 1), b = rng.uniformTensor([2, 3, 4], bound: 1)
        try checkPullback(tol: fd, "add", [a, b]) { t, v in try t.add(v[0], v[1]) }
        try checkPullback(tol: fd, "mul", [a, b]) { t, v in try t.mul(v[0], v[1]) }
        try checkPullback(tol: fd, "scale", [a]) { t, v in try t.scale(v[0], by: -1.7) }
        try checkPullback(tol: fd, "sigmoid", [a]) { t, v in try t.sigmoid(t.scale(v[0], by: 3)) }
        try checkPullback(tol: fd, "channelAffine", [rng.uniformTensor([2, 3, 5], bound: 1)]) { t, v in
            try t.channelAffine(v[0], scale: [0.5, -2, 3], shift: [1, 2, -3])
        }
        try checkPullback(tol: fd, "relu(hard)", [awayFromZero([3, 17])]) { t, v in try t.relu(v[0]) }
        // Shared input: gradients of both uses must accumulate.
        try checkPullback(tol: fd, "mul(x, x) + x", [a]) { t, v in try t.add(t.mul(v[0], v[0]), v[0]) }
    }

    /// softGate and gatedMul (paper B's soft gating): finite differences, and the fused pullback
    /// gives the same bits as the composite mul(q_v, sigmoid(scale(q_f, beta))).
    func testSoftGatePullbacks() throws {
        // 0.1% of the gradient, floor 1e-5 (measured worst: 13% of this band, the beta = 4 sigmoid's O(h^2) term).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 21)
        let qv = rng.uniformTensor([2, 3, 5], bound: 1), qf = rng.uniformTensor([2, 3, 5], bound: 0.3)
        try checkPullback(tol: fd, "softGate", [qf]) { t, v in try t.softGate(v[0], beta: 4) }
        try checkPullback(tol: fd, "gatedMul", [qv, qf]) { t, v in
            try t.gatedMul(v[0], gate: t.softGate(v[1], beta: 4), preActivation: v[1], beta: 4)
        }
        // Bit identity with the composite at paper B's beta = 10, on a big tensor (SIMD body + tail).
        let a = rng.normalTensor([3, 7, 9, 11]), q = rng.normalTensor([3, 7, 9, 11], std: 0.2)
        let dy = rng.normalTensor([3, 7, 9, 11])
        func run(fused: Bool) throws -> [Tensor] {
            let t = Tape()
            let va = t.input(a, requiresGrad: true), vq = t.input(q, requiresGrad: true)
            let z: Variable
            if fused {
                z = try t.gatedMul(va, gate: t.softGate(vq, beta: 10), preActivation: vq, beta: 10)
            } else {
                z = try t.mul(va, t.sigmoid(t.scale(vq, by: 10)))
            }
            let g = try t.backward(from: z, seed: dy)
            return [t.value(z), g[va]!, g[vq]!]
        }
        let fused = try run(fused: true), composite = try run(fused: false)
        for (f, c) in zip(fused, composite) { XCTAssertEqual(f.scalars, c.scalars, "fused gate vs composite, bit for bit") }
        // A gate that is not softGate(preActivation) is refused.
        let t = Tape()
        let va = t.input(a, requiresGrad: true), vq = t.input(q, requiresGrad: true)
        XCTAssertThrowsError(try t.gatedMul(va, gate: t.sigmoid(vq), preActivation: va, beta: 10)) {
            XCTAssertTrue("\($0)".contains("gatedMul"), "\($0)")
        }
    }

    func testShapePullbacks() throws {
        // 0.1% of the gradient, floor 1e-5 (measured worst: 2% of this band).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 2)
        let a = rng.uniformTensor([2, 3, 2, 2], bound: 1), b = rng.uniformTensor([2, 1, 2, 2], bound: 1)
        try checkPullback(tol: fd, "concat(axis 1)", [a, b]) { t, v in try t.mul(t.concat(v, axis: 1), t.concat(v, axis: 1)) }
        try checkPullback(tol: fd, "concat(axis 3)", [a, rng.uniformTensor([2, 3, 2, 5], bound: 1)]) { t, v in
            try t.scale(t.concat(v, axis: 3), by: 2)
        }
        try checkPullback(tol: fd, "flatten", [a]) { t, v in try t.sigmoid(t.flatten(v[0])) }
    }

    func testSoftmaxAndLossPullbacks() throws {
        // 0.1% of the gradient, floor 1e-5 (measured worst: 17% of this band, cross-entropy).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 3)
        let x = rng.uniformTensor([3, 7], bound: 2)
        try checkPullback(tol: fd, "softmax", [x]) { t, v in try t.softmax(v[0]) }
        try checkPullback(tol: fd, "logSoftmax", [x]) { t, v in try t.logSoftmax(v[0]) }
        try checkPullback(tol: fd, "crossEntropy", [x]) { t, v in try t.crossEntropy(logits: v[0], labels: [2, 0, 6]) }
        let target = rng.uniformTensor([3, 7], bound: 1)
        try checkPullback(tol: fd, "mse", [x]) { t, v in try t.mse(v[0], target: target) }
    }

    // MARK: Pools

    func testPoolPullbacks() throws {
        // 0.1% of the gradient, floor 1e-5 (measured worst: 15% of this band); max-pool inputs keep
        // their ties and kinks farther than h away, so only rounding remains there.
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 4)
        for (k, s, p, ceil) in [(3, 2, 1, false), (2, 2, 0, false), (3, 2, 0, true), (2, 2, 1, true), (3, 1, 1, false)] {
            let x = distinctTensor([2, 2, 7, 6], seed: UInt64(k * 10 + s + p))
            try checkPullback(tol: fd, "maxPool2d(k\(k) s\(s) p\(p) ceil \(ceil))", [x]) { t, v in
                try t.maxPool2d(v[0], kernel: k, stride: s, padding: p, ceilMode: ceil)
            }
            for inc in [true, false] {
                try checkPullback(tol: fd, "avgPool2d(k\(k) s\(s) p\(p) ceil \(ceil) includePad \(inc))",
                                  [rng.uniformTensor([1, 2, 7, 6], bound: 1)]) { t, v in
                    try t.avgPool2d(v[0], kernel: k, stride: s, padding: p, ceilMode: ceil, countIncludePad: inc)
                }
            }
        }
        try checkPullback(tol: fd, "adaptiveAvgPool2d 9x11 -> 7x7", [rng.uniformTensor([1, 2, 9, 11], bound: 1)]) { t, v in
            try t.adaptiveAvgPool2d(v[0], outputHeight: 7, outputWidth: 7)
        }
        try checkPullback(tol: fd, "adaptiveAvgPool2d 5x3 -> 7x7", [rng.uniformTensor([1, 2, 5, 3], bound: 1)]) { t, v in
            try t.adaptiveAvgPool2d(v[0], outputHeight: 7, outputWidth: 7)
        }
        try checkPullback(tol: fd, "globalAvgPool", [rng.uniformTensor([2, 3, 5, 7], bound: 1)]) { t, v in try t.globalAvgPool(v[0]) }
    }

    // MARK: BatchNorm

    func testBatchNormPullbacks() throws {
        // 0.5% of the gradient, floor 5e-5 (measured worst: 33% of this band, training mode: the batch
        // statistics make the loss strongly curved, so the O(h^2) term is larger at h = 5e-3).
        let fd = Tolerance(relative: 5e-3, absolute: 5e-5)
        var rng = SeededRNG(seed: 5)
        let w = Tensor(shape: [3], scalars: [0.7, 1.3, -0.4]), b = Tensor(shape: [3], scalars: [0.1, -0.2, 0.3])
        for shape in [[3, 3, 4, 5], [6, 3]] {
            let x = rng.uniformTensor(shape, bound: 2)
            for training in [false, true] {
                try checkPullback(tol: fd, "batchNorm(\(shape), training \(training))", [x, w, b], h: 5e-3) { t, v in
                    let stats = BatchNormStatistics(mean: Tensor(shape: [3], scalars: [0.2, -0.1, 0.05]),
                                                    variance: Tensor(shape: [3], scalars: [0.8, 1.5, 0.3]))
                    return try t.batchNorm(v[0], weight: v[1], bias: v[2], running: stats, training: training)
                }
            }
        }
    }

    func testBatchNormNeedsOnlyWhatIsAsked() throws {
        let tape = Tape()
        let x = tape.input(seedTensor([2, 3, 4, 4], seed: 1), requiresGrad: true)
        let w = tape.input(Tensor(shape: [3], repeating: 1)), b = tape.input(Tensor(zeros: [3]))
        let y = try tape.batchNorm(x, weight: w, bias: b, running: BatchNormStatistics(channels: 3), training: false)
        let g = try tape.backward(from: y, seed: seedTensor([2, 3, 4, 4]))
        XCTAssertNotNil(g[x]); XCTAssertNil(g[w]); XCTAssertNil(g[b])
        // The short eval path (no parameter sums) gives the same dx as the full backward.
        let tape2 = Tape()
        let x2 = tape2.input(seedTensor([2, 3, 4, 4], seed: 1), requiresGrad: true)
        let w2 = tape2.parameter(Tensor(shape: [3], repeating: 1)), b2 = tape2.parameter(Tensor(zeros: [3]))
        let y2 = try tape2.batchNorm(x2, weight: w2, bias: b2, running: BatchNormStatistics(channels: 3), training: false)
        let g2 = try tape2.backward(from: y2, seed: seedTensor([2, 3, 4, 4]))
        XCTAssertEqual(try XCTUnwrap(g[x]).maxAbsDifference(try XCTUnwrap(g2[x2])), 0, accuracy: 1e-7)
    }

    // MARK: Soft gates: the backward is deliberately not the forward's derivative

    /// (a) relu with a soft gate returns exactly dy * gate(z), kinks included.
    func testSoftReluGateIsExactlyDyTimesGate() throws {
        var rng = SeededRNG(seed: 7)
        var z = rng.uniformTensor([2, 3, 5, 5], bound: 2)
        z.scalars[0] = 0; z.scalars[1] = -0.0
        for gate in [Gate.sigmoid(temperature: 0.3), .normalCDF(temperature: 0.6), .hard] {
            let tape = Tape()
            let x = tape.input(z, requiresGrad: true)
            let y = try tape.relu(x, gate: gate)
            XCTAssertEqual(tape.value(y).scalars, z.scalars.map { max($0, 0) }, "forward is always max(z, 0)")
            let dy = seedTensor(z.shape)
            let dx = try XCTUnwrap(try tape.backward(from: y, seed: dy)[x])
            for i in 0..<z.count { XCTAssertEqual(dx.scalars[i], dy.scalars[i] * gate.derivative(z.scalars[i]), "\(gate) at \(i)") }
        }
    }

    /// Plain reference of the surrogate soft pool, in Double: per window (zero padding inside,
    /// ceil overhang outside) s = sum_j w_j x_j, w = softmax(x_window / T). With `frozen`, the
    /// weights come from `frozen` instead of `x` (detached weights).
    func surrogate(_ x: Tensor, k: Int, s: Int, p: Int, ceil: Bool, t: Double, frozen: Tensor? = nil) -> Tensor {
        let g = PoolGeometry(input: x.shape, kernel: k, stride: s, padding: p, ceilMode: ceil)
        var y = Tensor(zeros: g.outputShape)
        for plane in 0..<(g.n * g.c) { for oh in 0..<g.outH { for ow in 0..<g.outW {
            var vals: [Double] = [], wsrc: [Double] = []
            for i in 0..<k { for j in 0..<k {
                let ih = oh * s - p + i, iw = ow * s - p + j
                if ih >= g.h + p || iw >= g.w + p { continue }
                let inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w
                let at = plane * g.h * g.w + ih * g.w + iw
                vals.append(inside ? Double(x.scalars[at]) : 0)
                wsrc.append(inside ? Double((frozen ?? x).scalars[at]) : 0)
            } }
            let m = wsrc.max()!
            let e = wsrc.map { exp(($0 - m) / t) }, z = e.reduce(0, +)
            y.scalars[plane * g.outH * g.outW + oh * g.outW + ow] = Float(zip(e, vals).reduce(0) { $0 + $1.0 / z * $1.1 })
        } } }
        return y
    }

    /// (b) the soft max-pool backward equals finite differences of the surrogate s, attached and detached.
    func testSoftMaxPoolBackwardIsGradientOfSurrogate() throws {
        // 0.5% of the gradient, floor 5e-5 (measured worst: 31% of this band; T = 0.3 makes the
        // surrogate's softmax weights curved on the scale of h = 1e-3).
        let fd = Tolerance(relative: 5e-3, absolute: 5e-5)
        let t: Float = 0.3, h = 1e-3
        for (k, s, p, ceil) in [(3, 2, 1, false), (2, 2, 0, false), (3, 2, 1, true), (2, 2, 1, true), (3, 1, 1, false)] {
            var rng = SeededRNG(seed: UInt64(100 + k + s + p))
            let x = rng.uniformTensor([2, 2, 7, 6], bound: 0.6)   // small: the zero padding matters
            for detach in [false, true] {
                let tape = Tape()
                let xv = tape.input(x, requiresGrad: true)
                let y = try tape.maxPool2d(xv, kernel: k, stride: s, padding: p, ceilMode: ceil,
                                           gate: .soft(temperature: t, detachWeights: detach))
                XCTAssertEqual(tape.value(y), Pooling.maxPool2d(x, PoolGeometry(input: x.shape, kernel: k, stride: s, padding: p, ceilMode: ceil)).output,
                               "forward stays the hard max")
                let seed = seedTensor(tape.shape(y))
                let dx = try XCTUnwrap(try tape.backward(from: y, seed: seed)[xv])
                var d = Discrepancy(tolerance: fd)
                for i in 0..<x.count {
                    var xp = x, xm = x
                    xp.scalars[i] += Float(h); xm.scalars[i] -= Float(h)
                    let lp = weightedSum(surrogate(xp, k: k, s: s, p: p, ceil: ceil, t: Double(t), frozen: detach ? x : nil), seed)
                    let lm = weightedSum(surrogate(xm, k: k, s: s, p: p, ceil: ceil, t: Double(t), frozen: detach ? x : nil), seed)
                    d.add(actual: Double(dx.scalars[i]), expected: (lp - lm) / (2 * h))
                }
                print("[FD] soft maxPool2d k\(k) s\(s) p\(p) ceil \(ceil) detached \(detach): \(d)")
                XCTAssertTrue(d.holds, "soft maxPool2d k\(k) s\(s) p\(p) ceil \(ceil) detached \(detach): \(d)")
            }
        }
    }

    /// (c) as T -> 0 the sigmoid gate and the soft pool approach the hard gradient.
    func testSoftGatesApproachHardAsTemperatureVanishes() throws {
        let z = awayFromZero([4, 50], margin: 0.05)
        let dy = seedTensor(z.shape)
        func reluGrad(_ gate: Gate) throws -> Tensor {
            let tape = Tape(); let x = tape.input(z, requiresGrad: true)
            return try XCTUnwrap(try tape.backward(from: try tape.relu(x, gate: gate), seed: dy)[x])
        }
        let hard = try reluGrad(.hard)
        var errors: [Float] = []
        for t: Float in [0.3, 0.03, 0.003] { errors.append(try reluGrad(.sigmoid(temperature: t)).maxAbsDifference(hard)) }
        print("[T->0] relu sigmoid gate max |g_T - g_hard| for T = 0.3, 0.03, 0.003: \(errors)")
        XCTAssertGreaterThan(errors[0], errors[1]); XCTAssertGreaterThan(errors[1], errors[2])
        XCTAssertLessThan(errors[2], 1e-6)

        // Positive, well-separated inputs: the soft pool's weights collapse onto the argmax.
        let x = distinctTensor([1, 2, 8, 8], gap: 0.05, offset: 3.5)
        func poolGrad(_ gate: PoolGate) throws -> Tensor {
            let tape = Tape(); let v = tape.input(x, requiresGrad: true)
            let y = try tape.maxPool2d(v, kernel: 3, stride: 2, padding: 1, gate: gate)
            return try XCTUnwrap(try tape.backward(from: y, seed: seedTensor(tape.shape(y)))[v])
        }
        let hp = try poolGrad(.hard)
        let sp = try poolGrad(.soft(temperature: 0.002, detachWeights: false))
        let sd = try poolGrad(.soft(temperature: 0.002, detachWeights: true))
        print("[T->0] soft max-pool at T = 0.002: max |g - g_hard| attached \(sp.maxAbsDifference(hp)), detached \(sd.maxAbsDifference(hp))")
        XCTAssertLessThan(sp.maxAbsDifference(hp), 1e-4)
        XCTAssertLessThan(sd.maxAbsDifference(hp), 1e-4)
    }

    // MARK: Errors

    func assertEngineError(_ body: @autoclosure () throws -> Any, contains parts: [String],
                           file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try body(), file: file, line: line) { e in
            XCTAssertTrue(e is EngineError, "\(e) is not an EngineError", file: file, line: line)
            for p in parts { XCTAssertTrue("\(e)".contains(p), "'\(e)' does not mention '\(p)'", file: file, line: line) }
        }
    }

    func testShapeErrorsNameOpAndShapes() throws {
        let tape = Tape()
        let a = tape.input(Tensor(zeros: [2, 3])), b = tape.input(Tensor(zeros: [3, 2]))
        assertEngineError(try tape.add(a, b), contains: ["add", "[2, 3]", "[3, 2]"])
        assertEngineError(try tape.mul(a, b), contains: ["mul", "[2, 3]", "[3, 2]"])
        assertEngineError(try tape.mse(a, target: Tensor(zeros: [3, 2])), contains: ["mse", "[2, 3]", "[3, 2]"])
        let img = tape.input(Tensor(zeros: [1, 2, 4, 4])), img2 = tape.input(Tensor(zeros: [1, 2, 5, 4]))
        assertEngineError(try tape.concat([img, img2], axis: 1), contains: ["concat", "[1, 2, 4, 4]", "[1, 2, 5, 4]"])
        assertEngineError(try tape.channelAffine(img, scale: [1, 2, 3], shift: [0, 0, 0]), contains: ["channelAffine", "[1, 2, 4, 4]", "3"])
        assertEngineError(try tape.maxPool2d(a, kernel: 2, stride: 2), contains: ["maxPool2d", "[2, 3]"])
        assertEngineError(try tape.maxPool2d(img, kernel: 2, stride: 2, padding: 2), contains: ["maxPool2d", "padding 2"])
        assertEngineError(try tape.avgPool2d(img, kernel: 5, stride: 1), contains: ["avgPool2d", "[1, 2, 4, 4]"])
        assertEngineError(try tape.globalAvgPool(a), contains: ["globalAvgPool", "[2, 3]"])
        let w3 = tape.input(Tensor(zeros: [3]))
        assertEngineError(try tape.batchNorm(img, weight: w3, bias: w3, running: BatchNormStatistics(channels: 2), training: false),
                          contains: ["batchNorm", "[1, 2, 4, 4]", "[3]"])
        let one = tape.input(Tensor(zeros: [1, 2]))
        let w2 = tape.input(Tensor(zeros: [2]))
        assertEngineError(try tape.batchNorm(one, weight: w2, bias: w2, running: BatchNormStatistics(channels: 2), training: true),
                          contains: ["batchNorm", "more than one value"])
    }

    func testCrossEntropyErrors() throws {
        let tape = Tape()
        let logits = tape.input(Tensor(zeros: [2, 10]))
        assertEngineError(try tape.crossEntropy(logits: logits, labels: [3, 10]), contains: ["crossEntropy", "label 10", "0..<10"])
        assertEngineError(try tape.crossEntropy(logits: logits, labels: [-1, 0]), contains: ["crossEntropy", "label -1"])
        assertEngineError(try tape.crossEntropy(logits: logits, labels: [1]), contains: ["crossEntropy", "2 rows", "1 labels"])
        for bad in [Float.nan, .infinity, -.infinity] {
            var v = Tensor(zeros: [2, 10]); v.scalars[13] = bad
            let l = tape.input(v)
            XCTAssertThrowsError(try tape.crossEntropy(logits: l, labels: [0, 1])) { e in
                XCTAssertEqual(e as? EngineError, EngineError.nonFinite("crossEntropy", "logits", shape: [2, 10]))
            }
            XCTAssertThrowsError(try tape.mse(l, target: Tensor(zeros: [2, 10]))) { e in
                XCTAssertEqual(e as? EngineError, EngineError.nonFinite("mse", "input", shape: [2, 10]))
            }
        }
    }
}
