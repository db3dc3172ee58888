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
//       train_steps: 300
//       learning_rate: 0.1
//
// Records per width w and depth d: `<id>.w<w>.d<d>.median`, `.smallest`, `.bulk_deviation`,
// `.ecdf_distance` (sup distance to the ideal spectrum's e.c.d.f.), and per width the depth whose
// median eigenvalue is closest to 1, `<id>.w<w>.best_depth_median`, and whose bulk deviation is
// smallest, `<id>.w<w>.best_depth_bulk`; with training, `<id>.w<w>.d<d>.final_loss` and
// `<id>.w<w>.best_depth_loss`. Plots: the e.c.d.f.s per width, the summaries against depth.
import Foundation

struct MemorisationSpectraStep: RecipeStep {
    static let kind = "memorisation_spectra"
    static let summary = "Eigenvalue e.c.d.f. of the memorisation network's neural path kernel against its ideal spectrum, per depth and width (needs no data)."
    static let keys = ["examples", "widths", "depths", "seed", "train_widths", "train_steps", "learning_rate"]

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
        trainWidths = try ints("train_widths", [])
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
