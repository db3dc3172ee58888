// MARK: - Trainer
//
// Mini-batch training of a GatedNetwork: shuffle (seeded) -> forward in training mode (BatchNorm
// uses batch statistics and updates its running ones) -> loss -> Tape.backward -> optimizer step
// with the scheduled learning rate; after each epoch, evaluation in eval mode (running statistics,
// no tape recording). Deterministic: the same seed gives the same batch order and the same
// initialisation, and every kernel is thread-count independent, so accuracy is reproducible to the bit.
import Foundation
import SIMDCore

/// A labelled image set: images [N, ...] as Float and one class index per image.
public struct LabelledImages {
    public var images: Tensor
    public var labels: [Int]

    public init(images: Tensor, labels: [Int]) throws {
        guard images.rank >= 2, images.shape[0] == labels.count else {
            throw EngineError(op: "LabelledImages", "images \(images.shape) need one label each; got \(labels.count) labels")
        }
        self.images = images; self.labels = labels
    }

    public var count: Int { labels.count }

    /// Examples `indices` in that order, as a batch.
    public func batch(_ indices: ArraySlice<Int>) -> (images: Tensor, labels: [Int]) {
        let per = images.count / max(images.shape[0], 1)
        var out = [Float](repeating: 0, count: indices.count * per)
        images.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    UnsafeMutableRawPointer(dst.baseAddress! + k * per)
                        .copyMemory(from: src.baseAddress! + i * per, byteCount: per * MemoryLayout<Float>.stride)
                }
            }
        }
        return (Tensor(shape: [indices.count] + images.shape.dropFirst(), scalars: out), indices.map { labels[$0] })
    }
}

/// Where a training run gets its mini-batches: epoch by epoch, in a deterministic order.
/// `ShuffledBatches` serves a `LabelledImages`; the data pipeline's iterator (with augmentation and
/// normalisation) conforms with a few lines (`batchCount`, `forEachBatch`).
public protocol BatchSource {
    /// Batches per epoch.
    var batchCount: Int { get }
    /// Calls `body(images, labels)` for every batch of `epoch`, in order.
    func forEachBatch(epoch: Int, _ body: (_ images: Tensor, _ labels: [Int]) throws -> Void) throws
}

/// Mini-batches of a `LabelledImages`: epoch e visits `SeededRNG(seed &+ e).permutation(N)` (the same
/// convention as the data pipeline's BatchIterator), or 0..<N in order when `shuffle` is false. The
/// last batch may be smaller.
public struct ShuffledBatches: BatchSource {
    public var data: LabelledImages
    public var batchSize: Int
    public var seed: UInt64
    public var shuffle: Bool

    public init(_ data: LabelledImages, batchSize: Int, seed: UInt64 = 0, shuffle: Bool = true) throws {
        guard batchSize > 0 else { throw EngineError(op: "ShuffledBatches", "batch size must be positive, got \(batchSize)") }
        self.data = data; self.batchSize = batchSize; self.seed = seed; self.shuffle = shuffle
    }

    public var batchCount: Int { (data.count + batchSize - 1) / batchSize }

    public func forEachBatch(epoch: Int, _ body: (Tensor, [Int]) throws -> Void) throws {
        var rng = SeededRNG(seed: seed &+ UInt64(truncatingIfNeeded: epoch))
        let order = shuffle ? rng.permutation(data.count) : Array(0..<data.count)
        for start in stride(from: 0, to: data.count, by: batchSize) {
            let (x, y) = data.batch(order[start..<min(start + batchSize, data.count)])
            try body(x, y)
        }
    }
}

/// The training objective.
public enum TrainingLoss: Equatable, Sendable {
    /// Softmax cross-entropy, mean over the batch.
    case crossEntropy
    /// Mean squared error against one-hot targets (mean over batch x classes, like nn.MSELoss).
    case squaredOneHot
    /// Binary task with ONE output and targets ±1 (label 1 -> +1, label 0 -> -1), prediction
    /// sign(output) (NeurIPS 2020 Figure 2).
    case squaredSigned
}

