import XCTest
import Foundation
import Recipes

/// Validation before anything runs: a name outside its closed set (optimizer, schedule, regime,
/// architecture, gate, …) and a step input of the wrong type are errors at the offending value's
/// file:line:column, listing the valid names or saying what was expected and what was found.
final class RecipeValidationTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-validation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    /// The error of running `text` as a recipe (not a dry run: validation must stop it before any
    /// step runs and before the run directory is created).
    func validationError(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> (path: String, message: String) {
        let path = tmp.appendingPathComponent("r.yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let out = tmp.appendingPathComponent("run")
        do {
            _ = try RecipeEngine.run(RunSettings(recipePath: path, outDirectory: out.path, quiet: true), verify: false, updateGoldens: false)
            XCTFail("expected a validation error", file: file, line: line)
            return (path, "")
        } catch {
            print("error: \(error)")
            XCTAssertFalse(error is StepFailure, "a step ran: \(error)", file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "the run directory was created", file: file, line: line)
            return (path, "\(error)")
        }
    }

    /// "line:column" of the first occurrence of `token` in `text` (both 1-based).
    func position(of token: String, in text: String) -> String {
        for (i, l) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            if let r = l.range(of: token) { return "\(i + 1):\(l.distance(from: l.startIndex, to: r.lowerBound) + 1)" }
        }
        return "?"
    }

    /// A recipe: a data set, then `step` (YAML lines indented under the cell list).
    func recipe(_ step: String) -> String {
        """
        title: names
        cells:
          - step: load_data
            id: d
            with: {dataset: mnist5k, split: train, per_class: 1}
        \(step)
        """
    }

    // MARK: Closed sets of names

    func testMisspeltNamesListTheValidOnes() throws {
        let cases: [(step: String, bad: String, key: String, message: String)] = [
            ("  - step: train\n    id: t\n    with:\n      model: mnist_cnn\n      train: d\n      test: d\n      epochs: 1\n      optimizer: adma",
             "adma", "cells[1].with.optimizer", "optimizer must be one of adam, sgd, rmsprop, got 'adma'; did you mean 'adam'?"),
            ("  - step: train\n    id: t\n    with:\n      model: mnist_cnn\n      train: d\n      test: d\n      epochs: 1\n      schedule: paper_b_tabel2",
             "paper_b_tabel2", "cells[1].with.schedule",
             "schedule must be one of constant, paper_b_table2, paper_b_table2_scaled, got 'paper_b_tabel2'; did you mean 'paper_b_table2'?"),
            ("  - step: train\n    id: t\n    with:\n      model: {architecture: fc, regime: frii}\n      train: d\n      test: d\n      epochs: 1",
             "frii", "cells[1].with.model.regime", "regime must be one of relu, fr_ii, fr_di, fl, dl, got 'frii'; did you mean 'fr_ii'?"),
            ("  - step: train\n    id: t\n    with:\n      model: {architecture: c4gp}\n      train: d\n      test: d\n      epochs: 1",
             "c4gp", "cells[1].with.model.architecture",
             "architecture must be one of fc, c1gap, c4gap, vgg16, resnet110, got 'c4gp'; did you mean 'c4gap'?"),
            ("  - step: train\n    id: t\n    with:\n      model: {architecture: c4gap, variant: dlgn, gate: sotf}\n      train: d\n      test: d\n      epochs: 1",
             "sotf", "cells[1].with.model.gate", "gate must be one of hard, soft, got 'sotf'; did you mean 'soft'?"),
            ("  - step: train\n    id: t\n    with:\n      model: {architecture: c4gap, variant: dlgm}\n      train: d\n      test: d\n      epochs: 1",
             "dlgm", "cells[1].with.model.variant", "variant must be one of dnn, dgn, dlgn, dlgn_sf, got 'dlgm'; did you mean 'dlgn'?"),
            ("  - step: train\n    id: t\n    with:\n      model: mnist_cnn\n      train: d\n      test: d\n      epochs: 1\n      loss: squard",
             "squard", "cells[1].with.loss", "loss must be one of cross_entropy, squared, got 'squard'; did you mean 'squared'?"),
            ("  - step: load_model\n    id: m\n    with:\n      architecture: resnet5\n      weights: synthetic",
             "resnet5", "cells[1].with.architecture",
             "architecture must be one of resnet18, resnet34, resnet50, resnet101, resnet152, vgg11, vgg13, vgg16, vgg19, vgg11_bn, vgg13_bn, vgg16_bn, vgg19_bn, densenet121, densenet161, densenet169, densenet201, got 'resnet5'; did you mean 'resnet50'?"),
            ("  - step: load_model\n    id: m\n    with:\n      architecture: resnet50\n      weights: torchvison",
             "torchvison", "cells[1].with.weights", "weights must be one of torchvision, timm, synthetic, got 'torchvison'; did you mean 'torchvision'?"),
            ("  - step: train\n    id: t\n    with: {model: mnist_cnn, train: d, test: d, epochs: 1}\n  - step: explain\n    with:\n      model: t\n      data: d\n      methods: [{method: excitation_pullback, gate: sigmod}]",
             "sigmod", "cells[2].with.methods[0].gate", "gate must be one of hard, sigmoid, normal_cdf, got 'sigmod'; did you mean 'sigmoid'?"),
            ("  - step: train\n    id: t\n    with: {model: mnist_cnn, train: d, test: d, epochs: 1}\n  - step: explain\n    with:\n      model: t\n      data: d\n      methods: [gradient]\n      colormap: divergng",
             "divergng", "cells[2].with.colormap", "colormap must be one of diverging, none, got 'divergng'; did you mean 'diverging'?"),
            ("  - step: train\n    id: t\n    with: {model: mnist_cnn, train: d, test: d, epochs: 1}\n  - step: ascend\n    with:\n      model: t\n      data: d\n      targets: [1]\n      method: gradient\n      show: perturbd",
             "perturbd", "cells[2].with.show", "show must be one of difference, perturbed, both, got 'perturbd'; did you mean 'perturbed'?"),
        ]
        for c in cases {
            let text = recipe(c.step)
            let (path, message) = try validationError(text)
            XCTAssertEqual(message, "\(path):\(position(of: c.bad, in: text)): key '\(c.key)': \(c.message)")
        }
    }

    // MARK: Typed step inputs

    func testAStepInputOfTheWrongTypeIsAValidationError() throws {
        let cnn = "  - step: train\n    id: cnn\n    with: {model: mnist_cnn, train: d, test: d, epochs: 1}\n"
        let dlgn = "  - step: train\n    id: dlgn\n    with: {model: {architecture: fc, width: 8, depth: 2, variant: dlgn}, train: d, test: d, epochs: 1}\n"
        let claim = "  - step: check\n    id: c\n    with: {claim: \"d.count > 0\"}\n"
        let cases: [(steps: String, written: String, key: String, message: String)] = [
            // A trained DLGN is a GatedNetwork; a pullback needs a Classifier (today's run would train first, then fail).
            (dlgn + "  - step: explain\n    with:\n      model: dlgn\n      data: d\n      methods: [gradient]",
             "model: dlgn", "cells[2].with.model", "step 'dlgn' produced GatedNetwork, not Classifier"),
            (cnn + "  - step: explain\n    with:\n      model: cnn\n      data: cnn\n      methods: [gradient]",
             "data: cnn", "cells[2].with.data", "step 'cnn' produced Classifier, not Dataset"),
            (cnn + dlgn + "  - step: ascend\n    with:\n      model: cnn\n      data: d\n      targets: [1]\n      method: gradient\n      judge: dlgn",
             "judge: dlgn", "cells[3].with.judge", "step 'dlgn' produced GatedNetwork, not Classifier"),
            ("  - step: train\n    id: fl\n    with:\n      model: {architecture: fc, regime: fl}\n      train: d\n      test: d\n      epochs: 1\n      gates_from: d",
             "gates_from: d", "cells[1].with.gates_from", "step 'd' produced Dataset, not GatedNetwork"),
            (claim + "  - step: train\n    with:\n      model: mnist_cnn\n      train: c\n      test: d\n      epochs: 1",
             "train: c", "cells[2].with.train", "step 'c' produces nothing for later steps; `train` needs a Dataset"),
        ]
        for c in cases {
            let text = recipe(c.steps)
            let (path, message) = try validationError(text)
            let at = position(of: c.written, in: text).split(separator: ":").map { Int($0)! }
            let column = at[1] + c.written.distance(from: c.written.startIndex, to: c.written.firstIndex(of: " ")!) + 1
            XCTAssertEqual(message, "\(path):\(at[0]):\(column): key '\(c.key)': \(c.message)")
        }
    }
}
