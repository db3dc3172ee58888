// MARK: - LinePlot (SVG)
//
// Line and step plots for training curves, temperature sweeps and eigenvalue spectra (e.c.d.f.),
// written as standalone SVG 1.1 text: no fonts or scripts referenced, all text escaped.
import Foundation

/// A 2-D line plot of named series.
///
/// ```swift
/// var p = LinePlot(title: "nu_t during training", xLabel: "epoch", yLabel: "nu_t")
/// p.series.append(.init(name: "w = 100", x: epochs, y: nu))
/// p.series.append(LinePlot.ecdf(name: "d = 4", values: eigenvalues))
/// try AtomicFile.write(try p.svg(), to: url)
/// ```
public struct LinePlot: Sendable {
    public struct Series: Sendable {
        public enum Style: Sendable, Equatable {
            case line
            /// Post-step: y[i] holds from x[i] until x[i + 1] (e.c.d.f.s, piecewise-constant schedules).
            case step
        }
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var style: Style
        public var markers: Bool
        public var dashed: Bool
        /// CSS colour; nil = next colour of the palette.
        public var color: String?

        public init(name: String, x: [Double], y: [Double], style: Style = .line, markers: Bool = false,
                    dashed: Bool = false, color: String? = nil) {
            self.name = name; self.x = x; self.y = y; self.style = style
            self.markers = markers; self.dashed = dashed; self.color = color
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series] = []
    public var logY = false
    public var width = 640
    public var height = 400
    public var showLegend = true
    /// Corner of the plot area holding the legend (e.c.d.f.s read best with `.bottomRight`).
    public enum LegendPosition: Sendable, Equatable { case topRight, topLeft, bottomRight, bottomLeft }
    public var legendPosition = LegendPosition.topRight
    /// Fixed axis ranges; nil = data range (rounded out to ticks).
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?

    public init(title: String = "", xLabel: String = "", yLabel: String = "", series: [Series] = []) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// Tableau 10 palette.
    public static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                 "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]

    // MARK: e.c.d.f.

    /// The empirical c.d.f. of `values` as a step series: F(v) = #{values <= v} / n, drawn from
    /// (min, 0). Non-finite values are rejected.
    public static func ecdf(name: String, values: [Double], color: String? = nil, dashed: Bool = false) -> Series {
        let v = values.filter(\.isFinite).sorted()
        guard let first = v.first else { return Series(name: name, x: [], y: [], style: .step, color: color) }
        let n = Double(v.count)
        return Series(name: name, x: [first] + v, y: (0...v.count).map { Double($0) / n }, style: .step,
                      dashed: dashed, color: color)
    }

    // MARK: Ticks

    /// "Nice" tick values (steps 1, 2 or 5 times a power of ten) covering [lo, hi] with about
    /// `target` intervals; the first and last ticks enclose the range.
    public static func niceTicks(_ lo: Double, _ hi: Double, target: Int = 5) -> [Double] {
        guard lo.isFinite, hi.isFinite else { return [] }
        var lo = lo, hi = hi
        if hi < lo { swap(&lo, &hi) }
        if hi == lo { let d = lo == 0 ? 1 : abs(lo) * 0.1; lo -= d; hi += d }
        let raw = (hi - lo) / Double(max(1, target))
        let mag = pow(10, floor(log10(raw)))
        let f = raw / mag
        let step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag
        let start = floor(lo / step + 1e-9), end = ceil(hi / step - 1e-9)
        // Multiply (not accumulate), then round to the step's decimals so 3 * 0.2 prints as 0.6.
        let scale = pow(10, max(0, -floor(log10(step))))
        return stride(from: start, through: end, by: 1).map { k in
            let t = (k * step * scale).rounded() / scale
            return t == 0 ? 0 : t                                   // no -0
        }
    }

    /// Decade ticks (powers of ten) covering [lo, hi] > 0; within less than two decades the
    /// 2 and 5 multiples are added.
    public static func logTicks(_ lo: Double, _ hi: Double) -> [Double] {
        guard lo > 0, hi >= lo, hi.isFinite else { return [] }
        let a = Int(floor(log10(lo) + 1e-9)), b = Int(ceil(log10(hi) - 1e-9))
        let b2 = max(b, a + 1)
        var ticks = (a...b2).map { pow(10, Double($0)) }
        if b2 - a <= 2 {
            ticks = (a...b2).flatMap { e -> [Double] in
                let p = pow(10, Double(e)); return e == b2 ? [p] : [p, 2 * p, 5 * p]
            }
        }
        return ticks
    }

