// MARK: - Golden verification
//
// golden/<recipe>/expected.json holds what a run must reproduce, each entry with its own
// tolerance:
//   {
//     "provenance": "where these values came from (PyTorch script, or engine-generated)",
//     "metrics": { "cnn.test_accuracy": {"value": 0.93, "tolerance": 0.02},
//                  "dlgn_ratio":        {"min": 0.835} },
//     "images":  { "pga_grid.png": {"max_abs": 3, "mean_abs": 0.5} }
//   }
// Images are compared as decoded 8-bit pixels (not PNG bytes) against golden/<recipe>/<file>;
// a failed image writes diff-<file> (|difference| amplified) into the run directory.
// `--update-goldens` rewrites values and images deliberately, keeping declared tolerances.
import Foundation
import SIMDCore

struct Golden {
    let directory: URL
    let file: URL

    init(recipe: Recipe) {
        // recipes/<name>.yaml → golden/<name>/ beside the recipes directory.
        let root = URL(fileURLWithPath: recipe.file).deletingLastPathComponent().deletingLastPathComponent()
        directory = root.appendingPathComponent("golden/\(recipe.name)")
        file = directory.appendingPathComponent("expected.json")
    }

    struct Outcome {
        let passed: Bool; let checks: [CheckResult]; let lines: [String]
        /// Failed images beside their goldens, for the report.
        var comparisons: [Report.Block] = []
    }

    var provenance: String {
        guard let obj = try? loadJSON(), let p = obj["provenance"] as? String else { return "" }
        var text = "Goldens: \(p)"
        if let made = obj["parameters"] as? [String: String] {
            let overrides = (obj["overrides"] as? [String]) ?? []
            text += " Made with " + (overrides.isEmpty ? "no overrides" : "`" + overrides.map { "--set \($0)" }.joined(separator: " ") + "`")
                + "; parameters: " + made.keys.sorted().map { "\($0)=\(made[$0]!)" }.joined(separator: ", ") + "."
        }
        return text
    }

    // MARK: The parameters a golden was made with

    /// The parameters the goldens were made with: those `--update-goldens` recorded, else (older
    /// goldens) the recipe's defaults. Nil when there is no golden file.
    func reference(defaults: ResolvedParameters) -> (values: [String: String], recorded: Bool)? {
        guard let obj = try? loadJSON() else { return nil }
        if let made = obj["parameters"] as? [String: String] { return (made, true) }
        return (Dictionary(uniqueKeysWithValues: defaults.order.map { ($0, defaults[$0]!.description) }), false)
    }

    /// Whether the goldens exist and were made with `run`'s parameters.
    func matches(_ run: ResolvedParameters, defaults: ResolvedParameters) -> Bool {
        guard let (reference, _) = reference(defaults: defaults) else { return false }
        return !run.order.contains { reference[$0] != nil && reference[$0] != run[$0]!.description }
    }

    /// "scale=ci, size=64, …": the goldens' parameters that differ from `run`'s.
    func settingsText(run: ResolvedParameters, defaults: ResolvedParameters) -> String {
        guard let (reference, _) = reference(defaults: defaults) else { return "none" }
        return run.order.filter { reference[$0] != nil && reference[$0] != run[$0]!.description }
            .map { "\($0)=\(reference[$0]!)" }.joined(separator: ", ")
    }

    /// Refuses to verify a run whose parameters differ from the goldens' unless the user insists:
    /// the comparison would measure the difference of settings, not of code.
    func checkParameters(_ run: ResolvedParameters, defaults: ResolvedParameters, overrides: [String]) throws {
        guard let (reference, recorded) = reference(defaults: defaults) else { return }
        let differing = run.order.filter { reference[$0] != nil && reference[$0] != run[$0]!.description }
        guard !differing.isEmpty else { return }
        let made = differing.map { "\($0)=\(reference[$0]!)" }.joined(separator: ", ")
        let now = differing.map { "\($0)=\(run[$0]!)" }.joined(separator: ", ")
        throw RecipeError("the goldens in \(directory.path) were made with \(made) (\(recorded ? "recorded in expected.json" : "the recipe's defaults")), "
                          + "but this run has \(now)\(overrides.isEmpty ? "" : " (from --set \(overrides.joined(separator: " --set ")))"); "
                          + "comparing them would measure the change of settings, not of the code. "
                          + "Verify without those overrides, or add --allow-overrides to compare anyway.")
    }

