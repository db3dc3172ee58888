// MARK: - memorisation_spectra: the NeurIPS 2020 appendix's memorisation network
//
//   - step: memorisation_spectra
//     id: spectra
//     with:
//       examples: 200
//       widths: [25, 500]
//       depths: [2, 4, 6, 8, 12, 16, 20]
//       seed: 0
//       train_widths: [25]        # the memorisation task is trained at these widths (optional)
//       train_all_widths: false   # true: trained at every width of `widths` instead
//       train_steps: 300
//       learning_rate: 0.1
//
// Records per width w and depth d: `<id>.w<w>.d<d>.median`, `.smallest`, `.bulk_deviation`,
// `.ecdf_distance` (sup distance to the ideal spectrum's e.c.d.f.), and per width the depth whose
// median eigenvalue is closest to 1, `<id>.w<w>.best_depth_median`, and whose bulk deviation is
// smallest, `<id>.w<w>.best_depth_bulk`; with training, `<id>.w<w>.d<d>.final_loss` and
// `<id>.w<w>.best_depth_loss`. Plots: the e.c.d.f.s per width, the summaries against depth.
import Foundation
import SIMDCore

struct MemorisationSpectraStep: RecipeStep {
    static let kind = "memorisation_spectra"
    static let summary = "Eigenvalue e.c.d.f. of the memorisation network's neural path kernel against its ideal spectrum, per depth and width (needs no data)."
    static let keys = ["examples", "widths", "depths", "seed", "train_widths", "train_all_widths", "train_steps", "learning_rate"]

    let id: String
    let examples: Int
    let widths: [Int]
    let depths: [Int]
    let seed: UInt64
    let trainWidths: [Int]
    let trainSteps: Int
    let learningRate: Float
    var inputs: [StepInput] { [] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        examples = try config.int(at: "examples", default: 200)
        func ints(_ key: String, _ d: [Int]) throws -> [Int] { try config.optional(key).map { try $0.array.map { try $0.int } } ?? d }
        widths = try ints("widths", [25, 500])
        depths = try ints("depths", [2, 4, 6, 8, 12, 16, 20])
        trainWidths = try config.bool(at: "train_all_widths", default: false) ? widths : try ints("train_widths", [])
        seed = UInt64(try config.int(at: "seed", default: 0))
        trainSteps = try config.int(at: "train_steps", default: 300)
        learningRate = Float(try config.double(at: "learning_rate", default: 0.1))
        guard (2...2000).contains(examples) else { throw config.error("examples must be in 2...2000, got \(examples)") }
        guard !widths.isEmpty, widths.allSatisfy({ (1...4096).contains($0) }) else { throw config.error("widths must be 1...4096, got \(widths)") }
        guard !depths.isEmpty, depths.allSatisfy({ (2...64).contains($0) }) else { throw config.error("depths must be 2...64, got \(depths)") }
        guard trainWidths.allSatisfy({ (1...4096).contains($0) }) else { throw config.error("train_widths must be 1...4096, got \(trainWidths)") }
        guard trainSteps >= 1, learningRate > 0 else { throw config.error("train_steps must be >= 1 and learning_rate > 0") }
    }

