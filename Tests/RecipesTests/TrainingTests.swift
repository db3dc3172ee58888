import XCTest
import Foundation
import SIMDCore
import Recipes

/// Synthetic, linearly separable two-class problem: label = 1[<w*, x> > 0] with a margin.
func separableProblem(count: Int, dimension: Int, seed: UInt64) throws -> LabelledImages {
    var directionRNG = SeededRNG(seed: 1_000 + UInt64(dimension))   // the same task for every sample seed
    let direction = (0..<dimension).map { _ in directionRNG.normal() }
    var rng = SeededRNG(seed: seed)
    var xs: [Float] = [], ys: [Int] = []
    while ys.count < count {
        let x = (0..<dimension).map { _ in rng.normal() }
        let s = zip(x, direction).reduce(0) { $0 + $1.0 * $1.1 }
        if abs(s) < 0.5 { continue }   // margin
        xs += x; ys.append(s > 0 ? 1 : 0)
    }
    return try LabelledImages(images: Tensor(shape: [count, dimension], scalars: xs), labels: ys)
}

final class TrainingTests: XCTestCase {
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    // MARK: Optimizers vs torch.optim

    /// Six steps against torch.optim: |got - want| <= 1e-9 + 1e-6 |want| element-wise, all finite.
    func runGolden<O: Optimizer>(_ name: String, _ optimizer: O, _ st: SafeTensors) throws -> Discrepancy {
        var opt = optimizer
        var params = ["p": try st.tensor("\(name).p0")]
        var worst = Discrepancy(tolerance: Tolerance(relative: 1e-6, absolute: 1e-9))
        for k in 0..<6 {
            let g = try st.tensor("\(name).g\(k)")
            let lr = try st.tensor("\(name).lr\(k)").scalars[0]
            try opt.step(&params, gradients: ["p": g], learningRate: lr)
            let want = try st.tensor("\(name).p\(k + 1)")
            worst.merge(Discrepancy(params["p"]!, want, tolerance: worst.tolerance))
        }
        print("optimizer golden \(name): \(worst)")
        return worst
    }

    func testOptimizersMatchPyTorch() throws {
        let st = try SafeTensors(contentsOf: Self.repositoryRoot.appendingPathComponent("Tests/Fixtures/training/optimizers.safetensors"))
        XCTAssertTrue(try runGolden("sgd", SGD(), st).holds)
        XCTAssertTrue(try runGolden("sgd_momentum", SGD(momentum: 0.9), st).holds)
        XCTAssertTrue(try runGolden("sgd_momentum_wd", SGD(momentum: 0.9, weightDecay: 5e-4), st).holds)
        XCTAssertTrue(try runGolden("adam", Adam(), st).holds)
        XCTAssertTrue(try runGolden("adam_wd", Adam(weightDecay: 1e-2), st).holds)
        XCTAssertTrue(try runGolden("rmsprop", RMSprop(), st).holds)
    }

    func testOptimizerRejectsMismatchedGradient() {
        var opt = Adam()
        var params = ["w": Tensor(zeros: [2, 3])]
        XCTAssertThrowsError(try opt.step(&params, gradients: ["w": Tensor(zeros: [3, 2])], learningRate: 0.1)) {
            XCTAssertTrue("\($0)".contains("'w'"), "\($0)")
        }
    }

    func testPaperBTableIISchedule() throws {
        let s = PiecewiseConstantSchedule.paperBTableII
        let probes: [(Int, Float)] = [(0, 0.01), (399, 0.01), (400, 0.1), (31_999, 0.1), (32_000, 0.01),
                                      (47_999, 0.01), (48_000, 0.001), (63_999, 0.001), (64_000, 0.001)]
        for (it, lr) in probes { XCTAssertEqual(s.learningRate(atIteration: it), lr, "iteration \(it)") }
        XCTAssertThrowsError(try PiecewiseConstantSchedule(boundaries: [10, 5], values: [1, 2, 3]))
        XCTAssertThrowsError(try PiecewiseConstantSchedule(boundaries: [10], values: [1]))

        // Compressed to a short run: the same values at the same fractions of the run.
        let short = try PiecewiseConstantSchedule.paperBTableII(scaledTo: 250)
        XCTAssertEqual(short.boundaries, [2, 125, 187])
        XCTAssertEqual(short.values, s.values)
        let shortProbes: [(Int, Float)] = [(0, 0.01), (1, 0.01), (2, 0.1), (124, 0.1), (125, 0.01), (186, 0.01), (187, 0.001), (249, 0.001)]
        for (it, lr) in shortProbes { XCTAssertEqual(short.learningRate(atIteration: it), lr, "scaled, iteration \(it)") }
        // Scaling the paper's own length gives the paper's schedule back.
        XCTAssertEqual(try PiecewiseConstantSchedule.paperBTableII(scaledTo: 64_000), s)
        XCTAssertEqual(try PiecewiseConstantSchedule.paperBTableII(scaledTo: 4).boundaries, [1, 2, 3])
        XCTAssertThrowsError(try PiecewiseConstantSchedule.paperBTableII(scaledTo: 3)) { e in
            XCTAssertTrue("\(e)".contains("at least 4 iterations"), "\(e)")
        }
    }

