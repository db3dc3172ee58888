// MARK: - Convolution geometry, im2col and col2im
//
// The column matrix of one image x[Cin, H, W] for a kh x kw kernel is
//   col[k, j],  k = (ci*kh + ky)*kw + kx  (K = Cin*kh*kw rows),  j = oy*Wout + ox  (Hout*Wout columns),
//   col[k, j] = x[ci, oy*sh - ph + ky, ox*sw - pw + kx]   (0 outside the image).
// Forward conv is then Y[Cout, Hout*Wout] = W[Cout, K] · col. The forward pass never materialises
// col: `Im2ColPackB` writes GEMM's packed B panels straight from the image.

/// Shape of a 2-D convolution on one image (groups = 1).
public struct ConvGeometry: Equatable, Sendable {
    public let inChannels: Int, height: Int, width: Int
    public let outChannels: Int, kernelHeight: Int, kernelWidth: Int
    public let strideH: Int, strideW: Int, padH: Int, padW: Int
    public let outHeight: Int, outWidth: Int

    public init(inChannels: Int, height: Int, width: Int, outChannels: Int,
                kernelHeight: Int, kernelWidth: Int, strideH: Int, strideW: Int, padH: Int, padW: Int) {
        self.inChannels = inChannels; self.height = height; self.width = width
        self.outChannels = outChannels; self.kernelHeight = kernelHeight; self.kernelWidth = kernelWidth
        self.strideH = strideH; self.strideW = strideW; self.padH = padH; self.padW = padW
        outHeight = (height + 2 * padH - kernelHeight) / strideH + 1
        outWidth = (width + 2 * padW - kernelWidth) / strideW + 1
    }

    /// Rows of the column matrix: Cin*kh*kw.
    public var k: Int { inChannels * kernelHeight * kernelWidth }
    /// Output pixels per channel.
    public var outPixels: Int { outHeight * outWidth }
    public var inPixels: Int { height * width }
    /// Multiply-add count x2 for one image.
    public var flops: Double { 2 * Double(outChannels) * Double(k) * Double(outPixels) }
    /// 1x1, stride 1, no padding: the column matrix IS the image.
    var isPointwise: Bool {
        kernelHeight == 1 && kernelWidth == 1 && strideH == 1 && strideW == 1 && padH == 0 && padW == 0
    }
}

// MARK: Implicit im2col packer (forward)

/// Packs KC x NC blocks of `col` for GEMM directly from the image `x` (one image, [Cin, H, W]).
struct Im2ColPackB: GEMMPackB {
    let x: UnsafePointer<Float>
    let g: ConvGeometry

    func pack(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, j0: Int, nc: Int) {
        let nr = GEMM.nr
        let kh = g.kernelHeight, kw = g.kernelWidth, H = g.height, W = g.width
        let sw = g.strideW, wout = g.outWidth
        // Runs of panel columns that lie in one output row: (first column, count, iy0, ix0).
        let scratch = UnsafeMutablePointer<Int>.allocate(capacity: 4 * (nr + 1))
        defer { scratch.deallocate() }
        let runStart = scratch, runLen = scratch + (nr + 1), runIY = scratch + 2 * (nr + 1), runIX = scratch + 3 * (nr + 1)
        for t in stride(from: 0, to: nc, by: nr) {
            let panel = dst + t * kc
            let w = Swift.min(nr, nc - t)
            var runs = 0, cIdx = 0
            while cIdx < w {
                let j = j0 + t + cIdx
                let oy = j / wout, ox = j % wout
                let len = Swift.min(w - cIdx, wout - ox)
                runStart[runs] = cIdx; runLen[runs] = len
                runIY[runs] = oy * g.strideH - g.padH; runIX[runs] = ox * sw - g.padW
                runs += 1; cIdx += len
            }
            var ci = k0 / (kh * kw), rem = k0 % (kh * kw)
            var ky = rem / kw, kx = rem % kw
            for p in 0..<kc {
                let d = panel + p * nr
                let plane = x + ci * H * W
                for r in 0..<runs {
                    let dr = d + runStart[r], len = runLen[r]
                    let iy = runIY[r] + ky
                    if iy < 0 || iy >= H { for c in 0..<len { dr[c] = 0 }; continue }
                    let row = plane + iy * W
                    let ix0 = runIX[r] + kx
                    // Valid columns c satisfy 0 <= ix0 + c*sw < W (no division when sw == 1: this
                    // runs once per run and k row, and an integer divide costs as much as the copy).
                    let lo: Int, hi: Int
                    if sw == 1 {
                        lo = Swift.min(len, Swift.max(0, -ix0))
                        hi = Swift.max(lo, Swift.min(len, W - ix0))
                    } else {
                        lo = ix0 >= 0 ? 0 : Swift.min(len, (-ix0 + sw - 1) / sw)
                        hi = ix0 >= W ? lo : Swift.max(lo, Swift.min(len, (W - 1 - ix0) / sw + 1))
                    }
                    for c in 0..<lo { dr[c] = 0 }
                    if sw == 1 {
                        // Contiguous copy of hi-lo <= 32 floats (a memcpy call costs more). Tails
                        // use one overlapping vector ending at hi instead of a scalar loop: the
                        // overlap rewrites the same values.
                        Im2Col.copyRun(from: row + ix0, to: dr, lo, hi)
                    } else {
                        for c in lo..<hi { dr[c] = row[ix0 + c * sw] }
                    }
                    for c in hi..<len { dr[c] = 0 }
                }
                for c in w..<nr { d[c] = 0 }
                kx += 1
                if kx == kw { kx = 0; ky += 1; if ky == kh { ky = 0; ci += 1 } }
            }
        }
    }
}

