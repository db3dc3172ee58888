// MARK: - train: fit a model, cached by the content hash of everything it depends on
//
//   - step: train
//     id: cnn
//     with:
//       model: mnist_cnn                 # or a gated network of paper B:
//       # model: {architecture: c4gap, width: 128, variant: dlgn, value_input: ones,
//       #         gate: soft, beta: 10, permutation: [1, 0, 3, 2]}
//       train: train_set                 # load_data step ids
//       test: test_set
//       epochs: 4
//       batch_size: 32
//       optimizer: adam                  # adam | sgd | rmsprop
//       learning_rate: 0.001             # or schedule: paper_b_table2 (SGD, Table II)
//       momentum: 0.9                    # sgd only
//       weight_decay: 0
//       loss: cross_entropy              # cross_entropy | squared
//       runs: 1                          # >1: seeds seed, seed+1, …; mean ± std recorded
//       seed_offset: 0                   # added to the seed (an independent second model)
//
// Records <id>.test_accuracy (final, %, mean over runs), <id>.test_accuracy_std,
// <id>.best_test_accuracy, <id>.train_accuracy. The first run's model is the step's output.
// Checkpoints and per-epoch records live in the step's cache directory: a rerun with nothing
// changed loads them instead of training (`--force` retrains).
import Foundation
import SIMDCore

/// What a `train` step builds: the offline CNN or one of paper B's gated networks.
enum ModelSpec: Equatable {
    case smallCNN
    case gated(architecture: String, width: Int, depth: Int, configuration: GatingConfiguration)

    static let architectures = ["fc", "c1gap", "c4gap", "vgg16", "resnet110"]
    static let keys = ["architecture", "width", "depth", "variant", "value_input", "gate", "beta", "permutation"]

    init(_ node: YAMLNode) throws {
        if case .scalar = node.kind {
            let name = try node.string
            guard name == SmallCNN.name else {
                throw node.error("unknown model '\(name)'; write `mnist_cnn` or a mapping {architecture: \(ModelSpec.architectures.joined(separator: "|")), …}")
            }
            self = .smallCNN
            return
        }
        try node.checkKeys(allowed: ModelSpec.keys)
        let a = try node.node(at: "architecture")
        let arch = try a.string
        guard ModelSpec.architectures.contains(arch) else {
            var msg = "unknown architecture '\(arch)'"
            if let n = nearestName(to: arch, candidates: ModelSpec.architectures) { msg += "; did you mean '\(n)'?" }
            throw a.error(msg + " (architectures: \(ModelSpec.architectures.joined(separator: ", ")))")
        }
        let vnode = try node.optional("variant")
        let variantName = try vnode?.string ?? "dnn"
        guard let variant = GatedVariant(rawValue: variantName) else {
            throw (vnode ?? node).error("variant must be one of \(GatedVariant.allCases.map(\.rawValue).joined(separator: ", ")), got '\(variantName)'")
        }
        let vi = try node.string(at: "value_input", default: variant == .dgn ? "same" : "ones")
        guard let valueInput = ValueInput(rawValue: vi) else { throw try node.node(at: "value_input").error("value_input must be same or ones") }
        let gateName = try node.string(at: "gate", default: "soft")
        let gate: GateKind
        switch gateName {
        case "hard": gate = .hard
        case "soft": gate = .soft(beta: Float(try node.double(at: "beta", default: 10)))
        default: throw try node.node(at: "gate").error("gate must be hard or soft")
        }
        let perm = try node.optional("permutation")?.array.map { try $0.int }
        let config = variant == .dnn ? GatingConfiguration.dnn
            : GatingConfiguration(variant: variant, gate: gate, valueInput: valueInput, permutation: perm)
        self = .gated(architecture: arch, width: try node.int(at: "width", default: 128),
                      depth: try node.int(at: "depth", default: 5), configuration: config)
    }

    func architecture(for d: Dataset) throws -> GatedArchitecture {
        guard case .gated(let arch, let width, let depth, _) = self else { fatalError("not a gated model") }
        let classes = max(d.classNames.count, (d.labels.max() ?? 0) + 1)
        switch arch {
        case "fc": return .fc(inputs: d.imageSize, width: width, depth: depth, classes: classes)
        case "c1gap": return .c1gap(inputChannels: d.channels, imageSize: d.height, width: width, classes: classes)
        case "c4gap": return .c4gap(inputChannels: d.channels, imageSize: d.height, width: width, classes: classes)
        case "vgg16": return .vgg16(inputChannels: d.channels, imageSize: d.height, classes: classes, widthDivisor: max(1, 64 / max(width, 1)))
        default: return .cifarResNet(inputChannels: d.channels, imageSize: d.height, blocksPerStage: 18, classes: classes, baseWidth: max(width, 1))
        }
    }
}

