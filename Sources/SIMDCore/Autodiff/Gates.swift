// MARK: - Gates: the backward rules of ReLU and max-pool
//
// Paper A's whole idea lives here. The forward pass of every ReLU is max(z, 0) and of every
// max-pool is the hard window maximum — always. Only the BACKWARD rule is swappable:
//
//   ReLU     dz = dy * gate(z)
//            hard        gate(z) = 1[z > 0]                (vanilla gradient)
//            sigmoid     gate(z) = sigmoid(z / T)           (excitation pullback, paper A, T = 0.3)
//            normalCDF   gate(z) = Phi(z / T)               (successor work, T = 0.6)
//
//   MaxPool  hard        dx = dy routed to the argmax of each window (PyTorch's first-max rule)
//            soft        dx = d/dx of s = sum_j softmax(x_window / T)_j * x_j, windows zero-padded
//                        (detachWeights = false: paper A; true: successor, softmax treated constant)

import Foundation

/// The backward gate of a ReLU. The forward pass is always `max(z, 0)`.
///
/// ```swift
/// let g = Gate.sigmoid(temperature: 0.3)
/// g.derivative(0.0)   // 0.5 — half a gate at the kink
/// ```
public enum Gate: Equatable, Hashable, Sendable, CustomStringConvertible {
    case hard
    case sigmoid(temperature: Float)
    case normalCDF(temperature: Float)

    /// The factor that multiplies the incoming gradient at pre-activation `z`.
    @inline(__always)
    public func derivative(_ z: Float) -> Float {
        switch self {
        case .hard: return z > 0 ? 1 : 0
        case .sigmoid(let t): return FastMath.sigmoid(z / t)   // bit-identical to the SIMD16 path
        case .normalCDF(let t): return FastMath.normalCDF(z / t)  // bit-identical to the SIMD16 path
        }
    }

    /// Stable names used by recipes: `hard`, `sigmoid`, `normal_cdf`.
    public var name: String {
        switch self {
        case .hard: return "hard"
        case .sigmoid: return "sigmoid"
        case .normalCDF: return "normal_cdf"
        }
    }

    public var description: String {
        switch self {
        case .hard: return "hard"
        case .sigmoid(let t): return "sigmoid(T=\(t))"
        case .normalCDF(let t): return "normal_cdf(T=\(t))"
        }
    }

    /// Builds a gate from its recipe name; unknown names list the valid ones.
    public static func named(_ name: String, temperature: Float) throws -> Gate {
        switch name {
        case "hard": return .hard
        case "sigmoid": return .sigmoid(temperature: temperature)
        case "normal_cdf": return .normalCDF(temperature: temperature)
        default: throw EngineError(op: "Gate", "unknown gate '\(name)'; valid gates: hard, sigmoid, normal_cdf")
        }
    }
}

/// The backward rule of a max-pool. The forward pass is always the hard window maximum.
public enum PoolGate: Equatable, Hashable, Sendable, CustomStringConvertible {
    case hard
    /// Gradient of the surrogate soft pool `sum_j softmax(x/T)_j x_j` over each (zero-padded) window.
    case soft(temperature: Float, detachWeights: Bool)

    public var description: String {
        switch self {
        case .hard: return "hard"
        case .soft(let t, let d): return "soft(T=\(t)\(d ? ", detached" : ""))"
        }
    }
}

/// Which backward gate each ReLU / max-pool of a model uses: one global choice, optionally
/// overridden per layer name (e.g. DenseNet's functional final ReLU stays `hard` in paper A).
///
/// ```swift
/// var policy = GatePolicy(relu: .sigmoid(temperature: 0.3), pool: .soft(temperature: 0.3, detachWeights: false))
/// policy.reluOverrides["features.relu_final"] = .hard
/// ```
public struct GatePolicy: Equatable, Sendable {
    public var relu: Gate
    public var pool: PoolGate
    public var reluOverrides: [String: Gate]
    public var poolOverrides: [String: PoolGate]

    public init(relu: Gate = .hard, pool: PoolGate = .hard,
                reluOverrides: [String: Gate] = [:], poolOverrides: [String: PoolGate] = [:]) {
        self.relu = relu; self.pool = pool
        self.reluOverrides = reluOverrides; self.poolOverrides = poolOverrides
    }

    /// Ordinary backpropagation: every gate hard.
    public static let vanilla = GatePolicy()

    /// Paper A's excitation pullback: sigmoid gates and soft max-pools at temperature `t`.
    public static func excitation(temperature t: Float = 0.3, gate: String = "sigmoid",
                                  softPool: Bool = true, detachPoolWeights: Bool = false) throws -> GatePolicy {
        GatePolicy(relu: try Gate.named(gate, temperature: t),
                   pool: softPool ? .soft(temperature: t, detachWeights: detachPoolWeights) : .hard)
    }

    public func relu(for layer: String) -> Gate { reluOverrides[layer] ?? relu }
    public func pool(for layer: String) -> PoolGate { poolOverrides[layer] ?? pool }
}

