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
//       reference_grids: {use: $scale, paper: {difference: {url: …, sha256: …}}}   # optional (ReferenceGrids.swift)
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
    static let keys = ["model", "data", "images", "targets", "method", "steps", "alpha", "eps", "show", "upscale", "colormap", "scaling", "file", "caption", "batch_size", "judge", "reference_grids"]

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
    /// `reference_grids:`, when given; its active entry is compared after the ascent.
    let referenceConfig: ReferenceGridsConfig?
    /// The published grids this run compares its grids with (the entry `use` selects).
    var referenceGrids: [ReferenceGrid] { referenceConfig?.active ?? [] }
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
        referenceConfig = try config.optional("reference_grids").map(ReferenceGridsConfig.init)
    }

    /// The file name of the step's difference or perturbed grid (with `show: both` the perturbed
    /// one is `<stem>_perturbed.png`; a step that shows one kind writes it to `file`).
    func gridFile(_ grid: ReferenceGrid.Grid) -> String {
        grid == .perturbed && showBoth ? (file as NSString).deletingPathExtension + "_perturbed.png" : file
    }

    func run(_ ctx: RunContext) throws {
        let net = try ctx.classifier(model)
        let d = try ctx.dataset(data)
        let ix = try selection.indices(in: d)
        let x = d.modelInput(ix)
        // The model's classes name the targets when it carries names (own weights), else the data set's.
        let modelNames = net.classNames ?? d.classNames
        let classes = modelNames.count
        let ts = targets ?? Array(0..<classes)
        for t in ts where t < 0 || (classes > 0 && t >= classes) {
            throw RecipeError("step '\(id)': target class \(t) is out of range (\(classes) classes)")
        }
        let pga = PGA(alpha: alpha, eps: eps, steps: steps, method: method)
        let bar = ProgressBar(label: "  \(id)", total: ix.count * ts.count, enabled: !ctx.settings.quiet)
        let r = try pga.grid(model: net, images: x, targets: ts, batchSize: batchSize) { bar.update($0) }
        bar.finish()

        // Success: perturbed image classified as its target (off-diagonal pairs only).
        let before = try net.inferenceLogits(x, batchSize: batchSize)
        let after = try net.inferenceLogits(r.perturbed, batchSize: batchSize)
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
            let seen = argmaxRows(try judgeNet.inferenceLogits(r.perturbed, batchSize: batchSize))
            var fooled = 0
            for (i, img) in ix.enumerated() {
                for (k, t) in ts.enumerated() where t != d.labels[img] && seen[i * ts.count + k] == t { fooled += 1 }
            }
            ctx.record("\(id).judge_success_rate", pairs > 0 ? Double(fooled) / Double(pairs) : 0)
        }
        ctx.record("\(id).target_logit_gain", gain / Double(ix.count * ts.count))

        // The numbers behind the grids (docs/recipes.md, "Arrays").
        let clean = d.images(at: ix)
        let pairShape = [ix.count, ts.count] + Array(x.shape.dropFirst())
        var perturbed01 = r.perturbed.reshaped(pairShape)
        for j in 0..<perturbed01.count { perturbed01.scalars[j] = (perturbed01.scalars[j] + 1) / 2 }
        let differences = r.differences.reshaped(pairShape)
        try ctx.writeArray(clean, to: "\(id)/images.npy")
        try ctx.writeArray(ints: ix.map { d.labels[$0] }, to: "\(id)/labels.npy")
        try ctx.writeArray(ints: ts, to: "\(id)/targets.npy")
        try ctx.writeArray(perturbed01, to: "\(id)/perturbed.npy")
        try ctx.writeArray(differences, to: "\(id)/differences.npy")
        try ctx.writeArray(before, to: "\(id)/logits_before.npy")
        try ctx.writeArray(after.reshaped([ix.count, ts.count, c]), to: "\(id)/logits_after.npy")

        for difference in showBoth ? [true, false] : [showDifference] {
            // With `show: both` the perturbed images stay RGB (no colormap): the colours are the image's own.
            let colour = diverging && (difference || !showBoth)
            let grid = StepGrids.ascend(images: clean, cells: difference ? differences : perturbed01,
                                 rowTitles: ix.map { d.className(d.labels[$0]) }, columnTitles: ["clean"] + ts.map { $0 < classes ? modelNames[$0] : String($0) },
                                 diverging: colour, upscale: upscale, scaling: scaling.imageGrid)
            let name = difference || !showBoth ? file : (file as NSString).deletingPathExtension + "_perturbed.png"
            try ctx.addImage(try grid.render(), file: name, caption: (difference ? caption : nil) ??
                "\(steps)-step PGA along \(method.name) (alpha \(alpha), eps \(eps)); \(difference ? "perturbed − clean" : "perturbed images"), \(scaling.text) min-max scaling. Diagonal: own class; off-diagonal: counterfactuals.")
        }

        // Published grids: compared with the cells drawn as their authors drew them.
        for ref in referenceGrids {
            let cells = ref.grid == .difference ? differences : perturbed01
            let bare = StepGrids.ascend(images: clean, cells: cells, rowTitles: [], columnTitles: [],
                                        diverging: false, upscale: 1, scaling: .perCell)
            let size = clean.shape[2]
            guard clean.shape[3] == size else { throw RecipeError("step '\(id)': reference grids need square cells, the images are \(size)x\(clean.shape[3])") }
            let layout = GridLayout(rows: ix.count, columns: ts.count + 1, cell: size, padding: bare.padding)
            let ourFile = gridFile(ref.grid)
            let outcome: ReferenceGridOutcome
            do {
                outcome = try ref.compare(try bare.render(), layout: layout, ourFile: ourFile) { ctx.recordInput($0) }
            } catch let e as GridShapeMismatch {
                // Other images or targets than the published figure's (e.g. --set images=shipped):
                // the run stands, but it cannot be verified against this grid.
                let why = "this run's grid is \(ix.count) images x \(ts.count) targets, the published one shows other images or targets"
                let line = "reference grid \(ourFile) vs \(ref.name): not compared: \(why) (\(e))"
                ctx.referenceLines.append(line)
                ctx.failedRequiredClaims.append("\(ourFile) reproduces \(ref.name) cell by cell (not compared: a grid of another shape)")
                ctx.markdown("Not compared with the published grid `\(ref.name)`: \(why).")
                ctx.narrator.say("  \(line)")
                continue
            }
            let key = "\(id).reference_\(ref.grid.rawValue)"
            ctx.record("\(key).min_correlation", outcome.result.minimum)
            ctx.record("\(key).cells_below", Double(outcome.result.failing.count))
            ctx.add(.canvas(outcome.worstCells, file: outcome.worstCellsFile, caption: outcome.caption))
            ctx.checks.append(outcome.check)
            ctx.referenceLines.append(outcome.line)
            if !outcome.passed { ctx.failedRequiredClaims.append(outcome.check.name) }
            ctx.narrator.say("  \(outcome.line)")
        }

        // Top-5 classes before and after, as paper A's app lists them.
        var table = Table(headers: ["image", "target", "top-5 before", "top-5 after"])
        for (i, img) in ix.enumerated() {
            let top = topClasses(Array(before.scalars[(i * c)..<((i + 1) * c)]), k: 5, names: modelNames)
            for (k, t) in ts.enumerated() {
                let row = i * ts.count + k
                table.append([.text("\(i): \(d.className(d.labels[img]))"), .text(t < classes ? modelNames[t] : String(t)), .text(top),
                              .text(topClasses(Array(after.scalars[(row * c)..<((row + 1) * c)]), k: 5, names: modelNames))])
            }
        }
        ctx.add(.table(table, caption: "Each image's five most probable classes (softmax of the logits) before and after the ascent toward each target.", csvFile: nil))
        ctx.markdown("Off-diagonal pairs classified as their target after ascent: **\(hits) of \(pairs)**; mean target-logit gain \(String(format: "%.3f", gain / Double(ix.count * ts.count))). Arrays in `\(id)/`: images, labels, targets, perturbed, differences, logits_before, logits_after (.npy).")
    }
}

