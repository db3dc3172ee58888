import XCTest
import Foundation
import SIMDCore
import Recipes

/// The explanation-method registry on the small CNN (random weights: the identities below hold for
/// any weights).
final class ExplanationMethodTests: XCTestCase {
    let model = SmallCNN(seed: 5)

    func input(_ n: Int, seed: UInt64 = 9) -> Tensor {
        var rng = SeededRNG(seed: seed)
        return rng.uniformTensor([n, 1, 28, 28], bound: 1)
    }

    func method(_ yaml: String) throws -> ExplanationMethod {
        try ExplanationMethod.parse(try YAMLParser.parse(yaml, file: "m.yaml"))
    }

    func logit(_ x: Tensor, _ target: Int) throws -> Double {
        let tape = Tape(recording: false)
        let y = tape.value(try model.logits(tape, tape.input(x), policy: .vanilla))
        return Double(y.scalars[target])
    }

    func testInferenceLogitsInBatchesAreTheLogitsOfEachImage() throws {
        let x = input(5)
        let tape = Tape(recording: false)
        let whole = tape.value(try model.logits(tape, tape.input(x), policy: .vanilla))
        for batch in [1, 2, 5, 7] {
            let batched = try model.inferenceLogits(x, batchSize: batch)
            XCTAssertEqual(batched.shape, [5, 10], "batch \(batch)")
            let d = Discrepancy(batched, whole, tolerance: Tolerance(relative: 1e-5, absolute: 1e-5))
            XCTAssertTrue(d.holds, "batch \(batch): \(d)")
        }
        XCTAssertThrowsError(try model.inferenceLogits(x, batchSize: 0))
    }

    func testInputTimesGradientIsExactlyTheProduct() throws {
        let x = input(2)
        let g = try ExplanationMethod.gradient.attribute(model, x, targets: [3, 7])
        let ixg = try method("input_x_gradient").attribute(model, x, targets: [3, 7])
        for i in 0..<x.count { XCTAssertEqual(ixg.scalars[i], x.scalars[i] * g.scalars[i]) }
    }

    func testSmoothGradWithZeroNoiseIsItsBaseAndIsSeeded() throws {
        let x = input(1)
        let base = try method("{method: excitation_pullback, temperature: 0.3}").attribute(model, x, targets: [4])
        let zero = try method("{method: smoothgrad, sigma: 0, samples: 3, base: {method: excitation_pullback, temperature: 0.3}}")
            .attribute(model, x, targets: [4])
        XCTAssertLessThan(zero.maxAbsDifference(base), 1e-6)
        let a = try method("{method: smoothgrad, sigma: 0.2, samples: 4, seed: 11}").attribute(model, x, targets: [4])
        let b = try method("{method: smoothgrad, sigma: 0.2, samples: 4, seed: 11}").attribute(model, x, targets: [4])
        let c = try method("{method: smoothgrad, sigma: 0.2, samples: 4, seed: 12}").attribute(model, x, targets: [4])
        XCTAssertEqual(a, b, "same seed, same attribution")
        XCTAssertGreaterThan(a.maxAbsDifference(c), 0, "another seed draws other noise")
    }

    /// Completeness (Sundararajan et al. 2017): sum of integrated gradients = f(x) - f(baseline),
    /// up to the path-integral discretisation error.
    func testIntegratedGradientsCompleteness() throws {
        let x = input(1)
        let ig = try method("{method: integrated_gradients, steps: 256, baseline: 0}").attribute(model, x, targets: [2])
        let sum = ig.scalars.reduce(0.0) { $0 + Double($1) }
        let delta = try logit(x, 2) - logit(Tensor(zeros: x.shape), 2)
        print("integrated gradients: sum \(sum), f(x) - f(0) = \(delta)")
        XCTAssertEqual(sum, delta, accuracy: 0.02 * max(1, abs(delta)))
    }

    func testPullbackTendsToGradientAsTemperatureFalls() throws {
        let x = input(1)
        let g = try ExplanationMethod.gradient.attribute(model, x, targets: [1])
        let cold = try method("{method: excitation_pullback, temperature: 0.0001}").attribute(model, x, targets: [1])
        let warm = try method("{method: excitation_pullback, temperature: 0.3}").attribute(model, x, targets: [1])
        let cCold = g.cosineSimilarity(cold), cWarm = g.cosineSimilarity(warm)
        print("cosine to the gradient: T=1e-4 \(cCold), T=0.3 \(cWarm)")
        XCTAssertGreaterThan(cCold, 0.9999)
        XCTAssertLessThan(cWarm, cCold)
    }

    func testUnknownNamesAndBadOptions() {
        XCTAssertThrowsError(try method("excitation_backprop")) {
            let s = "\($0)"
            XCTAssertTrue(s.contains("a different method; paper A's method is 'excitation_pullback'"), s)
            XCTAssertTrue(s.contains("gradient, excitation_pullback, input_x_gradient, smoothgrad, integrated_gradients"), s)
        }
        XCTAssertThrowsError(try method("excitation_pulback")) {
            XCTAssertTrue("\($0)".contains("did you mean 'excitation_pullback'"), "\($0)")
        }
        XCTAssertThrowsError(try method("{method: excitation_pullback, temprature: 0.3}")) {
            XCTAssertTrue("\($0)".contains("did you mean 'temperature'"), "\($0)")
        }
        XCTAssertThrowsError(try method("{method: excitation_pullback, temperature: 0}"))
        XCTAssertThrowsError(try method("{method: excitation_pullback, gate: relu6}")) {
            XCTAssertTrue("\($0)".contains("hard, sigmoid, normal_cdf"), "\($0)")
        }
        XCTAssertThrowsError(try ExplanationMethod.gradient.attribute(model, input(2), targets: [1])) {
            XCTAssertTrue("\($0)".contains("one target per image"), "\($0)")
        }
    }
}