    // MARK: Learning on a separable problem

    func trainSmall(_ configuration: GatingConfiguration, seed: UInt64 = 3, epochs: Int = 8) throws -> (TrainingReport, GatedNetwork, Double) {
        let train = try separableProblem(count: 256, dimension: 8, seed: 11)
        let test = try separableProblem(count: 128, dimension: 8, seed: 12)
        var net = try GatedNetwork(architecture: .fc(inputs: 8, width: 16, depth: 2, classes: 2),
                                   configuration: configuration, seed: seed)
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(1e-2),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: 32, seed: seed))
        let initial = try trainer.evaluate(net, train).loss
        var steps = 0
        let report = try trainer.fit(&net, train: train, test: test) { p in
            steps += 1
            XCTAssertEqual(p.batchesPerEpoch, 8)
        }
        XCTAssertEqual(steps, 8 * epochs)
        XCTAssertEqual(report.iterations, 8 * epochs)
        return (report, net, initial)
    }

    func testDNNLearnsSeparableProblem() throws {
        let (report, _, initial) = try trainSmall(.dnn)
        let last = report.epochs.last!
        print("DNN: initial train loss \(initial), final train loss \(last.trainLoss), test accuracy \(last.testAccuracy)% (best \(report.bestTestAccuracy)%)")
        XCTAssertLessThan(last.trainLoss, 0.5 * initial)
        XCTAssertGreaterThan(last.testAccuracy, 85)
    }

    func testDLGNxOneLearnsSeparableProblem() throws {
        let (report, _, initial) = try trainSmall(.dlgn(valueInput: .ones))
        let last = report.epochs.last!
        print("DLGN(x,1): initial train loss \(initial), final train loss \(last.trainLoss), test accuracy \(last.testAccuracy)% (best \(report.bestTestAccuracy)%)")
        XCTAssertLessThan(last.trainLoss, 0.5 * initial)
        XCTAssertGreaterThan(last.testAccuracy, 80)
    }

    // MARK: Determinism

    func testTrainingIsDeterministicAcrossRunsAndThreadCounts() throws {
        let (a, netA, _) = try Parallel.$threadCount.withValue(1) { try trainSmall(.dgn(valueInput: .same), epochs: 2) }
        let (b, netB, _) = try Parallel.$threadCount.withValue(2) { try trainSmall(.dgn(valueInput: .same), epochs: 2) }
        let (c, netC, _) = try trainSmall(.dgn(valueInput: .same), epochs: 2)
        XCTAssertEqual(a, b); XCTAssertEqual(a, c)
        XCTAssertEqual(netA.parameters, netB.parameters)
        XCTAssertEqual(netA.parameters, netC.parameters)
        let (d, _, _) = try trainSmall(.dgn(valueInput: .same), seed: 4, epochs: 2)
        XCTAssertNotEqual(a.epochs.map(\.trainLoss), d.epochs.map(\.trainLoss), "a different seed must change the run")
    }

    func testShuffledBatchesArePermutationsPerEpoch() throws {
        let data = try separableProblem(count: 10, dimension: 2, seed: 1)
        let source = try ShuffledBatches(data, batchSize: 4, seed: 9)
        XCTAssertEqual(source.batchCount, 3)
        func firstFeatures(_ epoch: Int) throws -> [Float] {
            var seen: [Float] = [], sizes: [Int] = []
            try source.forEachBatch(epoch: epoch) { x, y in
                sizes.append(y.count)
                for i in 0..<y.count { seen.append(x[i, 0]) }
            }
            XCTAssertEqual(sizes, [4, 4, 2])
            return seen
        }
        let e0 = try firstFeatures(0), e0again = try firstFeatures(0), e1 = try firstFeatures(1)
        XCTAssertEqual(e0, e0again)
        XCTAssertNotEqual(e0, e1)
        XCTAssertEqual(e0.sorted(), (0..<10).map { data.images[$0, 0] }.sorted())
        XCTAssertThrowsError(try ShuffledBatches(data, batchSize: 0))
    }

    func testTrainerAcceptsDataPipelineBatches() throws {
        let train = try separableProblem(count: 64, dimension: 4, seed: 5)
        let test = try separableProblem(count: 128, dimension: 4, seed: 6)
        let ds = try Dataset(name: "separable", images: train.images.reshaped([64, 4, 1, 1]), labels: train.labels, classNames: ["0", "1"])
        let testSet = try Dataset(name: "separable-test", images: test.images.reshaped([128, 4, 1, 1]), labels: test.labels, classNames: ["0", "1"])
        let loader = try BatchIterator(dataset: ds, batchSize: 16, seed: 3)
        let evalLoader = try BatchIterator(dataset: testSet, batchSize: 64, seed: 0, shuffle: false)
        XCTAssertEqual(loader.batchCount, 4)
        // FC nets flatten [N, 4, 1, 1] examples.
        var net = try GatedNetwork(architecture: .fc(inputs: 4, width: 8, depth: 2, classes: 2), configuration: .dnn, seed: 1)
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(1e-2),
                              configuration: TrainingConfiguration(epochs: 10, batchSize: 16))
        let before = try trainer.evaluate(net, evalLoader)
        let report = try trainer.fit(&net, train: loader, test: evalLoader)
        print("BatchIterator-fed DNN: test accuracy \(before.accuracy)% -> \(report.finalTestAccuracy)%, loss \(before.loss) -> \(report.epochs.last!.testLoss)")
        XCTAssertEqual(report.iterations, 40)
        XCTAssertGreaterThan(report.finalTestAccuracy, 85)
        XCTAssertLessThan(report.epochs.last!.testLoss, 0.6 * before.loss)
        var wrong = try GatedNetwork(architecture: .fc(inputs: 5, width: 8, depth: 2, classes: 2), configuration: .dnn, seed: 1)
        XCTAssertThrowsError(try trainer.fit(&wrong, train: loader, test: evalLoader)) { XCTAssertTrue("\($0)".contains("GatedNetwork.forward"), "\($0)") }
    }

    func testBernoulliInitialisation() throws {
        var net = try GatedNetwork(architecture: .fc(inputs: 4, width: 100, depth: 3, classes: 1), configuration: .dnn, seed: 1)
        let sigma = (2 / Float(100)).squareRoot()
        net.initialiseBernoulli(sigma: sigma, seed: 3)
        let w = net.parameters["layers.1.weight"]!
        XCTAssertTrue(w.scalars.allSatisfy { $0 == sigma || $0 == -sigma })
        let positive = w.scalars.filter { $0 > 0 }.count
        XCTAssertEqual(Double(positive) / Double(w.count), 0.5, accuracy: 0.03)
    }

    /// Tiny image task: class 1 images carry a horizontal stripe, class 0 a vertical one, at a random
    /// position, under unit Gaussian noise.
    static func stripes(count: Int, size: Int, seed: UInt64) throws -> LabelledImages {
        var rng = SeededRNG(seed: seed)
        var x = rng.normalTensor([count, 3, size, size], std: 0.5)
        var labels: [Int] = []
        for n in 0..<count {
            let label = rng.below(2), at = rng.below(size)
            for c in 0..<3 { for k in 0..<size {
                if label == 1 { x[n, c, at, k] += 1.5 } else { x[n, c, k, at] += 1.5 }
            } }
            labels.append(label)
        }
        return try LabelledImages(images: x, labels: labels)
    }

    func trainConv(_ configuration: GatingConfiguration, epochs: Int) throws -> (TrainingReport, GatedNetwork) {
        let train = try Self.stripes(count: 128, size: 8, seed: 1), test = try Self.stripes(count: 128, size: 8, seed: 2)
        var net = try GatedNetwork(architecture: .c4gap(inputChannels: 3, imageSize: 8, width: 8, classes: 2),
                                   configuration: configuration, seed: 5)
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(3e-3),
                              configuration: TrainingConfiguration(epochs: epochs, batchSize: 16, seed: 6))
        return (try trainer.fit(&net, train: train, test: test), net)
    }

    func testC4GAPDLGNLearnsAndIsThreadCountIndependent() throws {
        let (a, netA) = try Parallel.$threadCount.withValue(1) { try trainConv(.dlgn(valueInput: .ones), epochs: 12) }
        let (b, netB) = try Parallel.$threadCount.withValue(2) { try trainConv(.dlgn(valueInput: .ones), epochs: 12) }
        print("C4GAP DLGN(x,1) stripes: train loss \(a.epochs.first!.trainLoss) -> \(a.epochs.last!.trainLoss), test accuracy \(a.epochs.map(\.testAccuracy))")
        XCTAssertEqual(a, b)
        XCTAssertEqual(netA.parameters, netB.parameters)
        XCTAssertLessThan(a.epochs.last!.trainLoss, 0.7 * a.epochs.first!.trainLoss)
        XCTAssertGreaterThan(a.finalTestAccuracy, 75)
    }

    // MARK: Frozen feature networks (NeurIPS 2020 regimes)

    func testFixedRandomIdenticalRegimeFreezesFeatures() throws {
        let arch = GatedArchitecture.fc(inputs: 8, width: 16, depth: 2, classes: 2)
        var net = try GatedNetwork.fullyConnected(arch, regime: .fixedRandomIdentical, seed: 5)
        XCTAssertEqual(net.parameters["feature.layers.1.weight"], net.parameters["value.layers.1.weight"])
        XCTAssertEqual(net.frozen, ["feature.layers.0.weight", "feature.layers.1.weight"])
        let before = net.parameters
        let data = try separableProblem(count: 64, dimension: 8, seed: 1)
        var trainer = Trainer(optimizer: SGD(momentum: 0.9), schedule: ConstantLearningRate(0.1),
                              configuration: TrainingConfiguration(epochs: 1, batchSize: 16))
        _ = try trainer.fit(&net, train: data, test: data)
        XCTAssertEqual(net.parameters["feature.layers.0.weight"], before["feature.layers.0.weight"])
        XCTAssertNotEqual(net.parameters["value.layers.0.weight"], before["value.layers.0.weight"])

        let independent = try GatedNetwork.fullyConnected(arch, regime: .fixedRandomIndependent, seed: 5)
        XCTAssertNotEqual(independent.parameters["feature.layers.1.weight"], independent.parameters["value.layers.1.weight"])
        let relu = try GatedNetwork.fullyConnected(arch, regime: .relu, seed: 9)
        let fl = try GatedNetwork.fullyConnected(arch, regime: .fixedLearnt(trainedReLU: relu.parameters), seed: 5)
        XCTAssertEqual(fl.parameters["feature.layers.0.weight"], relu.parameters["layers.0.weight"])
        XCTAssertThrowsError(try GatedNetwork.fullyConnected(arch, regime: .fixedLearnt(trainedReLU: [:]), seed: 5))
    }

    // MARK: Checkpoints

    func testCheckpointRoundTrip() throws {
        let arch = GatedArchitecture.vgg16(inputChannels: 3, imageSize: 32, classes: 3, widthDivisor: 32)
        var net = try GatedNetwork(architecture: arch, configuration: .dlgn(valueInput: .ones), seed: 2)
        // one training step so BatchNorm running statistics differ from their initial values
        var rng = SeededRNG(seed: 8)
        let x = rng.normalTensor([4, 3, 32, 32])
        var trainer = Trainer(optimizer: SGD(momentum: 0.9), schedule: ConstantLearningRate(0.01),
                              configuration: TrainingConfiguration(epochs: 1, batchSize: 4))
        _ = try trainer.step(&net, x, [0, 1, 2, 0], learningRate: 0.01)
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gated-ckpt-\(getpid()).safetensors")
        defer { try? FileManager.default.removeItem(at: url) }
        try Trainer<SGD>.saveCheckpoint(net, to: url)
        let back = try GatedNetwork.load(architecture: arch, configuration: .dlgn(valueInput: .ones), from: url)
        let t1 = Tape(recording: false), t2 = Tape(recording: false)
        let a = t1.value(try net.forward(on: t1, input: x, training: false).logits)
        let b = t2.value(try back.forward(on: t2, input: x, training: false).logits)
        XCTAssertEqual(a, b)
        XCTAssertThrowsError(try GatedNetwork.load(architecture: arch, configuration: .dnn, from: url))
    }
}
