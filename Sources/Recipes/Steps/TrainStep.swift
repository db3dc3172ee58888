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
//       learning_rate: 0.001             # or schedule: paper_b_table2 (SGD, Table II), or
//                                        # paper_b_table2_scaled (its boundaries scaled to this run's iterations)
//       momentum: 0.9                    # sgd only
//       weight_decay: 0
//       loss: cross_entropy              # cross_entropy | squared
//       runs: 1                          # >1: seeds seed, seed+1, …; mean ± std recorded
//       seed_offset: 0                   # added to the seed (an independent second model)
//       permutations: 23                 # gated nets: train once per layer permutation (see below)
//
// NeurIPS 2020 FC regimes (architecture fc only):
//       model: {architecture: fc, width: 128, depth: 5, regime: fl}   # relu | fr_ii | fr_di | fl | dl
//       gates_from: relu_net             # fl: the train step of the ReLU net whose gates are copied
// ResNet depth: `depth: 110` (6n+2; default 110) for architecture resnet110, e.g. `depth: 8` for a
// one-block-per-stage ResNet-8 at a small scale.
//
// `permutations: N` trains one model per layer permutation — the N non-identity permutations of the
// gated layers, taken evenly spread from their lexicographic list (N = 23 = all for 4 layers) — and
// records the mean ± std over permutations and runs as <id>.test_accuracy(_std), plus
// <id>.perm<k>.test_accuracy for the k-th permutation (k = 1…N).
//
// Records <id>.test_accuracy (final, %, mean over runs), <id>.test_accuracy_std,
// <id>.best_test_accuracy, <id>.train_accuracy. The first run's model is the step's output.
// Checkpoints and per-epoch records live in the step's cache directory: a rerun with nothing
// changed loads them instead of training (`--force` retrains).
import Foundation
import SIMDCore

// MARK: - Names a train step accepts

/// NeurIPS 2020's regimes of an FC gated network (FCRegimes.swift).
enum FCRegimeName: String, RecipeName {
    case relu
    case fixedRandomIndependent = "fr_ii"
    case fixedRandomIdentical = "fr_di"
    case fixedLearnt = "fl"
    case decoupledLearnt = "dl"
    static let what = "regime"
}

/// How a gated network's gate is made from the feature pre-activation.
enum GateName: String, RecipeName {
    case hard, soft
    static let what = "gate"
}

extension GatedVariant: RecipeName { public static let what = "variant" }
extension ValueInput: RecipeName { public static let what = "value_input" }

/// The update rule of a `train` step.
enum OptimizerName: String, RecipeName {
    case adam, sgd, rmsprop
    static let what = "optimizer"
}

/// The learning-rate schedule of a `train` step.
enum ScheduleName: String, RecipeName {
    case constant
    /// Paper B's Table II SGD schedule.
    case paperBTable2 = "paper_b_table2"
    /// The same, its boundaries scaled to this run's iterations.
    case paperBTable2Scaled = "paper_b_table2_scaled"
    static let what = "schedule"
}

/// The training loss of a `train` step.
enum LossName: String, RecipeName {
    case crossEntropy = "cross_entropy"
    case squared
    static let what = "loss"

    var loss: TrainingLoss {
        switch self {
        case .crossEntropy: return .crossEntropy
        case .squared: return .squaredOneHot
        }
    }
}

// MARK: - ModelSpec

/// What a `train` step builds: the offline CNN or one of paper B's gated networks.
enum ModelSpec: Equatable {
    case smallCNN
    case gated(architecture: GatedArchitectureName, width: Int, depth: Int, configuration: GatingConfiguration)
    /// An FC net in one of NeurIPS 2020's regimes.
    case fcRegime(width: Int, depth: Int, regime: FCRegimeName, beta: Float)

    static let keys = ["architecture", "width", "depth", "variant", "value_input", "gate", "beta", "permutation", "regime"]

