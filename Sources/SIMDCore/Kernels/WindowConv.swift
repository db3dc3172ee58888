// MARK: - Window convolution: implicit GEMM whose B rows are windows of the image
//
// Y[Cout, Hout*Wout] = W[Cout, K] · col, with col[(ci,ky,kx), (oy,ox)] = xpad[ci, oy*sh + ky, ox*sw + kx].
//
// Split the zero-padded image into sh*sw phase images (one plain padded copy when the stride is 1):
//   P[a,b][ci, u, v] = xpad[ci, u*sh + a, v*sw + b]          u < Hq = Hout + (kh-1)/sh,
//                                                            v < Wq = Wout + (kw-1)/sw
// Then   col[(ci,ky,kx), (oy,ox)] = P[ky%sh, kx%sw][ci, oy + ky/sh, ox + kx/sw].
// Index the output "wide", with the phase row width: j = oy*Wq + ox. Every row of col becomes one
// contiguous stretch of the flattened phase images:
//   col[k, j] = phases[offset[k] + j],  offset[(ci,ky,kx)] = phase(ky%sh, kx%sw) + ci*Hq*Wq + (ky/sh)*Wq + kx/sw
// so the micro-kernel loads its NR B values per k straight from the phases (unaligned vector loads):
// nothing is packed for B. On ResNet's large maps with few output channels (layer 1: M = 64) the
// im2col packing was about a fifth of the convolution's time.
//
// Cost: the Wq - Wout = (kw-1)/sw extra columns per output row are computed and dropped (3.4% for a
// 3x3 on 56x56, 6% on 32x32; 14% on 14x14, which is why narrow maps keep the packed path), plus one
// pass over the image to build the phases and one over the output to drop the extra columns.
// Maps whose width is a multiple of NR (32x32: CIFAR, C4GAP) instead tile each output row with
// whole panels: nothing is dropped and the tiles are stored straight into y.
//
// Determinism: each output element is produced by one worker, by the same micro-kernel FMA order
// over the same KC blocks as GEMM, whatever the thread count: `((blk0 + blk1) + ...) + bias` on the
// wide path, `((bias + blk0) + blk1) + ...` on the row path.

public enum WindowConv {
    /// Sizes of the phase images and of the wide output.
    struct Layout {
        let g: ConvGeometry
        /// Phase image height and row width.
        let hq: Int, wq: Int
        /// Floats per phase image (all channels).
        let phaseStride: Int
        /// Wide output columns Hout*Wq, and that rounded up to whole NR panels.
        let wideColumns: Int, paddedColumns: Int
        /// offset[k] for each column-matrix row k (see the header).
        let offsets: [Int]
        /// Floats to allocate for the phases, including a zero tail that the last panel's
        /// over-reads land in.
        let phaseBufferCount: Int

