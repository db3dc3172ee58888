// MARK: - Conv2D weight gradient: one GEMM over the whole batch
//
// weightGradientBatched: dy [N,Cout,Hout,Wout], x [N,Cin,H,W] -> dw [Cout,Cin,kh,kw]
//
//   dw[co, ci, ky, kx] = sum over depth d = (n, oy, ox) of dy[n, co, oy, ox] * x[n, ci, oy*sh-ph+ky, ox*sw-pw+kx]
//
// The per-image path (im2col, then one GEMM per image with depth Hout*Wout) materialised a column
// matrix 9x the image per image and re-packed it with a strided transpose: ~8% of a C4GAP training
// step. Here the whole batch is ONE GEMM with depth N*Hout*Wout, and both operands are packed from
// channel-last (NHWC) copies, where every GEMM panel row is a contiguous vector copy:
//   X operand, rows k' = (ky*kw + kx)*Cin + ci: X[k', d] = xP[n, oy*sh+ky, ox*sw+kx, ci]
//            (xP = x zero-padded by (ph, pw), channel-last; a (ky, kx) shift is a pointer offset);
//   D operand, rows co:                          D[co, d] = dyT[n, oy, ox, co].
// C = X · D^T (C^T[K', Cout]) or D · X^T (C[Cout, K']), accumulated in a zero-initialised padded
// scratch and scattered into dw [Cout, Cin, kh, kw] at the end. When Cin is a multiple of NR, D · X^T
// does not pack X at all: each of its NR panels reads NR contiguous channels of xP in place.
//
// The copies hold a few images at a time ("rounds", a count fixed by the shape) so they stay small.
// Determinism: workers own disjoint panels of C (a static split of X's panels); every C element is
// summed over depth in the same order (image by image, KC block by block from each image's first
// pixel, FMA order inside the micro-kernel), whatever the thread count — and in the same order as
// the per-image path, so results are bit-identical to it (training runs reproduce exactly).

extension Conv2D {
    /// Images per round of channel-last copies: about 4 MB of copies, at least one image.
    public static func weightGradientRoundImages(_ g: ConvGeometry, batch: Int) -> Int {
        let perImage = (g.height + 2 * g.padH) * (g.width + 2 * g.padW) * g.inChannels + g.outPixels * g.outChannels
        return Swift.max(1, Swift.min(batch, (1 << 20) / Swift.max(perImage, 1)))
    }

