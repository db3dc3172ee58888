// MARK: - Pixel-window convolution: the transposed product of small maps, A read from the image
//
// Y^T[Hout*Wout, Cout] = col^T · W^T   (small maps: 14x14, 7x7; ConvPlan `pixelWindow`)
//
// With the zero-padded image xpad[Cin, Hp, Wp] (Hp = H + 2*padH, Wp = W + 2*padW),
//   col[(ci,ky,kx), (oy,ox)] = xpad[pixel[(oy,ox)] + offset[(ci,ky,kx)]],
//   pixel[(oy,ox)] = oy*sh*Wp + ox*sw,   offset[(ci,ky,kx)] = ci*Hp*Wp + ky*Wp + kx,
// so the A operand of the transposed product (col^T, pixels x K) needs no packing: the
// micro-kernel broadcasts its 7 values per k from `xpad + pixel[r] + offset[k]`. The B operand is
// the weights as NR panels, W^T, pre-packed (PackedWeightCache) or packed per worker. (A plain
// padded copy, not WindowConv's phase images: the stride only changes `pixel`, and the copy is
// row memcpys where the phases of a stride-2 conv are a strided gather.)
//
// Why not the column matrix: it is 1.8 MB for a 14x14 map with 256 channels, and the transposed
// product would pack its transpose into MR panels shared by the workers before the GEMM: three
// parallel phases and two passes over 1.8 MB, per image. Here: one parallel phase, in which each
// worker pads the image (a copy of its size) as it goes and computes its static share of
// NR-channel units.
//
// Determinism and bits: each C^T element is produced by one unit, with the micro-kernel FMA
// order of GEMM over the same KC blocks, into a scratch first holding C (when accumulating):
// `((C + blk0) + blk1) + ...`, exactly what GEMM.run computes on the column matrix. So the result
// is bit-identical to the column-matrix path (tested) and independent of the thread count.

/// The transposed product of small-map convolutions with A read from the image (see the header).
public enum PixelWindowConv {
    /// Pixel rows of the micro-kernel: 14x14 and 7x7 maps have 28*7 and 7*7 pixels.
    static let mr = 7

    /// y[Cout, Hout*Wout] (+)= A[Cout, K] · col(x) for one image; `a` yields the weights (its NR
    /// panels of A^T, pre-packed or packed here exactly as GEMM would).
    static func run<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ g: ConvGeometry,
                                   y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let mr = PixelWindowConv.mr, nr = GEMM.nr
        let np = g.outPixels, m = g.outChannels, k = g.k   // C^T is [np, m]
        let hp = g.height + 2 * g.padH, wp = g.width + 2 * g.padW
        // (Filled through a raw buffer: element-wise Array stores took ~13 us of a 1.3 ms layer-4 conv.)
        let offsets = [Int](unsafeUninitializedCapacity: k) { buffer, count in
            var t = 0
            for ci in 0..<g.inChannels {
                for ky in 0..<g.kernelHeight {
                    for kx in 0..<g.kernelWidth { buffer[t] = (ci * hp + ky) * wp + kx; t += 1 }
                }
            }
            count = k
        }
        // pixel[j] for each C^T row; the padding rows of a last panel repeat pixel 0 (computed into
        // scratch rows that are never stored).
        let rowsPadded = GEMM.roundUp(np, mr)
        var pixels = [Int](repeating: 0, count: rowsPadded)
        for j in 0..<np { pixels[j] = (j / g.outWidth) * g.strideH * wp + (j % g.outWidth) * g.strideW }

