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

    // MARK: Tangent kernels by parameter group (NeurIPS 2020 Figure 2, right)

    /// The tangent kernel of a one-output network restricted to the parameters whose names start with
    /// `prefix`: K[i, j] = <d f(x_i) / d theta, d f(x_j) / d theta> over those parameters. In a DGN,
    /// prefix "value." gives the value kernel and "feature." the feature kernel (through the soft
    /// gates); "" gives the whole neural tangent kernel. One backward pass per example.
    ///
    /// ```swift
    /// let kv = try PathKernel.tangentKernel(of: dgn, inputs: x, parameterPrefix: "value.")
    /// print(kv.trace, kv.frobeniusNorm)
    /// ```
    public static func tangentKernel(of model: GatedNetwork, inputs x: Tensor, parameterPrefix prefix: String) throws -> SymmetricMatrix {
        try tangentKernels(of: model, inputs: x, parameterPrefixes: [prefix])[0]
    }

    /// One tangent kernel per prefix, from the same per-example backward passes.
    public static func tangentKernels(of model: GatedNetwork, inputs x: Tensor, parameterPrefixes prefixes: [String]) throws -> [SymmetricMatrix] {
        guard x.rank >= 2, x.shape[0] >= 1 else { throw EngineError(op: "PathKernel.tangentKernel", "expected inputs [N, ...], got \(x.shape)") }
        let n = x.shape[0], size = x.count / n
        let groups = try prefixes.map { prefix in
            let names = model.parameters.keys.filter { $0.hasPrefix(prefix) && !model.frozen.contains($0) }.sorted()
            guard !names.isEmpty else { throw EngineError(op: "PathKernel.tangentKernel", "no trainable parameter starts with '\(prefix)'") }
            return names
        }
        // features[g][i]: example i's gradient over group g's parameters.
        var features = [[[Double]]](repeating: [], count: groups.count)
        for i in 0..<n {
            let xi = Tensor(shape: [1] + Array(x.shape.dropFirst()), scalars: Array(x.scalars[(i * size)..<((i + 1) * size)]))
            let tape = Tape()
            let out = try model.forward(on: tape, input: xi, training: false)
            guard tape.shape(out.logits) == [1, 1] else {
                throw EngineError(op: "PathKernel.tangentKernel", "needs a network with one output, got logits \(tape.shape(out.logits))")
            }
            let grads = try tape.backward(from: out.logits, seed: Tensor(shape: [1, 1], scalars: [1]))
            for (g, names) in groups.enumerated() {
                var f: [Double] = []
                for name in names {
                    let t = out.parameters[name].flatMap { grads[$0] }
                    f += t.map { $0.scalars.map(Double.init) } ?? [Double](repeating: 0, count: model.parameters[name]!.count)
                }
                features[g].append(f)
            }
        }
        return features.map { fs in
            var k = SymmetricMatrix(n: n, values: [Double](repeating: 0, count: n * n))
            for i in 0..<n {
                for j in i..<n {
                    var s = 0.0
                    for (a, b) in zip(fs[i], fs[j]) { s += a * b }
                    k[i, j] = s; k[j, i] = s
                }
            }
            return k
        }
    }
}

extension SymmetricMatrix {
    /// sqrt(sum of squared entries).
    public var frobeniusNorm: Double { values.reduce(0) { $0 + $1 * $1 }.squareRoot() }
}