    /// dw[Cout, Cin*kh*kw] = sum over the batch of dy · im2col(x)^T as one GEMM (overwrites dw).
    ///
    /// ```swift
    /// Conv2D.weightGradientBatched(dy: dyp, x: xp, batch: 32, g, dw: dwp)
    /// ```
    public static func weightGradientBatched(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int,
                                             _ g: ConvGeometry, dw: UnsafeMutablePointer<Float>) {
        let mr = GEMM.mr, nr = GEMM.nr, kc = GEMM.kc
        let cin = g.inChannels, cout = g.outChannels, kh = g.kernelHeight, kw = g.kernelWidth
        let H = g.height, W = g.width, hp = H + 2 * g.padH, wp = W + 2 * g.padW
        let hout = g.outHeight, wout = g.outWidth, np = g.outPixels
        let kRows = g.k   // K' = kh*kw*Cin
        // ConvPlan.weightGradient: X in place (`xInPlace`: with Cin a multiple of NR every NR panel
        // of X lies inside one (ky, kx) segment, so its row at depth d is NR contiguous floats of
        // xP, a "window" the window micro-kernel loads in place), or packed as A or as B.
        let plan = ConvPlan.weightGradient(g)
        let xIsA = plan == .xIsA, xWindows = plan == .xInPlace
        let xWidth = xIsA ? mr : nr, dWidth = xIsA ? nr : mr
        let xPanels = (kRows + xWidth - 1) / xWidth, dPanels = (cout + dWidth - 1) / dWidth
        // Padded accumulator: rows x cols of whole micro-tiles.
        let cRows = xIsA ? xPanels * mr : dPanels * mr
        let cCols = xIsA ? dPanels * nr : xPanels * nr
        let acc = UnsafeMutablePointer<Float>.allocate(capacity: cRows * cCols)
        acc.initialize(repeating: 0, count: cRows * cCols)
        defer { acc.deallocate() }

        let roundImages = weightGradientRoundImages(g, batch: batch)
        let xImage = hp * wp * cin, dImage = np * cout
        // Zeroed once: the padding border is never written afterwards.
        let xP = UnsafeMutablePointer<Float>.allocate(capacity: roundImages * xImage)
        xP.initialize(repeating: 0, count: roundImages * xImage)
        let dyT = UnsafeMutablePointer<Float>.allocate(capacity: roundImages * dImage)
        defer { xP.deallocate(); dyT.deallocate() }

        // Segment offsets of X's rows: shift s = ky*kw + kx starts at (ky*wp + kx)*Cin.
        // In-place X reads xP channel-blocked instead, [n][Cin/NR][hp][wp][NR]: a panel's rows are
        // then consecutive NR-float runs (from plain channel-last rows Cin floats apart, a panel
        // used a quarter of L1's sets and ran slower than packing).
        let pixelStride = xWindows ? nr : cin, channelBlock = hp * wp * nr
        var shiftOffsets = [Int](repeating: 0, count: kh * kw)
        for ky in 0..<kh { for kx in 0..<kw { shiftOffsets[ky * kw + kx] = (ky * wp + kx) * pixelStride } }

        for n0 in stride(from: 0, to: batch, by: roundImages) {
            let images = Swift.min(roundImages, batch - n0)
            // 1. Channel-last copies of this round's images, 16 channels per task: each task
            //    streams 16 planes and writes whole 64-byte channel groups (16x16 register
            //    transposes; a row-at-a-time scatter over all channels measured 2x slower).
            // (In place, a task must not cross a channel block of NR: 8 channels with 8-wide tiles.)
            let xGroup = xWindows ? Swift.min(16, nr) : 16
            let xBlocks = (cin + xGroup - 1) / xGroup, dBlocks = (cout + 15) / 16
            let xTasks = images * xBlocks, tasks = xTasks + images * dBlocks
            Parallel.forEachChunk(count: tasks) { r in
                for t in r {
                    // Safe: task t writes only its own 16 channels of one image of xP (or of dyT).
                    if t < xTasks {
                        let n = t / xBlocks, c0 = (t % xBlocks) * xGroup
                        channelsLast(x + ((n0 + n) * cin + c0) * H * W, planeStride: H * W, channels: Swift.min(xGroup, cin - c0),
                                     height: H, width: W,
                                     into: xP + n * xImage + (xWindows ? (c0 / nr) * channelBlock + c0 % nr : c0)
                                         + (g.padH * wp + g.padW) * pixelStride,
                                     rowStride: wp * pixelStride, pixelStride: pixelStride)
                    } else {
                        let n = (t - xTasks) / dBlocks, c0 = ((t - xTasks) % dBlocks) * 16
                        channelsLast(dy + ((n0 + n) * cout + c0) * np, planeStride: np, channels: Swift.min(16, cout - c0),
                                     height: 1, width: np, into: dyT + n * dImage + c0, rowStride: 0, pixelStride: cout)
                    }
                }
            }
            // 2. acc += X · D^T over this round's depth, split over X's panels.
            let xOp = ChannelLastOperand(base: UnsafePointer(xP), segmentLength: cin, segmentOffsets: shiftOffsets)
            let dOp = ChannelLastOperand(base: UnsafePointer(dyT), segmentLength: cout, segmentOffsets: [0])
            let blockStarts = (0..<images).flatMap { i in stride(from: 0, to: np, by: kc).map { i * np + $0 } }
            Parallel.forEachChunk(count: xPanels) { xr in
                let xBlockPanels = xIsA ? GEMM.mc / mr : 8
                let bufX = UnsafeMutablePointer<Float>.allocateAligned(Swift.min(xr.count, xBlockPanels) * xWidth * kc)
                let bufD = UnsafeMutablePointer<Float>.allocateAligned(dPanels * dWidth * kc)
                let tile = UnsafeMutablePointer<Float>.allocateAligned(mr * nr)
                let xOff = UnsafeMutablePointer<Int>.allocate(capacity: kc)
                let dOff = UnsafeMutablePointer<Int>.allocate(capacity: kc)
                defer { bufX.deallocate(); bufD.deallocate(); tile.deallocate(); xOff.deallocate(); dOff.deallocate() }
                // Depth blocks start at every image (KC blocks within an image, from its first
                // pixel): the same per-element sums, bit for bit, as one GEMM per image.
                for d0 in blockStarts {
                    let kcur = Swift.min(kc, np - d0 % np)
                    // Depth offsets: d -> (image, oy, ox) -> element offset of pixel (oy*sh, ox*sw).
                    var n = d0 / np, j = d0 % np
                    var oy = j / wout, ox = j % wout
                    for p in 0..<kcur {
                        xOff[p] = n * xImage + (oy * g.strideH * wp + ox * g.strideW) * pixelStride
                        dOff[p] = (d0 + p) * cout
                        ox += 1
                        if ox == wout { ox = 0; oy += 1; if oy == hout { oy = 0; n += 1 } }
                    }
                    for q in 0..<dPanels {
                        dOp.pack(into: bufD + q * dWidth * kcur, width: dWidth, row0: q * dWidth, rows: cout,
                                 depthOffsets: dOff, kc: kcur)
                    }
                    if xWindows {
                        // X panel jr, rows k' = jr*NR ..< +NR: channel block (jr*NR mod Cin)/NR of
                        // shift s, read in place at xP + xOff[p] + shiftOffsets[s] + block offset.
                        for jr in xr {
                            let s = jr * nr / cin, block = (jr * nr - s * cin) / nr
                            let b = UnsafePointer(xP) + shiftOffsets[s] + block * channelBlock
                            for ir in 0..<dPanels {
                                // Safe: this worker owns X panels xr, i.e. these columns of acc.
                                // D's last panel may hold fewer than MR channels (128 = 21*6 + 2):
                                // only its live rows are computed (padding rows are never read).
                                WindowConv.microKernelWindows(kcur, bufD + ir * mr * kcur, b, UnsafePointer(xOff),
                                                              acc + ir * mr * cCols + jr * nr, cCols, true,
                                                              rows: Swift.min(mr, cout - ir * mr), tile: tile)
                            }
                        }
                        continue
                    }
                    for xb in stride(from: xr.lowerBound, to: xr.upperBound, by: xBlockPanels) {
                        let xCount = Swift.min(xBlockPanels, xr.upperBound - xb)
                        // Panel by panel (a depth-outer loop over all panels measured no faster: its
                        // stores, 6 KB apart, collide in two L1 sets).
                        for q in 0..<xCount {
                            xOp.pack(into: bufX + q * xWidth * kcur, width: xWidth, row0: (xb + q) * xWidth, rows: kRows,
                                     depthOffsets: xOff, kc: kcur)
                        }
                        // Safe: this worker owns X panels xr, i.e. these rows (xIsA) or columns of acc.
                        if xIsA {
                            for jr in 0..<dPanels {
                                let bp = UnsafePointer(bufD + jr * nr * kcur)
                                for ir in 0..<xCount {
                                    GEMM.microKernel(kcur, bufX + ir * mr * kcur, bp,
                                                         acc + (xb + ir) * mr * cCols + jr * nr, cCols, true)
                                }
                            }
                        } else {
                            for jr in 0..<xCount {
                                let bp = UnsafePointer(bufX + jr * nr * kcur)
                                for ir in 0..<dPanels {
                                    GEMM.microKernel(kcur, bufD + ir * mr * kcur, bp,
                                                         acc + ir * mr * cCols + (xb + jr) * nr, cCols, true)
                                }
                            }
                        }
                    }
                }
            }
        }
        // 3. dw[co, ci, ky, kx] = C[(ky*kw + kx)*Cin + ci, co] (or its transpose).
        let area = kh * kw
        Parallel.forEachChunk(count: cout) { cos in
            for co in cos {
                // Safe: row co of dw is written only by the worker owning co.
                for ci in 0..<cin {
                    for s in 0..<area {
                        let k = s * cin + ci
                        dw[(co * cin + ci) * area + s] = xIsA ? acc[k * cCols + co] : acc[co * cCols + k]
                    }
                }
            }
        }
    }