    func run(_ ctx: RunContext) throws {
        let ds = depths.map(Double.init)
        var summary = "| width | depth | median λ (ideal) | smallest λ | mean abs(λ − 1), bulk | e.c.d.f. distance |\n|---|---|---|---|---|---|\n"
        for w in widths {
            var ecdf: [LinePlot.Series] = []
            var medians: [Double] = [], bulks: [Double] = []
            for d in depths {
                let s = MemorisationSpectrum(examples: examples, width: w, depth: d, seed: seed &+ UInt64(1000 * w + d))
                let key = "\(id).w\(w).d\(d)"
                ctx.record("\(key).median", s.median); ctx.record("\(key).smallest", s.smallest)
                ctx.record("\(key).bulk_deviation", s.bulkDeviation); ctx.record("\(key).ecdf_distance", s.distanceToIdeal)
                medians.append(s.median); bulks.append(s.bulkDeviation)
                let steps = EmpiricalCDF(s.measured).steps
                ecdf.append(LinePlot.Series(name: "d = \(d)", x: steps.map(\.value), y: steps.map(\.fraction)))
                summary += String(format: "| %d | %d | %.3f (%.3f) | %.3f | %.3f | %.3f |\n", w, d, s.median, s.ideal[0], s.smallest, s.bulkDeviation, s.distanceToIdeal)
            }
            let bestMedian = depths[medians.indices.min { abs(medians[$0] - 1) < abs(medians[$1] - 1) }!]
            let bestBulk = depths[bulks.indices.min { bulks[$0] < bulks[$1] }!]
            ctx.record("\(id).w\(w).best_depth_median", Double(bestMedian))
            ctx.record("\(id).w\(w).best_depth_bulk", Double(bestBulk))
            let plot = LinePlot(title: "\(id): eigenvalue e.c.d.f., width \(w), n = \(examples)", xLabel: "eigenvalue (trace n)", yLabel: "fraction <= eigenvalue", series: ecdf)
            ctx.add(.plot(plot, file: "\(id)-ecdf-w\(w).svg", caption: "E.c.d.f. of the memorisation Gram's eigenvalues at width \(w), one curve per depth. The ideal spectrum is a step at 1 − 2^−(d−1) (n − 1 eigenvalues) plus one at 1 + (n − 1) 2^−(d−1)."))
            let byDepth = LinePlot(title: "\(id): spectrum against depth, width \(w)", xLabel: "depth d", yLabel: "eigenvalue summary",
                                   series: [LinePlot.Series(name: "median λ", x: ds, y: medians, markers: true),
                                            LinePlot.Series(name: "mean abs(λ − 1), bulk", x: ds, y: bulks, markers: true)])
            ctx.add(.plot(byDepth, file: "\(id)-depth-w\(w).svg", caption: "Median eigenvalue (ideal: just below 1) and the bulk's mean distance from 1 (ideal: 2^−(d−1)), width \(w)."))
        }
        ctx.markdown(summary)
        for w in trainWidths {
            var finals: [Double] = [], curves: [LinePlot.Series] = []
            for d in depths {
                let task = MemorisationTask(examples: examples, width: w, depth: d, seed: seed &+ UInt64(7000 + 1000 * w + d))
                let losses = try task.train(steps: trainSteps, learningRate: learningRate, seed: seed &+ UInt64(9000 + d))
                ctx.record("\(id).w\(w).d\(d).final_loss", losses.last!)
                finals.append(losses.last!)
                curves.append(LinePlot.Series(name: "d = \(d)", x: losses.indices.map(Double.init), y: losses))
            }
            ctx.record("\(id).w\(w).best_depth_loss", Double(depths[finals.indices.min { finals[$0] < finals[$1] }!]))
            ctx.add(.plot(LinePlot(title: "\(id): memorisation loss, width \(w)", xLabel: "gradient-descent step", yLabel: "mean squared error", series: curves),
                          file: "\(id)-loss-w\(w).svg", caption: "Training loss of the memorisation task (full-batch gradient descent, learning rate \(learningRate)), width \(w), one curve per depth."))
        }
    }
}

// MARK: - faithfulness: deletion, insertion and infidelity of attribution methods
//
//   - step: faithfulness
//     id: faith
//     with:
//       model: cnn                 # a Classifier (step id)
//       data: test_set
//       images: {per_class: 2}
//       target: label              # label | predicted | <class index>
//       methods: [gradient, input_x_gradient, {method: excitation_pullback, temperature: 0.3}]
//       ascent: {alpha: 1.5, eps: 7, steps: 5, temperature: 0.3}   # optional: the pullback ascent as an attribution
//       steps: 28                  # points of the deletion / insertion curves
//       baseline: 0                # value deleted positions take
//       patch: 7                   # infidelity: side of the uniform-noise patches
//       samples: 5                 # infidelity: draws per image
//
// Records per method label: `<id>.<label>.deletion_auc` (softmax probability; lower is better),
// `.insertion_auc` (higher is better), `.infidelity` (optimally scaled, cumulative U[-1, 1] patches, on
// the logit; lower is better) and `.infidelity_raw` (Yeh et al., Gaussian sigma 0.1, 16 draws). The
// pullback ascent's attribution is perturbed − clean after the ascent, labelled `pullback_ascent`.
struct FaithfulnessStep: RecipeStep {
    static let kind = "faithfulness"
    static let summary = "Deletion and insertion curves (AUC) and infidelity of attribution methods on chosen images."
    static let keys = ["model", "data", "images", "target", "methods", "ascent", "steps", "baseline", "patch", "samples", "seed"]

