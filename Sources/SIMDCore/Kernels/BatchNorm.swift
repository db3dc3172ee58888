// MARK: - BatchNorm kernels
//
// x is [N, C, rest...] (rest may be empty: [N, C]). Per channel c, over all N * rest elements:
//   eval:  y = (x - running_mean) / sqrt(running_var + eps) * weight + bias
//          = x * a + b, a = weight / sqrt(var + eps), b = bias - mean * a   (one channel affine)
//   train: mean, biased variance of the batch normalise; the running estimates move with momentum m:
//          running_mean = (1 - m) running_mean + m mean
//          running_var  = (1 - m) running_var  + m var * M / (M - 1)     (UNBIASED, as PyTorch)
// Channel sums are accumulated in Double, per (n, c) plane in order n = 0, 1, ...: workers own whole
// channels, so the result does not depend on the thread count.

import Foundation

public enum BatchNorm {
    /// Per-channel mean and biased variance over N and the spatial dims. Returns (mean, var, M).
    public static func statistics(_ x: Tensor) -> (mean: [Float], variance: [Float], count: Int) {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        var mean = [Float](repeating: 0, count: c), variance = mean
        x.withUnsafeBufferPointer { xp in mean.withUnsafeMutableBufferPointer { mp in variance.withUnsafeMutableBufferPointer { vp in
            let xb = xp.baseAddress!, mb = mp.baseAddress!, vb = vp.baseAddress!
            Parallel.forEachChunk(count: c) { chans in
                for ch in chans {
                    var s = 0.0
                    for i in 0..<n { s += Double(Pooling.sum(xb + (i * c + ch) * inner, inner)) }
                    let mu = s / Double(n * inner)
                    // Second pass on centred values (no cancellation).
                    var q = 0.0
                    let vmu = SIMD16<Float>(repeating: Float(mu))
                    for i in 0..<n {
                        let p = xb + (i * c + ch) * inner
                        var acc = SIMD16<Float>(), j = 0
                        while j + 16 <= inner {
                            let d = UnsafeRawPointer(p + j).loadUnaligned(as: SIMD16<Float>.self) - vmu
                            acc += d * d; j += 16
                        }
                        var t = Double(acc.sum())
                        while j < inner { let d = Double(p[j]) - mu; t += d * d; j += 1 }
                        q += t
                    }
                    mb[ch] = Float(mu); vb[ch] = Float(q / Double(n * inner))
                }
            }
        } } }
        return (mean, variance, n * inner)
    }

    /// Reference statistics: plain Double loops.
    public static func naiveStatistics(_ x: Tensor) -> (mean: [Float], variance: [Float], count: Int) {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        var mean = [Float](), variance = [Float]()
        for ch in 0..<c {
            var s = 0.0, q = 0.0
            for i in 0..<n { for j in 0..<inner { s += Double(x.scalars[(i * c + ch) * inner + j]) } }
            let mu = s / Double(n * inner)
            for i in 0..<n { for j in 0..<inner { let d = Double(x.scalars[(i * c + ch) * inner + j]) - mu; q += d * d } }
            mean.append(Float(mu)); variance.append(Float(q / Double(n * inner)))
        }
        return (mean, variance, n * inner)
    }

    /// The per-channel affine map (a, b) with y = x * a + b, and invstd = 1 / sqrt(var + eps).
    public static func fold(mean: [Float], variance: [Float], weight: [Float], bias: [Float], eps: Float)
        -> (scale: [Float], shift: [Float], invstd: [Float]) {
        let invstd = variance.map { 1 / ($0 + eps).squareRoot() }
        let a = (0..<mean.count).map { weight[$0] * invstd[$0] }
        let b = (0..<mean.count).map { bias[$0] - mean[$0] * a[$0] }
        return (a, b, invstd)
    }

    /// Backward of y = (x - mean) * invstd * weight + bias.
    ///   dbias_c   = sum dy
    ///   dweight_c = sum dy * xhat,   xhat = (x - mean) * invstd
    ///   eval  (mean, invstd constants): dx = dy * weight * invstd
    ///   train (batch statistics):       dx = weight * invstd / M * (M dy - sum dy - xhat * sum dy xhat)
    public static func backward(_ dy: Tensor, x: Tensor, mean: [Float], invstd: [Float], weight: [Float],
                                training: Bool, needInput: Bool)
        -> (dx: Tensor?, dweight: [Float], dbias: [Float]) {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        var dw = [Float](repeating: 0, count: c), db = dw
        var dxs = [Float](repeating: 0, count: needInput ? x.count : 0)
        x.withUnsafeBufferPointer { xp in dy.withUnsafeBufferPointer { gp in
        dw.withUnsafeMutableBufferPointer { dwp in db.withUnsafeMutableBufferPointer { dbp in dxs.withUnsafeMutableBufferPointer { dxp in
            let xb = xp.baseAddress!, gb = gp.baseAddress!, dwb = dwp.baseAddress!, dbb = dbp.baseAddress!
            let dxb = needInput ? dxp.baseAddress : nil
            Parallel.forEachChunk(count: c) { chans in
                for ch in chans {
                    (dwb[ch], dbb[ch]) = channelBackward(x: xb, dy: gb, dx: dxb, n: n, c: c, inner: inner, channel: ch,
                                                         mean: mean[ch], invstd: invstd[ch], weight: weight[ch], training: training)
                }
            }
        } } } } }
        return (needInput ? Tensor(shape: x.shape, scalars: dxs) : nil, dw, db)
    }

