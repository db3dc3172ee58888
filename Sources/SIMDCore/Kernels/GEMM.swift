// MARK: - GEMM
//
// C[M,N] = op(A)[M,K] · op(B)[K,N]  (+ C when accumulating), single precision, row-major.
//
// Goto/BLIS structure:
//   for jc in N by NC:            B block  (KC x NC) packed into NR-wide panels   (L2/L3)
//     for pc in K by KC:
//       for ic in M by MC:        A block  (MC x KC) packed into MR-tall panels   (L2)
//         for jr in NC by NR:     one B micro-panel (KC x NR) stays in L1
//           for ir in MC by MR:   micro-kernel: MR x NR tile of C in 12 vector accumulators
//
// MR = 6 rows by NR = two `KernelVector`s: 6x32 with AVX-512, 6x16 with AVX2, 6x8 generic; the
// micro-kernels of every path live in MicroKernels.swift (which says why each tile fits its
// register file).
//
// The micro-kernel is a separate `@inline(never)` function on purpose: measured on Zen 4, the same
// 6x32 loop ran at ~96 GFLOPS/core as its own function and at 17 GFLOPS when inlined into the outer
// loops (register allocation of the 12 accumulators breaks down in the big inlined body).
//
// Packing is pluggable (`GEMMPackA`, `GEMMPackB`, generic and specialised), so a convolution can pack
// B straight from the image (implicit im2col, Conv2D.swift) without materialising the column matrix.
//
// Threads: `Parallel.forEachChunk` over a static partition of C (NR-column panels, or MR-row blocks
// when N is small). Each C element is produced by exactly one worker, always as
// `C = (C? + acc[k 0..<KC]) + acc[k KC..<2KC] + ...` with the same FMA order, so results are
// bit-identical for any thread count.

/// Row-major single-precision matrix multiply.
///
/// ```swift
/// // C[m,n] = A[m,k] · B[n,k]^T
/// GEMM.multiply(m: m, n: n, k: k, a: a, lda: k, b: b, ldb: k, transposeB: true, c: c, ldc: n)
/// ```
public enum GEMM {
    /// Micro-tile rows (broadcast A values per k).
    public static let mr = 6
    /// Micro-tile columns: two `KernelVector`s per k (32 with AVX-512, 16 with AVX2, 8 generic).
    public static let nr = 2 * KernelVector.scalarCount
    /// Depth of a packed block: the B micro-panel (KC x NR x 4 B = 32 KB) lives in L1/L2.
    public static let kc = 256
    /// Rows of a packed A block (multiple of `mr`): 192 x 256 x 4 B = 192 KB in L2.
    public static let mc = 192
    /// Columns of a packed B block (multiple of `nr`): 256 x 1024 x 4 B = 1 MB (L2/L3).
    public static let nc = 1024

    // MARK: Public entry points

    /// `C = op(A)·op(B)` (or `C += ...` when `accumulate`). `op(A)` is M x K: A is stored [M, lda]
    /// or, transposed, [K, lda]. `op(B)` is K x N: B is stored [K, ldb] or, transposed, [N, ldb].
    public static func multiply(m: Int, n: Int, k: Int,
                                a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                                b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        if m == 1 && k > 0 && n > 0 {
            // One row (batch-1 linear layers): memory-bound, packing B would double the traffic.
            gemv(n: n, k: k, x: a, incx: transposeA ? lda : 1, b: b, ldb: ldb, transposeB: transposeB,
                 y: c, accumulate: accumulate)
            return
        }
        run(m: m, n: n, k: k,
            a: MatrixPackA(base: a, ld: lda, transposed: transposeA),
            b: MatrixPackB(base: b, ld: ldb, transposed: transposeB),
            c: c, ldc: ldc, accumulate: accumulate)
    }