    let id: String
    let model: StepInput
    let data: StepInput
    let selection: ImageSelection
    let target: TargetRule
    let methods: [ExplanationMethod]
    let labels: [String]
    let ascent: PGA?
    let steps: Int
    let baseline: Float
    let patch: Int
    let samples: Int
    let seed: UInt64
    var inputs: [StepInput] { [model, data] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        model = try StepInput("model", in: config, type: .classifier)
        data = try StepInput("data", in: config, type: .dataset)
        selection = try ImageSelection(try config.optional("images"), default: .perClass(2))
        target = try config.optional("target").map(TargetRule.init) ?? .label
        let ms = try config.array(at: "methods")
        methods = try ms.map { try ExplanationMethod.parse($0) }
        labels = try ms.map { n in
            if case .scalar = n.kind { return try n.string }
            return try n.string(at: "label", default: try n.string(at: "method"))
        }
        if let a = try config.optional("ascent") {
            try a.checkKeys(allowed: ["alpha", "eps", "steps", "temperature"])
            let t = Float(try a.double(at: "temperature", default: 0.3))
            guard t > 0 else { throw a.error("temperature must be positive, got \(t)") }
            ascent = PGA(alpha: Float(try a.double(at: "alpha", default: 20)), eps: Float(try a.double(at: "eps", default: 100)),
                         steps: try a.int(at: "steps", default: 5), policy: try GatePolicy.excitation(temperature: t))
        } else { ascent = nil }
        steps = try config.int(at: "steps", default: 28)
        baseline = Float(try config.double(at: "baseline", default: 0))
        patch = try config.int(at: "patch", default: 7)
        samples = try config.int(at: "samples", default: 5)
        seed = UInt64(try config.int(at: "seed", default: 0))
        guard (1...1024).contains(steps) else { throw config.error("steps must be in 1...1024, got \(steps)") }
        guard patch >= 1, (1...64).contains(samples) else { throw config.error("patch must be >= 1 and samples in 1...64") }
    }

    func run(_ ctx: RunContext) throws {
        let net = try ctx.classifier(model)
        let d = try ctx.dataset(data)
        let ix = try selection.indices(in: d)
        let x = d.modelInput(ix)
        let targets = try resolveTargets(target, net: net, x: x, labels: ix.map { d.labels[$0] })
        let shape = Array(x.shape.dropFirst()), size = shape.reduce(1, *)
        var all: [(String, Tensor)] = []
        for (m, label) in zip(methods, labels) { all.append((label, try m.attribute(net, x, targets: targets))) }
        if let pga = ascent { all.append(("pullback_ascent", try pga.ascend(model: net, images: x, targets: targets).differences)) }
        var table = "| method | deletion AUC (lower better) | insertion AUC (higher better) | infidelity, scaled (lower better) | infidelity, raw |\n|---|---|---|---|---|\n"
        var deletionSeries: [LinePlot.Series] = [], insertionSeries: [LinePlot.Series] = []
        for (label, maps) in all {
            var del = [Double](repeating: 0, count: steps + 1), ins = del
            var infScaled = 0.0, infRaw = 0.0
            for i in 0..<ix.count {
                let xi = Tensor(shape: shape, scalars: Array(x.scalars[(i * size)..<((i + 1) * size)]))
                let ai = Tensor(shape: shape, scalars: Array(maps.scalars[(i * size)..<((i + 1) * size)]))
                let prob = Faithfulness.probabilityScore(net, target: targets[i]), logit = Faithfulness.logitScore(net, target: targets[i])
                let dc = try Faithfulness.deletion(input: xi, attribution: ai, baseline: baseline, steps: steps, score: prob)
                let ic = try Faithfulness.insertion(input: xi, attribution: ai, baseline: baseline, steps: steps, score: prob)
                for k in 0...steps { del[k] += dc.scores[k] / Double(ix.count); ins[k] += ic.scores[k] / Double(ix.count) }
                let patches = try Faithfulness.perturbations(of: xi, .uniformPatches(size: patch, low: -1, high: 1), samples: samples, seed: seed &+ UInt64(i))
                let gauss = try Faithfulness.perturbations(of: xi, .gaussian(sigma: 0.1), samples: 16, seed: seed &+ UInt64(100_000 + i))
                infScaled += try Faithfulness.infidelity(input: xi, attribution: ai, perturbations: patches, score: logit).scaled / Double(ix.count)
                infRaw += try Faithfulness.infidelity(input: xi, attribution: ai, perturbations: gauss, score: logit).raw / Double(ix.count)
            }
            let fractions = (0...steps).map { Double($0) / Double(steps) }
            let delAUC = Faithfulness.area(fractions, del), insAUC = Faithfulness.area(fractions, ins)
            ctx.record("\(id).\(label).deletion_auc", delAUC); ctx.record("\(id).\(label).insertion_auc", insAUC)
            ctx.record("\(id).\(label).infidelity", infScaled); ctx.record("\(id).\(label).infidelity_raw", infRaw)
            table += "| \(label) | " + String(format: "%.4f | %.4f | %.4f | %.4f |\n", delAUC, insAUC, infScaled, infRaw)
            deletionSeries.append(LinePlot.Series(name: label, x: fractions, y: del))
            insertionSeries.append(LinePlot.Series(name: label, x: fractions, y: ins))
        }
        ctx.add(.plot(LinePlot(title: "\(id): deletion", xLabel: "fraction of positions deleted", yLabel: "probability of the target", series: deletionSeries),
                      file: "\(id)-deletion.svg", caption: "Mean deletion curves over \(ix.count) images (positions replaced by \(baseline), most attributed first). Lower is more faithful."))
        ctx.add(.plot(LinePlot(title: "\(id): insertion", xLabel: "fraction of positions inserted", yLabel: "probability of the target", series: insertionSeries),
                      file: "\(id)-insertion.svg", caption: "Mean insertion curves over \(ix.count) images (from all \(baseline), most attributed first). Higher is more faithful."))
        ctx.markdown(table)
    }
}

