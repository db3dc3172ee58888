// MARK: - Spectra: symmetric eigen-decomposition, empirical CDFs, the memorisation network's Gram
//
// The NeurIPS 2020 appendix studies the Gram matrix of the neural path kernel through its
// eigenvalues: their empirical distribution function (e.c.d.f.) against the ideal spectrum. The
// matrices are small (n = 200), so a cyclic Jacobi solver in Double is exact enough and needs no
// LAPACK; it also returns eigenvectors, which express nu = y^T H^-1 y as sum_k (u_k . y)^2 / lambda_k.
import Foundation
import SIMDCore

// MARK: Eigen-decomposition

/// Eigenvalues (ascending) and orthonormal eigenvectors of a symmetric matrix.
///
/// ```swift
/// let e = SymmetricEigen(SymmetricMatrix(n: 2, values: [2, 1, 1, 2]))
/// e.values            // [1, 3]
/// e.vector(1)         // ≈ [0.707, 0.707]
/// ```
public struct SymmetricEigen: Sendable {
    /// Ascending.
    public let values: [Double]
    /// Row-major n x n; ROW k is the unit eigenvector of `values[k]` (empty if not requested).
    public let vectors: [Double]
    public let n: Int
    /// Jacobi sweeps used until the off-diagonal mass fell below the tolerance.
    public let sweeps: Int

    /// Cyclic Jacobi rotations until the off-diagonal Frobenius mass is below `tolerance` relative to
    /// the matrix's Frobenius norm (or `maxSweeps`). The input must be symmetric; only its values are read.
    public init(_ a: SymmetricMatrix, vectors wantVectors: Bool = true, tolerance: Double = 1e-12, maxSweeps: Int = 100) {
        let n = a.n
        var m = a.values
        var v = [Double](repeating: 0, count: wantVectors ? n * n : 0)
        if wantVectors { for i in 0..<n { v[i * n + i] = 1 } }
        let frob = m.reduce(0) { $0 + $1 * $1 }.squareRoot()
        var sweeps = 0
        while sweeps < maxSweeps {
            var off = 0.0
            for i in 0..<n { for j in 0..<n where i != j { off += m[i * n + j] * m[i * n + j] } }
            if off.squareRoot() <= tolerance * max(frob, 1e-300) { break }
            sweeps += 1
            for p in 0..<n {
                for q in (p + 1)..<max(p + 1, n) {
                    let apq = m[p * n + q]
                    if apq == 0 { continue }
                    let app = m[p * n + p], aqq = m[q * n + q]
                    // tan of the rotation angle that zeroes A[p,q]; the smaller root for stability.
                    let theta = (aqq - app) / (2 * apq)
                    let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                    let c = 1 / (t * t + 1).squareRoot(), s = t * c
                    for k in 0..<n {
                        let akp = m[k * n + p], akq = m[k * n + q]
                        m[k * n + p] = c * akp - s * akq
                        m[k * n + q] = s * akp + c * akq
                    }
                    for k in 0..<n {
                        let apk = m[p * n + k], aqk = m[q * n + k]
                        m[p * n + k] = c * apk - s * aqk
                        m[q * n + k] = s * apk + c * aqk
                    }
                    if wantVectors {
                        // Accumulate V <- V J: columns p, q of V are the eigenvector estimates.
                        for k in 0..<n {
                            let vkp = v[k * n + p], vkq = v[k * n + q]
                            v[k * n + p] = c * vkp - s * vkq
                            v[k * n + q] = s * vkp + c * vkq
                        }
                    }
                }
            }
        }
        let order = (0..<n).sorted { m[$0 * n + $0] < m[$1 * n + $1] }
        values = order.map { m[$0 * n + $0] }
        var rows = [Double](repeating: 0, count: wantVectors ? n * n : 0)
        if wantVectors {
            for (r, col) in order.enumerated() { for k in 0..<n { rows[r * n + k] = v[k * n + col] } }
        }
        vectors = rows
        self.n = n
        self.sweeps = sweeps
    }

    /// Unit eigenvector of `values[k]`.
    public func vector(_ k: Int) -> [Double] { Array(vectors[(k * n)..<((k + 1) * n)]) }
}

// MARK: Empirical distribution function

/// The e.c.d.f. F(t) = #{i : x_i <= t} / n of a sample (the NeurIPS 2020 appendix plots the
/// eigenvalues' e.c.d.f.).
///
/// ```swift
/// let f = EmpiricalCDF([3, 1, 2, 2])
/// f(2)          // 0.75
/// f.steps       // [(1, 0.25), (2, 0.75), (3, 1.0)]  — plot as a staircase
/// ```
public struct EmpiricalCDF: Sendable {
    /// Ascending.
    public let sorted: [Double]

