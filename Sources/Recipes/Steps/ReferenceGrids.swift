// MARK: - reference_grids: an ascend step's grids against grids published elsewhere
//
//   - step: ascend
//     id: pga
//     with:
//       ...
//       reference_grids:
//         use: $scale                      # the entry of this run's scale; a scale without one compares nothing
//         paper:
//           difference: {url: "https://…/media/pullback_diff/resnet50_alpha_20_steps_5.jpg", sha256: b238a4af…}
//           perturbed:  {url: "https://…/media/pullback/resnet50_alpha_20_steps_5.jpg", sha256: bb0231fd…}
//
// Paper A's figures exist as published grid images, not as numbers, so at the paper's scale the
// reference for a run is those images. Each declared file is fetched like a recipe image (the image
// cache, SHA-256 checked, EP_OFFLINE honoured; the dry run lists it), its grid is located inside
// the saved figure (GridComparison.extract) and compared cell by cell with this run's grid drawn
// the way the authors drew theirs: no titles, upscale 1, each cell min-max scaled on its own
// (make_grid(normalize=True, scale_each=True)), whatever the step's own `scaling`, `colormap` and
// `upscale`. The outcome is a required claim: a failing grid fails `runner verify`.
import Foundation

/// One published grid that a grid of an `ascend` step should reproduce.
///
/// ```swift
/// let ref = ReferenceGrid(grid: .difference, url: URL(string: "https://…/pullback_diff/resnet50_alpha_20_steps_5.jpg")!,
///                         sha256: "b238a4af47f8c3ab156a00f50669e2b39cb01ee4dab1bee76cbefbe8288d8cdb")
/// let outcome = try ref.compare(ours, layout: GridLayout.paperA, ourFile: "pga.png")
/// print(outcome.line)   // "reference grid pga.png vs pullback_diff/resnet50_alpha_20_steps_5.jpg: …"
/// ```
public struct ReferenceGrid: Sendable, Equatable {
    /// Which of the step's grids is compared.
    public enum Grid: String, Sendable, CaseIterable {
        /// perturbed − clean (the step's `<file>`).
        case difference
        /// The perturbed images (`<file stem>_perturbed.png` with `show: both`).
        case perturbed
    }

    public var grid: Grid
    public var url: URL
    public var sha256: String
    /// A cell passes at a Pearson correlation of at least this.
    public var threshold: Double

    public init(grid: Grid, url: URL, sha256: String, threshold: Double = GridComparison.defaultThreshold) {
        self.grid = grid; self.url = url; self.sha256 = sha256.lowercased(); self.threshold = threshold
    }

    /// The URL's last two path components, e.g. "pullback_diff/resnet50_alpha_20_steps_5.jpg"
    /// (the authors' grids share file names across folders).
    public var name: String {
        url.pathComponents.suffix(2).joined(separator: "/")
    }

    /// The file as the image cache fetches it; its cache name keeps the folder, so
    /// pullback/x.jpg and pullback_diff/x.jpg do not collide.
    public var imageSource: ImageSource {
        var s = ImageSource(name: name, label: 0, url: url, sha256: sha256)
        s.cacheName = url.pathComponents.suffix(2).joined(separator: "-")
        return s
    }

    /// Where the image cache keeps it, and whether it is there.
    public func neededFile(comparedWith ourFile: String, store: ImageStore = ImageStore()) -> NeededFile {
        let dest = store.localURL(for: imageSource)!
        return NeededFile(what: "reference grid \(name) (compared with \(ourFile))", url: url, destination: dest,
                          present: FileManager.default.fileExists(atPath: dest.path), variable: "EP_IMAGE_DIR", sha256: sha256)
    }

    /// What is compared, in one line (dry run, offline error, report).
    public func plan(ourFile: String, step: String) -> String {
        "\(ourFile) (step '\(step)', \(grid.rawValue) grid) with \(name) (SHA-256 \(sha256.prefix(12))…): every cell's Pearson correlation ≥ \(threshold); the worst cells side by side in \(Self.worstCellsFile(for: ourFile))"
    }

    /// The side-by-side image of the worst cells of `ourFile`.
    public static func worstCellsFile(for ourFile: String) -> String { "worst-cells-\(ourFile)" }

    /// Fetches the reference (cache, SHA-256, EP_OFFLINE), finds its grid and compares it cell by
    /// cell with `ours`, which must have `layout`'s size (make_grid's layout, no titles). Throws
    /// `GridShapeMismatch` when the published grid has other rows or columns than `layout`.
    /// `read` sees the file used (for the manifest).
    public func compare(_ ours: RGBImage, layout: GridLayout, ourFile: String, store: ImageStore = ImageStore(),
                        worstCount: Int = 5, read: (URL) -> Void = { _ in }) throws -> ReferenceGridOutcome {
        let file = try store.resolve(imageSource)
        read(file)
        let published = try ImageFile.read(file)
        let theirs: RGBImage
        do { theirs = try GridComparison.extract(published, layout: layout) } catch let e as ReportError {
            throw ReportError.invalidInput("\(name) (\(file.path)): \(e)")
        } catch let e as GridShapeMismatch {
            throw GridShapeMismatch(description: "\(name) (\(file.path)): \(e)")
        }
        let result = try GridComparison.compare(ours, theirs, layout: layout, threshold: threshold)
        let side = GridComparison.worstCells(ours, theirs, layout: layout, result: result, count: worstCount)
        return ReferenceGridOutcome(reference: self, ourFile: ourFile, layout: layout, result: result, worstCells: side,
                                    shown: Array(result.cells.prefix(max(0, worstCount))))
    }
}