    /// One channel of the backward (a concrete function so the SIMD loops are fully specialised).
    /// Returns (dweight, dbias) and writes dx when `dx` is non-nil.
    static func channelBackward(x: UnsafePointer<Float>, dy: UnsafePointer<Float>, dx: UnsafeMutablePointer<Float>?,
                                n: Int, c: Int, inner: Int, channel ch: Int,
                                mean mu: Float, invstd istd: Float, weight: Float, training: Bool) -> (Float, Float) {
        let vmu = SIMD16<Float>(repeating: mu)
        var sg = 0.0, sgx = 0.0
        for i in 0..<n {
            let xo = x + (i * c + ch) * inner, go = dy + (i * c + ch) * inner
            var a1 = SIMD16<Float>(), a2 = SIMD16<Float>(), j = 0
            while j + 16 <= inner {
                let g = UnsafeRawPointer(go + j).loadUnaligned(as: SIMD16<Float>.self)
                let d = UnsafeRawPointer(xo + j).loadUnaligned(as: SIMD16<Float>.self) - vmu
                a1 += g; a2 += g * d; j += 16
            }
            var t1 = Double(a1.sum()), t2 = Double(a2.sum())
            while j < inner { t1 += Double(go[j]); t2 += Double(go[j]) * Double(xo[j] - mu); j += 1 }
            sg += t1; sgx += t2
        }
        let sgxhat = sgx * Double(istd)
        guard let dx else { return (Float(sgxhat), Float(sg)) }
        let m = Double(n * inner)
        let k = weight * istd
        // train: dx = k * (dy - sg/M - xhat * sgxhat/M), xhat = (x - mu) * istd
        let c0 = training ? Float(sg / m) : 0
        let c1 = training ? Float(sgxhat / m) * istd : 0
        let vk = SIMD16<Float>(repeating: k), v0 = SIMD16<Float>(repeating: c0), v1 = SIMD16<Float>(repeating: c1)
        for i in 0..<n {
            let off = (i * c + ch) * inner
            let xo = x + off, go = dy + off, out = dx + off
            var j = 0
            while j + 16 <= inner {
                let g = UnsafeRawPointer(go + j).loadUnaligned(as: SIMD16<Float>.self)
                let d = UnsafeRawPointer(xo + j).loadUnaligned(as: SIMD16<Float>.self) - vmu
                UnsafeMutableRawPointer(out + j).storeBytes(of: vk * (g - v0 - d * v1), as: SIMD16<Float>.self)
                j += 16
            }
            while j < inner { out[j] = k * (go[j] - c0 - (xo[j] - mu) * c1); j += 1 }
        }
        return (Float(sgxhat), Float(sg))
    }

    /// Reference backward in Double, straight from the formulas above.
    public static func naiveBackward(_ dy: Tensor, x: Tensor, mean: [Float], invstd: [Float], weight: [Float],
                                     training: Bool) -> (dx: Tensor, dweight: [Float], dbias: [Float]) {
        let (n, c) = (x.shape[0], x.shape[1]), inner = x.count / Swift.max(n * c, 1)
        let m = Double(n * inner)
        var dx = Tensor(zeros: x.shape), dw = [Float](repeating: 0, count: c), db = dw
        for ch in 0..<c {
            var sg = 0.0, sgx = 0.0
            func at(_ i: Int, _ j: Int) -> Int { (i * c + ch) * inner + j }
            for i in 0..<n { for j in 0..<inner {
                sg += Double(dy.scalars[at(i, j)])
                sgx += Double(dy.scalars[at(i, j)]) * Double(x.scalars[at(i, j)] - mean[ch]) * Double(invstd[ch])
            } }
            db[ch] = Float(sg); dw[ch] = Float(sgx)
            let k = Double(weight[ch]) * Double(invstd[ch])
            for i in 0..<n { for j in 0..<inner {
                let g = Double(dy.scalars[at(i, j)]), xhat = Double(x.scalars[at(i, j)] - mean[ch]) * Double(invstd[ch])
                dx.scalars[at(i, j)] = Float(training ? k * (g - sg / m - xhat * sgx / m) : k * g)
            } }
        }
        return (dx, dw, db)
    }
}
