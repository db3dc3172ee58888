// MARK: - explain: attribution maps side by side
//
//   - step: explain
//     id: maps
//     with:
//       model: cnn            # a trained or loaded model (step id)
//       data: test            # a data set (step id)
//       images: {per_class: 1}
//       target: label         # label | predicted | <class index>
//       methods: [gradient, {method: excitation_pullback, temperature: 0.3}]
//       colormap: diverging   # diverging (signed maps, one channel) | none (min-max per cell, as paper A)
//       upscale: 4
//
// Writes one grid: a row of inputs, then a row per method; records, per method, the mean cosine
// similarity of its maps to the first method's (how much the soft gates change the direction).
import Foundation
import SIMDCore

struct ExplainStep: RecipeStep {
    static let kind = "explain"
    static let summary = "Attribution maps of several methods for chosen images, as one grid."
    static let keys = ["model", "data", "images", "target", "methods", "colormap", "scaling", "upscale", "file", "caption"]

    let id: String
    /// A Classifier: the pullback needs logits it can differentiate to the input.
    let model: StepInput
    let data: StepInput
    let selection: ImageSelection
    let target: TargetRule
    let methods: [ExplanationMethod]
    let labels: [String]
    let diverging: Bool
    let scaling: GridScaling
    let upscale: Int
    let file: String
    let caption: String?
    var inputs: [StepInput] { [model, data] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        model = try StepInput("model", in: config, type: .classifier)
        data = try StepInput("data", in: config, type: .dataset)
        selection = try ImageSelection(try config.optional("images"))
        target = try config.optional("target").map(TargetRule.init) ?? .label
        let ms = try config.array(at: "methods")
        guard !ms.isEmpty else { throw try config.node(at: "methods").error("methods must list at least one method") }
        methods = try ms.map { try ExplanationMethod.parse($0) }
        labels = try ms.map { n in
            if case .scalar = n.kind { return try n.string }
            return try n.string(at: "label", default: try n.string(at: "method"))
        }
        // Each label names a grid row and the metrics of its method: two alike would overwrite one another.
        for (i, label) in labels.enumerated() {
            if let first = labels[..<i].firstIndex(of: label) {
                throw ms[i].error("two methods are labelled '\(label)' (the first at line \(ms[first].mark.line)); give each a distinct `label:`, e.g. {method: \(label), label: \(label)_2, …}")
            }
        }
        diverging = try config.name(at: "colormap", default: Colormap.diverging) == .diverging
        scaling = try config.name(at: "scaling", default: GridScaling.cell)
        upscale = try config.int(at: "upscale", default: 1, in: 1...ImageGrid.maxUpscale)
        file = try config.string(at: "file", default: "\(id).png")
        caption = try config.optional("caption")?.string
    }

    func run(_ ctx: RunContext) throws {
        let net = try ctx.classifier(model)
        let d = try ctx.dataset(data)
        let ix = try selection.indices(in: d)
        let x = d.modelInput(ix)
        let imageLabels = ix.map { d.labels[$0] }
        let targets = try resolveTargets(target, net: net, x: x, labels: imageLabels)
        var perMethod: [Tensor] = []
        for (m, label) in zip(methods, labels) {
            let maps = try m.attribute(net, x, targets: targets)
            if let f = perMethod.first {
                let per = maps.count / max(ix.count, 1)
                var cosSum = 0.0
                for i in 0..<ix.count {
                    let r = (i * per)..<((i + 1) * per)
                    cosSum += Tensor(shape: [per], scalars: Array(f.scalars[r])).cosineSimilarity(Tensor(shape: [per], scalars: Array(maps.scalars[r])))
                }
                ctx.record("\(id).\(label).cosine_to_\(labels[0])", cosSum / Double(ix.count))
            }
            perMethod.append(maps)
        }
        let attributions = stackMethods(perMethod)
        let clean = d.images(at: ix)
        let tape = Tape(recording: false)
        let logits = tape.value(try net.logits(tape, tape.input(x), policy: .vanilla))

        // The numbers behind the grid (docs/recipes.md, "Arrays").
        try ctx.writeArray(attributions, to: "\(id)/attributions.npy")
        try ctx.writeArray(clean, to: "\(id)/images.npy")
        try ctx.writeArray(ints: imageLabels, to: "\(id)/labels.npy")
        try ctx.writeArray(ints: targets, to: "\(id)/targets.npy")
        try ctx.writeArray(logits, to: "\(id)/logits.npy")

        let grid = StepGrids.explain(images: clean, attributions: attributions, methodLabels: labels,
                             columnTitles: StepGrids.explainColumnTitles(labels: imageLabels, targets: targets, classNames: d.classNames, targetNames: net.classNames),
                             diverging: diverging, upscale: upscale, scaling: scaling.imageGrid)
        try ctx.addImage(try grid.render(), file: file,
                         caption: caption ?? "Attributions of the target logit (\(target.text)); \(scaling.text) scaling\(diverging ? ", blue negative, red positive" : "").")
        ctx.markdown("Arrays in `\(id)/`: attributions.npy \(attributions.shape) (images x methods x C x H x W: \(labels.joined(separator: ", "))), images.npy, labels.npy, targets.npy, logits.npy.")
    }
}

/// The grids `explain` and `ascend` draw, as functions of the arrays they write: a reader of the
/// arrays redraws the same picture with these.
public enum StepGrids {
    /// Column titles: the class name when the target is the label, else "label->target". Labels
    /// are named by the data set's `classNames`, targets by the model's `targetNames` when it has them.
    public static func explainColumnTitles(labels: [Int], targets: [Int], classNames: [String], targetNames: [String]? = nil) -> [String] {
        func name(_ c: Int, _ names: [String]) -> String { c < names.count ? names[c] : String(c) }
        let tn = targetNames ?? classNames
        return zip(labels, targets).map { targetNames == nil && $0 == $1 ? name($1, tn) : "\(name($0, classNames))->\(name($1, tn))" }
    }

