// MARK: - Projected gradient ascent along pullbacks (paper A; docs/method.md, section 3)
//
// Targeted ascent on the RAW target logit, per image, in the model's input space [-1, 1]:
//   x0 = image; x = x0
//   repeat steps:  g = attribution of logit[target] at x   (excitation pullback, or vanilla gradient)
//                  x = x + alpha * g / max(||g||_2, 1e-20)
//                  delta = x - x0; delta *= min(1, eps / max(||delta||_2, 1e-20))
//                  x = clamp(x0 + delta, -1, 1)
// Norms are per image, accumulated in Double.
import SIMDCore

/// Paper A's PGA (defaults alpha 20, eps 100, 5 steps at 224x224).
///
/// ```swift
/// let pga = PGA(method: .excitationPullback(try .excitation(temperature: 0.3)))
/// let r = try pga.grid(model: net, images: x, targets: [0, 482, 497, 569, 574, 9])
/// // r.perturbed[i * 6 + k] = image i pushed toward target k; r.differences = perturbed - clean
/// ```
public struct PGA {
    public var alpha: Float
    public var eps: Float
    public var steps: Int
    /// Whose gradients guide the ascent: `.excitationPullback(policy)` or `.gradient`.
    public var method: ExplanationMethod
    public var epsForDivision: Double = 1e-20

    public init(alpha: Float = 20, eps: Float = 100, steps: Int = 5, method: ExplanationMethod) {
        self.alpha = alpha; self.eps = eps; self.steps = steps; self.method = method
    }

    /// Ascent along the backward pass of `policy` (vanilla gradient when `.vanilla`).
    public init(alpha: Float = 20, eps: Float = 100, steps: Int = 5, policy: GatePolicy) {
        self.init(alpha: alpha, eps: eps, steps: steps,
                  method: policy == .vanilla ? .gradient : .excitationPullback(policy))
    }

    public struct Result {
        /// `[B, C, H, W]` perturbed images in [-1, 1].
        public var perturbed: Tensor
        /// `perturbed - clean`, same shape.
        public var differences: Tensor
    }

    /// What `ascend` shows its observer at step `step` (0-based), before the step is taken: the
    /// current images, the attribution the step follows, and, when the method's own pass computes
    /// them (gradient, excitation pullback), the images' logits.
    public typealias Observer = (_ step: Int, _ x: Tensor, _ logits: Tensor?, _ attribution: Tensor) throws -> Void

    /// One target per image: image i ascends logit `targets[i]`. `observe` runs before every step
    /// (an error it throws stops the ascent: how an interactive caller cancels).
    public func ascend(model: Classifier, images: Tensor, targets: [Int], observe: Observer? = nil) throws -> Result {
        guard steps >= 0, alpha.isFinite, eps.isFinite, eps >= 0 else {
            throw EngineError(op: "PGA", "needs steps >= 0 and finite alpha, eps >= 0; got steps \(steps), alpha \(alpha), eps \(eps)")
        }
        let x0 = images
        var x = images
        let n = images.shape.first ?? 0
        let per = n == 0 ? 0 : images.count / n
        for k in 0..<steps {
            let g: Tensor
            switch (observe, method) {
            case (nil, _):
                g = try method.attribute(model, x, targets: targets)
            case (let observe?, .gradient), (let observe?, .excitationPullback):
                let policy: GatePolicy
                if case .excitationPullback(let p) = method { policy = p } else { policy = .vanilla }
                let r = try ExplanationMethod.pullback(model, x, targets: targets, policy: policy)
                g = r.gradient
                try observe(k, x, r.logits, g)
            case (let observe?, _):
                g = try method.attribute(model, x, targets: targets)
                try observe(k, x, nil, g)
            }
            for i in 0..<n {
                let r = (i * per)..<((i + 1) * per)
                var gn = 0.0
                for j in r { gn += Double(g.scalars[j]) * Double(g.scalars[j]) }
                let step = Double(alpha) / Swift.max(gn.squareRoot(), epsForDivision)
                var dn = 0.0
                for j in r {
                    x.scalars[j] += Float(step * Double(g.scalars[j]))
                    let d = Double(x.scalars[j] - x0.scalars[j])
                    dn += d * d
                }
                let factor = Swift.min(1, Double(eps) / Swift.max(dn.squareRoot(), epsForDivision))
                for j in r {
                    let d = (x.scalars[j] - x0.scalars[j]) * Float(factor)
                    x.scalars[j] = Swift.min(Swift.max(x0.scalars[j] + d, -1), 1)
                }
            }
        }
        var diff = x
        for j in 0..<diff.count { diff.scalars[j] -= x0.scalars[j] }
        return Result(perturbed: x, differences: diff)
    }

    /// Every image toward every target: row `i * targets.count + k` is image i toward `targets[k]`.
    /// Runs `batchSize` (image, target) pairs per forward pass; `progress(done)` after each batch.
    public func grid(model: Classifier, images: Tensor, targets: [Int], batchSize: Int = 6,
                     progress: ((Int) -> Void)? = nil) throws -> Result {
        guard images.rank == 4, batchSize > 0 else {
            throw EngineError(op: "PGA.grid", "images must be [N, C, H, W] and batchSize > 0; got \(images.shape), \(batchSize)")
        }
        let n = images.shape[0], k = targets.count, per = images.count / Swift.max(n, 1)
        let pairs = (0..<(n * k)).map { ($0 / k, targets[$0 % k]) }
        var perturbed = [Float](), diff = [Float]()
        perturbed.reserveCapacity(n * k * per); diff.reserveCapacity(n * k * per)
        for start in stride(from: 0, to: pairs.count, by: batchSize) {
            let chunk = pairs[start..<Swift.min(start + batchSize, pairs.count)]
            var batch = [Float]()
            batch.reserveCapacity(chunk.count * per)
            for (i, _) in chunk { batch += images.scalars[(i * per)..<((i + 1) * per)] }
            var shape = images.shape; shape[0] = chunk.count
            let r = try ascend(model: model, images: Tensor(shape: shape, scalars: batch), targets: chunk.map(\.1))
            perturbed += r.perturbed.scalars; diff += r.differences.scalars
            progress?(start + chunk.count)
        }
        var shape = images.shape; shape[0] = n * k
        return Result(perturbed: Tensor(shape: shape, scalars: perturbed), differences: Tensor(shape: shape, scalars: diff))
    }
}
