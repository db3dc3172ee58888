// MARK: - Conv2D
//
// forward:         x [N,Cin,H,W], w [Cout,Cin,kh,kw], b [Cout] -> y [N,Cout,Hout,Wout]
// inputGradient:   dy [N,Cout,Hout,Wout], w                    -> dx [N,Cin,H,W]
// weightGradient:  dy, x                                       -> dw [Cout,Cin,kh,kw], db [Cout]
//
// Per image, with col = im2col(x) [K = Cin*kh*kw, Hout*Wout]:
//   y  = w[Cout,K] · col                 GEMM with B packed straight from the image (no col buffer);
//                                        1x1 stride 1 pad 0: B is x itself.
//   dx = col2im(w^T · dy)                stride 1 (pad <= k-1): instead a forward conv of dy with the
//                                        flipped, channel-transposed kernel and padding k-1-p (same
//                                        fast path, no col buffer); 1x1 stride 1: dx = w^T · dy.
//   dw = sum_n dy_n · col_n^T            ONE GEMM over the batch (depth N*Hout*Wout), operands packed
//                                        from channel-last copies (ConvWeightGradient.swift).
//   db = rowsum(dy)
// Which algorithm runs each of these for a geometry: ConvPlan.swift (one table, one place).
// Forward and input gradient run image by image: a batch of at least two images per worker is
// split over the workers by images (each image single-threaded), a smaller one runs every image with
// all workers (`forEachImage`). Either way each image's arithmetic is the same: deterministic.

/// 2-D convolution kernels (groups = 1), PyTorch semantics and layouts.
///
/// ```swift
/// let y = try Conv2D.forward(input: x, weight: w, bias: b, stride: 2, padding: 3)   // ResNet stem
/// let dx = try Conv2D.inputGradient(outputGradient: dy, weight: w, inputShape: x.shape, stride: 2, padding: 3)
/// ```
public enum Conv2D {

    // MARK: Validation

    /// Checks shapes and returns the per-image geometry. Errors name the op and both shapes.
    public static func geometry(op: String = "conv2d", input: [Int], weight: [Int], bias: [Int]?,
                                stride: Int, padding: Int) throws -> ConvGeometry {
        guard input.count == 4 else {
            throw EngineError(op: op, "input \(input) must be [N,Cin,H,W] (rank 4); weight is \(weight)")
        }
        guard weight.count == 4 else {
            throw EngineError(op: op, "weight \(weight) must be [Cout,Cin,kh,kw] (rank 4); input is \(input)")
        }
        guard stride >= 1, padding >= 0 else {
            throw EngineError(op: op, "stride \(stride) must be >= 1 and padding \(padding) >= 0 (input \(input), weight \(weight))")
        }
        guard input[1] == weight[1] else {
            throw EngineError(op: op, "input \(input) has \(input[1]) channels but weight \(weight) expects \(weight[1])")
        }
        guard weight.allSatisfy({ $0 > 0 }), input[0] >= 1 else {
            throw EngineError(op: op, "empty dimension in input \(input) or weight \(weight)")
        }
        guard input[2] + 2 * padding >= weight[2], input[3] + 2 * padding >= weight[3] else {
            throw EngineError(op: op, "kernel \(weight[2])x\(weight[3]) of weight \(weight) is larger than the padded input \(input) (padding \(padding))")
        }
        if let bias, bias != [weight[0]] {
            throw EngineError(op: op, "bias \(bias) must be [\(weight[0])] for weight \(weight)")
        }
        return ConvGeometry(inChannels: input[1], height: input[2], width: input[3], outChannels: weight[0],
                            kernelHeight: weight[2], kernelWidth: weight[3],
                            strideH: stride, strideW: stride, padH: padding, padW: padding)
    }

    // MARK: Forward

