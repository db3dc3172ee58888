// MARK: - Softmax kernels (over the last dimension)
//
// x is [rows, K] (any leading shape, flattened into rows). Stable: subtract the row maximum,
// accumulate the normaliser in Double. Rows are split into static chunks.
//   softmax     y = exp(x - max) / sum exp(x - max)          backward dx = y * (dy - sum(dy * y))
//   logSoftmax  y = x - max - log sum exp(x - max)           backward dx = dy - softmax(x) * sum(dy)

import Foundation

public enum Softmax {
    @inline(__always)
    static func rows(_ x: Tensor) -> (Int, Int) {
        let k = x.shape.last ?? 1
        return (k == 0 ? 0 : x.count / k, k)
    }

    /// Softmax (log = false) or log-softmax (log = true) of every row.
    public static func forward(_ x: Tensor, log: Bool) -> Tensor {
        let (r, k) = rows(x)
        var y = Tensor(zeros: x.shape)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress, yb = yp.baseAddress
            Parallel.forEachChunk(count: r, minChunk: Swift.max(1, 4096 / Swift.max(k, 1))) { rr in
                for i in rr {
                    let src = xb! + i * k, dst = yb! + i * k
                    var mx = -Float.infinity
                    for j in 0..<k { mx = Swift.max(mx, src[j]) }
                    var z = 0.0
                    for j in 0..<k { z += Double(Foundation.exp(src[j] - mx)) }
                    if log {
                        let lz = Float(Foundation.log(z))
                        for j in 0..<k { dst[j] = src[j] - mx - lz }
                    } else {
                        let inv = 1 / z
                        for j in 0..<k { dst[j] = Float(Double(Foundation.exp(src[j] - mx)) * inv) }
                    }
                }
            }
        } }
        return y
    }

    /// Reference: Double everywhere, one row at a time.
    public static func naiveForward(_ x: Tensor, log: Bool) -> Tensor {
        let (r, k) = rows(x)
        var y = Tensor(zeros: x.shape)
        for i in 0..<r {
            let row = (0..<k).map { Double(x.scalars[i * k + $0]) }
            let mx = row.max() ?? 0
            let lse = mx + Foundation.log(row.reduce(0) { $0 + Foundation.exp($1 - mx) })
            for j in 0..<k { y.scalars[i * k + j] = Float(log ? row[j] - lse : Foundation.exp(row[j] - lse)) }
        }
        return y
    }

    /// Backward given the forward output `y` (softmax or log-softmax, per `log`).
    public static func backward(_ dy: Tensor, y: Tensor, log: Bool) -> Tensor {
        let (r, k) = rows(y)
        var dx = Tensor(zeros: y.shape)
        for i in 0..<r {
            let o = i * k
            if log {
                var s = 0.0
                for j in 0..<k { s += Double(dy.scalars[o + j]) }
                for j in 0..<k { dx.scalars[o + j] = dy.scalars[o + j] - Foundation.exp(y.scalars[o + j]) * Float(s) }
            } else {
                var s = 0.0
                for j in 0..<k { s += Double(dy.scalars[o + j]) * Double(y.scalars[o + j]) }
                for j in 0..<k { dx.scalars[o + j] = y.scalars[o + j] * (dy.scalars[o + j] - Float(s)) }
            }
        }
        return dx
    }
}

// MARK: - Losses
//
// crossEntropy(logits [N, K], labels) = mean_n -log softmax(logits_n)[label_n]
//     backward: dlogits = (softmax(logits) - onehot(label)) / N * dloss
// mse(x, target) = mean (x - target)^2          backward: dx = 2 (x - target) / count * dloss

public enum Losses {
    /// Mean cross-entropy and the log-softmax it was computed from (kept for the backward).
    public static func crossEntropy(logits: Tensor, labels: [Int]) -> (loss: Float, logProbabilities: Tensor) {
        let lp = Softmax.forward(logits, log: true)
        let k = logits.shape[1]
        var s = 0.0
        for (i, l) in labels.enumerated() { s -= Double(lp.scalars[i * k + l]) }
        return (Float(s / Double(labels.count)), lp)
    }

    public static func crossEntropyBackward(logProbabilities lp: Tensor, labels: [Int], dloss: Float) -> Tensor {
        let k = lp.shape[1], scale = dloss / Float(labels.count)
        var dx = Tensor(zeros: lp.shape)
        for (i, l) in labels.enumerated() {
            for j in 0..<k { dx.scalars[i * k + j] = Foundation.exp(lp.scalars[i * k + j]) * scale }
            dx.scalars[i * k + l] -= scale
        }
        return dx
    }

    /// Mean squared error, accumulated in Double.
    public static func mse(_ x: Tensor, target: Tensor) -> Float {
        var s = 0.0
        for i in 0..<x.count { let d = Double(x.scalars[i]) - Double(target.scalars[i]); s += d * d }
        return Float(s / Double(Swift.max(x.count, 1)))
    }

    public static func mseBackward(_ x: Tensor, target: Tensor, dloss: Float) -> Tensor {
        let k = 2 * dloss / Float(Swift.max(x.count, 1))
        return Tensor(shape: x.shape) { (x.scalars[$0] - target.scalars[$0]) * k }
    }
}

// MARK: - Layout: concat and split along an axis

public enum Layout {
    /// Concatenation along `axis` (all other dims equal). `outer` = product of dims before the axis;
    /// each input contributes a contiguous block of `shape[axis...]` per outer index.
    public static func concat(_ xs: [Tensor], axis: Int) -> Tensor {
        var shape = xs[0].shape
        shape[axis] = xs.reduce(0) { $0 + $1.shape[axis] }
        let outer = shape[..<axis].reduce(1, *)
        let blocks = xs.map { $0.shape[axis...].reduce(1, *) }
        var out = [Float]()
        out.reserveCapacity(shape.reduce(1, *))
        for o in 0..<outer {
            for (t, b) in zip(xs, blocks) { out.append(contentsOf: t.scalars[(o * b)..<((o + 1) * b)]) }
        }
        return Tensor(shape: shape, scalars: out)
    }

    /// Inverse of `concat`: the pieces of `y` with the given sizes along `axis`.
    public static func split(_ y: Tensor, sizes: [Int], axis: Int) -> [Tensor] {
        let outer = y.shape[..<axis].reduce(1, *), innerStride = y.shape[(axis + 1)...].reduce(1, *)
        let total = y.shape[axis...].reduce(1, *)
        var offset = 0
        return sizes.map { size in
            var shape = y.shape
            shape[axis] = size
            let b = size * innerStride
            var s = [Float]()
            s.reserveCapacity(outer * b)
            for o in 0..<outer { s.append(contentsOf: y.scalars[(o * total + offset)..<(o * total + offset + b)]) }
            offset += b
            return Tensor(shape: shape, scalars: s)
        }
    }
}
