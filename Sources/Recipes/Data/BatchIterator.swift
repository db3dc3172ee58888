// MARK: - BatchIterator
//
// Deterministic mini-batches. Epoch e uses one generator, SeededRNG(seed: seed &+ e):
//   1. order = rng.permutation(N)         (skipped, order = 0..<N, when shuffle is off)
//   2. for each batch in order, for each image in the batch, when augmentation is on:
//        top = rng.below(2p + 1), left = rng.below(2p + 1)   (crop offsets into the padded image)
//        flip = rng.below(2) == 1                            (horizontal flip with p = 1/2)
// So a batch depends only on (seed, epoch, its position), never on threads or the clock.
// Batches must be consumed in order within an epoch (the generator is shared along the epoch).
import Foundation
import SIMDCore

/// Random crop with zero padding plus horizontal flip (the standard CIFAR augmentation:
/// torchvision `RandomCrop(32, padding: 4)` then `RandomHorizontalFlip()`).
public struct Augmentation: Equatable, Sendable {
    /// Zero padding on each side before cropping back to the original size (0 = no crop).
    public var cropPadding: Int
    /// Flip left-right with probability 1/2.
    public var horizontalFlip: Bool

    public init(cropPadding: Int, horizontalFlip: Bool) {
        precondition(cropPadding >= 0, "Augmentation: negative padding \(cropPadding)")
        self.cropPadding = cropPadding; self.horizontalFlip = horizontalFlip
    }

    public static let cifar = Augmentation(cropPadding: 4, horizontalFlip: true)

    // image [C, H, W] → out [C, H, W]:
    //   out[c, y, x] = padded[c, y + top, x' + left], x' = flip ? W-1-x : x,
    //   padded[c, i, j] = image[c, i - p, j - p] inside, 0 outside.
    /// Applies one draw of the augmentation to a single image (`src`, `dst` point at C*H*W floats).
    func apply(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
               channels: Int, height: Int, width: Int, rng: inout SeededRNG) {
        let p = cropPadding
        let top = p > 0 ? rng.below(2 * p + 1) : p
        let left = p > 0 ? rng.below(2 * p + 1) : p
        let flip = horizontalFlip ? rng.below(2) == 1 : false
        for c in 0..<channels {
            let plane = c * height * width
            for y in 0..<height {
                let sy = y + top - p
                let row = dst + plane + y * width
                guard sy >= 0 && sy < height else { row.update(repeating: 0, count: width); continue }
                let srow = src + plane + sy * width
                for x in 0..<width {
                    let sx = (flip ? width - 1 - x : x) + left - p
                    row[x] = (sx >= 0 && sx < width) ? srow[sx] : 0
                }
            }
        }
    }
}

/// Deterministic, seeded mini-batches over a data set.
///
/// ```swift
/// let loader = try BatchIterator(dataset: train, batchSize: 128, seed: 7, augmentation: .cifar)
/// for epoch in 0..<10 {
///     for batch in loader.epoch(epoch) { /* batch.images [128, 3, 32, 32], batch.labels */ }
/// }
/// ```
public struct BatchIterator: Sendable {
    public let dataset: Dataset
    public let batchSize: Int
    public let seed: UInt64
    public let shuffle: Bool
    public let dropLast: Bool
    public let augmentation: Augmentation?

    public init(dataset: Dataset, batchSize: Int, seed: UInt64, shuffle: Bool = true,
                dropLast: Bool = false, augmentation: Augmentation? = nil) throws {
        guard batchSize > 0 else {
            throw DataError(.format, file: dataset.name, "BatchIterator: batch size must be positive, got \(batchSize)")
        }
        if let a = augmentation, a.cropPadding > 0, dataset.height <= 0 || dataset.width <= 0 {
            throw DataError(.format, file: dataset.name, "BatchIterator: cannot crop empty images")
        }
        self.dataset = dataset; self.batchSize = batchSize; self.seed = seed
        self.shuffle = shuffle; self.dropLast = dropLast; self.augmentation = augmentation
    }

    /// Batches per epoch.
    public var batchCount: Int {
        dropLast ? dataset.count / batchSize : (dataset.count + batchSize - 1) / batchSize
    }

    /// The batches of epoch `epoch`, in order.
    public func epoch(_ epoch: Int) -> Epoch { Epoch(loader: self, epoch: epoch) }

    /// One pass over the data. Iterating it twice gives the same batches.
    public struct Epoch: Sequence, Sendable {
        let loader: BatchIterator
        public let epoch: Int

        public func makeIterator() -> Iterator {
            var rng = SeededRNG(seed: loader.seed &+ UInt64(truncatingIfNeeded: epoch))
            let n = loader.dataset.count
            let order = loader.shuffle ? rng.permutation(n) : Array(0..<n)
            return Iterator(loader: loader, order: order, rng: rng)
        }

        public var underestimatedCount: Int { loader.batchCount }
    }

    public struct Iterator: IteratorProtocol {
        let loader: BatchIterator
        let order: [Int]
        var rng: SeededRNG
        var position = 0

        public mutating func next() -> Batch? {
            let n = order.count, b = loader.batchSize
            guard position < n else { return nil }
            let end = min(position + b, n)
            if loader.dropLast && end - position < b { return nil }
            let indices = Array(order[position..<end])
            position = end
            return loader.makeBatch(indices, rng: &rng)
        }
    }

    /// Gathers, augments (drawing from `rng` image by image) and normalises one batch.
    func makeBatch(_ indices: [Int], rng: inout SeededRNG) -> Batch {
        let d = dataset
        var x = d.images(at: indices)
        if let aug = augmentation, aug.cropPadding > 0 || aug.horizontalFlip {
            let size = d.imageSize
            let src = x
            src.withUnsafeBufferPointer { s in
                x.withUnsafeMutableBufferPointer { o in
                    for k in 0..<indices.count {
                        aug.apply(s.baseAddress! + k * size, o.baseAddress! + k * size,
                                  channels: d.channels, height: d.height, width: d.width, rng: &rng)
                    }
                }
            }
        }
        d.normalization?.apply(to: &x)
        return Batch(images: x, labels: indices.map { d.labels[$0] }, indices: indices)
    }
}