        pixels.withUnsafeBufferPointer { pixelBuffer in
            offsets.withUnsafeBufferPointer { offsetBuffer in
                let pixels = pixelBuffer.baseAddress!, offsets = offsetBuffer.baseAddress!
                let panelsN = (m + nr - 1) / nr, panelsM = rowsPadded / mr
                if GEMM.splitsByColumns(m: np, n: m) {
                    // Units of one NR panel of output channels (all pixels), a static share per
                    // worker. A unit's outputs do not depend on who computes it, so the bits stay
                    // those of one thread.
                    Parallel.forEachChunk(count: panelsN) { share in
                        var p = share.lowerBound
                        work(a: a, x: x, g, pixels: pixels, offsets: offsets, y: y, accumulate: accumulate,
                             maxUnit: (np, nr)) {
                            guard p < share.upperBound else { return nil }
                            defer { p += 1 }
                            return (0..<np, (p * nr)..<Swift.min(m, p * nr + nr))
                        }
                    }
                } else {
                    // Few output channels: static shares of 7-pixel panels (each worker packs
                    // all of B when it is not cached, so more units would repeat that).
                    Parallel.forEachChunk(count: panelsM) { share in
                        var unit: (Range<Int>, Range<Int>)? = ((share.lowerBound * mr)..<Swift.min(np, share.upperBound * mr), 0..<m)
                        work(a: a, x: x, g, pixels: pixels, offsets: offsets, y: y, accumulate: accumulate,
                             maxUnit: (share.count * mr, m)) {
                            defer { unit = nil }
                            return unit
                        }
                    }
                }
            }
        }
    }

    /// Channels `channels` of xpad[Cin, H + 2*padH, W + 2*padW] from x[Cin, H, W], zero borders.
    static func pad(_ x: UnsafePointer<Float>, _ g: ConvGeometry, channels: Range<Int>, into p: UnsafeMutablePointer<Float>) {
        let H = g.height, W = g.width, ph = g.padH, pw = g.padW
        let hp = H + 2 * ph, wp = W + 2 * pw
        for ci in channels {
            let plane = p + ci * hp * wp, src = x + ci * H * W
            plane.update(repeating: 0, count: ph * wp)
            for iy in 0..<H {
                let row = plane + (ph + iy) * wp
                row.update(repeating: 0, count: pw)
                (row + pw).update(from: src + iy * W, count: W)
                (row + pw + W).update(repeating: 0, count: pw)
            }
            (plane + (ph + H) * wp).update(repeating: 0, count: ph * wp)
        }
    }

    /// One worker: computes the units C^T[rows, cols] (pixels x output channels) that `next` hands
    /// out (at most `maxUnit` = (rows, cols) each) until it returns nil. Single-threaded.
    static func work<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ g: ConvGeometry,
                                    pixels: UnsafePointer<Int>, offsets: UnsafePointer<Int>,
                                    y: UnsafeMutablePointer<Float>, accumulate: Bool, maxUnit: (rows: Int, cols: Int),
                                    next: () -> (rows: Range<Int>, cols: Range<Int>)?) {
        let mr = PixelWindowConv.mr, nr = GEMM.nr, kc = GEMM.kc
        let k = g.k, ldy = g.outPixels, taps = g.kernelHeight * g.kernelWidth
        let ldS = GEMM.roundUp(maxUnit.cols, nr), rowsPadded = GEMM.roundUp(maxUnit.rows, mr)
        // Every worker pads its own copy of the image, channel by channel as its first unit's K
        // blocks reach them (hot in L1/L2 when read): duplicated work of the size of the image,
        // instead of a separate parallel phase whose fork/join costs more on these 1-2 ms convs.
        let planeCount = (g.height + 2 * g.padH) * (g.width + 2 * g.padW)
        let image = UnsafeMutablePointer<Float>.allocateAligned(g.inChannels * planeCount)
        var paddedChannels = 0
        // C^T accumulates over all K blocks in a row-major scratch (vector read-add-writes) and is
        // stored transposed into y once, as in GEMM.block.
        let scratch = UnsafeMutablePointer<Float>.allocateAligned(rowsPadded * ldS)
        let prepacked = a.prepackedTransposedAsB(k0: 0, kc: Swift.min(kc, k), i0: 0) != nil
        let bufCount = prepacked ? 1 : Swift.min(kc, k) * ldS
        let bufB = UnsafeMutablePointer<Float>.allocateAligned(bufCount)
        defer { image.deallocate(); scratch.deallocate(); bufB.deallocate() }

        while let (rows, cols) = next() {
            // Safe: the unit's C^T[rows, cols], i.e. y[cols, rows], belongs to this worker alone.
            if accumulate {
                for i in 0..<rows.count {
                    let srow = scratch + i * ldS, ycol = y + cols.lowerBound * ldy + rows.lowerBound + i
                    for j in 0..<cols.count { srow[j] = ycol[j * ldy] }
                }
            }
            for pc in stride(from: 0, to: k, by: kc) {
                let kcur = Swift.min(kc, k - pc)
                let bBlock: UnsafePointer<Float>
                if let p = a.prepackedTransposedAsB(k0: pc, kc: kcur, i0: cols.lowerBound) { bBlock = p } else {
                    a.packTransposedAsB(into: bufB, k0: pc, kc: kcur, i0: cols.lowerBound, nc: cols.count)
                    bBlock = UnsafePointer(bufB)
                }
                let lastChannel = (pc + kcur - 1) / taps
                if lastChannel >= paddedChannels {
                    pad(x, g, channels: paddedChannels..<(lastChannel + 1), into: image)
                    paddedChannels = lastChannel + 1
                }
                let acc = accumulate || pc > 0
                // One B micro-panel (KC x 32, L1/L2) against every 7-pixel panel; the pixels'
                // windows of this K block (~28 channels of the small padded image) stay in L1/L2.
                for jr in stride(from: 0, to: cols.count, by: nr) {
                    let bp = bBlock + jr * kcur
                    for ir in stride(from: 0, to: rows.count, by: mr) {
                        microKernel7Rows(kcur, UnsafePointer(image), pixels + rows.lowerBound + ir, offsets + pc, bp,
                                        scratch + ir * ldS + jr, ldS, acc)
                    }
                }
            }
            for i in 0..<rows.count {
                let srow = scratch + i * ldS, ycol = y + cols.lowerBound * ldy + rows.lowerBound + i
                for j in 0..<cols.count { ycol[j * ldy] = srow[j] }
            }
        }
    }
}