// MARK: - The backward rules, all in one place
//
// Every gated pullback of the engine is one of the three rules below; the kernels
// (Elementwise.reluBackward, Pooling.maxPool2dBackward / softMaxPool2dBackward) only loop over
// elements and windows and apply them. The SIMD16 ReLU pullback evaluates the same FastMath
// functions as `Gate.derivative` (bit-identical); the soft pool has a one-window rule
// (`softWindowFactors`, reference) and a 16-windows rule (`softWindowFactors16`, fast kernel).
//
//   ReLU                dz_i  = dy_i * gate.derivative(z_i)
//   max-pool, hard      dx_a += dy   for a = first argmax of the window (PyTorch), 0 elsewhere
//   max-pool, soft      w = softmax(x_window / T),  s = sum_j w_j x_j
//                       dx_j += dy * w_j * (1 + (x_j - s) / T)      (weights not detached: paper A)
//                       dx_j += dy * w_j                            (detachWeights: successor work)
//
// Paper A's code (314-Foundation/ExcitationPullbacks, lib/modules.py), which this reproduces:
// - `TwoWayReLUFunction`: forward F.relu(z); backward grad_output * sigmoid(z / temperature).
//   The gate is evaluated at the pre-activation z, exactly `Gate.sigmoid(temperature:)` here.
// - `SurrogateSoftMaxPool2d`: output = hard.detach() + (soft - soft.detach()), so the forward value
//   is the ordinary hard F.max_pool2d and the gradient is that of `soft` only. `soft` unfolds x with
//   F.unfold(kernel, stride, padding) — ZERO padding, so padded positions enter the softmax with
//   value 0 and get no gradient (they are not inputs) — and computes sum_j softmax(x_w / T)_j x_j
//   with the softmax weights NOT detached. Its output size uses the floor formula; with ceil_mode
//   the hard and soft shapes would differ and their module fails, so ceil mode never occurs there.
//   Here a ceil-mode window is the PyTorch window: clipped at the padded border (no overhang), zero
//   padding inside it. Dilation is not supported (torchvision models use 1).
// - The same temperature serves every ReLU and max-pool (app default T = 0.3).

extension Gate {
    /// The ReLU pullback of one element: `dy * derivative(z)`.
    @inline(__always)
    public func pullback(_ dy: Float, z: Float) -> Float { dy * derivative(z) }
}

extension PoolGate {
    /// The soft max-pool rule for one window, in place: on entry `values` holds the window
    /// (0 at zero-padding positions), on exit `values[j]` is `d s / d x_j` (multiply by dy).
    ///
    /// ```swift
    /// var v: [Float] = [1, 2]                 // s = softmax([1,2]/T) · [1,2]
    /// v.withUnsafeMutableBufferPointer { PoolGate.softWindowFactors($0, temperature: 1, detachWeights: true) }
    /// // v == softmax([1, 2]) == [0.269, 0.731]
    /// ```
    @inline(__always)
    public static func softWindowFactors(_ values: UnsafeMutableBufferPointer<Float>,
                                         temperature t: Float, detachWeights: Bool) {
        let m = values.count
        guard m > 0 else { return }
        var mx = -Float.infinity
        for j in 0..<m { mx = Swift.max(mx, values[j]) }
        // Stable softmax: subtract the window maximum; accumulate Z and s in Double (windows are tiny).
        var z = 0.0, sx = 0.0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: m) { e in
            for j in 0..<m {
                e[j] = Foundation.exp((values[j] - mx) / t)
                z += Double(e[j]); sx += Double(e[j]) * Double(values[j])
            }
            let s = Float(sx / z), invZ = Float(1 / z)
            for j in 0..<m {
                let w = e[j] * invZ
                values[j] = detachWeights ? w : w * (1 + (values[j] - s) / t)
            }
        }
    }

    /// The same rule for 16 windows at once (lane l = window l), used by the fast kernel.
    /// `values[j]` holds element j of each window (0 in the zero padding), `present[j]` is 1 where
    /// element j exists and 0 where it does not (ceil-mode overhang, or lanes past the row's end);
    /// `scratch` has room for `m` vectors. On exit `values[j]` is `d s / d x_j` per lane.
    /// FastMath.exp; Z and s accumulate in Float (the scalar rule above uses libm and Double).
    @inline(__always)
    public static func softWindowFactors16(_ values: UnsafeMutablePointer<SIMD16<Float>>,
                                           present: UnsafePointer<SIMD16<Float>>,
                                           scratch e: UnsafeMutablePointer<SIMD16<Float>>, count m: Int,
                                           temperature t: Float, detachWeights: Bool) {
        var mx = SIMD16<Float>(repeating: -Float.greatestFiniteMagnitude)
        for j in 0..<m { mx = mx.replacing(with: values[j], where: (values[j] .> mx) .& (present[j] .> 0)) }
        var z = SIMD16<Float>(), sx = SIMD16<Float>()
        for j in 0..<m {
            e[j] = FastMath.exp((values[j] - mx) / t) * present[j]
            z += e[j]; sx += e[j] * values[j]
        }
        z = z.replacing(with: 1, where: z .== 0)          // lanes without a window: avoid 0/0
        let invZ = 1 / z, s = sx * invZ
        for j in 0..<m {
            let w = e[j] * invZ
            values[j] = detachWeights ? w : w * (1 + (values[j] - s) / t)
        }
    }
}
