// MARK: - Excitation pullback (SPEC A1)
//
// The input gradient of one logit per image, with the backward gates the policy chooses:
//   GatePolicy.vanilla                      → the vanilla gradient
//   GatePolicy.excitation(temperature: 0.3) → paper A's excitation pullback
// Images are pixels in [-1, 1]; `ModelInput` maps them to the network's normalised input, so the
// gradient is with respect to the [-1, 1] pixels (what PGA moves). Weights are tape constants: no
// weight gradient is computed.
import SIMDCore

public enum Pullback {
    /// Logits and the gradient of `logit[i, targets[i]]` with respect to image i.
    ///
    /// ```swift
    /// let (logits, pullback) = try Pullback.compute(model: net, images: x, targets: [0, 497],
    ///                                               policy: try .excitation(temperature: 0.3))
    /// ```
    /// - Parameters:
    ///   - images: `[N, 3, H, W]`, pixels in [-1, 1].
    ///   - targets: one class index per image.
    /// - Returns: logits `[N, classes]` and the pullback `[N, 3, H, W]`.
    public static func compute<M: ImageClassifier>(model: M, images: Tensor, targets: [Int], policy: GatePolicy,
                                                   input: ModelInput = .imageNet) throws -> (logits: Tensor, gradient: Tensor) {
        guard images.rank == 4, images.shape[1] == input.mean.count else {
            throw EngineError(op: "Pullback", "images must be [N, \(input.mean.count), H, W], got \(images.shape)")
        }
        guard targets.count == images.shape[0] else {
            throw EngineError(op: "Pullback", "\(targets.count) targets for \(images.shape[0]) images; need one per image")
        }
        let tape = Tape()
        let x = tape.input(images, requiresGrad: true)
        let y = try model.logits(tape: tape, input: try input.apply(tape: tape, x), policy: policy)
        let logits = tape.value(y)
        let classes = logits.shape[1]
        var seed = Tensor(zeros: logits.shape)
        for (i, t) in targets.enumerated() {
            guard t >= 0 && t < classes else {
                throw EngineError(op: "Pullback", "target \(t) of image \(i) is not a class index (0..<\(classes))")
            }
            seed.scalars[i * classes + t] = 1
        }
        guard let g = try tape.backward(from: y, seed: seed)[x] else {
            throw EngineError(op: "Pullback", "no gradient reached the input of \(model.name)")
        }
        return (logits, g)
    }

    /// Logits only (no tape recording).
    public static func logits<M: ImageClassifier>(model: M, images: Tensor, policy: GatePolicy = .vanilla,
                                                  input: ModelInput = .imageNet) throws -> Tensor {
        let tape = Tape(recording: false)
        let x = tape.input(images)
        return tape.value(try model.logits(tape: tape, input: try input.apply(tape: tape, x), policy: policy))
    }
}
