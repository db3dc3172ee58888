import XCTest
import Foundation
import Recipes

/// A recipe's training runs are units of work: listed with stable keys, split over shards by
/// estimated cost, each written whole into the run directory's store, and merged by a plain run
/// into exactly the metrics and report a single process writes.
final class ShardTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("shards-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    /// Two train steps on a tiny MNIST subset: 2 runs of a DNN, 1 run of a DGN per each of 2
    /// layer permutations — 4 units; a table of both.
    func recipe() throws -> String {
        let url = tmp.appendingPathComponent("tiny.yaml")
        try """
        title: "Tiny sharded recipe"
        parameters: {seed: 0, runs: {default: 2, min: 1}}
        cells:
          - step: load_data
            id: train_set
            with: {dataset: mnist5k, split: train, per_class: 3, downsample: 4}
          - step: load_data
            id: test_set
            with: {dataset: mnist5k, split: test, per_class: 2, downsample: 4}
          - step: train
            id: dnn
            with: {model: {architecture: c4gap, width: 4, variant: dnn}, train: train_set, test: test_set, epochs: 1, batch_size: 8, runs: $runs}
          - step: train
            id: dgn
            with: {model: {architecture: c4gap, width: 4, variant: dgn, value_input: ones}, train: train_set, test: test_set, epochs: 1, batch_size: 8, permutations: 2}
          - step: table
            id: t
            with:
              caption: "both"
              rows:
                - {label: "DNN", metric: dnn.test_accuracy, std_metric: dnn.test_accuracy_std}
                - {label: "DGN permuted", metric: dgn.test_accuracy, std_metric: dgn.test_accuracy_std}
        """.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func settings(_ path: String, out: String, shard: ShardSpec? = nil, overrides: [String] = []) -> RunSettings {
        RunSettings(recipePath: path, overrides: overrides, outDirectory: tmp.appendingPathComponent(out).path,
                    threads: 1, quiet: true, codeFingerprint: "code-1", shard: shard)
    }

    func unitDirectories(_ out: String) -> [String] {
        let dir = tmp.appendingPathComponent("\(out)/cache/units")
        return ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
    }

    // MARK: Plan

    func testPlanListsEveryRunWithAStableKey() throws {
        let path = try recipe()
        let units = try RecipeEngine.workUnits(settings(path, out: "a"))
        // Permutation units are named by the permutation: 2 of the 23 evenly spread are 0132 and 2013.
        XCTAssertEqual(units.map(\.id), ["dnn/run0", "dnn/run1", "dgn/perm0132-run0", "dgn/perm2013-run0"])
        XCTAssertEqual(Set(units.map(\.key)).count, 4)
        XCTAssertEqual(try RecipeEngine.workUnits(settings(path, out: "b")).map(\.key), units.map(\.key), "keys do not depend on the run directory")
        // Another seed or code changes every key; another run count adds units, keeping the others.
        var seeded = settings(path, out: "a"); seeded.seed = 1
        XCTAssertTrue(Set(try RecipeEngine.workUnits(seeded).map(\.key)).isDisjoint(with: units.map(\.key)))
        var recoded = settings(path, out: "a"); recoded.codeFingerprint = "code-2"
        XCTAssertTrue(Set(try RecipeEngine.workUnits(recoded).map(\.key)).isDisjoint(with: units.map(\.key)))
        let three = try RecipeEngine.workUnits(settings(path, out: "a", overrides: ["runs=3"]))
        XCTAssertEqual(three.map(\.id), ["dnn/run0", "dnn/run1", "dnn/run2", "dgn/perm0132-run0", "dgn/perm2013-run0"])
        // More runs leave the keys of the existing runs as they were: a 3-run sweep reuses a 2-run one.
        XCTAssertEqual(three.filter { u in units.contains { $0.id == u.id } }.map(\.key), units.map(\.key))
        // The DGN trains two networks: its units cost more than the DNN's.
        XCTAssertGreaterThan(units[2].cost, units[0].cost)
        XCTAssertGreaterThan(units[0].cost, 0)
    }

    func testPaperScaleTable1HasEveryModelRunAndPermutation() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("recipes/dlgn-table1.yaml").path
        let units = try RecipeEngine.workUnits(RunSettings(recipePath: path, overrides: ["scale=paper"], codeFingerprint: "x"))
        XCTAssertEqual(units.count, (5 + 4 * 23) * 5)      // 97 models x 5 runs
        XCTAssertEqual(units.filter { $0.step == "dlgn_x1_perm" }.last?.stem, "perm3210-run4")
        // 32 epochs of 50,000 CIFAR images (+ the test set at a third): hours per DNN run.
        let dnn = try XCTUnwrap(units.first { $0.id == "dnn/run0" })
        XCTAssertEqual(dnn.cost, 32 * (50_000 + 10_000 / 3.0) * CostModel.dnnSecondsPerImage, accuracy: 1)
    }

    // MARK: Assignment

    func testAssignmentIsLongestFirstDeterministicAndCoversEveryUnit() throws {
        let costs: [Double] = [5, 4, 3, 3, 3, 1]
        let units = costs.enumerated().map { WorkUnit(step: "s", stem: "u\($0.offset)", key: "k\($0.offset)", cost: $0.element) }
        let a = ShardSpec.assign(units, shards: 2)
        XCTAssertEqual(a, ShardSpec.assign(units.reversed(), shards: 2), "the order units are listed in does not matter")
        XCTAssertEqual(Set(a.keys), Set(units.map(\.id)))
        // Longest first, each to the lighter shard: 5 → 1, 4 → 2, 3 → 2 (4 < 5), 3 → 1 (5 < 7),
        // 3 → 2 (7 < 8), 1 → 1 (8 < 10).
        var load = [0.0, 0.0]
        for u in units { load[a[u.id]! - 1] += u.cost }
        XCTAssertEqual(load.sorted(), [9, 10])
        XCTAssertEqual(a["s/u0"], 1)
        XCTAssertEqual(a["s/u1"], 2)
        // More shards than units: each unit alone, the rest idle.
        XCTAssertEqual(Set(ShardSpec.assign(units, shards: 10).values).count, 6)
    }

    func testShardSpecParsingNamesWhatIsWrong() throws {
        XCTAssertEqual(try ShardSpec(parsing: "2/5"), try ShardSpec(index: 2, count: 5))
        for (text, says) in [("0/3", "1 <= i <= n"), ("4/3", "1 <= i <= n"), ("3", "expects i/n"), ("a/b", "expects i/n"),
                             ("1/0", "n >= 1"), ("1/3/4", "expects i/n")] {
            XCTAssertThrowsError(try ShardSpec(parsing: text), text) { e in
                XCTAssertTrue("\(e)".contains(says), "\(text): \(e)")
            }
        }
    }

    // MARK: Shards and the merge

    func testShardsThenAPlainRunWriteExactlyTheSingleProcessResults() throws {
        let path = try recipe()
        let single = try RecipeEngine.run(settings(path, out: "single"), verify: false, updateGoldens: false)
        let units = try RecipeEngine.workUnits(settings(path, out: "sharded"))
        let assignment = ShardSpec.assign(units, shards: 3)
        let sharded = tmp.appendingPathComponent("sharded")
        var done = 0
        for i in 1...3 {
            let r = try RecipeEngine.run(settings(path, out: "sharded", shard: try ShardSpec(index: i, count: 3)), verify: false, updateGoldens: false)
            let mine = units.filter { assignment[$0.id] == i }
            done += mine.count
            XCTAssertTrue(r.summary.contains("\(mine.count) computed, 0 already complete"), r.summary)
            XCTAssertEqual(unitDirectories("sharded").count, done)
            for name in ["report.md", "metrics.json", "manifest.json"] {
                XCTAssertFalse(FileManager.default.fileExists(atPath: sharded.appendingPathComponent(name).path), "a shard wrote \(name)")
            }
            let complete = RecipeEngine.completion(of: units, runDirectory: sharded)
            XCTAssertEqual(complete.filter { $0 }.count, done)
        }
        // A shard run again finds its units complete and computes nothing.
        let again = try RecipeEngine.run(settings(path, out: "sharded", shard: try ShardSpec(index: 2, count: 3)), verify: false, updateGoldens: false)
        XCTAssertTrue(again.summary.contains(" 0 computed"), again.summary)

        let records = unitDirectories("sharded").map { sharded.appendingPathComponent("cache/units/\($0)/records.json") }
        let before = try records.map { try FileManager.default.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date }
        let merged = try RecipeEngine.run(settings(path, out: "sharded"), verify: false, updateGoldens: false)
        let after = try records.map { try FileManager.default.attributesOfItem(atPath: $0.path)[.modificationDate] as? Date }
        XCTAssertEqual(before, after, "the merge recomputed a unit")
        for name in ["metrics.json", "report.md"] {
            let a = try Data(contentsOf: single.directory.appendingPathComponent(name))
            let b = try Data(contentsOf: merged.directory.appendingPathComponent(name))
            XCTAssertEqual(a, b, "\(name) differs between the single process and the merged shards")
        }
        let metrics = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: sharded.appendingPathComponent("metrics.json"))) as? [String: Double])
        XCTAssertNotNil(metrics["dnn.test_accuracy"])
        XCTAssertNotNil(metrics["dgn.perm2.test_accuracy"])
    }

    func testAKilledUnitLeavesNothingAndOnlyMissingUnitsAreRecomputed() throws {
        let path = try recipe()
        _ = try RecipeEngine.run(settings(path, out: "run", shard: try ShardSpec(index: 1, count: 1)), verify: false, updateGoldens: false)
        let store = tmp.appendingPathComponent("run/cache/units")
        let names = unitDirectories("run")
        XCTAssertEqual(names.count, 4)
        // What a shard killed mid-unit leaves: a partial directory, never read as a result.
        let partial = store.appendingPathComponent(".partial-killed")
        try FileManager.default.createDirectory(at: partial, withIntermediateDirectories: true)
        try Data("garbage".utf8).write(to: partial.appendingPathComponent("records.json"))
        // One unit lost (e.g. a failed array task): only it is recomputed.
        let lost = try XCTUnwrap(names.first { $0.hasPrefix("dnn-run1-") })
        try FileManager.default.removeItem(at: store.appendingPathComponent(lost))
        let units = try RecipeEngine.workUnits(settings(path, out: "run"))
        XCTAssertEqual(RecipeEngine.completion(of: units, runDirectory: tmp.appendingPathComponent("run")), [true, false, true, true])
        let kept = try names.filter { $0 != lost }.map { try FileManager.default.attributesOfItem(atPath: store.appendingPathComponent("\($0)/records.json").path)[.modificationDate] as? Date }
        let r = try RecipeEngine.run(settings(path, out: "run", shard: try ShardSpec(index: 1, count: 1)), verify: false, updateGoldens: false)
        XCTAssertTrue(r.summary.contains("1 computed, 3 already complete"), r.summary)
        let keptAfter = try names.filter { $0 != lost }.map { try FileManager.default.attributesOfItem(atPath: store.appendingPathComponent("\($0)/records.json").path)[.modificationDate] as? Date }
        XCTAssertEqual(kept, keptAfter)
        XCTAssertTrue(FileManager.default.fileExists(atPath: partial.path), "a shard leaves other shards' partial units alone")
        // The plain run that owns the directory removes what killed runs left.
        _ = try RecipeEngine.run(settings(path, out: "run"), verify: false, updateGoldens: false)
        XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
        // A changed data file makes a unit stale: its `inputs` lists the files' SHA-256.
        let inputs = try String(contentsOf: store.appendingPathComponent("\(names[0])/inputs"), encoding: .utf8)
        let lines = inputs.split(separator: "\n")
        XCTAssertFalse(lines.isEmpty)
        for l in lines { XCTAssertEqual(l.split(separator: " ").first?.count, 64, String(l)) }
    }

    func testAShardWritesNoReportAndRefusesVerify() throws {
        let path = try recipe()
        XCTAssertThrowsError(try RecipeEngine.run(settings(path, out: "v", shard: try ShardSpec(index: 1, count: 2)), verify: true, updateGoldens: false)) { e in
            XCTAssertTrue("\(e)".contains("--shard computes units only"), "\(e)")
        }
    }

    // MARK: Slurm scripts

    func testSlurmScriptsRunEveryShardThenTheMerge() throws {
        var job = SlurmJob(runner: "/opt/runner", recipe: "/r/dlgn-table1.yaml", overrides: ["scale=paper", "note=it's"], seed: 3,
                           runDirectory: "/shared/run dir", workingDirectory: "/shared", shards: 100, cpusPerTask: 8,
                           time: "2-00:00:00", partition: "gpu", jobName: "dlgn-table1")
        let shards = job.shardsScript
        XCTAssertTrue(shards.hasPrefix("#!/bin/bash\n"))
        for line in ["#SBATCH --array=1-100", "#SBATCH --cpus-per-task=8", "#SBATCH --time=2-00:00:00", "#SBATCH --partition=gpu",
                     "--shard \"${SLURM_ARRAY_TASK_ID}/100\"", "--threads \"${SLURM_CPUS_PER_TASK:-8}\"",
                     "--set scale=paper --set 'note=it'\\''s' --seed 3 --out '/shared/run dir'", "exec /opt/runner run /r/dlgn-table1.yaml"] {
            XCTAssertTrue(shards.contains(line), "shards.sbatch lacks \(line):\n\(shards)")
        }
        let merge = job.mergeScript
        XCTAssertFalse(merge.contains("--array"))
        XCTAssertFalse(merge.contains("--shard"))
        XCTAssertTrue(merge.contains("/opt/runner plan /r/dlgn-table1.yaml --set scale=paper"), merge)
        XCTAssertTrue(merge.contains("--check-complete"), merge)
        job.runDirectory = tmp.path
        let (a, b) = try job.write()
        XCTAssertEqual(try String(contentsOf: a, encoding: .utf8), job.shardsScript)
        XCTAssertEqual(try String(contentsOf: b, encoding: .utf8), job.mergeScript)
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: a.path))
    }
}
