// MARK: - ImageGrid
//
// Figure grids like paper A's Figure 1: rows of images (one row per input image), columns per
// target class, column titles above and row titles at the left. The cell area is laid out exactly
// like torchvision `make_grid(nrow = columns, padding, pad_value)` and normalised like
// `make_grid(normalize=True, scale_each=...)`; 8-bit conversion is torchvision `save_image`'s.
import SIMDCore

/// A titled grid of image cells.
///
/// ```swift
/// var grid = ImageGrid(cells: [[clean, diffTench, diffChurch]],          // Tensors [3,H,W]
///                      rowTitles: ["tench"], columnTitles: ["clean", "tench", "church"])
/// grid.scaling = .perCell                                              // make_grid(normalize=True, scale_each=True)
/// let canvas = try grid.render()
/// try PNG.write(canvas, to: url)
/// ```
public struct ImageGrid: Sendable {
    /// How cell values are mapped to [0, 1] before 8-bit conversion.
    public enum Scaling: Equatable, Sendable {
        /// Each cell by its own min/max: `(clamp(x, lo, hi) - lo) / max(hi - lo, 1e-5)`
        /// (= `make_grid(normalize=True, scale_each=True)`).
        case perCell
        /// One min/max over all cells (= `make_grid(normalize=True, scale_each=False)` on the stacked batch).
        case global
        /// A fixed range (= `make_grid(normalize=True, value_range=(lo, hi))`), values clamped to it.
        case range(Float, Float)
        /// Values are already in [0, 1] (= `normalize=False`); `save_image` clamps when converting.
        case identity
        /// One min/max per row over its colour-mapped cells (plain rows and columns: per cell), so
        /// the cells of a row compare in strength.
        case perRow
        /// One min/max over every colour-mapped cell (plain rows and columns: per cell), so the
        /// whole grid compares in strength.
        case grid
    }

    /// Colour mapping for signed one-channel maps (e.g. a pullback or a perturbation summed over channels).
    public enum Colormap: Equatable, Sendable {
        /// Grey for one-channel cells, RGB as is.
        case none
        /// Blue-white-red centred at 0, symmetric: v = x / m with m = max|x| (per cell for `.perCell`,
        /// over all cells for `.global`, max(|lo|, |hi|) for `.range`, 1 for `.identity`), clamped to
        /// [-1, 1]; v = -1 is pure blue (0, 0, 1), 0 is white, +1 pure red (1, 0, 0), linear in between
        /// (matplotlib's "bwr" with vmin = -m, vmax = m, without its 256-entry quantisation).
        /// Only for one-channel cells.
        case divergingBlueWhiteRed
    }

    /// `cells[row][column]`: a Tensor [3,H,W], [1,H,W] or [H,W] (also [1,C,H,W]), or nil for an empty
    /// cell (left at the pad value, as `make_grid` leaves missing slots). All cells share H and W.
    public var cells: [[Tensor?]]
    public var rowTitles: [String]
    public var columnTitles: [String]
    /// Optional line above everything.
    public var title: String?

    /// Pixels between and around cells (torchvision default 2), in output pixels.
    public var padding = 2
    /// Grey level of the padding in [0, 1] (torchvision default 0 = black).
    public var padValue: Float = 0
    public var scaling: Scaling = .perCell
    public var colormap: Colormap = .none
    /// Rows and columns drawn without the colormap (min-max grey or RGB): e.g. the input images
    /// beside signed attribution maps.
    public var plainRows: Set<Int> = []
    public var plainColumns: Set<Int> = []
    /// Nearest-neighbour enlargement of each cell (e.g. 4 so 28x28 MNIST digits are readable).
    public var upscale = 1
    /// Largest `upscale` a recipe may ask for (cells stay a few megapixels).
    public static let maxUpscale = 16
    /// Integer scale of the 5x8 font (2 gives 10x16 glyphs).
    public var fontScale = 2
    /// Maximum width in pixels of the row-title band's text; nil = twice the cell width.
    public var maxRowTitleWidth: Int?
    public var background = RGB.white
    public var textColor = RGB(20, 20, 20)
    /// Draw a colour bar under a diverging grid (blue negative, white 0, red positive). On by
    /// default: a signed map without its key cannot be read.
    public var colourBar = true

    public init(cells: [[Tensor?]], rowTitles: [String] = [], columnTitles: [String] = [], title: String? = nil) {
        self.cells = cells
        self.rowTitles = rowTitles
        self.columnTitles = columnTitles
        self.title = title
    }