    init(_ node: YAMLNode) throws {
        if case .scalar = node.kind {
            let name = try node.string
            guard name == SmallCNN.name else {
                throw node.error("unknown model '\(name)'; write `\(SmallCNN.name)` or a mapping {architecture: \(GatedArchitectureName.names.joined(separator: "|")), …}")
            }
            self = .smallCNN
            return
        }
        try node.checkKeys(allowed: ModelSpec.keys)
        let arch: GatedArchitectureName = try node.name(at: "architecture")
        if let r = try node.optional("regime") {
            guard arch == .fc else { throw r.error("regime is defined for architecture fc (NeurIPS 2020 Table 1), not \(arch.rawValue)") }
            let regime = try FCRegimeName.parse(r)
            for k in ["variant", "value_input", "gate", "permutation"] where try node.optional(k) != nil {
                throw try node.node(at: k).error("\(k) does not apply with `regime` (the regime fixes the gating)")
            }
            self = .fcRegime(width: try node.int(at: "width", default: 128), depth: try node.int(at: "depth", default: 5),
                             regime: regime, beta: Float(try node.double(at: "beta", default: 10)))
            return
        }
        let variant: GatedVariant = try node.name(at: "variant", default: .dnn)
        let valueInput: ValueInput = try node.name(at: "value_input", default: variant == .dgn ? .same : .ones)
        let gate: GateKind
        switch try node.name(at: "gate", default: GateName.soft) {
        case .hard: gate = .hard
        case .soft: gate = .soft(beta: Float(try node.double(at: "beta", default: 10)))
        }
        let perm = try node.optional("permutation")?.array.map { try $0.int }
        let config = variant == .dnn ? GatingConfiguration.dnn
            : GatingConfiguration(variant: variant, gate: gate, valueInput: valueInput, permutation: perm)
        let depth = try node.int(at: "depth", default: arch == .resnet110 ? 110 : 5)
        if arch == .resnet110, depth < 8 || depth % 6 != 2 {
            throw try node.node(at: "depth").error("a CIFAR ResNet has depth 6n+2 (8, 14, 20, …, 110), got \(depth)")
        }
        self = .gated(architecture: arch, width: try node.int(at: "width", default: 128), depth: depth, configuration: config)
    }

    /// The gating configuration of a gated net or FC regime, with `permutation` if given.
    func configuration(permutation: [Int]? = nil) -> GatingConfiguration {
        switch self {
        case .smallCNN: return .dnn
        case .gated(_, _, _, var c):
            if let p = permutation { c.permutation = p }
            return c
        case .fcRegime(_, _, let r, let beta):
            switch r {
            case .relu: return .dnn
            case .decoupledLearnt: return .dgn(valueInput: .same, gate: .soft(beta: beta))
            case .fixedRandomIndependent, .fixedRandomIdentical, .fixedLearnt: return .dgn(valueInput: .same, gate: .hard)
            }
        }
    }

    /// The non-identity permutations of `layers` gated layers in lexicographic order.
    static func nonIdentityPermutations(_ layers: Int) -> [[Int]] {
        var out: [[Int]] = []
        func build(_ prefix: [Int], _ rest: [Int]) {
            if rest.isEmpty { if prefix != Array(0..<layers) { out.append(prefix) }; return }
            for (i, r) in rest.enumerated() { var rr = rest; rr.remove(at: i); build(prefix + [r], rr) }
        }
        build([], Array(0..<layers))
        return out
    }

    /// `count` of them, evenly spread over the lexicographic list (all when count >= the total).
    static func spreadPermutations(_ layers: Int, count: Int) -> [[Int]] {
        let all = nonIdentityPermutations(layers)
        guard count < all.count else { return all }
        return (0..<count).map { all[$0 * all.count / count] }
    }

    func architecture(for d: Dataset) throws -> GatedArchitecture {
        try architecture(channels: d.channels, height: d.height, width: d.width,
                         classes: max(d.classNames.count, (d.labels.max() ?? 0) + 1))
    }

