// MARK: - GridComparison: this run's figure grid against the authors' published one, cell by cell
//
// Paper A's repository publishes its figure grids as JPEGs made by torchvision's make_grid
// (padding 2, each cell min-max scaled on its own: normalize=True, scale_each=True). Two grids of
// the same experiment cannot match pixel for pixel: JPEG compression moves every pixel a little,
// and per-cell scaling maps each cell's own range to [0, 255]. What both keep is each cell's
// pattern up to an affine change of brightness, so cells are compared by the Pearson correlation
// of their pixels (all three channels): invariant to any per-cell scale and offset, and only
// lowered a little by JPEG noise. A cell passes at correlation >= `threshold`.
import Foundation

/// Where the cells of a make_grid image are: `rows` x `columns` square cells of `cell` pixels,
/// `padding` pixels between cells and around the border.
public struct GridLayout: Equatable, Sendable {
    public var rows: Int, columns: Int, cell: Int, padding: Int
    public init(rows: Int, columns: Int, cell: Int, padding: Int = 2) {
        self.rows = rows; self.columns = columns; self.cell = cell; self.padding = padding
    }

    /// Paper A's published grids: 5 images x (original + 6 targets), 224-pixel cells.
    public static let paperA = GridLayout(rows: 5, columns: 7, cell: 224)

    public var width: Int { columns * (cell + padding) + padding }
    public var height: Int { rows * (cell + padding) + padding }

    /// Top-left pixel of cell (row, column).
    public func origin(row: Int, column: Int) -> (x: Int, y: Int) {
        (padding + column * (cell + padding), padding + row * (cell + padding))
    }
}

/// The outcome of comparing two grids.
public struct GridComparisonResult: Sendable {
    /// Pearson correlation of each cell, [row][column].
    public var correlations: [[Double]]
    public var threshold: Double
    /// Cells below the threshold.
    public var failing: [(row: Int, column: Int, correlation: Double)] {
        cells.filter { $0.correlation < threshold }
    }
    public var passed: Bool { failing.isEmpty }
    /// Every cell, worst first.
    public var cells: [(row: Int, column: Int, correlation: Double)] {
        correlations.enumerated().flatMap { r, row in row.enumerated().map { (r, $0.offset, $0.element) } }
            .sorted { $0.2 < $1.2 || ($0.2 == $1.2 && ($0.0, $0.1) < ($1.0, $1.1)) }
    }
    public var minimum: Double { cells.first?.correlation ?? 1 }
}

public enum GridComparison {
    /// The stated pass mark. Set after measuring the synthetic fixtures of GridComparisonTests
    /// (32-pixel cells): a JPEG (quality 75, 4:2:0 chroma) of a per-cell rescaled copy kept every
    /// cell at ≥ 0.863, cells of an unrelated grid stayed ≤ 0.130. Not yet measured on real
    /// paper-scale grids (224-pixel cells suffer less from 8x8 JPEG blocks).
    public static let defaultThreshold = 0.75

    /// The pixels of one cell, all channels, as Doubles.
    public static func cell(_ img: RGBImage, _ layout: GridLayout, row: Int, column: Int) -> [Double] {
        let (x0, y0) = layout.origin(row: row, column: column)
        var out = [Double]()
        out.reserveCapacity(layout.cell * layout.cell * 3)
        for y in y0..<(y0 + layout.cell) {
            let base = (y * img.width + x0) * 3
            for i in 0..<(layout.cell * 3) { out.append(Double(img.pixels[base + i])) }
        }
        return out
    }

    /// Pearson correlation; 1 when both are constant (two blank cells agree), 0 when only one is.
    public static func pearson(_ a: [Double], _ b: [Double]) -> Double {
        precondition(a.count == b.count, "pearson: \(a.count) vs \(b.count) values")
        let n = Double(a.count)
        guard n > 0 else { return 1 }
        let ma = a.reduce(0, +) / n, mb = b.reduce(0, +) / n
        var sab = 0.0, saa = 0.0, sbb = 0.0
        for i in 0..<a.count {
            let da = a[i] - ma, db = b[i] - mb
            sab += da * db; saa += da * da; sbb += db * db
        }
        if saa == 0 && sbb == 0 { return 1 }
        if saa == 0 || sbb == 0 { return 0 }
        return sab / (saa * sbb).squareRoot()
    }

    /// Compares `ours` with `theirs` cell by cell; both must have `layout`'s size.
    public static func compare(_ ours: RGBImage, _ theirs: RGBImage, layout: GridLayout,
                               threshold: Double = defaultThreshold) throws -> GridComparisonResult {
        for (what, img) in [("this run's grid", ours), ("the reference grid", theirs)]
        where img.width != layout.width || img.height != layout.height {
            throw ReportError.invalidInput("\(what) is \(img.width)x\(img.height); a \(layout.rows)x\(layout.columns) grid of \(layout.cell)-pixel cells with padding \(layout.padding) is \(layout.width)x\(layout.height)")
        }
        let corr = (0..<layout.rows).map { r in
            (0..<layout.columns).map { c in pearson(cell(ours, layout, row: r, column: c), cell(theirs, layout, row: r, column: c)) }
        }
        return GridComparisonResult(correlations: corr, threshold: threshold)
    }

    /// The `count` worst cells side by side — this run's on the left, the reference's on the right —
    /// one pair per row, with a `gap`-pixel white border.
    public static func worstCells(_ ours: RGBImage, _ theirs: RGBImage, layout: GridLayout,
                                  result: GridComparisonResult, count: Int = 5, gap: Int = 4) -> RGBImage {
        let picked = Array(result.cells.prefix(max(0, count)))
        let s = layout.cell
        var out = RGBImage(width: 2 * s + 3 * gap, height: max(1, picked.count) * (s + gap) + gap, fill: .white)
        for (k, p) in picked.enumerated() {
            let (x0, y0) = layout.origin(row: p.row, column: p.column)
            for (j, src) in [ours, theirs].enumerated() {
                let dx = gap + j * (s + gap), dy = gap + k * (s + gap)
                for y in 0..<s {
                    let from = ((y0 + y) * src.width + x0) * 3, to = ((dy + y) * out.width + dx) * 3
                    out.pixels.replaceSubrange(to..<(to + 3 * s), with: src.pixels[from..<(from + 3 * s)])
                }
            }
        }
        return out
    }
}
