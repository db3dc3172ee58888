// MARK: - Micro-kernels: every GEMM-family inner loop, for every profile
//
// The micro-kernels are written once over `KernelVector`, one register of the vector
// unit the build targets; the profile (a compilation condition set by Package.swift from the
// target CPU) picks its width, and the micro-tile is MR = 6 rows x NR = 2 vectors:
//
//   profile   KernelVector     tile    accumulators   registers     why this shape
//   avx512    SIMD16<Float>    6x32    12 zmm         32 zmm        12 + 2 B + 1 broadcast of 32
//   avx2      SIMD8<Float>     6x16    12 ymm         16 ymm        12 + 2 B + 1 broadcast = 15 of 16
//   generic   SIMD4<Float>     6x8     12 xmm / q     16 xmm (SSE2), 32 q (NEON)   same count
//
// Every output element is the same chain of multiply-adds in K order whatever the width, so a
// profile changes speed, not results (except `generic` on x86-64: SSE2 has no fused multiply-add,
// so there the kernels multiply and add separately; see `multiplyAdd`).
//
// The kernels (all `@inline(never)`: inlined into the blocked loops their 12-14 accumulators
// stopped fitting the register allocator's plan, 17 against 96 GFLOPS/core measured on Zen 4):
//   GEMM.microKernel              MR x NR tile, packed A and B panels (GEMM, conv weight gradient)
//   GEMM.microKernel2Rows         its first 1-2 rows (a last row panel of 1-2 rows)
//   WindowConv.windowKernel       MR x NR, B rows read in place at offsets (window path, dw in place)
//   WindowConv.windowKernel2Rows / windowKernel4Rows   its first rows (64, 128, 256 channels leave 4 or 2)
//   PixelWindowConv.microKernel7Rows   7 x NR, A read from the padded image (pixel-window path)
// Each edge kernel computes, per element, the same FMA sequence as its full tile (tested bit-equal),
// so which kernel ran never changes a result.

#if EP_PROFILE_AVX512
/// One vector register of the target's vector unit (see the table above).
public typealias KernelVector = SIMD16<Float>
#elseif EP_PROFILE_AVX2
public typealias KernelVector = SIMD8<Float>
#else
public typealias KernelVector = SIMD4<Float>
#endif

/// `acc += a * b`, fused where the target CPU has FMA. x86-64's baseline (SSE2) has none: there
/// `addProduct` would become a libm call per lane, so the generic profile multiplies, then adds.
@inline(__always)
func multiplyAdd(_ acc: inout KernelVector, _ a: KernelVector, _ b: KernelVector) {
    #if arch(x86_64) && EP_PROFILE_GENERIC
    acc = acc + a * b
    #else
    acc.addProduct(a, b)
    #endif
}

// MARK: GEMM

extension GEMM {
    /// Writes (or adds into) the NR floats of one tile row at `p`: the tail shared by the micro-kernels.
    @inline(__always)
    static func storeTileRow(_ p: UnsafeMutableRawPointer, _ v0: KernelVector, _ v1: KernelVector, accumulate: Bool) {
        typealias V = KernelVector
        let second = MemoryLayout<V>.size
        if accumulate {
            p.storeBytes(of: p.loadUnaligned(as: V.self) + v0, as: V.self)
            p.storeBytes(of: p.loadUnaligned(fromByteOffset: second, as: V.self) + v1, toByteOffset: second, as: V.self)
        } else {
            p.storeBytes(of: v0, as: V.self)
            p.storeBytes(of: v1, toByteOffset: second, as: V.self)
        }
    }

    /// C[6,NR] (+)= Apanel[kc][6] · Bpanel[kc][NR]. `a` holds 6 values per k, `b` NR values per k
    /// (64-byte aligned). 12 `KernelVector` accumulators; with AVX-512 `multiplyAdd` lowers to
    /// `vfmadd231ps zmm`, with AVX2 to `vfmadd231ps ymm`. Kept out of line: see the header comment.
    @inline(never)
    public static func microKernel(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = bp.load(as: V.self)
            let b1 = bp.load(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: ap[0]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: ap[1]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            av = V(repeating: ap[2]); multiplyAdd(&c20, av, b0); multiplyAdd(&c21, av, b1)
            av = V(repeating: ap[3]); multiplyAdd(&c30, av, b0); multiplyAdd(&c31, av, b1)
            av = V(repeating: ap[4]); multiplyAdd(&c40, av, b0); multiplyAdd(&c41, av, b1)
            av = V(repeating: ap[5]); multiplyAdd(&c50, av, b0); multiplyAdd(&c51, av, b1)
            ap += 6
            bp += 2 * MemoryLayout<V>.size
        }
        let cr = UnsafeMutableRawPointer(c)
        let rs = ldc * 4
        @inline(__always) func put(_ row: Int, _ v0: V, _ v1: V) {
            GEMM.storeTileRow(cr + row * rs, v0, v1, accumulate: accumulate)
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21)
        put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
    }

