// MARK: - Neural path kernel (NeurIPS 2020; paper B)
//
// Paths run from one input node through one unit of every hidden layer to the output. On a path
// p the activity is A(x, p) = prod of the gates on p, the neural path feature phi(x, p) =
// x_in(p) * A(x, p), the neural path value v(p) = prod of the weights on p, and the output is
// y(x) = <phi(x), v>. The neural path kernel is
//
//   NPK(x, x') = <phi(x), phi(x')> = <x, x'> * prod_l <G_l(x), G_l(x')>      (FC networks)
//
// i.e. the input Gram times, per layer, the OVERLAP: the number of hidden gates on for both inputs.
// Measurements here (all in Double):
//   * the NPK Gram of a set of examples under a network's gates (`gram`),
//   * its trace normalisation H = K / trace(K) and nu = y^T H^-1 y (Cholesky solve), the quantity
//     NeurIPS 2020 Figure 2 tracks during training,
//   * the memorisation network of the NeurIPS 2020 appendix: input fixed at 1, Bernoulli(1/2) gates
//     per example; its ideal Gram (diagonal normalised to 1) has eigenvalues 1 - mu^(d-1) (n-1 times)
//     and 1 + (n-1) mu^(d-1), mu = 1/2 here; measured with a cyclic Jacobi eigen-solver.
import Foundation
import SIMDCore

/// A dense symmetric n x n matrix of Doubles (row-major).
public struct SymmetricMatrix: Equatable, Sendable {
    public let n: Int
    public var values: [Double]

    public init(n: Int, values: [Double]) {
        precondition(values.count == n * n, "SymmetricMatrix: \(n)x\(n) needs \(n * n) values")
        self.n = n; self.values = values
    }

    public subscript(i: Int, j: Int) -> Double {
        get { values[i * n + j] }
        set { values[i * n + j] = newValue }
    }

    public var trace: Double { (0..<n).reduce(0) { $0 + self[$1, $1] } }

    /// Every entry multiplied by `s`.
    public func scaled(_ s: Double) -> SymmetricMatrix { SymmetricMatrix(n: n, values: values.map { $0 * s }) }
}

/// Neural path kernel measurements, named as in the papers.
public enum PathKernel {
    // MARK: Gates of a network

    /// Hard gates 1[q > 0] of every gating layer for examples `x` ([N] + input shape): the DNN's own
    /// gates, or those of a gated network's feature network. Shapes [N, width] for FC layers.
    public static func gates(of model: GatedNetwork, inputs x: Tensor) throws -> [Tensor] {
        let tape = Tape(recording: false)
        let out = try model.forward(on: tape, input: x, training: false)
        return out.preActivations.map { v in
            let q = tape.value(v)
            return Tensor(shape: q.shape, scalars: q.scalars.map { $0 > 0 ? 1 : 0 })
        }
    }

    // MARK: The kernel

    /// NPK(x_i, x_j) = <x_i, x_j> * prod_l <G_l(x_i), G_l(x_j)> for examples `inputs` [N, ...]
    /// (flattened) and per-layer gates [N, ...] (flattened per example).
    public static func gram(inputs: Tensor, gates: [Tensor]) throws -> SymmetricMatrix {
        let n = inputs.shape.first ?? 0
        for (l, g) in gates.enumerated() where g.shape.first != n {
            throw EngineError.shapeMismatch("PathKernel.gram", inputs.shape, g.shape, expected: "gates of layer \(l) for the same \(n) examples")
        }
        var k = innerProducts(inputs)
        for g in gates {
            let overlap = innerProducts(g)
            for i in 0..<(n * n) { k.values[i] *= overlap.values[i] }
        }
        return k
    }

    /// NPK Gram of a (FC) network's gates on examples `x`.
    public static func gram(of model: GatedNetwork, inputs x: Tensor) throws -> SymmetricMatrix {
        try gram(inputs: x, gates: try gates(of: model, inputs: x))
    }

    /// The Gram matrix of the rows of `t` ([N, ...] flattened per row), in Double.
    public static func innerProducts(_ t: Tensor) -> SymmetricMatrix {
        let n = t.shape.first ?? 0
        let d = n == 0 ? 0 : t.count / n
        var m = SymmetricMatrix(n: n, values: [Double](repeating: 0, count: n * n))
        t.withUnsafeBufferPointer { p in
            for i in 0..<n {
                for j in i..<n {
                    var s = 0.0
                    for k in 0..<d { s += Double(p[i * d + k]) * Double(p[j * d + k]) }
                    m[i, j] = s; m[j, i] = s
                }
            }
        }
        return m
    }