    /// The architecture for images of `channels` x `height` x `width` and `classes` classes.
    func architecture(channels: Int, height: Int, width imageWidth: Int, classes: Int) throws -> GatedArchitecture {
        let imageSize = channels * height * imageWidth
        if case .fcRegime(let width, let depth, _, _) = self { return .fc(inputs: imageSize, width: width, depth: depth, classes: classes) }
        guard case .gated(let arch, let width, let depth, _) = self else {
            throw RecipeError("\(SmallCNN.name) is not a gated network")
        }
        switch arch {
        case .fc: return .fc(inputs: imageSize, width: width, depth: depth, classes: classes)
        case .c1gap: return .c1gap(inputChannels: channels, imageSize: height, width: width, classes: classes)
        case .c4gap: return .c4gap(inputChannels: channels, imageSize: height, width: width, classes: classes)
        case .vgg16: return .vgg16(inputChannels: channels, imageSize: height, classes: classes, widthDivisor: max(1, 64 / max(width, 1)))
        case .resnet110: return .cifarResNet(inputChannels: channels, imageSize: height, blocksPerStage: (depth - 2) / 6, classes: classes, baseWidth: max(width, 1))
        }
    }
}

/// A model a `train` step fitted, concrete so that its checkpoint can be written and read.
enum TrainedModel {
    case cnn(SmallCNN)
    case gated(GatedNetwork)

    var value: StepValue {
        switch self {
        case .cnn(let m): return .classifier(m)
        case .gated(let m): return .gatedNetwork(m)
        }
    }
}

struct TrainStep: RecipeStep {
    static let kind = "train"
    static let summary = "Train a model (mnist_cnn, or a DNN/DGN/DLGN/DLGN-SF of paper B); cached by content hash."
    static let keys = ["model", "train", "test", "epochs", "batch_size", "optimizer", "learning_rate", "schedule",
                       "momentum", "weight_decay", "loss", "runs", "seed_offset", "gates_from", "permutations"]
    static let cached = true