// MARK: - path_stability: how early the gate patterns settle (paper A's hypothesis)
//
//   - step: path_stability
//     id: stability
//     with:
//       train: train_set           # data set step ids
//       probe: test_set
//       probe_images: {per_class: 10}
//       model: mnist_cnn           # or mnist_fc (then `hidden: [256, 128]`)
//       epochs: 3
//       batch_size: 32
//       learning_rate: 0.001       # Adam
//       early_iterations: [10, 30, 60]
//       seed: 0
//
// Trains the MNIST CNN (`mnist_cnn`) or an FC ReLU net (`mnist_fc`) and snapshots the gate pattern (1[z > 0] of every ReLU) of the
// probe images at iteration 0, at `early_iterations` and after every epoch. Records, per snapshot
// (s0, s1, …, in order) and layer, `<id>.<snapshot>.<layer>.flips` and `<id>.<snapshot>.flips` (all
// layers), each the fraction of gates that differ from the final pattern; `<id>.epoch<k>.flips` for
// the epoch ends; and, after epoch 1, the flip fraction within each quintile of the final |z|,
// `<id>.epoch1.<layer>.q<k>.flips` (q1 = smallest |z|).
struct PathStabilityStep: RecipeStep {
    static let kind = "path_stability"
    static let summary = "Train the MNIST CNN or an FC net, snapshot the probe images' gate patterns, and measure how many gates still change (path stability)."
    static let keys = ["train", "probe", "probe_images", "model", "hidden", "epochs", "batch_size", "learning_rate", "early_iterations", "seed"]

    let id: String
    let train: StepInput
    let probe: StepInput
    let selection: ImageSelection
    let model: ProbeModelName
    let hidden: [Int]
    let training: GateTraining
    let early: [Int]
    var inputs: [StepInput] { [train, probe] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        train = try StepInput("train", in: config, type: .dataset)
        probe = try StepInput("probe", in: config, type: .dataset)
        selection = try ImageSelection(try config.optional("probe_images"), default: .perClass(10))
        model = try config.name(at: "model", default: .mnistCNN)
        hidden = try ProbeModelName.hiddenWidths(in: config)
        early = try config.optional("early_iterations").map { try $0.array.map { try $0.int } } ?? [10, 30, 60]
        training = try GateTraining(settings: config)
    }

