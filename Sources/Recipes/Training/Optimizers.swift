// MARK: - Optimizers on parameter dictionaries
//
// Parameters are `[String: Tensor]`; gradients come from `Tape.backward` keyed by the same names.
// Each optimizer reproduces PyTorch's single-tensor (`foreach=False`) CPU update for Float32, in
// the same operation order and with the same fused multiply-adds as ATen's kernels (`add(alpha:)`
// is an FMA there; `addcmul`/`addcdiv` evaluate self + (value * t1) * t2 and self + (value * t1) / t2),
// so the committed goldens (reference/training/make_optimizer_goldens.py) match to float rounding. Updates are elementwise: no reduction, so results never depend on the
// thread count. Inner loops are branch-free elementwise loops over unsafe buffers, which LLVM
// vectorises (zmm) under -target-cpu skylake-avx512; an optimizer step costs far less than a
// training batch's forward/backward, so nothing more is needed.
//
//   SGD      g += wd*p;  buf = g (first step) | m*buf + g;  p -= lr*buf       (dampening 0, no Nesterov)
//   Adam     g += wd*p;  m = lerp(m, g, 1-b1);  v = b2*v + (1-b2)*g*g;
//            p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
//   RMSprop  g += wd*p;  v = a*v + (1-a)*g*g;  p -= lr * g / (sqrt(v) + eps)  (no momentum, not centred)

import Foundation
import SIMDCore

/// Something that updates a parameter dictionary from its gradients.
///
/// ```swift
/// var opt = SGD(momentum: 0.9, weightDecay: 5e-4)
/// try opt.step(&params, gradients: grads, learningRate: schedule.learningRate(atIteration: it))
/// ```
public protocol Optimizer {
    /// One update of every parameter that has a gradient; parameters without one are left alone
    /// (frozen parameters simply get no gradient).
    mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor], learningRate: Float) throws
    /// Short description for logs, e.g. `sgd(momentum=0.9, wd=0.0005)`.
    var name: String { get }
}

/// Checks that a gradient matches its parameter.
@inline(__always)
func checkGradient(_ op: String, _ name: String, _ p: Tensor, _ g: Tensor) throws {
    guard p.shape == g.shape else {
        throw EngineError.shapeMismatch(op, p.shape, g.shape, expected: "gradient of parameter '\(name)' with the parameter's shape")
    }
}

// MARK: - SGD

/// PyTorch `torch.optim.SGD(lr, momentum, weight_decay)` with dampening 0 and Nesterov off.
public struct SGD: Optimizer {
    public var momentum: Float
    public var weightDecay: Float
    /// Momentum buffers by parameter name (absent until the first step, as in PyTorch).
    public private(set) var buffers: [String: Tensor] = [:]

    public init(momentum: Float = 0, weightDecay: Float = 0) {
        self.momentum = momentum; self.weightDecay = weightDecay
    }

    public var name: String { "sgd(momentum=\(momentum), wd=\(weightDecay))" }

    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor], learningRate lr: Float) throws {
        for key in parameters.keys.sorted() {
            guard let g = gradients[key] else { continue }
            var p = parameters[key]!
            try checkGradient("SGD.step", key, p, g)
            let wd = weightDecay, m = momentum
            if m == 0 {
                p.withUnsafeMutableBufferPointer { pp in
                    g.withUnsafeBufferPointer { gp in
                        SGD.plainUpdate(pp, gp, lr: lr, wd: wd)
                    }
                }
            } else {
                var buf = buffers[key] ?? Tensor(zeros: p.shape)
                let first = buffers[key] == nil
                buffers[key] = nil   // keep the buffer uniquely referenced: updated in place
                p.withUnsafeMutableBufferPointer { pp in
                    buf.withUnsafeMutableBufferPointer { bp in
                        g.withUnsafeBufferPointer { gp in
                            SGD.momentumUpdate(pp, bp, gp, lr: lr, m: m, wd: wd, first: first)
                        }
                    }
                }
                buffers[key] = buf
            }
            parameters[key] = p
        }
    }

    static func plainUpdate(_ p: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, lr: Float, wd: Float) {
        for i in 0..<p.count {
            let d = g[i].addingProduct(p[i], wd)     // wd = 0 adds an exact zero
            p[i] = p[i].addingProduct(-lr, d)
        }
    }

    static func momentumUpdate(_ p: UnsafeMutableBufferPointer<Float>, _ b: UnsafeMutableBufferPointer<Float>,
                               _ g: UnsafeBufferPointer<Float>, lr: Float, m: Float, wd: Float, first: Bool) {
        for i in 0..<p.count {
            let d = g[i].addingProduct(p[i], wd)
            let nb = first ? d : b[i] * m + d
            b[i] = nb
            p[i] = p[i].addingProduct(-lr, nb)
        }
    }
}

