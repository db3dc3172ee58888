import XCTest
import Foundation
import SIMDCore
import Recipes

/// Longer measurements, run on request only (`GATED_EXPERIMENTS=1 swift test -c release --filter
/// GatedExperimentTests`); they print the numbers the report quotes and assert the qualitative claims.
final class GatedExperimentTests: XCTestCase {
    func requireOptIn() throws {
        guard ProcessInfo.processInfo.environment["GATED_EXPERIMENTS"] == "1" else {
            throw XCTSkip("set GATED_EXPERIMENTS=1 to run the MNIST-5k measurements (minutes)")
        }
    }

    /// NeurIPS 2020 Table 1 in miniature: FC 5 x 128 on the shipped MNIST-5k (4,000 train / 1,000
    /// test, pixels in [0, 1]), Adam 3e-4, batch 32, `GATED_EPOCHS` epochs (default 5).
    func testNeurIPS2020Table1RegimesOnMNIST5k() throws {
        try requireOptIn()
        let epochs = ProcessInfo.processInfo.environment["GATED_EPOCHS"].flatMap(Int.init) ?? 5
        let train = try LabelledImages(try MNIST5k.load(split: .train))
        let test = try LabelledImages(try MNIST5k.load(split: .test))
        let arch = GatedArchitecture.fc(inputs: 784, width: 128, depth: 5, classes: 10)
        func run(_ regime: FCRegime, seed: UInt64) throws -> (GatedNetwork, TrainingReport) {
            var net = try GatedNetwork.fullyConnected(arch, regime: regime, seed: seed)
            var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(3e-4),
                                  configuration: TrainingConfiguration(epochs: epochs, batchSize: 32, seed: seed))
            let start = Date()
            let report = try trainer.fit(&net, train: train, test: test)
            print(String(format: "MNIST-5k %@: final test %.2f%%, best %.2f%%, train loss %.4f, %d epochs in %.1f s",
                         "\(regime)", report.finalTestAccuracy, report.bestTestAccuracy, report.epochs.last!.trainLoss,
                         epochs, Date().timeIntervalSince(start)))
            return (net, report)
        }
        let (relu, reluReport) = try run(.relu, seed: 1)
        let (_, fr2) = try run(.fixedRandomIndependent, seed: 2)
        let (_, frdi) = try run(.fixedRandomIdentical, seed: 2)
        let (_, fl) = try run(.fixedLearnt(trainedReLU: relu.parameters), seed: 3)
        let (_, dl) = try run(.decoupledLearnt(beta: 10), seed: 4)
        // Learnt gates beat fixed random gates (the paper's point).
        XCTAssertGreaterThan(fl.finalTestAccuracy, fr2.finalTestAccuracy)
        XCTAssertGreaterThan(reluReport.finalTestAccuracy, fr2.finalTestAccuracy)
        XCTAssertGreaterThan(dl.finalTestAccuracy, 80)
        XCTAssertGreaterThan(frdi.finalTestAccuracy, 80)
    }
}
