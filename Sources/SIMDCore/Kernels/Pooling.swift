// MARK: - Pooling kernels (NCHW)
//
// Max-pool, average pool, adaptive average pool and global average pool with PyTorch's exact
// window rules. Every kernel works plane by plane (one (n, c) image plane at a time); planes are
// split into static chunks by Parallel, so each worker owns whole planes of the output and of the
// input gradient, and every sum runs in the same order whatever the thread count.
//
// Window geometry (PyTorch `pooling_output_shape` and the CPU kernels):
//   out = floor_or_ceil((H + 2p - k) / s) + 1
//   ceil mode: drop the last window if it would start in the right padding or beyond,
//              i.e. if (out - 1) * s >= H + p
//   window (oh): hstart = oh*s - p, hend = min(hstart + k, H + p)  (average pool's divisor uses these)
//                then clipped to [0, H)                             (the elements actually read)
// Max-pool treats padding as -inf and takes the FIRST maximum in row-major window order (a NaN wins).

import Foundation

/// Shape of a 2-D pooling: input [N, C, H, W] -> output [N, C, outH, outW].
public struct PoolGeometry: Equatable, Sendable {
    public let n, c, h, w: Int
    public let kernel, stride, padding: Int
    public let ceilMode: Bool
    public let outH, outW: Int

    public init(input shape: [Int], kernel: Int, stride: Int, padding: Int, ceilMode: Bool) {
        n = shape[0]; c = shape[1]; h = shape[2]; w = shape[3]
        self.kernel = kernel; self.stride = stride; self.padding = padding; self.ceilMode = ceilMode
        outH = Pooling.outputSize(h, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        outW = Pooling.outputSize(w, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
    }

    public var outputShape: [Int] { [n, c, outH, outW] }
    var planes: Int { n * c }

    /// Rows (or columns) [start, end) of window `o`, before clipping (may reach into padding).
    @inline(__always) func window(_ o: Int, size: Int) -> (start: Int, end: Int) {
        let s = o * stride - padding
        return (s, Swift.min(s + kernel, size + padding))
    }
}

public enum Pooling {
    /// PyTorch's pooling output size (dilation 1).
    ///
    /// ```swift
    /// Pooling.outputSize(5, kernel: 2, stride: 2, padding: 1, ceilMode: true)   // 3, not 4
    /// ```
    public static func outputSize(_ size: Int, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) -> Int {
        let num = size + 2 * padding - kernel + (ceilMode ? stride - 1 : 0)
        var out = Int((Double(num) / Double(stride)).rounded(.down)) + 1
        if ceilMode && (out - 1) * stride >= size + padding { out -= 1 }
        return out
    }

    // MARK: Max-pool forward

    /// Hard max-pool. Returns the output and, per output element, the flat index (h*W + w) of the
    /// chosen element inside its input plane (the argmax used by the hard pullback).
    public static func maxPool2d(_ x: Tensor, _ g: PoolGeometry) -> (output: Tensor, argmax: [Int32]) {
        var y = Tensor.uninitialized(g.outputShape)   // every window is written
        var arg = [Int32](repeating: 0, count: y.count)
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in arg.withUnsafeMutableBufferPointer { ap in
            let xb = xp.baseAddress!, yb = yp.baseAddress!, ab = ap.baseAddress!
            Parallel.forEachChunk(count: g.planes) { planes in
                for p in planes { maxPoolPlane(xb + p * inPlane, yb + p * outPlane, ab + p * outPlane, g) }
            }
        } } }
        return (y, arg)
    }

    /// One plane of the max-pool (a concrete function, so the loops are fully specialised).
    static func maxPoolPlane(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                             _ idx: UnsafeMutablePointer<Int32>, _ g: PoolGeometry) {
        let w = g.w
        for oh in 0..<g.outH {
            var (hs, he) = g.window(oh, size: g.h)
            hs = Swift.max(hs, 0); he = Swift.min(he, g.h)
            for ow in 0..<g.outW {
                var (ws, we) = g.window(ow, size: w)
                ws = Swift.max(ws, 0); we = Swift.min(we, w)
                // Branch-free scan (selects, no unpredictable jumps); `probe` turns NaN if any
                // element is NaN or infinite, and then the exact PyTorch rule reruns the window.
                var best = -Float.infinity, bi = hs * w + ws, probe: Float = 0
                for ih in hs..<he {
                    let row = src + ih * w
                    for iw in ws..<we {
                        let v = row[iw], gt = v > best
                        best = gt ? v : best
                        bi = gt ? ih * w + iw : bi
                        probe += v - v
                    }
                }
                if probe.isNaN { (best, bi) = exactWindowMax(src, w, hs..<he, ws..<we) }
                dst[oh * g.outW + ow] = best
                idx[oh * g.outW + ow] = Int32(bi)
            }
        }
    }

