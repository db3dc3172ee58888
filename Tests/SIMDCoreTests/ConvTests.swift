import XCTest
import SIMDCore

final class ConvTests: XCTestCase {
    struct Case { let n, cin, h, w, cout, k, stride, pad: Int; let kw: Int? }

    static let cases: [Case] = [
        Case(n: 1, cin: 5, h: 9, w: 11, cout: 7, k: 1, stride: 1, pad: 0, kw: nil),     // 1x1 pointwise
        Case(n: 2, cin: 6, h: 9, w: 7, cout: 10, k: 1, stride: 2, pad: 0, kw: nil),     // 1x1 stride 2 (downsample)
        Case(n: 1, cin: 4, h: 8, w: 8, cout: 9, k: 1, stride: 1, pad: 1, kw: nil),      // 1x1 with padding
        Case(n: 2, cin: 8, h: 13, w: 11, cout: 33, k: 3, stride: 1, pad: 1, kw: nil),   // 3x3 same, odd H,W
        Case(n: 1, cin: 7, h: 15, w: 13, cout: 12, k: 3, stride: 2, pad: 1, kw: nil),   // 3x3 stride 2
        Case(n: 1, cin: 3, h: 23, w: 21, cout: 16, k: 7, stride: 2, pad: 3, kw: nil),   // ResNet stem, odd size
        Case(n: 2, cin: 3, h: 10, w: 9, cout: 5, k: 5, stride: 1, pad: 0, kw: nil),     // 5x5 valid
        Case(n: 1, cin: 2, h: 6, w: 7, cout: 3, k: 3, stride: 1, pad: 3, kw: nil),      // pad > k-1 (general dx path)
        Case(n: 1, cin: 3, h: 9, w: 10, cout: 4, k: 3, stride: 3, pad: 2, kw: 2),       // non-square kernel, stride 3
        Case(n: 1, cin: 70, h: 40, w: 37, cout: 20, k: 3, stride: 1, pad: 1, kw: nil),  // K > KC, N > NC
        // Small feature maps with many channels: GEMM computes Y^T (transposed store) and the
        // stride-1 input gradient packs the flipped kernel as the wide operand.
        Case(n: 2, cin: 40, h: 7, w: 7, cout: 36, k: 3, stride: 1, pad: 1, kw: nil),
        Case(n: 1, cin: 30, h: 9, w: 9, cout: 50, k: 3, stride: 2, pad: 1, kw: nil),
        Case(n: 1, cin: 64, h: 7, w: 7, cout: 48, k: 1, stride: 1, pad: 0, kw: nil),
        // More than 256 output pixels: B packed straight from the image (implicit im2col).
        Case(n: 1, cin: 3, h: 40, w: 38, cout: 8, k: 7, stride: 2, pad: 3, kw: nil),
        Case(n: 2, cin: 5, h: 35, w: 33, cout: 6, k: 3, stride: 2, pad: 1, kw: nil),
        Case(n: 1, cin: 4, h: 19, w: 18, cout: 7, k: 3, stride: 1, pad: 2, kw: nil),
        // Output at least 28 wide: the window path (WindowConv.swift), forward and stride-1 dx.
        Case(n: 2, cin: 5, h: 31, w: 30, cout: 13, k: 3, stride: 1, pad: 1, kw: nil),   // 16: M not a multiple of 6
        Case(n: 1, cin: 3, h: 64, w: 61, cout: 8, k: 7, stride: 2, pad: 3, kw: nil),    // 17: stem-like, 4 phases
        Case(n: 1, cin: 6, h: 58, w: 57, cout: 10, k: 3, stride: 2, pad: 1, kw: nil),   // 18: odd size, stride 2
        Case(n: 1, cin: 3, h: 20, w: 90, cout: 7, k: 3, stride: 3, pad: 2, kw: 2),      // 19: 3x2 kernel, stride 3
        Case(n: 1, cin: 4, h: 12, w: 33, cout: 7, k: 5, stride: 1, pad: 0, kw: nil),    // 20: valid 5x5 (dx pad 4)
        Case(n: 1, cin: 30, h: 28, w: 29, cout: 14, k: 3, stride: 1, pad: 1, kw: nil),  // 21: K = 270 > KC
        Case(n: 1, cin: 2, h: 5, w: 30, cout: 200, k: 3, stride: 1, pad: 1, kw: nil),   // 22: M = 200 > MC
        // Small maps with many output channels: the transposed product is split by columns and
        // its A operand (the column matrix) is packed once, shared by the workers (PackedPanels).
        Case(n: 1, cin: 8, h: 7, w: 7, cout: 260, k: 3, stride: 1, pad: 1, kw: nil),    // 23: K = 72
        Case(n: 2, cin: 40, h: 9, w: 8, cout: 300, k: 3, stride: 2, pad: 1, kw: nil),   // 24: K = 360 > KC
        // Output width a multiple of 32: the window path's row panels, stored straight into y; at
        // least two images per worker: the batch is split over the workers by images.
        Case(n: 5, cin: 6, h: 32, w: 32, cout: 13, k: 3, stride: 1, pad: 1, kw: nil),   // 25: M, dx M not multiples of 6
        Case(n: 4, cin: 3, h: 64, w: 63, cout: 8, k: 3, stride: 2, pad: 1, kw: nil),    // 26: stride 2 (general dx, per image)
        Case(n: 1, cin: 30, h: 10, w: 64, cout: 20, k: 3, stride: 1, pad: 1, kw: nil),  // 27: 2 panels per row, K > KC
        // The pixel-window path (PixelWindowConv.swift, A read from the phase images): 14x14 and 7x7
        // outputs split by pixels (few output channels) or by output channels, stride 1 and 2.
        Case(n: 1, cin: 32, h: 28, w: 27, cout: 70, k: 3, stride: 2, pad: 1, kw: nil),  // 28: 14x14, row split
        Case(n: 2, cin: 30, h: 14, w: 14, cout: 260, k: 3, stride: 1, pad: 1, kw: nil), // 29: column split, 4-column edge
        Case(n: 1, cin: 20, h: 14, w: 13, cout: 64, k: 3, stride: 2, pad: 1, kw: nil),  // 30: 7x7 from stride 2
        // The window path's single fork/join with several workers (column split): a row spanning
        // every worker's columns (one output row, 3 threads in the thread test), and stride 2.
        Case(n: 1, cin: 3, h: 1, w: 300, cout: 5, k: 3, stride: 1, pad: 1, kw: nil),    // 31
        Case(n: 1, cin: 7, h: 61, w: 90, cout: 11, k: 5, stride: 2, pad: 2, kw: nil),   // 32
        // Winograd F(2x2, 3x3) (WinogradConv.swift), forward and stride-1 dx: odd sizes (a last
        // tile half outside), padding 0 and 2 (dx padding 2 and 0), Cout not a multiple of MR,
        // tile rows that end inside a vector (and vectors spanning three rows), Cin > KC, a
        // batch split over the workers by images, and a map whose blocks go to different workers.
        Case(n: 1, cin: 16, h: 9, w: 11, cout: 17, k: 3, stride: 1, pad: 1, kw: nil),   // 33
        Case(n: 1, cin: 20, h: 12, w: 30, cout: 18, k: 3, stride: 1, pad: 0, kw: nil),  // 34
        Case(n: 1, cin: 16, h: 10, w: 13, cout: 16, k: 3, stride: 1, pad: 2, kw: nil),  // 35
        Case(n: 1, cin: 300, h: 8, w: 9, cout: 20, k: 3, stride: 1, pad: 1, kw: nil),   // 36
        Case(n: 5, cin: 16, h: 12, w: 12, cout: 24, k: 3, stride: 1, pad: 1, kw: nil),  // 37
        Case(n: 1, cin: 24, h: 40, w: 70, cout: 40, k: 3, stride: 1, pad: 1, kw: nil),  // 38
    ]