    /// Tick label: plain decimals with the step's precision for moderate magnitudes, else "1e-05" style.
    static func label(_ v: Double, step: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%g", v) }
        let decimals = step > 0 ? max(0, Int(ceil(-log10(step) - 1e-9))) : 3
        return String(format: "%.\(min(decimals, 6))f", v)
    }

    // MARK: SVG

    /// The plot as a standalone SVG document. `id` prefixes the document's element ids, so several
    /// plots can be inlined in one HTML page (ids must be unique per page).
    public func svg(id: String = "plot") throws -> String {
        let clipID = HTML.escape(id) + "-area"
        // Validate.
        for s in series {
            guard s.x.count == s.y.count else {
                throw ReportError.invalidInput("LinePlot '\(title)': series '\(s.name)' has \(s.x.count) x values and \(s.y.count) y values")
            }
            if logY, let i = s.y.firstIndex(where: { $0.isFinite && $0 <= 0 }) {
                throw ReportError.invalidInput("LinePlot '\(title)': log-scale y needs positive values; series '\(s.name)' has y[\(i)] = \(s.y[i])")
            }
        }
        guard width >= 200, height >= 150 else {
            throw ReportError.invalidInput("LinePlot '\(title)': size \(width)x\(height) is too small (min 200x150)")
        }

        // Data ranges over finite points.
        let xs = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }.map(\.0) }
        let ys = series.flatMap { s in zip(s.x, s.y).filter { $0.0.isFinite && $0.1.isFinite }.map(\.1) }
        var xTicks = LinePlot.niceTicks(xRange?.lowerBound ?? xs.min() ?? 0, xRange?.upperBound ?? xs.max() ?? 1)
        var yTicks = logY ? LinePlot.logTicks(yRange?.lowerBound ?? ys.min() ?? 1, yRange?.upperBound ?? ys.max() ?? 10)
                          : LinePlot.niceTicks(yRange?.lowerBound ?? ys.min() ?? 0, yRange?.upperBound ?? ys.max() ?? 1)
        let x0 = xRange?.lowerBound ?? xTicks.first ?? 0, x1 = xRange?.upperBound ?? xTicks.last ?? 1
        let y0 = yRange?.lowerBound ?? yTicks.first ?? 0, y1 = yRange?.upperBound ?? yTicks.last ?? 1
        xTicks = xTicks.filter { $0 >= x0 - 1e-12 * abs(x1 - x0) && $0 <= x1 + 1e-12 * abs(x1 - x0) }
        yTicks = yTicks.filter { $0 >= y0 * (1 - 1e-12) - (logY ? 0 : 1e-12 * abs(y1 - y0)) && $0 <= y1 * (1 + 1e-12) + (logY ? 0 : 1e-12 * abs(y1 - y0)) }
        let xStep = xTicks.count > 1 ? xTicks[1] - xTicks[0] : 1
        let yStep = yTicks.count > 1 ? yTicks[1] - yTicks[0] : 1

