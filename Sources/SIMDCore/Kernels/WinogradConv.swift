// MARK: - WinogradConv: 3x3 stride-1 convolutions by Winograd's minimal filtering F(2x2, 3x3)
//
// Lavin & Gray (2016): every 2x2 block of outputs comes from a 4x4 tile d of the (padded) input as
//   Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A                    g: one 3x3 kernel
// 16 multiplications per tile and channel pair instead of 36. Summed over input channels, the
// elementwise product is 16 GEMMs, one per tile position ξ = 4i + j:
//   M_ξ [Cout, tiles] = U_ξ [Cout, Cin] · V_ξ [Cin, tiles]
//   U = G g G^T   the weights: packed once as the GEMM's A panels (PackedWeightCache for constants)
//   V = B^T d B   the input tiles: written straight into the GEMM's NR-column B panels
//   Y = A^T M A   the output transform, 2x2 outputs per tile
//
//   B^T = | 1  0 -1  0 |     G = | 1    0    0   |     A^T = | 1  1  1  0 |
//         | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//         | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |         | 0    0    1   |
//
// Tiles are numbered row-major (tile row ty, column tx over ceil(Hout/2) x ceil(Wout/2)); a block
// of whole tile rows is transformed, multiplied and transformed back by one worker while it is in
// cache. Transforms run over KernelVector lanes of consecutive tiles of one tile row (a row's last,
// partial vector stores only its own lanes). Every output element is one fixed sequence of
// operations whichever worker computes it: results do not depend on the thread count. The result
// differs from the direct convolution by rounding only (the transforms add and halve); the tests
// hold it to the naive reference with the other paths' tolerance.
//
// Which convolutions take this path: ConvPlan.forward (`.winograd`), forward and, through the
// transposed convolution, the stride-1 input gradient.

/// Two KernelVectors' worth of lanes: an input line read once and split into its even and odd columns.
#if EP_PROFILE_AVX512
typealias KernelVectorPair = SIMD32<Float>
#elseif EP_PROFILE_AVX2
typealias KernelVectorPair = SIMD16<Float>
#else
typealias KernelVectorPair = SIMD8<Float>
#endif

/// The lanes (e0, o0, e1, o1, …) of `e` and `o` interleaved, as two KernelVectors: the first
/// and the second half. Spelled out lane by lane so that LLVM emits one shuffle each, and kept in
/// KernelVectors: the stdlib's `evenHalf`/`oddHalf` setters and `+=` on the double-width vector
/// went through the stack one float at a time (17% of a C4GAP training step).
@inline(__always)
func interleave(_ e: KernelVector, _ o: KernelVector) -> (KernelVector, KernelVector) {
#if EP_PROFILE_AVX512
    (KernelVector(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3], e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7]), KernelVector(e[8], o[8], e[9], o[9], e[10], o[10], e[11], o[11], e[12], o[12], e[13], o[13], e[14], o[14], e[15], o[15]))
#elseif EP_PROFILE_AVX2
    (KernelVector(e[0], o[0], e[1], o[1], e[2], o[2], e[3], o[3]), KernelVector(e[4], o[4], e[5], o[5], e[6], o[6], e[7], o[7]))
#else
    (KernelVector(e[0], o[0], e[1], o[1]), KernelVector(e[2], o[2], e[3], o[3]))
#endif
}

enum WinogradConv {
    typealias V = KernelVector

    /// F(2x2, 3x3) applies to 3x3 kernels at stride 1 whose padding keeps tiles on the input.
    static func applies(_ g: ConvGeometry) -> Bool {
        g.kernelHeight == 3 && g.kernelWidth == 3 && g.strideH == 1 && g.strideW == 1
            && g.padH <= 2 && g.padW <= 2
    }

    // MARK: Geometry of the tiles

    struct Tiling {
        let g: ConvGeometry
        /// Tile rows and tiles per row.
        let rows: Int, perRow: Int
        /// Output channels rounded up to MR: each ξ's rows start on an A panel.
        let paddedCout: Int
        /// Tile rows per block (the last block may have fewer).
        let rowsPerBlock: Int

        /// Tiles a block aims for: enough GEMM columns to fill NR panels, few enough that the
        /// block's V and M stay in L2/L3.
        static let blockTiles = 128