    func run(_ ctx: RunContext) throws {
        let trainSet = try ctx.dataset(train), probeSet = try ctx.dataset(probe)
        let x = probeSet.modelInput(try selection.indices(in: probeSet))
        let data = try LabelledImages(images: trainSet.modelInput(Array(0..<trainSet.count)), labels: trainSet.labels)
        let early = self.early
        let extra: (Int, Int, Int, Int) -> String? = { _, _, it, _ in early.contains(it) ? "iteration\(it)" : nil }
        let snapshots: [GateSnapshot]
        switch model {
        case .mnistCNN:
            var m = SmallCNN(seed: training.seed)
            snapshots = try training.run(&m, data: data, probe: x, extra: extra)
        case .mnistFC:
            var m = try FCNet(inputs: x.shape.dropFirst().reduce(1, *), hidden: hidden, classes: 10, seed: training.seed)
            snapshots = try training.run(&m, data: data, probe: x, extra: extra)
        }
        let final = snapshots.last!.pattern
        var perLayer = [[Double]](repeating: [], count: final.layers.count), overall: [Double] = []
        var table = "| snapshot | iteration | " + final.layers.joined(separator: " | ") + " | all |\n|---|---|" + String(repeating: "---|", count: final.layers.count + 1) + "\n"
        for s in snapshots {
            let f = try s.pattern.flipFractions(against: final), o = try s.pattern.overallFlipFraction(against: final)
            for (l, v) in f.enumerated() { perLayer[l].append(v); ctx.record("\(id).\(s.name).\(final.layers[l]).flips", v) }
            overall.append(o); ctx.record("\(id).\(s.name).flips", o)
            table += "| \(s.name) | \(s.iteration) | " + f.map { String(format: "%.4f", $0) }.joined(separator: " | ") + String(format: " | %.4f |\n", o)
        }
        let its = snapshots.map { Double($0.iteration) }
        var series = final.layers.indices.map { LinePlot.Series(name: final.layers[$0], x: its, y: perLayer[$0], markers: true) }
        series.append(LinePlot.Series(name: "all", x: its, y: overall, markers: true))
        ctx.add(.plot(LinePlot(title: "\(id): gates that differ from the final pattern", xLabel: "iteration", yLabel: "fraction of gates", series: series),
                      file: "\(id)-flips.svg", caption: "Per layer, the fraction of the probe images' gates whose state differs from the final model's, at each snapshot."))
        ctx.markdown(table)
        if let e1 = snapshots.first(where: { $0.name == "epoch1" })?.pattern {
            var binSeries: [LinePlot.Series] = []
            for l in final.layers.indices {
                let edges = PathStability.quantileEdges(of: final.preActivations[l], bins: 5)
                let bins = try e1.flipsByMagnitude(against: final, layer: l, edges: edges)
                for (k, b) in bins.enumerated() { ctx.record("\(id).epoch1.\(final.layers[l]).q\(k + 1).flips", b.flipFraction) }
                binSeries.append(LinePlot.Series(name: final.layers[l], x: bins.indices.map { Double($0 + 1) }, y: bins.map(\.flipFraction), markers: true))
            }
            ctx.add(.plot(LinePlot(title: "\(id): after epoch 1, by final |z|", xLabel: "quintile of the final |pre-activation| (1 = smallest)", yLabel: "fraction of gates that flip", series: binSeries),
                          file: "\(id)-by-magnitude.svg", caption: "Gates still to flip after epoch 1, grouped by the final model's |pre-activation|: the hypothesis says the flips are the small ones."))
        }
    }
}

// MARK: - npk_dynamics: nu = y^T H^-1 y of the trace-normalised NPK during training (NeurIPS 2020 Figure 2)
//
//   - step: npk_dynamics
//     id: npk
//     with:
//       train: train_set           # MNIST (any split with the two classes)
//       test: test_set
//       classes: [4, 7]            # labels -1, +1
//       kernel_per_class: 100      # NPK on 100 + 100 training images
//       width: 100
//       depth: 5
//       epochs: 10
//       batch_size: 64
//       learning_rate: 0.0001      # RMSprop
//       seed: 0
//
// Records `<id>.nu.epoch<k>` (k = 0: initialisation), `<id>.nu_initial`, `<id>.nu_final`,
// `<id>.nu_ratio` (final / initial) and `<id>.test_accuracy`.
struct NPKDynamicsStep: RecipeStep {
    static let kind = "npk_dynamics"
    static let summary = "Train a ReLU FC net on a binary task and track nu = y^T H^-1 y of its trace-normalised neural path kernel."
    static let keys = ["train", "test", "classes", "kernel_per_class", "width", "depth", "epochs", "batch_size", "learning_rate", "seed",
                       "norm_per_class", "norm_gate_beta"]