    /// PyTorch's rule for one clipped window: first maximum, a NaN wins (and stays).
    static func exactWindowMax(_ src: UnsafePointer<Float>, _ w: Int, _ rows: Range<Int>, _ cols: Range<Int>) -> (Float, Int) {
        var best = -Float.infinity, bi = rows.lowerBound * w + cols.lowerBound
        for ih in rows { for iw in cols {
            let v = src[ih * w + iw]
            if (v > best || v.isNaN) && !best.isNaN { best = v; bi = ih * w + iw }
        } }
        return (best, bi)
    }

    /// Reference max-pool: pads explicitly with -inf and scans every window position.
    public static func naiveMaxPool2d(_ x: Tensor, _ g: PoolGeometry) -> (output: Tensor, argmax: [Int32]) {
        var y = Tensor(zeros: g.outputShape)
        var arg = [Int32](repeating: -1, count: y.count)
        for p in 0..<g.planes {
            for oh in 0..<g.outH { for ow in 0..<g.outW {
                var best = -Float.infinity, bi = -1, firstValid = -1
                for i in 0..<g.kernel { for j in 0..<g.kernel {
                    let ih = oh * g.stride - g.padding + i, iw = ow * g.stride - g.padding + j
                    guard ih >= 0, ih < g.h, iw >= 0, iw < g.w else { continue }   // -inf never wins
                    if firstValid < 0 { firstValid = ih * g.w + iw }
                    let v = x.scalars[p * g.h * g.w + ih * g.w + iw]
                    if (v > best || v.isNaN) && !best.isNaN { best = v; bi = ih * g.w + iw }
                } }
                let o = p * g.outH * g.outW + oh * g.outW + ow
                y.scalars[o] = best
                arg[o] = Int32(bi >= 0 ? bi : firstValid)
            } }
        }
        return (y, arg)
    }

    // MARK: Max-pool backward

