// MARK: - Tape ops: activations, elementwise, shape, softmax and losses
//
// Each op: shape comment, validation (EngineError naming the op and shapes), forward kernel,
// pullback. Pullbacks compute only the gradients whose `needs[i]` is true.
// Gated backward rules (ReLU, max-pool) are collected in Gates.swift.

import Foundation

extension Tape {
    // MARK: ReLU and sigmoid

    /// relu: z [any] -> y [same]. Forward max(z, 0); backward dz = dy * gate.derivative(z).
    /// With a soft gate the backward is deliberately NOT the derivative of the forward (paper A).
    ///
    /// ```swift
    /// let y = try tape.relu(z, gate: .sigmoid(temperature: 0.3))
    /// ```
    public func relu(_ x: Variable, gate: Gate = .hard) throws -> Variable {
        let z = value(x)
        return record(Elementwise.relu(z), inputs: [x]) { dy, _ in
            [Elementwise.reluBackward(dy, z: z, gate: gate)]
        }
    }

    /// sigmoid: x [any] -> y [same]; backward dx = dy * y * (1 - y).
    public func sigmoid(_ x: Variable) throws -> Variable {
        let y = Elementwise.sigmoid(value(x))
        return record(y, inputs: [x]) { dy, _ in
            [Elementwise.sigmoidBackward(dy, y: y)]
        }
    }

    // MARK: Soft gates (paper B)

    /// softGate: q [any] -> s = sigmoid(beta * q) [same]. Backward dq = dy * s * (1 - s) * beta.
    /// Bit for bit `sigmoid(scale(q, by: beta))` in one node and one pass.
    ///
    /// ```swift
    /// let g = try tape.softGate(qf, beta: 10)
    /// let z = try tape.gatedMul(qv, gate: g, preActivation: qf, beta: 10)
    /// ```
    public func softGate(_ q: Variable, beta: Float) throws -> Variable {
        let s = Elementwise.softGate(value(q), beta: beta)
        return record(s, inputs: [q]) { dy, _ in [Elementwise.softGateBackward(dy, gate: s, beta: beta)] }
    }

    /// gatedMul: value pre-activation a [S], gate = softGate(q, beta) [S] -> a * gate [S].
    /// The pullback goes straight to `value` and `preActivation` in one pass (the same operations
    /// as `mul(value, gate)` followed by the gate's pullback, without materialising the gate's
    /// gradient); `gate` itself receives no gradient from this node. `gate` must be the
    /// `softGate(preActivation, beta:)` node (checked).
    public func gatedMul(_ a: Variable, gate: Variable, preActivation q: Variable, beta: Float) throws -> Variable {
        try sameShape("gatedMul", a, gate)
        try sameShape("gatedMul", gate, q)
        guard nodes[gate.id].inputs == [q.id] else {
            throw EngineError(op: "gatedMul", "gate (variable \(gate.id)) must be softGate(preActivation) of variable \(q.id)")
        }
        let av = value(a), s = value(gate)
        return record(Elementwise.mul(av, s), inputs: [a, q]) { dy, needs in
            let r = Elementwise.gatedProductBackward(dy, value: av, gate: s, beta: beta,
                                                     needValue: needs[0], needPreActivation: needs[1])
            return [r.value, r.preActivation]
        }
    }

    // MARK: Elementwise

    /// add: a [S], b [S] -> [S] (residual connections). Backward: dy to both.
    public func add(_ a: Variable, _ b: Variable) throws -> Variable {
        try sameShape("add", a, b)
        return record(Elementwise.add(value(a), value(b)), inputs: [a, b]) { dy, needs in
            [needs[0] ? dy : nil, needs[1] ? dy : nil]
        }
    }

    /// mul: a [S], b [S] -> [S] elementwise (gating). Backward: da = dy * b, db = dy * a.
    public func mul(_ a: Variable, _ b: Variable) throws -> Variable {
        try sameShape("mul", a, b)
        let av = value(a), bv = value(b)
        return record(Elementwise.mul(av, bv), inputs: [a, b]) { dy, needs in
            [needs[0] ? Elementwise.mul(dy, bv) : nil, needs[1] ? Elementwise.mul(dy, av) : nil]
        }
    }

    /// scale: x [S] -> x * s [S]. Backward: dx = dy * s.
    public func scale(_ x: Variable, by s: Float) throws -> Variable {
        record(Elementwise.scale(value(x), by: s), inputs: [x]) { dy, _ in [Elementwise.scale(dy, by: s)] }
    }

    /// channelAffine: x [N, C, ...] -> y[:, c] = x[:, c] * scale[c] + shift[c] (input normalisation).
    /// Backward: dx[:, c] = dy[:, c] * scale[c].
    public func channelAffine(_ x: Variable, scale: [Float], shift: [Float]) throws -> Variable {
        let s = shape(x)
        guard s.count >= 2 else {
            throw EngineError(op: "channelAffine", "expected input [N, C, ...], got shape \(s)")
        }
        guard scale.count == s[1], shift.count == s[1] else {
            throw EngineError(op: "channelAffine",
                              "input \(s) has \(s[1]) channels; got \(scale.count) scales and \(shift.count) shifts")
        }
        let zeros = [Float](repeating: 0, count: scale.count)
        return record(Elementwise.channelAffine(value(x), scale: scale, shift: shift), inputs: [x]) { dy, _ in
            [Elementwise.channelAffine(dy, scale: scale, shift: zeros)]
        }
    }