        init(_ g: ConvGeometry, threads: Int) {
            self.g = g
            rows = (g.outHeight + 1) / 2
            perRow = (g.outWidth + 1) / 2
            paddedCout = GEMM.roundUp(g.outChannels, GEMM.mr)
            var r = Swift.max(1, (Tiling.blockTiles + perRow - 1) / perRow)
            // Enough blocks for every worker when the map allows it (14x14: 7 tile rows -> 4 + 3).
            if threads > 1 { r = Swift.min(r, Swift.max(1, (rows + threads - 1) / threads)) }
            rowsPerBlock = Swift.min(r, rows)
        }

        var blocks: Int { (rows + rowsPerBlock - 1) / rowsPerBlock }
        func tileRows(_ b: Int) -> Range<Int> { (b * rowsPerBlock)..<Swift.min(rows, (b + 1) * rowsPerBlock) }
        /// GEMM columns of the largest block, padded to NR.
        var maxPaddedColumns: Int { GEMM.roundUp(rowsPerBlock * perRow, GEMM.nr) }
    }

    // MARK: Entry

    /// y [batch, Cout, Hout, Wout] (+= when `accumulate`) from x [batch, Cin, H, W] and `kernels`;
    /// their transform comes from `cache` when there is one (constant weights: once per model).
    static func forward(x: UnsafePointer<Float>, batch: Int, kernels: Kernels, _ g: ConvGeometry,
                        y: UnsafeMutablePointer<Float>, accumulate: Bool,
                        cache: PackedWeightCache?, source: [Float], layout: PackedWeightLayout) {
        let panels: PackedPanels
        if let cache {
            let shape = kernels.flipped ? [g.inChannels, g.outChannels, 3, 3] : [g.outChannels, g.inChannels, 3, 3]
            panels = cache.panels(source: source, shape: shape, layout: layout, m: 16 * kernels.paddedCout,
                                  k: g.inChannels, asB: false) { kernels.panels() }
        } else {
            panels = kernels.panels()
        }
        let (inStride, outStride) = (g.inChannels * g.inPixels, g.outChannels * g.outPixels)
        withExtendedLifetime(panels) {
            if ConvPlan.splitsBatchByImages(batch) {
                // A worker's images one after another, single-threaded, reusing its buffers.
                Parallel.forEachChunk(count: batch) { images in
                    // Safe: every image writes only its own slice of y.
                    Parallel.$threadCount.withValue(1) {
                        let t = Tiling(g, threads: 1)
                        withBuffers(t) { v, tiles, s in
                            for img in images {
                                for b in 0..<t.blocks {
                                    block(u: panels, x: x + img * inStride, t, tileRows: t.tileRows(b), channels: 0..<g.outChannels,
                                          v: v, tiles: tiles, scratch: s, y: y + img * outStride, accumulate: accumulate)
                                }
                            }
                        }
                    }
                }
            } else {
                for img in 0..<batch { run(u: panels, x: x + img * inStride, g, y: y + img * outStride, accumulate: accumulate) }
            }
        }
    }

    /// One image: blocks of tile rows split over the workers, or, with fewer blocks than workers,
    /// every worker doing every block for its share of the output channels.
    static func run(u: PackedPanels, x: UnsafePointer<Float>, _ g: ConvGeometry,
                    y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let threads = Parallel.threadCount
        let t = Tiling(g, threads: threads)
        let mr = GEMM.mr
        if t.blocks >= threads {
            Parallel.forEachChunk(count: t.blocks) { blocks in
                // Safe: a block writes only the outputs of its own tile rows.
                withBuffers(t) { v, tiles, rowsScratch in
                    for b in blocks {
                        block(u: u, x: x, t, tileRows: t.tileRows(b), channels: 0..<g.outChannels,
                              v: v, tiles: tiles, scratch: rowsScratch, y: y, accumulate: accumulate)
                    }
                }
            }
        } else {
            Parallel.forEachChunk(count: t.paddedCout / mr) { panels in
                // Safe: a worker writes only the outputs of its own output channels.
                let channels = (panels.lowerBound * mr)..<Swift.min(g.outChannels, panels.upperBound * mr)
                guard !channels.isEmpty else { return }
                withBuffers(t) { v, tiles, rowsScratch in
                    for b in 0..<t.blocks {
                        block(u: u, x: x, t, tileRows: t.tileRows(b), channels: channels,
                              v: v, tiles: tiles, scratch: rowsScratch, y: y, accumulate: accumulate)
                    }
                }
            }
        }
    }