    /// Channel-last copy of up to 16 planes: dst[y*rowStride + x*pixelStride + r] = src[r*planeStride + y*width + x].
    @inline(__always)
    static func channelsLast(_ src: UnsafePointer<Float>, planeStride: Int, channels: Int, height: Int, width: Int,
                             into dst: UnsafeMutablePointer<Float>, rowStride: Int, pixelStride: Int) {
        for y in 0..<height {
            let s = src + y * width, d = dst + y * rowStride
            var x0 = 0
            if channels == 16 {
                while x0 + 16 <= width { transpose16x16(s + x0, planeStride, d + x0 * pixelStride, pixelStride); x0 += 16 }
            }
            for r in 0..<channels { for x in x0..<width { d[x * pixelStride + r] = s[r * planeStride + x] } }
        }
    }

    /// dst[c * ld + r] = src[r * ls + c] for a 16 x 16 block, in registers: four rounds of
    /// perfect shuffles (row i with row i + 8) transpose it (64 two-source shuffles, 16 loads, 16 stores).
    @inline(__always)
    static func transpose16x16(_ src: UnsafePointer<Float>, _ ls: Int, _ dst: UnsafeMutablePointer<Float>, _ ld: Int) {
        typealias V = SIMD16<Float>
        @inline(__always) func lo(_ a: V, _ b: V) -> V {
            V(a[0], b[0], a[1], b[1], a[2], b[2], a[3], b[3], a[4], b[4], a[5], b[5], a[6], b[6], a[7], b[7])
        }
        @inline(__always) func hi(_ a: V, _ b: V) -> V {
            V(a[8], b[8], a[9], b[9], a[10], b[10], a[11], b[11], a[12], b[12], a[13], b[13], a[14], b[14], a[15], b[15])
        }
        let s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
        let a0 = s.loadUnaligned(fromByteOffset: 0 * ls * 4, as: V.self)
        let a1 = s.loadUnaligned(fromByteOffset: 1 * ls * 4, as: V.self)
        let a2 = s.loadUnaligned(fromByteOffset: 2 * ls * 4, as: V.self)
        let a3 = s.loadUnaligned(fromByteOffset: 3 * ls * 4, as: V.self)
        let a4 = s.loadUnaligned(fromByteOffset: 4 * ls * 4, as: V.self)
        let a5 = s.loadUnaligned(fromByteOffset: 5 * ls * 4, as: V.self)
        let a6 = s.loadUnaligned(fromByteOffset: 6 * ls * 4, as: V.self)
        let a7 = s.loadUnaligned(fromByteOffset: 7 * ls * 4, as: V.self)
        let a8 = s.loadUnaligned(fromByteOffset: 8 * ls * 4, as: V.self)
        let a9 = s.loadUnaligned(fromByteOffset: 9 * ls * 4, as: V.self)
        let a10 = s.loadUnaligned(fromByteOffset: 10 * ls * 4, as: V.self)
        let a11 = s.loadUnaligned(fromByteOffset: 11 * ls * 4, as: V.self)
        let a12 = s.loadUnaligned(fromByteOffset: 12 * ls * 4, as: V.self)
        let a13 = s.loadUnaligned(fromByteOffset: 13 * ls * 4, as: V.self)
        let a14 = s.loadUnaligned(fromByteOffset: 14 * ls * 4, as: V.self)
        let a15 = s.loadUnaligned(fromByteOffset: 15 * ls * 4, as: V.self)
        let b0 = lo(a0, a8), b1 = hi(a0, a8), b2 = lo(a1, a9), b3 = hi(a1, a9)
        let b4 = lo(a2, a10), b5 = hi(a2, a10), b6 = lo(a3, a11), b7 = hi(a3, a11)
        let b8 = lo(a4, a12), b9 = hi(a4, a12), b10 = lo(a5, a13), b11 = hi(a5, a13)
        let b12 = lo(a6, a14), b13 = hi(a6, a14), b14 = lo(a7, a15), b15 = hi(a7, a15)
        let c0 = lo(b0, b8), c1 = hi(b0, b8), c2 = lo(b1, b9), c3 = hi(b1, b9)
        let c4 = lo(b2, b10), c5 = hi(b2, b10), c6 = lo(b3, b11), c7 = hi(b3, b11)
        let c8 = lo(b4, b12), c9 = hi(b4, b12), c10 = lo(b5, b13), c11 = hi(b5, b13)
        let c12 = lo(b6, b14), c13 = hi(b6, b14), c14 = lo(b7, b15), c15 = hi(b7, b15)
        let d0 = lo(c0, c8), d1 = hi(c0, c8), d2 = lo(c1, c9), d3 = hi(c1, c9)
        let d4 = lo(c2, c10), d5 = hi(c2, c10), d6 = lo(c3, c11), d7 = hi(c3, c11)
        let d8 = lo(c4, c12), d9 = hi(c4, c12), d10 = lo(c5, c13), d11 = hi(c5, c13)
        let d12 = lo(c6, c14), d13 = hi(c6, c14), d14 = lo(c7, c15), d15 = hi(c7, c15)
        let e0 = lo(d0, d8), e1 = hi(d0, d8), e2 = lo(d1, d9), e3 = hi(d1, d9)
        let e4 = lo(d2, d10), e5 = hi(d2, d10), e6 = lo(d3, d11), e7 = hi(d3, d11)
        let e8 = lo(d4, d12), e9 = hi(d4, d12), e10 = lo(d5, d13), e11 = hi(d5, d13)
        let e12 = lo(d6, d14), e13 = hi(d6, d14), e14 = lo(d7, d15), e15 = hi(d7, d15)
        d.storeBytes(of: e0, toByteOffset: 0 * ld * 4, as: V.self); d.storeBytes(of: e1, toByteOffset: 1 * ld * 4, as: V.self); d.storeBytes(of: e2, toByteOffset: 2 * ld * 4, as: V.self); d.storeBytes(of: e3, toByteOffset: 3 * ld * 4, as: V.self)
        d.storeBytes(of: e4, toByteOffset: 4 * ld * 4, as: V.self); d.storeBytes(of: e5, toByteOffset: 5 * ld * 4, as: V.self); d.storeBytes(of: e6, toByteOffset: 6 * ld * 4, as: V.self); d.storeBytes(of: e7, toByteOffset: 7 * ld * 4, as: V.self)
        d.storeBytes(of: e8, toByteOffset: 8 * ld * 4, as: V.self); d.storeBytes(of: e9, toByteOffset: 9 * ld * 4, as: V.self); d.storeBytes(of: e10, toByteOffset: 10 * ld * 4, as: V.self); d.storeBytes(of: e11, toByteOffset: 11 * ld * 4, as: V.self)
        d.storeBytes(of: e12, toByteOffset: 12 * ld * 4, as: V.self); d.storeBytes(of: e13, toByteOffset: 13 * ld * 4, as: V.self); d.storeBytes(of: e14, toByteOffset: 14 * ld * 4, as: V.self); d.storeBytes(of: e15, toByteOffset: 15 * ld * 4, as: V.self)
    }

