// MARK: - Excitation pullback (paper A; docs/method.md, sections 1-2)
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
        // One implementation of the backward seed/target checks: ExplanationMethod.pullback.
        try ExplanationMethod.pullback(PixelModel(model, input: input), images, targets: targets, policy: policy)
    }

    /// Logits only (no tape recording).
    public static func logits<M: ImageClassifier>(model: M, images: Tensor, policy: GatePolicy = .vanilla,
                                                  input: ModelInput = .imageNet) throws -> Tensor {
        let tape = Tape(recording: false)
        let x = tape.input(images)
        return tape.value(try PixelModel(model, input: input).logits(tape, x, policy: policy))
    }
}
