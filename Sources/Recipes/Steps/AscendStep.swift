// MARK: - ascend: projected gradient ascent toward target classes (paper A, Figure 1)
//
//   - step: ascend
//     id: pga_pullback
//     with:
//       model: cnn
//       data: test
//       images: {classes: [0, 1, 2, 3, 4]}
//       targets: [0, 1, 2, 3, 4, 9]           # or "all", or "0, 482, 9" (a string parameter)
//       method: {method: excitation_pullback, temperature: 0.3}
//       steps: 5
//       alpha: 20                              # L2 length of each step (paper A; docs/method.md)
//       eps: 100                               # L2 radius of the projection ball
//       show: difference                       # difference (paper A's grids) | perturbed | both
//       judge: cnn2                            # optional: an independently trained model
//
// Grid: rows are images, column 0 the clean image, then one column per target; each cell is
// perturbed − clean (or the perturbed image), min-max scaled per cell as make_grid(scale_each).
// Records the fraction of off-diagonal (image, target) pairs now classified as the target and
// the mean gain of the target logit. With a `judge`, also the fraction the judge classifies as the
// target: a change that carries the target's features transfers to another network, while an
// adversarial perturbation of this network's gradient mostly does not.
import Foundation
import SIMDCore

/// What an `ascend` grid shows in each cell.
enum Show: String, RecipeName {
    /// perturbed − clean (paper A's grids).
    case difference
    case perturbed
    /// The difference grid, then the perturbed images as a second file.
    case both
    static let what = "show"
}

struct AscendStep: RecipeStep {
    static let kind = "ascend"
    static let summary = "Projected gradient ascent on target logits along a method's gradients (counterfactual grid)."
    static let keys = ["model", "data", "images", "targets", "method", "steps", "alpha", "eps", "show", "upscale", "colormap", "scaling", "file", "caption", "batch_size", "judge"]