    /// H = K / trace(K).
    public static func traceNormalised(_ k: SymmetricMatrix) throws -> SymmetricMatrix {
        let t = k.trace
        guard t > 0 else { throw EngineError(op: "PathKernel.traceNormalised", "kernel trace is \(t); need a positive trace") }
        return k.scaled(1 / t)
    }

    /// nu = y^T H^-1 y (Cholesky solve; H must be symmetric positive definite).
    public static func nu(_ h: SymmetricMatrix, labels y: [Double]) throws -> Double {
        guard y.count == h.n else {
            throw EngineError(op: "PathKernel.nu", "labels have \(y.count) entries for a \(h.n)x\(h.n) kernel")
        }
        let l = try cholesky(h)
        // Solve L z = y; then y^T H^-1 y = |z|^2.
        var z = y
        for i in 0..<h.n {
            var s = z[i]
            for k in 0..<i { s -= l[i * h.n + k] * z[k] }
            z[i] = s / l[i * h.n + i]
        }
        return z.reduce(0) { $0 + $1 * $1 }
    }

    /// NeurIPS 2020 Figure 2 (middle): nu = y^T H^-1 y with H the trace-normalised NPK of `model`'s
    /// gates on `inputs` (labels ±1 for a binary task). A decreasing nu during training means the
    /// learnt gates make the kernel align with the labels.
    public static func nu(of model: GatedNetwork, inputs: Tensor, labels y: [Double]) throws -> Double {
        try nu(try traceNormalised(try gram(of: model, inputs: inputs)), labels: y)
    }

    /// Lower-triangular L (row-major n x n) with L L^T = A; throws if A is not positive definite.
    public static func cholesky(_ a: SymmetricMatrix) throws -> [Double] {
        let n = a.n
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i, j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                if i == j {
                    guard s > 0 else {
                        throw EngineError(op: "PathKernel.cholesky", "matrix is not positive definite (pivot \(i) = \(s)); duplicate examples or too few active gates?")
                    }
                    l[i * n + i] = s.squareRoot()
                } else {
                    l[i * n + j] = s / l[j * n + j]
                }
            }
        }
        return l
    }

    // MARK: Eigenvalues

    /// All eigenvalues of a symmetric matrix, ascending (cyclic Jacobi rotations, in Double, until
    /// the off-diagonal mass is below `tolerance` relative to the Frobenius norm); see `SymmetricEigen`.
    public static func eigenvalues(_ a: SymmetricMatrix, tolerance: Double = 1e-12, maxSweeps: Int = 100) -> [Double] {
        SymmetricEigen(a, vectors: false, tolerance: tolerance, maxSweeps: maxSweeps).values
    }

    // MARK: Memorisation network (NeurIPS 2020 appendix)

    /// The NPK Gram of the memorisation network: input fixed at 1, `gatedLayers` layers of `width`
    /// gates, each gate Bernoulli(1/2) independently per example; normalised so the MEAN diagonal is 1.
    /// (The paper's depth d has d - 1 gated layers: pass `gatedLayers: d - 1`; inferred.)
    public static func memorisationGram(examples n: Int, width: Int, gatedLayers: Int, seed: UInt64) -> SymmetricMatrix {
        var rng = SeededRNG(seed: seed)
        var gates: [Tensor] = []
        for _ in 0..<gatedLayers {
            gates.append(Tensor(shape: [n, width]) { _ in rng.nextUInt64() >> 63 == 1 ? 1 : 0 })
        }
        let ones = Tensor(shape: [n, 1], repeating: 1)
        let k = try! gram(inputs: ones, gates: gates)   // shapes are consistent by construction
        return k.scaled(Double(n) / max(k.trace, 1e-300))
    }

    /// Mean |lambda - 1| over the n - 1 smallest eigenvalues (the bulk), ascending `eigenvalues`: how far
    /// the measured e.c.d.f. is from the step at 1 that infinite depth and width would give.
    public static func bulkDeviationFromOne(_ eigenvalues: [Double]) -> Double {
        let bulk = eigenvalues.dropLast()
        return bulk.reduce(0) { $0 + abs($1 - 1) } / Double(max(bulk.count, 1))
    }

    /// The ideal spectrum of the memorisation Gram: 1 - mu^(d-1) (n - 1 times) and 1 + (n - 1) mu^(d-1),
    /// ascending; `gatedLayers` = d - 1.
    public static func idealMemorisationSpectrum(examples n: Int, gatedLayers: Int, mu: Double = 0.5) -> [Double] {
        let r = Foundation.pow(mu, Double(gatedLayers))
        return [Double](repeating: 1 - r, count: max(n - 1, 0)) + [1 + Double(n - 1) * r]
    }
}