    let id: String
    let train: StepInput
    let test: StepInput
    let classes: [Int]
    let kernelPerClass: Int
    let width: Int
    let depth: Int
    let epochs: Int
    let batchSize: Int
    let learningRate: Float
    let seed: UInt64
    /// Examples per class of the value / feature kernel norms (0: not measured).
    let normPerClass: Int
    let normGateBeta: Float
    var inputs: [StepInput] { [train, test] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        train = try StepInput("train", in: config, type: .dataset)
        test = try StepInput("test", in: config, type: .dataset)
        normPerClass = try config.int(at: "norm_per_class", default: 0)
        normGateBeta = Float(try config.double(at: "norm_gate_beta", default: 10))
        guard (0...5000).contains(normPerClass), normGateBeta > 0 else { throw config.error("norm_per_class must be 0...5000 and norm_gate_beta positive") }
        classes = try config.optional("classes").map { try $0.array.map { try $0.int } } ?? [4, 7]
        kernelPerClass = try config.int(at: "kernel_per_class", default: 100)
        width = try config.int(at: "width", default: 100)
        depth = try config.int(at: "depth", default: 5)
        epochs = try config.int(at: "epochs", default: 10)
        batchSize = try config.int(at: "batch_size", default: 64)
        learningRate = Float(try config.double(at: "learning_rate", default: 1e-4))
        seed = UInt64(try config.int(at: "seed", default: 0))
        guard classes.count == 2, classes[0] != classes[1] else { throw config.error("classes must be two different classes, got \(classes)") }
        guard (1...5000).contains(kernelPerClass), (1...4096).contains(width), (1...64).contains(depth), (1...1000).contains(epochs),
              (1...4096).contains(batchSize), learningRate > 0 else {
            throw config.error("kernel_per_class 1...5000, width 1...4096, depth 1...64, epochs 1...1000, batch_size 1...4096, learning_rate > 0")
        }
    }