    // MARK: Reference (per image, plain loops)

    /// Naive weight gradient: Float sums in the batched kernel's depth order (image, oy, ox), one
    /// output element at a time. For tests of `weightGradientBatched`.
    public static func naiveWeightGradient(dy: UnsafePointer<Float>, x: UnsafePointer<Float>, batch: Int,
                                           _ g: ConvGeometry, dw: UnsafeMutablePointer<Float>) {
        let (cin, cout, kh, kw) = (g.inChannels, g.outChannels, g.kernelHeight, g.kernelWidth)
        for co in 0..<cout { for ci in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
            var s: Float = 0
            for n in 0..<batch { for oy in 0..<g.outHeight { for ox in 0..<g.outWidth {
                let iy = oy * g.strideH - g.padH + ky, ix = ox * g.strideW - g.padW + kx
                guard iy >= 0, iy < g.height, ix >= 0, ix < g.width else { continue }
                s += dy[((n * cout + co) * g.outHeight + oy) * g.outWidth + ox] * x[((n * cin + ci) * g.height + iy) * g.width + ix]
            } } }
            dw[((co * cin + ci) * kh + ky) * kw + kx] = s
        } } } }
    }
}

// MARK: Channel-last operand packer

/// A GEMM operand read from a channel-last buffer: rows come in segments of `segmentLength`
/// contiguous floats; row r of segment s at depth p is `base[depthOffsets[p] + segmentOffsets[s] + r % segmentLength]`.
/// Packs panels of `width` rows (MR for A, NR for B): element (row r, depth p) at `dst[p*width + r]`,
/// rows at or past `rows` zero.
struct ChannelLastOperand {
    let base: UnsafePointer<Float>
    let segmentLength: Int
    let segmentOffsets: [Int]