        // Frame.
        let left = 72.0, right = 20.0, top = title.isEmpty ? 20.0 : 42.0, bottom = xLabel.isEmpty ? 40.0 : 58.0
        let pw = Double(width) - left - right, ph = Double(height) - top - bottom
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0 == 0 ? 1 : x1 - x0) * pw }
        func py(_ y: Double) -> Double {
            let t = logY ? (log10(y) - log10(y0)) / max(log10(y1) - log10(y0), 1e-12) : (y - y0) / (y1 - y0 == 0 ? 1 : y1 - y0)
            return top + (1 - t) * ph
        }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        let esc = HTML.escape

        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" viewBox="0 0 \(width) \(height)" font-family="Helvetica, Arial, sans-serif" font-size="12">
        <rect width="\(width)" height="\(height)" fill="#ffffff"/>
        <defs><clipPath id="\(clipID)"><rect x="\(f(left))" y="\(f(top))" width="\(f(pw))" height="\(f(ph))"/></clipPath></defs>

        """
        if !title.isEmpty {
            s += "<text x=\"\(f(left + pw / 2))\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">\(esc(title))</text>\n"
        }
        // Grid lines and tick labels.
        s += "<g stroke=\"#e3e3e3\" stroke-width=\"1\">\n"
        for t in xTicks { s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph))\"/>\n" }
        for t in yTicks { s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(t)))\"/>\n" }
        s += "</g>\n<g fill=\"#333333\">\n"
        for t in xTicks {
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(esc(LinePlot.label(t, step: xStep)))</text>\n"
        }
        for t in yTicks {
            let l = logY ? LinePlot.label(t, step: t) : LinePlot.label(t, step: yStep)
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(esc(l))</text>\n"
        }
        s += "</g>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#555555\"/>\n"
        if !xLabel.isEmpty {
            s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(Double(height) - 12))\" text-anchor=\"middle\" font-size=\"13\">\(esc(xLabel))</text>\n"
        }
        if !yLabel.isEmpty {
            s += "<text transform=\"translate(16 \(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">\(esc(yLabel))</text>\n"
        }

        // Series: polylines broken at non-finite points.
        s += "<g clip-path=\"url(#\(clipID))\" fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\">\n"
        for (k, ser) in series.enumerated() {
            let color = esc(ser.color ?? LinePlot.palette[k % LinePlot.palette.count])
            var d = "", pen = false
            for (x, y) in zip(ser.x, ser.y) {
                guard x.isFinite, y.isFinite else { pen = false; continue }
                let X = px(x), Y = py(y)
                if !pen { d += "M\(f(X)) \(f(Y))"; pen = true }
                else if ser.style == .step { d += "H\(f(X))V\(f(Y))" }
                else { d += "L\(f(X)) \(f(Y))" }
            }
            let dash = ser.dashed ? " stroke-dasharray=\"6 4\"" : ""
            if !d.isEmpty { s += "<path d=\"\(d)\" stroke=\"\(color)\"\(dash)/>\n" }
            if ser.markers {
                for (x, y) in zip(ser.x, ser.y) where x.isFinite && y.isFinite {
                    s += "<circle cx=\"\(f(px(x)))\" cy=\"\(f(py(y)))\" r=\"2.8\" fill=\"\(color)\" stroke=\"none\"/>\n"
                }
            }
        }
        s += "</g>\n"

        // Legend (top-right inside the plot area).
        if showLegend, !series.isEmpty {
            let rowH = 17.0
            let textW = Double(series.map(\.name.count).max() ?? 0) * 6.8
            let lw = textW + 40, lh = Double(series.count) * rowH + 8
            let onRight = legendPosition == .topRight || legendPosition == .bottomRight
            let onTop = legendPosition == .topRight || legendPosition == .topLeft
            let lx = onRight ? left + pw - lw - 8 : left + 8, ly = onTop ? top + 8 : top + ph - lh - 8
            s += "<g>\n<rect x=\"\(f(lx))\" y=\"\(f(ly))\" width=\"\(f(lw))\" height=\"\(f(lh))\" fill=\"#ffffff\" fill-opacity=\"0.85\" stroke=\"#bbbbbb\"/>\n"
            for (k, ser) in series.enumerated() {
                let color = esc(ser.color ?? LinePlot.palette[k % LinePlot.palette.count])
                let yy = ly + 4 + rowH * (Double(k) + 0.5)
                let dash = ser.dashed ? " stroke-dasharray=\"6 4\"" : ""
                s += "<line x1=\"\(f(lx + 6))\" y1=\"\(f(yy))\" x2=\"\(f(lx + 28))\" y2=\"\(f(yy))\" stroke=\"\(color)\" stroke-width=\"2\"\(dash)/>\n"
                if ser.markers { s += "<circle cx=\"\(f(lx + 17))\" cy=\"\(f(yy))\" r=\"2.8\" fill=\"\(color)\"/>\n" }
                s += "<text x=\"\(f(lx + 34))\" y=\"\(f(yy + 4))\">\(esc(ser.name))</text>\n"
            }
            s += "</g>\n"
        }
        s += "</svg>\n"
        return s
    }
}