    func loadJSON() throws -> [String: Any] {
        guard let data = FileManager.default.contents(atPath: file.path) else {
            throw RecipeError("\(file.path): no golden file; create one deliberately with `runner verify <recipe> --update-goldens`")
        }
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw RecipeError("\(file.path): not a JSON object")
        }
        return obj
    }

    /// Compares the run in `ctx` (staged; `published` is where its files will be) with the
    /// goldens, or with `update` rewrites them, recording `overrides` and every parameter.
    func verify(_ ctx: RunContext, update: Bool, overrides: [String] = [], published: URL? = nil) throws -> Outcome {
        var obj: [String: Any] = (try? loadJSON()) ?? [:]
        if !update { obj = try loadJSON() }
        var metrics = obj["metrics"] as? [String: [String: Any]] ?? [:]
        var images = obj["images"] as? [String: [String: Any]] ?? [:]
        var checks: [CheckResult] = []
        var lines: [String] = []
        var comparisons: [Report.Block] = []

        if update {
            for (name, v) in ctx.metrics {
                guard v.isFinite else { throw RecipeError("--update-goldens: metric '\(name)' is \(v); golden values must be finite numbers") }
                var e = metrics[name] ?? ["tolerance": 1e-4]
                if e["min"] == nil && e["max"] == nil { e["value"] = v }
                metrics[name] = e
            }
            for img in ctx.images {
                images[img] = images[img] ?? ["max_abs": 2, "mean_abs": 0.25]
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                try AtomicFile.write(try Data(contentsOf: ctx.directory.appendingPathComponent(img)),
                                     to: directory.appendingPathComponent(img))
            }
            var out = obj
            out["metrics"] = metrics; out["images"] = images
            // What the goldens were made with: a later verify with other settings is refused.
            out["overrides"] = overrides
            out["parameters"] = Dictionary(uniqueKeysWithValues: ctx.parameters.order.map { ($0, ctx.parameters[$0]!.description) })
            if out["provenance"] == nil {
                out["provenance"] = "engine-generated by `runner verify --update-goldens`: guards against change only, not an independent reference"
            }
            let data = try JSONSerialization.data(withJSONObject: out, options: [.prettyPrinted, .sortedKeys])
            try AtomicFile.write(data, to: file)
        }

        // MARK: Metrics
        for name in metrics.keys.sorted() {
            let e = metrics[name]!
            guard let measured = ctx.metric(name) else {
                checks.append(CheckResult(name: name, passed: false, measured: "missing", expected: "recorded by the run"))
                continue
            }
            var ok = measured.isFinite   // a NaN or infinite metric fails every golden entry
            var expected: [String] = []
            if let v = e["value"] as? Double {
                let tol = e["tolerance"] as? Double ?? 0
                ok = ok && Discrepancy([measured], [v], tolerance: Tolerance(absolute: tol)).holds   // NaN/inf never pass
                expected.append("\(formatMetric(v)) ± \(tol)")
            }
            if let lo = e["min"] as? Double { ok = ok && measured >= lo; expected.append("≥ \(formatMetric(lo))") }
            if let hi = e["max"] as? Double { ok = ok && measured <= hi; expected.append("≤ \(formatMetric(hi))") }
            checks.append(CheckResult(name: name, passed: ok, measured: formatMetric(measured), expected: expected.joined(separator: ", ")))
        }

        // MARK: Images
        for name in images.keys.sorted() {
            let e = images[name]!
            let maxAllowed = e["max_abs"] as? Double ?? 0
            let meanAllowed = e["mean_abs"] as? Double ?? .infinity
            let got = ctx.directory.appendingPathComponent(name)
            let want = directory.appendingPathComponent(name)
            do {
                let a = try PNG.read(got), b = try PNG.read(want)
                let shown = (published ?? ctx.directory)
                guard a.width == b.width, a.height == b.height else {
                    checks.append(CheckResult(name: name, passed: false, measured: "this run at \(a.width)x\(a.height)",
                                              expected: "golden made at \(b.width)x\(b.height)",
                                              note: "a different size: the golden was made with other settings (scale, image size or upscale; see its parameters). Expected \(want.path), actual \(shown.appendingPathComponent(name).path)"))
                    comparisons.append(.canvas(Self.sideBySide([b, a]), file: "compare-\(name)",
                                    caption: "\(name): golden (left, \(b.width)x\(b.height)) and this run (right, \(a.width)x\(a.height)); sizes differ."))
                    continue
                }
                var maxD = 0, sum = 0
                var diff = RGBImage(width: a.width, height: a.height)
                for i in 0..<a.pixels.count {
                    let d = abs(Int(a.pixels[i]) - Int(b.pixels[i]))
                    maxD = max(maxD, d); sum += d
                    diff.pixels[i] = UInt8(min(255, d * 16))
                }
                let mean = Double(sum) / Double(max(a.pixels.count, 1))
                let ok = Double(maxD) <= maxAllowed && mean <= meanAllowed
                var note = ""
                if !ok {
                    try PNG.write(diff, to: ctx.directory.appendingPathComponent("diff-\(name)"))
                    note = "expected \(want.path), actual \(shown.appendingPathComponent(name).path), difference \(shown.appendingPathComponent("diff-\(name)").path)"
                    comparisons.append(.canvas(Self.sideBySide([b, a, diff]), file: "compare-\(name)",
                                    caption: "\(name): golden (left), this run (middle), |difference| x16 (right)."))
                }
                checks.append(CheckResult(name: name, passed: ok,
                                          measured: String(format: "max |Δ| %d, mean |Δ| %.3f levels", maxD, mean),
                                          expected: String(format: "max ≤ %.0f, mean ≤ %.3f", maxAllowed, meanAllowed), note: note))
            } catch {
                checks.append(CheckResult(name: name, passed: false, measured: "\(error)", expected: "a readable PNG"))
            }
        }
        let failed = checks.filter { !$0.passed }
        for c in failed.prefix(10) {
            lines.append("golden mismatch: \(c.name): measured \(c.measured), expected \(c.expected)" + (c.note.isEmpty ? "" : "\n  \(c.note)"))
        }
        lines.append("golden: \(checks.count - failed.count) passed, \(failed.count) failed (\(file.path))")
        return Outcome(passed: failed.isEmpty, checks: checks, lines: lines, comparisons: comparisons)
    }
}

extension Golden {
    /// Images side by side on white with an 8-pixel gap, tops aligned (for the report).
    static func sideBySide(_ images: [RGBImage]) -> RGBImage {
        let gap = 8
        let width = images.reduce(0) { $0 + $1.width } + gap * max(images.count - 1, 0)
        let height = images.map(\.height).max() ?? 1
        var out = RGBImage(width: max(width, 1), height: max(height, 1), fill: RGB(255, 255, 255))
        var x0 = 0
        for img in images {
            for y in 0..<img.height {
                let src = y * img.width * 3, dst = (y * out.width + x0) * 3
                out.pixels.replaceSubrange(dst..<(dst + img.width * 3), with: img.pixels[src..<(src + img.width * 3)])
            }
            x0 += img.width + gap
        }
        return out
    }
}