/// The comparison of one grid with its reference.
public struct ReferenceGridOutcome {
    public let reference: ReferenceGrid
    public let ourFile: String
    public let layout: GridLayout
    public let result: GridComparisonResult
    /// The worst cells, this run's left and the reference's right, one pair per row.
    public let worstCells: RGBImage
    /// The pairs in `worstCells`, top to bottom.
    public let shown: [(row: Int, column: Int, correlation: Double)]

    public var passed: Bool { result.passed }
    public var worstCellsFile: String { ReferenceGrid.worstCellsFile(for: ourFile) }

    /// "row 3, column 5" (1-based, as a reader counts cells).
    static func cellName(_ row: Int, _ column: Int) -> String { "row \(row + 1), column \(column + 1)" }

    /// "0.8841 (row 3, column 4)": the minimum correlation and where it is.
    var minimumText: String {
        String(format: "%.4f", result.minimum) + (result.cells.first.map { " (\(Self.cellName($0.row, $0.column)))" } ?? "")
    }

    /// One line for the summary: the minimum correlation and pass or fail.
    public var line: String {
        "reference grid \(ourFile) vs \(reference.name): min cell correlation \(minimumText)"
            + ", \(result.failing.count) of \(layout.rows * layout.columns) cells below \(reference.threshold): \(passed ? "passed" : "FAILED")"
    }

    /// The outcome as a claim for the report's "Claims checked" table.
    public var check: CheckResult {
        CheckResult(name: "\(ourFile) reproduces \(reference.name) cell by cell", passed: passed,
                           measured: "min correlation \(minimumText); \(result.failing.count) of \(layout.rows * layout.columns) cells below",
                           expected: "≥ \(reference.threshold) in every cell")
    }

    /// Caption of the side-by-side image.
    public var caption: String {
        "The \(shown.count) worst cells of \(ourFile) (left: this run, drawn as make_grid(scale_each=True) draws it) beside \(reference.name) "
            + "(right: the published grid, located in its figure and resampled to the grid's size), top to bottom: "
            + shown.map { "\(Self.cellName($0.row, $0.column)) \(String(format: "%.3f", $0.correlation))" }.joined(separator: ", ")
            + ". A cell passes at a Pearson correlation ≥ \(reference.threshold)."
    }
}

// MARK: - The `reference_grids` key

/// The parsed `reference_grids:` of an `ascend` step: every entry, and the one `use` selects.
struct ReferenceGridsConfig {
    static let gridKeys = ReferenceGrid.Grid.allCases.map(\.rawValue)
    static let fileKeys = ["url", "sha256", "threshold"]

    /// Entry name (normally a value of `scale`) → its grids, with the key's node for errors.
    let entries: [(name: String, key: YAMLNode, grids: [ReferenceGrid])]
    let use: String
    /// The grids compared in this run.
    var active: [ReferenceGrid] { entries.first { $0.name == use }?.grids ?? [] }

    init(_ node: YAMLNode) throws {
        guard case .mapping(let pairs) = node.kind else {
            throw node.error("reference_grids must be a mapping: `use: $scale` and one entry per scale, e.g. paper: {difference: {url: …, sha256: …}}")
        }
        guard let u = try node.optional("use") else {
            throw node.error("reference_grids needs `use:` (normally $scale): it picks the entry of this run's scale")
        }
        use = try u.string
        var out: [(name: String, key: YAMLNode, grids: [ReferenceGrid])] = []
        for (k, v) in pairs where k.scalarText != "use" {
            let name = try k.string
            guard case .mapping = v.kind else {
                throw v.error("entry '\(name)' must map `difference:` and/or `perturbed:` to {url: …, sha256: …}")
            }
            try v.checkKeys(allowed: Self.gridKeys)
            var grids: [ReferenceGrid] = []
            for g in ReferenceGrid.Grid.allCases {
                guard let f = try v.optional(g.rawValue) else { continue }
                grids.append(try Self.file(f, grid: g))
            }
            guard !grids.isEmpty else { throw v.error("entry '\(name)' names no grid: give `difference:` and/or `perturbed:`") }
            out.append((name: name, key: k, grids: grids))
        }
        guard !out.isEmpty else {
            throw node.error("reference_grids has no entry besides `use`: add one per scale that has published grids, e.g. paper: {difference: {url: …, sha256: …}}")
        }
        entries = out
    }

    static func file(_ n: YAMLNode, grid: ReferenceGrid.Grid) throws -> ReferenceGrid {
        guard case .mapping = n.kind else { throw n.error("expected {url: …, sha256: …}, found \(n.kindDescription)") }
        try n.checkKeys(allowed: fileKeys)
        let urlNode = try n.node(at: "url")
        let text = try urlNode.string
        guard let url = URL(string: text), url.scheme != nil, url.pathComponents.count >= 2 else {
            throw urlNode.error("not a URL: '\(text)'")
        }
        guard let shaNode = try n.optional("sha256") else {
            throw n.error("a reference grid needs its `sha256:` (the download is checked against it)")
        }
        let sha = try shaNode.sha256Digest
        let threshold = try n.double(at: "threshold", default: GridComparison.defaultThreshold)
        guard threshold > -1, threshold <= 1 else {
            throw try n.node(at: "threshold").error("threshold is a correlation: it must be in (-1, 1], got \(threshold)")
        }
        return ReferenceGrid(grid: grid, url: url, sha256: sha, threshold: threshold)
    }
}