    /// A worker's V (16 ξ x Cin x padded columns), the 16 product tiles of one MR x NR output
    /// panel, and the phase rows of the input transform.
    static func withBuffers(_ t: Tiling, _ body: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let vCount = 16 * t.g.inChannels * t.maxPaddedColumns
        let tCount = 16 * GEMM.mr * GEMM.nr
        let v = UnsafeMutablePointer<Float>.allocateAligned(vCount)
        let tiles = UnsafeMutablePointer<Float>.allocateAligned(tCount)
        let sCount = scratchCount(t)
        let s = UnsafeMutablePointer<Float>.allocateAligned(sCount)
        s.initialize(repeating: 0, count: sCount)   // the slack around phase rows is read, never used
        defer { v.deallocate(); tiles.deallocate(); s.deallocate() }
        body(v, tiles, s)
    }

    // MARK: One block of tile rows

    /// Input transform of the block's tiles, then per MR x NR panel of (output channels, tiles):
    /// the 16 products M_ξ (the GEMM micro-kernel over Cin, KC at a time, A and B from their
    /// panels) into `tiles`, transformed back into y while they are in L1.
    static func block(u: PackedPanels, x: UnsafePointer<Float>, _ t: Tiling, tileRows: Range<Int>,
                      channels: Range<Int>, v: UnsafeMutablePointer<Float>, tiles: UnsafeMutablePointer<Float>,
                      scratch: UnsafeMutablePointer<Float>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let g = t.g, mr = GEMM.mr, nr = GEMM.nr, kc = GEMM.kc, cin = g.inChannels
        let cols = tileRows.count * t.perRow, paddedCols = GEMM.roundUp(cols, nr)
        inputTransform(x: x, t, tileRows: tileRows, v: v, paddedColumns: paddedCols, scratch: scratch)
        let vStride = cin * paddedCols
        let (ub, uRows) = (u.base, u.paddedRows)
        for j0 in stride(from: 0, to: cols, by: nr) {
            for co0 in stride(from: channels.lowerBound, to: channels.upperBound, by: mr) {
                for xi in 0..<16 {
                    let row = xi * t.paddedCout + co0
                    for pc in stride(from: 0, to: cin, by: kc) {
                        let kcur = Swift.min(kc, cin - pc)
                        GEMM.microKernel(kcur, ub + pc * uRows + row * kcur, v + xi * vStride + pc * paddedCols + j0 * kcur,
                                         tiles + xi * mr * nr, nr, pc > 0)
                    }
                }
                outputTransform(tiles: tiles, t, tileRows: tileRows, channels: co0..<Swift.min(co0 + mr, channels.upperBound),
                                columns: j0..<Swift.min(j0 + nr, cols), y: y, accumulate: accumulate)
            }
        }
    }

    // MARK: Input transform: V = B^T d B

    /// Phase rows of one input row: even[c] = xpad(2c), odd[c] = xpad(2c + 1) for every tile
    /// column c and the next, with a vector of slack on both sides (a vector that starts in one
    /// tile row and ends in the next is loaded from both rows' phase rows and blended).
    static func phaseRowStride(_ t: Tiling) -> Int { GEMM.roundUp(t.perRow + 1 + V.scalarCount, V.scalarCount) + 2 * V.scalarCount }
    /// Phase rows of every input row of a block, then one zero-padded input row.
    static func scratchCount(_ t: Tiling) -> Int { (2 * t.rowsPerBlock + 2) * 2 * phaseRowStride(t) + 2 * phaseRowStride(t) }