// MARK: - Adam

/// PyTorch `torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)` (L2 weight decay
/// added to the gradient, not AdamW; `amsgrad` off). Bias-corrected; eps added after the square root.
public struct Adam: Optimizer {
    /// Kept in Double like PyTorch's Python floats: 1 - beta is formed in Double, then rounded.
    public var beta1: Double
    public var beta2: Double
    public var eps: Float
    public var weightDecay: Float
    public private(set) var firstMoments: [String: Tensor] = [:]
    public private(set) var secondMoments: [String: Tensor] = [:]
    /// Step count per parameter (PyTorch keeps one per parameter too).
    public private(set) var steps: [String: Int] = [:]

    public init(beta1: Double = 0.9, beta2: Double = 0.999, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.beta1 = beta1; self.beta2 = beta2; self.eps = eps; self.weightDecay = weightDecay
    }

    public var name: String { "adam(betas=(\(beta1), \(beta2)), eps=\(eps), wd=\(weightDecay))" }

    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor], learningRate lr: Float) throws {
        for key in parameters.keys.sorted() {
            guard let g = gradients[key] else { continue }
            var p = parameters[key]!
            try checkGradient("Adam.step", key, p, g)
            var m = firstMoments[key] ?? Tensor(zeros: p.shape)
            var v = secondMoments[key] ?? Tensor(zeros: p.shape)
            firstMoments[key] = nil; secondMoments[key] = nil
            let t = (steps[key] ?? 0) + 1
            steps[key] = t
            // PyTorch computes the bias corrections as Python floats (Double), then casts to Float
            // when they meet a Float tensor.
            let bc1 = 1 - Foundation.pow(beta1, Double(t))
            let bc2 = 1 - Foundation.pow(beta2, Double(t))
            let stepSize = Float(Double(lr) / bc1)
            let bc2Sqrt = Float(bc2.squareRoot())
            let b2 = Float(beta2), eps = eps, wd = weightDecay
            let w1 = Float(1 - beta1), w2 = Float(1 - beta2)
            p.withUnsafeMutableBufferPointer { pp in
                m.withUnsafeMutableBufferPointer { mp in
                    v.withUnsafeMutableBufferPointer { vp in
                        g.withUnsafeBufferPointer { gp in
                            for i in 0..<pp.count {
                                let gi = gp[i].addingProduct(pp[i], wd)
                                // torch.lerp with weight < 0.5: self + weight * (end - self)
                                let mi = mp[i] + w1 * (gi - mp[i])
                                let vi = vp[i] * b2 + w2 * gi * gi
                                mp[i] = mi; vp[i] = vi
                                let denom = vi.squareRoot() / bc2Sqrt + eps
                                pp[i] = pp[i] + (-stepSize) * mi / denom
                            }
                        }
                    }
                }
            }
            firstMoments[key] = m; secondMoments[key] = v
            parameters[key] = p
        }
    }
}

// MARK: - RMSprop

/// PyTorch `torch.optim.RMSprop(lr, alpha=0.99, eps=1e-8, weight_decay=0)`, no momentum, not centred.
public struct RMSprop: Optimizer {
    /// Kept in Double like PyTorch's Python float: 1 - alpha is formed in Double, then rounded.
    public var alpha: Double
    public var eps: Float
    public var weightDecay: Float
    public private(set) var squareAverages: [String: Tensor] = [:]

    public init(alpha: Double = 0.99, eps: Float = 1e-8, weightDecay: Float = 0) {
        self.alpha = alpha; self.eps = eps; self.weightDecay = weightDecay
    }

    public var name: String { "rmsprop(alpha=\(alpha), eps=\(eps), wd=\(weightDecay))" }