struct TrainStep: RecipeStep {
    static let kind = "train"
    static let summary = "Train a model (mnist_cnn, or a DNN/DGN/DLGN/DLGN-SF of paper B); cached by content hash."
    static let keys = ["model", "train", "test", "epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                       "momentum", "weight_decay", "loss", "runs", "seed_offset"]
    static let cached = true

    let id: String
    let spec: ModelSpec
    let train: String, test: String
    let epochs: Int, batchSize: Int, runs: Int
    let optimizer: String
    let learningRate: Float
    let schedule: String
    let momentum: Float, weightDecay: Float
    let loss: TrainingLoss
    /// Added to the run's seed: two train steps in one recipe get independent initialisations.
    let seedOffset: UInt64
    var dependencies: [String] { [train, test] }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        spec = try ModelSpec(try config.node(at: "model"))
        train = try config.string(at: "train")
        test = try config.string(at: "test")
        epochs = try config.int(at: "epochs")
        batchSize = try config.int(at: "batch_size", default: 32)
        runs = try config.int(at: "runs", default: 1)
        guard epochs >= 1, batchSize >= 1, runs >= 1 else { throw config.error("epochs, batch_size and runs must be at least 1") }
        let o = try config.optional("optimizer")
        optimizer = try o?.string ?? "adam"
        guard ["adam", "sgd", "rmsprop"].contains(optimizer) else { throw o!.error("optimizer must be adam, sgd or rmsprop, got '\(optimizer)'") }
        learningRate = Float(try config.double(at: "learning_rate", default: optimizer == "sgd" ? 0.01 : 0.001))
        schedule = try config.string(at: "schedule", default: "constant")
        guard ["constant", "paper_b_table2"].contains(schedule) else { throw try config.node(at: "schedule").error("schedule must be constant or paper_b_table2") }
        momentum = Float(try config.double(at: "momentum", default: optimizer == "sgd" ? 0.9 : 0))
        weightDecay = Float(try config.double(at: "weight_decay", default: 0))
        seedOffset = UInt64(try config.int(at: "seed_offset", default: 0))
        let l = try config.string(at: "loss", default: "cross_entropy")
        switch l {
        case "cross_entropy": loss = .crossEntropy
        case "squared": loss = .squaredOneHot
        default: throw try config.node(at: "loss").error("loss must be cross_entropy or squared")
        }
    }

    func run(_ ctx: RunContext) throws {
        let trainSet = try ctx.output(train, as: Dataset.self, for: "train")
        let testSet = try ctx.output(test, as: Dataset.self, for: "test")
        let cache = ctx.cacheDirectory!
        var finals: [Double] = [], bests: [Double] = [], trains: [Double] = []
        var firstRecords: [EpochRecord] = []
        var firstModel: Any?
        for r in 0..<runs {
            let seed = ctx.seed &+ seedOffset &+ UInt64(r)
            let ckpt = cache.appendingPathComponent("run\(r).safetensors")
            let recordsURL = cache.appendingPathComponent("run\(r).json")
            let (model, records): (Any, [EpochRecord])
            if ctx.cacheHit, FileManager.default.fileExists(atPath: ckpt.path), let recs = try? loadRecords(recordsURL) {
                model = try loadModel(ckpt, trainSet)
                records = recs
            } else {
                (model, records) = try fit(seed: seed, run: r, trainSet, testSet, ctx)
                try saveModel(model, to: ckpt)
                try AtomicFile.write(try JSONSerialization.data(withJSONObject: records.map(encode), options: [.prettyPrinted]), to: recordsURL)
            }
            if r == 0 { firstModel = model; firstRecords = records }
            finals.append(records.last!.testAccuracy)
            bests.append(records.map(\.testAccuracy).max()!)
            trains.append(records.last!.trainAccuracy)
        }
        ctx.store(firstModel!, as: id)
        let mean = finals.reduce(0, +) / Double(runs)
        let std = runs > 1 ? (finals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(runs - 1)).squareRoot() : 0
        ctx.record("\(id).test_accuracy", mean)
        ctx.record("\(id).test_accuracy_std", std)
        ctx.record("\(id).best_test_accuracy", bests.reduce(0, +) / Double(runs))
        ctx.record("\(id).train_accuracy", trains.reduce(0, +) / Double(runs))

        let rows: [[TableValue]] = firstRecords.map {
            [.integer($0.epoch + 1), .fixed($0.trainLoss, decimals: 4), .fixed($0.trainAccuracy, decimals: 2),
             .fixed($0.testLoss, decimals: 4), .fixed($0.testAccuracy, decimals: 2), .text(String(format: "%g", Double($0.learningRate)))]
        }
        ctx.add(.table(Table(headers: ["epoch", "train loss", "train acc %", "test loss", "test acc %", "lr"], rows: rows),
                       caption: "\(describe(trainSet)) — \(optimizer), batch \(batchSize)\(ctx.cacheHit ? " (loaded from the step cache)" : "")\(runs > 1 ? "; run 1 of \(runs) shown, final test accuracy \(String(format: "%.2f ± %.2f", mean, std))" : "").",
                       csvFile: "\(id)-epochs.csv"))
        let xs = firstRecords.map { Double($0.epoch + 1) }
        var plot = LinePlot(title: "\(id): accuracy per epoch", xLabel: "epoch", yLabel: "accuracy (%)",
                            series: [LinePlot.Series(name: "train", x: xs, y: firstRecords.map(\.trainAccuracy), markers: true),
                                     LinePlot.Series(name: "test", x: xs, y: firstRecords.map(\.testAccuracy), markers: true)])
        plot.legendPosition = .bottomRight
        ctx.add(.plot(plot, file: "\(id)-accuracy.svg", caption: "Training curves of \(id)."))
    }