    /// Tensor convenience: `op(a) · op(b)` for rank-2 tensors.
    public static func matmul(_ a: Tensor, _ b: Tensor, transposeA: Bool = false, transposeB: Bool = false) throws -> Tensor {
        guard a.rank == 2, b.rank == 2 else {
            throw EngineError.shapeMismatch("matmul", a.shape, b.shape, expected: "two rank-2 matrices")
        }
        let m = transposeA ? a.shape[1] : a.shape[0], ka = transposeA ? a.shape[0] : a.shape[1]
        let kb = transposeB ? b.shape[1] : b.shape[0], n = transposeB ? b.shape[0] : b.shape[1]
        guard ka == kb else {
            throw EngineError.shapeMismatch("matmul", a.shape, b.shape,
                                            expected: "inner dimensions to agree (\(ka) vs \(kb))")
        }
        var c = Tensor(zeros: [m, n])
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                c.withUnsafeMutableBufferPointer { cp in
                    multiply(m: m, n: n, k: ka, a: ap.baseAddress!, lda: a.shape[1], transposeA: transposeA,
                             b: bp.baseAddress!, ldb: b.shape[1], transposeB: transposeB,
                             c: cp.baseAddress!, ldc: n)
                }
            }
        }
        return c
    }

    /// Naive triple loop (Float accumulation in K order): the reference for tests.
    public static func reference(m: Int, n: Int, k: Int,
                                 a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
                                 b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
                                 c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool = false) {
        for i in 0..<m {
            for j in 0..<n {
                var s: Float = 0
                for p in 0..<k {
                    let av = transposeA ? a[p * lda + i] : a[i * lda + p]
                    let bv = transposeB ? b[j * ldb + p] : b[p * ldb + j]
                    s += av * bv
                }
                c[i * ldc + j] = accumulate ? c[i * ldc + j] + s : s
            }
        }
    }

    // MARK: Single row

    /// y[1,N] (+)= x[1,K] · op(B). With B^T ([N, ldb]) each y[j] is a dot product of contiguous
    /// rows; otherwise y += x[p] · B[p, :] row by row. Workers own disjoint ranges of j and every
    /// y[j] is summed in the same order, so the result does not depend on the thread count.
    static func gemv(n: Int, k: Int, x: UnsafePointer<Float>, incx: Int, b: UnsafePointer<Float>, ldb: Int,
                     transposeB: Bool, y: UnsafeMutablePointer<Float>, accumulate: Bool) {
        typealias V = KernelVector
        let w = V.scalarCount
        let xs = UnsafeMutablePointer<Float>.allocate(capacity: k)   // contiguous copy of x
        defer { xs.deallocate() }
        for p in 0..<k { xs[p] = x[p * incx] }
        if transposeB {
            Parallel.forEachChunk(count: n, minChunk: 16) { js in
                for j in js {
                    // Safe: y[j] is written only by the worker owning j.
                    let row = UnsafeRawPointer(b + j * ldb), xr = UnsafeRawPointer(xs)
                    var acc0 = V(), acc1 = V()
                    var p = 0
                    while p + 2 * w <= k {
                        multiplyAdd(&acc0, row.loadUnaligned(fromByteOffset: p * 4, as: V.self), xr.loadUnaligned(fromByteOffset: p * 4, as: V.self))
                        multiplyAdd(&acc1, row.loadUnaligned(fromByteOffset: (p + w) * 4, as: V.self), xr.loadUnaligned(fromByteOffset: (p + w) * 4, as: V.self))
                        p += 2 * w
                    }
                    var s = (acc0 + acc1).sum()
                    while p < k { s += b[j * ldb + p] * xs[p]; p += 1 }
                    y[j] = accumulate ? y[j] + s : s
                }
            }
        } else {
            Parallel.forEachChunk(count: (n + 15) / 16, minChunk: 4) { blocks in
                // Safe: this worker owns y[j] for j in its 16-wide blocks (16: a multiple of every
                // profile's vector width).
                let j0 = blocks.lowerBound * 16, j1 = Swift.min(n, blocks.upperBound * 16)
                if !accumulate { (y + j0).update(repeating: 0, count: j1 - j0) }
                for p in 0..<k {
                    let xv = xs[p], row = b + p * ldb
                    var j = j0
                    while j + w <= j1 {
                        let yr = UnsafeMutableRawPointer(y + j)
                        var v = yr.loadUnaligned(as: V.self)
                        multiplyAdd(&v, V(repeating: xv), UnsafeRawPointer(row + j).loadUnaligned(as: V.self))
                        yr.storeBytes(of: v, as: V.self)
                        j += w
                    }
                    while j < j1 { y[j] += xv * row[j]; j += 1 }
                }
            }
        }
    }

    // MARK: Driver

    /// Generic driver over packers; `a` yields op(A) blocks, `b` yields op(B) blocks.
    static func run<PA: GEMMPackA, PB: GEMMPackB>(m: Int, n: Int, k: Int, a: PA, b: PB,
                                                  c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool) {
        guard m > 0, n > 0 else { return }
        if k == 0 {
            if !accumulate {
                for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
            }
            return
        }
        // Small N (e.g. 7x7 feature maps, N = 49): padding N to NR-wide panels wastes up to a third of
        // the FMAs, padding M to 6 rows almost nothing. Then compute C^T = op(B)^T · op(A)^T (same
        // per-element FMA order) and store the tiles transposed. Only when the saving is large: the
        // transposed packers are slower (14x14 maps, 14% padding, measured no better). Depends on the
        // shape only, never on the thread count.
        if prefersTransposedProduct(m: m, n: n, k: k) {
            let a2 = SwappedA(b: b), b2 = SwappedB(a: a)
            if Parallel.threadCount > 1 && splitsByColumns(m: n, n: m)
                && a2.prepacked(i0: 0, k0: 0, kc: Swift.min(kc, k)) == nil {
                // Every worker would pack all of op(B)^T (e.g. the column matrix of a 14x14 map,
                // 2304 x 196): pack it once, all workers sharing the packing, then share the panels.
                let shared = PackedPanels(m: n, k: k, asB: false, packer: a2)
                withExtendedLifetime(shared) {
                    partitioned(m: n, n: m, k: k, a: PrepackedA(fallback: a2, panels: shared), b: b2, c: c, ldc: ldc,
                                accumulate: accumulate, transposeC: true)
                }
            } else {
                partitioned(m: n, n: m, k: k, a: a2, b: b2, c: c, ldc: ldc, accumulate: accumulate, transposeC: true)
            }
        } else {
            partitioned(m: m, n: n, k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, transposeC: false)
        }
    }

    /// True when `run` computes C^T = op(B)^T · op(A)^T for this shape (then op(A) is packed as
    /// NR-column B panels). A pure function of the shape. Deep K (more than one KC block) amortises
    /// the transposed store (C^T is stored once after all K blocks), so a smaller padding saving
    /// already pays: 14x14 maps (N = 196 -> 224) with K = 2304 measured 7-10% faster on one core;
    /// with K <= KC (e.g. the input gradient's K = 256) it measured slower.
    public static func prefersTransposedProduct(m: Int, n: Int, k: Int = 0) -> Bool {
        m >= 4 * mr && Double(roundUp(n, nr)) / Double(n) > Double(roundUp(m, mr)) / Double(m) + (k > kc ? 0.1 : 0.2)
    }

    /// Split C by columns when there are enough panels (each worker packs its own B columns and
    /// all of the usually small A); otherwise by rows (e.g. 7x7 feature maps: N = 49).
    static func splitsByColumns(m: Int, n: Int) -> Bool {
        let panelsN = (n + nr - 1) / nr, panelsM = (m + mr - 1) / mr
        return panelsN >= 4 * Parallel.threadCount || panelsN >= panelsM
    }

    /// Splits C statically over the workers; each runs `block` on its share.
    static func partitioned<PA: GEMMPackA, PB: GEMMPackB>(m: Int, n: Int, k: Int, a: PA, b: PB,
                                                          c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                                          transposeC: Bool) {
        let panelsN = (n + nr - 1) / nr, panelsM = (m + mr - 1) / mr
        if splitsByColumns(m: m, n: n) {
            Parallel.forEachChunk(count: panelsN) { r in
                block(rows: 0..<m, cols: (r.lowerBound * nr)..<Swift.min(n, r.upperBound * nr),
                      k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, transposeC: transposeC)
            }
        } else {
            Parallel.forEachChunk(count: panelsM) { r in
                block(rows: (r.lowerBound * mr)..<Swift.min(m, r.upperBound * mr), cols: 0..<n,
                      k: k, a: a, b: b, c: c, ldc: ldc, accumulate: accumulate, transposeC: transposeC)
            }
        }
    }

    /// One worker's share: C[rows, cols], single-threaded.
    static func block<PA: GEMMPackA, PB: GEMMPackB>(rows: Range<Int>, cols: Range<Int>, k: Int, a: PA, b: PB,
                                                    c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
                                                    transposeC: Bool) {
        let kcMax = Swift.min(kc, k)
        let ncMax = Swift.min(nc, roundUp(cols.count, nr)), mcMax = Swift.min(mc, roundUp(rows.count, mr))
        let bufB = UnsafeMutablePointer<Float>.allocateAligned(kcMax * ncMax)
        let bufA = UnsafeMutablePointer<Float>.allocateAligned(kcMax * mcMax)
        let tile = UnsafeMutablePointer<Float>.allocateAligned(mr * nr)
        // Transposed product: C^T accumulates in a worker-local row-major scratch (full MR x NR tiles,
        // vector read-add-writes) over all K blocks and is scattered into C once per column block,
        // instead of a scalar transposed read-add-write per K block. Same FMA/add order per element.
        let ldS = ncMax
        let scratchCount = transposeC ? roundUp(rows.count, mr) * ldS : 0
        let scratch = UnsafeMutablePointer<Float>.allocateAligned(scratchCount)
        defer { bufB.deallocate(); bufA.deallocate(); tile.deallocate(); scratch.deallocate() }

        for jc in stride(from: cols.lowerBound, to: cols.upperBound, by: nc) {
            let ncur = Swift.min(nc, cols.upperBound - jc)
            if transposeC && accumulate {
                for i in 0..<rows.count {
                    let srow = scratch + i * ldS, ccol = c + jc * ldc + rows.lowerBound + i
                    for j in 0..<ncur { srow[j] = ccol[j * ldc] }
                }
            }
            for pc in stride(from: 0, to: k, by: kc) {
                let kcur = Swift.min(kc, k - pc)
                // Pre-packed panels (constant weights, PackedWeightCache) hold exactly what `pack`
                // would write, so using them changes no result.
                let bBlock: UnsafePointer<Float>
                if let p = b.prepacked(k0: pc, kc: kcur, j0: jc) { bBlock = p } else {
                    b.pack(into: bufB, k0: pc, kc: kcur, j0: jc, nc: ncur)
                    bBlock = UnsafePointer(bufB)
                }
                let acc = accumulate || pc > 0
                for ic in stride(from: rows.lowerBound, to: rows.upperBound, by: mc) {
                    let mcur = Swift.min(mc, rows.upperBound - ic)
                    let aBlock = a.block(i0: ic, mc: mcur, k0: pc, kc: kcur, scratch: bufA)
                    for jr in stride(from: 0, to: ncur, by: nr) {
                        let nw = Swift.min(nr, ncur - jr)
                        let bp = bBlock + jr * kcur
                        for ir in stride(from: 0, to: mcur, by: mr) {
                            let mh = Swift.min(mr, mcur - ir)
                            let ap = aBlock + ir * kcur
                            if transposeC {
                                // Safe: this worker owns rows `rows` and columns `cols` of the
                                // (logical) product, i.e. these transposed C positions.
                                let sp = scratch + (ic - rows.lowerBound + ir) * ldS + jr
                                // A last panel of one or two rows (7x7 maps: 49 = 8*6 + 1 pixels)
                                // takes the 2-row kernel: a full 6-row tile would waste 5/6 of it.
                                if mh <= 2 { microKernel2Rows(kcur, ap, bp, sp, ldS, acc, rows: mh) }
                                else { microKernel(kcur, ap, bp, sp, ldS, acc) }
                                continue
                            }
                            let cp = c + (ic + ir) * ldc + jc + jr
                            if mh == mr && nw == nr {
                                microKernel(kcur, ap, bp, cp, ldc, acc)
                            } else {
                                // Edge tile: same kernel (same FMA order per element) into a scratch
                                // tile, then only the valid mh x nw part is merged into C.
                                microKernel(kcur, ap, bp, tile, nr, false)
                                for i in 0..<mh {
                                    let crow = cp + i * ldc, trow = tile + i * nr
                                    if acc { for j in 0..<nw { crow[j] += trow[j] } }
                                    else { for j in 0..<nw { crow[j] = trow[j] } }
                                }
                            }
                        }
                    }
                }
            }
            if transposeC {
                for i in 0..<rows.count {
                    let srow = scratch + i * ldS, ccol = c + jc * ldc + rows.lowerBound + i
                    for j in 0..<ncur { ccol[j * ldc] = srow[j] }
                }
            }
        }
    }

    @inline(__always) static func roundUp(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }
}

