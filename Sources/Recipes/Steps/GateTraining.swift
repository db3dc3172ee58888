// MARK: - Training with gate-pattern snapshots (path_stability, kernel_alignment)
//
// Both steps train a small MNIST classifier with Adam and snapshot the gate pattern of a fixed
// probe batch along the way: at initialisation, at chosen batches, and after every epoch.
import Foundation
import SIMDCore

/// The classifiers the gate-pattern steps train.
enum ProbeModelName: String, RecipeName {
    /// The offline recipe's CNN (three ReLU layers, two max-pools).
    case mnistCNN = "mnist_cnn"
    /// A fully connected ReLU net (`hidden` widths).
    case mnistFC = "mnist_fc"
    static let what = "model"

    /// The FC net's `hidden` widths of a step's settings (default 256, 128), checked.
    static func hiddenWidths(in config: YAMLNode) throws -> [Int] {
        let hidden = try config.optional("hidden").map { try $0.array.map { try $0.int } } ?? [256, 128]
        guard !hidden.isEmpty, hidden.allSatisfy({ (1...4096).contains($0) }) else { throw config.error("hidden must be widths in 1...4096, got \(hidden)") }
        return hidden
    }
}

/// One snapshot of the probe batch's gates.
struct GateSnapshot {
    let name: String
    let iteration: Int
    let pattern: GatePattern
}

/// Adam training of a probe model, with snapshots.
struct GateTraining {
    let epochs: Int
    let batchSize: Int
    let learningRate: Float
    let seed: UInt64

    init(epochs: Int, batchSize: Int, learningRate: Float, seed: UInt64) {
        self.epochs = epochs; self.batchSize = batchSize; self.learningRate = learningRate; self.seed = seed
    }

    /// `epochs` (default 3), `batch_size` (32), `learning_rate` (0.001) and `seed` (0) of a step's settings, checked.
    init(settings config: YAMLNode) throws {
        let epochs = try config.int(at: "epochs", default: 3)
        let batchSize = try config.int(at: "batch_size", default: 32)
        let learningRate = Float(try config.double(at: "learning_rate", default: 0.001))
        guard (1...1000).contains(epochs), (1...4096).contains(batchSize), learningRate > 0 else {
            throw config.error("epochs must be 1...1000, batch_size 1...4096 and learning_rate positive")
        }
        self.init(epochs: epochs, batchSize: batchSize, learningRate: learningRate, seed: UInt64(try config.int(at: "seed", default: 0)))
    }

    /// Trains `model` on `data`; snapshots "init", then after each batch for which
    /// `extra(epoch, batchInEpoch, iteration, batchesPerEpoch)` names one, and "epoch<k>" after every epoch.
    func run<M: TrainableModel & PreActivationProbe>(_ model: inout M, data: LabelledImages, probe: Tensor,
                                                     extra: (Int, Int, Int, Int) -> String?) throws -> [GateSnapshot] {
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(learningRate),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: batchSize, seed: seed &+ 1))
        var snapshots = [GateSnapshot(name: "init", iteration: 0, pattern: try GatePattern(of: model, probe: probe))]
        let batches = try ShuffledBatches(data, batchSize: batchSize, seed: seed &+ 1)
        var iteration = 0
        for epoch in 0..<epochs {
            var b = 0
            try batches.forEachBatch(epoch: epoch) { xb, yb in
                _ = try trainer.step(&model, xb, yb, learningRate: learningRate)
                iteration += 1
                if let name = extra(epoch, b, iteration, batches.batchCount) {
                    snapshots.append(GateSnapshot(name: name, iteration: iteration, pattern: try GatePattern(of: model, probe: probe)))
                }
                b += 1
            }
            snapshots.append(GateSnapshot(name: "epoch\(epoch + 1)", iteration: iteration, pattern: try GatePattern(of: model, probe: probe)))
        }
        return snapshots
    }
}