/// Settings of a training run.
public struct TrainingConfiguration {
    public var epochs: Int
    public var batchSize: Int
    public var loss: TrainingLoss
    /// Seeds the batch order when training from `LabelledImages` (see `ShuffledBatches`).
    public var seed: UInt64
    public var shuffle: Bool
    public var evaluationBatchSize: Int
    /// If set, the final parameters (and BatchNorm statistics) are written here as safetensors
    /// after every epoch.
    public var checkpoint: URL?

    public init(epochs: Int, batchSize: Int, loss: TrainingLoss = .crossEntropy, seed: UInt64 = 0,
                shuffle: Bool = true, evaluationBatchSize: Int = 256, checkpoint: URL? = nil) {
        self.epochs = epochs; self.batchSize = batchSize; self.loss = loss; self.seed = seed
        self.shuffle = shuffle; self.evaluationBatchSize = evaluationBatchSize; self.checkpoint = checkpoint
    }
}

/// What the progress callback receives after every optimizer step.
public struct TrainingProgress {
    public let epoch: Int
    public let batch: Int
    public let batchesPerEpoch: Int
    public let iteration: Int
    public let loss: Float
    public let learningRate: Float
}

/// One epoch's measurements (accuracy in percent).
public struct EpochRecord: Equatable {
    public let epoch: Int
    public let trainLoss: Double
    public let trainAccuracy: Double
    public let testLoss: Double
    public let testAccuracy: Double
    public let learningRate: Float
}

/// The outcome of `Trainer.fit`.
public struct TrainingReport: Equatable {
    public var epochs: [EpochRecord] = []
    public var iterations = 0
    public var bestTestAccuracy: Double { epochs.map(\.testAccuracy).max() ?? 0 }
    public var finalTestAccuracy: Double { epochs.last?.testAccuracy ?? 0 }
}

// MARK: - What a trainer trains

/// A model the `Trainer` can fit: named parameters, BatchNorm running statistics, and a forward
/// pass that puts the parameters on the tape (frozen ones without a gradient).
public protocol TrainableModel {
    var parameters: [String: Tensor] { get set }
    /// BatchNorm running statistics by layer name (empty when the model has none).
    var statistics: [String: BatchNormStatistics] { get }
    /// Strings stored in checkpoints to say what was trained.
    var checkpointMetadata: [String: String] { get }
    /// Logits and the tape variables of every parameter, by name.
    func trainingForward(on tape: Tape, input: Tensor, training: Bool) throws -> (logits: Variable, parameters: [String: Variable])
}

extension GatedNetwork: TrainableModel {
    public var checkpointMetadata: [String: String] {
        ["architecture": "\(architecture)", "configuration": "\(configuration)"]
    }
    public func trainingForward(on tape: Tape, input: Tensor, training: Bool) throws -> (logits: Variable, parameters: [String: Variable]) {
        let out = try forward(on: tape, input: input, training: training)
        return (out.logits, out.parameters)
    }
}

/// Trains a `TrainableModel` (a `GatedNetwork`, the MNIST CNN, …) with an optimizer and a learning-rate schedule.
///
/// ```swift
/// var trainer = Trainer(optimizer: SGD(momentum: 0.9), schedule: PiecewiseConstantSchedule.paperBTableII,
///                       configuration: TrainingConfiguration(epochs: 32, batchSize: 128))
/// let report = try trainer.fit(&net, train: train, test: test) { p in print(p.epoch, p.batch, p.loss) }
/// ```
public struct Trainer<O: Optimizer> {
    public var optimizer: O
    public var schedule: any LearningRateSchedule
    public var configuration: TrainingConfiguration
    /// Optimizer steps taken so far (drives the schedule).
    public private(set) var iteration = 0
    /// Called after each epoch's evaluation with the record and the model (e.g. to measure the NPK).
    public var onEpochEnd: ((EpochRecord, any TrainableModel) throws -> Void)?

    public init(optimizer: O, schedule: any LearningRateSchedule, configuration: TrainingConfiguration) {
        self.optimizer = optimizer; self.schedule = schedule; self.configuration = configuration
    }