    /// Splits a batch [N, C, H, W] into rows of `columns` cells, like `make_grid(batch, nrow: columns)`;
    /// the last row is padded with nil cells.
    public static func cells(fromBatch batch: Tensor, columns: Int) throws -> [[Tensor?]] {
        guard batch.rank == 4, columns >= 1 else {
            throw ReportError.invalidInput("ImageGrid.cells(fromBatch:): expected a [N,C,H,W] batch and columns >= 1, got shape \(batch.shape), columns \(columns)")
        }
        let n = batch.shape[0], per = batch.count / max(n, 1)
        let items: [Tensor?] = (0..<n).map { i in
            Tensor(shape: Array(batch.shape.dropFirst()), scalars: Array(batch.scalars[(i * per)..<((i + 1) * per)]))
        }
        return stride(from: 0, to: n, by: columns).map { start in
            let row = Array(items[start..<min(start + columns, n)])
            return row + [Tensor?](repeating: nil, count: columns - row.count)
        }
    }

    public var rowCount: Int { cells.count }
    public var columnCount: Int { cells.map(\.count).max() ?? 0 }

    // MARK: Geometry

    /// Where everything goes, in output pixels.
    public struct Layout: Equatable, Sendable {
        public var cellWidth: Int, cellHeight: Int      // after upscaling
        public var titleBand: Int                       // height of the title line (0 if none)
        public var columnTitleBand: Int                 // height of the column-title band (0 if none)
        public var rowTitleBand: Int                    // width of the row-title band (0 if none)
        public var gridWidth: Int, gridHeight: Int      // the make_grid part
        public var width: Int, height: Int              // whole canvas
        /// Lines of the tallest column title (titles wrap instead of being cut short).
        public var columnTitleLines: Int = 1
        /// Height of the colour-bar band under the grid (0 if none).
        public var colourBarBand: Int = 0
        /// Top-left corner of cell (row, column) on the canvas.
        public func cellOrigin(row: Int, column: Int, padding: Int) -> (x: Int, y: Int) {
            (rowTitleBand + padding + column * (cellWidth + padding),
             titleBand + columnTitleBand + padding + row * (cellHeight + padding))
        }
    }

    /// Cell area = `make_grid` size: `columns * (w + pad) + pad` by `rows * (h + pad) + pad`;
    /// bands for titles are added above and to the left only when there are titles.
    public func layout() throws -> Layout {
        let (h, w) = try cellSize()
        let cw = w * upscale, ch = h * upscale
        let textH = BitmapFont.height(scale: fontScale)
        let margin = 3 * fontScale
        let titleBand = (title?.isEmpty ?? true) ? 0 : textH + 2 * margin
        let titleWidth = cw + padding
        let lines = columnTitles.map { BitmapFont.wrapped($0, maxWidth: titleWidth, scale: fontScale).count }.max() ?? 1
        let lineGap = 2 * fontScale
        let colBand = columnTitles.contains { !$0.isEmpty } ? lines * (textH + lineGap) - lineGap + 2 * margin : 0
        var rowBand = 0
        if rowTitles.contains(where: { !$0.isEmpty }) {
            let cap = maxRowTitleWidth ?? max(2 * cw, BitmapFont.width(of: "xxxxxx", scale: fontScale))
            let widest = rowTitles.map { BitmapFont.width(of: $0, scale: fontScale) }.max() ?? 0
            rowBand = min(widest, cap) + 2 * margin
        }
        let gw = columnCount * (cw + padding) + padding
        let gh = rowCount * (ch + padding) + padding
        let barBand = colourBar && colormap == .divergingBlueWhiteRed ? 2 * textH + 4 * margin : 0
        var L = Layout(cellWidth: cw, cellHeight: ch, titleBand: titleBand, columnTitleBand: colBand,
                       rowTitleBand: rowBand, gridWidth: gw, gridHeight: gh,
                       width: rowBand + gw, height: titleBand + colBand + gh + barBand)
        L.columnTitleLines = lines
        L.colourBarBand = barBand
        return L
    }

    // MARK: Rendering