        init(_ g: ConvGeometry) {
            self.g = g
            let sh = g.strideH, sw = g.strideW, kh = g.kernelHeight, kw = g.kernelWidth
            hq = g.outHeight + (kh - 1) / sh
            wq = g.outWidth + (kw - 1) / sw
            phaseStride = g.inChannels * hq * wq
            wideColumns = g.outHeight * wq
            paddedColumns = GEMM.roundUp(wideColumns, GEMM.nr)
            var offsets = [Int](repeating: 0, count: g.k)
            var maxOffset = 0
            var k = 0
            for ci in 0..<g.inChannels {
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let phase = (ky % sh) * sw + kx % sw
                        offsets[k] = phase * phaseStride + ci * hq * wq + (ky / sh) * wq + kx / sw
                        maxOffset = Swift.max(maxOffset, offsets[k])
                        k += 1
                    }
                }
            }
            self.offsets = offsets
            // The micro-kernel reads [offset, offset + paddedColumns) for every k.
            phaseBufferCount = Swift.max(sh * sw * phaseStride, maxOffset + paddedColumns)
        }
    }

    // MARK: Phase images

    /// Writes the sh*sw zero-padded phase images of one image x[Cin, H, W] (and the zero tail).
    static func buildPhases(_ x: UnsafePointer<Float>, _ l: Layout, into p: UnsafeMutablePointer<Float>) {
        Parallel.forEachChunk(count: l.g.strideH * l.g.strideW * l.g.inChannels) { r in
            // Safe: planes r are written only by this worker.
            for t in r { buildPlaneRows(x, l, plane: t, rows: 0..<l.hq, into: p) }
        }
        zeroTail(l, p)
    }

    /// The zero tail past the last phase image, which the last panels' over-reads land in.
    static func zeroTail(_ l: Layout, _ p: UnsafeMutablePointer<Float>) {
        let tail = l.g.strideH * l.g.strideW * l.phaseStride
        (p + tail).update(repeating: 0, count: l.phaseBufferCount - tail)
    }

    /// Rows `rows` of plane t (phase t / Cin, channel t % Cin).
    static func buildPlaneRows(_ x: UnsafePointer<Float>, _ l: Layout, plane t: Int, rows: Range<Int>,
                               into p: UnsafeMutablePointer<Float>) {
        let g = l.g
        let sh = g.strideH, sw = g.strideW, H = g.height, W = g.width
        let hq = l.hq, wq = l.wq
        let phase = t / g.inChannels, ci = t % g.inChannels
        let a = phase / sw, b = phase % sw
        let plane = p + phase * l.phaseStride + ci * hq * wq
        let src = x + ci * H * W
        // Columns v with 0 <= v*sw + b - padW < W.
        let vLo = Swift.min(wq, Swift.max(0, (g.padW - b + sw - 1) / sw))
        let last = W - 1 + g.padW - b   // v*sw <= last (none when negative)
        let vHi = last < 0 ? vLo : Swift.max(vLo, Swift.min(wq, last / sw + 1))
        for u in rows {
            let row = plane + u * wq
            let iy = u * sh + a - g.padH
            guard iy >= 0 && iy < H else { row.update(repeating: 0, count: wq); continue }
            let srow = src + iy * W
            for v in 0..<vLo { row[v] = 0 }
            if sw == 1 {
                (row + vLo).update(from: srow + (vLo + b - g.padW), count: vHi - vLo)
            } else {
                for v in vLo..<vHi { row[v] = srow[v * sw + b - g.padW] }
            }
            for v in vHi..<wq { row[v] = 0 }
        }
    }

    // MARK: Driver

    /// y[Cout, Hout*Wout] (+)= A[Cout, K] · col(x) for one image; `a` yields the weights' MR panels
    /// (pre-packed or packed here, exactly as GEMM would).
    static func run<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ g: ConvGeometry,
                                   y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let l = Layout(g)
        let nr = GEMM.nr, m = g.outChannels
        // Wide output split by columns over several workers: one fork/join (`runFused`). Otherwise
        // (row panels, row splits, one worker) the phases are built first, by all workers.
        if g.outWidth % nr != 0 && splitsByColumns(panels: l.paddedColumns / nr, m: m) && Parallel.threadCount > 1 {
            runFused(a: a, x: x, l, y: y, accumulate: accumulate)
            return
        }
        let phases = UnsafeMutablePointer<Float>.allocateAligned(l.phaseBufferCount)
        defer { phases.deallocate() }
        buildPhases(x, l, into: phases)

        if g.outWidth % nr == 0 {
            // Rows of whole NR panels (32x32 maps with AVX-512: one panel per row): each panel's NR columns are
            // 32 real outputs, so the tiles go straight into y and no column is dropped.
            let perRow = g.outWidth / nr, hw = g.outPixels
            multiply(a: a, k: g.k, m: m, panels: g.outHeight * perRow, offsets: l.offsets,
                     window: { jp in (jp / perRow) * l.wq + (jp % perRow) * nr },
                     c: y, ldc: hw, tileStart: { jp in (jp / perRow) * g.outWidth + (jp % perRow) * nr },
                     accumulate: accumulate, phases: phases)
            return
        }

        // Wide output: panels run along j = oy*Wq + ox, so the (kw-1)/sw columns past each row's
        // end are computed into a scratch and dropped below. (Only rows < m are ever stored.)
        let ldS = l.paddedColumns
        let wide = UnsafeMutablePointer<Float>.allocateAligned(m * ldS)
        defer { wide.deallocate() }
        multiply(a: a, k: g.k, m: m, panels: ldS / nr, offsets: l.offsets, window: { jp in jp * nr },
                 c: wide, ldc: ldS, tileStart: { jp in jp * nr }, accumulate: false,
                 phases: phases)

        Parallel.forEachChunk(count: m) { r in
            // Safe: output channels r are written only by this worker.
            dropColumns(l, wide: wide, y: y, channels: r, outputRows: 0..<g.outHeight, accumulate: accumulate)
        }
    }

    /// Drops the extra columns: y[co, oy, ox] (+)= wide[co, oy*Wq + ox] for the given channels and rows.
    static func dropColumns(_ l: Layout, wide: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>,
                            channels: Range<Int>, outputRows: Range<Int>, accumulate: Bool) {
        let hout = l.g.outHeight, wout = l.g.outWidth, wq = l.wq, ldS = l.paddedColumns
        for co in channels {
            for oy in outputRows {
                let src = wide + co * ldS + oy * wq, dst = y + (co * hout + oy) * wout
                if accumulate { for ox in 0..<wout { dst[ox] += src[ox] } }
                else { dst.update(from: src, count: wout) }
            }
        }
    }

    /// The wide path split by column panels as ONE fork/join rather than three (phases, product,
    /// drop): a parked worker can take long to wake on a shared VM, and 1-2 ms convs paid for it
    /// each time. Each worker builds, in a private buffer, only the phase rows its panels read, and drops
    /// the output rows lying wholly inside its columns; the caller drops the rows straddling two
    /// workers. Same products, same bits as the three-phase path.
    static func runFused<PA: GEMMPackA>(a: PA, x: UnsafePointer<Float>, _ l: Layout,
                                        y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        let g = l.g, nr = GEMM.nr, m = g.outChannels, wq = l.wq, hq = l.hq, ldS = l.paddedColumns
        let panels = ldS / nr, planes = g.strideH * g.strideW * g.inChannels
        // Farthest a window reaches past its column inside a plane, and past the plane's end.
        let reach = ((g.kernelHeight - 1) / g.strideH) * wq + (g.kernelWidth - 1) / g.strideW
        let wide = UnsafeMutablePointer<Float>.allocateAligned(m * ldS)
        defer { wide.deallocate() }
        l.offsets.withUnsafeBufferPointer { offsetsBuffer in
            let offsets = offsetsBuffer.baseAddress!
            Parallel.forEachChunk(count: panels) { share in
                let j0 = share.lowerBound * nr, j1 = share.upperBound * nr
                // Plane-relative reads of these panels: [j0, j1 - 1 + reach]. Rows past the plane
                // spill into the first rows of the next plane (or the zero tail): build those too.
                let last = j1 - 1 + reach
                let rows = (j0 / wq)..<Swift.min(hq, last / wq + 1)
                let spill = last >= hq * wq ? Swift.min(hq, (last - hq * wq) / wq + 1) : 0
                let own = UnsafeMutablePointer<Float>.allocateAligned(l.phaseBufferCount)
                defer { own.deallocate() }
                for t in 0..<planes {
                    buildPlaneRows(x, l, plane: t, rows: rows, into: own)
                    if spill > 0 && rows.lowerBound > 0 {
                        buildPlaneRows(x, l, plane: t, rows: 0..<Swift.min(spill, rows.lowerBound), into: own)
                    }
                }
                zeroTail(l, own)
                // Safe: this worker writes only wide columns [j0, j1) (all rows) and the output rows
                // lying wholly inside them.
                multiplyShare(a: a, k: g.k, m: m, cols: share, rows: 0..<m, offsets: offsets,
                              window: { jp in jp * nr }, c: wide, ldc: ldS, tileStart: { jp in jp * nr },
                              accumulate: false, phases: UnsafePointer(own))
                dropColumns(l, wide: wide, y: y, channels: 0..<m, outputRows: wholeRows(j0, j1, l), accumulate: accumulate)
            }
        }
        // Rows straddling workers' columns (a row may span several on a map one row tall), here
        // after the join, each once.
        let workers = Swift.min(Parallel.threadCount, panels)
        var straddling = Set<Int>()
        for w in 1..<Swift.max(1, workers) {
            let boundary = Parallel.chunk(w, of: workers, count: panels).lowerBound * nr
            let oy = boundary / wq
            if oy < g.outHeight && oy * wq < boundary && boundary < oy * wq + g.outWidth { straddling.insert(oy) }
        }
        for oy in straddling.sorted() {
            dropColumns(l, wide: wide, y: y, channels: 0..<m, outputRows: oy..<(oy + 1), accumulate: accumulate)
        }
    }

    /// Output rows oy whose columns [oy*Wq, oy*Wq + Wout) lie inside [j0, j1).
    static func wholeRows(_ j0: Int, _ j1: Int, _ l: Layout) -> Range<Int> {
        let lo = (j0 + l.wq - 1) / l.wq
        let hi = Swift.min(l.g.outHeight, j1 >= l.g.outWidth ? (j1 - l.g.outWidth) / l.wq + 1 : 0)
        return lo..<Swift.max(lo, hi)
    }

    /// Static partition of the window product: by NR-column panels when there are plenty (every
    /// worker reads all of A, the weights of one layer, and only its own windows of the phases),
    /// otherwise by MR-row panels.
    static func splitsByColumns(panels: Int, m: Int) -> Bool {
        panels >= 4 * Parallel.threadCount || panels >= GEMM.roundUp(m, GEMM.mr) / GEMM.mr
    }

    /// C[row, tileStart(jp) ..< +NR] (+)= A[row, K] · window panel jp, for all rows < m and panels.
    /// Panel jp's B row p is the NR floats at phases + window(jp) + offsets[p]. Only rows < m are
    /// stored (C may have no padding rows).
    static func multiply<PA: GEMMPackA>(a: PA, k: Int, m: Int, panels: Int, offsets: [Int],
                                        window: (Int) -> Int, c: UnsafeMutablePointer<Float>, ldc: Int,
                                        tileStart: (Int) -> Int, accumulate: Bool,
                                        phases: UnsafePointer<Float>) {
        let mr = GEMM.mr, rowPanels = GEMM.roundUp(m, mr) / mr
        let byColumns = splitsByColumns(panels: panels, m: m)
        offsets.withUnsafeBufferPointer { offsetsBuffer in
            Parallel.forEachChunk(count: byColumns ? panels : rowPanels) { share in
                multiplyShare(a: a, k: k, m: m, cols: byColumns ? share : 0..<panels,
                              rows: byColumns ? 0..<m : (share.lowerBound * mr)..<Swift.min(m, share.upperBound * mr),
                              offsets: offsetsBuffer.baseAddress!, window: window, c: c, ldc: ldc,
                              tileStart: tileStart, accumulate: accumulate, phases: phases)
            }
        }
    }

    /// One worker's share of `multiply`: rows `rows` (starting at a multiple of MR) x panels `cols`.
    static func multiplyShare<PA: GEMMPackA>(a: PA, k: Int, m: Int, cols: Range<Int>, rows: Range<Int>,
                                             offsets: UnsafePointer<Int>, window: (Int) -> Int,
                                             c: UnsafeMutablePointer<Float>, ldc: Int, tileStart: (Int) -> Int,
                                             accumulate: Bool, phases: UnsafePointer<Float>) {
        let mr = GEMM.mr, nr = GEMM.nr, kc = GEMM.kc, mc = GEMM.mc
        let kcMax = Swift.min(kc, k), mcMax = Swift.min(mc, GEMM.roundUp(rows.count, mr))
        let bufA = UnsafeMutablePointer<Float>.allocateAligned(kcMax * mcMax)
        let tile = UnsafeMutablePointer<Float>.allocateAligned(mr * nr)
        defer { bufA.deallocate(); tile.deallocate() }
        for pc in stride(from: 0, to: k, by: kc) {
            let kcur = Swift.min(kc, k - pc)
            let acc = accumulate || pc > 0
            for ic in stride(from: rows.lowerBound, to: rows.upperBound, by: mc) {
                let mcur = Swift.min(mc, rows.upperBound - ic)
                let aBlock = a.block(i0: ic, mc: mcur, k0: pc, kc: kcur, scratch: bufA)
                // One 32-column window panel (kcur rows of ~3 cache lines) against all MR
                // panels of the A block.
                for jp in cols {
                    let b = phases + window(jp), cp = c + tileStart(jp)
                    for ir in stride(from: 0, to: mcur, by: mr) {
                        let row = ic + ir
                        // Safe: this worker owns rows `rows` and panels `cols`; row shares
                        // start at multiples of MR, and only rows < m are stored.
                        microKernelWindows(kcur, aBlock + ir * kcur, b, offsets + pc, cp + row * ldc, ldc, acc,
                                           rows: Swift.min(mr, m - row), tile: tile)
                    }
                }
            }
        }
    }
}
