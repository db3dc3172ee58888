// MARK: - Tape op: BatchNorm
//
// Kernels and formulas: Kernels/BatchNorm.swift.

import Foundation

/// BatchNorm running estimates, updated in place by `Tape.batchNorm(..., training: true)`.
///
/// ```swift
/// let stats = BatchNormStatistics(channels: 64)          // mean 0, variance 1 (PyTorch init)
/// let y = try tape.batchNorm(x, weight: w, bias: b, running: stats, training: true)
/// // stats.mean, stats.variance now moved by momentum 0.1 towards the batch statistics
/// ```
public final class BatchNormStatistics {
    public var mean: Tensor
    public var variance: Tensor

    public init(mean: Tensor, variance: Tensor) { self.mean = mean; self.variance = variance }

    public convenience init(channels: Int) {
        self.init(mean: Tensor(zeros: [channels]), variance: Tensor(shape: [channels], repeating: 1))
    }
}

extension Tape {
    /// batchNorm: x [N, C, ...] (e.g. [N, C, H, W] or [N, C]), weight [C], bias [C] -> [same as x].
    /// Eval: normalise with the running estimates. Train: normalise with the batch mean and biased
    /// variance, and update `running` (momentum, unbiased variance) like PyTorch.
    public func batchNorm(_ x: Variable, weight: Variable, bias: Variable, running: BatchNormStatistics,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) throws -> Variable {
        let s = shape(x)
        guard s.count >= 2 else { throw EngineError(op: "batchNorm", "expected input [N, C, ...], got shape \(s)") }
        let c = s[1]
        for (name, t) in [("weight", shape(weight)), ("bias", shape(bias)),
                          ("running mean", running.mean.shape), ("running variance", running.variance.shape)] where t != [c] {
            throw EngineError.shapeMismatch("batchNorm", s, t, expected: "\(name) of shape [\(c)] for input with \(c) channels")
        }
        let xv = value(x), w = value(weight).scalars, b = value(bias).scalars
        let mean: [Float], variance: [Float]
        if training {
            let st = BatchNorm.statistics(xv)
            guard st.count > 1 else {
                throw EngineError(op: "batchNorm", "training needs more than one value per channel, input \(s)")
            }
            mean = st.mean; variance = st.variance
            let unbias = Float(st.count) / Float(st.count - 1)
            for ch in 0..<c {
                running.mean.scalars[ch] = (1 - momentum) * running.mean.scalars[ch] + momentum * mean[ch]
                running.variance.scalars[ch] = (1 - momentum) * running.variance.scalars[ch] + momentum * variance[ch] * unbias
            }
        } else {
            mean = running.mean.scalars; variance = running.variance.scalars
        }
        let (a, shift, invstd) = BatchNorm.fold(mean: mean, variance: variance, weight: w, bias: b, eps: eps)
        let y = Elementwise.channelAffine(xv, scale: a, shift: shift)
        return record(y, inputs: [x, weight, bias]) { dy, needs in
            if !training && !needs[1] && !needs[2] {
                // Eval-mode input pullback (e.g. an excitation pullback): dx = dy * weight * invstd, no sums.
                return [Elementwise.channelAffine(dy, scale: a, shift: [Float](repeating: 0, count: c)), nil, nil]
            }
            let r = BatchNorm.backward(dy, x: xv, mean: mean, invstd: invstd, weight: w,
                                       training: training, needInput: needs[0])
            return [r.dx, needs[1] ? Tensor(shape: [c], scalars: r.dweight) : nil,
                    needs[2] ? Tensor(shape: [c], scalars: r.dbias) : nil]
        }
    }
}