// MARK: - Packers

/// Packs an MC x KC block of op(A) into MR-row panels: panel t at `dst + t*MR*kc`, element
/// (r, p) at `[p*MR + r]`; rows past `mc` are zero.
protocol GEMMPackA {
    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int)
    /// Packs depth k0..<k0+kc, columns i0..<i0+nc of op(A)^T (i.e. rows of op(A)) as NR-column panels.
    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int)
    /// Already packed MR panels from row i0 (a multiple of MR), depth block k0 (a multiple of KC),
    /// laid out as `pack` writes them; nil = call `pack`.
    func prepacked(i0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>?
    /// Already packed NR panels of op(A)^T from column i0 (a multiple of NR); nil = pack.
    func prepackedTransposedAsB(k0: Int, kc: Int, i0: Int) -> UnsafePointer<Float>?
}

extension GEMMPackA {
    /// The MR panels of block (i0 ..< i0+mc, k0 ..< k0+kc): pre-packed ones when there are, else
    /// packed into `scratch`.
    @inline(__always)
    func block(i0: Int, mc: Int, k0: Int, kc: Int, scratch: UnsafeMutablePointer<Float>) -> UnsafePointer<Float> {
        if let p = prepacked(i0: i0, k0: k0, kc: kc) { return p }
        pack(into: scratch, i0: i0, mc: mc, k0: k0, kc: kc)
        return UnsafePointer(scratch)
    }

