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

    /// Every index runs exactly once through the worker pool, also when a job calls Parallel from
    /// inside a job (the pool is busy: Dispatch runs the inner chunks) and when two threads call it
    /// at once; thousands of back-to-back jobs catch a lost wake-up (it would hang) or a worker
    /// running a finished job's body.
    func testWorkerPoolRunsEveryChunkOnceNestedAndConcurrent() {
        final class Hits: @unchecked Sendable {   // each slot written by the one worker owning it
            var counts: [Int]
            init(_ n: Int) { counts = Array(repeating: 0, count: n) }
        }
        for threads in [2, 3] {
            Parallel.$threadCount.withValue(threads) {
                let outer = 7, inner = 40
                let hits = Hits(outer * inner)
                Parallel.forEach(outer) { i in
                    Parallel.forEach(inner) { j in hits.counts[i * inner + j] += 1 }
                }
                XCTAssertEqual(hits.counts, Array(repeating: 1, count: outer * inner), "nested, \(threads) threads")

                let jobs = 3000, width = 5
                let a = Hits(jobs * width), b = Hits(jobs * width)
                DispatchQueue.concurrentPerform(iterations: 2) { caller in
                    let target = caller == 0 ? a : b
                    Parallel.$threadCount.withValue(threads) {   // task locals do not cross into Dispatch
                        for job in 0..<jobs {
                            Parallel.forEach(width) { k in target.counts[job * width + k] += job + 1 }
                        }
                    }
                }
                let expected = (0..<jobs * width).map { $0 / width + 1 }
                XCTAssertEqual(a.counts, expected, "caller 0, \(threads) threads")
                XCTAssertEqual(b.counts, expected, "caller 1, \(threads) threads")
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

    // MARK: The comparison helper every test uses

    /// A NaN or an infinity in either operand, or a shape mismatch, fails every comparison however
    /// loose the tolerance (a plain running `max` skips a NaN: `Swift.max(0, .nan)` is 0).
    func testDiscrepancyFailsOnNaNInfinityAndShape() {
        let good = Tensor(shape: [2, 3], scalars: [1, 2, 3, 4, 5, 6])
        let loose = Tolerance(relative: 1e9, absolute: 1e9)
        XCTAssertTrue(Discrepancy(good, good, tolerance: .exact).holds)
        XCTAssertEqual(good.maxAbsDifference(good), 0)
        for bad: Float in [.nan, .infinity, -.infinity] {
            for position in [0, 3, 5] {
                var broken = good
                broken.scalars[position] = bad
                for (a, b) in [(broken, good), (good, broken)] {
                    let d = Discrepancy(a, b, tolerance: loose)
                    XCTAssertFalse(d.holds, "\(bad) at \(position) must fail: \(d)")
                    XCTAssertEqual(d.worst, .infinity)
                    XCTAssertNotNil(d.failure)
                    XCTAssertEqual(a.maxAbsDifference(b), .infinity, "\(bad) at \(position)")
                    var running: Float = 0
                    running = max(running, a.maxAbsDifference(b))   // survives a running maximum
                    XCTAssertFalse(running <= 1e9)
                }
            }
        }
        // Element by element, in Double, a NaN after good pairs still fails.
        var d = Discrepancy(tolerance: loose)
        d.add(actual: 1.0, expected: 1.0); d.add(actual: Double.nan, expected: 1.0); d.add(actual: 2.0, expected: 2.0)
        XCTAssertFalse(d.holds); XCTAssertEqual(d.count, 3)
        // Shape and count mismatches.
        XCTAssertFalse(Discrepancy(good, good.reshaped([3, 2]), tolerance: loose).holds)
        XCTAssertEqual(good.maxAbsDifference(good.reshaped([6])), .infinity)
        XCTAssertFalse(Discrepancy([Float(1), 2], [Float(1), 2, 3], tolerance: loose).holds)
        // The tolerance: |a - e| <= absolute + relative |e|.
        let tol = Tolerance(relative: 1e-2, absolute: 1e-3)
        XCTAssertTrue(Discrepancy([Float(101)], [Float(100)], tolerance: tol).holds)     // 1 <= 1.001
        XCTAssertFalse(Discrepancy([Float(101.2)], [Float(100)], tolerance: tol).holds)  // 1.2 > 1.001
        XCTAssertTrue(Discrepancy([0.0009], [0.0], tolerance: tol).holds)               // the floor
        XCTAssertFalse(Discrepancy([0.0011], [0.0], tolerance: tol).holds)
        // Merging keeps a failure.
        var m = Discrepancy(good, good, tolerance: loose)
        var broken = good; broken.scalars[1] = .nan
        m.merge(Discrepancy(broken, good, tolerance: loose))
        XCTAssertFalse(m.holds)
    }
}
