// MARK: - Tape ops: pooling (NCHW)
//
// Geometry and PyTorch window rules: Kernels/Pooling.swift. Max-pool backward rules: Gates.swift.

import Foundation

extension Tape {
    /// maxPool2d: x [N, C, H, W] -> [N, C, outH, outW] (PyTorch sizes, see `Pooling.outputSize`).
    /// Forward: the hard window maximum (padding = -inf, first maximum). Backward per `gate`:
    /// `.hard` routes dy to the argmax; `.soft` is the gradient of the zero-padded soft pool.
    ///
    /// ```swift
    /// let y = try tape.maxPool2d(x, kernel: 3, stride: 2, padding: 1, gate: .soft(temperature: 0.3, detachWeights: false))
    /// ```
    public func maxPool2d(_ x: Variable, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false,
                          gate: PoolGate = .hard) throws -> Variable {
        let g = try poolGeometry("maxPool2d", x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        let xv = value(x)
        let (y, argmax) = Pooling.maxPool2d(xv, g)
        return record(y, inputs: [x]) { dy, _ in
            switch gate {
            case .hard: return [Pooling.maxPool2dBackward(dy, argmax: argmax, g)]
            case .soft(let t, let detach):
                return [Pooling.softMaxPool2dBackward(dy, x: xv, g, temperature: t, detachWeights: detach)]
            }
        }
    }

    /// avgPool2d: x [N, C, H, W] -> [N, C, outH, outW], PyTorch divisor rules (count_include_pad).
    public func avgPool2d(_ x: Variable, kernel: Int, stride: Int, padding: Int = 0, ceilMode: Bool = false,
                          countIncludePad: Bool = true) throws -> Variable {
        let g = try poolGeometry("avgPool2d", x, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        return record(Pooling.avgPool2d(value(x), g, countIncludePad: countIncludePad), inputs: [x]) { dy, _ in
            [Pooling.avgPool2dBackward(dy, g, countIncludePad: countIncludePad)]
        }
    }

    /// adaptiveAvgPool2d: x [N, C, H, W] -> [N, C, outputHeight, outputWidth]
    /// (window o = [floor(o*H/out), ceil((o+1)*H/out))).
    public func adaptiveAvgPool2d(_ x: Variable, outputHeight: Int, outputWidth: Int) throws -> Variable {
        let s = shape(x)
        guard s.count == 4 else { throw EngineError(op: "adaptiveAvgPool2d", "expected input [N, C, H, W], got shape \(s)") }
        guard outputHeight > 0, outputWidth > 0, s[2] > 0, s[3] > 0 else {
            throw EngineError(op: "adaptiveAvgPool2d", "output size \(outputHeight)x\(outputWidth) and input \(s) must be non-empty")
        }
        return record(Pooling.adaptiveAvgPool2d(value(x), outH: outputHeight, outW: outputWidth), inputs: [x]) { dy, _ in
            [Pooling.adaptiveAvgPool2dBackward(dy, inputShape: s)]
        }
    }

    /// globalAvgPool: x [N, C, H, W] -> [N, C] (mean over H, W).
    public func globalAvgPool(_ x: Variable) throws -> Variable {
        let s = shape(x)
        guard s.count == 4, s[2] * s[3] > 0 else {
            throw EngineError(op: "globalAvgPool", "expected non-empty input [N, C, H, W], got shape \(s)")
        }
        return record(Pooling.globalAvgPool(value(x)), inputs: [x]) { dy, _ in
            [Pooling.globalAvgPoolBackward(dy, inputShape: s)]
        }
    }

    /// Validates a pooling configuration like PyTorch (pad at most half the kernel, non-empty output).
    func poolGeometry(_ op: String, _ x: Variable, kernel: Int, stride: Int, padding: Int, ceilMode: Bool) throws -> PoolGeometry {
        let s = shape(x)
        guard s.count == 4 else { throw EngineError(op: op, "expected input [N, C, H, W], got shape \(s)") }
        guard kernel > 0, stride > 0, padding >= 0 else {
            throw EngineError(op: op, "kernel \(kernel) and stride \(stride) must be positive, padding \(padding) non-negative")
        }
        guard padding <= kernel / 2 else {
            throw EngineError(op: op, "padding \(padding) must be at most half the kernel size \(kernel)")
        }
        let g = PoolGeometry(input: s, kernel: kernel, stride: stride, padding: padding, ceilMode: ceilMode)
        guard g.outH > 0, g.outW > 0 else {
            throw EngineError(op: op, "input \(s) is too small for kernel \(kernel), stride \(stride), padding \(padding): output would be \(g.outH)x\(g.outW)")
        }
        return g
    }
}
