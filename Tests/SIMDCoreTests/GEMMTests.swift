import XCTest
import SIMDCore

final class GEMMTests: XCTestCase {
    /// Runs fast and reference GEMM on random data; returns (max |diff|, max |ref|).
    func compare(m: Int, n: Int, k: Int, tA: Bool, tB: Bool, accumulate: Bool, seed: UInt64 = 1) -> (Float, Float) {
        var rng = SeededRNG(seed: seed)
        let lda = (tA ? m : k) + 3, ldb = (tB ? k : n) + 5, ldc = n + 2   // padded leading dims
        let a = (0..<((tA ? k : m) * lda)).map { _ in rng.uniform(-1, 1) }
        let b = (0..<((tB ? n : k) * ldb)).map { _ in rng.uniform(-1, 1) }
        let c0 = (0..<(m * ldc)).map { _ in rng.uniform(-1, 1) }
        var fast = c0, ref = c0
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            fast.withUnsafeMutableBufferPointer { cp in
                GEMM.multiply(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, transposeA: tA,
                              b: bp.baseAddress!, ldb: ldb, transposeB: tB, c: cp.baseAddress!, ldc: ldc, accumulate: accumulate)
            }
            ref.withUnsafeMutableBufferPointer { cp in
                GEMM.reference(m: m, n: n, k: k, a: ap.baseAddress!, lda: lda, transposeA: tA,
                               b: bp.baseAddress!, ldb: ldb, transposeB: tB, c: cp.baseAddress!, ldc: ldc, accumulate: accumulate)
            }
        } }
        var d = Discrepancy()   // NaN-aware: a NaN anywhere makes the difference +infinity
        for i in 0..<m { for j in 0..<ldc {
            if j >= n { XCTAssertEqual(fast[i * ldc + j], c0[i * ldc + j], "padding column written"); continue }
            d.add(actual: fast[i * ldc + j], expected: ref[i * ldc + j])
        } }
        return (Float(d.worst), Float(d.maxExpected))
    }

    func testTileConstants() {
        // Each profile's micro-tile is 6 rows x two vectors, 12 accumulators that fit its register
        // file: avx512 6x32 (SIMD16, zmm), avx2 6x16 (SIMD8, ymm), generic 6x8 (SIMD4, xmm/NEON).
        // Blocks are tile multiples.
        let expected: [KernelProfile: (vector: Int, rows: Int, columns: Int)] =
            [.avx512: (16, 6, 32), .avx2: (8, 6, 16), .generic: (4, 6, 8)]
        for profile in KernelProfile.allCases {
            let e = expected[profile]!
            XCTAssertEqual(profile.vectorWidth, e.vector, "\(profile)")
            XCTAssertEqual(profile.microTile.rows, e.rows, "\(profile)")
            XCTAssertEqual(profile.microTile.columns, e.columns, "\(profile)")
        }
        let current = KernelProfile.current
        print("kernel profile \(current), target CPU \(KernelProfile.targetCPU)")
        XCTAssertEqual(KernelVector.scalarCount, current.vectorWidth)
        XCTAssertEqual(GEMM.mr, current.microTile.rows)
        XCTAssertEqual(GEMM.nr, current.microTile.columns)
        XCTAssertEqual(GEMM.mc % GEMM.mr, 0)
        XCTAssertEqual(GEMM.nc % GEMM.nr, 0)
        #if arch(x86_64)
        // The build names the CPU it generated code for; the profile follows from it unless overridden.
        XCTAssertFalse(KernelProfile.targetCPU.isEmpty)
        #endif
    }

    func testMicroKernelSingleTile() {
        // One full MR x NR tile with kc = 5, both overwrite and accumulate.
        let kc = 5, nr = GEMM.nr
        let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
        let b = UnsafeMutableRawPointer.allocate(byteCount: kc * nr * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * nr)
        defer { a.deallocate(); b.deallocate() }
        for i in 0..<(kc * 6) { a[i] = Float(i % 7) - 3 }
        for i in 0..<(kc * nr) { b[i] = Float(i % 5) * 0.5 }
        let ldc = nr + 8
        var c = [Float](repeating: 1, count: 6 * ldc)
        c.withUnsafeMutableBufferPointer { GEMM.microKernel(kc, a, b, $0.baseAddress!, ldc, true) }
        for r in 0..<6 { for col in 0..<ldc {
            var s: Float = 0
            for p in 0..<kc { s += a[p * 6 + r] * b[p * nr + col % nr] }
            XCTAssertEqual(c[r * ldc + col], col < nr ? 1 + s : 1, accuracy: 1e-5)
        } }
    }

    func testEdgeMicroKernelMatchesFullKernelRows() {
        // The 2-row edge kernel gives, bit for bit, the first rows of the 6-row kernel's tile and
        // leaves the other rows alone.
        let kc = 300, nr = GEMM.nr
        let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
        let b = UnsafeMutableRawPointer.allocate(byteCount: kc * nr * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * nr)
        defer { a.deallocate(); b.deallocate() }
        var rng = SeededRNG(seed: 9)
        for i in 0..<(kc * 6) { a[i] = rng.uniform(-1, 1) }
        for i in 0..<(kc * nr) { b[i] = rng.uniform(-1, 1) }
        for accumulate in [false, true] {
            var full = [Float](repeating: 0.5, count: 6 * nr)
            full.withUnsafeMutableBufferPointer { GEMM.microKernel(kc, a, b, $0.baseAddress!, nr, accumulate) }
            for rows in 1...2 {
                var edge = [Float](repeating: 0.5, count: 6 * nr)
                edge.withUnsafeMutableBufferPointer { GEMM.microKernel2Rows(kc, a, b, $0.baseAddress!, nr, accumulate, rows: rows) }
                XCTAssertEqual(Array(edge[0..<(rows * nr)]), Array(full[0..<(rows * nr)]), "rows \(rows)")
                XCTAssertTrue(edge[(rows * nr)...].allSatisfy { $0 == 0.5 }, "rows past \(rows) written")
            }
        }
    }

    func testWindowMicroKernelSingleTile() {
        // The window micro-kernel reads B row p as the NR floats at b + offsets[p]: unaligned,
        // overlapping windows of one buffer (as in a padded image), overwrite and accumulate.
        let kc = 7, nr = GEMM.nr
        let offsets = [0, 1, 2, 37, 38, 39, 75]
        let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
        let b = UnsafeMutableRawPointer.allocate(byteCount: 128 * 4, alignment: 64).bindMemory(to: Float.self, capacity: 128)
        defer { a.deallocate(); b.deallocate() }
        for i in 0..<(kc * 6) { a[i] = Float(i % 7) - 3 }
        for i in 0..<128 { b[i] = Float(i % 11) * 0.25 - 1 }
        for accumulate in [false, true] {
            var c = [Float](repeating: 2, count: 6 * (nr + 16))
            offsets.withUnsafeBufferPointer { o in
                c.withUnsafeMutableBufferPointer { WindowConv.windowKernel(kc, a, b, o.baseAddress!, $0.baseAddress!, nr + 16, accumulate) }
            }
            for r in 0..<6 { for col in 0..<(nr + 16) {
                var s: Float = 0
                for p in 0..<kc { s += a[p * 6 + r] * b[offsets[p] + col % nr] }
                XCTAssertEqual(c[r * (nr + 16) + col], col < nr ? (accumulate ? 2 + s : s) : 2, accuracy: 1e-5)
            } }
        }
    }

    func testWindowEdgeMicroKernelsMatchFullKernelRows() {
        // The 2- and 4-row window edge kernels give, bit for bit, the first rows of the 6-row
        // window kernel's tile and leave the other rows alone.
        let kc = 300, nr = GEMM.nr
        let offsets = (0..<kc).map { p in (p / 9) * 40 + ((p % 9) / 3) * 13 + p % 3 }   // 3x3 taps on 13-wide rows
        let span = offsets.max()! + nr
        let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
        let b = UnsafeMutableRawPointer.allocate(byteCount: span * 4, alignment: 64).bindMemory(to: Float.self, capacity: span)
        defer { a.deallocate(); b.deallocate() }
        var rng = SeededRNG(seed: 10)
        for i in 0..<(kc * 6) { a[i] = rng.uniform(-1, 1) }
        for i in 0..<span { b[i] = rng.uniform(-1, 1) }
        offsets.withUnsafeBufferPointer { o in
            for accumulate in [false, true] {
                var full = [Float](repeating: 0.5, count: 6 * nr)
                full.withUnsafeMutableBufferPointer { WindowConv.windowKernel(kc, a, b, o.baseAddress!, $0.baseAddress!, nr, accumulate) }
                for rows in 1...4 {
                    var edge = [Float](repeating: 0.5, count: 6 * nr)
                    edge.withUnsafeMutableBufferPointer {
                        if rows <= 2 { WindowConv.windowKernel2Rows(kc, a, b, o.baseAddress!, $0.baseAddress!, nr, accumulate, rows: rows) }
                        else { WindowConv.windowKernel4Rows(kc, a, b, o.baseAddress!, $0.baseAddress!, nr, accumulate, rows: rows) }
                    }
                    XCTAssertEqual(Array(edge[0..<(rows * nr)]), Array(full[0..<(rows * nr)]), "rows \(rows)")
                    XCTAssertTrue(edge[(rows * nr)...].allSatisfy { $0 == 0.5 }, "rows past \(rows) written")
                }
            }
        }
    }

    func testAwkwardShapesAllTransposes() {
        var worst: Float = 0
        let sizes = [1, 7, 33, 97]
        for m in sizes { for n in sizes { for k in [1, 7, 33, 300] {
            for tA in [false, true] { for tB in [false, true] {
                let (d, mag) = compare(m: m, n: n, k: k, tA: tA, tB: tB, accumulate: (m + n + k) % 2 == 0)
                XCTAssertLessThanOrEqual(d, 1e-5 * max(1, mag) * Float(k).squareRoot(), "m\(m) n\(n) k\(k) tA\(tA) tB\(tB)")
                worst = max(worst, d)
            } }
        } } }
        print("GEMM awkward shapes: max |fast - reference| = \(worst)")
    }

    func testSingleRow() {
        // m = 1 takes the GEMV path (dot products, or row updates without packing).
        var worst: Float = 0
        for n in [1, 15, 16, 33, 1000] { for k in [1, 31, 32, 77, 600] { for tA in [false, true] { for tB in [false, true] {
            let (d, mag) = compare(m: 1, n: n, k: k, tA: tA, tB: tB, accumulate: (n + k) % 2 == 1)
            XCTAssertLessThanOrEqual(d, 1e-5 * max(1, mag) * Float(k).squareRoot(), "n\(n) k\(k) tA\(tA) tB\(tB)")
            worst = max(worst, d)
        } } } }
        print("GEMV (m = 1): max |fast - reference| = \(worst)")
    }

    func testLargeMultiBlock() {
        // Crosses MC, NC and KC block boundaries and edge tiles in every dimension.
        let (d, mag) = compare(m: 197, n: 1090, k: 530, tA: false, tB: false, accumulate: true)
        print("GEMM 197x1090x530: max |fast - reference| = \(d) (max |C| = \(mag))")
        XCTAssertLessThan(d, 1e-4 * max(1, mag))
        let (d2, mag2) = compare(m: 400, n: 45, k: 260, tA: true, tB: true, accumulate: false)
        print("GEMM 400x45x260 (tA,tB): max |fast - reference| = \(d2)")
        XCTAssertLessThan(d2, 1e-4 * max(1, mag2))
    }

    func testTransposedProductScratchAccumulation() throws {
        // Small N with large M runs as C^T = B^T A^T: C^T accumulates in a worker scratch over all
        // K blocks (k > kc) and is stored once per NC block (m > nc), overwrite and accumulate.
        XCTAssertTrue(GEMM.prefersTransposedProduct(m: 1100, n: 10))
        XCTAssertEqual(GEMM.prefersTransposedProduct(m: 1100, n: 20), GEMM.nr > 8)   // 20 -> 24 with 8-wide tiles
        // 14x14 maps (N = 196): transposed only with deep K (ResNet l3 3x3 forward, K = 2304), and
        // only with 32-wide tiles (196 -> 224 columns; 16-wide tiles pad to 208, 8-wide to 200).
        XCTAssertEqual(GEMM.prefersTransposedProduct(m: 256, n: 196, k: 2304), GEMM.nr == 32)
        XCTAssertFalse(GEMM.prefersTransposedProduct(m: 2304, n: 196, k: 256))
        var worst: Float = 0
        for (m, n, k) in [(1100, 20, 600), (1100, 10, 300), (300, 49, 530), (61, 7, 257), (256, 196, 2304)] { for acc in [false, true] {
            let (d, mag) = compare(m: m, n: n, k: k, tA: (m + k) % 2 == 0, tB: acc, accumulate: acc)
            XCTAssertLessThan(d, 1e-4 * max(1, mag), "\(m)x\(n)x\(k) accumulate \(acc)")
            worst = max(worst, d)
        } }
        print("GEMM transposed product (scratch C^T): max |fast - reference| = \(worst)")
        var rng = SeededRNG(seed: 11)
        let a = rng.uniformTensor([1100, 600], bound: 1), b = rng.uniformTensor([600, 20], bound: 1)
        let one = try Parallel.$threadCount.withValue(1) { try GEMM.matmul(a, b) }
        let two = try Parallel.$threadCount.withValue(2) { try GEMM.matmul(a, b) }
        let three = try Parallel.$threadCount.withValue(3) { try GEMM.matmul(a, b) }
        XCTAssertEqual(one.scalars, two.scalars, "1100x20x600: 1 vs 2 threads")
        XCTAssertEqual(one.scalars, three.scalars, "1100x20x600: 1 vs 3 threads")
    }

    func testZeroK() {
        var c: [Float] = [5, 5, 5, 5]
        let a: [Float] = [0], b: [Float] = [0]
        c.withUnsafeMutableBufferPointer { cp in
            GEMM.multiply(m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, c: cp.baseAddress!, ldc: 2, accumulate: true)
        }
        XCTAssertEqual(c, [5, 5, 5, 5])
        c.withUnsafeMutableBufferPointer { cp in
            GEMM.multiply(m: 2, n: 2, k: 0, a: a, lda: 1, b: b, ldb: 2, c: cp.baseAddress!, ldc: 2)
        }
        XCTAssertEqual(c, [0, 0, 0, 0])
    }

    func testThreadCountIndependence() throws {
        var rng = SeededRNG(seed: 9)
        // Column-partitioned (large N) and row-partitioned (small N) shapes.
        for (m, n, k) in [(70, 1000, 300), (300, 49, 700), (13, 13, 13), (1, 3000, 500)] {
            let a = rng.uniformTensor([m, k], bound: 1), b = rng.uniformTensor([k, n], bound: 1)
            let bt = rng.uniformTensor([n, k], bound: 1)
            let one = try Parallel.$threadCount.withValue(1) { try GEMM.matmul(a, b) }
            let two = try Parallel.$threadCount.withValue(2) { try GEMM.matmul(a, b) }
            let three = try Parallel.$threadCount.withValue(3) { try GEMM.matmul(a, b) }
            let oneT = try Parallel.$threadCount.withValue(1) { try GEMM.matmul(a, bt, transposeB: true) }
            let twoT = try Parallel.$threadCount.withValue(2) { try GEMM.matmul(a, bt, transposeB: true) }
            let threeT = try Parallel.$threadCount.withValue(3) { try GEMM.matmul(a, bt, transposeB: true) }
            XCTAssertEqual(oneT.scalars, twoT.scalars, "\(m)x\(n)x\(k) B^T: 1 vs 2 threads")
            XCTAssertEqual(oneT.scalars, threeT.scalars, "\(m)x\(n)x\(k) B^T: 1 vs 3 threads")
            // Transposed A (the weight-gradient orientation): A stored [k, m].
            let at = rng.uniformTensor([k, m], bound: 1)
            let oneA = try Parallel.$threadCount.withValue(1) { try GEMM.matmul(at, b, transposeA: true) }
            for threads in [2, 3] {
                let many = try Parallel.$threadCount.withValue(threads) { try GEMM.matmul(at, b, transposeA: true) }
                XCTAssertEqual(oneA.scalars, many.scalars, "\(m)x\(n)x\(k) A^T: 1 vs \(threads) threads")
            }
            XCTAssertEqual(one.scalars, two.scalars, "\(m)x\(n)x\(k): 1 vs 2 threads")
            XCTAssertEqual(one.scalars, three.scalars, "\(m)x\(n)x\(k): 1 vs 3 threads")
        }
    }

    func testMatmulShapeError() {
        XCTAssertThrowsError(try GEMM.matmul(Tensor(zeros: [2, 3]), Tensor(zeros: [4, 5]))) { e in
            XCTAssertEqual("\(e)", "matmul: shape mismatch: inner dimensions to agree (3 vs 4); got [2, 3] and [4, 5]")
        }
    }
}
