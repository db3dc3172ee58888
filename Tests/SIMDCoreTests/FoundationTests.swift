import XCTest
import SIMDCore

final class FoundationTests: XCTestCase {
    /// SplitMix64 reference values for seed 1234567 (from the published C reference).
    func testSplitMix64MatchesReference() {
        var rng = SeededRNG(seed: 1234567)
        let expected: [UInt64] = [6457827717110365317, 3203168211198807973, 9817491932198370423]
        XCTAssertEqual((0..<3).map { _ in rng.nextUInt64() }, expected)
    }

    func testUniformRangeAndDeterminism() {
        var a = SeededRNG(seed: 7), b = SeededRNG(seed: 7)
        let xs = (0..<1000).map { _ in a.uniform(-2, 3) }
        XCTAssertEqual(xs, (0..<1000).map { _ in b.uniform(-2, 3) })
        XCTAssertTrue(xs.allSatisfy { $0 >= -2 && $0 < 3 })
        let mean = xs.reduce(0, +) / 1000
        XCTAssertEqual(mean, 0.5, accuracy: 0.15)
    }

    /// Reference values from a Python transcription of SeededRNG (multiply-shift: ((x >> 32) * n) >> 32).
    func testBelowAndPermutationMatchReference() {
        var a = SeededRNG(seed: 11)
        XCTAssertEqual((0..<12).map { _ in a.below(7) }, [2, 1, 4, 3, 1, 3, 0, 5, 2, 6, 1, 1])
        var b = SeededRNG(seed: 3)
        XCTAssertEqual(b.permutation(10), [5, 7, 2, 8, 3, 9, 0, 4, 6, 1])
        var c = SeededRNG(seed: 5)
        let hits = Set((0..<500).map { _ in c.below(10) })
        XCTAssertEqual(hits, Set(0..<10), "below(10) must reach every value")
    }

    func testPermutationIsAPermutation() {
        var rng = SeededRNG(seed: 3)
        let p = rng.permutation(100)
        XCTAssertEqual(p.sorted(), Array(0..<100))
        XCTAssertNotEqual(p, Array(0..<100))
    }

    func testChunksCoverRangeExactly() {
        for count in [1, 2, 5, 17, 100] {
            for workers in 1...4 where workers <= count {
                let chunks = (0..<workers).map { Parallel.chunk($0, of: workers, count: count) }
                XCTAssertEqual(chunks.flatMap { Array($0) }, Array(0..<count))
            }
        }
    }

    func testTapeLeafGradientThroughSeed() throws {
        let tape = Tape()
        let x = tape.input(Tensor(shape: [3], scalars: [1, 2, 3]), requiresGrad: true)
        let grads = try tape.backward(from: x, seed: Tensor(shape: [3], scalars: [4, 5, 6]))
        XCTAssertEqual(grads[x]?.scalars, [4, 5, 6])
        XCTAssertThrowsError(try tape.backward(from: x, seed: Tensor(zeros: [2])))
    }

    func testGateValues() throws {
        XCTAssertEqual(Gate.hard.derivative(0.1), 1)
        XCTAssertEqual(Gate.hard.derivative(0), 0)
        XCTAssertEqual(Gate.sigmoid(temperature: 0.3).derivative(0), 0.5)
        XCTAssertEqual(Gate.sigmoid(temperature: 0.3).derivative(0.3), 1 / (1 + exp(-1)), accuracy: 1e-6)
        XCTAssertEqual(Gate.normalCDF(temperature: 0.6).derivative(0.6), 0.8413447, accuracy: 1e-6)
        XCTAssertThrowsError(try Gate.named("relu6", temperature: 1)) { e in
            XCTAssertTrue("\(e)".contains("hard, sigmoid, normal_cdf"))
        }
    }
}
