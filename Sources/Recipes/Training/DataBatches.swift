// MARK: - The data pipeline as a batch source
//
// The data pipeline's `BatchIterator` (seeded order, CIFAR augmentation, channel normalisation)
// feeds the Trainer directly. For evaluation, build it with `shuffle: false` and no augmentation.
import SIMDCore

extension BatchIterator: BatchSource {
    public func forEachBatch(epoch: Int, _ body: (Tensor, [Int]) throws -> Void) throws {
        for batch in self.epoch(epoch) { try body(batch.images, batch.labels) }
    }
}

extension LabelledImages {
    /// A data set's images and labels (normalisation, if any, is NOT applied: use a BatchIterator
    /// to train with it).
    public init(_ dataset: Dataset) throws {
        try self.init(images: dataset.images, labels: dataset.labels)
    }
}