    /// Writes V_ξ[ci, tile] for the block's tiles into NR-column panels, as `GEMMPackB.pack` lays
    /// them out: depth block pc at `pc * paddedColumns`, panel of column c at `(c / NR) * NR * kcur`.
    /// Columns are the block's tiles in row-major order, KernelVector lanes at a time.
    static func inputTransform(x: UnsafePointer<Float>, _ t: Tiling, tileRows: Range<Int>,
                               v: UnsafeMutablePointer<Float>, paddedColumns: Int, scratch: UnsafeMutablePointer<Float>) {
        let g = t.g, L = V.scalarCount, nr = GEMM.nr, kc = GEMM.kc
        let h = g.height, w = g.width, ph = g.padH
        let stride = phaseRowStride(t), inputRows = 2 * tileRows.count + 2
        let cols = tileRows.count * t.perRow
        let vStride = g.inChannels * paddedColumns
        @inline(__always) func even(_ r: Int) -> UnsafeMutablePointer<Float> { scratch + 2 * r * stride + L }
        @inline(__always) func odd(_ r: Int) -> UnsafeMutablePointer<Float> { scratch + (2 * r + 1) * stride + L }
        let line = scratch + 2 * inputRows * stride
        var laneIndex = SIMD16<Int32>()
        for l in 0..<16 { laneIndex[l] = Int32(l) }
        for ci in 0..<g.inChannels {
            let plane = x + ci * h * w
            for r in 0..<inputRows {
                let iy = 2 * tileRows.lowerBound - ph + r
                fillPhaseRow(iy >= 0 && iy < h ? plane + iy * w : nil, t, even: even(r), odd: odd(r), line: line)
            }
            let pc = ci / kc * kc, kcur = Swift.min(kc, g.inChannels - pc)
            let depthBase = v + pc * paddedColumns + (ci - pc) * nr, panelStride = nr * kcur
            for c0 in Swift.stride(from: 0, to: paddedColumns, by: L) {
                let p = depthBase + (c0 / nr) * panelStride + c0 % nr
                if c0 >= cols {
                    // Panel columns past the block's tiles: zeros (their products are dropped).
                    for xi in 0..<16 { UnsafeMutableRawPointer(p + xi * vStride).storeBytes(of: V(), as: V.self) }
                    continue
                }
                let ty = c0 / t.perRow, tx = c0 % t.perRow
                @inline(__always) func load(_ p: UnsafeMutablePointer<Float>, _ at: Int) -> V {
                    UnsafeRawPointer(p + at).loadUnaligned(as: V.self)
                }
                // d[i][j] of the lanes' tiles: lane l is tile column tx + l of tile row ty while
                // that row lasts, then the next tile rows' columns from 0.
                @inline(__always) func tile(_ rel: Int, _ at: Int) -> (V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V) {
                    let r = 2 * rel
                    return (load(even(r), at), load(odd(r), at), load(even(r), at + 1), load(odd(r), at + 1),
                            load(even(r + 1), at), load(odd(r + 1), at), load(even(r + 1), at + 1), load(odd(r + 1), at + 1),
                            load(even(r + 2), at), load(odd(r + 2), at), load(even(r + 2), at + 1), load(odd(r + 2), at + 1),
                            load(even(r + 3), at), load(odd(r + 3), at), load(even(r + 3), at + 1), load(odd(r + 3), at + 1))
                }
                var d = tile(ty, tx)
                var first = t.perRow - tx, rel = ty + 1
                while first < L && rel < tileRows.count {
                    let n = tile(rel, -first)
                    let m = laneMask(laneIndex, from: first)
                    d = (d.0.replacing(with: n.0, where: m), d.1.replacing(with: n.1, where: m),
                         d.2.replacing(with: n.2, where: m), d.3.replacing(with: n.3, where: m),
                         d.4.replacing(with: n.4, where: m), d.5.replacing(with: n.5, where: m),
                         d.6.replacing(with: n.6, where: m), d.7.replacing(with: n.7, where: m),
                         d.8.replacing(with: n.8, where: m), d.9.replacing(with: n.9, where: m),
                         d.10.replacing(with: n.10, where: m), d.11.replacing(with: n.11, where: m),
                         d.12.replacing(with: n.12, where: m), d.13.replacing(with: n.13, where: m),
                         d.14.replacing(with: n.14, where: m), d.15.replacing(with: n.15, where: m))
                    first += t.perRow; rel += 1
                }
                // d B, row by row: (d0 - d2, d1 + d2, d2 - d1, d1 - d3).
                let r0 = (d.0 - d.2, d.1 + d.2, d.2 - d.1, d.1 - d.3)
                let r1 = (d.4 - d.6, d.5 + d.6, d.6 - d.5, d.5 - d.7)
                let r2 = (d.8 - d.10, d.9 + d.10, d.10 - d.9, d.9 - d.11)
                let r3 = (d.12 - d.14, d.13 + d.14, d.14 - d.13, d.13 - d.15)
                // B^T (d B), column j: V[4i + j] for the four i. L-aligned columns never cross a panel.
                @inline(__always) func put(_ j: Int, _ a0: V, _ a1: V, _ a2: V, _ a3: V) {
                    UnsafeMutableRawPointer(p + j * vStride).storeBytes(of: a0 - a2, as: V.self)
                    UnsafeMutableRawPointer(p + (4 + j) * vStride).storeBytes(of: a1 + a2, as: V.self)
                    UnsafeMutableRawPointer(p + (8 + j) * vStride).storeBytes(of: a2 - a1, as: V.self)
                    UnsafeMutableRawPointer(p + (12 + j) * vStride).storeBytes(of: a1 - a3, as: V.self)
                }
                put(0, r0.0, r1.0, r2.0, r3.0)
                put(1, r0.1, r1.1, r2.1, r3.1)
                put(2, r0.2, r1.2, r2.2, r3.2)
                put(3, r0.3, r1.3, r2.3, r3.3)
            }
        }
    }

