// MARK: - FastMath: exp, sigmoid and normal CDF, scalar and SIMD16, bit-identical
//
// The soft gates evaluate sigmoid(z / T) once per activation in every backward pass; libm's scalar
// expf made that 15x slower than the hard gate. This is the Cephes expf scheme:
//   x = clamp(x, -87.3, 88.3);  n = round(x * log2 e) (magic-number rounding);  r = x - n * ln2   (ln2 split in two parts)
//   exp(x) = 2^n * (1 + r + r^2 * P(r)),  P a degree-5 polynomial   (relative error ~1e-7, 1-2 ulp)
// The scalar and SIMD16 versions perform the same IEEE operations in the same order (no FMA), so
// they agree bit for bit — `Gate.derivative` (scalar) and the SIMD ReLU pullback give identical
// gates; OpsKernelTests checks this on a sweep of inputs.

public enum FastMath {
    @usableFromInline static let log2e: Float = 1.44269504088896341
    @usableFromInline static let c1: Float = 0.693359375
    @usableFromInline static let c2: Float = -2.12194440e-4
    @usableFromInline static let lo: Float = -87.3
    @usableFromInline static let hi: Float = 88.3

    /// 1.5 * 2^23: adding it rounds a Float of magnitude < 2^22 to the nearest integer (ties to even),
    /// which then sits in the low mantissa bits. Cheaper than `rounded()`, which is not vectorised for SIMD.
    @usableFromInline static let magic: Float = 12582912

    /// e^x (clamped to the normal Float range: exp(-100) returns exp(-87.3) ≈ 1.2e-38).
    @inlinable @inline(__always)
    public static func exp(_ x0: Float) -> Float {
        var x = x0 < lo ? lo : x0
        x = x > hi ? hi : x
        let t = x * log2e + magic
        let n = t - magic
        let r = (x - n * c1) - n * c2
        var p: Float = 1.9875691500e-4
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = (p * (r * r) + r) + 1
        let bits = (Int32(bitPattern: t.bitPattern) &- Int32(bitPattern: magic.bitPattern) &+ 127) &<< 23
        return y * Float(bitPattern: UInt32(bitPattern: bits))
    }

    @inlinable @inline(__always)
    public static func exp(_ x0: SIMD16<Float>) -> SIMD16<Float> {
        var x = x0.replacing(with: lo, where: x0 .< lo)
        x = x.replacing(with: hi, where: x .> hi)
        let t = x * log2e + magic
        let n = t - magic
        let r = (x - n * c1) - n * c2
        var p = SIMD16<Float>(repeating: 1.9875691500e-4)
        p = p * r + 1.3981999507e-3
        p = p * r + 8.3334519073e-3
        p = p * r + 4.1665795894e-2
        p = p * r + 1.6666665459e-1
        p = p * r + 5.0000001201e-1
        let y = (p * (r * r) + r) + 1
        let tb = unsafeBitCast(t, to: SIMD16<Int32>.self)
        let bits = (tb &- Int32(bitPattern: magic.bitPattern) &+ 127) &<< 23
        return y * unsafeBitCast(bits, to: SIMD16<Float>.self)
    }

    /// 1 / (1 + e^-x).
    @inlinable @inline(__always)
    public static func sigmoid(_ x: Float) -> Float { 1 / (1 + exp(-x)) }

    @inlinable @inline(__always)
    public static func sigmoid(_ x: SIMD16<Float>) -> SIMD16<Float> { 1 / (1 + exp(-x)) }

    // MARK: Normal CDF (the successor work's gate)
    //
    // Phi(u) = erfc(-u / sqrt 2) / 2 with the Chebyshev erfc of Numerical Recipes (erfcc, fractional
    // error < 1.2e-7 in exact arithmetic): a = |v|, t = 1 / (1 + a/2),
    //   erfc(a) = t * exp(-a^2 + P(t)),  erfc(-a) = 2 - erfc(a).

    @inlinable @inline(__always)
    public static func normalCDF(_ u: Float) -> Float {
        let v = -u * 0.70710678118654752
        let a = v < 0 ? -v : v
        let t = 1 / (1 + 0.5 * a)
        var p: Float = 0.17087277
        p = p * t - 0.82215223
        p = p * t + 1.48851587
        p = p * t - 1.13520398
        p = p * t + 0.27886807
        p = p * t - 0.18628806
        p = p * t + 0.09678418
        p = p * t + 0.37409196
        p = p * t + 1.00002368
        p = p * t - 1.26551223
        let e = t * exp(p - a * a)
        return 0.5 * (v < 0 ? 2 - e : e)
    }

    @inlinable @inline(__always)
    public static func normalCDF(_ u: SIMD16<Float>) -> SIMD16<Float> {
        let v = -u * 0.70710678118654752
        let a = v.replacing(with: -v, where: v .< 0)
        let t = 1 / (1 + 0.5 * a)
        var p = SIMD16<Float>(repeating: 0.17087277)
        p = p * t - 0.82215223
        p = p * t + 1.48851587
        p = p * t - 1.13520398
        p = p * t + 0.27886807
        p = p * t - 0.18628806
        p = p * t + 0.09678418
        p = p * t + 0.37409196
        p = p * t + 1.00002368
        p = p * t - 1.26551223
        let e = t * exp(p - a * a)
        return 0.5 * e.replacing(with: 2 - e, where: v .< 0)
    }
}