    let id: String
    let model: StepInput
    let data: StepInput
    let selection: ImageSelection
    let targets: [Int]?
    let method: ExplanationMethod
    let steps: Int
    let alpha: Float, eps: Float
    let showDifference: Bool
    /// `show: both`: the difference grid, then the perturbed images as `<file stem>_perturbed.png`.
    let showBoth: Bool
    let upscale: Int
    let diverging: Bool
    let scaling: GridScaling
    let file: String
    let caption: String?
    let batchSize: Int
    /// An independently trained Classifier that judges the perturbed images.
    let judge: StepInput?
    var inputs: [StepInput] { [model, data] + (judge.map { [$0] } ?? []) }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        model = try StepInput("model", in: config, type: .classifier)
        data = try StepInput("data", in: config, type: .dataset)
        selection = try ImageSelection(try config.optional("images"))
        let t = try config.node(at: "targets")
        if case .scalar = t.kind {
            // "all", or a comma-separated list (so a `scale` variant can choose the targets).
            let text = try t.string
            if text == "all" { targets = nil } else {
                let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                let ints = parts.compactMap { Int($0) }
                guard !parts.isEmpty, ints.count == parts.count else {
                    throw t.error("targets must be a list of class indices, a comma-separated string of them (\"0, 482, 9\") or 'all', got '\(text)'")
                }
                targets = ints
            }
        } else { targets = try t.array.map { try $0.int } }
        method = try ExplanationMethod.parse(try config.node(at: "method"))
        steps = try config.int(at: "steps", default: 5)
        alpha = Float(try config.double(at: "alpha", default: 20))
        eps = Float(try config.double(at: "eps", default: 100))
        guard steps >= 0, alpha > 0, eps > 0 else { throw config.error("steps must be ≥ 0 and alpha, eps positive") }
        let show = try config.name(at: "show", default: Show.difference)
        showDifference = show != .perturbed
        showBoth = show == .both
        upscale = try config.int(at: "upscale", default: 1, in: 1...ImageGrid.maxUpscale)
        diverging = try config.name(at: "colormap", default: Colormap.none) == .diverging
        scaling = try config.name(at: "scaling", default: GridScaling.cell)
        file = try config.string(at: "file", default: "\(id).png")
        caption = try config.optional("caption")?.string
        batchSize = try config.int(at: "batch_size", default: 8)
        judge = try StepInput(optional: "judge", in: config, type: .classifier)
    }

    func run(_ ctx: RunContext) throws {
        let net = try ctx.classifier(model)
        let d = try ctx.dataset(data)
        let ix = try selection.indices(in: d)
        let x = d.modelInput(ix)
        let classes = d.classNames.count
        let ts = targets ?? Array(0..<classes)
        for t in ts where t < 0 || (classes > 0 && t >= classes) {
            throw RecipeError("step '\(id)': target class \(t) is out of range (\(classes) classes)")
        }
        let pga = PGA(alpha: alpha, eps: eps, steps: steps, method: method)
        let bar = ProgressBar(label: "  \(id)", total: ix.count * ts.count, enabled: !ctx.settings.quiet)
        let r = try pga.grid(model: net, images: x, targets: ts, batchSize: batchSize) { bar.update($0) }
        bar.finish()

        // Success: perturbed image classified as its target (off-diagonal pairs only).
        let tape = Tape(recording: false)
        let before = tape.value(try net.logits(tape, tape.input(x), policy: .vanilla))
        let after = tape.value(try net.logits(tape, tape.input(r.perturbed), policy: .vanilla))
        let predicted = argmaxRows(after)
        let c = after.shape.last!
        var hits = 0, pairs = 0, gain = 0.0
        for (i, img) in ix.enumerated() {
            for (k, t) in ts.enumerated() {
                let row = i * ts.count + k
                gain += Double(after.scalars[row * c + t] - before.scalars[i * c + t])
                guard t != d.labels[img] else { continue }
                pairs += 1
                if predicted[row] == t { hits += 1 }
            }
        }
        ctx.record("\(id).success_rate", pairs > 0 ? Double(hits) / Double(pairs) : 0)
        if let j = judge {
            let judgeNet = try ctx.classifier(j)
            let seen = argmaxRows(tape.value(try judgeNet.logits(tape, tape.input(r.perturbed), policy: .vanilla)))
            var fooled = 0
            for (i, img) in ix.enumerated() {
                for (k, t) in ts.enumerated() where t != d.labels[img] && seen[i * ts.count + k] == t { fooled += 1 }
            }
            ctx.record("\(id).judge_success_rate", pairs > 0 ? Double(fooled) / Double(pairs) : 0)
        }
        ctx.record("\(id).target_logit_gain", gain / Double(ix.count * ts.count))

        // Grid: clean image, then one cell per target.
        for difference in showBoth ? [true, false] : [showDifference] {
            let per = x.count / ix.count
            let cellShape = Array(x.shape.dropFirst())
            let shown = difference ? r.differences : r.perturbed
            // With `show: both` the perturbed images stay RGB (no colormap): the colours are the image's own.
            let colour = diverging && (difference || !showBoth)
            var rows: [[Tensor?]] = []
            for (i, img) in ix.enumerated() {
                var row: [Tensor?] = [d.images(at: [img]).reshaped(cellShape)]
                for k in 0..<ts.count {
                    let o = (i * ts.count + k) * per
                    var cell = Tensor(shape: cellShape, scalars: Array(shown.scalars[o..<(o + per)]))
                    if !difference { for j in 0..<cell.count { cell.scalars[j] = (cell.scalars[j] + 1) / 2 } }
                    if colour && cell.shape[0] > 1 { cell = channelSum(cell) }
                    row.append(cell)
                }
                rows.append(row)
            }
            var grid = ImageGrid(cells: rows, rowTitles: ix.map { d.className(d.labels[$0]) },
                                 columnTitles: ["clean"] + ts.map { d.className($0) })
            grid.scaling = scaling.imageGrid   // cell: make_grid(normalize=True, scale_each=True), as paper A
            grid.plainColumns = [0]            // the clean image: min-max per cell, never on the perturbations' scale
            if colour { grid.colormap = .divergingBlueWhiteRed }
            grid.upscale = upscale
            let name = difference || !showBoth ? file : (file as NSString).deletingPathExtension + "_perturbed.png"
            try ctx.addImage(try grid.render(), file: name, caption: (difference ? caption : nil) ??
                "\(steps)-step PGA along \(method.name) (alpha \(alpha), eps \(eps)); \(difference ? "perturbed − clean" : "perturbed images"), \(scaling.text) min-max scaling. Diagonal: own class; off-diagonal: counterfactuals.")
        }
        ctx.markdown("Off-diagonal pairs classified as their target after ascent: **\(hits) of \(pairs)**; mean target-logit gain \(String(format: "%.3f", gain / Double(ix.count * ts.count))).")
    }
}