    func weightShape(_ c: Case) -> [Int] { [c.cout, c.cin, c.k, c.kw ?? c.k] }

    func testFastMatchesReference() throws {
        var worst: (fwd: Float, dx: Float, dw: Float, db: Float) = (0, 0, 0, 0)
        for (i, c) in Self.cases.enumerated() {
            var rng = SeededRNG(seed: UInt64(100 + i))
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let b = rng.uniformTensor([c.cout], bound: 0.5)
            let y = try Conv2D.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.pad)
            let yr = try Conv2D.referenceForward(input: x, weight: w, bias: b, stride: c.stride, padding: c.pad)
            XCTAssertEqual(y.shape, yr.shape)
            let dy = rng.uniformTensor(y.shape, bound: 1)
            let dx = try Conv2D.inputGradient(outputGradient: dy, weight: w, inputShape: x.shape, stride: c.stride, padding: c.pad)
            let dxr = try Conv2D.referenceInputGradient(outputGradient: dy, weight: w, inputShape: x.shape, stride: c.stride, padding: c.pad)
            let (dw, db) = try Conv2D.weightGradient(outputGradient: dy, input: x, weightShape: w.shape, stride: c.stride, padding: c.pad)
            let (dwr, dbr) = try Conv2D.referenceWeightGradient(outputGradient: dy, input: x, weightShape: w.shape, stride: c.stride, padding: c.pad)
            let d = (y.maxAbsDifference(yr), dx.maxAbsDifference(dxr), dw!.maxAbsDifference(dwr), db!.maxAbsDifference(dbr))
            print("conv case \(i) \(x.shape) w\(w.shape) s\(c.stride) p\(c.pad): max diff fwd \(d.0) dx \(d.1) dw \(d.2) db \(d.3)")
            XCTAssertLessThan(d.0, 1e-4, "forward case \(i)")
            XCTAssertLessThan(d.1, 1e-4, "input gradient case \(i)")
            XCTAssertLessThan(d.2, 2e-4 * Float(c.n * y.shape[2] * y.shape[3]).squareRoot(), "weight gradient case \(i)")
            XCTAssertLessThan(d.3, 1e-3, "bias gradient case \(i)")
            worst = (max(worst.fwd, d.0), max(worst.dx, d.1), max(worst.dw, d.2), max(worst.db, d.3))
        }
        print("conv fast vs reference, worst: fwd \(worst.fwd) dx \(worst.dx) dw \(worst.dw) db \(worst.db)")
    }

    func testThreadCountIndependence() throws {
        var rng = SeededRNG(seed: 5)
        for c in [Self.cases[3], Self.cases[4], Self.cases[9], Self.cases[10], Self.cases[11],
                  Self.cases[17], Self.cases[21], Self.cases[22], Self.cases[23], Self.cases[24],
                  Self.cases[25], Self.cases[26], Self.cases[27], Self.cases[28], Self.cases[29], Self.cases[30],
                  Self.cases[31], Self.cases[32], Self.cases[33], Self.cases[34], Self.cases[35], Self.cases[36],
                  Self.cases[37], Self.cases[38]] {
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let b = rng.uniformTensor([c.cout], bound: 0.5)
            func run() throws -> [Tensor] {
                let y = try Conv2D.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.pad)
                let dx = try Conv2D.inputGradient(outputGradient: y, weight: w, inputShape: x.shape, stride: c.stride, padding: c.pad)
                let g = try Conv2D.weightGradient(outputGradient: y, input: x, weightShape: w.shape, stride: c.stride, padding: c.pad)
                return [y, dx, g.weight!, g.bias!]
            }
            let one = try Parallel.$threadCount.withValue(1) { try run() }
            for threads in [2, 3] {
                let many = try Parallel.$threadCount.withValue(threads) { try run() }
                for (a, b) in zip(one, many) { XCTAssertEqual(a.scalars, b.scalars, "1 vs \(threads) threads, shape \(a.shape)") }
            }
        }
    }

    /// The bias gradient sums eight channels at once; each channel's sum must keep the plain loop's
    /// order (image by image, pixel by pixel), bit for bit, with a tail of channels past the groups.
    func testBiasGradientMatchesSequentialSum() {
        var rng = SeededRNG(seed: 17)
        for (batch, channels, pixels) in [(3, 13, 50), (2, 16, 1024), (1, 5, 7)] {
            let dy = rng.uniformTensor([batch, channels, pixels], bound: 1)
            var db = [Float](repeating: .nan, count: channels)
            dy.withUnsafeBufferPointer { p in
                db.withUnsafeMutableBufferPointer {
                    Conv2D.biasGradient(dy: p.baseAddress!, batch: batch, channels: channels, pixels: pixels, db: $0.baseAddress!)
                }
            }
            var plain = [Float](repeating: 0, count: channels)
            for c in 0..<channels {
                for n in 0..<batch { for j in 0..<pixels { plain[c] += dy.scalars[(n * channels + c) * pixels + j] } }
            }
            XCTAssertEqual(db, plain, "bias gradient, batch \(batch), \(channels) channels, \(pixels) pixels")
        }
    }

    /// The pixel-window path computes exactly what the column-matrix path (im2col + GEMM's
    /// transposed product) computes, bit for bit, with a bias (accumulating) and any thread count.
    func testPixelWindowMatchesColumnMatrixBitForBit() throws {
        var covered = 0
        for (i, c) in Self.cases.enumerated() {
            let g = try Conv2D.geometry(input: [c.n, c.cin, c.h, c.w], weight: weightShape(c), bias: [c.cout],
                                        stride: c.stride, padding: c.pad)
            guard ConvPlan.forward(g) == .pixelWindow else { continue }
            covered += 1
            var rng = SeededRNG(seed: UInt64(500 + i))
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let b = rng.uniformTensor([c.cout], bound: 0.5)
            var column = [Float](repeating: .nan, count: c.n * c.cout * g.outPixels)
            x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in column.withUnsafeMutableBufferPointer { yp in
                Conv2D.forwardColumnMatrix(x: xp.baseAddress!, batch: c.n, weight: wp.baseAddress!, bias: b.scalars, g, y: yp.baseAddress!)
            } } }
            let reference = try Conv2D.referenceForward(input: x, weight: w, bias: b, stride: c.stride, padding: c.pad)
            for threads in [1, 2, 3] {
                let y = try Parallel.$threadCount.withValue(threads) {
                    try Conv2D.forward(input: x, weight: w, bias: b, stride: c.stride, padding: c.pad)
                }
                XCTAssertEqual(y.scalars, column, "case \(i), \(threads) threads: pixel window vs column matrix")
                if threads == 1 {
                    print("pixel window case \(i) x\(x.shape) w\(w.shape) s\(c.stride): max diff vs column matrix \(zip(y.scalars, column).map { abs($0 - $1) }.max()!), vs reference \(y.maxAbsDifference(reference))")
                }
            }
        }
        // Narrower tiles pad small maps less, so fewer cases take the transposed product (14x14
        // maps keep the column matrix with 16-wide tiles); stride-1 3x3 maps from 8x8 up with 16
        // channels or more are Winograd's.
        let expected = [32: 6, 16: 5, 8: 3][GEMM.nr]!
        print("pixel-window cases covered: \(covered) with \(GEMM.nr)-wide tiles")
        XCTAssertGreaterThanOrEqual(covered, expected, "pixel-window cases")
    }

    // MARK: Batched weight gradient

    /// The batched weight gradient (one GEMM over the batch, channel-last packing) against the naive
    /// Float loop and the per-image im2col path, over every conv case plus shapes that exercise both
    /// orientations, several rounds of channel-last copies and C4GAP's layer shape.
    func testBatchedWeightGradientMatchesNaive() throws {
        var cases = Self.cases
        cases.append(Case(n: 9, cin: 64, h: 36, w: 36, cout: 32, k: 3, stride: 1, pad: 1, kw: nil))   // 2 rounds
        cases.append(Case(n: 4, cin: 128, h: 32, w: 32, cout: 128, k: 3, stride: 1, pad: 1, kw: nil)) // C4GAP-128 layer, 2 rounds
        cases.append(Case(n: 3, cin: 3, h: 32, w: 32, cout: 128, k: 3, stride: 1, pad: 1, kw: nil))   // C4GAP first layer
        var worst: Float = 0
        cases.append(Case(n: 2, cin: 64, h: 15, w: 14, cout: 64, k: 3, stride: 2, pad: 1, kw: nil))   // X in place, stride 2
        cases.append(Case(n: 3, cin: 32, h: 9, w: 9, cout: 130, k: 3, stride: 1, pad: 0, kw: nil))   // X in place, K' > KC, D > 1 MC
        var orientations = Set<String>()
        for (i, c) in cases.enumerated() {
            var rng = SeededRNG(seed: UInt64(300 + i))
            let g = try Conv2D.geometry(input: [c.n, c.cin, c.h, c.w], weight: weightShape(c), bias: nil, stride: c.stride, padding: c.pad)
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let dy = rng.uniformTensor([c.n, c.cout, g.outHeight, g.outWidth], bound: 1)
            var fast = Tensor(zeros: weightShape(c)), naive = fast, perImage = fast
            x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in
                fast.withUnsafeMutableBufferPointer { Conv2D.weightGradientBatched(dy: dp.baseAddress!, x: xp.baseAddress!, batch: c.n, g, dw: $0.baseAddress!) }
                naive.withUnsafeMutableBufferPointer { Conv2D.naiveWeightGradient(dy: dp.baseAddress!, x: xp.baseAddress!, batch: c.n, g, dw: $0.baseAddress!) }
                perImage.withUnsafeMutableBufferPointer { Conv2D.weightGradientPerImage(dy: dp.baseAddress!, x: xp.baseAddress!, batch: c.n, g, dw: $0.baseAddress!) }
            } }
            let depth = Float(c.n * g.outPixels)
            let d = fast.maxAbsDifference(naive), e = fast.maxAbsDifference(perImage)
            let path = ConvPlan.weightGradient(g).rawValue
            orientations.insert(path)
            print("batched dw case \(i) x\(x.shape) w\(weightShape(c)) s\(c.stride) p\(c.pad) \(path) rounds \((c.n + Conv2D.weightGradientRoundImages(g, batch: c.n) - 1) / Conv2D.weightGradientRoundImages(g, batch: c.n)): max diff vs naive \(d), vs per-image GEMM \(e) (bit-identical expected)")
            XCTAssertLessThan(d, 2e-6 * depth.squareRoot() * 10, "batched vs naive, case \(i)")
            XCTAssertEqual(fast.scalars, perImage.scalars, "batched vs per-image, bit for bit, case \(i)")
            worst = max(worst, d)
        }
        XCTAssertEqual(orientations, Set(ConvPlan.WeightGradient.allCases.map(\.rawValue)), "every operand layout exercised")
        print("batched weight gradient vs naive, worst max diff \(worst)")
    }

    func testBatchedWeightGradientThreadCountIndependence() throws {
        var rng = SeededRNG(seed: 9)
        for c in [Case(n: 9, cin: 64, h: 36, w: 36, cout: 32, k: 3, stride: 1, pad: 1, kw: nil),
                  Case(n: 4, cin: 128, h: 16, w: 16, cout: 128, k: 3, stride: 1, pad: 1, kw: nil),
                  Self.cases[5], Self.cases[8]] {
            let g = try Conv2D.geometry(input: [c.n, c.cin, c.h, c.w], weight: weightShape(c), bias: nil, stride: c.stride, padding: c.pad)
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let dy = rng.uniformTensor([c.n, c.cout, g.outHeight, g.outWidth], bound: 1)
            func run() -> [Float] {
                var dw = Tensor(zeros: weightShape(c))
                x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { dp in
                    dw.withUnsafeMutableBufferPointer { Conv2D.weightGradientBatched(dy: dp.baseAddress!, x: xp.baseAddress!, batch: c.n, g, dw: $0.baseAddress!) }
                } }
                return dw.scalars
            }
            let one = Parallel.$threadCount.withValue(1) { run() }
            for t in [2, 3, 5] {
                XCTAssertEqual(one, Parallel.$threadCount.withValue(t) { run() }, "batched dw, 1 vs \(t) threads, \(weightShape(c))")
            }
        }
    }

    // MARK: Finite differences through the tape

    /// Central differences of L = sum(seed * f(inputs)) (Double sum) vs the tape's pullback.
    /// Element-wise: |numeric - pullback| <= tol.absolute + tol.relative * |numeric|, all finite.
    func checkGradients(tol: Tolerance, inputs: [Tensor], eps: Float = 0.05, seedValue: UInt64 = 3,
                        f: (Tape, [Variable]) throws -> Variable) throws {
        let tape = Tape()
        let vars = inputs.map { tape.input($0, requiresGrad: true) }
        let out = try f(tape, vars)
        var rng = SeededRNG(seed: seedValue)
        let seed = rng.uniformTensor(tape.shape(out), bound: 1)
        let grads = try tape.backward(from: out, seed: seed)
        func loss(_ xs: [Tensor]) throws -> Double {
            let t = Tape(recording: false)
            let y = t.value(try f(t, xs.map { t.input($0) }))
            var s = 0.0
            for i in 0..<y.count { s += Double(y.scalars[i]) * Double(seed.scalars[i]) }
            return s
        }
        for (idx, v) in vars.enumerated() {
            let g = try XCTUnwrap(grads[v], "no gradient for input \(idx)")
            XCTAssertEqual(g.shape, inputs[idx].shape)
            var d = Discrepancy(tolerance: tol)
            for e in 0..<inputs[idx].count {
                var plus = inputs, minus = inputs
                plus[idx].scalars[e] += eps; minus[idx].scalars[e] -= eps
                let num = (try loss(plus) - loss(minus)) / (2 * Double(eps))
                d.add(actual: Double(g.scalars[e]), expected: num)
            }
            print("finite differences input \(idx) \(inputs[idx].shape): \(d)")
            XCTAssertTrue(d.holds, "input \(idx): \(d)")
        }
    }

    func testConv2dPullbackFiniteDifferences() throws {
        // 0.1% of the gradient, floor 1e-5: the loss is linear in each input, so only the Float32
        // rounding of the loss remains (measured worst: 6% of this band).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        for (n, cin, h, w, cout, k, s, p) in [(2, 3, 7, 6, 4, 3, 2, 1), (1, 2, 6, 5, 3, 3, 1, 1), (2, 3, 5, 5, 2, 1, 2, 0)] {
            var rng = SeededRNG(seed: UInt64(n * 100 + k * 10 + s))
            try checkGradients(tol: fd, inputs: [rng.uniformTensor([n, cin, h, w], bound: 1),
                                        rng.uniformTensor([cout, cin, k, k], bound: 0.5),
                                        rng.uniformTensor([cout], bound: 0.5)]) { t, v in
                try t.conv2d(v[0], weight: v[1], bias: v[2], stride: s, padding: p)
            }
        }
    }

    func testLinearPullbackFiniteDifferences() throws {
        // 0.1% of the gradient, floor 1e-5: the loss is linear in each input, so only the Float32
        // rounding of the loss remains (measured worst: 6% of this band).
        let fd = Tolerance(relative: 1e-3, absolute: 1e-5)
        var rng = SeededRNG(seed: 11)
        try checkGradients(tol: fd, inputs: [rng.uniformTensor([3, 7], bound: 1), rng.uniformTensor([5, 7], bound: 0.5),
                                    rng.uniformTensor([5], bound: 0.5)]) { t, v in
            try t.linear(v[0], weight: v[1], bias: v[2])
        }
    }

    func testLinearMatchesNaive() throws {
        var rng = SeededRNG(seed: 12)
        let x = rng.uniformTensor([4, 45], bound: 1), w = rng.uniformTensor([37, 45], bound: 1), b = rng.uniformTensor([37], bound: 1)
        let tape = Tape(recording: false)
        let y = tape.value(try tape.linear(tape.input(x), weight: tape.input(w), bias: tape.input(b)))
        var d = Discrepancy(tolerance: Tolerance(absolute: 1e-4))
        for i in 0..<4 { for j in 0..<37 {
            var s = Double(b[j]); for p in 0..<45 { s += Double(x[i, p]) * Double(w[j, p]) }
            d.add(actual: Double(y[i, j]), expected: s)
        } }
        print("linear vs naive: \(d)")
        XCTAssertTrue(d.holds, "\(d)")
    }

    func testPullbackComputesOnlyNeededGradients() throws {
        var rng = SeededRNG(seed: 2)
        let tape = Tape()
        let x = tape.input(rng.uniformTensor([1, 2, 5, 5], bound: 1), requiresGrad: true)
        let w = tape.input(rng.uniformTensor([3, 2, 3, 3], bound: 1))          // constant
        let b = tape.input(rng.uniformTensor([3], bound: 1))
        let y = try tape.conv2d(x, weight: w, bias: b, padding: 1)
        let g = try tape.backward(from: y, seed: Tensor(shape: tape.shape(y), repeating: 1))
        XCTAssertNotNil(g[x])
        XCTAssertNil(g[w])
        XCTAssertNil(g[b])
    }

    // MARK: Errors

    func testShapeErrors() {
        let tape = Tape()
        let x = tape.input(Tensor(zeros: [1, 3, 8, 8]))
        let w = tape.input(Tensor(zeros: [16, 4, 3, 3]))
        XCTAssertThrowsError(try tape.conv2d(x, weight: w, bias: nil)) { e in
            XCTAssertEqual("\(e)", "conv2d: input [1, 3, 8, 8] has 3 channels but weight [16, 4, 3, 3] expects 4")
        }
        let w3 = tape.input(Tensor(zeros: [16, 3, 3, 3]))
        let badBias = tape.input(Tensor(zeros: [15]))
        XCTAssertThrowsError(try tape.conv2d(x, weight: w3, bias: badBias)) { e in
            XCTAssertEqual("\(e)", "conv2d: bias [15] must be [16] for weight [16, 3, 3, 3]")
        }
        XCTAssertThrowsError(try tape.conv2d(tape.input(Tensor(zeros: [3, 8, 8])), weight: w3, bias: nil)) { e in
            XCTAssertTrue("\(e)".contains("input [3, 8, 8] must be [N,Cin,H,W]"), "\(e)")
        }
        XCTAssertThrowsError(try tape.conv2d(tape.input(Tensor(zeros: [1, 3, 2, 2])), weight: w3, bias: nil)) { e in
            XCTAssertTrue("\(e)".contains("larger than the padded input [1, 3, 2, 2]"), "\(e)")
        }
        XCTAssertThrowsError(try tape.conv2d(x, weight: w3, bias: nil, stride: 0)) { e in
            XCTAssertTrue("\(e)".hasPrefix("conv2d: stride 0 must be >= 1"), "\(e)")
        }
        let lx = tape.input(Tensor(zeros: [2, 10])), lw = tape.input(Tensor(zeros: [4, 9]))
        XCTAssertThrowsError(try tape.linear(lx, weight: lw, bias: nil)) { e in
            XCTAssertEqual("\(e)", "linear: input [2, 10] has 10 features but weight [4, 9] expects 9")
        }
        XCTAssertThrowsError(try tape.linear(lx, weight: tape.input(Tensor(zeros: [4, 10])), bias: tape.input(Tensor(zeros: [3])))) { e in
            XCTAssertEqual("\(e)", "linear: bias [3] must be [4] for weight [4, 10]")
        }
        XCTAssertThrowsError(try Conv2D.inputGradient(outputGradient: Tensor(zeros: [1, 16, 7, 7]), weight: Tensor(zeros: [16, 3, 3, 3]),
                                                      inputShape: [1, 3, 8, 8], stride: 1, padding: 1)) { e in
            XCTAssertTrue("\(e)".hasPrefix("conv2d.inputGradient: shape mismatch"), "\(e)")
        }
    }

    // MARK: Packed weight cache

    /// Forward and input gradient (pointer API) with an optional cache.
    func convWithCache(_ x: Tensor, _ w: Tensor, _ dy: Tensor?, _ c: Case, cache: PackedWeightCache?) -> (y: [Float], dx: [Float]) {
        let g = ConvGeometry(inChannels: c.cin, height: c.h, width: c.w, outChannels: c.cout, kernelHeight: c.k,
                             kernelWidth: c.kw ?? c.k, strideH: c.stride, strideW: c.stride, padH: c.pad, padW: c.pad)
        var y = [Float](repeating: .nan, count: c.n * c.cout * g.outPixels)
        var dx = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                Conv2D.forward(x: xp.baseAddress!, batch: c.n, weight: w.scalars, bias: nil, g, y: yp.baseAddress!, cache: cache)
            }
        }
        (dy?.scalars ?? y).withUnsafeBufferPointer { dp in
            dx.withUnsafeMutableBufferPointer { xp in
                Conv2D.inputGradient(dy: dp.baseAddress!, batch: c.n, weight: w.scalars, g, dx: xp.baseAddress!, cache: cache)
            }
        }
        return (y, dx)
    }

    /// Cached panels hold exactly what the on-the-fly packers write: results are bit-identical,
    /// for every conv path (1x1, implicit im2col, column buffer, transposed product, flipped kernel,
    /// general col2im gradient) and any thread count, on the miss and on the hit.
    func testPackedWeightCacheIsBitIdentical() throws {
        let cache = PackedWeightCache()
        for (i, c) in Self.cases.enumerated() {
            var rng = SeededRNG(seed: UInt64(300 + i))
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            let w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let plain = convWithCache(x, w, nil, c, cache: nil)
            for threads in [1, 2, 3] {
                let hitsBefore = cache.hits
                let cached = Parallel.$threadCount.withValue(threads) { convWithCache(x, w, nil, c, cache: cache) }
                XCTAssertEqual(cached.y, plain.y, "forward case \(i), \(threads) threads")
                XCTAssertEqual(cached.dx, plain.dx, "input gradient case \(i), \(threads) threads")
                if threads > 1 { XCTAssertEqual(cache.hits, hitsBefore + 2, "case \(i): second use must hit") }
            }
        }
        print("packed weight cache: \(cache.count) entries, \(cache.byteCount) bytes, hits \(cache.hits), misses \(cache.misses)")
        XCTAssertEqual(cache.misses, 2 * Self.cases.count)
    }

    /// A weight tensor mutated in place (as an optimizer step could) must be re-packed, never served
    /// from the stale packing: the retained storage forces copy-on-write to a new buffer.
    func testPackedWeightCacheInvalidatedWhenWeightsChange() throws {
        let cache = PackedWeightCache()
        for c in [Self.cases[3], Self.cases[10], Self.cases[14]] {   // MR panels, NR panels (7x7), implicit im2col
            var rng = SeededRNG(seed: 77)
            let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
            var w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let before = convWithCache(x, w, nil, c, cache: cache)
            // In-place updates through both mutation routes.
            w.scalars[0] += 1
            w.withUnsafeMutableBufferPointer { p in for j in 0..<p.count where j % 7 == 3 { p[j] *= -0.5 } }
            let misses = cache.misses
            let after = convWithCache(x, w, nil, c, cache: cache)
            let fresh = convWithCache(x, w, nil, c, cache: nil)
            XCTAssertEqual(cache.misses, misses + 2, "mutated weights must miss the cache")
            XCTAssertEqual(after.y, fresh.y, "forward after an in-place weight update")
            XCTAssertEqual(after.dx, fresh.dx, "input gradient after an in-place weight update")
            XCTAssertNotEqual(after.y, before.y)
        }
        // Freshly allocated weights each time (a released buffer's address cannot be reused while
        // an entry retains it); a tiny capacity forces evictions along the way.
        let small = PackedWeightCache(capacityBytes: 1)
        let c = Self.cases[11]
        var rng = SeededRNG(seed: 78)
        let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
        for _ in 0..<4 {
            let w = rng.uniformTensor(weightShape(c), bound: 0.5)
            let cached = convWithCache(x, w, nil, c, cache: small)
            let fresh = convWithCache(x, w, nil, c, cache: nil)
            XCTAssertEqual(cached.y, fresh.y)
            XCTAssertEqual(cached.dx, fresh.dx)
            XCTAssertEqual(small.count, 1, "capacity 1 byte keeps only the newest entry")
        }
    }

    /// The tape op with a cache gives the same output and pullback as without, across tapes.
    func testTapeConvWithWeightCache() throws {
        let cache = PackedWeightCache()
        let c = Self.cases[10]
        var rng = SeededRNG(seed: 79)
        let x = rng.uniformTensor([c.n, c.cin, c.h, c.w], bound: 1)
        let w = rng.uniformTensor(weightShape(c), bound: 0.5), b = rng.uniformTensor([c.cout], bound: 0.5)
        func step(_ cache: PackedWeightCache?) throws -> (Tensor, Tensor) {
            let tape = Tape(recording: true, weightCache: cache)
            let xv = tape.input(x, requiresGrad: true)
            let y = try tape.conv2d(xv, weight: tape.input(w), bias: tape.input(b), stride: c.stride, padding: c.pad)
            let grads = try tape.backward(from: y, seed: tape.value(y))
            return (tape.value(y), try XCTUnwrap(grads[xv]))
        }
        let plain = try step(nil)
        for _ in 0..<2 {
            let cached = try step(cache)
            XCTAssertEqual(cached.0.scalars, plain.0.scalars)
            XCTAssertEqual(cached.1.scalars, plain.1.scalars)
        }
        XCTAssertEqual(cache.misses, 2)   // forward + flipped-kernel panels, packed once
        XCTAssertEqual(cache.hits, 2)
    }
}