    public static func forward(input x: Tensor, weight w: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        let g = try geometry(input: x.shape, weight: w.shape, bias: bias?.shape, stride: stride, padding: padding)
        let n = x.shape[0]
        var y = Tensor(zeros: [n, g.outChannels, g.outHeight, g.outWidth])
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let bp = bias?.scalars
                    forward(x: xp.baseAddress!, batch: n, weight: wp.baseAddress!, bias: bp, g, y: yp.baseAddress!)
                }
            }
        }
        return y
    }

    /// Pointer-level forward; `y` is [batch, Cout, Hout, Wout] and is overwritten.
    public static func forward(x: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>, bias: [Float]?,
                               _ g: ConvGeometry, y: UnsafeMutablePointer<Float>) {
        if ConvPlan.forward(g) == .winograd {
            winogradForward(x: x, batch: batch, weight: weight, bias: bias, g, y: y, cache: nil, source: [])
            return
        }
        forward(x: x, batch: batch, a: MatrixPackA(base: weight, ld: g.k, transposed: false), bias: bias, g, y: y)
    }

    /// The `.winograd` forward: bias first, then the F(2x2, 3x3) convolution added to it.
    static func winogradForward(x: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>, bias: [Float]?,
                                _ g: ConvGeometry, y: UnsafeMutablePointer<Float>, cache: PackedWeightCache?, source: [Float]) {
        let np = g.outPixels
        if let bias {
            for img in 0..<batch { for co in 0..<g.outChannels {
                (y + (img * g.outChannels + co) * np).update(repeating: bias[co], count: np)
            } }
        }
        let kernel = WinogradConv.Kernels(weight: weight, flipped: false, cin: g.inChannels, cout: g.outChannels)
        WinogradConv.forward(x: x, batch: batch, kernels: kernel, g, y: y, accumulate: bias != nil,
                             cache: cache, source: source, layout: .winograd)
    }

    /// Forward with the weights' GEMM panels taken from (or added to) `cache`: constant weights are
    /// packed once across calls (PGA steps, pullbacks). Same result, bit for bit, as without.
    ///
    /// ```swift
    /// let cache = PackedWeightCache()
    /// Conv2D.forward(x: xp, batch: 1, weight: w.scalars, bias: nil, g, y: yp, cache: cache)
    /// ```
    public static func forward(x: UnsafePointer<Float>, batch: Int, weight: [Float], bias: [Float]?,
                               _ g: ConvGeometry, y: UnsafeMutablePointer<Float>, cache: PackedWeightCache?) {
        precondition(weight.count == g.outChannels * g.k, "Conv2D.forward: weight has \(weight.count) scalars, geometry needs \(g.outChannels * g.k)")
        weight.withUnsafeBufferPointer { wp in
            if ConvPlan.forward(g) == .winograd {
                winogradForward(x: x, batch: batch, weight: wp.baseAddress!, bias: bias, g, y: y, cache: cache, source: weight)
                return
            }
            let a = MatrixPackA(base: wp.baseAddress!, ld: g.k, transposed: false)
            if let p = prepacked(a, cache: cache, source: weight, g, layout: .forward, m: g.outChannels, k: g.k, n: g.outPixels,
                                convolving: g) {
                withExtendedLifetime(p.panels) { forward(x: x, batch: batch, a: p, bias: bias, g, y: y) }
            } else {
                forward(x: x, batch: batch, a: a, bias: bias, g, y: y)
            }
        }
    }

    /// The cached panels for `a` in the role GEMM will use it for (the transposed product of small
    /// maps wants NR panels), or nil without a cache.
    static func prepacked<PA: GEMMPackA>(_ a: PA, cache: PackedWeightCache?, source: [Float], _ g: ConvGeometry,
                                         layout: PackedWeightLayout, m: Int, k: Int, n: Int,
                                         convolving c: ConvGeometry? = nil) -> PrepackedA<PA>? {
        guard let cache else { return nil }
        let shape = [g.outChannels, g.inChannels, g.kernelHeight, g.kernelWidth]
        let asB = ConvPlan.weightsAsNRPanels(m: m, n: n, k: k, convolving: c)
        let panels = cache.panels(source: source, shape: shape, layout: layout, m: m, k: k, asB: asB, packer: a)
        return PrepackedA(fallback: a, panels: panels)
    }

    /// `columnMatrix`: every image through `convColumnMatrix` (the reference of the pixel-window path).
    static func forward<PA: GEMMPackA>(x: UnsafePointer<Float>, batch: Int, a: PA, bias: [Float]?,
                                       _ g: ConvGeometry, y: UnsafeMutablePointer<Float>, columnMatrix: Bool = false) {
        let np = g.outPixels
        forEachImage(batch) { img in
            let xi = x + img * g.inChannels * g.inPixels, yi = y + img * g.outChannels * np
            if let bias {
                for co in 0..<g.outChannels { (yi + co * np).update(repeating: bias[co], count: np) }
            }
            if columnMatrix { convColumnMatrix(a: a, x: xi, g, y: yi, accumulate: bias != nil) }
            else { convGEMM(a: a, x: xi, g, y: yi, accumulate: bias != nil) }
        }
    }

    /// y[M, Hout*Wout] (+)= A[M, K] · im2col(x) for one image, by the path `ConvPlan.forward` picks.
    static func convGEMM<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ g: ConvGeometry,
                                        y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let np = g.outPixels
        switch ConvPlan.forward(g) {
        case .pointwise:
            GEMM.run(m: g.outChannels, n: np, k: g.k, a: a, b: MatrixPackB(base: x, ld: np, transposed: false),
                     c: y, ldc: np, accumulate: accumulate)
        case .window:
            WindowConv.run(a: a, x: x, g, y: y, accumulate: accumulate)
        case .winograd:
            // Needs the 3x3 kernels themselves, not GEMM panels: routed by the batch-level entry
            // points (forward, inputGradient) to WinogradConv.
            preconditionFailure("Conv2D.convGEMM: a .winograd geometry must go through WinogradConv.forward")
        case .pixelWindow:
            PixelWindowConv.run(a: a, x: x, g, y: y, accumulate: accumulate)
        case .columnMatrix:
            convColumnMatrix(a: a, x: x, g, y: y, accumulate: accumulate)
        case .packedImage:
            GEMM.run(m: g.outChannels, n: np, k: g.k, a: a, b: Im2ColPackB(x: x, g: g),
                     c: y, ldc: np, accumulate: accumulate)
        }
    }

    // MARK: Batch partition

    /// Runs `body(img)` for every image of the batch. A batch with at least two images per worker
    /// is split over the workers by images, each image computed single-threaded: one 32x32 image
    /// is too little work to split well (C4GAP-128 forward scaled 1.5x from one to two cores split
    /// within images). Smaller batches (a pullback's single image) go image by image, every kernel
    /// using all workers. Same bits either way: no output element's arithmetic depends on the
    /// partition.
    ///
    /// ```swift
    /// Conv2D.forEachImage(32) { img in convGEMM(a: a, x: x + img * inStride, g, y: y + img * outStride, accumulate: false) }
    /// ```
    static func forEachImage(_ batch: Int, _ body: (Int) -> Void) {
        guard ConvPlan.splitsBatchByImages(batch) else {
            for img in 0..<batch { body(img) }
            return
        }
        Parallel.forEachChunk(count: batch) { images in
            // Safe: every image writes only its own slice of the output; kernels called inside
            // run on this worker alone.
            Parallel.$threadCount.withValue(1) {
                for img in images { body(img) }
            }
        }
    }

    /// Forward through the column-matrix path (`convColumnMatrix`) whatever the geometry, image by
    /// image: the reference the pixel-window path of small maps matches bit for bit (tests).
    public static func forwardColumnMatrix(x: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>, bias: [Float]?,
                                           _ g: ConvGeometry, y: UnsafeMutablePointer<Float>) {
        forward(x: x, batch: batch, a: MatrixPackA(base: weight, ld: g.k, transposed: false), bias: bias, g, y: y,
                columnMatrix: true)
    }

    /// y (+)= A · col(x) through an explicit column matrix and GEMM.run: the `columnMatrix` path,
    /// and the reference the pixel-window path must match bit for bit.
    static func convColumnMatrix<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ g: ConvGeometry,
                                                y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let np = g.outPixels
        let col = UnsafeMutablePointer<Float>.allocate(capacity: g.k * np)
        defer { col.deallocate() }
        Im2Col.im2col(x, g, into: col)
        GEMM.run(m: g.outChannels, n: np, k: g.k, a: a, b: MatrixPackB(base: col, ld: np, transposed: false),
                 c: y, ldc: np, accumulate: accumulate)
    }

    // MARK: Input gradient

    public static func inputGradient(outputGradient dy: Tensor, weight w: Tensor, inputShape: [Int],
                                     stride: Int = 1, padding: Int = 0) throws -> Tensor {
        let g = try geometry(op: "conv2d.inputGradient", input: inputShape, weight: w.shape, bias: nil,
                             stride: stride, padding: padding)
        let expected = [inputShape[0], g.outChannels, g.outHeight, g.outWidth]
        guard dy.shape == expected else {
            throw EngineError.shapeMismatch("conv2d.inputGradient", dy.shape, expected, expected: "output gradient of the conv output's shape")
        }
        var dx = Tensor(zeros: inputShape)
        dy.withUnsafeBufferPointer { dp in
            w.withUnsafeBufferPointer { wp in
                dx.withUnsafeMutableBufferPointer { xp in
                    inputGradient(dy: dp.baseAddress!, batch: inputShape[0], weight: wp.baseAddress!, g, dx: xp.baseAddress!)
                }
            }
        }
        return dx
    }

    /// Pointer-level input gradient; `dx` [batch, Cin, H, W] is overwritten.
    public static func inputGradient(dy: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>,
                                     _ g: ConvGeometry, dx: UnsafeMutablePointer<Float>) {
        inputGradient(dy: dy, batch: batch, weight: weight, g, dx: dx, cache: nil, source: [])
    }

    /// Input gradient with the weights' panels from `cache` (see `forward(...cache:)`).
    public static func inputGradient(dy: UnsafePointer<Float>, batch: Int, weight: [Float],
                                     _ g: ConvGeometry, dx: UnsafeMutablePointer<Float>, cache: PackedWeightCache?) {
        precondition(weight.count == g.outChannels * g.k, "Conv2D.inputGradient: weight has \(weight.count) scalars, geometry needs \(g.outChannels * g.k)")
        weight.withUnsafeBufferPointer { wp in
            inputGradient(dy: dy, batch: batch, weight: wp.baseAddress!, g, dx: dx, cache: cache, source: weight)
        }
    }

    static func inputGradient(dy: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>,
                              _ g: ConvGeometry, dx: UnsafeMutablePointer<Float>, cache: PackedWeightCache?, source: [Float]) {
        let np = g.outPixels, kh = g.kernelHeight, kw = g.kernelWidth
        let cin = g.inChannels, cout = g.outChannels
        let dyStride = cout * np, dxStride = cin * g.inPixels
        switch ConvPlan.inputGradient(g) {
        case .pointwise:
            // dx[Cin, HW] = w^T[Cin, Cout] · dy[Cout, HW]
            let a = MatrixPackA(base: weight, ld: cin, transposed: true)
            let p = prepacked(a, cache: cache, source: source, g, layout: .transposed, m: cin, k: cout, n: np)
            forEachImage(batch) { img in
                let b = MatrixPackB(base: dy + img * dyStride, ld: np, transposed: false)
                if let p {
                    withExtendedLifetime(p.panels) {
                        GEMM.run(m: cin, n: np, k: cout, a: p, b: b, c: dx + img * dxStride, ldc: np, accumulate: false)
                    }
                } else {
                    GEMM.run(m: cin, n: np, k: cout, a: a, b: b, c: dx + img * dxStride, ldc: np, accumulate: false)
                }
            }
        case .transposed:
            // Transposed conv as a forward conv: w'[ci, co, ky, kx] = w[co, ci, kh-1-ky, kw-1-kx],
            // padding k-1-p; output size (Hout + 2(k-1-p) - k + 1) = H.
            let t = ConvPlan.transposedGeometry(g)
            precondition(t.outHeight == g.height && t.outWidth == g.width)
            if ConvPlan.forward(t) == .winograd {
                let kernel = WinogradConv.Kernels(weight: weight, flipped: true, cin: t.inChannels, cout: t.outChannels)
                WinogradConv.forward(x: dy, batch: batch, kernels: kernel, t, y: dx, accumulate: false,
                                     cache: cache, source: source, layout: .winogradFlipped)
                return
            }
            // The flipped kernel is read straight from `weight` while packing (no copy: a fresh
            // buffer of ResNet's 9 MB layer-4 kernels cost more in page faults than the GEMM).
            let a = FlippedWeightPackA(weight: weight, cin: cin, cout: cout, area: kh * kw)
            let p = prepacked(a, cache: cache, source: source, g, layout: .flipped, m: cin, k: t.k, n: t.outPixels,
                                  convolving: t)
            forEachImage(batch) { img in
                if let p {
                    withExtendedLifetime(p.panels) {
                        convGEMM(a: p, x: dy + img * dyStride, t, y: dx + img * dxStride, accumulate: false)
                    }
                } else {
                    convGEMM(a: a, x: dy + img * dyStride, t, y: dx + img * dxStride, accumulate: false)
                }
            }
        case .columnMatrix:
            inputGradientColumnMatrix(dy: dy, batch: batch, weight: weight, g, dx: dx, cache: cache, source: source)
        }
    }

    /// The `columnMatrix` input gradient (strided convolutions): dcol[K, Hout*Wout] = w^T · dy per
    /// image, then col2im.
    static func inputGradientColumnMatrix(dy: UnsafePointer<Float>, batch: Int, weight: UnsafePointer<Float>,
                                          _ g: ConvGeometry, dx: UnsafeMutablePointer<Float>,
                                          cache: PackedWeightCache?, source: [Float]) {
        let np = g.outPixels, cout = g.outChannels
        let dyStride = cout * np, dxStride = g.inChannels * g.inPixels
        let a = MatrixPackA(base: weight, ld: g.k, transposed: true)
        let p = prepacked(a, cache: cache, source: source, g, layout: .transposed, m: g.k, k: cout, n: np)
        forEachImage(batch) { img in
            let dcol = UnsafeMutablePointer<Float>.allocate(capacity: g.k * np)
            defer { dcol.deallocate() }
            let b = MatrixPackB(base: dy + img * dyStride, ld: np, transposed: false)
            if let p {
                withExtendedLifetime(p.panels) {
                    GEMM.run(m: g.k, n: np, k: cout, a: p, b: b, c: dcol, ldc: np, accumulate: false)
                }
            } else {
                GEMM.run(m: g.k, n: np, k: cout, a: a, b: b, c: dcol, ldc: np, accumulate: false)
            }
            Im2Col.col2im(dcol, g, into: dx + img * dxStride)
        }
    }

    // MARK: Weight gradient

    /// dw [Cout,Cin,kh,kw] (nil unless `weight`) and db [Cout] (nil unless `bias`), summed over the batch.
    public static func weightGradient(outputGradient dy: Tensor, input x: Tensor, weightShape: [Int],
                                      stride: Int = 1, padding: Int = 0,
                                      weight needWeight: Bool = true, bias needBias: Bool = true) throws -> (weight: Tensor?, bias: Tensor?) {
        let g = try geometry(op: "conv2d.weightGradient", input: x.shape, weight: weightShape, bias: nil,
                             stride: stride, padding: padding)
        let expected = [x.shape[0], g.outChannels, g.outHeight, g.outWidth]
        guard dy.shape == expected else {
            throw EngineError.shapeMismatch("conv2d.weightGradient", dy.shape, expected, expected: "output gradient of the conv output's shape")
        }
        var dw: Tensor? = needWeight ? Tensor(zeros: weightShape) : nil
        var db: Tensor? = needBias ? Tensor(zeros: [g.outChannels]) : nil
        dy.withUnsafeBufferPointer { dp in
            x.withUnsafeBufferPointer { xp in
                if dw != nil {
                    dw!.withUnsafeMutableBufferPointer { wp in
                        weightGradient(dy: dp.baseAddress!, x: xp.baseAddress!, batch: x.shape[0], g, dw: wp.baseAddress!)
                    }
                }
                if db != nil {
                    db!.withUnsafeMutableBufferPointer { bp in
                        biasGradient(dy: dp.baseAddress!, batch: x.shape[0], channels: g.outChannels, pixels: g.outPixels, db: bp.baseAddress!)
                    }
                }
            }
        }
        return (dw, db)
    }

    /// dw[Cout, K] = sum over images of dy[Cout, HWout] · col^T (overwrites dw): one GEMM over the
    /// whole batch (ConvWeightGradient.swift).
    public static func weightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int,
                                      _ g: ConvGeometry, dw: UnsafeMutablePointer<Float>) {
        weightGradientBatched(dy: dy, x: x, batch: batch, g, dw: dw)
    }

    /// Image by image: im2col, then dw += dy_n · col^T (a GEMM per image). Not a ConvPlan path: a
    /// second reference for tests (the batched path must match it bit for bit) and benchmarks.
    public static func weightGradientPerImage(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int,
                                              _ g: ConvGeometry, dw: UnsafeMutablePointer<Float>) {
        let np = g.outPixels
        let col: UnsafeMutablePointer<Float>? = g.isPointwise ? nil : .allocate(capacity: g.k * np)
        defer { col?.deallocate() }
        for img in 0..<batch {
            let xi = x + img * g.inChannels * g.inPixels
            let src: UnsafePointer<Float>
            if let col { Im2Col.im2col(xi, g, into: col); src = UnsafePointer(col) } else { src = xi }
            GEMM.run(m: g.outChannels, n: g.k, k: np,
                     a: MatrixPackA(base: dy + img * g.outChannels * np, ld: np, transposed: false),
                     b: MatrixPackB(base: src, ld: np, transposed: true),
                     c: dw, ldc: g.k, accumulate: img > 0)
        }
    }

    /// db[c] = sum over images and pixels of dy[n, c, :] (overwrites db); fixed order per channel.
    public static func biasGradient(dy: UnsafePointer<Float>, batch: Int, channels: Int, pixels: Int,
                                    db: UnsafeMutablePointer<Float>) {
        // Eight channels at a time: eight independent scalar chains instead of one, each still
        // summed sequentially (image by image, pixel by pixel), so the bits stay those of the
        // plain loop (a 16-lane sum would change every training run); one chain was bound by the
        // add latency: 1.9 ms per C4GAP-128 layer at batch 32.
        let group = 8
        Parallel.forEachChunk(count: (channels + group - 1) / group) { groups in
            for gi in groups {
                // Safe: db[c] is written only by the worker owning c's group.
                let c0 = gi * group
                if c0 + group > channels {
                    for c in c0..<channels {
                        var s: Float = 0
                        for img in 0..<batch {
                            let p = dy + (img * channels + c) * pixels
                            for j in 0..<pixels { s += p[j] }
                        }
                        db[c] = s
                    }
                    continue
                }
                var s = SIMD8<Float>()
                for img in 0..<batch {
                    let p = dy + (img * channels + c0) * pixels
                    for j in 0..<pixels {
                        s += SIMD8(p[j], p[pixels + j], p[2 * pixels + j], p[3 * pixels + j],
                                   p[4 * pixels + j], p[5 * pixels + j], p[6 * pixels + j], p[7 * pixels + j])
                    }
                }
                for i in 0..<group { db[c0 + i] = s[i] }
            }
        }
    }

    // MARK: References (naive, Double accumulation)

    public static func referenceForward(input x: Tensor, weight w: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) throws -> Tensor {
        let g = try geometry(input: x.shape, weight: w.shape, bias: bias?.shape, stride: stride, padding: padding)
        let n = x.shape[0]
        var y = Tensor(zeros: [n, g.outChannels, g.outHeight, g.outWidth])
        for b in 0..<n { for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
            var s = Double(bias?.scalars[co] ?? 0)
            for ci in 0..<g.inChannels { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                s += Double(x[b, ci, iy, ix]) * Double(w[co, ci, ky, kx])
            } } }
            y[b, co, oy, ox] = Float(s)
        } } } }
        return y
    }

    public static func referenceInputGradient(outputGradient dy: Tensor, weight w: Tensor, inputShape: [Int],
                                              stride: Int = 1, padding: Int = 0) throws -> Tensor {
        let g = try geometry(input: inputShape, weight: w.shape, bias: nil, stride: stride, padding: padding)
        var acc = [Double](repeating: 0, count: inputShape.reduce(1, *))
        let (C, H, W) = (g.inChannels, g.height, g.width)
        for b in 0..<inputShape[0] { for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
            let d = Double(dy[b, co, oy, ox])
            for ci in 0..<C { for ky in 0..<g.kernelHeight { for kx in 0..<g.kernelWidth {
                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                guard iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                acc[((b * C + ci) * H + iy) * W + ix] += d * Double(w[co, ci, ky, kx])
            } } }
        } } } }
        return Tensor(shape: inputShape, scalars: acc.map { Float($0) })
    }

    public static func referenceWeightGradient(outputGradient dy: Tensor, input x: Tensor, weightShape: [Int],
                                               stride: Int = 1, padding: Int = 0) throws -> (weight: Tensor, bias: Tensor) {
        let g = try geometry(input: x.shape, weight: weightShape, bias: nil, stride: stride, padding: padding)
        var dw = [Double](repeating: 0, count: weightShape.reduce(1, *))
        var db = [Double](repeating: 0, count: g.outChannels)
        let (C, kh, kw) = (g.inChannels, g.kernelHeight, g.kernelWidth)
        for b in 0..<x.shape[0] { for co in 0..<g.outChannels { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
            let d = Double(dy[b, co, oy, ox])
            db[co] += d
            for ci in 0..<C { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * stride - padding + ky, ix = ox * stride - padding + kx
                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                dw[((co * C + ci) * kh + ky) * kw + kx] += d * Double(x[b, ci, iy, ix])
            } } }
        } } } }
        return (Tensor(shape: weightShape, scalars: dw.map { Float($0) }),
                Tensor(shape: [g.outChannels], scalars: db.map { Float($0) }))
    }
}

