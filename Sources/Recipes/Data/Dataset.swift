// MARK: - Dataset
//
// A labelled image set held in memory: images as one Float tensor [N, C, H, W] with values in
// [0, 1] (bytes / 255), labels as Ints, class names. Per-channel normalisation is a property,
// applied when batches are made (after augmentation, as torchvision's ToTensor → Normalize
// order does, so crop padding is black in [0, 1] space).
import Foundation
import SIMDCore

/// Per-channel normalisation y[:, c] = (x[:, c] - mean[c]) / std[c].
///
/// ```swift
/// var d = try MNIST5k.load(split: .train)
/// d.normalization = .mnist                          // (0.1307, 0.3081)
/// d.normalization = ChannelNormalization.fit(d)     // or measured on this data
/// ```
public struct ChannelNormalization: Equatable, Sendable {
    public var mean: [Float]
    public var std: [Float]

    public init(mean: [Float], std: [Float]) {
        precondition(mean.count == std.count && std.allSatisfy { $0 > 0 }, "ChannelNormalization: mean \(mean) / std \(std)")
        self.mean = mean; self.std = std
    }

    /// The constants torchvision examples use for MNIST (full 60k training set).
    public static let mnist = ChannelNormalization(mean: [0.1307], std: [0.3081])

    /// Mean and (population) standard deviation per channel of a whole data set, accumulated in Double.
    public static func fit(_ d: Dataset) -> ChannelNormalization {
        let c = d.channels, plane = d.height * d.width
        var sum = [Double](repeating: 0, count: c), sq = [Double](repeating: 0, count: c)
        d.images.withUnsafeBufferPointer { x in
            for n in 0..<d.count {
                for ch in 0..<c {
                    var s = 0.0, q = 0.0
                    let base = (n * c + ch) * plane
                    for i in 0..<plane { let v = Double(x[base + i]); s += v; q += v * v }
                    sum[ch] += s; sq[ch] += q
                }
            }
        }
        let m = Double(d.count * plane)
        let mean = sum.map { $0 / m }
        let std = zip(sq, mean).map { max(($0 / m - $1 * $1), 1e-12).squareRoot() }
        return ChannelNormalization(mean: mean.map(Float.init), std: std.map(Float.init))
    }

    /// Normalises a batch [N, C, H, W] in place.
    public func apply(to x: inout Tensor) {
        precondition(x.rank == 4 && x.shape[1] == mean.count,
                     "ChannelNormalization: \(mean.count) channels, batch shape \(x.shape)")
        let n = x.shape[0], c = x.shape[1], plane = x.shape[2] * x.shape[3]
        let scale = std.map { 1 / $0 }
        x.withUnsafeMutableBufferPointer { p in
            for n in 0..<n {
                for ch in 0..<c {
                    let base = (n * c + ch) * plane, m = mean[ch], s = scale[ch]
                    for i in 0..<plane { p[base + i] = (p[base + i] - m) * s }
                }
            }
        }
    }
}

public enum DataSplit: String, Sendable, CaseIterable { case train, test }

/// A labelled image data set in memory.
///
/// ```swift
/// let d = try MNIST5k.load(split: .train)                   // 4,000 × [1, 28, 28]
/// let npk = try d.take(perClass: 100, classes: [4, 7]).relabeled(classes: [4, 7])   // 200 images, labels 0/1
/// let x = d.images(at: [0, 1, 2])                           // [3, 1, 28, 28] in [0, 1]
/// ```
public struct Dataset: Sendable {
    public var name: String
    /// [N, C, H, W], values in [0, 1].
    public var images: Tensor
    public var labels: [Int]
    public var classNames: [String]
    /// Applied by `batch(_:)` and `BatchIterator`, never stored into `images`.
    public var normalization: ChannelNormalization?

    public init(name: String, images: Tensor, labels: [Int], classNames: [String],
                normalization: ChannelNormalization? = nil) throws {
        guard images.rank == 4 else {
            throw DataError(.format, file: name, "images must be [N, C, H, W], got shape \(images.shape)")
        }
        guard images.shape[0] == labels.count else {
            throw DataError(.format, file: name, "\(images.shape[0]) images but \(labels.count) labels")
        }
        if let bad = labels.firstIndex(where: { $0 < 0 || $0 >= classNames.count }) {
            throw DataError(.format, file: name, "label \(labels[bad]) at index \(bad) is outside 0..<\(classNames.count) (\(classNames.count) classes)")
        }
        if let n = normalization, n.mean.count != images.shape[1] {
            throw DataError(.format, file: name, "normalisation has \(n.mean.count) channels, images have \(images.shape[1])")
        }
        self.name = name; self.images = images; self.labels = labels
        self.classNames = classNames; self.normalization = normalization
    }