    func prepacked(i0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? { nil }
    func prepackedTransposedAsB(k0: Int, kc: Int, i0: Int) -> UnsafePointer<Float>? { nil }
}

/// Packs a KC x NC block of op(B) into NR-column panels: panel t at `dst + t*NR*kc`, element
/// (p, c) at `[p*NR + c]`; columns past `nc` are zero.
protocol GEMMPackB {
    func pack(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, j0: Int, nc: Int)
    /// Packs rows j0..<j0+mc of op(B)^T (i.e. columns of op(B)), depth k0..<k0+kc, as MR-row panels.
    func packTransposedAsA(into dst: UnsafeMutablePointer<Float>, j0: Int, mc: Int, k0: Int, kc: Int)
    /// Already packed NR panels (see `GEMMPackA.prepacked`); nil = call `pack`.
    func prepacked(k0: Int, kc: Int, j0: Int) -> UnsafePointer<Float>?
    func prepackedTransposedAsA(j0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>?
}

extension GEMMPackB {
    func prepacked(k0: Int, kc: Int, j0: Int) -> UnsafePointer<Float>? { nil }
    func prepackedTransposedAsA(j0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? { nil }
}

/// The transposed product C^T = op(B)^T · op(A)^T reuses the packers with their roles swapped.
struct SwappedA<PB: GEMMPackB>: GEMMPackA {
    let b: PB
    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int) {
        b.packTransposedAsA(into: dst, j0: i0, mc: mc, k0: k0, kc: kc)
    }
    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int) {
        b.pack(into: dst, k0: k0, kc: kc, j0: i0, nc: nc)
    }
    func prepacked(i0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? {
        b.prepackedTransposedAsA(j0: i0, k0: k0, kc: kc)
    }
    func prepackedTransposedAsB(k0: Int, kc: Int, i0: Int) -> UnsafePointer<Float>? {
        b.prepacked(k0: k0, kc: kc, j0: i0)
    }
}

struct SwappedB<PA: GEMMPackA>: GEMMPackB {
    let a: PA
    func pack(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, j0: Int, nc: Int) {
        a.packTransposedAsB(into: dst, k0: k0, kc: kc, i0: j0, nc: nc)
    }
    func packTransposedAsA(into dst: UnsafeMutablePointer<Float>, j0: Int, mc: Int, k0: Int, kc: Int) {
        a.pack(into: dst, i0: j0, mc: mc, k0: k0, kc: kc)
    }
    func prepacked(k0: Int, kc: Int, j0: Int) -> UnsafePointer<Float>? {
        a.prepackedTransposedAsB(k0: k0, kc: kc, i0: j0)
    }
    func prepackedTransposedAsA(j0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? {
        a.prepacked(i0: j0, k0: k0, kc: kc)
    }
}

/// op(A) from a strided matrix.
struct MatrixPackA: GEMMPackA {
    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int) {
        // op(A)^T[p, i] = op(A)[i, p]: the same storage read as a B matrix with the opposite flag.
        MatrixPackB(base: base, ld: ld, transposed: !transposed).pack(into: dst, k0: k0, kc: kc, j0: i0, nc: nc)
    }