    /// Lanes `from` and beyond.
    @inline(__always)
    static func laneMask(_ index: SIMD16<Int32>, from: Int) -> SIMDMask<V.MaskStorage> {
        #if EP_PROFILE_AVX512
        return index .>= Int32(from)
        #elseif EP_PROFILE_AVX2
        return index.lowHalf .>= Int32(from)
        #else
        return index.lowHalf.lowHalf .>= Int32(from)
        #endif
    }

    /// even[c] = xpad(row, 2c), odd[c] = xpad(row, 2c + 1) for c in 0 ..< perRow + 1 + L (zero in
    /// the padding, or everywhere for a row outside the image): the row is copied once into the
    /// zero-padded `line`, then split a vector pair at a time.
    @inline(__always)
    static func fillPhaseRow(_ row: UnsafePointer<Float>?, _ t: Tiling, even e: UnsafeMutablePointer<Float>, odd o: UnsafeMutablePointer<Float>,
                             line: UnsafeMutablePointer<Float>) {
        let L = V.scalarCount, n = GEMM.roundUp(t.perRow + 1 + L, L), w = t.g.width, pw = t.g.padW
        guard let row else {
            e.update(repeating: 0, count: n); o.update(repeating: 0, count: n)
            return
        }
        let used = Swift.min(w, 2 * n - pw)   // columns of the row that land in a phase row
        line.update(repeating: 0, count: pw)
        (line + pw).update(from: row, count: used)
        (line + pw + used).update(repeating: 0, count: 2 * n - pw - used)
        for c in stride(from: 0, to: n, by: L) {
            let pair = UnsafeRawPointer(line + 2 * c).loadUnaligned(as: KernelVectorPair.self)
            UnsafeMutableRawPointer(e + c).storeBytes(of: pair.evenHalf, as: V.self)
            UnsafeMutableRawPointer(o + c).storeBytes(of: pair.oddHalf, as: V.self)
        }
    }

    // MARK: Output transform: Y = A^T M A

    /// y for output channels `channels` (at most MR, from the panel's first row) and the block's
    /// tiles `columns` (at most NR, from the panel's first column), from the 16 product tiles
    /// M_ξ [MR, NR]. KernelVector lanes at a time; lanes are consecutive tiles of one tile row,
    /// or of two or more when a vector reaches past a row's end (those store lane by lane).
    static func outputTransform(tiles: UnsafePointer<Float>, _ t: Tiling, tileRows: Range<Int>, channels: Range<Int>,
                                columns: Range<Int>, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let g = t.g, L = V.scalarCount, mr = GEMM.mr, nr = GEMM.nr
        let hout = g.outHeight, wout = g.outWidth
        for r in 0..<channels.count {
            let plane = y + (channels.lowerBound + r) * hout * wout
            for c0 in stride(from: columns.lowerBound, to: columns.upperBound, by: L) {
                @inline(__always) func mv(_ xi: Int) -> V {
                    UnsafeRawPointer(tiles + xi * mr * nr + r * nr + (c0 - columns.lowerBound)).load(as: V.self)
                }
                // M A: per row i, (m_i0 + m_i1 + m_i2, m_i1 - m_i2 - m_i3).
                @inline(__always) func rowTransform(_ i: Int) -> (V, V) {
                    let m0 = mv(4 * i), m1 = mv(4 * i + 1), m2 = mv(4 * i + 2), m3 = mv(4 * i + 3)
                    return (m0 + m1 + m2, m1 - m2 - m3)
                }
                let q0 = rowTransform(0), q1 = rowTransform(1), q2 = rowTransform(2), q3 = rowTransform(3)
                // A^T (M A): output rows a = 0, 1 of each tile, columns 2tx (b = 0) and 2tx + 1 (b = 1).
                let y00 = q0.0 + q1.0 + q2.0, y01 = q0.1 + q1.1 + q2.1
                let y10 = q1.0 - q2.0 - q3.0, y11 = q1.1 - q2.1 - q3.1
                let valid = Swift.min(L, columns.upperBound - c0)
                var lane = 0
                while lane < valid {
                    let col = c0 + lane
                    let ty = tileRows.lowerBound + col / t.perRow, tx = col % t.perRow
                    let n = Swift.min(valid - lane, t.perRow - tx)
                    @inline(__always) func put(_ oy: Int, _ e: V, _ o: V) {
                        guard oy < hout else { return }
                        let out = plane + oy * wout + 2 * tx
                        if n == L && 2 * (tx + L) <= wout {
                            var (low, high) = interleave(e, o)
                            let raw = UnsafeMutableRawPointer(out), half = L * MemoryLayout<Float>.stride
                            if accumulate {
                                low += raw.loadUnaligned(as: V.self)
                                high += raw.loadUnaligned(fromByteOffset: half, as: V.self)
                            }
                            raw.storeBytes(of: low, as: V.self)
                            raw.storeBytes(of: high, toByteOffset: half, as: V.self)
                        } else {
                            for l in 0..<n {
                                out[2 * l] = accumulate ? out[2 * l] + e[lane + l] : e[lane + l]
                                if 2 * (tx + l) + 1 < wout { out[2 * l + 1] = accumulate ? out[2 * l + 1] + o[lane + l] : o[lane + l] }
                            }
                        }
                    }
                    put(2 * ty, y00, y01)
                    put(2 * ty + 1, y10, y11)
                    lane += n
                }
            }
        }
    }

