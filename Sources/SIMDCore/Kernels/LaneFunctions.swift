// MARK: - Lane functions: what Elementwise.map and Elementwise.zip apply
//
// Each type gives one elementwise function twice, for 16 lanes and for one (the tail), performing
// the same IEEE operations in the same order, so that a tensor's result does not depend on where
// its tail falls. Types rather than closures so that every use is specialised and inlined at full
// vector width (see Elementwise, "Generic SIMD driver").

/// y = f(a).
@usableFromInline protocol LaneFunction1 {
    func callAsFunction(_ a: SIMD16<Float>) -> SIMD16<Float>
    func callAsFunction(_ a: Float) -> Float
}

/// y = f(a, b).
@usableFromInline protocol LaneFunction2 {
    func callAsFunction(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float>
    func callAsFunction(_ a: Float, _ b: Float) -> Float
}

enum Lanes {
    typealias V = SIMD16<Float>

    // MARK: Arithmetic

    struct Add: LaneFunction2 {
        @inline(__always) func callAsFunction(_ a: V, _ b: V) -> V { a + b }
        @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b }
    }
    struct Mul: LaneFunction2 {
        @inline(__always) func callAsFunction(_ a: V, _ b: V) -> V { a * b }
        @inline(__always) func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b }
    }
    struct Scale: LaneFunction1 {
        let s: Float
        @inline(__always) func callAsFunction(_ a: V) -> V { a * s }
        @inline(__always) func callAsFunction(_ a: Float) -> Float { a * s }
    }

    // MARK: ReLU and its gates (Gates.swift): dz = dy * gate(z)

    /// max(z, 0), NaN kept.
    struct Relu: LaneFunction1 {
        @inline(__always) func callAsFunction(_ v: V) -> V { v.replacing(with: 0, where: v .<= 0) }
        @inline(__always) func callAsFunction(_ v: Float) -> Float { v <= 0 ? 0 : v }
    }
    /// (dy, z) -> dy * 1[z > 0].
    struct HardGate: LaneFunction2 {
        @inline(__always) func callAsFunction(_ g: V, _ z: V) -> V { g.replacing(with: 0, where: z .<= 0) }
        @inline(__always) func callAsFunction(_ g: Float, _ z: Float) -> Float { z > 0 ? g : 0 }
    }
    /// (dy, z) -> dy * sigmoid(z / T), as `Gate.sigmoid(temperature: T).derivative`.
    struct SigmoidGate: LaneFunction2 {
        let t: Float
        @inline(__always) func callAsFunction(_ g: V, _ z: V) -> V { g * FastMath.sigmoid(z / t) }
        @inline(__always) func callAsFunction(_ g: Float, _ z: Float) -> Float { g * FastMath.sigmoid(z / t) }
    }
    /// (dy, z) -> dy * Phi(z / T), as `Gate.normalCDF(temperature: T).derivative`.
    struct NormalCDFGate: LaneFunction2 {
        let t: Float
        @inline(__always) func callAsFunction(_ g: V, _ z: V) -> V { g * FastMath.normalCDF(z / t) }
        @inline(__always) func callAsFunction(_ g: Float, _ z: Float) -> Float { g * FastMath.normalCDF(z / t) }
    }

    // MARK: Sigmoid and the soft gates of paper B

    struct Sigmoid: LaneFunction1 {
        @inline(__always) func callAsFunction(_ x: V) -> V { FastMath.sigmoid(x) }
        @inline(__always) func callAsFunction(_ x: Float) -> Float { FastMath.sigmoid(x) }
    }
    /// (dy, y) -> dy * y * (1 - y).
    struct SigmoidBackward: LaneFunction2 {
        @inline(__always) func callAsFunction(_ g: V, _ y: V) -> V { g * y * (1 - y) }
        @inline(__always) func callAsFunction(_ g: Float, _ y: Float) -> Float { g * y * (1 - y) }
    }
    /// q -> sigmoid(beta * q).
    struct SoftGate: LaneFunction1 {
        let beta: Float
        @inline(__always) func callAsFunction(_ q: V) -> V { FastMath.sigmoid(q * beta) }
        @inline(__always) func callAsFunction(_ q: Float) -> Float { FastMath.sigmoid(q * beta) }
    }
    /// (dy, s) -> dy * s * (1 - s) * beta.
    struct SoftGateBackward: LaneFunction2 {
        let beta: Float
        @inline(__always) func callAsFunction(_ g: V, _ s: V) -> V { g * s * (1 - s) * beta }
        @inline(__always) func callAsFunction(_ g: Float, _ s: Float) -> Float { g * s * (1 - s) * beta }
    }
}
