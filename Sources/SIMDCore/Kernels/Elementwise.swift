// MARK: - Elementwise kernels
//
// add, mul, scale, channel affine, ReLU (forward and gated backward), soft gates, sigmoid.
// Fast path: SIMD16<Float> over contiguous memory, split into static chunks by Parallel; the tail
// (count % 16) is scalar. Each fast kernel has a plain `naive...` twin used by the tests.
// Every output element depends only on the same input elements, so results do not depend on the
// thread count.

import Foundation

public enum Elementwise {
    /// Chunks smaller than this are not worth a thread hop.
    @usableFromInline static let minChunk = 1 << 14

    // MARK: Generic SIMD driver
    //
    // The function applied is a value of a `LaneFunction` type, not a closure: `map` and `zip` are
    // specialised for each type, so its 16-lane body is inlined into the loop at full vector width.
    // Called through a closure, once per 16 lanes, a SIMD16 argument travelled as four 128-bit
    // halves: the sigmoid gate's pullback was 14% of a DenseNet121 pullback step.

    /// y[i] = f(a[i]) over the whole buffer, 16 lanes at a time.
    @inline(__always)
    static func map<F: LaneFunction1>(_ a: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, _ f: F) {
        let n = a.count
        guard n > 0 else { return }
        let ap = a.baseAddress!, yp = y.baseAddress!
        Parallel.forEachChunk(count: (n + 15) / 16, minChunk: minChunk / 16) { blocks in
            let lo = blocks.lowerBound * 16, hi = Swift.min(blocks.upperBound * 16, n)
            var i = lo
            while i + 16 <= hi {
                let v = UnsafeRawPointer(ap + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(yp + i).storeBytes(of: f(v), as: SIMD16<Float>.self)
                i += 16
            }
            while i < hi { yp[i] = f(ap[i]); i += 1 }
        }
    }

    /// y[i] = f(a[i], b[i]), 16 lanes at a time.
    @inline(__always)
    static func zip<F: LaneFunction2>(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>,
                                      into y: UnsafeMutableBufferPointer<Float>, _ f: F) {
        let n = a.count
        guard n > 0 else { return }
        let ap = a.baseAddress!, bp = b.baseAddress!, yp = y.baseAddress!
        Parallel.forEachChunk(count: (n + 15) / 16, minChunk: minChunk / 16) { blocks in
            let lo = blocks.lowerBound * 16, hi = Swift.min(blocks.upperBound * 16, n)
            var i = lo
            while i + 16 <= hi {
                let u = UnsafeRawPointer(ap + i).loadUnaligned(as: SIMD16<Float>.self)
                let v = UnsafeRawPointer(bp + i).loadUnaligned(as: SIMD16<Float>.self)
                UnsafeMutableRawPointer(yp + i).storeBytes(of: f(u, v), as: SIMD16<Float>.self)
                i += 16
            }
            while i < hi { yp[i] = f(ap[i], bp[i]); i += 1 }
        }
    }

    static func unary<F: LaneFunction1>(_ x: Tensor, _ f: F) -> Tensor {
        var y = Tensor.uninitialized(x.shape)   // every element is written by map
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in map(xp, into: yp, f) } }
        return y
    }

    static func binary<F: LaneFunction2>(_ a: Tensor, _ b: Tensor, _ f: F) -> Tensor {
        precondition(a.count == b.count, "Elementwise: \(a.shape) vs \(b.shape)")
        var y = Tensor.uninitialized(a.shape)   // every element is written by zip
        a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in
            y.withUnsafeMutableBufferPointer { yp in zip(ap, bp, into: yp, f) } } }
        return y
    }

    // MARK: add / mul / scale

    /// a + b (same count). `add(x, x)` == `scale(x, by: 2)`.
    public static func add(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, Lanes.Add()) }
    public static func naiveAdd(_ a: Tensor, _ b: Tensor) -> Tensor {
        Tensor(shape: a.shape, scalars: (0..<a.count).map { a.scalars[$0] + b.scalars[$0] })
    }

    /// a * b elementwise (gating).
    public static func mul(_ a: Tensor, _ b: Tensor) -> Tensor { binary(a, b, Lanes.Mul()) }
    public static func naiveMul(_ a: Tensor, _ b: Tensor) -> Tensor {
        Tensor(shape: a.shape, scalars: (0..<a.count).map { a.scalars[$0] * b.scalars[$0] })
    }

    /// x * s.
    public static func scale(_ x: Tensor, by s: Float) -> Tensor { unary(x, Lanes.Scale(s: s)) }
    public static func naiveScale(_ x: Tensor, by s: Float) -> Tensor { Tensor(shape: x.shape, scalars: x.scalars.map { $0 * s }) }

    // MARK: channel affine

    /// y[n, c, ...] = x[n, c, ...] * scale[c] + shift[c] for x of shape [N, C, rest...].
    /// Used for input normalisation and eval-mode BatchNorm (folded into one affine map).
    public static func channelAffine(_ x: Tensor, scale: [Float], shift: [Float]) -> Tensor {
        let n = x.shape[0], c = x.shape[1], inner = x.count / Swift.max(n * c, 1)
        var y = Tensor.uninitialized(x.shape)   // every plane is written
        guard x.count > 0 else { return y }
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            let xb = xp.baseAddress!, yb = yp.baseAddress!
            Parallel.forEachChunk(count: n * c, minChunk: Swift.max(1, minChunk / Swift.max(inner, 1))) { planes in
                for p in planes {
                    let ch = p % c
                    let s = scale[ch], t = shift[ch]
                    let vs = SIMD16<Float>(repeating: s), vt = SIMD16<Float>(repeating: t)
                    let src = xb + p * inner, dst = yb + p * inner
                    var i = 0
                    while i + 16 <= inner {
                        let v = UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self)
                        UnsafeMutableRawPointer(dst + i).storeBytes(of: v * vs + vt, as: SIMD16<Float>.self)
                        i += 16
                    }
                    while i < inner { dst[i] = src[i] * s + t; i += 1 }
                }
            }
        } }
        return y
    }

    public static func naiveChannelAffine(_ x: Tensor, scale: [Float], shift: [Float]) -> Tensor {
        let c = x.shape[1], inner = x.count / Swift.max(x.shape[0] * c, 1)
        return Tensor(shape: x.shape) { i in x.scalars[i] * scale[(i / inner) % c] + shift[(i / inner) % c] }
    }

    // MARK: ReLU

    /// max(z, 0). NaN stays NaN as in PyTorch: both paths zero only where `z <= 0` (false for NaN).
    public static func relu(_ z: Tensor) -> Tensor {
        unary(z, Lanes.Relu())
    }
    public static func naiveRelu(_ z: Tensor) -> Tensor { Tensor(shape: z.shape, scalars: z.scalars.map { $0 <= 0 ? 0 : $0 }) }

    /// dz = dy * gate(z): the ReLU pullback with a swappable gate (see Gates.swift).
    public static func reluBackward(_ dy: Tensor, z: Tensor, gate: Gate) -> Tensor {
        switch gate {
        case .hard:
            return binary(dy, z, Lanes.HardGate())
        case .sigmoid(let t):
            // Same operations as Gate.derivative, 16 lanes at a time (FastMath is bit-identical).
            return binary(dy, z, Lanes.SigmoidGate(t: t))
        case .normalCDF(let t):
            return binary(dy, z, Lanes.NormalCDFGate(t: t))
        }
    }
    public static func naiveReluBackward(_ dy: Tensor, z: Tensor, gate: Gate) -> Tensor {
        Tensor(shape: z.shape, scalars: (0..<z.count).map { dy.scalars[$0] * gate.derivative(z.scalars[$0]) })
    }

    // MARK: Soft gates (paper B: DGN / DLGN)

    /// s = sigmoid(beta * q): a soft gate. The same operations, bit for bit, as sigmoid(scale(q, beta)).
    ///
    /// ```swift
    /// let s = Elementwise.softGate(qf, beta: 10)
    /// ```
    public static func softGate(_ q: Tensor, beta: Float) -> Tensor {
        unary(q, Lanes.SoftGate(beta: beta))
    }
    public static func naiveSoftGate(_ q: Tensor, beta: Float) -> Tensor {
        Tensor(shape: q.shape, scalars: q.scalars.map { Float(1 / (1 + Foundation.exp(-Double($0 * beta)))) })
    }

    /// dq = dy * s * (1 - s) * beta for s = softGate(q, beta): sigmoid's then scale's pullback, in
    /// their order ((dy * s) * (1 - s)) * beta.
    public static func softGateBackward(_ dy: Tensor, gate s: Tensor, beta: Float) -> Tensor {
        binary(dy, s, Lanes.SoftGateBackward(beta: beta))
    }

    /// The pullback of z = a * s with s = softGate(q, beta), in one pass:
    ///   da = dy * s,   dq = ((dy * a) * s * (1 - s)) * beta
    /// (the same operations as mul's pullback followed by the gate's, without the intermediate
    /// gate gradient). Either output may be skipped.
    public static func gatedProductBackward(_ dy: Tensor, value a: Tensor, gate s: Tensor, beta: Float,
                                            needValue: Bool, needPreActivation: Bool) -> (value: Tensor?, preActivation: Tensor?) {
        precondition(dy.count == a.count && a.count == s.count, "gatedProductBackward: \(dy.shape) \(a.shape) \(s.shape)")
        if !needPreActivation { return (needValue ? mul(dy, s) : nil, nil) }
        var da = needValue ? Tensor.uninitialized(dy.shape) : Tensor(zeros: [0])
        var dq = Tensor.uninitialized(dy.shape)
        let n = dy.count
        guard n > 0 else { return (needValue ? da : nil, dq) }
        dy.withUnsafeBufferPointer { gp in a.withUnsafeBufferPointer { ap in s.withUnsafeBufferPointer { sp in
            da.withUnsafeMutableBufferPointer { dap in dq.withUnsafeMutableBufferPointer { dqp in
                let (g, av, sv, o2) = (gp.baseAddress!, ap.baseAddress!, sp.baseAddress!, dqp.baseAddress!)
                let o1 = needValue ? dap.baseAddress : nil   // (an empty array still has a base address)
                typealias V = SIMD16<Float>
                let vb = V(repeating: beta), one = V(repeating: 1)
                Parallel.forEachChunk(count: (n + 15) / 16, minChunk: minChunk / 16) { blocks in
                    // Safe: this worker owns elements of its blocks in both outputs.
                    let lo = blocks.lowerBound * 16, hi = Swift.min(blocks.upperBound * 16, n)
                    var i = lo
                    while i + 16 <= hi {
                        let gv = UnsafeRawPointer(g + i).loadUnaligned(as: V.self)
                        let x = UnsafeRawPointer(av + i).loadUnaligned(as: V.self)
                        let v = UnsafeRawPointer(sv + i).loadUnaligned(as: V.self)
                        if let o1 { UnsafeMutableRawPointer(o1 + i).storeBytes(of: gv * v, as: V.self) }
                        UnsafeMutableRawPointer(o2 + i).storeBytes(of: gv * x * v * (one - v) * vb, as: V.self)
                        i += 16
                    }
                    while i < hi {
                        if let o1 { o1[i] = g[i] * sv[i] }
                        o2[i] = g[i] * av[i] * sv[i] * (1 - sv[i]) * beta
                        i += 1
                    }
                }
            } }
        } } }
        return (needValue ? da : nil, dq)
    }

    public static func naiveGatedProductBackward(_ dy: Tensor, value a: Tensor, gate s: Tensor, beta: Float) -> (value: Tensor, preActivation: Tensor) {
        (Tensor(shape: dy.shape, scalars: (0..<dy.count).map { dy.scalars[$0] * s.scalars[$0] }),
         Tensor(shape: dy.shape, scalars: (0..<dy.count).map {
            let v = Double(s.scalars[$0]); return Float(Double(dy.scalars[$0]) * Double(a.scalars[$0]) * v * (1 - v) * Double(beta))
         }))
    }

    // MARK: Sigmoid

    /// 1 / (1 + exp(-x)) (FastMath: clamped exp, never overflows).
    public static func sigmoid(_ x: Tensor) -> Tensor { unary(x, Lanes.Sigmoid()) }

    /// dx = dy * y * (1 - y) for y = sigmoid(x).
    public static func sigmoidBackward(_ dy: Tensor, y: Tensor) -> Tensor { binary(dy, y, Lanes.SigmoidBackward()) }

    public static func naiveSigmoid(_ x: Tensor) -> Tensor {
        Tensor(shape: x.shape, scalars: x.scalars.map { Float(1 / (1 + Foundation.exp(-Double($0)))) })
    }
}