    let base: UnsafePointer<Float>
    let ld: Int
    let transposed: Bool

    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int) {
        let mr = GEMM.mr
        for t in stride(from: 0, to: mc, by: mr) {
            let panel = dst + t * kc
            let rows = Swift.min(mr, mc - t)
            if transposed {
                // A stored [K, ld]: row p of the panel is contiguous in memory.
                if rows == mr {
                    // 6 contiguous floats per depth as a 4- and a 2-vector (the loop below
                    // became a memmove call per depth).
                    for p in 0..<kc {
                        let src = UnsafeRawPointer(base + (k0 + p) * ld + i0 + t), d = UnsafeMutableRawPointer(panel + p * mr)
                        d.storeBytes(of: src.loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
                        d.storeBytes(of: src.loadUnaligned(fromByteOffset: 16, as: SIMD2<Float>.self), toByteOffset: 16, as: SIMD2<Float>.self)
                    }
                    continue
                }
                for p in 0..<kc {
                    let src = base + (k0 + p) * ld + i0 + t, d = panel + p * mr
                    for r in 0..<rows { d[r] = src[r] }
                    for r in rows..<mr { d[r] = 0 }
                }
            } else {
                var p0 = 0
                while p0 + 16 <= kc {
                    // Blocked by 16 depths: one vector load per row, 16 x 24 B of panel written.
                    for r in 0..<rows {
                        let v = UnsafeRawPointer(base + (i0 + t + r) * ld + k0 + p0).loadUnaligned(as: SIMD16<Float>.self)
                        let d = panel + p0 * mr + r
                        for q in 0..<16 { d[q * mr] = v[q] }
                    }
                    p0 += 16
                }
                for r in 0..<rows {
                    let src = base + (i0 + t + r) * ld + k0
                    for p in p0..<kc { panel[p * mr + r] = src[p] }
                }
                for r in rows..<mr { for p in 0..<kc { panel[p * mr + r] = 0 } }
            }
        }
    }
}

/// op(B) from a strided matrix.
struct MatrixPackB: GEMMPackB {
    func packTransposedAsA(into dst: UnsafeMutablePointer<Float>, j0: Int, mc: Int, k0: Int, kc: Int) {
        MatrixPackA(base: base, ld: ld, transposed: !transposed).pack(into: dst, i0: j0, mc: mc, k0: k0, kc: kc)
    }

