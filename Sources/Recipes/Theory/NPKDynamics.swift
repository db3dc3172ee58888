// MARK: - How well a kernel fits labels: nu = y^T H^-1 y (NeurIPS 2020 Figure 2, middle)
//
// With H the trace-normalised NPK Gram (trace 1), nu = y^T H^-1 y = sum_k (u_k . y)^2 / lambda_k is
// small when the labels lie along the kernel's large-eigenvalue directions: the kernel "explains" the
// labels. NeurIPS 2020 tracks it during training and sees it fall as the gates are learnt.
// Computed by a Cholesky solve; `SymmetricEigen` gives an independent check.
import Foundation
import SIMDCore

extension PathKernel {
    /// x with A x = b for a symmetric positive definite A (Cholesky, forward and back substitution).
    ///
    /// ```swift
    /// try PathKernel.solve(SymmetricMatrix(n: 2, values: [4, 2, 2, 3]), [2, 1])   // [0.5, 0]
    /// ```
    public static func solve(_ a: SymmetricMatrix, _ b: [Double]) throws -> [Double] {
        guard b.count == a.n else { throw EngineError(op: "PathKernel.solve", "right-hand side has \(b.count) entries for a \(a.n)x\(a.n) matrix") }
        let n = a.n
        let l = try cholesky(a)
        var z = b
        for i in 0..<n {   // L z = b
            var s = z[i]
            for k in 0..<i { s -= l[i * n + k] * z[k] }
            z[i] = s / l[i * n + i]
        }
        var x = z
        for i in stride(from: n - 1, through: 0, by: -1) {   // L^T x = z
            var s = x[i]
            for k in (i + 1)..<max(i + 1, n) { s -= l[k * n + i] * x[k] }
            x[i] = s / l[i * n + i]
        }
        return x
    }

    /// nu = sum_k (u_k . y)^2 / lambda_k from the eigen-decomposition: the same number as `nu(_:labels:)`
    /// by a different route (and what explains it: which directions of the kernel the labels use).
    public static func nuSpectral(_ h: SymmetricMatrix, labels y: [Double]) throws -> Double {
        guard y.count == h.n else { throw EngineError(op: "PathKernel.nuSpectral", "labels have \(y.count) entries for a \(h.n)x\(h.n) kernel") }
        let e = SymmetricEigen(h)
        guard let smallest = e.values.first, smallest > 0 else {
            throw EngineError(op: "PathKernel.nuSpectral", "kernel is not positive definite (smallest eigenvalue \(e.values.first ?? 0))")
        }
        var nu = 0.0
        for k in 0..<h.n {
            let u = e.vector(k)
            let p = zip(u, y).reduce(0) { $0 + $1.0 * $1.1 }
            nu += p * p / e.values[k]
        }
        return nu
    }
}