    /// The explain grid: a row of the images ([N, C, H, W] in [0, 1]), then a row per method of
    /// `attributions` ([N, M, C, H, W]); with `diverging`, each map summed over channels. Cells are
    /// min-max scaled one by one unless `scaling` shares one scale over a row or the grid.
    /// The step renders exactly this from exactly the arrays it writes.
    public static func explain(images: Tensor, attributions: Tensor, methodLabels: [String], columnTitles: [String],
                     diverging: Bool, upscale: Int, scaling: ImageGrid.Scaling = .perCell) -> ImageGrid {
        let n = images.shape[0], m = attributions.shape[1]
        let cellShape = Array(attributions.shape.dropFirst(2))
        let per = cellShape.reduce(1, *)
        let imageShape = Array(images.shape.dropFirst()), imagePer = imageShape.reduce(1, *)
        var rows: [[Tensor?]] = [(0..<n).map { Tensor(shape: imageShape, scalars: Array(images.scalars[($0 * imagePer)..<(($0 + 1) * imagePer)])) }]
        for k in 0..<m {
            rows.append((0..<n).map { i in
                let o = (i * m + k) * per
                var cell = Tensor(shape: cellShape, scalars: Array(attributions.scalars[o..<(o + per)]))
                if diverging && cell.shape[0] > 1 { cell = channelSum(cell) }
                return cell
            })
        }
        var grid = ImageGrid(cells: rows, rowTitles: ["input"] + methodLabels, columnTitles: columnTitles)
        grid.scaling = scaling
        grid.plainRows = [0]          // the inputs: min-max per cell, never on the maps' scale
        if diverging { grid.colormap = .divergingBlueWhiteRed }
        grid.upscale = upscale
        return grid
    }
}

/// Per-method maps [N, C, H, W] → one tensor [N, M, C, H, W] (image-major, as the arrays are read).
func stackMethods(_ maps: [Tensor]) -> Tensor {
    guard let first = maps.first else { return Tensor(zeros: [0]) }
    let n = first.shape[0], per = first.count / max(n, 1), m = maps.count
    var out = [Float](repeating: 0, count: n * m * per)
    for (k, t) in maps.enumerated() {
        precondition(t.shape == first.shape, "stackMethods: shapes \(first.shape) and \(t.shape)")
        for i in 0..<n { for j in 0..<per { out[(i * m + k) * per + j] = t.scalars[i * per + j] } }
    }
    return Tensor(shape: [n, m] + Array(first.shape.dropFirst()), scalars: out)
}

/// How the cells of a grid share their colour scale (`scaling:` of explain and ascend): each cell
/// its own (paper A's grids), one scale per row, or one for the whole grid (so a sweep's strengths compare).
enum GridScaling: String, RecipeName {
    case cell, row, grid
    static let what = "scaling"
    var imageGrid: ImageGrid.Scaling {
        switch self { case .cell: return .perCell; case .row: return .perRow; case .grid: return .grid }
    }
    /// For captions: "per-cell", "per-row", "whole-grid".
    var text: String { switch self { case .cell: return "per-cell"; case .row: return "per-row"; case .grid: return "whole-grid" } }
}

/// How a map's colours are chosen: a signed blue-white-red scale, or the image's own channels.
enum Colormap: String, RecipeName {
    /// Signed maps summed over channels, blue negative, red positive.
    case diverging
    /// Min-max scaled per cell, as paper A's grids.
    case none
    static let what = "colormap"
}

/// Which logit an attribution pulls back: each image's label, the model's prediction, or one class.
enum TargetRule: Equatable {
    case label, predicted
    case fixed(Int)

    init(_ node: YAMLNode) throws {
        let text = try node.string
        switch text {
        case "label": self = .label
        case "predicted": self = .predicted
        default:
            guard let c = Int(text), c >= 0 else {
                var msg = "target must be label, predicted or a class index, got '\(text)'"
                if let n = nearestName(to: text, candidates: ["label", "predicted"]) { msg += "; did you mean '\(n)'?" }
                throw node.error(msg)
            }
            self = .fixed(c)
        }
    }

    /// As written in the recipe.
    var text: String {
        switch self { case .label: return "label"; case .predicted: return "predicted"; case .fixed(let c): return String(c) }
    }
}

/// Targets per image: the label, the model's prediction, or one fixed class.
func resolveTargets(_ rule: TargetRule, net: Classifier, x: Tensor, labels: [Int]) throws -> [Int] {
    switch rule {
    case .label: return labels
    case .predicted:
        let tape = Tape(recording: false)
        let logits = tape.value(try net.logits(tape, tape.input(x), policy: .vanilla))
        return argmaxRows(logits)
    case .fixed(let c): return Array(repeating: c, count: labels.count)
    }
}

func argmaxRows(_ logits: Tensor) -> [Int] {
    let c = logits.shape.last ?? 1
    return (0..<(logits.count / max(c, 1))).map { i in
        var best = 0
        for j in 1..<c where logits.scalars[i * c + j] > logits.scalars[i * c + best] { best = j }
        return best
    }
}

/// [C, H, W] → [1, H, W] by summing channels (a signed map for the diverging colormap).
func channelSum(_ t: Tensor) -> Tensor {
    let c = t.shape[0], hw = t.count / c
    var out = Tensor(zeros: [1] + Array(t.shape.dropFirst()))
    for k in 0..<c { for j in 0..<hw { out.scalars[j] += t.scalars[k * hw + j] } }
    return out
}