    let base: UnsafePointer<Float>
    let ld: Int
    let transposed: Bool

    func pack(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, j0: Int, nc: Int) {
        let nr = GEMM.nr
        for t in stride(from: 0, to: nc, by: nr) {
            let panel = dst + t * kc
            let w = Swift.min(nr, nc - t)
            if transposed {
                // B stored [N, ld]: column c of the panel is contiguous in memory.
                let src = base + (j0 + t) * ld + k0
                var p0 = 0
                while p0 + 16 <= kc {
                    // 16 depths of one column per vector load, scattered into 16 panel rows: the
                    // 16 x 128 B rows being written stay in L1 (column-at-a-time strided writes
                    // over the whole 32 KB panel measured ~2x slower for ResNet's layer-4 weights).
                    for cc in 0..<w {
                        let v = UnsafeRawPointer(src + cc * ld + p0).loadUnaligned(as: SIMD16<Float>.self)
                        let d = panel + p0 * nr + cc
                        for q in 0..<16 { d[q * nr] = v[q] }
                    }
                    p0 += 16
                }
                if p0 < kc {
                    for cc in 0..<w {
                        let s = src + cc * ld
                        for p in p0..<kc { panel[p * nr + cc] = s[p] }
                    }
                }
                if w < nr { for p in 0..<kc { (panel + p * nr + w).update(repeating: 0, count: nr - w) } }
            } else if w == nr {
                typealias V = KernelVector
                let second = MemoryLayout<V>.size
                for p in 0..<kc {
                    let src = UnsafeRawPointer(base + (k0 + p) * ld + j0 + t)
                    let d = UnsafeMutableRawPointer(panel + p * nr)
                    d.storeBytes(of: src.loadUnaligned(as: V.self), as: V.self)
                    d.storeBytes(of: src.loadUnaligned(fromByteOffset: second, as: V.self), toByteOffset: second, as: V.self)
                }
            } else {
                for p in 0..<kc {
                    let src = base + (k0 + p) * ld + j0 + t, d = panel + p * nr
                    for cc in 0..<w { d[cc] = src[cc] }
                    for cc in w..<nr { d[cc] = 0 }
                }
            }
        }
    }
}

// MARK: - Packed panels

/// One matrix op(A) [M, K] packed whole, every KC block: MR panels of its rows, or (`asB`) NR
/// panels of its transpose for the transposed product. Block pc starts at `pc * paddedRows`, the
/// panel of row i0 at `i0 * kcur` inside it: exactly what `pack` / `packTransposedAsB` would write
/// for that block, so a GEMM served from these panels gives the same bits. All workers pack
/// together. Used for constant weights (`PackedWeightCache`) and, in `run`, for an operand every
/// worker would otherwise pack in full.
final class PackedPanels {
    let m: Int, k: Int, asB: Bool
    let paddedRows: Int
    let base: UnsafeMutablePointer<Float>
    var byteCount: Int { paddedRows * k * 4 }