    func run(_ ctx: RunContext) throws {
        let trainSet = try ctx.dataset(train).relabeled(classes: classes)
        let testSet = try ctx.dataset(test).relabeled(classes: classes)
        let kernelSet = try trainSet.take(perClass: kernelPerClass)
        let y = kernelSet.labels.map { $0 == 1 ? 1.0 : -1.0 }
        let inputs = trainSet.images.shape.dropFirst().reduce(1, *)
        var net = try GatedNetwork(architecture: .fc(inputs: inputs, width: width, depth: depth, classes: 1), configuration: .dnn, seed: seed)
        net.initialiseBernoulli(sigma: (2 / Float(width)).squareRoot(), seed: seed &+ 1)
        var nus = [try PathKernel.nu(of: net, inputs: kernelSet.images, labels: y)]
        var trainer = Trainer(optimizer: RMSprop(), schedule: ConstantLearningRate(learningRate),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: batchSize, loss: .squaredSigned, seed: seed &+ 2))
        trainer.onEpochEnd = { _, model in
            guard let m = model as? GatedNetwork else { throw RecipeError("npk_dynamics: the trained model is not a gated network") }
            nus.append(try PathKernel.nu(of: m, inputs: kernelSet.images, labels: y))
        }
        let report = try trainer.fit(&net, train: try LabelledImages(images: trainSet.images, labels: trainSet.labels),
                                     test: try LabelledImages(images: testSet.images, labels: testSet.labels))
        for (k, v) in nus.enumerated() { ctx.record("\(id).nu.epoch\(k)", v) }
        ctx.record("\(id).nu_initial", nus.first!); ctx.record("\(id).nu_final", nus.last!)
        ctx.record("\(id).nu_ratio", nus.last! / nus.first!)
        ctx.record("\(id).test_accuracy", report.finalTestAccuracy)
        ctx.add(.plot(LinePlot(title: "\(id): nu = yᵀ H⁻¹ y during training", xLabel: "epoch", yLabel: "nu",
                               series: [LinePlot.Series(name: "nu", x: nus.indices.map(Double.init), y: nus, markers: true)]),
                      file: "\(id)-nu.svg", caption: "nu of the trace-normalised neural path kernel on \(2 * kernelPerClass) training images, after each epoch (epoch 0: initialisation)."))
        ctx.markdown(String(format: "nu: %.1f at initialisation, %.1f after %d epochs (ratio %.3f); test accuracy %.1f%% on %d images.",
                            nus.first!, nus.last!, epochs, nus.last! / nus.first!, report.finalTestAccuracy, testSet.count))
        if normPerClass > 0 { try kernelNorms(ctx, trainSet: trainSet, testSet: testSet) }
    }

    /// NeurIPS 2020 Figure 2, right: a DGN (feature and value networks of the same shape, soft gates
    /// sigmoid(beta q)) trained like the DNN; after every epoch, the trace and Frobenius norm of its
    /// value kernel (tangent kernel over the value network's weights) and feature kernel (over the
    /// feature network's weights, through the soft gates) on 2 x `normPerClass` training images.
    func kernelNorms(_ ctx: RunContext, trainSet: Dataset, testSet: Dataset) throws {
        let normSet = try trainSet.take(perClass: normPerClass)
        let inputs = trainSet.images.shape.dropFirst().reduce(1, *)
        var net = try GatedNetwork(architecture: .fc(inputs: inputs, width: width, depth: depth, classes: 1),
                                   configuration: .dgn(gate: .soft(beta: normGateBeta)), seed: seed &+ 3)
        net.initialiseBernoulli(sigma: (2 / Float(width)).squareRoot(), seed: seed &+ 4)
        func measure(_ m: GatedNetwork) throws -> [SymmetricMatrix] {
            try PathKernel.tangentKernels(of: m, inputs: normSet.images, parameterPrefixes: ["value.", "feature."])
        }
        var kernels = [try measure(net)]
        var trainer = Trainer(optimizer: RMSprop(), schedule: ConstantLearningRate(learningRate),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: batchSize, loss: .squaredSigned, seed: seed &+ 5))
        trainer.onEpochEnd = { _, model in
            guard let m = model as? GatedNetwork else { throw RecipeError("npk_dynamics: the trained model is not a gated network") }
            kernels.append(try measure(m))
        }
        let report = try trainer.fit(&net, train: try LabelledImages(images: trainSet.images, labels: trainSet.labels),
                                     test: try LabelledImages(images: testSet.images, labels: testSet.labels))
        let epochsAxis = kernels.indices.map(Double.init)
        var series: [LinePlot.Series] = []
        var table = "| epoch | trace K_value | trace K_feature | Frobenius K_value | Frobenius K_feature |\n|---|---|---|---|---|\n"
        for (name, g) in [("value_kernel", 0), ("feature_kernel", 1)] {
            let traces = kernels.map { $0[g].trace }, frobs = kernels.map { $0[g].frobeniusNorm }
            for (k, (t, f)) in zip(traces, frobs).enumerated() {
                ctx.record("\(id).\(name).trace.epoch\(k)", t); ctx.record("\(id).\(name).frobenius.epoch\(k)", f)
            }
            let label = g == 0 ? "value kernel" : "feature kernel"
            series.append(LinePlot.Series(name: "trace, \(label)", x: epochsAxis, y: traces, markers: true))
            series.append(LinePlot.Series(name: "Frobenius, \(label)", x: epochsAxis, y: frobs, markers: true, dashed: true))
        }
        for (k, km) in kernels.enumerated() {
            table += "| \(k) | " + String(format: "%.4g | %.4g | %.4g | %.4g |\n", km[0].trace, km[1].trace, km[0].frobeniusNorm, km[1].frobeniusNorm)
        }
        ctx.record("\(id).feature_over_value_trace_initial", kernels.first![1].trace / kernels.first![0].trace)
        ctx.record("\(id).feature_over_value_trace_final", kernels.last![1].trace / kernels.last![0].trace)
        ctx.record("\(id).dgn_test_accuracy", report.finalTestAccuracy)
        ctx.add(.plot(LinePlot(title: "\(id): value kernel and feature kernel (DGN, soft gates)", xLabel: "epoch", yLabel: "norm", series: series),
                      file: "\(id)-kernel-norms.svg",
                      caption: "Trace and Frobenius norm of the value kernel and the feature kernel of a DGN (soft gates, beta \(normGateBeta)) on \(2 * normPerClass) training images, after each epoch (epoch 0: initialisation)."))
        ctx.markdown(table + String(format: "\nThe DGN reaches %.1f%% test accuracy.", report.finalTestAccuracy))
    }
}