    func describe(_ d: Dataset) -> String {
        switch spec {
        case .smallCNN: return "\(SmallCNN.name) on \(d.name)"
        case .gated(let a, let w, _, let c): return "\(c) \(a) (width \(w)) on \(d.name)"
        }
    }

    // MARK: Fitting

    /// The images the model sees: [-1, 1] for the CNN (paper A's convention, shared with explain/ascend),
    /// per-channel standardised with training-set statistics for paper B's networks.
    func inputs(_ d: Dataset, stats: Dataset) -> Tensor {
        var x = d.images
        switch spec {
        case .smallCNN:
            for i in 0..<x.count { x.scalars[i] = 2 * x.scalars[i] - 1 }
        case .gated:
            ChannelNormalization.fit(stats).apply(to: &x)
        }
        return x
    }

    func fit(seed: UInt64, run: Int, _ trainSet: Dataset, _ testSet: Dataset, _ ctx: RunContext) throws -> (Any, [EpochRecord]) {
        let trainData = try LabelledImages(images: inputs(trainSet, stats: trainSet), labels: trainSet.labels)
        let testData = try LabelledImages(images: inputs(testSet, stats: trainSet), labels: testSet.labels)
        let config = TrainingConfiguration(epochs: epochs, batchSize: batchSize, loss: loss, seed: seed)
        let sched: any LearningRateSchedule = schedule == "paper_b_table2" ? PiecewiseConstantSchedule.paperBTableII : ConstantLearningRate(learningRate)
        let total = epochs * ((trainSet.count + batchSize - 1) / batchSize)
        let bar = ProgressBar(label: "  \(id)\(runs > 1 ? " run \(run + 1)/\(runs)" : "")", total: total, enabled: !ctx.settings.quiet)
        defer { bar.finish() }
        let progress: (TrainingProgress) -> Void = { p in bar.update(p.iteration, note: String(format: "epoch %d loss %.3f", p.epoch + 1, p.loss)) }
        func go<M: TrainableModel>(_ model: inout M) throws -> [EpochRecord] {
            switch optimizer {
            case "sgd":
                var t = Trainer(optimizer: SGD(momentum: momentum, weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            case "rmsprop":
                var t = Trainer(optimizer: RMSprop(weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            default:
                var t = Trainer(optimizer: Adam(weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            }
        }
        switch spec {
        case .smallCNN:
            var m = SmallCNN(seed: seed)
            let recs = try go(&m)
            return (m, recs)
        case .gated(_, _, _, let c):
            var m = try GatedNetwork(architecture: try spec.architecture(for: trainSet), configuration: c, seed: seed)
            let recs = try go(&m)
            return (m, recs)
        }
    }

    // MARK: Cache

    func saveModel(_ model: Any, to url: URL) throws {
        if let m = model as? SmallCNN { try Trainer<Adam>.saveCheckpoint(m, to: url) }
        else if let m = model as? GatedNetwork { try Trainer<Adam>.saveCheckpoint(m, to: url) }
    }

    func loadModel(_ url: URL, _ d: Dataset) throws -> Any {
        switch spec {
        case .smallCNN: return try SmallCNN(parameters: try SafeTensors(contentsOf: url).tensors)
        case .gated(_, _, _, let c): return try GatedNetwork.load(architecture: try spec.architecture(for: d), configuration: c, from: url)
        }
    }

    func encode(_ r: EpochRecord) -> [String: Any] {
        ["epoch": r.epoch, "train_loss": r.trainLoss, "train_accuracy": r.trainAccuracy,
         "test_loss": r.testLoss, "test_accuracy": r.testAccuracy, "learning_rate": Double(r.learningRate)]
    }

    func loadRecords(_ url: URL) throws -> [EpochRecord] {
        guard let data = FileManager.default.contents(atPath: url.path),
              let arr = try JSONSerialization.jsonObject(with: data) as? [[String: Any]], !arr.isEmpty else {
            throw RecipeError("\(url.path): unreadable cached training records")
        }
        return arr.map {
            EpochRecord(epoch: $0["epoch"] as? Int ?? 0, trainLoss: $0["train_loss"] as? Double ?? 0,
                        trainAccuracy: $0["train_accuracy"] as? Double ?? 0, testLoss: $0["test_loss"] as? Double ?? 0,
                        testAccuracy: $0["test_accuracy"] as? Double ?? 0, learningRate: Float($0["learning_rate"] as? Double ?? 0))
        }
    }
}