    /// The grid as an 8-bit canvas, with titles.
    public func render() throws -> RGBImage {
        let L = try layout()
        var canvas = RGBImage(width: L.width, height: L.height, fill: background)
        canvas.fillRect(x: L.rowTitleBand, y: L.titleBand + L.columnTitleBand, width: L.gridWidth, height: L.gridHeight,
                        color: RGB(grey: padValue))
        let cellsRGB = try normalizedCells()
        for (r, row) in cellsRGB.enumerated() {
            for (c, cell) in row.enumerated() {
                guard let cell else { continue }
                let o = L.cellOrigin(row: r, column: c, padding: padding)
                canvas.draw(Self.toBytes(cell).upscaled(by: upscale), x: o.x, y: o.y)
            }
        }
        // Titles.
        let margin = 3 * fontScale
        if let title, L.titleBand > 0 {
            BitmapFont.drawCentered(title, on: &canvas, x: margin, y: 0, width: L.width - 2 * margin, height: L.titleBand,
                                    scale: fontScale, color: textColor)
        }
        if L.columnTitleBand > 0 {
            let textH = BitmapFont.height(scale: fontScale), lineGap = 2 * fontScale
            for (c, t) in columnTitles.enumerated() where c < columnCount {
                let o = L.cellOrigin(row: 0, column: c, padding: padding)
                // A title may use the padding on both sides of its cell; longer ones wrap, bottom-aligned.
                let lines = BitmapFont.wrapped(t, maxWidth: L.cellWidth + padding, scale: fontScale)
                let top = L.titleBand + margin + (L.columnTitleLines - lines.count) * (textH + lineGap)
                for (k, line) in lines.enumerated() {
                    BitmapFont.drawCentered(line, on: &canvas, x: o.x - padding / 2, y: top + k * (textH + lineGap),
                                            width: L.cellWidth + padding, height: textH, scale: fontScale, color: textColor)
                }
            }
        }
        if L.colourBarBand > 0 { drawColourBar(on: &canvas, L) }
        if L.rowTitleBand > 0 {
            for (r, t) in rowTitles.enumerated() where r < rowCount {
                let o = L.cellOrigin(row: r, column: 0, padding: padding)
                BitmapFont.drawCentered(t, on: &canvas, x: margin, y: o.y, width: L.rowTitleBand - 2 * margin,
                                        height: L.cellHeight, scale: fontScale, color: textColor)
            }
        }
        return canvas
    }

    /// The key of a diverging grid: a blue-white-red strip under the grid with "-m", "0", "+m"
    /// and what m is for this grid's scaling.
    func drawColourBar(on canvas: inout RGBImage, _ L: Layout) {
        let textH = BitmapFont.height(scale: fontScale), margin = 3 * fontScale
        let top = L.titleBand + L.columnTitleBand + L.gridHeight + margin
        let x0 = L.rowTitleBand + padding
        let w = max(L.gridWidth - 2 * padding, 16)
        for x in 0..<w {
            let t = Float(x) / Float(max(w - 1, 1)) * 2 - 1
            let v = Self.divergingBlueWhiteRed([t], maxAbs: 1)
            canvas.fillRect(x: x0 + x, y: top, width: 1, height: textH, color: RGB(RGB.byte(v[0]), RGB.byte(v[1]), RGB.byte(v[2])))
        }
        let m: String
        switch scaling {
        case .perCell: m = "m = max|x| per cell"
        case .perRow: m = "m = max|x| per row"
        case .grid, .global: m = "m = max|x| of the grid"
        case .range(let lo, let hi): m = "m = \(max(abs(lo), abs(hi)))"
        case .identity: m = "m = 1"
        }
        let y = top + textH + margin
        BitmapFont.draw("-m", on: &canvas, x: x0, y: y, scale: fontScale, color: textColor)
        let zero = BitmapFont.width(of: "0", scale: fontScale)
        BitmapFont.draw("0", on: &canvas, x: x0 + (w - zero) / 2, y: y, scale: fontScale, color: textColor)
        let plus = BitmapFont.width(of: "+m", scale: fontScale)
        BitmapFont.draw("+m", on: &canvas, x: x0 + w - plus, y: y, scale: fontScale, color: textColor)
        // What m is, centred between "-m" and "0" (clear of both).
        let minus = BitmapFont.width(of: "-m", scale: fontScale)
        let room = (w - zero) / 2 - minus - 4 * margin
        let label = BitmapFont.fitted(m, maxWidth: max(room, 0), scale: fontScale)
        BitmapFont.draw(label, on: &canvas, x: x0 + minus + 2 * margin + (room - BitmapFont.width(of: label, scale: fontScale)) / 2,
                        y: y, scale: fontScale, color: textColor)
    }