    /// Trains on `train` (shuffled with `configuration.seed`, batches of `configuration.batchSize`),
    /// evaluating on `test` after each epoch.
    public mutating func fit<M: TrainableModel>(_ model: inout M, train: LabelledImages, test: LabelledImages,
                             progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingReport {
        guard train.count > 0 else { throw EngineError(op: "Trainer.fit", "the training set is empty") }
        return try fit(&model,
                       train: try ShuffledBatches(train, batchSize: configuration.batchSize, seed: configuration.seed, shuffle: configuration.shuffle),
                       test: try ShuffledBatches(test, batchSize: max(1, configuration.evaluationBatchSize), shuffle: false),
                       progress: progress)
    }

    /// Trains for `configuration.epochs` epochs over `train`'s batches, evaluating on `test` after each.
    public mutating func fit<M: TrainableModel>(_ model: inout M, train: any BatchSource, test: any BatchSource,
                             progress: ((TrainingProgress) -> Void)? = nil) throws -> TrainingReport {
        var report = TrainingReport()
        let batches = train.batchCount
        for epoch in 0..<max(configuration.epochs, 0) {
            var lossSum = 0.0, correct = 0, seen = 0, b = 0
            var lr: Float = 0
            try train.forEachBatch(epoch: epoch) { x, y in
                lr = schedule.learningRate(atIteration: iteration)
                let (loss, right) = try step(&model, x, y, learningRate: lr)
                iteration += 1
                lossSum += Double(loss) * Double(y.count); correct += right; seen += y.count
                progress?(TrainingProgress(epoch: epoch, batch: b, batchesPerEpoch: batches, iteration: iteration, loss: loss, learningRate: lr))
                b += 1
                try Interruption.check()        // SIGINT/SIGTERM stop between iterations
            }
            let (testLoss, testAccuracy) = try evaluate(model, test)
            report.epochs.append(EpochRecord(epoch: epoch, trainLoss: lossSum / Double(max(seen, 1)),
                                             trainAccuracy: 100 * Double(correct) / Double(max(seen, 1)),
                                             testLoss: testLoss, testAccuracy: testAccuracy, learningRate: lr))
            report.iterations = iteration
            try onEpochEnd?(report.epochs.last!, model)
            if let url = configuration.checkpoint {
                try Trainer.saveCheckpoint(model, to: url, metadata: ["epoch": "\(epoch)", "iteration": "\(iteration)",
                                                                       "optimizer": optimizer.name,
                                                                       "test_accuracy": String(format: "%.4f", testAccuracy)])
            }
        }
        return report
    }

    /// One optimizer step on a batch; returns the batch loss and the number of correct predictions.
    public mutating func step<M: TrainableModel>(_ model: inout M, _ x: Tensor, _ y: [Int], learningRate: Float) throws -> (Float, Int) {
        // The weights are constant during one step: a per-step cache packs each conv weight's GEMM
        // panels once (forward and input gradient) instead of once per image (same bits).
        let tape = Tape(weightCache: PackedWeightCache())
        let out = try model.trainingForward(on: tape, input: x, training: true)
        let loss = try Trainer.loss(tape, out.logits, y, configuration.loss)
        let grads = try tape.backward(from: loss)
        var named: [String: Tensor] = [:]
        for (name, v) in out.parameters where tape.needsGrad(v) {
            if let g = grads[v] { named[name] = g }
        }
        try optimizer.step(&model.parameters, gradients: named, learningRate: learningRate)
        let value = tape.value(loss).scalars[0]
        guard value.isFinite else {
            throw EngineError(op: "Trainer.step", "loss became \(value) at iteration \(iteration) (learning rate \(learningRate))")
        }
        return (value, Trainer.correctCount(tape.value(out.logits), y, configuration.loss))
    }

    /// Mean loss and accuracy (%) in eval mode (BatchNorm running statistics, no recording).
    public func evaluate<M: TrainableModel>(_ model: M, _ data: LabelledImages) throws -> (loss: Double, accuracy: Double) {
        try evaluate(model, try ShuffledBatches(data, batchSize: max(1, configuration.evaluationBatchSize), shuffle: false))
    }

    /// Mean loss and accuracy (%) over the batches of epoch 0 of `data`, in eval mode.
    public func evaluate<M: TrainableModel>(_ model: M, _ data: any BatchSource) throws -> (loss: Double, accuracy: Double) {
        var lossSum = 0.0, correct = 0, count = 0
        try data.forEachBatch(epoch: 0) { x, y in
            let tape = Tape(recording: false)
            let out = try model.trainingForward(on: tape, input: x, training: false)
            let loss = try Trainer.loss(tape, out.logits, y, configuration.loss)
            lossSum += Double(tape.value(loss).scalars[0]) * Double(y.count)
            correct += Trainer.correctCount(tape.value(out.logits), y, configuration.loss)
            count += y.count
        }
        guard count > 0 else { return (0, 0) }
        return (lossSum / Double(count), 100 * Double(correct) / Double(count))
    }

    static func loss(_ tape: Tape, _ logits: Variable, _ y: [Int], _ kind: TrainingLoss) throws -> Variable {
        let s = tape.shape(logits)
        switch kind {
        case .crossEntropy:
            return try tape.crossEntropy(logits: logits, labels: y)
        case .squaredOneHot:
            var t = Tensor(zeros: s)
            for (i, c) in y.enumerated() {
                guard c >= 0 && c < s[1] else { throw EngineError(op: "Trainer.loss", "label \(c) out of range for \(s[1]) outputs") }
                t.scalars[i * s[1] + c] = 1
            }
            return try tape.mse(logits, target: t)
        case .squaredSigned:
            guard s.count == 2, s[1] == 1 else {
                throw EngineError(op: "Trainer.loss", "squaredSigned needs one output per example; logits have shape \(s)")
            }
            return try tape.mse(logits, target: Tensor(shape: s, scalars: y.map { $0 == 1 ? 1 : -1 }))
        }
    }

    static func correctCount(_ logits: Tensor, _ y: [Int], _ kind: TrainingLoss) -> Int {
        let k = logits.shape[1]
        var right = 0
        for (i, c) in y.enumerated() {
            if kind == .squaredSigned {
                if (logits.scalars[i] > 0 ? 1 : 0) == c { right += 1 }
                continue
            }
            var best = 0
            for j in 1..<max(k, 1) where logits.scalars[i * k + j] > logits.scalars[i * k + best] { best = j }
            if best == c { right += 1 }
        }
        return right
    }

    /// Writes parameters and BatchNorm running statistics ("<layer>.running_mean" / ".running_var").
    public static func saveCheckpoint<M: TrainableModel>(_ model: M, to url: URL, metadata: [String: String] = [:]) throws {
        var all = model.parameters
        for (name, s) in model.statistics {
            all[name + ".running_mean"] = s.mean
            all[name + ".running_var"] = s.variance
        }
        let meta = metadata.merging(model.checkpointMetadata) { a, _ in a }
        try SafeTensors.write(all, metadata: meta, to: url)
    }
}

extension GatedNetwork {
    /// Restores a network saved by `Trainer.saveCheckpoint` for the same architecture/configuration.
    public static func load(architecture: GatedArchitecture, configuration: GatingConfiguration, from url: URL) throws -> GatedNetwork {
        let st = try SafeTensors(contentsOf: url)
        let template = try GatedNetwork(architecture: architecture, configuration: configuration, seed: 0)
        var params: [String: Tensor] = [:]
        for (name, t) in template.parameters {
            guard let loaded = st.tensors[name] else { throw WeightsError(file: url.path, "checkpoint lacks parameter '\(name)'") }
            guard loaded.shape == t.shape else { throw WeightsError(file: url.path, "'\(name)' has shape \(loaded.shape), expected \(t.shape)") }
            params[name] = loaded
        }
        var stats: [String: BatchNormStatistics] = [:]
        for name in template.statistics.keys {
            guard let m = st.tensors[name + ".running_mean"], let v = st.tensors[name + ".running_var"] else {
                throw WeightsError(file: url.path, "checkpoint lacks BatchNorm statistics of '\(name)'")
            }
            stats[name] = .make(mean: m, variance: v)
        }
        return try GatedNetwork(architecture: architecture, configuration: configuration, parameters: params, statistics: stats)
    }
}