    public mutating func step(_ parameters: inout [String: Tensor], gradients: [String: Tensor], learningRate lr: Float) throws {
        for key in parameters.keys.sorted() {
            guard let g = gradients[key] else { continue }
            var p = parameters[key]!
            try checkGradient("RMSprop.step", key, p, g)
            var s = squareAverages[key] ?? Tensor(zeros: p.shape)
            squareAverages[key] = nil
            let a = Float(alpha), w = Float(1 - alpha), eps = eps, wd = weightDecay
            p.withUnsafeMutableBufferPointer { pp in
                s.withUnsafeMutableBufferPointer { sp in
                    g.withUnsafeBufferPointer { gp in
                        for i in 0..<pp.count {
                            let gi = gp[i].addingProduct(pp[i], wd)
                            let si = sp[i] * a + w * gi * gi
                            sp[i] = si
                            pp[i] = pp[i] + (-lr) * gi / (si.squareRoot() + eps)
                        }
                    }
                }
            }
            squareAverages[key] = s
            parameters[key] = p
        }
    }
}

// MARK: - Learning-rate schedules

/// A learning rate as a function of the iteration (optimizer step) count.
public protocol LearningRateSchedule {
    func learningRate(atIteration iteration: Int) -> Float
}

/// A fixed learning rate.
public struct ConstantLearningRate: LearningRateSchedule {
    public var value: Float
    public init(_ value: Float) { self.value = value }
    public func learningRate(atIteration iteration: Int) -> Float { value }
}

/// Piecewise constant by iteration: `values[k]` for `boundaries[k-1] <= it < boundaries[k]`.
///
/// ```swift
/// let s = PiecewiseConstantSchedule.paperBTableII   // 0.01 | 400 | 0.1 | 32k | 0.01 | 48k | 0.001
/// s.learningRate(atIteration: 399)   // 0.01
/// s.learningRate(atIteration: 400)   // 0.1
/// ```
public struct PiecewiseConstantSchedule: LearningRateSchedule, Equatable {
    public let boundaries: [Int]
    public let values: [Float]

    public init(boundaries: [Int], values: [Float]) throws {
        guard values.count == boundaries.count + 1 else {
            throw EngineError(op: "PiecewiseConstantSchedule", "needs one more value than boundaries; got \(boundaries.count) boundaries and \(values.count) values")
        }
        guard zip(boundaries, boundaries.dropFirst()).allSatisfy({ $0 < $1 }), (boundaries.first ?? 1) > 0 else {
            throw EngineError(op: "PiecewiseConstantSchedule", "boundaries must be positive and strictly increasing; got \(boundaries)")
        }
        self.boundaries = boundaries; self.values = values
    }

    public func learningRate(atIteration iteration: Int) -> Float {
        var k = 0
        while k < boundaries.count && iteration >= boundaries[k] { k += 1 }
        return values[k]
    }

    /// Paper B Table II (SGD, batch 128, 32k… 64k iterations): 0.01 for iterations 0–400 (warm-up),
    /// 0.1 to 32k, 0.01 to 48k, 0.001 to 64k (and after).
    public static let paperBTableII = try! PiecewiseConstantSchedule(boundaries: [400, 32_000, 48_000],
                                                                     values: [0.01, 0.1, 0.01, 0.001])

    /// Paper B Table II's schedule compressed to a run of `totalIterations` optimizer steps: the same
    /// values, with the boundaries at the same fractions of the run as 400, 32k and 48k are of 64k —
    /// ceil(T * 400 / 64000), T / 2, 3T / 4 (integer division). A short run thus still warms up,
    /// trains at 0.1 and ends with two decays (BatchNorm's running statistics settle in the low-lr
    /// phases, so eval-mode accuracy is not measured mid-swing). Throws when T < 4 (the boundaries
    /// would collide).
    ///
    /// ```swift
    /// let s = try PiecewiseConstantSchedule.paperBTableII(scaledTo: 250)   // boundaries [2, 125, 187]
    /// ```
    public static func paperBTableII(scaledTo totalIterations: Int) throws -> PiecewiseConstantSchedule {
        let t = totalIterations
        guard t >= 4 else {
            throw EngineError(op: "PiecewiseConstantSchedule.paperBTableII(scaledTo:)", "needs at least 4 iterations to place its three boundaries, got \(t)")
        }
        return try PiecewiseConstantSchedule(boundaries: [(t * 400 + 63_999) / 64_000, t / 2, 3 * t / 4],
                                             values: paperBTableII.values)
    }
}
