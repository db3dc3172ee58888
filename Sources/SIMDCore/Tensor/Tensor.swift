import Foundation
// MARK: - Tensor
//
// A dense Float32 tensor, row-major (NCHW for images), always contiguous.
// Value semantics through Swift's copy-on-write Array: copying a Tensor is O(1) until one copy is
// written to. Kernels read and write through `withUnsafe...` to avoid bounds checks in hot loops.

/// A dense, contiguous Float32 tensor in row-major order (NCHW for image batches).
///
/// ```swift
/// var x = Tensor(zeros: [1, 3, 224, 224])
/// x[0, 1, 10, 10] = 0.5
/// let flat = x.reshaped([1, -1])   // [1, 150528]
/// ```
public struct Tensor: Equatable, Sendable {
    public private(set) var shape: [Int]
    public var scalars: [Float]

    // MARK: Construction

    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in \(shape)")
        precondition(shape.reduce(1, *) == scalars.count,
                     "Tensor: shape \(shape) needs \(shape.reduce(1, *)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
    }

    public init(shape: [Int], repeating value: Float) {
        self.init(shape: shape, scalars: [Float](repeating: value, count: shape.reduce(1, *)))
    }

    public init(zeros shape: [Int]) { self.init(shape: shape, repeating: 0) }

    /// A tensor whose scalars are left unset, for kernels that overwrite every one of them (skips
    /// zeroing megabytes that are written again at once).
    static func uninitialized(_ shape: [Int]) -> Tensor {
        let n = shape.reduce(1, *)
        return Tensor(shape: shape, scalars: [Float](unsafeUninitializedCapacity: n) { _, count in count = n })
    }

    /// A scalar (rank-0) tensor.
    public init(scalar: Float) { self.init(shape: [], scalars: [scalar]) }

    /// Fills a tensor with `f(flatIndex)`; handy in tests.
    public init(shape: [Int], _ f: (Int) -> Float) {
        let n = shape.reduce(1, *)
        self.init(shape: shape, scalars: (0..<n).map(f))
    }

    // MARK: Shape

    public var rank: Int { shape.count }
    public var count: Int { scalars.count }

    /// Row-major strides, in elements.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Same scalars, new shape. One dimension may be -1 and is inferred.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var s = newShape
        if let i = s.firstIndex(of: -1) {
            let known = s.enumerated().filter { $0.offset != i }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(count) scalars")
            s[i] = count / known
        }
        var t = self
        t.shape = s
        precondition(s.reduce(1, *) == count, "reshape: \(shape) -> \(newShape) changes the element count")
        return t
    }

    // MARK: Element access (not for hot loops)

    public subscript(indices: Int...) -> Float {
        get { scalars[flatIndex(indices)] }
        set { scalars[flatIndex(indices)] = newValue }
    }

    @inline(__always)
    func flatIndex(_ idx: [Int]) -> Int {
        precondition(idx.count == shape.count, "Tensor index \(idx) has rank \(idx.count), tensor has shape \(shape)")
        var flat = 0
        for (i, d) in zip(idx, shape) {
            precondition(i >= 0 && i < d, "Tensor index \(idx) out of bounds for shape \(shape)")
            flat = flat * d + i
        }
        return flat
    }

    // MARK: Raw access

    @inline(__always)
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    @inline(__always)
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }
}

// MARK: - Small helpers used everywhere

extension Tensor {
    /// Largest |a - b| over all elements; shapes must match.
    public func maxAbsDifference(_ other: Tensor) -> Float {
        precondition(shape == other.shape, "maxAbsDifference: \(shape) vs \(other.shape)")
        var m: Float = 0
        for i in 0..<count { m = Swift.max(m, abs(scalars[i] - other.scalars[i])) }
        return m
    }

    /// Cosine similarity of the two tensors seen as flat vectors (accumulated in Double).
    public func cosineSimilarity(_ other: Tensor) -> Double {
        precondition(count == other.count, "cosineSimilarity: \(shape) vs \(other.shape)")
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in 0..<count {
            let a = Double(scalars[i]), b = Double(other.scalars[i])
            dot += a * b; na += a * a; nb += b * b
        }
        return dot / Swift.max((na * nb).squareRoot(), 1e-300)
    }

    /// True when every scalar is finite (no NaN, no ±inf).
    public var isFinite: Bool { scalars.allSatisfy { $0.isFinite } }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}
