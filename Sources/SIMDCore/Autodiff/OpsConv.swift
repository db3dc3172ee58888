// MARK: - Tape ops: conv2d, linear
//
// conv2d: x [N,Cin,H,W], weight [Cout,Cin,kh,kw], bias [Cout] -> [N,Cout,Hout,Wout]
// linear: x [N,in], weight [out,in] (PyTorch layout), bias [out] -> [N,out]
//
// Pullbacks compute only what `needs` asks for: an excitation pullback (image needs a gradient,
// weights are constants) runs forward + inputGradient and never touches a weight gradient.

extension Tape {
    /// 2-D convolution (groups = 1), PyTorch semantics.
    ///
    /// ```swift
    /// let y = try tape.conv2d(x, weight: w, bias: b, stride: 2, padding: 1)
    /// ```
    public func conv2d(_ x: Variable, weight: Variable, bias: Variable?, stride: Int = 1, padding: Int = 0) throws -> Variable {
        let xv = value(x), wv = value(weight), bv = bias.map { value($0) }
        let g = try Conv2D.geometry(input: xv.shape, weight: wv.shape, bias: bv?.shape, stride: stride, padding: padding)
        let batch = xv.shape[0]
        var y = Tensor.uninitialized([batch, g.outChannels, g.outHeight, g.outWidth])   // overwritten by forward
        let cache = weightCache
        xv.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                Conv2D.forward(x: xp.baseAddress!, batch: batch, weight: wv.scalars, bias: bv?.scalars, g,
                               y: yp.baseAddress!, cache: cache)
            }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return record(y, inputs: inputs) { dy, needs in
            var grads = [Tensor?](repeating: nil, count: needs.count)
            dy.withUnsafeBufferPointer { dp in
                if needs[0] {
                    var dx = Tensor.uninitialized(xv.shape)   // overwritten by inputGradient
                    dx.withUnsafeMutableBufferPointer { xp in
                        Conv2D.inputGradient(dy: dp.baseAddress!, batch: batch, weight: wv.scalars, g,
                                             dx: xp.baseAddress!, cache: cache)
                    }
                    grads[0] = dx
                }
                if needs[1] {
                    var dw = Tensor.uninitialized(wv.shape)   // overwritten by weightGradient
                    xv.withUnsafeBufferPointer { xp in
                        dw.withUnsafeMutableBufferPointer { wp in
                            Conv2D.weightGradient(dy: dp.baseAddress!, x: xp.baseAddress!, batch: batch, g, dw: wp.baseAddress!)
                        }
                    }
                    grads[1] = dw
                }
                if needs.count > 2 && needs[2] {
                    var db = Tensor(zeros: [g.outChannels])
                    db.withUnsafeMutableBufferPointer { bp in
                        Conv2D.biasGradient(dy: dp.baseAddress!, batch: batch, channels: g.outChannels,
                                            pixels: g.outPixels, db: bp.baseAddress!)
                    }
                    grads[2] = db
                }
            }
            return grads
        }
    }

    /// Fully connected layer `y = x · weight^T + bias`.
    ///
    /// ```swift
    /// let logits = try tape.linear(features, weight: fcW, bias: fcB)   // [N,512] -> [N,1000]
    /// ```
    public func linear(_ x: Variable, weight: Variable, bias: Variable?) throws -> Variable {
        let xv = value(x), wv = value(weight), bv = bias.map { value($0) }
        guard xv.rank == 2 else {
            throw EngineError(op: "linear", "input \(xv.shape) must be [N,in] (rank 2); weight is \(wv.shape)")
        }
        guard wv.rank == 2 else {
            throw EngineError(op: "linear", "weight \(wv.shape) must be [out,in] (rank 2); input is \(xv.shape)")
        }
        guard xv.shape[1] == wv.shape[1] else {
            throw EngineError(op: "linear", "input \(xv.shape) has \(xv.shape[1]) features but weight \(wv.shape) expects \(wv.shape[1])")
        }
        if let bv, bv.shape != [wv.shape[0]] {
            throw EngineError(op: "linear", "bias \(bv.shape) must be [\(wv.shape[0])] for weight \(wv.shape)")
        }
        let (n, fin, fout) = (xv.shape[0], wv.shape[1], wv.shape[0])
        var y = Tensor(zeros: [n, fout])
        xv.withUnsafeBufferPointer { xp in
            wv.withUnsafeBufferPointer { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    let yb = yp.baseAddress!
                    if let bv { for i in 0..<n { for j in 0..<fout { yb[i * fout + j] = bv.scalars[j] } } }
                    // y[N,out] (+)= x[N,in] · W[out,in]^T
                    GEMM.multiply(m: n, n: fout, k: fin, a: xp.baseAddress!, lda: fin,
                                  b: wp.baseAddress!, ldb: fin, transposeB: true,
                                  c: yb, ldc: fout, accumulate: bv != nil)
                }
            }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return record(y, inputs: inputs) { dy, needs in
            var grads = [Tensor?](repeating: nil, count: needs.count)
            dy.withUnsafeBufferPointer { dp in
                if needs[0] {
                    // dx[N,in] = dy[N,out] · W[out,in]
                    var dx = Tensor(zeros: [n, fin])
                    wv.withUnsafeBufferPointer { wp in
                        dx.withUnsafeMutableBufferPointer { xp in
                            GEMM.multiply(m: n, n: fin, k: fout, a: dp.baseAddress!, lda: fout,
                                          b: wp.baseAddress!, ldb: fin, c: xp.baseAddress!, ldc: fin)
                        }
                    }
                    grads[0] = dx
                }
                if needs[1] {
                    // dW[out,in] = dy^T[out,N] · x[N,in]
                    var dw = Tensor(zeros: [fout, fin])
                    xv.withUnsafeBufferPointer { xp in
                        dw.withUnsafeMutableBufferPointer { wp in
                            GEMM.multiply(m: fout, n: fin, k: n, a: dp.baseAddress!, lda: fout, transposeA: true,
                                          b: xp.baseAddress!, ldb: fin, c: wp.baseAddress!, ldc: fin)
                        }
                    }
                    grads[1] = dw
                }
                if needs.count > 2 && needs[2] {
                    // db[j] = sum_i dy[i, j], rows in order.
                    var db = [Float](repeating: 0, count: fout)
                    for i in 0..<n { for j in 0..<fout { db[j] += dp[i * fout + j] } }
                    grads[2] = Tensor(shape: [fout], scalars: db)
                }
            }
            return grads
        }
    }
}
