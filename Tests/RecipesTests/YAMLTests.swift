import XCTest
import Foundation
import Recipes

final class YAMLTests: XCTestCase {
    /// The error text of `body`, or a failure if it does not throw.
    func errorText(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> String {
        do { _ = try body(); XCTFail("expected an error", file: file, line: line); return "" } catch {
            print("YAML error: \(error)")
            return "\(error)"
        }
    }

    static let recipe = """
    # a recipe-like document
    title: "Figure 1"
    model:
      arch: resnet50
      temperature: 0.3
      soft: true
    steps:
      - {alpha: 20, count: 5}
      - alpha: 1.5e1
        count: 0x0A
    labels: [tench, 'ostrich', "9"]
    empty:
    notes: |
      line one
      line two
    """

    func testNestedStructureMarksAndOrder() throws {
        let root = try YAMLParser.parse(Self.recipe, file: "recipe.yaml")
        XCTAssertEqual(try root.keys, ["title", "model", "steps", "labels", "empty", "notes"])
        XCTAssertEqual(try root.string(at: "title"), "Figure 1")
        let model = try root.node(at: "model")
        XCTAssertEqual(model.mark, YAMLMark(line: 4, column: 3))
        XCTAssertEqual(model.path, "model")
        XCTAssertEqual(try model.string(at: "arch"), "resnet50")
        XCTAssertEqual(try model.double(at: "temperature"), 0.3)
        XCTAssertEqual(try model.bool(at: "soft"), true)
        let steps = try root.array(at: "steps")
        XCTAssertEqual(steps.count, 2)
        XCTAssertEqual(steps[0].mark, YAMLMark(line: 8, column: 5))
        XCTAssertEqual(try steps[0].int(at: "alpha"), 20)
        XCTAssertEqual(try steps[0].double(at: "alpha"), 20)
        XCTAssertEqual(try steps[1].double(at: "alpha"), 15)
        XCTAssertEqual(try steps[1].int(at: "count"), 10)
        XCTAssertEqual(try steps[1].node(at: "count").mark, YAMLMark(line: 10, column: 12))
        XCTAssertEqual(try steps[1].node(at: "count").path, "steps[1].count")
        let labels = try root.array(at: "labels")
        XCTAssertEqual(try labels.map { try $0.string }, ["tench", "ostrich", "9"])
        guard case .scalar(_, let style) = labels[1].kind else { return XCTFail("scalar expected") }
        XCTAssertEqual(style, .singleQuoted)
        XCTAssertEqual(labels[2].mark, YAMLMark(line: 11, column: 28))
        XCTAssertTrue(try root.node(at: "empty").isNull)
        XCTAssertEqual(try root.int(at: "empty", default: 7), 7)
        XCTAssertEqual(try root.int(at: "absent", default: 3), 3)
        XCTAssertEqual(try root.string(at: "notes"), "line one\nline two")
        XCTAssertNil(try root.value(at: "absent"))
    }

    func testTypeErrorsNameFileLineColumnAndKey() throws {
        let root = try YAMLParser.parse("steps: abc\nn: \"3\"\nx: 1.5\nflag: yes\nbig: 99999999999999999999999\nm: {a: 1}\n", file: "recipe.yaml")
        XCTAssertEqual(errorText { try root.array(at: "steps") }, "recipe.yaml:1:8: key 'steps': expected a sequence, found a scalar 'abc'")
        XCTAssertEqual(errorText { try root.int(at: "n") }, "recipe.yaml:2:4: key 'n': expected an integer, found a quoted string '3'")
        XCTAssertEqual(errorText { try root.int(at: "x") }, "recipe.yaml:3:4: key 'x': expected an integer, found the number '1.5' (not a whole number)")
        XCTAssertTrue(errorText { try root.bool(at: "flag") }.hasPrefix("recipe.yaml:4:7: key 'flag': expected a boolean (true or false), found 'yes'"))
        XCTAssertEqual(errorText { try root.int(at: "big") }, "recipe.yaml:5:6: key 'big': integer '99999999999999999999999' is out of range")
        XCTAssertEqual(errorText { try root.string(at: "m") }, "recipe.yaml:6:4: key 'm': expected a string, found a mapping (1 key)")
        XCTAssertEqual(errorText { try root.node(at: "m").double(at: "b") }, "recipe.yaml:6:4: key 'm': missing key 'b'")
        XCTAssertEqual(errorText { try root.node(at: "stpes") }, "recipe.yaml:1:1: missing key 'stpes' (the mapping has 'steps': a typo for 'stpes'?)")
        XCTAssertEqual(errorText { try root.node(at: "steps").value(at: "a") }, "recipe.yaml:1:8: key 'steps': expected a mapping, found a scalar 'abc'")
    }

    func testCheckKeysSuggestsNearestName() throws {
        let root = try YAMLParser.parse("steps:\n  - alpha: 1\n    tempreature: 0.2\n", file: "r.yaml")
        let step = try root.array(at: "steps")[0]
        XCTAssertNoThrow(try step.checkKeys(allowed: ["alpha", "tempreature"]))
        XCTAssertEqual(errorText { try step.checkKeys(allowed: ["alpha", "temperature"]) },
                       "r.yaml:3:5: key 'steps[0]': unknown key 'tempreature'; did you mean 'temperature'?")
        XCTAssertEqual(errorText { try step.checkKeys(allowed: ["alpha", "beta"]) },
                       "r.yaml:3:5: key 'steps[0]': unknown key 'tempreature' (allowed: alpha, beta)")
    }

    func testNearestNameAndEditDistance() {
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(editDistance("", "abc"), 3)
        XCTAssertEqual(editDistance("same", "same"), 0)
        XCTAssertEqual(editDistance("stpes", "steps"), 1)      // adjacent swap counts 1
        XCTAssertEqual(editDistance("ab", "ba"), 1)
        XCTAssertNil(nearestName(to: "b", candidates: ["a"]))   // one letter is no typo evidence
        XCTAssertEqual(nearestName(to: "tempreature", candidates: ["alpha", "temperature"]), "temperature")
        XCTAssertEqual(nearestName(to: "Alpha", candidates: ["beta", "alpha"]), "alpha")
        XCTAssertEqual(nearestName(to: "stpes", candidates: ["steps", "seeds"]), "steps")
        XCTAssertNil(nearestName(to: "zzz", candidates: ["alpha", "temperature"]))
        XCTAssertNil(nearestName(to: "x", candidates: []))
    }

    func testCoreSchemaScalars() throws {
        let root = try YAMLParser.parse("""
        a: -12
        b: +7
        c: 0o17
        d: .5
        e: -1.25e-3
        f: .inf
        g: -.Inf
        h: .nan
        i: TRUE
        j: False
        k: 1_000
        l: 0x1F
        m: !!str 12
        n: ~
        o: 1e5
        p: abc
        """, file: "s.yaml")
        XCTAssertEqual(try root.int(at: "a"), -12)
        XCTAssertEqual(try root.int(at: "b"), 7)
        XCTAssertEqual(try root.int(at: "c"), 15)
        XCTAssertEqual(try root.double(at: "d"), 0.5)
        XCTAssertEqual(try root.double(at: "e"), -0.00125)
        XCTAssertEqual(try root.double(at: "f"), .infinity)
        XCTAssertEqual(try root.double(at: "g"), -.infinity)
        XCTAssertTrue(try root.double(at: "h").isNaN)
        XCTAssertEqual(try root.bool(at: "i"), true)
        XCTAssertEqual(try root.bool(at: "j"), false)
        XCTAssertEqual(errorText { try root.int(at: "k") }, "s.yaml:11:4: key 'k': expected an integer, found a scalar '1_000'")
        XCTAssertEqual(try root.int(at: "l"), 31)
        XCTAssertEqual(try root.string(at: "m"), "12")
        XCTAssertTrue(errorText { try root.int(at: "m") }.contains("expected an integer, found a quoted string '12'"))
        XCTAssertEqual(errorText { try root.string(at: "n") }, "s.yaml:14:4: key 'n': expected a string, found null")
        XCTAssertEqual(try root.double(at: "o"), 100000)
        XCTAssertEqual(errorText { try root.double(at: "p") }, "s.yaml:16:4: key 'p': expected a number, found a scalar 'abc'")
        XCTAssertEqual(errorText { try root.bool(at: "a") }, "s.yaml:1:4: key 'a': expected a boolean (true or false), found a scalar '-12'")
    }

    func testDuplicateKeysAreErrors() {
        XCTAssertEqual(errorText { try YAMLParser.parse("a: 1\nb: 2\na: 3\n", file: "dup.yaml") },
                       "dup.yaml:3:1: duplicate key 'a' (first defined at line 1, column 1)")
        XCTAssertEqual(errorText { try YAMLParser.parse("m:\n  x: 1\n  y: 2\n  x: 3\n", file: "dup.yaml") },
                       "dup.yaml:4:3: duplicate key 'x' in 'm' (first defined at line 2, column 3)")
        XCTAssertEqual(errorText { try YAMLParser.parse("{a: 1, a: 2}", file: "dup.yaml") },
                       "dup.yaml:1:8: duplicate key 'a' (first defined at line 1, column 2)")
        // Same key in different mappings is fine.
        XCTAssertNoThrow(try YAMLParser.parse("- a: 1\n- a: 2\n", file: "ok.yaml"))
    }

    func testMalformedYAMLNamesFileLineColumnAndProblem() {
        let unclosed = errorText { try YAMLParser.parse("title: \"Figure 1\nsteps: 3\n", file: "bad.yaml") }
        XCTAssertTrue(unclosed.hasPrefix("bad.yaml:3:1: found unexpected end of stream while scanning a quoted scalar (started at 1:8)"), unclosed)
        let indent = errorText { try YAMLParser.parse("model:\n  arch: resnet50\n   depth: 50\n", file: "bad.yaml") }
        XCTAssertTrue(indent.hasPrefix("bad.yaml:3:9: mapping values are not allowed in this context"), indent)
        let dedent = errorText { try YAMLParser.parse("a:\n  b: 1\n c: 2\n", file: "bad.yaml") }
        XCTAssertTrue(dedent.hasPrefix("bad.yaml:3:2: did not find expected key while parsing a block mapping (started at 1:1)"), dedent)
        let tab = errorText { try YAMLParser.parse("a:\n\tb: 1\n", file: "bad.yaml") }
        XCTAssertTrue(tab.hasPrefix("bad.yaml:2:1: found character that cannot start any token"), tab)
        let flow = errorText { try YAMLParser.parse("a: [1, 2\nb: 3\n", file: "bad.yaml") }
        XCTAssertTrue(flow.hasPrefix("bad.yaml:"), flow)
        let twoDocs = errorText { try YAMLParser.parse("a: 1\n---\nb: 2\n", file: "bad.yaml") }
        XCTAssertEqual(twoDocs, "bad.yaml:2:1: expected a single YAML document, found a second one ('---')")
        let badUTF8 = errorText { try YAMLParser.parse(Data([0x61, 0x3A, 0x20, 0xFF, 0xFE, 0x0A]), file: "bin.yaml") }
        XCTAssertTrue(badUTF8.hasPrefix("bin.yaml:1:1: cannot read input at byte offset 3: invalid"), badUTF8)
        let complexKey = errorText { try YAMLParser.parse("? [a, b]\n: 1\n", file: "bad.yaml") }
        XCTAssertEqual(complexKey, "bad.yaml:1:3: mapping keys must be scalars, found a sequence (2 items)")
    }

    func testAliasesResolveToAnchoredNode() throws {
        let root = try YAMLParser.parse("""
        base: &opt {alpha: 20, steps: 5}
        runs:
          - *opt
          - {alpha: 1}
        """, file: "a.yaml")
        let runs = try root.array(at: "runs")
        XCTAssertEqual(try runs[0].int(at: "alpha"), 20)
        XCTAssertEqual(try runs[0].node(at: "steps").path, "runs[0].steps")
        XCTAssertEqual(try runs[0].node(at: "steps").mark, YAMLMark(line: 1, column: 31))   // where the value is written
        XCTAssertEqual(errorText { try YAMLParser.parse("a: *nope\n", file: "a.yaml") },
                       "a.yaml:1:4: unknown alias '*nope' (no anchor '&nope' before it)")
        // An alias bomb is refused, not expanded.
        var bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...6 { bomb += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        XCTAssertTrue(errorText { try YAMLParser.parse(bomb, file: "bomb.yaml") }.contains("aliases expand to more than"))
    }

    func testEmptyDocumentAndFileErrors() throws {
        XCTAssertTrue(try YAMLParser.parse("", file: "e.yaml").isNull)
        XCTAssertTrue(try YAMLParser.parse("# only a comment\n", file: "e.yaml").isNull)
        XCTAssertEqual(errorText { try YAMLParser.parse("", file: "e.yaml").string(at: "title") },
                       "e.yaml:1:1: expected a mapping, found null")
        XCTAssertTrue(errorText { try YAMLParser.parse(file: URL(fileURLWithPath: "/nonexistent/r.yaml")) }.hasPrefix("/nonexistent/r.yaml:1:1: cannot read file"))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("yamltests-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("r.yaml")
        try "title: x\nsteps: 3\n".write(to: url, atomically: true, encoding: .utf8)
        XCTAssertEqual(errorText { try YAMLParser.parse(file: url).array(at: "steps") }, "\(url.path):2:8: key 'steps': expected a sequence, found a scalar '3'")
    }
}