    /// The cell area as floats [3, gridHeight, gridWidth] in [0, 1] before 8-bit conversion — the
    /// exact counterpart of torchvision `make_grid(stack(cells), nrow: columns, padding, normalize, ...)`
    /// when `upscale == 1` and there is no colormap.
    public func gridTensor() throws -> Tensor {
        let L = try layout()
        let gw = L.gridWidth, gh = L.gridHeight
        var out = Tensor(shape: [3, gh, gw], repeating: padValue)
        let cellsRGB = try normalizedCells()
        let (h, w) = try cellSize()
        for (r, row) in cellsRGB.enumerated() {
            for (c, cell) in row.enumerated() {
                guard let cell else { continue }
                let x0 = padding + c * (L.cellWidth + padding), y0 = padding + r * (L.cellHeight + padding)
                for ch in 0..<3 {
                    for y in 0..<L.cellHeight {
                        for x in 0..<L.cellWidth {
                            out.scalars[(ch * gh + y0 + y) * gw + x0 + x] =
                                cell.scalars[(ch * h + y / upscale) * w + x / upscale]
                        }
                    }
                }
            }
        }
        return out
    }

    // MARK: Normalisation (torchvision make_grid semantics)

    /// torchvision `norm_ip`: clamp to [low, high], subtract low, divide by max(high - low, 1e-5).
    /// (high - low is formed in Double, as torchvision does with Python floats.)
    public static func normalize(_ values: [Float], low: Float, high: Float) -> [Float] {
        let denom = Float(max(Double(high) - Double(low), 1e-5))
        return values.map { x in (min(max(x, low), high) - low) / denom }
    }

    /// Finite min and max of `values` (NaNs and infinities skipped); (0, 0) if none are finite.
    static func finiteRange<C: Collection>(_ values: C) -> (Float, Float) where C.Element == Float {
        var lo = Float.infinity, hi = -Float.infinity
        for v in values where v.isFinite { lo = min(lo, v); hi = max(hi, v) }
        return lo <= hi ? (lo, hi) : (0, 0)
    }

    /// Every cell as a [3, H, W] tensor of [0, 1] values (scaled, colour-mapped, grey replicated).
    public func normalizedCells() throws -> [[Tensor?]] {
        let (h, w) = try cellSize()
        let flat = try cells.enumerated().map { r, row in
            try row.enumerated().map { c, t in try t.map { try Self.channelsFirst($0, row: r, column: c) } }
        }
        var globalLo: Float = 0, globalHi: Float = 0
        if scaling == .global {
            (globalLo, globalHi) = Self.finiteRange(flat.joined().compactMap { $0 }.flatMap(\.scalars))
        }
        let mapped = flat.enumerated().flatMap { r, row in
            row.enumerated().compactMap { c, t in plainRows.contains(r) || plainColumns.contains(c) ? nil : t }
        }
        if colormap == .divergingBlueWhiteRed, let bad = mapped.first(where: { $0.shape[0] != 1 }) {
            throw ReportError.invalidInput("ImageGrid: the diverging colormap needs one-channel cells, got shape \(bad.shape); reduce channels first (e.g. sum over C)")
        }
        let globalAbs = max(abs(globalLo), abs(globalHi))
        // perRow / grid: ranges over the colour-mapped (non-plain) cells only.
        func isPlain(_ r: Int, _ c: Int) -> Bool { plainRows.contains(r) || plainColumns.contains(c) }
        let rowRanges: [(Float, Float)] = flat.enumerated().map { r, row in
            Self.finiteRange(row.enumerated().compactMap { c, t in isPlain(r, c) ? nil : t }.flatMap(\.scalars))
        }
        let gridRange = Self.finiteRange(flat.enumerated().flatMap { r, row in
            row.enumerated().compactMap { c, t in isPlain(r, c) ? nil : t }.flatMap(\.scalars)
        })
        return flat.enumerated().map { r, row in
            row.enumerated().map { col, cell -> Tensor? in
                guard let cell else { return nil }
                let c = cell.shape[0]
                var v: [Float]
                let plain = plainRows.contains(r) || plainColumns.contains(col)
                switch plain ? Colormap.none : colormap {
                case .none:
                    switch plain && (scaling == .perRow || scaling == .grid) ? Scaling.perCell : scaling {
                    case .perRow: let (lo, hi) = rowRanges[r]; v = Self.normalize(cell.scalars, low: lo, high: hi)
                    case .grid: v = Self.normalize(cell.scalars, low: gridRange.0, high: gridRange.1)
                    case .perCell:
                        let (lo, hi) = Self.finiteRange(cell.scalars)
                        v = Self.normalize(cell.scalars, low: lo, high: hi)
                    case .global: v = Self.normalize(cell.scalars, low: globalLo, high: globalHi)
                    case .range(let lo, let hi): v = Self.normalize(cell.scalars, low: lo, high: hi)
                    case .identity: v = cell.scalars
                    }
                    if c == 1 { v = v + v + v }
                case .divergingBlueWhiteRed:
                    let m: Float
                    switch scaling {
                    case .perRow: m = max(abs(rowRanges[r].0), abs(rowRanges[r].1))
                    case .grid: m = max(abs(gridRange.0), abs(gridRange.1))
                    case .perCell: let (lo, hi) = Self.finiteRange(cell.scalars); m = max(abs(lo), abs(hi))
                    case .global: m = globalAbs
                    case .range(let lo, let hi): m = max(abs(lo), abs(hi))
                    case .identity: m = 1
                    }
                    v = Self.divergingBlueWhiteRed(cell.scalars, maxAbs: m)
                }
                return Tensor(shape: [3, h, w], scalars: v)
            }
        }
    }