    // MARK: Weights: U = G g G^T as A panels

    /// The 3x3 kernels g[co, ci] of the convolution computed, read from a weight [Cout, Cin, 3, 3];
    /// `flipped`: the kernels of the transposed convolution (the stride-1 input gradient),
    /// g'[co, ci] = w[ci, co] rotated by 180 degrees. Their transform U is op(A) [16 x paddedCout,
    /// Cin]: row ξ * paddedCout + co, column ci holds U_ξ[co, ci] (rows co >= Cout are zero).
    struct Kernels {
        let weight: UnsafePointer<Float>
        let flipped: Bool
        /// Channels of the convolution computed (for `flipped`: Cin = the original Cout).
        let cin: Int, cout: Int
        var paddedCout: Int { GEMM.roundUp(cout, GEMM.mr) }

        @inline(__always) func tap(_ o: Int, _ i: Int, _ ky: Int, _ kx: Int) -> Float {
            flipped ? weight[((i * cout + o) * 3 + 2 - ky) * 3 + 2 - kx] : weight[((o * cin + i) * 3 + ky) * 3 + kx]
        }

        /// Row r of G applied to (v0, v1, v2).
        @inline(__always) static func gRow(_ r: Int, _ v0: Float, _ v1: Float, _ v2: Float) -> Float {
            switch r {
            case 0: return v0
            case 1: return (v0 + v1 + v2) * 0.5
            case 2: return (v0 - v1 + v2) * 0.5
            default: return v2
            }
        }

        /// All of op(A) as GEMM panels: every kernel transformed once (all 16 ξ), then packed.
        func panels() -> PackedPanels {
            let pc = paddedCout, count = 16 * pc * cin
            let u = UnsafeMutablePointer<Float>.allocateAligned(count)
            defer { u.deallocate() }
            if pc > cout { for xi in 0..<16 { (u + (xi * pc + cout) * cin).initialize(repeating: 0, count: (pc - cout) * cin) } }
            Parallel.forEachChunk(count: cout) { outs in
                // Safe: rows co of every ξ belong to this worker.
                for co in outs {
                    for ci in 0..<cin {
                        for j in 0..<4 {
                            let t0 = Self.gRow(j, tap(co, ci, 0, 0), tap(co, ci, 0, 1), tap(co, ci, 0, 2))
                            let t1 = Self.gRow(j, tap(co, ci, 1, 0), tap(co, ci, 1, 1), tap(co, ci, 1, 2))
                            let t2 = Self.gRow(j, tap(co, ci, 2, 0), tap(co, ci, 2, 1), tap(co, ci, 2, 2))
                            for i in 0..<4 { u[((4 * i + j) * pc + co) * cin + ci] = Self.gRow(i, t0, t1, t2) }
                        }
                    }
                }
            }
            return PackedPanels(m: 16 * pc, k: cin, asB: false, packer: MatrixPackA(base: u, ld: cin, transposed: false))
        }
    }
}