extension Im2ColPackB {
    /// col^T as MR-row panels (small feature maps, where GEMM computes Y^T): panel t, element
    /// (r, p) = col[k0 + p, j0 + t + r], zero for pixels past `mc`.
    func packTransposedAsA(into dst: UnsafeMutablePointer<Float>, j0: Int, mc: Int, k0: Int, kc: Int) {
        let mr = GEMM.mr
        let kh = g.kernelHeight, kw = g.kernelWidth, H = g.height, W = g.width
        var iyBase = [Int](repeating: 0, count: mr), ixBase = iyBase
        for t in stride(from: 0, to: mc, by: mr) {
            let panel = dst + t * kc
            let rows = Swift.min(mr, mc - t)
            for r in 0..<mr {
                let j = j0 + t + Swift.min(r, rows - 1)
                iyBase[r] = (j / g.outWidth) * g.strideH - g.padH
                ixBase[r] = (j % g.outWidth) * g.strideW - g.padW
            }
            var ci = k0 / (kh * kw), rem = k0 % (kh * kw)
            var ky = rem / kw, kx = rem % kw
            for p in 0..<kc {
                let d = panel + p * mr, plane = x + ci * H * W
                for r in 0..<rows {
                    let iy = iyBase[r] + ky, ix = ixBase[r] + kx
                    d[r] = (iy >= 0 && iy < H && ix >= 0 && ix < W) ? plane[iy * W + ix] : 0
                }
                for r in rows..<mr { d[r] = 0 }
                kx += 1
                if kx == kw { kx = 0; ky += 1; if ky == kh { ky = 0; ci += 1 } }
            }
        }
    }
}

// MARK: Explicit im2col / col2im

enum Im2Col {
    /// dst[c] = src[c] for c in lo..<hi, vector loads/stores only (except runs of < 4).
    @inline(__always)
    static func copyRun(from src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, _ lo: Int, _ hi: Int) {
        @inline(__always) func move<V: SIMD>(_ c: Int, _: V.Type) where V.Scalar == Float {
            UnsafeMutableRawPointer(dst + c).storeBytes(of: UnsafeRawPointer(src + c).loadUnaligned(as: V.self), as: V.self)
        }
        let n = hi - lo
        if n >= 16 {
            var c = lo
            while c + 16 <= hi { move(c, SIMD16<Float>.self); c += 16 }
            if c < hi { move(hi - 16, SIMD16<Float>.self) }
        } else if n >= 8 {
            move(lo, SIMD8<Float>.self); move(hi - 8, SIMD8<Float>.self)
        } else if n >= 4 {
            move(lo, SIMD4<Float>.self); move(hi - 4, SIMD4<Float>.self)
        } else {
            for c in lo..<hi { dst[c] = src[c] }
        }
    }

    /// col[K, Hout*Wout] from one image x[Cin, H, W]; parallel over rows of col.
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, into col: UnsafeMutablePointer<Float>) {
        let kh = g.kernelHeight, kw = g.kernelWidth, H = g.height, W = g.width
        let hout = g.outHeight, wout = g.outWidth, np = g.outPixels
        Parallel.forEachChunk(count: g.k, minChunk: 4) { rows in
            for r in rows {
                // Safe: worker owns rows `rows` of col; each row r is written only here.
                let ci = r / (kh * kw), ky = (r / kw) % kh, kx = r % kw
                let dst = col + r * np, plane = x + ci * H * W
                // Valid output columns lo..<hi (0 <= ox*sw + ix0 < W) are the same for every
                // output row: no per-element bounds test (measured 10% of layer 4's forward).
                let sw = g.strideW, ix0 = kx - g.padW
                let lo = ix0 >= 0 ? 0 : Swift.min(wout, (-ix0 + sw - 1) / sw)
                let hi = ix0 >= W ? lo : Swift.max(lo, Swift.min(wout, (W - 1 - ix0) / sw + 1))
                for oy in 0..<hout {
                    let iy = oy * g.strideH - g.padH + ky
                    let d = dst + oy * wout
                    if iy < 0 || iy >= H { d.update(repeating: 0, count: wout); continue }
                    let row = plane + iy * W
                    for ox in 0..<lo { d[ox] = 0 }
                    if sw == 1 { copyRun(from: row + ix0, to: d, lo, hi) }
                    else { for ox in lo..<hi { d[ox] = row[ix0 + ox * sw] } }
                    for ox in hi..<wout { d[ox] = 0 }
                }
            }
        }
    }

    /// dx[Cin, H, W] = col2im(dcol[K, Hout*Wout]) (overwrites dx). Parallel over input channels: the
    /// kh*kw rows of channel ci scatter only into plane ci, in fixed (ky, kx, oy, ox) order.
    static func col2im(_ dcol: UnsafePointer<Float>, _ g: ConvGeometry, into dx: UnsafeMutablePointer<Float>) {
        let kh = g.kernelHeight, kw = g.kernelWidth, H = g.height, W = g.width
        let hout = g.outHeight, wout = g.outWidth, np = g.outPixels
        Parallel.forEachChunk(count: g.inChannels) { chans in
            for ci in chans {
                // Safe: plane ci is written only by the worker that owns channel ci.
                let plane = dx + ci * H * W
                plane.update(repeating: 0, count: H * W)
                for ky in 0..<kh {
                    for kx in 0..<kw {
                        let src = dcol + ((ci * kh + ky) * kw + kx) * np
                        for oy in 0..<hout {
                            let iy = oy * g.strideH - g.padH + ky
                            if iy < 0 || iy >= H { continue }
                            let row = plane + iy * W, s = src + oy * wout
                            for ox in 0..<wout {
                                let ix = ox * g.strideW - g.padW + kx
                                if ix >= 0 && ix < W { row[ix] += s[ox] }
                            }
                        }
                    }
                }
            }
        }
    }
}
