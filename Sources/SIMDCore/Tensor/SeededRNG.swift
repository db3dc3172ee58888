import Foundation
// MARK: - SeededRNG
//
// The project's own random numbers: SplitMix64 (Steele, Lea, Flood 2014). Tiny, well mixed, and
// trivial to re-implement bit-for-bit in Python (the scripts in reference/ do), so synthetic
// weights made from a seed are the same in Swift and in the PyTorch reference.
//
// Conversions (documented so other languages can match them):
//   nextUInt64: state += 0x9E3779B97F4A7C15; z = state;
//               z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9; z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
//               return z ^ (z >> 31)                       (all arithmetic mod 2^64)
//   uniform():  Float(next >> 40) * 2^-24                   in [0, 1), exactly representable
//   uniform(a, b): a + (b - a) * uniform()                  evaluated in Float
//   normal():   Box–Muller in Double: u1 = (next >> 11 + 1) * 2^-53, u2 = (next >> 11) * 2^-53,
//               sqrt(-2 ln u1) * cos(2π u2), rounded to Float (one draw of two words per sample)

/// A deterministic, seedable random number generator (SplitMix64).
///
/// ```swift
/// var rng = SeededRNG(seed: 42)
/// let w = rng.uniformTensor([64, 3, 7, 7], bound: 0.1)   // U(-0.1, 0.1)
/// ```
public struct SeededRNG: Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    @inline(__always)
    public mutating func nextUInt64() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func uniform() -> Float { Float(nextUInt64() >> 40) * 0x1p-24 }

    /// Uniform in [low, high).
    @inline(__always)
    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * uniform() }

    /// Standard normal sample (Box–Muller, cosine branch only, computed in Double).
    public mutating func normal() -> Float {
        let u1 = (Double(nextUInt64() >> 11) + 1) * 0x1p-53
        let u2 = Double(nextUInt64() >> 11) * 0x1p-53
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }

    /// Uniform integer in 0..<n (rejection-free multiply-shift; n < 2^32).
    public mutating func below(_ n: Int) -> Int {
        precondition(n > 0 && n <= Int(UInt32.max))
        return Int(((nextUInt64() >> 32) &* UInt64(n)) >> 32)
    }

    /// A tensor of U(-bound, bound) samples, in row-major order.
    public mutating func uniformTensor(_ shape: [Int], bound: Float) -> Tensor {
        Tensor(shape: shape) { _ in self.uniform(-bound, bound) }
    }

    /// A tensor of N(mean, std²) samples, in row-major order.
    public mutating func normalTensor(_ shape: [Int], mean: Float = 0, std: Float = 1) -> Tensor {
        Tensor(shape: shape) { _ in mean + std * self.normal() }
    }

    /// Fisher–Yates shuffle of 0..<n, deterministic for the generator state.
    public mutating func permutation(_ n: Int) -> [Int] {
        var p = Array(0..<n)
        if n < 2 { return p }
        for i in stride(from: n - 1, to: 0, by: -1) { p.swapAt(i, below(i + 1)) }
        return p
    }
}