    // MARK: Shape

    /// concat: xs [.., C_i, ..] along `axis` -> [.., sum C_i, ..]. Backward: split dy.
    public func concat(_ xs: [Variable], axis: Int = 1) throws -> Variable {
        guard let first = xs.first else { throw EngineError(op: "concat", "needs at least one input") }
        let s0 = shape(first)
        guard axis >= 0, axis < s0.count else {
            throw EngineError(op: "concat", "axis \(axis) out of range for rank-\(s0.count) input \(s0)")
        }
        for v in xs.dropFirst() {
            let s = shape(v)
            var a = s, b = s0
            if s.count == s0.count { a[axis] = 0; b[axis] = 0 }
            guard s.count == s0.count, a == b else {
                throw EngineError.shapeMismatch("concat", s0, s, expected: "equal shapes except along axis \(axis)")
            }
        }
        let sizes = xs.map { shape($0)[axis] }
        return record(Layout.concat(xs.map { value($0) }, axis: axis), inputs: xs) { dy, needs in
            let parts = Layout.split(dy, sizes: sizes, axis: axis)
            return zip(parts, needs).map { $1 ? $0 : nil }
        }
    }

    /// flatten: x [N, d1, d2, ...] -> [N, d1*d2*...]. Backward: reshape back.
    public func flatten(_ x: Variable) throws -> Variable {
        let s = shape(x)
        guard s.count >= 1 else { throw EngineError(op: "flatten", "expected input [N, ...], got a scalar") }
        let rest = s.dropFirst().reduce(1, *)
        return record(value(x).reshaped([s[0], rest]), inputs: [x]) { dy, _ in [dy.reshaped(s)] }
    }

    // MARK: Softmax

    /// softmax over the last dim: x [..., K] -> [..., K].
    public func softmax(_ x: Variable) throws -> Variable { try softmaxOp(x, log: false) }

    /// log-softmax over the last dim: x [..., K] -> [..., K].
    public func logSoftmax(_ x: Variable) throws -> Variable { try softmaxOp(x, log: true) }

    private func softmaxOp(_ x: Variable, log: Bool) throws -> Variable {
        let s = shape(x), op = log ? "logSoftmax" : "softmax"
        guard let k = s.last, k > 0 else { throw EngineError(op: op, "expected input [..., K] with K > 0, got shape \(s)") }
        let y = Softmax.forward(value(x), log: log)
        return record(y, inputs: [x]) { dy, _ in [Softmax.backward(dy, y: y, log: log)] }
    }

    // MARK: Losses

    /// crossEntropy: logits [N, K], labels N integers in 0..<K -> mean loss, shape [].
    ///
    /// ```swift
    /// let loss = try tape.crossEntropy(logits: y, labels: [3, 0])
    /// let g = try tape.backward(from: loss)
    /// ```
    public func crossEntropy(logits: Variable, labels: [Int]) throws -> Variable {
        let s = shape(logits)
        guard s.count == 2 else { throw EngineError(op: "crossEntropy", "expected logits [N, K], got shape \(s)") }
        guard labels.count == s[0] else {
            throw EngineError(op: "crossEntropy", "logits \(s) have \(s[0]) rows but \(labels.count) labels were given")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= s[1] }) {
            throw EngineError(op: "crossEntropy", "label \(labels[bad]) at index \(bad) is out of range 0..<\(s[1]) for logits \(s)")
        }
        guard s[0] > 0 else { throw EngineError(op: "crossEntropy", "empty batch: logits \(s)") }
        let x = value(logits)
        guard x.isFinite else { throw EngineError.nonFinite("crossEntropy", "logits", shape: s) }
        let (loss, lp) = Losses.crossEntropy(logits: x, labels: labels)
        return record(Tensor(scalar: loss), inputs: [logits]) { dy, _ in
            [Losses.crossEntropyBackward(logProbabilities: lp, labels: labels, dloss: dy.scalars[0])]
        }
    }

    /// mse: x [S], target [S] -> mean (x - target)^2, shape [].
    public func mse(_ x: Variable, target: Tensor) throws -> Variable {
        let s = shape(x)
        guard s == target.shape else {
            throw EngineError.shapeMismatch("mse", s, target.shape, expected: "input and target of the same shape")
        }
        let xv = value(x)
        guard xv.isFinite else { throw EngineError.nonFinite("mse", "input", shape: s) }
        guard target.isFinite else { throw EngineError.nonFinite("mse", "target", shape: target.shape) }
        return record(Tensor(scalar: Losses.mse(xv, target: target)), inputs: [x]) { dy, _ in
            [Losses.mseBackward(xv, target: target, dloss: dy.scalars[0])]
        }
    }

    // MARK: Helpers

    func sameShape(_ op: String, _ a: Variable, _ b: Variable) throws {
        guard shape(a) == shape(b) else {
            throw EngineError.shapeMismatch(op, shape(a), shape(b), expected: "two inputs of the same shape")
        }
    }
}