    init<PA: GEMMPackA>(m: Int, k: Int, asB: Bool, packer: PA) {
        self.m = m; self.k = k; self.asB = asB
        let width = asB ? GEMM.nr : GEMM.mr
        paddedRows = GEMM.roundUp(m, width)
        base = UnsafeMutablePointer<Float>.allocateAligned(paddedRows * k)
        let blocks = (k + GEMM.kc - 1) / GEMM.kc, panels = paddedRows / width
        let (base, rows) = (base, paddedRows)
        // Work items: (depth block, panel), panel fastest; each worker packs a contiguous run.
        Parallel.forEachChunk(count: blocks * panels) { r in
            var item = r.lowerBound
            while item < r.upperBound {
                let blk = item / panels, p0 = item % panels
                let p1 = Swift.min(panels, p0 + (r.upperBound - item))
                let pc = blk * GEMM.kc, kcur = Swift.min(GEMM.kc, k - pc)
                let i0 = p0 * width, count = Swift.min(m, p1 * width) - i0
                // Safe: panels p0..<p1 of block blk are written only by this worker.
                let dst = base + pc * rows + i0 * kcur
                if asB { packer.packTransposedAsB(into: dst, k0: pc, kc: kcur, i0: i0, nc: count) }
                else { packer.pack(into: dst, i0: i0, mc: count, k0: pc, kc: kcur) }
                item += p1 - p0
            }
        }
    }

    deinit { base.deallocate() }
}

/// op(A) served from `PackedPanels` (falls back to `fallback` for the role it was not packed for).
struct PrepackedA<PA: GEMMPackA>: GEMMPackA {
    let fallback: PA
    let panels: PackedPanels

    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int) {
        fallback.pack(into: dst, i0: i0, mc: mc, k0: k0, kc: kc)
    }
    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int) {
        fallback.packTransposedAsB(into: dst, k0: k0, kc: kc, i0: i0, nc: nc)
    }
    func prepacked(i0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? {
        panels.asB ? nil : UnsafePointer(panels.base + k0 * panels.paddedRows + i0 * kc)
    }
    func prepackedTransposedAsB(k0: Int, kc: Int, i0: Int) -> UnsafePointer<Float>? {
        panels.asB ? UnsafePointer(panels.base + k0 * panels.paddedRows + i0 * kc) : nil
    }
}