// MARK: - kernel_alignment: pullbacks against the gradient of the stable gates' kernel machine
//
//   - step: kernel_alignment
//     id: km
//     with:
//       train: train_set           # data set step ids
//       probe: test_set
//       probe_images: {per_class: 5}
//       model: mnist_cnn           # or mnist_fc (then `hidden: [256, 128]`)
//       epochs: 3
//       batch_size: 32
//       learning_rate: 0.001       # Adam
//       checkpoints: 10            # evenly over the last epoch, the final model last
//       temperatures: [0.1, 0.3, 1, 3]
//       soft_pool: true            # false: the pullback keeps hard max-pools, as the kernel machine
//       seed: 0
//
// Trains the model, builds the kernel machine from the probe images' gates over the last
// `checkpoints` checkpoints (`KernelMachine`), and compares, per probe image, the excitation
// pullback (sigmoid gates, soft max-pools, at each temperature T) and the vanilla gradient of the
// label's logit with the kernel machine's exact gradient. Records `<id>.stable_fraction` and
// `<id>.<layer>.stable_fraction` (gates constant over the checkpoints), `<id>.gradient.cosine` and
// `<id>.pullback_T<T>.cosine` (means over the images), `<id>.pullback_T<T>.wins` (fraction of
// images where the pullback is the better aligned), `<id>.pullback_best.cosine` and
// `.temperature`, `<id>.logit_fraction` (mean f_KM / f of the label's logit), `<id>.logit_error`
// (mean ‖f_KM − f‖ / ‖f‖ over the logit vector) and `<id>.probe_accuracy`.
struct KernelAlignmentStep: RecipeStep {
    static let kind = "kernel_alignment"
    static let summary = "Train a classifier, build the kernel machine of its stable gates, and measure how well excitation pullbacks and vanilla gradients align with its gradient."
    static let keys = ["train", "probe", "probe_images", "model", "hidden", "epochs", "batch_size", "learning_rate", "checkpoints", "temperatures", "soft_pool", "seed"]

    let id: String
    let train: StepInput
    let probe: StepInput
    let selection: ImageSelection
    let model: ProbeModelName
    let hidden: [Int]
    let training: GateTraining
    let checkpoints: Int
    let temperatures: [Float]
    /// The pullback's max-pools: soft (paper A) or hard (the kernel machine's own pool selection).
    let softPool: Bool
    var inputs: [StepInput] { [train, probe] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        train = try StepInput("train", in: config, type: .dataset)
        probe = try StepInput("probe", in: config, type: .dataset)
        selection = try ImageSelection(try config.optional("probe_images"), default: .perClass(5))
        model = try config.name(at: "model", default: .mnistCNN)
        hidden = try ProbeModelName.hiddenWidths(in: config)
        training = try GateTraining(settings: config)
        checkpoints = try config.int(at: "checkpoints", default: 10)
        softPool = try config.bool(at: "soft_pool", default: true)
        temperatures = try config.optional("temperatures").map { try $0.array.map { Float(try $0.double) } } ?? [0.1, 0.3, 1, 3]
        guard (1...1000).contains(checkpoints) else { throw config.error("checkpoints must be 1...1000, got \(checkpoints)") }
        guard !temperatures.isEmpty, temperatures.allSatisfy({ $0 > 0 && $0.isFinite }) else {
            throw config.error("temperatures must be a non-empty list of positive numbers, got \(temperatures)")
        }
    }

    func run(_ ctx: RunContext) throws {
        let trainSet = try ctx.dataset(train), probeSet = try ctx.dataset(probe)
        let ix = try selection.indices(in: probeSet)
        let x = probeSet.modelInput(ix), labels = ix.map { probeSet.labels[$0] }
        let data = try LabelledImages(images: trainSet.modelInput(Array(0..<trainSet.count)), labels: trainSet.labels)
        switch model {
        case .mnistCNN:
            var m = SmallCNN(seed: training.seed)
            try measure(&m, ctx, data: data, x: x, labels: labels)
        case .mnistFC:
            var m = try FCNet(inputs: x.shape.dropFirst().reduce(1, *), hidden: hidden, classes: 10, seed: training.seed)
            try measure(&m, ctx, data: data, x: x, labels: labels)
        }
    }

    /// Label for a temperature in metric names and tables ("0.3", "1").
    static func label(_ t: Float) -> String { t == t.rounded() ? String(Int(t)) : String(format: "%g", Double(t)) }