    /// C[rows,NR] (+)= Apanel[kc][6] · Bpanel[kc][NR] for the first `rows` (1 or 2) rows of an MR
    /// panel: the edge of a product whose row count leaves 1-2 rows in its last panel. Per element
    /// the same FMA order as `microKernel`, so results do not depend on which kernel ran.
    @inline(never)
    public static func microKernel2Rows(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool, rows: Int) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V()
        var ap = a
        var bp = UnsafeRawPointer(b)
        for _ in 0..<kc {
            let b0 = bp.load(as: V.self)
            let b1 = bp.load(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: ap[0]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: ap[1]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            ap += 6
            bp += 2 * MemoryLayout<V>.size
        }
        let cr = UnsafeMutableRawPointer(c)
        @inline(__always) func put(_ row: Int, _ v0: V, _ v1: V) {
            GEMM.storeTileRow(cr + row * ldc * 4, v0, v1, accumulate: accumulate)
        }
        put(0, c00, c01)
        if rows > 1 { put(1, c10, c11) }
    }
}

// MARK: Window path

extension WindowConv {
    /// C[6,NR] (+)= Apanel[kc][6] · B, where B's row p is the NR floats at `b + offsets[p]`
    /// (unaligned). Same FMA order as `GEMM.microKernel`; kept out of line for the same reason.
    @inline(never)
    public static func windowKernel(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                       _ offsets: UnsafePointer<Int>,
                                       _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V()
        var c30 = V(), c31 = V(), c40 = V(), c41 = V(), c50 = V(), c51 = V()
        var ap = a
        let base = UnsafeRawPointer(b)
        for p in 0..<kc {
            let bp = base + offsets[p] &* 4
            let b0 = bp.loadUnaligned(as: V.self)
            let b1 = bp.loadUnaligned(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: ap[0]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: ap[1]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            av = V(repeating: ap[2]); multiplyAdd(&c20, av, b0); multiplyAdd(&c21, av, b1)
            av = V(repeating: ap[3]); multiplyAdd(&c30, av, b0); multiplyAdd(&c31, av, b1)
            av = V(repeating: ap[4]); multiplyAdd(&c40, av, b0); multiplyAdd(&c41, av, b1)
            av = V(repeating: ap[5]); multiplyAdd(&c50, av, b0); multiplyAdd(&c51, av, b1)
            ap += 6
        }
        let cr = UnsafeMutableRawPointer(c)
        let rs = ldc * 4
        @inline(__always) func put(_ row: Int, _ v0: V, _ v1: V) {
            GEMM.storeTileRow(cr + row * rs, v0, v1, accumulate: accumulate)
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21)
        put(3, c30, c31); put(4, c40, c41); put(5, c50, c51)
    }

    /// C[rows, 32] (+)= Apanel[kc][6] · window B for the first `rows` (1...6) rows of an MR panel,
    /// storing only those rows. A last panel with fewer live rows takes an edge kernel (128
    /// channels = 21 panels + 2 rows: a full tile wasted 3% of the layer); 5 rows go through the
    /// 6-row kernel into `tile` (MR x NR floats) and are copied.
    @inline(__always)
    static func microKernelWindows(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                   _ offsets: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
                                   _ accumulate: Bool, rows: Int, tile: UnsafeMutablePointer<Float>) {
        let mr = GEMM.mr, nr = GEMM.nr
        if rows == mr {
            windowKernel(kc, a, b, offsets, c, ldc, accumulate)
        } else if rows <= 2 {
            windowKernel2Rows(kc, a, b, offsets, c, ldc, accumulate, rows: rows)
        } else if rows <= 4 {
            windowKernel4Rows(kc, a, b, offsets, c, ldc, accumulate, rows: rows)
        } else {
            windowKernel(kc, a, b, offsets, tile, nr, false)
            for i in 0..<rows {
                let crow = c + i * ldc, trow = tile + i * nr
                if accumulate { for j in 0..<nr { crow[j] += trow[j] } }
                else { for j in 0..<nr { crow[j] = trow[j] } }
            }
        }
    }

    /// C[rows, 32] (+)= Apanel[kc][6] · window B for the first `rows` (1 or 2) rows of an MR panel.
    /// Per element the same FMA order as `windowKernel` (tested bit-equal).
    @inline(never)
    public static func windowKernel2Rows(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                              _ offsets: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float>,
                                              _ ldc: Int, _ accumulate: Bool, rows: Int) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V()
        var ap = a
        let base = UnsafeRawPointer(b)
        for p in 0..<kc {
            let bp = base + offsets[p] &* 4
            let b0 = bp.loadUnaligned(as: V.self)
            let b1 = bp.loadUnaligned(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: ap[0]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: ap[1]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            ap += 6
        }
        let cr = UnsafeMutableRawPointer(c)
        GEMM.storeTileRow(cr, c00, c01, accumulate: accumulate)
        if rows > 1 { GEMM.storeTileRow(cr + ldc * 4, c10, c11, accumulate: accumulate) }
    }

    /// C[rows, 32] (+)= Apanel[kc][6] · window B for the first `rows` (3 or 4) rows of an MR panel
    /// (64 or 256 channels leave 4). Same FMA order per element as `windowKernel`.
    @inline(never)
    public static func windowKernel4Rows(_ kc: Int, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                                              _ offsets: UnsafePointer<Int>, _ c: UnsafeMutablePointer<Float>,
                                              _ ldc: Int, _ accumulate: Bool, rows: Int) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var ap = a
        let base = UnsafeRawPointer(b)
        for p in 0..<kc {
            let bp = base + offsets[p] &* 4
            let b0 = bp.loadUnaligned(as: V.self)
            let b1 = bp.loadUnaligned(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: ap[0]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: ap[1]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            av = V(repeating: ap[2]); multiplyAdd(&c20, av, b0); multiplyAdd(&c21, av, b1)
            av = V(repeating: ap[3]); multiplyAdd(&c30, av, b0); multiplyAdd(&c31, av, b1)
            ap += 6
        }
        let cr = UnsafeMutableRawPointer(c), rs = ldc * 4
        GEMM.storeTileRow(cr, c00, c01, accumulate: accumulate)
        GEMM.storeTileRow(cr + rs, c10, c11, accumulate: accumulate)
        GEMM.storeTileRow(cr + 2 * rs, c20, c21, accumulate: accumulate)
        if rows > 3 { GEMM.storeTileRow(cr + 3 * rs, c30, c31, accumulate: accumulate) }
    }
}

// MARK: Pixel-window path

extension PixelWindowConv {
    /// C[7,NR] (+)= A · Bpanel[kc][NR] with A[r, p] = `x[pixels[r] + offsets[p]]` (7 image windows
    /// instead of a packed panel) and B 64-byte aligned: 14 accumulators (AVX-512: of 32 zmm; AVX2:
    /// of 16 ymm, B read as FMA memory operands). 7 rows because 14x14 and 7x7 maps have 28*7 and
    /// 7*7 pixels (no padding rows). Same FMA order per element as `GEMM.microKernel`; kept out of
    /// line for the same reason.
    @inline(never)
    static func microKernel7Rows(_ kc: Int, _ x: UnsafePointer<Float>, _ pixels: UnsafePointer<Int>,
                                _ offsets: UnsafePointer<Int>, _ b: UnsafePointer<Float>,
                                _ c: UnsafeMutablePointer<Float>, _ ldc: Int, _ accumulate: Bool) {
        typealias V = KernelVector
        var c00 = V(), c01 = V(), c10 = V(), c11 = V(), c20 = V(), c21 = V(), c30 = V(), c31 = V()
        var c40 = V(), c41 = V(), c50 = V(), c51 = V(), c60 = V(), c61 = V()
        let x0 = x + pixels[0], x1 = x + pixels[1], x2 = x + pixels[2], x3 = x + pixels[3]
        let x4 = x + pixels[4], x5 = x + pixels[5], x6 = x + pixels[6]
        var bp = UnsafeRawPointer(b)
        for p in 0..<kc {
            let o = offsets[p]
            let b0 = bp.load(as: V.self)
            let b1 = bp.load(fromByteOffset: MemoryLayout<V>.size, as: V.self)
            var av = V(repeating: x0[o]); multiplyAdd(&c00, av, b0); multiplyAdd(&c01, av, b1)
            av = V(repeating: x1[o]); multiplyAdd(&c10, av, b0); multiplyAdd(&c11, av, b1)
            av = V(repeating: x2[o]); multiplyAdd(&c20, av, b0); multiplyAdd(&c21, av, b1)
            av = V(repeating: x3[o]); multiplyAdd(&c30, av, b0); multiplyAdd(&c31, av, b1)
            av = V(repeating: x4[o]); multiplyAdd(&c40, av, b0); multiplyAdd(&c41, av, b1)
            av = V(repeating: x5[o]); multiplyAdd(&c50, av, b0); multiplyAdd(&c51, av, b1)
            av = V(repeating: x6[o]); multiplyAdd(&c60, av, b0); multiplyAdd(&c61, av, b1)
            bp += 2 * MemoryLayout<V>.size
        }
        let cr = UnsafeMutableRawPointer(c)
        let rs = ldc * 4
        @inline(__always) func put(_ row: Int, _ v0: V, _ v1: V) {
            GEMM.storeTileRow(cr + row * rs, v0, v1, accumulate: accumulate)
        }
        put(0, c00, c01); put(1, c10, c11); put(2, c20, c21); put(3, c30, c31)
        put(4, c40, c41); put(5, c50, c51); put(6, c60, c61)
    }
}