// MARK: Flipped kernel packer (stride-1 input gradient)

/// A'[ci, (co, ky, kx)] = w[co, ci, kh-1-ky, kw-1-kx]: the kernel of the transposed convolution,
/// read from w [Cout, Cin, kh, kw] (flipping ky and kx reverses each flattened kh*kw block).
struct FlippedWeightPackA: GEMMPackA {
    let weight: UnsafePointer<Float>
    let cin: Int, cout: Int, area: Int

    /// Walks depth k0..<k0+kc as segments of one output channel co: (co, first t, count, first p).
    /// Within a segment the kernel taps of consecutive input channels are adjacent in memory, so the
    /// copy loops below read `weight` almost sequentially (much faster than a strided gather).
    @inline(__always) func forEachSegment(k0: Int, kc: Int, _ body: (Int, Int, Int, Int) -> Void) {
        var p = 0
        while p < kc {
            let k = k0 + p, co = k / area, t0 = k % area
            let len = Swift.min(area - t0, kc - p)
            body(co, t0, len, p)
            p += len
        }
    }

    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int) {
        let mr = GEMM.mr
        for r0 in stride(from: 0, to: mc, by: mr) {
            let panel = dst + r0 * kc, rows = Swift.min(mr, mc - r0)
            forEachSegment(k0: k0, kc: kc) { co, t0, len, p0 in
                for r in 0..<mr {
                    if r >= rows { for q in 0..<len { panel[(p0 + q) * mr + r] = 0 }; continue }
                    let src = weight + (co * cin + i0 + r0 + r) * area + area - 1 - t0
                    for q in 0..<len { panel[(p0 + q) * mr + r] = src[-q] }
                }
            }
        }
    }

    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int) {
        let nr = GEMM.nr
        for c0 in stride(from: 0, to: nc, by: nr) {
            let panel = dst + c0 * kc, w = Swift.min(nr, nc - c0)
            forEachSegment(k0: k0, kc: kc) { co, t0, len, p0 in
                for c in 0..<w {
                    let src = weight + (co * cin + i0 + c0 + c) * area + area - 1 - t0
                    for q in 0..<len { panel[(p0 + q) * nr + c] = src[-q] }
                }
                for q in 0..<len { for c in w..<nr { panel[(p0 + q) * nr + c] = 0 } }
            }
        }
    }
}