    func measure<M: GateReplaceable & TrainableModel>(_ model: inout M, _ ctx: RunContext, data: LabelledImages, x: Tensor, labels: [Int]) throws {
        let last = training.epochs - 1
        let snapshots = try training.run(&model, data: data, probe: x) { epoch, b, _, perEpoch in
            let stride = max(1, perEpoch / checkpoints)
            return epoch == last && (b + 1) % stride == 0 && b + 1 < perEpoch ? "last\(b + 1)" : nil
        }
        // The checkpoints of the last epoch (mid-epoch ones and its end), at most `checkpoints`.
        let lastEpoch = Array(snapshots.filter { $0.name.hasPrefix("last") || $0.name == "epoch\(training.epochs)" }.suffix(checkpoints))
        let km = try KernelMachine(checkpoints: lastEpoch.map(\.pattern))
        ctx.record("\(id).checkpoints", Double(lastEpoch.count))
        ctx.record("\(id).stable_fraction", km.stableFraction)
        for (l, f) in km.stableFractions.enumerated() { ctx.record("\(id).\(km.layers[l]).stable_fraction", f) }

        let (kmLogits, kmGrad) = try km.gradient(of: model, images: x, targets: labels)
        let (logits, vanilla) = try ExplanationMethod.pullback(model, x, targets: labels, policy: .vanilla)
        let gradCos = try KernelMachine.cosines(vanilla, kmGrad)
        var pullCos: [[Double]] = []
        for t in temperatures {
            pullCos.append(try KernelMachine.cosines(try ExplanationMethod.pullback(model, x, targets: labels, policy: try .excitation(temperature: t, softPool: softPool)).gradient, kmGrad))
        }
        let fractions = try KernelMachine.logitFractions(machine: kmLogits, network: logits, targets: labels)
        let errors = try KernelMachine.logitErrors(machine: kmLogits, network: logits)
        let n = Double(labels.count)
        func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(v.count, 1)) }
        let classes = logits.shape[1]
        let correct = labels.indices.filter { i in
            let row = logits.scalars[(i * classes)..<((i + 1) * classes)]
            return row.indices.max { row[$0] < row[$1] }! - i * classes == labels[i]
        }.count
        ctx.record("\(id).probe_accuracy", Double(correct) / n)
        ctx.record("\(id).gradient.cosine", mean(gradCos))
        ctx.record("\(id).logit_fraction", mean(fractions))
        ctx.record("\(id).logit_error", mean(errors))
        var best = 0
        for (k, t) in temperatures.enumerated() {
            let key = "\(id).pullback_T\(Self.label(t))"
            ctx.record("\(key).cosine", mean(pullCos[k]))
            ctx.record("\(key).wins", Double(zip(pullCos[k], gradCos).filter { $0 > $1 }.count) / n)
            if mean(pullCos[k]) > mean(pullCos[best]) { best = k }
        }
        ctx.record("\(id).pullback_best.cosine", mean(pullCos[best]))
        ctx.record("\(id).pullback_best.temperature", Double(temperatures[best]))

        // Report: the averages against T, the per-image values, and a table.
        let ts = temperatures.map(Double.init)
        ctx.add(.plot(LinePlot(title: "\(id): alignment with the kernel machine's gradient", xLabel: "pullback temperature T", yLabel: "mean cosine similarity",
                               series: [LinePlot.Series(name: "excitation pullback", x: ts, y: pullCos.map(mean), markers: true),
                                        LinePlot.Series(name: "vanilla gradient", x: ts, y: ts.map { _ in mean(gradCos) }, dashed: true)]),
                      file: "\(id)-cosine.svg", caption: "Mean over \(labels.count) probe images of the cosine similarity with the kernel machine's input gradient (gates averaged over \(lastEpoch.count) checkpoints of the last epoch). The gradient does not depend on T."))
        let images = (0..<labels.count).map(Double.init)
        ctx.add(.plot(LinePlot(title: "\(id): per image", xLabel: "probe image", yLabel: "cosine similarity",
                               series: [LinePlot.Series(name: "pullback T = \(Self.label(temperatures[best]))", x: images, y: pullCos[best], markers: true),
                                        LinePlot.Series(name: "vanilla gradient", x: images, y: gradCos, markers: true)]),
                      file: "\(id)-per-image.svg", caption: "Per probe image, the cosine similarity with the kernel machine's gradient: the best-aligned temperature on average, and the vanilla gradient."))
        var table = "| image | label | vanilla gradient | " + temperatures.map { "pullback T = \(Self.label($0))" }.joined(separator: " | ") + " | f_KM / f (label logit) |\n"
        table += "|---|---|---|" + String(repeating: "---|", count: temperatures.count) + "---|\n"
        for i in labels.indices {
            table += "| \(i) | \(labels[i]) | " + String(format: "%.3f", gradCos[i]) + " | "
            table += pullCos.map { String(format: "%.3f", $0[i]) }.joined(separator: " | ") + String(format: " | %.3f |\n", fractions[i])
        }
        table += "| **mean** | | " + String(format: "**%.3f**", mean(gradCos)) + " | " + pullCos.map { String(format: "**%.3f**", mean($0)) }.joined(separator: " | ")
        table += String(format: " | **%.3f** |\n", mean(fractions))
        ctx.markdown(String(format: "Stable gates over the last %d checkpoints: %.1f%% (", lastEpoch.count, 100 * km.stableFraction)
                     + zip(km.layers, km.stableFractions).map { String(format: "%@ %.1f%%", $0 as NSString, 100 * $1) }.joined(separator: ", ")
                     + String(format: "). The kernel machine reproduces on average %.3f of the label's logit (mean relative error of the logit vector %.3f); the network classifies %.0f%% of the probe images correctly.",
                              mean(fractions), mean(errors), 100 * Double(correct) / n))
        ctx.markdown(table)
    }
}
