import XCTest
import Foundation
import Recipes
import SIMDCore

/// The recipe layer end to end: loading, validation errors (each naming file:line:column and,
/// where a name is close, a did-you-mean), parameter resolution, runs, the run directory,
/// interrupted runs, and golden verification. Only offline steps (`load_data` on the shipped
/// mnist5k, `check`) and Markdown cells are used, so every test runs in well under a second.
final class RecipeEngineTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("recipe-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp.appendingPathComponent("recipes"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    // MARK: Helpers

    /// Writes `text` to tmp/recipes/<name>.yaml (so goldens live in tmp/golden/<name>/).
    @discardableResult
    func write(_ text: String, name: String = "tiny") throws -> String {
        let url = tmp.appendingPathComponent("recipes/\(name).yaml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// The error thrown by `body` as text (printed so a failing run shows the whole message).

    func settings(_ path: String, _ overrides: [String] = [], out: String? = nil, seed: UInt64? = nil,
                  dryRun: Bool = false) -> RunSettings {
        RunSettings(recipePath: path, overrides: overrides,
                    outDirectory: out ?? tmp.appendingPathComponent("run").path,
                    seed: seed, dryRun: dryRun, quiet: true)
    }

    func plan(_ path: String, _ overrides: [String] = [], seed: UInt64? = nil) throws -> String {
        try RecipeEngine.resolvedDescription(settings(path, overrides, seed: seed))
    }

    func json(_ url: URL) throws -> [String: Any] {
        let data = try Data(contentsOf: url)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: data) as? [String: Any], url.path)
    }

    /// Every file under `dir`, relative, sorted.
    func files(under dir: URL) -> [String] {
        let e = FileManager.default.enumerator(atPath: dir.path)
        var out: [String] = []
        while let f = e?.nextObject() as? String { out.append(f) }
        return out.sorted()
    }

    /// A small complete recipe: every parameter form, a variant per scale, Markdown, data and a claim.
    static let tiny = """
    title: "Tiny recipe"
    paper: A
    figure: t1
    summary: "A recipe for the engine tests."
    parameters:
      seed: 0
      per_class: {default: 3, min: 1, max: 50, help: "images per class"}
      scale: {default: ci, choices: [ci, paper]}
      split: {default: test, choices: [train, test]}
      threshold: 0.5
      fast: true
      label: {default: digits, type: string}
    variants:
      ci: {per_class: 2}
      paper: {per_class: 5}
    cells:
      - markdown: |
          ## Data
          Load a few images of two classes.
      - step: load_data
        id: test
        title: "Load the ${split} split"
        with: {dataset: mnist5k, split: $split, per_class: $per_class, classes: [4, 7]}
      - step: check
        id: enough
        with:
          claim: "test.count == 2 * ${per_class}"
          says: "two classes of ${per_class} ${label} each"
          required: true
    """

    // MARK: Malformed YAML

    func testMalformedYAMLNamesFileLineColumn() throws {
        let path = try write("""
        title: "x"
        cells:
          - markdown: "never closed
          - step: check
        """)
        XCTAssertThrowsError(try Recipe.load(URL(fileURLWithPath: path))) { e in
            print("error: \(e)")
            guard let y = e as? YAMLError else { return XCTFail("expected a YAMLError, got \(e)") }
            XCTAssertEqual(y.file, path)
            XCTAssertTrue("\(e)".hasPrefix("\(path):\(y.mark.line):\(y.mark.column): "), "\(e)")
            XCTAssertTrue(y.message.contains("quoted scalar"), y.message)
            XCTAssertGreaterThanOrEqual(y.mark.line, 3)
        }

        // Bad indentation: libyaml's complaint at the line that breaks the block.
        let path2 = try write("title: x\ncells:\n  - step: check\n   with: {claim: \"a > 1\"}\n", name: "indent")
        let t = errorText { try Recipe.load(URL(fileURLWithPath: path2)) }
        XCTAssertTrue(t.hasPrefix("\(path2):4:"), t)

        // A duplicate key is an error too, not a silent overwrite.
        let path3 = try write("title: x\ntitle: y\ncells: []\n", name: "dup")
        let t3 = errorText { try Recipe.load(URL(fileURLWithPath: path3)) }
        XCTAssertTrue(t3.hasPrefix("\(path3):2:1: "), t3)
        XCTAssertTrue(t3.contains("duplicate key 'title'"), t3)

        // An empty file and a top level that is not a mapping.
        let empty = try write("", name: "empty")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: empty)) }.contains("expected a mapping"))
        let list = try write("- a\n- b\n", name: "list")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: list)) }.hasPrefix("\(list):1:1: expected a mapping"))
    }

    // MARK: Wrong types

    func testWrongTypesNameTheKeyAndPosition() throws {
        // In a step's config: found when the run is planned, before anything runs.
        let path = try write("""
        title: x
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test, per_class: abc}
        """)
        XCTAssertNoThrow(try Recipe.load(URL(fileURLWithPath: path)))
        let t = errorText { try RecipeEngine.run(settings(path), verify: false, updateGoldens: false) }
        XCTAssertEqual(t, "\(path):5:54: key 'cells[0].with.per_class': expected an integer, found a scalar 'abc'")
        XCTAssertFalse(FileManager.default.fileExists(atPath: tmp.appendingPathComponent("run").path),
                       "a recipe that does not validate must not create a run directory")

        // At the top level and in the cell list.
        let p2 = try write("title: [a, b]\ncells: []\n", name: "t2")
        let t2 = errorText { try Recipe.load(URL(fileURLWithPath: p2)) }
        XCTAssertEqual(t2, "\(p2):1:8: key 'title': expected a string, found a sequence (2 items)")
        let p3 = try write("title: x\ncells: {a: 1}\n", name: "t3")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: p3)) } == "\(p3):2:8: key 'cells': expected a sequence, found a mapping (1 key)")
        let p4 = try write("title: x\ncells:\n  - just text\n", name: "t4")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: p4)) } == "\(p4):3:5: key 'cells[0]': expected a mapping, found a scalar 'just text'")

        // A check's `required` must be a boolean; `with:` must be a mapping.
        let p5 = try write("title: x\ncells:\n  - step: check\n    with: {claim: \"a > 1\", required: maybe}\n", name: "t5")
        let t5 = errorText { try plan(p5) }
        XCTAssertEqual(t5, "\(p5):4:38: key 'cells[0].with.required': expected a boolean (true or false), found a scalar 'maybe'")
        let p6 = try write("title: x\ncells:\n  - step: check\n    with: [1, 2]\n", name: "t6")
        XCTAssertTrue(errorText { try plan(p6) } == "\(p6):4:11: key 'cells[0].with': `with:` must be a mapping of check settings")

        // A missing required key names it.
        let p7 = try write("title: x\ncells:\n  - step: load_data\n    with: {dataset: mnist5k}\n", name: "t7")
        XCTAssertEqual(errorText { try plan(p7) }, "\(p7):4:11: key 'cells[0].with': missing key 'split'")

        // A claim that does not parse is an error at load time, at the claim.
        let p8 = try write("title: x\ncells:\n  - step: check\n    with: {claim: \"a >\"}\n", name: "t8")
        let t8 = errorText { try plan(p8) }
        XCTAssertEqual(t8, "\(p8):4:19: key 'cells[0].with.claim': claim 'a >': unexpected end at character 4")
    }

    // MARK: Unknown keys, kinds and ids

    func testUnknownKeysSuggestTheNearestName() throws {
        let top = try write("titel: x\ncells: []\n", name: "top")
        let t1 = errorText { try Recipe.load(URL(fileURLWithPath: top)) }
        XCTAssertEqual(t1, "\(top):1:1: unknown key 'titel'; did you mean 'title'?")

        let far = try write("title: x\nzzzzzz: 1\ncells: []\n", name: "far")
        let t2 = errorText { try Recipe.load(URL(fileURLWithPath: far)) }
        XCTAssertTrue(t2.hasPrefix("\(far):2:1: unknown key 'zzzzzz' (allowed: title, paper"), t2)

        let cell = try write("title: x\ncells:\n  - step: check\n    wiht: {claim: \"a > 1\"}\n", name: "cell")
        let t3 = errorText { try Recipe.load(URL(fileURLWithPath: cell)) }
        XCTAssertEqual(t3, "\(cell):4:5: key 'cells[0]': unknown key 'wiht'; did you mean 'with'?")

        let kind = try write("title: x\ncells:\n  - step: load_dta\n", name: "kind")
        let t4 = errorText { try Recipe.load(URL(fileURLWithPath: kind)) }
        XCTAssertTrue(t4.hasPrefix("\(kind):3:11: key 'cells[0].step': unknown step kind 'load_dta'; did you mean 'load_data'? (step kinds: load_data, "), t4)
        XCTAssertTrue(t4.contains("(step kinds: ") && t4.contains("check"), t4)
        let kind2 = try write("title: x\ncells:\n  - step: fly_to_moon\n", name: "kind2")
        let t5 = errorText { try Recipe.load(URL(fileURLWithPath: kind2)) }
        XCTAssertFalse(t5.contains("did you mean"), t5)
        XCTAssertTrue(t5.contains("unknown step kind 'fly_to_moon' (step kinds: "), t5)

        let with = try write("""
        title: x
        cells:
          - step: load_data
            with:
              dataset: mnist5k
              split: test
              per_clas: 3
        """, name: "with")
        let t6 = errorText { try plan(with) }
        XCTAssertEqual(t6, "\(with):7:7: key 'cells[0].with': unknown key 'per_clas'; did you mean 'per_class'?")

        // A value the step does not know, e.g. a data set name.
        let ds = try write("title: x\ncells:\n  - step: load_data\n    with: {dataset: mnist5x, split: test}\n", name: "ds")
        let t7 = errorText { try plan(ds) }
        XCTAssertEqual(t7, "\(ds):4:21: key 'cells[0].with.dataset': unknown dataset 'mnist5x'; did you mean 'mnist5k'? (datasets: mnist5k, mnist, cifar10, cifar100)")

        // Both markdown and step in one cell, and neither.
        let both = try write("title: x\ncells:\n  - {markdown: hi, step: check}\n", name: "both")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: both)) }.contains("either `markdown` or `step`, not both"))
        let neither = try write("title: x\ncells:\n  - {id: a}\n", name: "neither")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: neither)) }.contains("cell 1 needs `markdown: …` or `step: <kind>`"))
    }

    func testDuplicateIdsAndDependencies() throws {
        let dup = try write("""
        title: x
        cells:
          - step: load_data
            id: data
            with: {dataset: mnist5k, split: test}
          - step: load_data
            id: data
            with: {dataset: mnist5k, split: train}
        """, name: "dup")
        let t = errorText { try Recipe.load(URL(fileURLWithPath: dup)) }
        XCTAssertEqual(t, "\(dup):6:5: key 'cells[1]': duplicate step id 'data' (first used at line 3)")

        // A dependency on a step that comes later, and a typo in a dependency.
        let later = try write("""
        title: x
        cells:
          - step: explain
            id: maps
            with: {model: cnn, data: test, methods: [gradient]}
          - step: load_data
            id: cnn
            with: {dataset: mnist5k, split: test}
        """, name: "later")
        let t2 = errorText { try plan(later) }
        XCTAssertEqual(t2, "\(later):3:5: key 'cells[0]': step 'maps' depends on 'cnn', which is not an earlier step")
        let typo = try write("""
        title: x
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test}
          - step: explain
            id: maps
            with: {model: tset, data: test, methods: [gradient]}
        """, name: "typo")
        let t3 = errorText { try plan(typo) }
        XCTAssertTrue(t3.hasSuffix("step 'maps' depends on 'tset', which is not an earlier step; did you mean 'test'?"), t3)
    }

    func testExplainMethodLabelsAreAccepted() throws {
        // `label:` names a method's row in `explain`; the method parser must not see it.
        let path = try write("""
        title: x
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test}
          - step: load_model
            id: net
            with: {architecture: resnet50, weights: synthetic}
          - step: explain
            id: maps
            with:
              model: net
              data: test
              methods: [gradient, {method: excitation_pullback, temperature: 0.5, label: soft}]
        """, name: "labels")
        XCTAssertTrue(try plan(path).contains("label: soft"))
        // Other unknown keys in a method are still errors.
        try write(String(try String(contentsOfFile: path, encoding: .utf8)).replacingOccurrences(of: "label: soft", with: "lable: soft"), name: "labels")
        let t = errorText { try plan(path) }
        XCTAssertTrue(t.hasSuffix("unknown key 'lable'; did you mean 'label'?") || t.contains("unknown key 'lable'"), t)
    }

    func testLoadDataSelections() throws {
        // (with: settings, expected count); mnist5k's test split has 100 images per class.
        let cases: [(String, Int)] = [
            ("{dataset: mnist5k, split: test}", 1000),
            ("{dataset: mnist5k, split: train}", 4000),
            ("{dataset: mnist5k, split: test, per_class: 3}", 30),
            ("{dataset: mnist5k, split: test, per_class: 3, classes: [4, 7]}", 6),
            ("{dataset: mnist5k, split: test, classes: [4, 7]}", 200),
            ("{dataset: mnist5k, split: test, classes: [4, 7], limit: 150}", 150),
            ("{dataset: mnist5k, split: test, limit: 5000}", 1000),
        ]
        for (i, (with, count)) in cases.enumerated() {
            let path = try write("title: x\ncells:\n  - step: load_data\n    id: d\n    with: \(with)\n", name: "d\(i)")
            let r = try RecipeEngine.run(settings(path, out: tmp.appendingPathComponent("d\(i)").path), verify: false, updateGoldens: false)
            XCTAssertTrue(r.summary.split(separator: "\n").contains("metric d.count = \(count)"), "\(with): \(r.summary)")
        }
        for (with, message) in [("{dataset: mnist5k, split: test, classes: [10]}", "class 10 is outside 0..<10"),
                                ("{dataset: mnist5k, split: test, per_class: 101}", "has only 100 images")] {
            let path = try write("title: x\ncells:\n  - step: load_data\n    id: d\n    with: \(with)\n", name: "bad")
            let t = errorText { try RecipeEngine.run(self.settings(path), verify: false, updateGoldens: false) }
            XCTAssertTrue(t.hasPrefix("\(path):3: step 'd' (load_data) failed: ") && t.contains(message), t)
        }
        let zero = try write("title: x\ncells:\n  - step: load_data\n    with: {dataset: mnist5k, split: test, per_class: 0}\n", name: "zero")
        XCTAssertEqual(errorText { try self.plan(zero) }, "\(zero):4:11: key 'cells[0].with': per_class must be at least 1, got 0")
    }

    // MARK: Parameters

    func testParameterDeclarations() throws {
        let path = try write(Self.tiny)
        let r = try Recipe.load(URL(fileURLWithPath: path))
        XCTAssertEqual(r.name, "tiny")
        XCTAssertEqual(r.title, "Tiny recipe")
        XCTAssertEqual(r.paper, "A")
        XCTAssertEqual(r.figure, "t1")
        XCTAssertEqual(r.parameters.map(\.name), ["seed", "per_class", "scale", "split", "threshold", "fast", "label"])
        XCTAssertEqual(r.parameters.map(\.type), [.int, .int, .choice(["ci", "paper"]), .choice(["train", "test"]), .float, .bool, .string])
        XCTAssertEqual(r.parameters.map(\.defaultValue), [.int(0), .int(3), .string("ci"), .string("test"), .float(0.5), .bool(true), .string("digits")])
        XCTAssertEqual(r.parameters[1].minimum, 1)
        XCTAssertEqual(r.parameters[1].maximum, 50)
        XCTAssertEqual(r.parameters[1].help, "images per class")
        XCTAssertEqual(r.cells.count, 3)
        XCTAssertEqual(Set(r.variants.keys), ["ci", "paper"])

        func decl(_ params: String, name: String) throws -> String {
            let p = try write("title: x\nparameters:\n\(params)\ncells: []\n", name: name)
            return errorText { try Recipe.load(URL(fileURLWithPath: p)) }
        }
        XCTAssertTrue(try decl("  n: {default: 0, min: 1}", name: "p1").contains("parameter 'n' = 0 is below its minimum 1.0"))
        XCTAssertTrue(try decl("  n: {default: 9, max: 8}", name: "p2").contains("parameter 'n' = 9 is above its maximum 8.0"))
        let t3 = try decl("  scale: {default: papr, choices: [ci, paper]}", name: "p3")
        XCTAssertTrue(t3.hasSuffix("p3.yaml:3:20: key 'parameters.scale.default': parameter 'scale' must be one of ci, paper, got 'papr'; did you mean 'paper'?"), t3)
        XCTAssertTrue(try decl("  n: {default: 1, type: intt}", name: "p4").contains("unknown parameter type 'intt' (int, float, string, bool); did you mean 'int'?"))
        XCTAssertTrue(try decl("  n: {default: abc, type: int}", name: "p5").hasSuffix("p5.yaml:3:16: key 'parameters.n.default': expected an integer, found a scalar 'abc'"))
        XCTAssertTrue(try decl("  n: {defualt: 1}", name: "p6").contains("unknown key 'defualt'; did you mean 'default'?"))
        XCTAssertTrue(try decl("  n: {help: no default}", name: "p7").hasSuffix("p7.yaml:3:6: key 'parameters.n': missing key 'default'"))
        let ok = try write("title: x\nparameters:\n  t: {default: 1, type: float, min: 0.001}\ncells: []\n", name: "p8")
        XCTAssertEqual(try Recipe.load(URL(fileURLWithPath: ok)).parameters.first?.defaultValue, .float(1))
    }

    func testVariantsAreValidated() throws {
        func load(_ text: String, name: String) throws -> String {
            let p = try write(text, name: name)
            return errorText { try Recipe.load(URL(fileURLWithPath: p)) }
        }
        let t1 = try load("title: x\nparameters: {n: 1}\nvariants: {ci: {n: 2}}\ncells: []\n", name: "v1")
        XCTAssertTrue(t1.contains("variants are selected by a parameter named 'scale'"), t1)
        let t2 = try load("title: x\nparameters: {n: 1, scale: {default: ci, choices: [ci, paper]}}\nvariants: {huge: {n: 2}}\ncells: []\n", name: "v2")
        XCTAssertTrue(t2.contains("variant 'huge' is not a value of parameter 'scale' (ci, paper)"), t2)
        let t3 = try load("title: x\nparameters: {per_class: 1, scale: {default: ci, choices: [ci, paper]}}\nvariants: {paper: {per_clas: 2}}\ncells: []\n", name: "v3")
        XCTAssertTrue(t3.contains("variant 'paper' sets undeclared parameter 'per_clas'; did you mean 'per_class'?"), t3)
        // A variant value of the wrong type or out of range is an error when the recipe loads,
        // even for a variant the run does not select.
        let t4 = try load("title: x\nparameters: {n: {default: 1, min: 1}, scale: {default: ci, choices: [ci, paper]}}\nvariants: {paper: {n: many}}\ncells: []\n", name: "v4")
        XCTAssertTrue(t4.hasSuffix("v4.yaml:3:23: key 'variants.paper.n': expected an integer, found a scalar 'many'"), t4)
        let t5 = try load("title: x\nparameters: {n: {default: 1, min: 1}, scale: {default: ci, choices: [ci, paper]}}\nvariants: {paper: {n: 0}}\ncells: []\n", name: "v5")
        XCTAssertTrue(t5.hasSuffix("v5.yaml:3:23: key 'variants.paper.n': parameter 'n' = 0 is below its minimum 1.0"), t5)
    }

    func testResolutionLayersAndSetTypeChecking() throws {
        let r = try Recipe.load(URL(fileURLWithPath: try write(Self.tiny)))
        // Defaults, then the variant for the default scale (ci: per_class 2).
        let d = try r.resolve(overrides: [], seed: nil)
        XCTAssertEqual(d["per_class"], .int(2))
        XCTAssertEqual(d["seed"], .int(0))
        XCTAssertEqual(d.lines, ["seed = 0", "per_class = 2", "scale = ci", "split = test", "threshold = 0.5", "fast = true", "label = digits"])
        // --set scale picks the variant; an explicit --set wins over the variant, in any order.
        XCTAssertEqual(try r.resolve(overrides: ["scale=paper"], seed: nil)["per_class"], .int(5))
        XCTAssertEqual(try r.resolve(overrides: ["scale=paper", "per_class=7"], seed: nil)["per_class"], .int(7))
        XCTAssertEqual(try r.resolve(overrides: ["per_class=7", "scale=paper"], seed: nil)["per_class"], .int(7))
        // --seed, then --set seed wins over it.
        XCTAssertEqual(try r.resolve(overrides: [], seed: 42)["seed"], .int(42))
        XCTAssertEqual(try r.resolve(overrides: ["seed=3"], seed: 42)["seed"], .int(3))
        // Types: integers widen to floats where a float is declared.
        XCTAssertEqual(try r.resolve(overrides: ["threshold=1"], seed: nil)["threshold"], .float(1))
        XCTAssertEqual(try r.resolve(overrides: ["fast=false", "label=a b"], seed: nil)["fast"], .bool(false))
        XCTAssertEqual(try r.resolve(overrides: ["label=a=b"], seed: nil)["label"], .string("a=b"))

        func setError(_ o: [String], seed: UInt64? = nil) -> String { errorText { try r.resolve(overrides: o, seed: seed) } }
        XCTAssertEqual(setError(["per_class=abc"]), "--set per_class=abc: parameter 'per_class' expects an integer")
        XCTAssertEqual(setError(["per_class=2.5"]), "--set per_class=2.5: parameter 'per_class' expects an integer")
        XCTAssertEqual(setError(["per_class=0"]), "parameter 'per_class' = 0 is below its minimum 1.0")
        XCTAssertEqual(setError(["per_class=51"]), "parameter 'per_class' = 51 is above its maximum 50.0")
        XCTAssertEqual(setError(["threshold=abc"]), "--set threshold=abc: parameter 'threshold' expects a number")
        XCTAssertEqual(setError(["threshold=nan"]), "--set threshold=nan: parameter 'threshold' expects a number")
        XCTAssertEqual(setError(["fast=yes"]), "--set fast=yes: parameter 'fast' expects a boolean (true or false)")
        XCTAssertEqual(setError(["scale=papr"]), "--set scale=papr: parameter 'scale' must be one of ci, paper; did you mean 'paper'?")
        XCTAssertEqual(setError(["per_clas=3"]), "--set per_clas=3: recipe tiny has no parameter 'per_clas'; did you mean 'per_class'?")
        XCTAssertEqual(setError(["zzzzzz=3"]), "--set zzzzzz=3: recipe tiny has no parameter 'zzzzzz' (parameters: seed, per_class, scale, split, threshold, fast, label)")
        XCTAssertEqual(setError(["per_class"]), "--set expects key=value, got 'per_class'")
        XCTAssertEqual(setError(["=3"]), "--set expects key=value, got '=3'")

        // --seed on a recipe without a seed parameter.
        let noSeed = try Recipe.load(URL(fileURLWithPath: try write("title: x\nparameters: {n: 1}\ncells: []\n", name: "noseed")))
        XCTAssertEqual(errorText { try noSeed.resolve(overrides: [], seed: 1) },
                       "--seed: recipe noseed declares no `seed` parameter")
        XCTAssertNoThrow(try noSeed.resolve(overrides: [], seed: nil))
    }

    func testSubstitution() throws {
        let path = try write(Self.tiny)
        let p = try plan(path, ["scale=paper", "split=train"])
        print(p)
        // `$name` keeps the parameter's type; `${name}` inside a string.
        XCTAssertTrue(p.contains("  - test (load_data): {dataset: mnist5k, split: train, per_class: 5, classes: [4, 7]}"), p)
        XCTAssertTrue(p.contains("claim: \"test.count == 2 * 5\""), p)
        XCTAssertTrue(p.contains("says: \"two classes of 5 digits each\""), p)
        XCTAssertTrue(p.contains("  per_class = 5"), p)

        // An unknown `$name` or `${name}` is an error at its position, with a suggestion.
        let bad = try write("""
        title: x
        parameters: {per_class: 2}
        cells:
          - step: load_data
            with: {dataset: mnist5k, split: test, per_class: $per_clas}
        """, name: "bad")
        let t = errorText { try plan(bad) }
        XCTAssertEqual(t, "\(bad):5:54: key 'cells[0].with.per_class': unknown parameter '$per_clas'; did you mean '$per_class'?")
        let bad2 = try write("""
        title: x
        parameters: {per_class: 2}
        cells:
          - step: check
            with: {claim: "a > 1", says: "${zzzzzz} things"}
        """, name: "bad2")
        let t2 = errorText { try plan(bad2) }
        XCTAssertEqual(t2, "\(bad2):5:34: key 'cells[0].with.says': unknown parameter '$zzzzzz' (declared: per_class)")
        let bad3 = try write("title: x\nparameters: {n: 2}\ncells:\n  - step: check\n    with: {claim: \"a > 1\", says: \"${n\"}\n", name: "bad3")
        XCTAssertTrue(errorText { try plan(bad3) }.contains("unterminated '${' in '${n'"))
        // A `$name` of the wrong type for its key is a type error at the reference.
        let bad4 = try write("title: x\nparameters: {word: abc}\ncells:\n  - step: load_data\n    with: {dataset: mnist5k, split: test, per_class: $word}\n", name: "bad4")
        let t4 = errorText { try plan(bad4) }
        XCTAssertEqual(t4, "\(bad4):5:54: key 'cells[0].with.per_class': expected an integer, found a scalar 'abc'")
    }

    func testMarkdownInterpolation() throws {
        let path = try write(Self.tiny.replacingOccurrences(of: "Load a few images of two classes.",
                                                            with: "Load ${per_class} images of each of two classes ($5 is not a parameter)."))
        let r = try RecipeEngine.run(settings(path), verify: false, updateGoldens: false)
        let md = try String(contentsOf: r.directory.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("Load 2 images of each of two classes ($5 is not a parameter)."), md)

        // An unknown name in prose is found before anything runs.
        let bad = try write(Self.tiny.replacingOccurrences(of: "Load a few images of two classes.", with: "Load ${per_clas} images."), name: "bad")
        let out = tmp.appendingPathComponent("bad-run")
        let t = errorText { try RecipeEngine.run(self.settings(bad, out: out.path), verify: false, updateGoldens: false) }
        XCTAssertEqual(t, "\(bad):19: cell 1 (markdown): markdown refers to unknown parameter '${per_clas}'; did you mean '${per_class}'?")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    // MARK: Files and directories

    func testMissingRecipeFile() throws {
        let path = tmp.appendingPathComponent("recipes/nope.yaml").path
        let t = errorText { try RecipeEngine.run(settings(path), verify: false, updateGoldens: false) }
        XCTAssertEqual(t, "\(path): no such recipe file (see `runner list recipes`)")
        XCTAssertTrue(errorText { try Recipe.load(URL(fileURLWithPath: path)) }.contains("no such recipe file"))
        // A directory in place of the recipe.
        let t2 = errorText { try Recipe.load(self.tmp.appendingPathComponent("recipes")) }
        XCTAssertTrue(t2.contains("recipes"), t2)
    }

    func testUnwritableRunDirectory() throws {
        let path = try write(Self.tiny)
        // Tests run as root, so permissions do not stop writes: a regular file as the parent does.
        let blocker = tmp.appendingPathComponent("blocker")
        try Data("not a directory".utf8).write(to: blocker)
        let out = blocker.appendingPathComponent("run").path
        let t = errorText { try RecipeEngine.run(self.settings(path, out: out), verify: false, updateGoldens: false) }
        XCTAssertEqual(t, "cannot create run directory \(out): \(blocker.path) is a file, not a directory (choose another with --out)")
        // A file in place of the run directory itself.
        let t2 = errorText { try RecipeEngine.run(self.settings(path, out: blocker.path), verify: false, updateGoldens: false) }
        XCTAssertEqual(t2, "cannot create run directory \(blocker.path): \(blocker.path) is a file, not a directory (choose another with --out)")
        XCTAssertEqual(try String(contentsOf: blocker, encoding: .utf8), "not a directory")
        XCTAssertEqual(files(under: tmp), ["blocker", "recipes", "recipes/tiny.yaml"])
    }

    func testDryRunRunsNothing() throws {
        let path = try write(Self.tiny)
        let out = tmp.appendingPathComponent("dry")
        let r = try RecipeEngine.run(settings(path, out: out.path, dryRun: true), verify: false, updateGoldens: false)
        XCTAssertTrue(r.summary.contains("(dry run: nothing was executed)"), r.summary)
        XCTAssertTrue(r.summary.contains("  - enough (check): "), r.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
        // Validation still happens in a dry run.
        let bad = try write("title: x\ncells:\n  - step: load_data\n    with: {dataset: mnist5k, split: tset}\n", name: "bad")
        XCTAssertTrue(errorText { try RecipeEngine.run(self.settings(bad, dryRun: true), verify: false, updateGoldens: false) }
            .contains("split must be train or test"))
    }

    // MARK: A run and its directory

    func testRunWritesTheRunDirectory() throws {
        let path = try write(Self.tiny)
        let out = tmp.appendingPathComponent("run")
        let r = try RecipeEngine.run(settings(path, seed: 7), verify: false, updateGoldens: false)
        print(r.summary)
        XCTAssertEqual(r.directory.path, out.path)
        XCTAssertTrue(r.verificationPassed)
        XCTAssertTrue(r.summary.contains("metric test.count = 4"), r.summary)
        XCTAssertTrue(r.summary.contains("claim holds: two classes of 2 digits each"), r.summary)
        XCTAssertEqual(files(under: out), ["manifest.json", "metrics.csv", "metrics.json", "recipe.yaml",
                                           "report.html", "report.md", "resolved.txt"])

        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("recipe.yaml")), try Data(contentsOf: URL(fileURLWithPath: path)))
        let resolved = try String(contentsOf: out.appendingPathComponent("resolved.txt"), encoding: .utf8)
        XCTAssertEqual(resolved, "seed = 7\nper_class = 2\nscale = ci\nsplit = test\nthreshold = 0.5\nfast = true\nlabel = digits\n")

        let metrics = try json(out.appendingPathComponent("metrics.json"))
        XCTAssertEqual(metrics["test.count"] as? Double, 4)
        XCTAssertEqual(metrics["enough.holds"] as? Double, 1)

        let m = try json(out.appendingPathComponent("manifest.json"))
        XCTAssertEqual(m["name"] as? String, "tiny")
        XCTAssertEqual(m["recipe"] as? String, path)
        XCTAssertEqual(m["seed"] as? Int, 7)
        XCTAssertEqual(m["verification"] as? String, "not run")
        let git = try XCTUnwrap(m["git"] as? [String: Any])
        XCTAssertNotNil(git["commit"] as? String, "git commit (or 'unknown' outside a repository)")
        XCTAssertTrue(git.keys.contains("dirty"))
        let toolchain = try XCTUnwrap(m["toolchain"] as? [String: String])
        XCTAssertEqual(Set(toolchain.keys), ["swift", "libpng", "libyaml", "libjpeg"])
        XCTAssertTrue(toolchain["libyaml"]!.hasPrefix("0."), toolchain["libyaml"]!)
        XCTAssertEqual(m["build"] as? [String: String],
                       ["kernel_profile": KernelProfile.current.rawValue, "target_cpu": KernelProfile.targetCPU])
        let params = try XCTUnwrap(m["parameters"] as? [String: String])
        XCTAssertEqual(params["per_class"], "2")
        XCTAssertEqual(params["seed"], "7")

        let inputs = try XCTUnwrap(m["inputs"] as? [[String: String]])
        XCTAssertEqual(inputs.first?["path"], path)
        XCTAssertEqual(inputs.first?["sha256"], try SHA256.hexDigest(ofFile: URL(fileURLWithPath: path)))
        let mnist = inputs.filter { $0["path"]!.hasSuffix("images-idx3-ubyte.gz") || $0["path"]!.hasSuffix("labels-idx1-ubyte.gz") }
        XCTAssertEqual(mnist.count, 2, "\(inputs)")
        for i in mnist { XCTAssertEqual(i["sha256"], try SHA256.hexDigest(ofFile: URL(fileURLWithPath: i["path"]!))) }

        let steps = try XCTUnwrap(m["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["id"] as? String }, ["test", "enough"])
        XCTAssertEqual(steps.map { $0["kind"] as? String }, ["load_data", "check"])
        for s in steps {
            let secs = try XCTUnwrap(s["seconds"] as? Double)
            XCTAssertTrue(secs >= 0 && secs < 60, "\(secs)")
            XCTAssertEqual(s["cached"] as? Bool, false)
            XCTAssertEqual((s["hash"] as? String)?.count, 64)
        }
        XCTAssertNotNil(m["wall_seconds"] as? Double)

        let md = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
        XCTAssertTrue(md.contains("# Tiny recipe"), md)
        XCTAssertTrue(md.contains("A recipe for the engine tests."), md)
        XCTAssertTrue(md.contains("Load a few images of two classes."), md)
        XCTAssertTrue(md.contains("Load the ${split} split") || md.contains("Load the test split"), md)
        XCTAssertTrue(md.contains("Measured values"), md)
        XCTAssertTrue(md.contains("Claims checked"), md)
        let html = try String(contentsOf: out.appendingPathComponent("report.html"), encoding: .utf8)
        XCTAssertTrue(html.contains("<html") && html.contains("Tiny recipe"), String(html.prefix(300)))
        XCTAssertEqual(files(under: out).filter { $0.contains(".tmp-") }, [])

        // Same recipe, same seed: same step hashes (the cache key), different seed: different.
        let again = try RecipeEngine.run(settings(path, out: tmp.appendingPathComponent("run2").path, seed: 7), verify: false, updateGoldens: false)
        let other = try RecipeEngine.run(settings(path, out: tmp.appendingPathComponent("run3").path, seed: 8), verify: false, updateGoldens: false)
        func hashes(_ d: URL) throws -> [String] {
            try (json(d.appendingPathComponent("manifest.json"))["steps"] as! [[String: Any]]).map { $0["hash"] as! String }
        }
        XCTAssertEqual(try hashes(again.directory), try hashes(out))
        XCTAssertNotEqual(try hashes(other.directory), try hashes(out))
    }

    // MARK: Interrupted runs

    func testFailedStepLeavesTheEarlierRunIntact() throws {
        let path = try write(Self.tiny)
        let out = tmp.appendingPathComponent("run")
        _ = try RecipeEngine.run(settings(path), verify: false, updateGoldens: false)
        let keep = ["report.html", "report.md", "manifest.json", "metrics.json", "recipe.yaml", "resolved.txt"]
        var before: [String: Data] = [:]
        for f in keep { before[f] = try Data(contentsOf: out.appendingPathComponent(f)) }

        // The same recipe name and run directory, now failing in its second step.
        try write("""
        title: "Tiny recipe, broken"
        parameters: {seed: 0, per_class: 2}
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test, per_class: $per_class, classes: [4, 7]}
          - markdown: "Now a claim over a metric nobody records."
          - step: check
            id: ratio
            with: {claim: "test.count / model.test_accuracy >= 1"}
        """)
        XCTAssertThrowsError(try RecipeEngine.run(settings(path, ["per_class=3"]), verify: false, updateGoldens: false)) { e in
            print("error: \(e)")
            guard let f = e as? StepFailure else { return XCTFail("expected a StepFailure, got \(e)") }
            XCTAssertEqual(f.step, "ratio")
            XCTAssertEqual(f.kind, "check")
            XCTAssertEqual(f.file, path)
            XCTAssertEqual(f.line, 8)
            XCTAssertNil(f.cacheEntry, "a step that read no cache entry gets no --force hint")
            XCTAssertEqual("\(e)", "\(path):8: step 'ratio' (check) failed: claim 'test.count / model.test_accuracy >= 1': no metric 'model.test_accuracy' was recorded by the steps before it")
        }
        for f in keep {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(f)), before[f], "\(f) of the earlier run changed")
        }
        XCTAssertEqual(files(under: out).filter { $0.contains(".tmp-") }, [], "temporary files left behind")

        // A step that throws from inside its work (a class the data set does not have).
        try write("""
        title: x
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test, per_class: 1, classes: [42]}
        """)
        let t = errorText { try RecipeEngine.run(self.settings(path), verify: false, updateGoldens: false) }
        XCTAssertTrue(t.hasPrefix("\(path):3: step 'test' (load_data) failed: "), t)
        XCTAssertTrue(t.contains("class 42"), t)
        for f in keep {
            XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent(f)), before[f], "\(f) of the earlier run changed")
        }
        XCTAssertEqual(files(under: out).filter { $0.contains(".tmp-") }, [])
    }

    // MARK: Goldens

    func testGoldenUpdateVerifyAndMismatch() throws {
        let path = try write(Self.tiny)
        let expected = tmp.appendingPathComponent("golden/tiny/expected.json")

        // verify without a golden file: a clear error, not a pass.
        let t = errorText { try RecipeEngine.run(self.settings(path), verify: true, updateGoldens: false) }
        XCTAssertTrue(t.contains("\(expected.path): no golden file; create one deliberately with `runner verify <recipe> --update-goldens`"), t)

        let u = try RecipeEngine.run(settings(path), verify: true, updateGoldens: true)
        XCTAssertTrue(u.verificationPassed)
        XCTAssertTrue(u.summary.contains("goldens: updated"), u.summary)
        var g = try json(expected)
        XCTAssertTrue((g["provenance"] as? String ?? "").contains("engine-generated"), "\(g)")
        var metrics = try XCTUnwrap(g["metrics"] as? [String: [String: Any]])
        XCTAssertEqual(Set(metrics.keys), ["test.count", "enough.holds"])
        XCTAssertEqual(metrics["test.count"]?["value"] as? Double, 4)
        XCTAssertEqual(metrics["test.count"]?["tolerance"] as? Double, 1e-4)

        let v = try RecipeEngine.run(settings(path), verify: true, updateGoldens: false)
        XCTAssertTrue(v.verificationPassed, v.summary)
        XCTAssertTrue(v.summary.contains("golden: 2 passed, 0 failed"), v.summary)
        XCTAssertTrue(v.summary.contains("verify: passed"), v.summary)
        XCTAssertEqual(try json(v.directory.appendingPathComponent("manifest.json"))["verification"] as? String, "passed")

        // Edit a value (as an integer, the way a person would type it): verify fails and lists it.
        var text = try String(contentsOf: expected, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"value\" : 4", with: "\"value\" : 5")
        XCTAssertTrue(text.contains("\"value\" : 5"), text)
        try text.write(to: expected, atomically: true, encoding: .utf8)
        let f = try RecipeEngine.run(settings(path), verify: true, updateGoldens: false)
        print(f.summary)
        XCTAssertFalse(f.verificationPassed)
        XCTAssertTrue(f.summary.contains("golden mismatch: test.count: measured 4, expected 5 ± 0.0001"), f.summary)
        XCTAssertTrue(f.summary.contains("golden: 1 passed, 1 failed"), f.summary)
        XCTAssertTrue(f.summary.contains("verify: FAILED"), f.summary)
        XCTAssertEqual(try json(f.directory.appendingPathComponent("manifest.json"))["verification"] as? String, "failed")
        XCTAssertTrue(try String(contentsOf: f.directory.appendingPathComponent("report.md"), encoding: .utf8).contains("Golden verification"))

        // Ranges and tolerances, typed as integers or floats.
        g = try json(expected)
        metrics = g["metrics"] as! [String: [String: Any]]
        metrics["test.count"] = ["value": 3, "tolerance": 1]
        metrics["enough.holds"] = ["min": 1]
        metrics["missing.metric"] = ["max": 2.5]
        g["metrics"] = metrics
        try JSONSerialization.data(withJSONObject: g).write(to: expected)
        let r = try RecipeEngine.run(settings(path), verify: true, updateGoldens: false)
        print(r.summary)
        XCTAssertFalse(r.verificationPassed)
        XCTAssertTrue(r.summary.contains("golden mismatch: missing.metric: measured missing, expected recorded by the run"), r.summary)
        XCTAssertTrue(r.summary.contains("golden: 2 passed, 1 failed"), r.summary)
        metrics["test.count"] = ["min": 5]
        metrics["missing.metric"] = nil
        g["metrics"] = metrics
        try JSONSerialization.data(withJSONObject: g).write(to: expected)
        let r2 = try RecipeEngine.run(settings(path), verify: true, updateGoldens: false)
        XCTAssertTrue(r2.summary.contains("golden mismatch: test.count: measured 4, expected ≥ 5"), r2.summary)

        // --update-goldens keeps declared tolerances and ranges.
        metrics["test.count"] = ["value": 9, "tolerance": 0.5]
        g["metrics"] = metrics
        try JSONSerialization.data(withJSONObject: g).write(to: expected)
        _ = try RecipeEngine.run(settings(path), verify: true, updateGoldens: true)
        let kept = try json(expected)["metrics"] as! [String: [String: Any]]
        XCTAssertEqual(kept["test.count"]?["value"] as? Double, 4)
        XCTAssertEqual(kept["test.count"]?["tolerance"] as? Double, 0.5)
        XCTAssertEqual(kept["enough.holds"]?["min"] as? Double, 1)
        XCTAssertNil(kept["enough.holds"]?["value"])

        // A golden file that is not JSON.
        try Data("{not json".utf8).write(to: expected)
        XCTAssertTrue(errorText { try RecipeEngine.run(self.settings(path), verify: true, updateGoldens: false) }
            .contains("\(expected.path): not a JSON object"))
    }

    func testRequiredClaimThatFailsFailsVerification() throws {
        let path = try write("""
        title: x
        parameters: {seed: 0}
        cells:
          - step: load_data
            id: test
            with: {dataset: mnist5k, split: test, per_class: 2, classes: [1]}
          - step: check
            id: soft
            with: {claim: "test.count >= 3", says: "a reported claim"}
          - step: check
            id: hard
            with: {claim: "test.count >= 3", says: "a required claim", required: true}
        """, name: "claims")
        let run = try RecipeEngine.run(settings(path), verify: false, updateGoldens: false)
        XCTAssertTrue(run.summary.contains("claim does not hold: a reported claim (measured 2 vs 3, expected test.count >= 3 (reported, not required))"), run.summary)
        XCTAssertTrue(run.summary.contains("claim does not hold: a required claim (measured 2 vs 3, expected test.count >= 3)"), run.summary)
        // Goldens recorded from this very run (so every metric matches): the required claim
        // still fails verification, the reported one does not.
        let u = try RecipeEngine.run(settings(path), verify: true, updateGoldens: true)
        print(u.summary)
        let v = try RecipeEngine.run(settings(path), verify: true, updateGoldens: false)
        print(v.summary)
        XCTAssertFalse(v.verificationPassed, v.summary)
        XCTAssertTrue(v.summary.contains("required claim does not hold: a required claim"), v.summary)
        XCTAssertFalse(v.summary.contains("required claim does not hold: a reported claim"), v.summary)
        XCTAssertTrue(v.summary.contains("verify: FAILED"), v.summary)
    }

    // MARK: Caching

    static let trained = """
    title: "Cached training"
    parameters: {seed: 0, per_class: 2}
    cells:
      - step: load_data
        id: train_set
        with: {dataset: mnist5k, split: train, per_class: $per_class}
      - step: load_data
        id: test_set
        with: {dataset: mnist5k, split: test, per_class: 2}
      - step: train
        id: cnn
        with: {model: mnist_cnn, train: train_set, test: test_set, epochs: 1, batch_size: 8}
    """

    func testTrainStepIsCachedByContentHash() throws {
        let cachedKinds = StepRegistry.all.filter { $0.cached }.map { $0.kind }
        XCTAssertTrue(cachedKinds.contains("train"), "`train` must be a cached step kind (cached kinds: \(cachedKinds))")
        let path = try write(Self.trained, name: "trained")
        let out = tmp.appendingPathComponent("run")
        func run(_ overrides: [String] = [], seed: UInt64? = nil, force: Bool = false) throws -> (step: [String: Any], accuracy: Double) {
            var s = settings(path, overrides, seed: seed)
            s.force = force
            let r = try RecipeEngine.run(s, verify: false, updateGoldens: false)
            let steps = try json(r.directory.appendingPathComponent("manifest.json"))["steps"] as! [[String: Any]]
            let acc = try XCTUnwrap(try json(r.directory.appendingPathComponent("metrics.json"))["cnn.test_accuracy"] as? Double)
            return (steps.first { $0["id"] as? String == "cnn" }!, acc)
        }
        func entry(_ step: [String: Any]) -> URL {
            out.appendingPathComponent("cache/cnn-\((step["hash"] as! String).prefix(16))")
        }

        let first = try run()
        XCTAssertEqual(first.step["cached"] as? Bool, false)
        let dir = entry(first.step)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("complete"), encoding: .utf8), "\(first.step["hash"] as! String)\n")
        // The trained model is a unit of work: it lives in the unit store under its own key.
        let unitKey = try XCTUnwrap(try RecipeEngine.workUnits(settings(path)).first { $0.id == "cnn/run0" })
        let unit = out.appendingPathComponent("cache/units/\(unitKey.directoryName)")
        let checkpoint = try Data(contentsOf: unit.appendingPathComponent("model.safetensors"))
        XCTAssertGreaterThan(checkpoint.count, 1000)

        // Nothing changed: the cached model and records are used, the numbers are identical.
        let second = try run()
        XCTAssertEqual(second.step["cached"] as? Bool, true)
        XCTAssertEqual(second.step["hash"] as? String, first.step["hash"] as? String)
        XCTAssertEqual(second.accuracy, first.accuracy)
        XCTAssertEqual(try Data(contentsOf: unit.appendingPathComponent("model.safetensors")), checkpoint)

        // --force retrains; training is deterministic, so the same numbers and weights come back.
        let forced = try run(force: true)
        XCTAssertEqual(forced.step["cached"] as? Bool, false)
        XCTAssertEqual(forced.accuracy, first.accuracy)
        XCTAssertEqual(try Data(contentsOf: unit.appendingPathComponent("model.safetensors")), checkpoint)

        // An upstream change (more training images) and another seed are new cache entries.
        let upstream = try run(["per_class=3"])
        XCTAssertEqual(upstream.step["cached"] as? Bool, false)
        XCTAssertNotEqual(upstream.step["hash"] as? String, first.step["hash"] as? String)
        let reseeded = try run(seed: 1)
        XCTAssertEqual(reseeded.step["cached"] as? Bool, false)
        XCTAssertNotEqual(reseeded.step["hash"] as? String, first.step["hash"] as? String)
        XCTAssertEqual(try run().step["cached"] as? Bool, true, "the first entry is still there")

        // A step interrupted before it finished leaves no `complete` marker: it runs again.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("complete"))
        let resumed = try run()
        XCTAssertEqual(resumed.step["cached"] as? Bool, false)
        XCTAssertEqual(resumed.accuracy, first.accuracy)
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.appendingPathComponent("complete").path))
        XCTAssertEqual(files(under: out).filter { $0.contains(".tmp-") }, [])

        // A damaged cache entry (checkpoint truncated) must not pass as a model.
        try Data(checkpoint.prefix(100)).write(to: unit.appendingPathComponent("model.safetensors"))
        XCTAssertThrowsError(try run()) { e in
            print("damaged cache entry: \(e)")
            XCTAssertEqual((e as? StepFailure)?.cacheEntry, dir.path)
            XCTAssertTrue("\(e)".hasPrefix("\(path):10: step 'cnn' (train) failed: \(unit.path)/model.safetensors: truncated"), "\(e)")
            XCTAssertTrue("\(e)".hasSuffix("(while reading its cached outputs in \(dir.path); rerun with --force to recompute them)"), "\(e)")
        }
        let repaired = try run(force: true)
        XCTAssertEqual(repaired.accuracy, first.accuracy)
        XCTAssertEqual(try Data(contentsOf: unit.appendingPathComponent("model.safetensors")), checkpoint)
    }

    // MARK: The shipped recipes

    /// Every recipe in the repository's recipes/ loads, resolves (each `scale` variant too) and
    /// validates every step — a dry run: nothing trains, nothing is written.
    func testShippedRecipesValidate() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let dir = repo.appendingPathComponent("recipes")
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []).filter { $0.hasSuffix(".yaml") }.sorted()
        try XCTSkipIf(names.isEmpty, "no recipes/ directory in this checkout")
        for name in names {
            let path = dir.appendingPathComponent(name).path
            let recipe = try Recipe.load(URL(fileURLWithPath: path))
            var scales: [String?] = [nil]
            if case .choice(let c)? = recipe.parameters.first(where: { $0.name == "scale" })?.type { scales = c }
            for scale in scales {
                let out = tmp.appendingPathComponent("dry-\(name)")
                let r = try RecipeEngine.run(settings(path, scale.map { ["scale=\($0)"] } ?? [], out: out.path, dryRun: true),
                                             verify: false, updateGoldens: false)
                XCTAssertTrue(r.summary.hasSuffix("(dry run: nothing was executed)"), name)
                XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), name)
                print("\(name)\(scale.map { " (scale=\($0))" } ?? ""): \(recipe.cells.count) cells validate")
            }
        }
    }

    // MARK: Catalogue

    func testCatalogueListsRecipesAndSteps() throws {
        try write(Self.tiny)
        try write("title: broken\ncells:\n  - step: nope\n", name: "broken")
        try Data("not a recipe".utf8).write(to: tmp.appendingPathComponent("recipes/notes.txt"))
        let dir = tmp.appendingPathComponent("recipes").path
        let list = try Catalogue.recipes(in: dir)
        print(list)
        // One line per recipe, then (indented) one per scale: what it needs and how long it takes.
        let all = list.split(separator: "\n").map(String.init)
        XCTAssertEqual(all.filter { $0.hasPrefix("    ") }, ["    ci (default): offline; time not stated", "    paper: offline; time not stated"], list)
        let lines = all.filter { !$0.hasPrefix("    ") }
        XCTAssertEqual(lines.count, 3, list)
        XCTAssertTrue(lines[0].hasPrefix("recipe"), list)
        XCTAssertTrue(lines[1].contains("broken.yaml") && lines[1].contains("(does not load: run it to see the error)"), list)
        XCTAssertTrue(lines[2].contains("tiny.yaml") && lines[2].contains("A") && lines[2].contains("t1") && lines[2].hasSuffix("Tiny recipe"), list)
        XCTAssertEqual(errorText { try Catalogue.recipes(in: self.tmp.appendingPathComponent("nowhere").path) },
                       "\(tmp.appendingPathComponent("nowhere").path): no such directory (run from the repository root, or pass --dir)")

        let steps = Catalogue.steps()
        for k in ["load_data", "check", "explain", "ascend"] { XCTAssertTrue(steps.contains("\n\(k) "), steps) }
        XCTAssertEqual(steps.split(separator: "\n").count, StepRegistry.all.count + 1)
        let methods = Catalogue.methods()
        for m in ["gradient", "excitation_pullback"] { XCTAssertTrue(methods.contains("\n\(m) "), methods) }
    }
}