    /// From unsigned bytes laid out [N, C, H, W]; pixels become byte / 255.
    public init(name: String, bytes: [UInt8], shape: [Int], labels: [Int], classNames: [String]) throws {
        guard shape.count == 4, shape.reduce(1, *) == bytes.count else {
            throw DataError(.format, file: name, "\(bytes.count) pixel bytes do not fill shape \(shape)")
        }
        var scalars = [Float](repeating: 0, count: bytes.count)
        scalars.withUnsafeMutableBufferPointer { out in
            bytes.withUnsafeBufferPointer { b in
                for i in 0..<b.count { out[i] = Float(b[i]) / 255 }   // divide, as torchvision's ToTensor: bit-identical
            }
        }
        try self.init(name: name, images: Tensor(shape: shape, scalars: scalars), labels: labels, classNames: classNames)
    }

    // MARK: Shape

    public var count: Int { labels.count }
    public var channels: Int { images.shape[1] }
    public var height: Int { images.shape[2] }
    public var width: Int { images.shape[3] }
    public var imageSize: Int { channels * height * width }

    /// Number of images of each class, indexed by label.
    public var classCounts: [Int] {
        var c = [Int](repeating: 0, count: classNames.count)
        for l in labels { c[l] += 1 }
        return c
    }

    // MARK: Gathering

    /// The images at `indices`, [indices.count, C, H, W], in [0, 1] (no normalisation).
    public func images(at indices: [Int]) -> Tensor {
        let size = imageSize
        var out = [Float](repeating: 0, count: indices.count * size)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    precondition(i >= 0 && i < count, "Dataset \(name): index \(i) out of 0..<\(count)")
                    UnsafeMutableRawPointer(dst.baseAddress! + k * size)
                        .copyMemory(from: src.baseAddress! + i * size, byteCount: size * MemoryLayout<Float>.size)
                }
            }
        }
        return Tensor(shape: [indices.count, channels, height, width], scalars: out)
    }

    /// Images (normalised when `normalization` is set) and labels at `indices`, no augmentation.
    public func batch(_ indices: [Int]) -> Batch {
        var x = images(at: indices)
        normalization?.apply(to: &x)
        return Batch(images: x, labels: indices.map { labels[$0] }, indices: indices)
    }

    // MARK: Subsets

    /// The images at `indices`, in that order.
    public func subset(_ indices: [Int]) -> Dataset {
        // Cannot throw: labels, class names and normalisation come from a valid data set.
        try! Dataset(name: name, images: images(at: indices), labels: indices.map { labels[$0] },
                     classNames: classNames, normalization: normalization)
    }

    /// The first `n` images.
    public func prefix(_ n: Int) -> Dataset { subset(Array(0..<min(n, count))) }

    /// `perClass` images of each class in `classes` (default: all), kept in data-set order.
    /// Without a seed the first ones of each class are taken; with a seed, the ones that come
    /// first in `SeededRNG(seed: seed).permutation(count)`. Throws when a class has too few.
    public func take(perClass: Int, classes: [Int]? = nil, seed: UInt64? = nil) throws -> Dataset {
        let wanted = classes ?? Array(0..<classNames.count)
        if let bad = wanted.first(where: { $0 < 0 || $0 >= classNames.count }) {
            throw DataError(.format, file: name, "take(perClass:): class \(bad) is outside 0..<\(classNames.count)")
        }
        var order = Array(0..<count)
        if let seed { var rng = SeededRNG(seed: seed); order = rng.permutation(count) }
        var taken = [Int](repeating: 0, count: classNames.count)
        var isWanted = [Bool](repeating: false, count: classNames.count)
        for c in wanted { isWanted[c] = true }
        var picked: [Int] = []
        for i in order where isWanted[labels[i]] && taken[labels[i]] < perClass {
            taken[labels[i]] += 1; picked.append(i)
        }
        if let short = wanted.first(where: { taken[$0] < perClass }) {
            throw DataError(.format, file: name, "take(perClass: \(perClass)): class \(short) (\(classNames[short])) has only \(taken[short]) images")
        }
        return subset(picked.sorted())
    }

    /// Keeps only images of `classes` and relabels classes[i] → i (e.g. [4, 7] → 0, 1).
    public func relabeled(classes: [Int]) throws -> Dataset {
        var map = [Int](repeating: -1, count: classNames.count)
        for (i, c) in classes.enumerated() {
            guard c >= 0 && c < classNames.count && map[c] == -1 else {
                throw DataError(.format, file: name, "relabeled(classes: \(classes)): bad or repeated class \(c)")
            }
            map[c] = i
        }
        let keep = (0..<count).filter { map[labels[$0]] >= 0 }
        return try Dataset(name: name, images: images(at: keep), labels: keep.map { map[labels[$0]] },
                           classNames: classes.map { classNames[$0] }, normalization: normalization)
    }
}

/// One mini-batch: images [B, C, H, W] (augmented and normalised as configured), labels, and
/// the data-set indices they came from.
public struct Batch: Sendable, Equatable {
    public var images: Tensor
    public var labels: [Int]
    public var indices: [Int]
}