    /// Hard pullback: dy of each window goes to its first argmax (accumulated where windows overlap).
    public static func maxPool2dBackward(_ dy: Tensor, argmax: [Int32], _ g: PoolGeometry) -> Tensor {
        var dx = Tensor(zeros: [g.n, g.c, g.h, g.w])
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW
        dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in argmax.withUnsafeBufferPointer { ap in
            let gb = gp.baseAddress!, db = dp.baseAddress!, ab = ap.baseAddress!
            Parallel.forEachChunk(count: g.planes) { planes in
                for p in planes {
                    let d = db + p * inPlane
                    for o in 0..<outPlane { d[Int(ab[p * outPlane + o])] += gb[p * outPlane + o] }
                }
            }
        } } }
        return dx
    }

    /// Soft pullback (rule: `PoolGate.softWindowFactors16` in Gates.swift), 16 windows of an output row
    /// at a time: per window, dx_j += dy * factor_j over its real elements. Positions in the zero
    /// padding take part in the softmax with value 0 but receive nothing; positions of a ceil-mode
    /// overhang beyond the padded input are not part of the window (as in PyTorch's ceil-mode windows).
    public static func softMaxPool2dBackward(_ dy: Tensor, x: Tensor, _ g: PoolGeometry,
                                             temperature: Float, detachWeights: Bool) -> Tensor {
        var dx = Tensor(zeros: x.shape)
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW, kk = g.kernel * g.kernel
        x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            let xb = xp.baseAddress!, gb = gp.baseAddress!, db = dp.baseAddress!
            Parallel.forEachChunk(count: g.planes) { planes in
                let vals = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: kk)
                let present = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: kk)
                let scratch = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: kk)
                defer { vals.deallocate(); present.deallocate(); scratch.deallocate() }
                for p in planes {
                    softPoolPlaneBackward(xb + p * inPlane, gb + p * outPlane, db + p * inPlane, g,
                                          temperature: temperature, detach: detachWeights, vals: vals, present: present, scratch: scratch)
                }
            }
        } } }
        return dx
    }

    static func softPoolPlaneBackward(_ src: UnsafePointer<Float>, _ dy: UnsafePointer<Float>, _ d: UnsafeMutablePointer<Float>,
                                      _ g: PoolGeometry, temperature: Float, detach: Bool,
                                      vals: UnsafeMutablePointer<SIMD16<Float>>, present: UnsafeMutablePointer<SIMD16<Float>>,
                                      scratch: UnsafeMutablePointer<SIMD16<Float>>) {
        let k = g.kernel, w = g.w, h = g.h
        for oh in 0..<g.outH {
            let (hs, he) = g.window(oh, size: h)
            for ow0 in stride(from: 0, to: g.outW, by: 16) {
                let lanes = Swift.min(16, g.outW - ow0)
                // Stride 2, 16 windows all inside the image (with a column to spare): element j of
                // the 16 windows is the even half of 32 consecutive floats, for gather and scatter.
                let ws0 = ow0 * 2 - g.padding
                if g.stride == 2 && lanes == 16 && hs >= 0 && hs + k <= h && ws0 >= 0 && ws0 + 30 + k + 1 <= w {
                    typealias W = SIMD32<Float>
                    let ones = SIMD16<Float>(repeating: 1)
                    for i in 0..<k { for jj in 0..<k {
                        vals[i * k + jj] = UnsafeRawPointer(src + (hs + i) * w + ws0 + jj).loadUnaligned(as: W.self).evenHalf
                        present[i * k + jj] = ones
                    } }
                    PoolGate.softWindowFactors16(vals, present: present, scratch: scratch, count: k * k, temperature: temperature, detachWeights: detach)
                    let gy = UnsafeRawPointer(dy + oh * g.outW + ow0).loadUnaligned(as: SIMD16<Float>.self)
                    for i in 0..<k { for jj in 0..<k {
                        let p = UnsafeMutableRawPointer(d + (hs + i) * w + ws0 + jj)
                        var pair = p.loadUnaligned(as: W.self)
                        pair.evenHalf += gy * vals[i * k + jj]
                        p.storeBytes(of: pair, as: W.self)
                    } }
                    continue
                }
                // Gather element j = (i, jj) of the 16 windows: value (0 in padding) and presence.
                for i in 0..<k {
                    let ih = hs + i, rowInside = ih >= 0 && ih < h
                    for jj in 0..<k {
                        var v = SIMD16<Float>(), pr = SIMD16<Float>()
                        if ih < he {
                            for l in 0..<lanes {
                                let (ws, we) = g.window(ow0 + l, size: w)
                                let iw = ws + jj
                                if iw < we {
                                    pr[l] = 1
                                    if rowInside && iw >= 0 && iw < w { v[l] = src[ih * w + iw] }
                                }
                            }
                        }
                        vals[i * k + jj] = v; present[i * k + jj] = pr
                    }
                }
                PoolGate.softWindowFactors16(vals, present: present, scratch: scratch, count: k * k, temperature: temperature, detachWeights: detach)
                // Scatter in a fixed order (element j, then window): deterministic.
                for i in 0..<k {
                    let ih = hs + i
                    guard ih >= 0 && ih < h else { continue }
                    for jj in 0..<k {
                        let f = vals[i * k + jj]
                        for l in 0..<lanes {
                            let iw = g.window(ow0 + l, size: w).start + jj
                            if iw >= 0 && iw < w { d[ih * w + iw] += dy[oh * g.outW + ow0 + l] * f[l] }
                        }
                    }
                }
            }
        }
    }

    /// Reference soft pullback, one window at a time (`PoolGate.softWindowFactors`): per window,
    /// dx_j += dy * factor_j over the window's real elements. Positions in the zero padding take part
    /// in the softmax with value 0 but receive nothing; positions of a ceil-mode overhang beyond the
    /// padded input are not part of the window (as in PyTorch's ceil-mode windows).
    public static func naiveSoftMaxPool2dBackward(_ dy: Tensor, x: Tensor, _ g: PoolGeometry,
                                                  temperature: Float, detachWeights: Bool) -> Tensor {
        var dx = Tensor(zeros: x.shape)
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW, kk = g.kernel * g.kernel
        x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            let xb = xp.baseAddress!, gb = gp.baseAddress!, db = dp.baseAddress!
            var vals = [Float](repeating: 0, count: kk)
            var where_ = [Int](repeating: -1, count: kk)   // flat input index, or -1 for padding
            do {
                for p in 0..<g.planes {
                    let src = xb + p * inPlane, d = db + p * inPlane
                    for oh in 0..<g.outH { for ow in 0..<g.outW {
                        let (hs, he) = g.window(oh, size: g.h), (ws, we) = g.window(ow, size: g.w)
                        var m = 0
                        for ih in hs..<he { for iw in ws..<we {
                            let inside = ih >= 0 && ih < g.h && iw >= 0 && iw < g.w
                            vals[m] = inside ? src[ih * g.w + iw] : 0
                            where_[m] = inside ? ih * g.w + iw : -1
                            m += 1
                        } }
                        vals.withUnsafeMutableBufferPointer { vb in
                            PoolGate.softWindowFactors(UnsafeMutableBufferPointer(rebasing: vb[0..<m]),
                                                       temperature: temperature, detachWeights: detachWeights)
                        }
                        let gy = gb[p * outPlane + oh * g.outW + ow]
                        for j in 0..<m where where_[j] >= 0 { d[where_[j]] += gy * vals[j] }
                    } }
                }
            }
        } } }
        return dx
    }

    // MARK: Average pool

    /// PyTorch avg_pool2d. The divisor is the window size clipped to the padded input
    /// (count_include_pad) or to the input itself (otherwise).
    public static func avgPool2d(_ x: Tensor, _ g: PoolGeometry, countIncludePad: Bool) -> Tensor {
        var y = Tensor.uninitialized(g.outputShape)   // every window is written
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEachChunk(count: g.planes) { planes in
                for p in planes {
                    let src = xb + p * inPlane, dst = yb + p * outPlane
                    for oh in 0..<g.outH { for ow in 0..<g.outW {
                        let (h0, h1, w0, w1, div) = avgWindow(oh, ow, g, countIncludePad)
                        var s: Float = 0
                        for ih in h0..<h1 { for iw in w0..<w1 { s += src[ih * g.w + iw] } }
                        dst[oh * g.outW + ow] = s / div
                    } }
                }
            }
        } }
        return y
    }

    @inline(__always)
    static func avgWindow(_ oh: Int, _ ow: Int, _ g: PoolGeometry, _ includePad: Bool) -> (Int, Int, Int, Int, Float) {
        var (hs, he) = g.window(oh, size: g.h), (ws, we) = g.window(ow, size: g.w)
        let padded = (he - hs) * (we - ws)
        hs = Swift.max(hs, 0); ws = Swift.max(ws, 0); he = Swift.min(he, g.h); we = Swift.min(we, g.w)
        return (hs, he, ws, we, Float(includePad ? padded : (he - hs) * (we - ws)))
    }

    public static func avgPool2dBackward(_ dy: Tensor, _ g: PoolGeometry, countIncludePad: Bool) -> Tensor {
        var dx = Tensor(zeros: [g.n, g.c, g.h, g.w])
        let inPlane = g.h * g.w, outPlane = g.outH * g.outW
        dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            let gb = gp.baseAddress!, db = dp.baseAddress!
            Parallel.forEachChunk(count: g.planes) { planes in
                for p in planes {
                    let d = db + p * inPlane
                    for oh in 0..<g.outH { for ow in 0..<g.outW {
                        let (h0, h1, w0, w1, div) = avgWindow(oh, ow, g, countIncludePad)
                        let v = gb[p * outPlane + oh * g.outW + ow] / div
                        for ih in h0..<h1 { for iw in w0..<w1 { d[ih * g.w + iw] += v } }
                    } }
                }
            }
        } }
        return dx
    }

    /// Reference average pool: explicit zero padding, counts taken position by position.
    public static func naiveAvgPool2d(_ x: Tensor, _ g: PoolGeometry, countIncludePad: Bool) -> Tensor {
        var y = Tensor(zeros: g.outputShape)
        for p in 0..<g.planes { for oh in 0..<g.outH { for ow in 0..<g.outW {
            var s: Float = 0, real = 0, padded = 0
            for i in 0..<g.kernel { for j in 0..<g.kernel {
                let ih = oh * g.stride - g.padding + i, iw = ow * g.stride - g.padding + j
                if ih >= g.h + g.padding || iw >= g.w + g.padding { continue }   // ceil-mode overhang: not in the window
                padded += 1
                if ih >= 0 && ih < g.h && iw >= 0 && iw < g.w { s += x.scalars[p * g.h * g.w + ih * g.w + iw]; real += 1 }
            } }
            y.scalars[p * g.outH * g.outW + oh * g.outW + ow] = s / Float(countIncludePad ? padded : real)
        } } }
        return y
    }

    // MARK: Adaptive average pool

    /// Window [start, end) of output index `o` (PyTorch: floor(o*In/Out), ceil((o+1)*In/Out)).
    @inline(__always)
    public static func adaptiveRange(_ o: Int, input: Int, output: Int) -> Range<Int> {
        (o * input / output)..<(((o + 1) * input + output - 1) / output)
    }

    public static func adaptiveAvgPool2d(_ x: Tensor, outH: Int, outW: Int) -> Tensor {
        let (n, c, h, w) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = Tensor(zeros: [n, c, outH, outW])
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEachChunk(count: n * c) { planes in
                for p in planes {
                    let src = xb + p * h * w
                    for oh in 0..<outH {
                        let rh = adaptiveRange(oh, input: h, output: outH)
                        for ow in 0..<outW {
                            let rw = adaptiveRange(ow, input: w, output: outW)
                            var s: Float = 0
                            for ih in rh { for iw in rw { s += src[ih * w + iw] } }
                            yb[p * outH * outW + oh * outW + ow] = s / Float(rh.count * rw.count)
                        }
                    }
                }
            }
        } }
        return y
    }

    public static func adaptiveAvgPool2dBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let (n, c, h, w) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let outH = dy.shape[2], outW = dy.shape[3]
        var dx = Tensor(zeros: inputShape)
        dy.withUnsafeBufferPointer { gp in dx.withUnsafeMutableBufferPointer { dp in
            let gb = gp.baseAddress!, db = dp.baseAddress!
            Parallel.forEachChunk(count: n * c) { planes in
                for p in planes {
                    let d = db + p * h * w
                    for oh in 0..<outH {
                        let rh = adaptiveRange(oh, input: h, output: outH)
                        for ow in 0..<outW {
                            let rw = adaptiveRange(ow, input: w, output: outW)
                            let v = gb[p * outH * outW + oh * outW + ow] / Float(rh.count * rw.count)
                            for ih in rh { for iw in rw { d[ih * w + iw] += v } }
                        }
                    }
                }
            }
        } }
        return dx
    }

    // MARK: Global average pool

    /// [N, C, H, W] -> [N, C], mean of each plane (SIMD16 partial sums, fixed order).
    public static func globalAvgPool(_ x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        var y = Tensor(zeros: [n, c])
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress, yb = yp.baseAddress!
            Parallel.forEachChunk(count: n * c) { planes in
                for p in planes { yb[p] = sum(xb! + p * inner, inner) / Float(inner) }
            }
        } }
        return y
    }

    public static func naiveGlobalAvgPool(_ x: Tensor) -> Tensor {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        return Tensor(shape: [n, c]) { p in
            var s = 0.0
            for i in 0..<inner { s += Double(x.scalars[p * inner + i]) }
            return Float(s / Double(inner))
        }
    }

    public static func globalAvgPoolBackward(_ dy: Tensor, inputShape: [Int]) -> Tensor {
        let planes = inputShape[0] * inputShape[1], inner = inputShape.dropFirst(2).reduce(1, *)
        var dx = Tensor(zeros: inputShape)
        dx.withUnsafeMutableBufferPointer { dp in
            for p in 0..<planes {
                let v = dy.scalars[p] / Float(inner)
                for i in 0..<inner { dp[p * inner + i] = v }
            }
        }
        return dx
    }

    /// Sum of `count` floats: 16 SIMD lanes, folded at the end, then the scalar tail.
    @inline(__always)
    public static func sum(_ p: UnsafePointer<Float>, _ count: Int) -> Float {
        var acc = SIMD16<Float>(), i = 0
        while i + 16 <= count { acc += UnsafeRawPointer(p + i).loadUnaligned(as: SIMD16<Float>.self); i += 16 }
        var s = acc.sum()
        while i < count { s += p[i]; i += 1 }
        return s
    }
}