    public init(_ sample: [Double]) { sorted = sample.sorted() }

    public func callAsFunction(_ t: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        // Count of x_i <= t by binary search (upper bound).
        var lo = 0, hi = sorted.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if sorted[mid] <= t { lo = mid + 1 } else { hi = mid }
        }
        return Double(lo) / Double(sorted.count)
    }

    /// (distinct value, F(value)) for every distinct value, ascending: the corners of the staircase.
    public var steps: [(value: Double, fraction: Double)] {
        var out: [(Double, Double)] = []
        let n = Double(sorted.count)
        for (i, x) in sorted.enumerated() {
            if i + 1 < sorted.count && sorted[i + 1] == x { continue }
            out.append((x, Double(i + 1) / n))
        }
        return out
    }

    /// Sup over t of |F(t) - G(t)| (the Kolmogorov-Smirnov distance between two e.c.d.f.s).
    public func supDistance(to other: EmpiricalCDF) -> Double {
        var worst = 0.0
        for t in sorted + other.sorted { worst = max(worst, abs(self(t) - other(t))) }
        return worst
    }
}

// MARK: Memorisation network (NeurIPS 2020 appendix)

/// The memorisation network's Gram matrix and its ideal spectrum, for one depth and width.
///
/// Setting: input fixed at 1, every hidden gate Bernoulli(p) independently per example, `width` units
/// in each of the `d - 1` gated layers of a depth-`d` network. Then NPK(s, s') = prod_l overlap_l(s, s')
/// with E[overlap(s, s)] = p w and E[overlap(s, s')] = p^2 w for s != s'. Normalising the diagonal to
/// 1 (trace-normalisation to trace n), the expected Gram is
///
///     (1 - mu^(d-1)) I + mu^(d-1) 1 1^T,    mu = p^2 w / (p w) = p = 1/2,
///
/// whose eigenvalues are 1 - mu^(d-1) (n - 1 times) and 1 + (n - 1) mu^(d-1). Depth pushes the bulk
/// towards 1 (a better-conditioned kernel: easier memorisation) but multiplies the finite-width
/// fluctuations of d - 1 independent overlaps, which spread the bulk again: "depth helps up to a point".
///
/// ```swift
/// let s = MemorisationSpectrum(examples: 200, width: 25, depth: 8, seed: 1)
/// s.measured.count   // 200
/// s.ideal.last!      // 1 + 199 / 128
/// ```
public struct MemorisationSpectrum: Sendable {
    public let examples: Int
    public let width: Int
    public let depth: Int
    /// Measured eigenvalues of the trace-normalised Gram (trace = n), ascending.
    public let measured: [Double]
    /// 1 - mu^(d-1) (n - 1 times), then 1 + (n - 1) mu^(d-1).
    public let ideal: [Double]

    /// mu of the appendix for Bernoulli(1/2) gates.
    public static let mu = 0.5

    public init(examples n: Int, width: Int, depth: Int, seed: UInt64) {
        precondition(n >= 1 && width >= 1 && depth >= 2, "MemorisationSpectrum: need n >= 1, width >= 1, depth >= 2")
        examples = n; self.width = width; self.depth = depth
        let gram = PathKernel.memorisationGram(examples: n, width: width, gatedLayers: depth - 1, seed: seed)
        measured = SymmetricEigen(gram, vectors: false).values
        ideal = PathKernel.idealMemorisationSpectrum(examples: n, gatedLayers: depth - 1, mu: Self.mu)
    }

    /// Mean |lambda - 1| over the bulk (all but the largest eigenvalue): 0 is the best-conditioned
    /// kernel a trace-n Gram with one "mean" direction can have.
    public var bulkDeviation: Double { PathKernel.bulkDeviationFromOne(measured) }
    public var idealBulkDeviation: Double { PathKernel.bulkDeviationFromOne(ideal) }
    /// Median measured eigenvalue (the middle of the e.c.d.f.; ideally 1 - mu^(d-1), just below 1).
    public var median: Double { measured.isEmpty ? 0 : measured[(measured.count - 1) / 2] }
    /// Smallest measured eigenvalue (how well the kernel can fit arbitrary labels).
    public var smallest: Double { measured.first ?? 0 }
    /// Sup distance between the measured and the ideal e.c.d.f.
    public var distanceToIdeal: Double { EmpiricalCDF(measured).supDistance(to: EmpiricalCDF(ideal)) }
}