extension StepGrids {
    /// The ascend grid: per image ([N, C, H, W] in [0, 1]) a row of the image, then its `cells`
    /// ([N, T, C, H, W]: differences, or perturbed images in [0, 1]) one per target, min-max
    /// scaled per cell as make_grid(scale_each) unless `scaling` shares one scale over a row or the
    /// grid. The step renders exactly this from exactly the arrays it writes.
    public static func ascend(images: Tensor, cells: Tensor, rowTitles: [String], columnTitles: [String],
                     diverging: Bool, upscale: Int, scaling: ImageGrid.Scaling = .perCell) -> ImageGrid {
        let n = images.shape[0], t = cells.shape[1]
        let cellShape = Array(images.shape.dropFirst()), per = cellShape.reduce(1, *)
        var rows: [[Tensor?]] = []
        for i in 0..<n {
            var row: [Tensor?] = [Tensor(shape: cellShape, scalars: Array(images.scalars[(i * per)..<((i + 1) * per)]))]
            for k in 0..<t {
                let o = (i * t + k) * per
                var cell = Tensor(shape: cellShape, scalars: Array(cells.scalars[o..<(o + per)]))
                if diverging && cell.shape[0] > 1 { cell = channelSum(cell) }
                row.append(cell)
            }
            rows.append(row)
        }
        var grid = ImageGrid(cells: rows, rowTitles: rowTitles, columnTitles: columnTitles)
        grid.scaling = scaling    // .perCell: make_grid(normalize=True, scale_each=True), as paper A
        grid.plainColumns = [0]   // the clean image: min-max per cell, never on the perturbations' scale
        if diverging { grid.colormap = .divergingBlueWhiteRed }
        grid.upscale = upscale
        return grid
    }
}

/// "tabby 41.2%, tiger cat 20.1%, …": the `k` most probable classes of one row of logits.
func topClasses(_ logits: [Float], k: Int, names: [String]) -> String {
    let m = logits.max() ?? 0
    let e = logits.map { exp(Double($0 - m)) }
    let z = e.reduce(0, +)
    let order = logits.indices.sorted { logits[$0] > logits[$1] || (logits[$0] == logits[$1] && $0 < $1) }
    return order.prefix(k).map { c in
        "\(c < names.count ? names[c] : String(c)) \(String(format: "%.1f", 100 * e[c] / z))%"
    }.joined(separator: ", ")
}