    let id: String
    let spec: ModelSpec
    let train: StepInput, test: StepInput
    let epochs: Int, batchSize: Int, runs: Int
    let optimizer: OptimizerName
    let learningRate: Float
    let schedule: ScheduleName
    let momentum: Float, weightDecay: Float
    let loss: TrainingLoss
    /// Added to the run's seed: two train steps in one recipe get independent initialisations.
    let seedOffset: UInt64
    /// The ReLU FC net whose gates regime fl copies.
    let gatesFrom: StepInput?
    let permutations: Int?
    var inputs: [StepInput] { [train, test] + (gatesFrom.map { [$0] } ?? []) }
    /// mnist_cnn is a Classifier; paper B's networks are GatedNetworks.
    var output: StepValueType? { spec == .smallCNN ? .classifier : .gatedNetwork }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        spec = try ModelSpec(try config.node(at: "model"))
        train = try StepInput("train", in: config, type: .dataset)
        test = try StepInput("test", in: config, type: .dataset)
        epochs = try config.int(at: "epochs")
        batchSize = try config.int(at: "batch_size", default: 32)
        runs = try config.int(at: "runs", default: 1)
        guard epochs >= 1, batchSize >= 1, runs >= 1 else { throw config.error("epochs, batch_size and runs must be at least 1") }
        optimizer = try config.name(at: "optimizer", default: .adam)
        learningRate = Float(try config.double(at: "learning_rate", default: optimizer == .sgd ? 0.01 : 0.001))
        schedule = try config.name(at: "schedule", default: .constant)
        momentum = Float(try config.double(at: "momentum", default: optimizer == .sgd ? 0.9 : 0))
        weightDecay = Float(try config.double(at: "weight_decay", default: 0))
        seedOffset = UInt64(try config.int(at: "seed_offset", default: 0, in: 0...Int.max))
        loss = try config.name(at: "loss", default: LossName.crossEntropy).loss
        gatesFrom = try StepInput(optional: "gates_from", in: config, type: .gatedNetwork)
        if case .fcRegime(_, _, let r, _) = spec {
            if r == .fixedLearnt, gatesFrom == nil { throw config.error("regime fl (fixed learnt gates) needs `gates_from: <id of the train step of a ReLU fc net>`") }
        }
        if let g = try config.optional("gates_from") {
            guard case .fcRegime(_, _, .fixedLearnt, _) = spec else { throw g.error("gates_from applies to model {architecture: fc, regime: fl} only") }
        }
        permutations = try config.optional("permutations")?.int
        if let p = permutations {
            let node = try config.node(at: "permutations")
            guard case .gated(_, _, _, let c) = spec, c.variant != .dnn, c.permutation == nil else {
                throw node.error("permutations needs a gated network (variant dgn, dlgn or dlgn_sf) without a fixed `permutation`")
            }
            guard p >= 1 else { throw node.error("permutations must be at least 1, got \(p)") }
        }
    }

    func run(_ ctx: RunContext) throws {
        let trainSet = try ctx.dataset(train)
        let testSet = try ctx.dataset(test)
        var finals: [Double] = [], bests: [Double] = [], trains: [Double] = []
        var firstRecords: [EpochRecord] = []
        var firstModel: TrainedModel?
        var gateSource: GatedNetwork?
        if let g = gatesFrom {
            let relu = try ctx.gatedNetwork(g)
            guard relu.configuration.variant == .dnn, relu.architecture == (try spec.architecture(for: trainSet)) else {
                throw RecipeError("step '\(id)': gates_from '\(g.step)' must be a ReLU fc net of the same shape (regime relu), got \(relu.configuration) \(relu.architecture)")
            }
            gateSource = relu
        }
        // One entry per trained model configuration: no permutation, or each of the chosen ones.
        let perms: [[Int]?]
        if let n = permutations { perms = ModelSpec.spreadPermutations(try spec.architecture(for: trainSet).gatedLayerCount, count: n) }
        else { perms = [nil] }
        guard let units = ctx.units else { throw RecipeError("step '\(id)': run without a unit store") }
        let sha256 = { (path: String) in ctx.knownSHA256(path) }
        var permRows: [[TableValue]] = []
        for (k, perm) in perms.enumerated() {
            var permFinals: [Double] = []
            for r in 0..<runs {
                let seed = ctx.seed &+ seedOffset &+ UInt64(r)
                let unit = units.unit(TrainStep.stem(permutation: perm, run: r))
                let assigned = units.assigned?.contains(unit.stem) ?? true
                // A shard skips the units of other shards; it still needs the first model when a
                // later step of its own reads this step's output.
                guard assigned || (r == 0 && k == 0 && units.outputNeeded) else { continue }
                let dir = units.store.directory(unit)
                let (model, records): (TrainedModel, [EpochRecord])
                if !(units.force && assigned), units.store.isComplete(unit, sha256: sha256),
                   let recs = try? loadRecords(dir.appendingPathComponent("records.json")) {
                    model = try loadModel(dir.appendingPathComponent("model.safetensors"), trainSet, permutation: perm)
                    records = recs
                    if assigned { ctx.unitsReused += 1 }
                } else {
                    (model, records) = try fit(seed: seed, run: r, permutation: perm, gateSource: gateSource, trainSet, testSet, ctx)
                    try units.store.publish(unit, inputs: units.inputs) { d in
                        try saveModel(model, to: d.appendingPathComponent("model.safetensors"))
                        try AtomicFile.write(try JSONSerialization.data(withJSONObject: records.map(encode), options: [.prettyPrinted, .sortedKeys]),
                                             to: d.appendingPathComponent("records.json"))
                    }
                    ctx.unitsComputed += 1
                }
                if r == 0 && k == 0 { firstModel = model; firstRecords = records }
                finals.append(records.last!.testAccuracy)
                permFinals.append(records.last!.testAccuracy)
                bests.append(records.map(\.testAccuracy).max()!)
                trains.append(records.last!.trainAccuracy)
            }
            if let perm, units.assigned == nil {
                let m = permFinals.reduce(0, +) / Double(runs)
                ctx.record("\(id).perm\(k + 1).test_accuracy", m)
                permRows.append([.integer(k + 1), .text(perm.map(String.init).joined(separator: " ")), .fixed(m, decimals: 2)])
            }
        }
        // A shard records nothing: the report comes from the run that merges every unit.
        if units.assigned != nil {
            if units.outputNeeded, let firstModel { ctx.store(firstModel.value) }
            return
        }
        guard let firstModel else { throw RecipeError("step '\(id)': no model was trained") }
        ctx.store(firstModel.value)
        let count = Double(finals.count)
        let mean = finals.reduce(0, +) / count
        let std = finals.count > 1 ? (finals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / (count - 1)).squareRoot() : 0
        ctx.record("\(id).test_accuracy", mean)
        ctx.record("\(id).test_accuracy_std", std)
        ctx.record("\(id).best_test_accuracy", bests.reduce(0, +) / count)
        ctx.record("\(id).train_accuracy", trains.reduce(0, +) / count)
        if !permRows.isEmpty {
            ctx.add(.table(Table(headers: ["k", "permutation (feature layer l gates value layer π(l))", "test acc %"], rows: permRows),
                           caption: "\(id): final test accuracy per layer permutation (mean over \(runs) run\(runs > 1 ? "s" : "")); mean over permutations \(String(format: "%.2f ± %.2f", mean, std)).",
                           csvFile: "\(id)-permutations.csv"))
        }

        let rows: [[TableValue]] = firstRecords.map {
            [.integer($0.epoch + 1), .fixed($0.trainLoss, decimals: 4), .fixed($0.trainAccuracy, decimals: 2),
             .fixed($0.testLoss, decimals: 4), .fixed($0.testAccuracy, decimals: 2), .text(String(format: "%g", Double($0.learningRate)))]
        }
        ctx.add(.table(Table(headers: ["epoch", "train loss", "train acc %", "test loss", "test acc %", "lr"], rows: rows),
                       caption: "\(describe(trainSet)) — \(optimizer.rawValue), batch \(batchSize)\(ctx.cacheHit ? " (loaded from the step cache)" : "")\(runs > 1 ? "; run 1 of \(runs) shown, final test accuracy \(String(format: "%.2f ± %.2f", mean, std))" : "").",
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
        case .gated(let a, let w, _, let c): return "\(c) \(a.rawValue) (width \(w)) on \(d.name)"
        case .fcRegime(let w, let depth, let r, _): return "FC \(r.rawValue) (width \(w), depth \(depth)) on \(d.name)"
        }
    }

    // MARK: Units of work

    /// A unit's stem: `run<r>`, or `perm<π>-run<r>` for a layer permutation π, e.g. `perm0132-run2`
    /// (named by the permutation, not its index, so that another `permutations` count keeps it).
    static func stem(permutation: [Int]?, run r: Int) -> String {
        permutation.map { "perm\($0.map(String.init).joined(separator: $0.count > 10 ? "." : ""))-run\(r)" } ?? "run\(r)"
    }

    /// How many networks one training step updates and how wide they are, for the cost estimate.
    var costShape: (networks: Int, width: Int) {
        switch spec {
        case .smallCNN: return (1, 32)
        case .gated(_, let w, _, let c): return (c.variant == .dnn ? 1 : 2, w)
        case .fcRegime(let w, _, let r, _): return (r == .relu ? 1 : 2, w)
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
        case .gated, .fcRegime:
            ChannelNormalization.fit(stats).apply(to: &x)
        }
        return x
    }

    func fit(seed: UInt64, run: Int, permutation: [Int]?, gateSource: GatedNetwork?, _ trainSet: Dataset, _ testSet: Dataset, _ ctx: RunContext) throws -> (TrainedModel, [EpochRecord]) {
        let trainData = try LabelledImages(images: inputs(trainSet, stats: trainSet), labels: trainSet.labels)
        let testData = try LabelledImages(images: inputs(testSet, stats: trainSet), labels: testSet.labels)
        let config = TrainingConfiguration(epochs: epochs, batchSize: batchSize, loss: loss, seed: seed)
        let total = epochs * ((trainSet.count + batchSize - 1) / batchSize)
        let sched: any LearningRateSchedule
        switch schedule {
        case .paperBTable2: sched = PiecewiseConstantSchedule.paperBTableII
        case .paperBTable2Scaled: sched = try PiecewiseConstantSchedule.paperBTableII(scaledTo: total)
        case .constant: sched = ConstantLearningRate(learningRate)
        }
        let bar = ProgressBar(label: "  \(id)\(permutation.map { " π=\($0.map(String.init).joined())" } ?? "")\(runs > 1 ? " run \(run + 1)/\(runs)" : "")", total: total, enabled: !ctx.settings.quiet)
        defer { bar.finish() }
        let progress: (TrainingProgress) -> Void = { p in bar.update(p.iteration, note: String(format: "epoch %d loss %.3f", p.epoch + 1, p.loss)) }
        func go<M: TrainableModel>(_ model: inout M) throws -> [EpochRecord] {
            switch optimizer {
            case .sgd:
                var t = Trainer(optimizer: SGD(momentum: momentum, weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            case .rmsprop:
                var t = Trainer(optimizer: RMSprop(weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            case .adam:
                var t = Trainer(optimizer: Adam(weightDecay: weightDecay), schedule: sched, configuration: config)
                return try t.fit(&model, train: trainData, test: testData, progress: progress).epochs
            }
        }
        switch spec {
        case .smallCNN:
            var m = SmallCNN(seed: seed)
            let recs = try go(&m)
            return (.cnn(m), recs)
        case .gated:
            var m = try GatedNetwork(architecture: try spec.architecture(for: trainSet), configuration: spec.configuration(permutation: permutation), seed: seed)
            let recs = try go(&m)
            return (.gated(m), recs)
        case .fcRegime(_, _, let r, let beta):
            let regime: FCRegime
            switch r {
            case .relu: regime = .relu
            case .fixedRandomIndependent: regime = .fixedRandomIndependent
            case .fixedRandomIdentical: regime = .fixedRandomIdentical
            case .fixedLearnt:
                guard let g = gateSource else { throw RecipeError("step '\(id)': regime fl needs `gates_from`") }
                regime = .fixedLearnt(trainedReLU: g.parameters)
            case .decoupledLearnt: regime = .decoupledLearnt(beta: beta)
            }
            var m = try GatedNetwork.fullyConnected(try spec.architecture(for: trainSet), regime: regime, seed: seed)
            let recs = try go(&m)
            return (.gated(m), recs)
        }
    }

    // MARK: Cache

    func saveModel(_ model: TrainedModel, to url: URL) throws {
        switch model {
        case .cnn(let m): try Trainer<Adam>.saveCheckpoint(m, to: url)
        case .gated(let m): try Trainer<Adam>.saveCheckpoint(m, to: url)
        }
    }

    func loadModel(_ url: URL, _ d: Dataset, permutation: [Int]? = nil) throws -> TrainedModel {
        switch spec {
        case .smallCNN: return .cnn(try SmallCNN(parameters: try SafeTensors(contentsOf: url).tensors))
        case .gated, .fcRegime:
            return .gated(try GatedNetwork.load(architecture: try spec.architecture(for: d), configuration: spec.configuration(permutation: permutation), from: url))
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

// MARK: - Units: one per run and permutation

extension TrainStep: UnitSplittable {
    static let unitCountSettings = ["runs", "permutations"]

    func unitSpecs(shapes: [String: DataShape]) -> [UnitSpec] {
        let tr = shapes[train.step], te = shapes[test.step]
        let shape = tr ?? DataShape(count: 1, channels: 1, height: 28, width: 28, classes: 10)
        var perms: [[Int]?] = [nil]
        if let n = permutations {
            let layers = (try? spec.architecture(channels: shape.channels, height: shape.height, width: shape.width, classes: shape.classes))?.gatedLayerCount ?? 4
            perms = ModelSpec.spreadPermutations(layers, count: n).map { Optional($0) }
        }
        let (networks, width) = costShape
        let cost = CostModel.seconds(epochs: epochs, train: tr, test: te, width: width, networks: networks)
        return perms.flatMap { p in (0..<runs).map { UnitSpec(stem: TrainStep.stem(permutation: p, run: $0), cost: cost) } }
    }
}
