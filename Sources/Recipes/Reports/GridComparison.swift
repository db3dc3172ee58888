// MARK: - GridComparison: this run's figure grid against the authors' published one, cell by cell
//
// Paper A's repository publishes its figure grids as JPEGs made by torchvision's make_grid
// (padding 2, each cell min-max scaled on its own: normalize=True, scale_each=True). Two grids of
// the same experiment cannot match pixel for pixel: JPEG compression moves every pixel a little,
// and per-cell scaling maps each cell's own range to [0, 255]. What both keep is each cell's
// pattern up to an affine change of brightness, so cells are compared by the Pearson correlation
// of their pixels (all three channels): invariant to any per-cell scale and offset, and only
// lowered a little by JPEG noise. A cell passes at correlation >= `threshold`.
//
// The published files are not the bare make_grid image: the authors' `plot_example_grid` draws it
// with matplotlib (imshow, column titles above, 80 dpi, bbox_inches="tight"), so a 5x7 grid of
// 224-pixel cells (1584x1132) is saved as a 1576x1143 JPEG — resampled a little and below a band
// of titles. `extract` finds the grid's black make_grid frame in such a figure and resamples it
// back to the layout's size, so cells line up with this run's.
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

    // MARK: The grid inside a saved figure

    /// Where a grid's outer make_grid frame is in a figure: columns `left...right`, rows `top...bottom`.
    public struct Frame: Equatable, Sendable {
        public var left: Int, top: Int, right: Int, bottom: Int
        public var width: Int { right - left + 1 }
        public var height: Int { bottom - top + 1 }
    }

    /// Darker than this in every channel counts as make_grid's black padding (JPEG and
    /// resampling lift it a little).
    static let darkLevel: UInt8 = 96

    /// Finds the black frame of a make_grid image drawn on a light figure (titles above or beside
    /// it are skipped): the first and last rows whose longest dark run spans at least half the
    /// figure's width, then, between them, the first and last columns dark over at least half of
    /// that height. Padding lines between cells are dark too, but only the outermost count.
    ///
    /// ```swift
    /// let f = try GridComparison.locate(in: try ImageFile.read(url))   // each of the authors' 36 files: left 0, top 17, right 1575, bottom 1142
    /// ```
    public static func locate(in img: RGBImage) throws -> Frame {
        func dark(_ x: Int, _ y: Int) -> Bool {
            let i = (y * img.width + x) * 3
            return img.pixels[i] < darkLevel && img.pixels[i + 1] < darkLevel && img.pixels[i + 2] < darkLevel
        }
        let frameRows = (0..<img.height).filter { y in
            var run = 0, best = 0
            for x in 0..<img.width { run = dark(x, y) ? run + 1 : 0; best = max(best, run) }
            return 2 * best >= img.width
        }
        guard let top = frameRows.first, let bottom = frameRows.last, bottom > top else {
            throw ReportError.invalidInput("no make_grid frame found in the \(img.width)x\(img.height) image: no two rows are dark (below \(darkLevel) in every channel) over half its width")
        }
        let frameColumns = (0..<img.width).filter { x in
            2 * (top...bottom).reduce(0) { $0 + (dark(x, $1) ? 1 : 0) } >= bottom - top + 1
        }
        guard let left = frameColumns.first, let right = frameColumns.last, right > left else {
            throw ReportError.invalidInput("no make_grid frame found in the \(img.width)x\(img.height) image: rows \(top)…\(bottom) are dark, but no two columns are dark over half of that height")
        }
        return Frame(left: left, top: top, right: right, bottom: bottom)
    }

    /// The grid of `layout` from `img`: the image itself when it has the layout's size (a bare
    /// make_grid image), else the region inside its frame (`locate`) resampled bilinearly to the
    /// layout's size. A frame whose proportions differ from the layout's by more than 2% throws
    /// `GridShapeMismatch` (a grid of another shape: other images or targets than the run's).
    public static func extract(_ img: RGBImage, layout: GridLayout) throws -> RGBImage {
        if img.width == layout.width && img.height == layout.height { return img }
        let f = try locate(in: img)
        let want = Double(layout.width) / Double(layout.height), got = Double(f.width) / Double(f.height)
        guard abs(got / want - 1) <= 0.02 else {
            throw GridShapeMismatch(description: "the reference grid is \(img.width)x\(img.height) with its make_grid frame at x \(f.left)…\(f.right), y \(f.top)…\(f.bottom) (\(f.width)x\(f.height)); a \(layout.rows)x\(layout.columns) grid of \(layout.cell)-pixel cells with padding \(layout.padding) is \(layout.width)x\(layout.height), other proportions")
        }
        // Pixel centres of the layout mapped onto the frame's span [left, right + 1).
        let sx = Double(f.width) / Double(layout.width), sy = Double(f.height) / Double(layout.height)
        var out = RGBImage(width: layout.width, height: layout.height)
        for y in 0..<layout.height {
            let v = min(max(Double(f.top) + (Double(y) + 0.5) * sy - 0.5, 0), Double(img.height - 1))
            let y0 = Int(v), y1 = min(y0 + 1, img.height - 1), wy = v - Double(y0)
            for x in 0..<layout.width {
                let u = min(max(Double(f.left) + (Double(x) + 0.5) * sx - 0.5, 0), Double(img.width - 1))
                let x0 = Int(u), x1 = min(x0 + 1, img.width - 1), wx = u - Double(x0)
                for c in 0..<3 {
                    let a = Double(img.pixels[(y0 * img.width + x0) * 3 + c]), b = Double(img.pixels[(y0 * img.width + x1) * 3 + c])
                    let d = Double(img.pixels[(y1 * img.width + x0) * 3 + c]), e = Double(img.pixels[(y1 * img.width + x1) * 3 + c])
                    let value = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy
                    out.pixels[(y * layout.width + x) * 3 + c] = UInt8(min(max(value.rounded(), 0), 255))
                }
            }
        }
        return out
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

/// A published grid whose proportions are not those of the grid it was to be compared with: it
/// shows other rows or columns (the paper's images and targets, not this run's), so no cell of it
/// can be matched.
public struct GridShapeMismatch: Error, CustomStringConvertible {
    public let description: String
}