    /// Blue-white-red colours [3, n] (planar R, G, B) for signed values scaled by `maxAbs`.
    public static func divergingBlueWhiteRed(_ values: [Float], maxAbs: Float) -> [Float] {
        let n = values.count
        var out = [Float](repeating: 0, count: 3 * n)
        let inv: Float = maxAbs > 0 && maxAbs.isFinite ? 1 / maxAbs : 0
        for (i, x) in values.enumerated() {
            let t = x.isNaN ? 0 : min(max(x * inv, -1), 1)
            // t < 0: white -> blue (R, G fall); t > 0: white -> red (G, B fall).
            out[i] = t < 0 ? 1 + t : 1
            out[n + i] = 1 - abs(t)
            out[2 * n + i] = t > 0 ? 1 - t : 1
        }
        return out
    }

    // MARK: Helpers

    /// Common (H, W) of all non-nil cells; throws naming the first cell that differs.
    func cellSize() throws -> (Int, Int) {
        guard upscale >= 1, padding >= 0, fontScale >= 1 else {
            throw ReportError.invalidInput("ImageGrid: upscale (\(upscale)) and fontScale (\(fontScale)) must be >= 1, padding (\(padding)) >= 0")
        }
        var size: (Int, Int)?
        for (r, row) in cells.enumerated() {
            for (c, cell) in row.enumerated() {
                guard let cell else { continue }
                let t = try Self.channelsFirst(cell, row: r, column: c)
                let hw = (t.shape[1], t.shape[2])
                if let s = size, s != hw {
                    throw ReportError.invalidInput("ImageGrid: cell (\(r), \(c)) is \(hw.0)x\(hw.1) but earlier cells are \(s.0)x\(s.1)")
                }
                size = hw
            }
        }
        guard let size else { throw ReportError.invalidInput("ImageGrid: no cells (all \(rowCount) rows empty or nil)") }
        return size
    }

    /// Accepts [C,H,W], [1,C,H,W] or [H,W] with C in {1, 3}; returns [C,H,W].
    static func channelsFirst(_ t: Tensor, row: Int, column: Int) throws -> Tensor {
        var s = t.shape
        if s.count == 4, s[0] == 1 { s.removeFirst() }
        if s.count == 2 { s.insert(1, at: 0) }
        guard s.count == 3, s[0] == 1 || s[0] == 3, s[1] > 0, s[2] > 0 else {
            throw ReportError.invalidInput("ImageGrid: cell (\(row), \(column)) has shape \(t.shape); expected [3,H,W], [1,H,W] or [H,W]")
        }
        return t.reshaped(s)
    }

    /// torchvision `save_image` conversion of a [3, H, W] tensor in [0, 1].
    static func toBytes(_ t: Tensor) -> RGBImage {
        let h = t.shape[1], w = t.shape[2], plane = h * w
        var c = RGBImage(width: w, height: h)
        t.scalars.withUnsafeBufferPointer { s in
            for i in 0..<plane {
                c.pixels[3 * i] = RGB.byte(s[i])
                c.pixels[3 * i + 1] = RGB.byte(s[plane + i])
                c.pixels[3 * i + 2] = RGB.byte(s[2 * plane + i])
            }
        }
        return c
    }
}
