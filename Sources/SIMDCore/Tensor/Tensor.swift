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
    /// Largest |a - b| over all elements, or +infinity when the shapes differ or either tensor
    /// holds a NaN or an infinity, so that no tolerance accepts a broken result
    /// (`Swift.max(m, .nan)` is `m`: a plain running maximum would silently skip a NaN).
    ///
    /// ```swift
    /// let d = y.maxAbsDifference(reference)   // .infinity if y has a NaN
    /// ```
    public func maxAbsDifference(_ other: Tensor) -> Float {
        Float(Discrepancy(self, other).worst)
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

// MARK: - NaN-aware comparison

/// An element-wise tolerance: `|actual - expected| <= absolute + relative * |expected|`.
///
/// ```swift
/// let tol = Tolerance(relative: 1e-2, absolute: 1e-4)   // 1% of the value, never tighter than 1e-4
/// ```
public struct Tolerance: Sendable, CustomStringConvertible {
    public var relative: Double
    public var absolute: Double
    public init(relative: Double = 0, absolute: Double) {
        self.relative = relative
        self.absolute = absolute
    }
    /// Exactly equal (bit-reproducible results).
    public static let exact = Tolerance(absolute: 0)
    public var description: String { relative == 0 ? "±\(absolute)" : "±(\(absolute) + \(relative)·|expected|)" }
}

/// The worst disagreement between an actual and an expected sequence of numbers: the one
/// comparison that tests and goldens use.
///
/// It fails on a NaN or an infinity in either operand and on a count or shape mismatch, however
/// loose the tolerance; `worst` is then +infinity, so a running `max` keeps it.
///
/// ```swift
/// var d = Discrepancy(tolerance: Tolerance(relative: 1e-2, absolute: 1e-3))
/// d.add(actual: 0.101, expected: 0.1)
/// XCTAssertTrue(d.holds, "\(d)")
/// let e = Discrepancy(y, reference)          // maxAbsDifference, NaN-aware
/// XCTAssertLessThan(e.worst, 1e-5, "\(e)")
/// ```
public struct Discrepancy: Sendable, CustomStringConvertible {
    /// The per-element tolerance `holds` checks (exact when none is given).
    public let tolerance: Tolerance
    /// Number of element pairs compared.
    public private(set) var count = 0
    /// Largest |actual - expected| over finite pairs.
    public private(set) var maxAbsolute = 0.0
    /// Largest |expected|, for tolerances scaled by the reference's magnitude.
    public private(set) var maxExpected = 0.0
    /// Largest |actual - expected| / (absolute + relative·|expected|): at most 1 when the tolerance holds.
    public private(set) var worstRatio = 0.0
    /// Why the comparison failed regardless of tolerance: the first NaN/infinity, or a size mismatch.
    public private(set) var failure: String?

    public init(tolerance: Tolerance = .exact) { self.tolerance = tolerance }

    /// Compares two tensors (shapes must match).
    public init(_ actual: Tensor, _ expected: Tensor, tolerance: Tolerance = .exact) {
        self.init(tolerance: tolerance)
        if actual.shape != expected.shape {
            failure = "shape \(actual.shape) vs expected \(expected.shape)"
            return
        }
        add(actual: actual.scalars, expected: expected.scalars)
    }

    /// Compares two equally long sequences.
    public init<A: Collection, E: Collection>(_ actual: A, _ expected: E, tolerance: Tolerance = .exact)
    where A.Element: BinaryFloatingPoint, E.Element: BinaryFloatingPoint {
        self.init(tolerance: tolerance)
        add(actual: actual, expected: expected)
    }

    /// Adds one pair.
    public mutating func add<T: BinaryFloatingPoint>(actual: T, expected: T) {
        let a = Double(actual), e = Double(expected)
        let i = count
        count += 1
        guard failure == nil else { return }
        guard a.isFinite else { failure = "actual[\(i)] is \(a)"; return }
        guard e.isFinite else { failure = "expected[\(i)] is \(e)"; return }
        let d = abs(a - e)
        maxAbsolute = Swift.max(maxAbsolute, d)
        maxExpected = Swift.max(maxExpected, abs(e))
        let allowed = tolerance.absolute + tolerance.relative * abs(e)
        let ratio = d == 0 ? 0 : (allowed > 0 ? d / allowed : .infinity)
        worstRatio = Swift.max(worstRatio, ratio)
    }

    /// Adds every pair of two sequences, which must be equally long.
    public mutating func add<A: Collection, E: Collection>(actual: A, expected: E)
    where A.Element: BinaryFloatingPoint, E.Element: BinaryFloatingPoint {
        if actual.count != expected.count, failure == nil {
            failure = "\(actual.count) actual values vs \(expected.count) expected"
        }
        for (a, e) in zip(actual, expected) { add(actual: Double(a), expected: Double(e)) }
    }

    /// Merges another comparison's pairs (same tolerance assumed).
    public mutating func merge(_ other: Discrepancy) {
        if failure == nil, let f = other.failure { failure = f }
        count += other.count
        maxAbsolute = Swift.max(maxAbsolute, other.maxAbsolute)
        maxExpected = Swift.max(maxExpected, other.maxExpected)
        worstRatio = Swift.max(worstRatio, other.worstRatio)
    }

    /// Largest |actual - expected|, or +infinity after a NaN, an infinity or a size mismatch.
    public var worst: Double { failure == nil ? maxAbsolute : .infinity }

    /// True when every pair is finite and within `tolerance`, and the sizes matched.
    public var holds: Bool { failure == nil && worstRatio <= 1 }

    public var description: String {
        if let f = failure { return "comparison failed: \(f)" }
        let f = { (v: Double) in String(format: "%.3g", v) }
        return "\(count) values, max |Δ| \(f(maxAbsolute)) (max |expected| \(f(maxExpected))), worst \(f(worstRatio)) of tolerance \(tolerance)"
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let head = scalars.prefix(8).map { String(format: "%.4g", $0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(head)\(count > 8 ? ", …" : "")])"
    }
}
