import XCTest
import Foundation
import SIMDCore
import Recipes

/// Paper B's table recipes (dlgn-table1/2/3, npf-table1) and the `table` step.
final class PaperBRecipeTests: XCTestCase {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let recipes = ["dlgn-table1", "dlgn-table2", "dlgn-table3", "npf-table1"]

    static func path(_ name: String) -> String { root.appendingPathComponent("recipes/\(name).yaml").path }

    // MARK: Validation

    /// Every recipe parses and validates (keys, parameter types, step configs, dependencies) at both scales.
    func testRecipesValidateAtBothScales() throws {
        for name in Self.recipes {
            for scale in ["ci", "paper"] {
                let s = RunSettings(recipePath: Self.path(name), overrides: ["scale=\(scale)"], dryRun: true)
                let r = try RecipeEngine.run(s, verify: false, updateGoldens: false)
                XCTAssertTrue(r.summary.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "scale = \(scale)" },
                              "\(name) at \(scale): \(r.summary.prefix(300))")
                XCTAssertTrue(r.summary.contains("(dry run: nothing was executed)"))
            }
        }
        // Paper scale chooses the paper's data and sizes.
        let t1 = try RecipeEngine.resolvedDescription(RunSettings(recipePath: Self.path("dlgn-table1"), overrides: ["scale=paper"], dryRun: true))
        XCTAssertTrue(t1.contains("cifar10"), t1)
        XCTAssertTrue(t1.contains("permutations: 23"), t1)
        XCTAssertTrue(t1.contains("width: 128"), t1)
        let t2 = try RecipeEngine.resolvedDescription(RunSettings(recipePath: Self.path("dlgn-table2"), overrides: ["scale=paper", "dataset=cifar100"], dryRun: true))
        XCTAssertTrue(t2.contains("cifar100") && t2.contains("paper_b_table2") && t2.contains("depth: 110"), t2)
        let n1 = try RecipeEngine.resolvedDescription(RunSettings(recipePath: Self.path("npf-table1"), overrides: ["scale=paper"], dryRun: true))
        XCTAssertTrue(n1.contains("dataset: mnist") && n1.contains("regime: fl") && n1.contains("gates_from: relu_adam"), n1)
    }

    /// Bad configurations of the new keys are errors naming the key.
    func testNewKeysRejectBadConfigurations() throws {
        func dryRun(_ body: String) throws {
            let url = FileManager.default.temporaryDirectory.appendingPathComponent("paperb-bad-\(UUID().uuidString).yaml")
            try ("title: bad\ncells:\n  - step: load_data\n    id: d\n    with: {dataset: mnist5k, split: train}\n" + body).write(to: url, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: url) }
            _ = try RecipeEngine.run(RunSettings(recipePath: url.path, dryRun: true), verify: false, updateGoldens: false)
        }
        let cases: [(String, String)] = [
            ("  - step: train\n    with: {model: {architecture: fc, regime: fl}, train: d, test: d, epochs: 1}\n", "gates_from"),
            ("  - step: train\n    with: {model: {architecture: c4gap, regime: relu}, train: d, test: d, epochs: 1}\n", "regime is defined for architecture fc"),
            ("  - step: train\n    with: {model: {architecture: fc, regime: frii}, train: d, test: d, epochs: 1}\n", "regime must be one of"),
            ("  - step: train\n    with: {model: {architecture: c4gap, variant: dnn}, train: d, test: d, epochs: 1, permutations: 3}\n", "permutations needs a gated network"),
            ("  - step: train\n    with: {model: {architecture: resnet110, depth: 9}, train: d, test: d, epochs: 1}\n", "6n+2"),
            ("  - step: table\n    with: {rows: [{label: a, metric: x, expr: \"y\"}]}\n", "one of metric, expr or mean_of"),
            ("  - step: table\n    with: {rows: [{label: a, expr: \"y +\"}]}\n", "claim"),
            ("  - step: table\n    with: {columns: [A, B], rows: [{label: a, cells: [{metric: x}]}]}\n", "1 cells for 2 columns"),
        ]
        for (body, expected) in cases {
            XCTAssertThrowsError(try dryRun(body), expected) { e in
                XCTAssertTrue("\(e)".contains(expected), "expected '\(expected)' in: \(e)")
            }
        }
    }

    // MARK: The table step

    func testTableStepRendersKnownTable() throws {
        let metrics: [String: Double] = ["dnn.test_accuracy": 80, "dnn.test_accuracy_std": 0.25,
                                         "dlgn.test_accuracy": 72, "p1.acc": 70, "p2.acc": 74, "p3.acc": 75]
        let yaml = """
        caption: test
        paper_for: cifar100
        rows:
          - {label: DNN, metric: dnn.test_accuracy, std_metric: dnn.test_accuracy_std, paper: {cifar10: "80.5±0.4", cifar100: "51.8±0.4"}}
          - {label: DLGN, metric: dlgn.test_accuracy}
          - {label: "DLGN/DNN", expr: "dlgn.test_accuracy / dnn.test_accuracy * 100", name: ratio, paper: "93.66"}
          - {label: "permuted", mean_of: [p1.acc, p2.acc, p3.acc], name: perm}
          - {label: "perm / DNN", expr: "table.perm / dnn.test_accuracy", decimals: 3}
        """
        let (t, derived) = try ResultTable.render(config: yaml, metrics: metrics)
        print(t.markdown())
        XCTAssertEqual(t.headers, ["model", "measured (mean ± std)", "paper (cifar100)"])
        XCTAssertEqual(t.rows.map { $0.map(\.text) }, [
            ["DNN", "80.00 ± 0.25", "51.8±0.4"],
            ["DLGN", "72.00", "–"],
            ["DLGN/DNN", "90.00", "93.66"],
            ["permuted", "73.00 ± 2.65", "–"],   // mean 73, sample std sqrt((9+1+4)/2) = 2.6458
            ["perm / DNN", "0.912", "–"],
        ])
        XCTAssertEqual(derived.map(\.name), ["table.ratio", "table.perm", "table.perm_dnn"])
        XCTAssertEqual(derived[0].value, 90, accuracy: 1e-9)
        XCTAssertEqual(derived[1].value, 73, accuracy: 1e-9)
        XCTAssertEqual(derived[2].value, 73.0 / 80.0, accuracy: 1e-9)

        // Wide layout: one measured/paper pair per column; a mapping falls back to its first entry.
        let wide = """
        columns: [SGD, Adam]
        label_header: regime
        rows:
          - label: ReLU
            cells: [{metric: dnn.test_accuracy, paper: "97.85"}, {metric: dlgn.test_accuracy, paper: {cifar10: "98.14"}}]
          - label: gap
            cells: [{expr: "dnn.test_accuracy - dlgn.test_accuracy", name: gap}, {}]
        """
        let (w, d2) = try ResultTable.render(config: wide, id: "t2", metrics: metrics)
        print(w.markdown())
        XCTAssertEqual(w.headers, ["regime", "SGD measured", "SGD paper (cifar10)", "Adam measured", "Adam paper (cifar10)"])
        XCTAssertEqual(w.rows.map { $0.map(\.text) }, [["ReLU", "80.00", "97.85", "72.00", "98.14"], ["gap", "8.00", "–", "–", "–"]])
        XCTAssertEqual(d2.map(\.name), ["t2.gap"])

        // A metric no step recorded is an error naming it.
        XCTAssertThrowsError(try ResultTable.render(config: "rows: [{label: x, metric: nope.acc}]", metrics: metrics)) { e in
            XCTAssertTrue("\(e)".contains("nope.acc"), "\(e)")
        }
    }

    // MARK: The ci-scale recipes, verified against their goldens

    /// Runs all four recipes at `scale: ci` with golden verification (as `runner verify`), prints
    /// their tables and claims, and checks the permutation bookkeeping of Table I.
    func testCIScaleRecipesVerify() throws {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("paperb-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: base) }
        for name in Self.recipes {
            let t0 = Date()
            let s = RunSettings(recipePath: Self.path(name), outDirectory: base.appendingPathComponent(name).path)
            let r = try RecipeEngine.run(s, verify: true, updateGoldens: false)
            let seconds = Date().timeIntervalSince(t0)
            let report = try String(contentsOf: r.directory.appendingPathComponent("report.md"), encoding: .utf8)
            let tables = report.components(separatedBy: "\n").filter { $0.hasPrefix("|") && !$0.contains("metric") }
            print("=== \(name) (ci scale, \(String(format: "%.1f", seconds)) s)")
            let table = report.components(separatedBy: "\n\n").first { $0.contains("measured") && $0.hasPrefix("|") } ?? tables.joined(separator: "\n")
            print(table)
            for line in r.summary.components(separatedBy: "\n") where line.hasPrefix("claim") || line.hasPrefix("golden") || line.hasPrefix("verify") { print(line) }
            XCTAssertTrue(r.verificationPassed, "\(name): \(r.summary.components(separatedBy: "\n").filter { $0.contains("golden") }.joined(separator: "\n"))")
            if name == "dlgn-table1" {
                let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: r.directory.appendingPathComponent("metrics.json"))) as! [String: Double]
                // The permuted step's mean is the mean of its three permutations.
                let ps = (1...3).map { metrics["dlgn_x1_perm.perm\($0).test_accuracy"]! }
                XCTAssertEqual(metrics["dlgn_x1_perm.test_accuracy"]!, ps.reduce(0, +) / 3, accuracy: 1e-9)
                XCTAssertNil(metrics["dlgn_x1_perm.perm4.test_accuracy"])
                XCTAssertEqual(metrics["table1.ratio"]!, metrics["dlgn_x1.test_accuracy"]! / metrics["dnn.test_accuracy"]! * 100, accuracy: 1e-9)
            }
        }
    }

    // MARK: Paper-scale cost (opt-in: PAPER_B_TIMING=1)

    /// Times training of C4GAP width 128 on CIFAR-10-shaped data (3x32x32, random pixels, 10
    /// classes): `images` images, one epoch, Adam, batch 32; prints seconds per image and the
    /// extrapolation to 50,000. Opt-in because it takes a minute or more on two cores.
    func testPaperScaleEpochCost() throws {
        guard ProcessInfo.processInfo.environment["PAPER_B_TIMING"] != nil else {
            throw XCTSkip("set PAPER_B_TIMING=1 to time a paper-scale C4GAP epoch")
        }
        let images = Int(ProcessInfo.processInfo.environment["PAPER_B_TIMING_IMAGES"] ?? "") ?? 256
        var rng = SeededRNG(seed: 7)
        let x = Tensor(shape: [images, 3, 32, 32]) { _ in rng.normal() }
        let data = try LabelledImages(images: x, labels: (0..<images).map { $0 % 10 })
        let test = try LabelledImages(images: Tensor(shape: [32, 3, 32, 32]) { _ in rng.normal() }, labels: (0..<32).map { $0 % 10 })
        let arch = GatedArchitecture.c4gap(inputChannels: 3, imageSize: 32, width: 128, classes: 10)
        for (label, config) in [("DNN", GatingConfiguration.dnn), ("DGN(x,x)", GatingConfiguration.dgn(valueInput: .same))] {
            var net = try GatedNetwork(architecture: arch, configuration: config, seed: 0)
            var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(3e-4),
                                  configuration: TrainingConfiguration(epochs: 1, batchSize: 32, seed: 0))
            let t0 = Date()
            let report = try trainer.fit(&net, train: data, test: test)
            let seconds = Date().timeIntervalSince(t0)
            XCTAssertTrue(report.epochs[0].trainLoss.isFinite)
            print(String(format: "C4GAP-128 %@: %d images in %.1f s = %.1f ms/image; 50,000-image epoch ≈ %.0f min (extrapolated)",
                         label, images, seconds, 1000 * seconds / Double(images), seconds / Double(images) * 50_000 / 60))
        }
    }
}