    func pack(into dst: UnsafeMutablePointer<Float>, width: Int, row0: Int, rows: Int,
              depthOffsets: UnsafePointer<Int>, kc: Int) {
        let valid = Swift.min(width, rows - row0)
        let s0 = row0 / segmentLength, s1 = (row0 + valid - 1) / segmentLength
        if valid == width && s0 == s1 {
            // One segment: a contiguous run of `width` floats per depth.
            let src = base + segmentOffsets[s0] + (row0 - s0 * segmentLength)
            if width == GEMM.nr {
                typealias V = KernelVector
                let second = MemoryLayout<V>.size
                for p in 0..<kc {
                    let s = UnsafeRawPointer(src + depthOffsets[p]), d = UnsafeMutableRawPointer(dst + p * width)
                    d.storeBytes(of: s.loadUnaligned(as: V.self), as: V.self)
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: second, as: V.self), toByteOffset: second, as: V.self)
                }
                return
            }
            if width == 6 {
                for p in 0..<kc {
                    let s = UnsafeRawPointer(src + depthOffsets[p]), d = UnsafeMutableRawPointer(dst + p * 6)
                    d.storeBytes(of: s.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                    d.storeBytes(of: s.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self), toByteOffset: 16, as: SIMD2<Float>.self)
                }
                return
            }
        }
        // Panel across segments (e.g. Cin not a multiple of the width) or with padding rows.
        for r in 0..<width {
            if r >= valid { for p in 0..<kc { dst[p * width + r] = 0 }; continue }
            let row = row0 + r, s = row / segmentLength
            let src = base + segmentOffsets[s] + (row - s * segmentLength)
            for p in 0..<kc { dst[p * width + r] = src[depthOffsets[p]] }
        }
    }
}
