import XCTest
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import SIMDCore
import Recipes

final class ReportTests: XCTestCase {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    // MARK: make_grid golden (torchvision)

    struct Golden: Decodable {
        struct Cell: Decodable { var shape: [Int]; var values: [Double] }
        struct Case: Decodable {
            var padding: Int; var pad_value: Double; var value_range: [Double]
            var shape: [Int]; var grid: [Double]; var bytes: [Int]
        }
        var nrow: Int; var cells: [Cell]; var cases: [String: Case]
    }

    func testMakeGridMatchesTorchvision() throws {
        let url = Self.packageRoot.appendingPathComponent("Tests/Fixtures/reports/make_grid_golden.json")
        let golden = try JSONDecoder().decode(Golden.self, from: Data(contentsOf: url))
        let t = golden.cells.map { Tensor(shape: $0.shape, scalars: $0.values.map(Float.init)) }
        XCTAssertEqual(golden.cases.count, 4)
        for (name, g) in golden.cases.sorted(by: { $0.key < $1.key }) {
            var grid = ImageGrid(cells: [[t[0], t[1], t[2]], [t[3], t[4], nil]])
            grid.padding = g.padding
            grid.padValue = Float(g.pad_value)
            switch name {
            case "per_cell": grid.scaling = .perCell
            case "global": grid.scaling = .global
            case "range": grid.scaling = .range(Float(g.value_range[0]), Float(g.value_range[1]))
            case "identity_pad1_grey": grid.scaling = .identity
            default: XCTFail("unknown case \(name)")
            }
            let floats = try grid.gridTensor()
            XCTAssertEqual(floats.shape, g.shape, name)
            let maxDiff = Discrepancy(floats.scalars, g.grid).worst
            let canvas = try grid.render()
            XCTAssertEqual(canvas.width, g.shape[2]); XCTAssertEqual(canvas.height, g.shape[1])
            // Golden bytes are planar [3, H, W]; the canvas is interleaved.
            let plane = g.shape[1] * g.shape[2]
            var byteMismatches = 0
            for c in 0..<3 { for i in 0..<plane where Int(canvas.pixels[3 * i + c]) != g.bytes[c * plane + i] { byteMismatches += 1 } }
            print("make_grid[\(name)]: max |float diff| = \(maxDiff), 8-bit mismatches = \(byteMismatches) of \(3 * plane)")
            XCTAssertLessThanOrEqual(maxDiff, 1e-6, name)
            XCTAssertEqual(byteMismatches, 0, name)
        }
    }

    func testNormalizeFormula() {
        // (clamp(x) - lo) / max(hi - lo, 1e-5); constant cells divide by 1e-5 and give 0.
        XCTAssertEqual(ImageGrid.normalize([-1, 0, 3], low: -1, high: 3), [0, 0.25, 1])
        XCTAssertEqual(ImageGrid.normalize([2, 2], low: 2, high: 2), [0, 0])
        XCTAssertEqual(ImageGrid.normalize([-5, 5], low: 0, high: 1), [0, 1])
        XCTAssertEqual(RGB.byte(0.5), 128); XCTAssertEqual(RGB.byte(0.998), 254); XCTAssertEqual(RGB.byte(0.999), 255)
        XCTAssertEqual(RGB.byte(-3), 0); XCTAssertEqual(RGB.byte(7), 255); XCTAssertEqual(RGB.byte(.nan), 0)
    }

    // MARK: Font

    func testFontRendersKnownGlyphs() {
        var c = RGBImage(width: 5, height: 8, fill: .white)
        BitmapFont.draw("A", on: &c, x: 0, y: 0, scale: 1, color: .black)
        let expectedA = [".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#", "....."]
        var got: [String] = []
        for y in 0..<8 { got.append(String((0..<5).map { c[$0, y] == .black ? "#" : "." })) }
        XCTAssertEqual(got, expectedA)

        // Scale 2: each font pixel is a 2x2 block; "g" has a descender on row 7.
        var g = RGBImage(width: 10, height: 16, fill: .white)
        BitmapFont.draw("g", on: &g, x: 0, y: 0, scale: 2, color: .black)
        XCTAssertEqual(g[2, 4], .black); XCTAssertEqual(g[3, 5], .black)      // row 2 ".####": column 1
        XCTAssertEqual(g[0, 4], .white)
        XCTAssertEqual(g[4, 14], .black); XCTAssertEqual(g[0, 14], .white)     // row 7 ".###."
        XCTAssertEqual(Array(BitmapFont.glyph("g")), [0x00, 0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E])
        // Unknown characters draw as "?"; every printable glyph except space has ink.
        XCTAssertEqual(BitmapFont.glyph("é"), BitmapFont.glyph("?"))
        for a in 33...126 { XCTAssertTrue(BitmapFont.glyph(Character(UnicodeScalar(UInt8(a)))).contains { $0 != 0 }, "glyph \(a)") }

        // Width and truncation.
        XCTAssertEqual(BitmapFont.width(of: "golf ball"), 53)
        XCTAssertEqual(BitmapFont.width(of: "ab", scale: 3), 33)
        XCTAssertEqual(BitmapFont.fitted("golf ball", maxWidth: 53), "golf ball")
        XCTAssertEqual(BitmapFont.fitted("golf ball", maxWidth: 52), "golf ba\u{2026}")
        XCTAssertEqual(BitmapFont.fitted("golf ball", maxWidth: 29), "golf\u{2026}")
        XCTAssertEqual(BitmapFont.fitted("golf ball", maxWidth: 35), "golf\u{2026}")   // "golf \u{2026}" drops the space
        XCTAssertEqual(BitmapFont.fitted("golf ball", maxWidth: 4), "")
        XCTAssertLessThanOrEqual(BitmapFont.width(of: BitmapFont.fitted("cassette player", maxWidth: 60, scale: 2), scale: 2), 60)
    }

    // MARK: Grid geometry

    func testGridGeometryWithTitles() throws {
        let cell = Tensor(shape: [1, 28, 28]) { Float($0 % 28) }          // horizontal ramp
        var grid = ImageGrid(cells: [[cell, cell, cell, cell], [cell, nil, cell, cell], [cell, cell, cell, cell]],
                             rowTitles: ["zero", "one", "two"],
                             columnTitles: ["clean", "a very long column title", "b", "c"],
                             title: "Demo")
        grid.upscale = 2
        grid.fontScale = 1
        let L = try grid.layout()
        let textH = 8, margin = 3
        XCTAssertEqual(L.cellWidth, 56); XCTAssertEqual(L.cellHeight, 56)
        XCTAssertEqual(L.gridWidth, 4 * (56 + 2) + 2)
        XCTAssertEqual(L.gridHeight, 3 * (56 + 2) + 2)
        XCTAssertEqual(L.titleBand, textH + 2 * margin)
        // "a very long column title" wraps to four lines of at most 58 pixels (cell + padding).
        XCTAssertEqual(L.columnTitleLines, 4)
        XCTAssertEqual(L.columnTitleBand, 4 * (textH + 2) - 2 + 2 * margin)
        XCTAssertEqual(L.rowTitleBand, BitmapFont.width(of: "zero") + 2 * margin)
        let c = try grid.render()
        XCTAssertEqual(c.width, L.rowTitleBand + L.gridWidth)
        XCTAssertEqual(c.height, L.titleBand + L.columnTitleBand + L.gridHeight)
        let gx = L.rowTitleBand, gy = L.titleBand + L.columnTitleBand
        XCTAssertEqual(c[gx, gy], .black)                                  // padding corner
        XCTAssertEqual(c[gx + 2, gy + 2], .black)                          // ramp starts at 0
        XCTAssertEqual(c[gx + 3, gy + 2], .black)                          // upscale 2: pixel 0 is 2 wide
        XCTAssertEqual(c[gx + 2 + 55, gy + 2], .white)                     // ramp ends at 1
        XCTAssertEqual(c[gx + 2 + 4, gy + 2], RGB(grey: 2.0 / 27.0))       // source column 2
        let empty = L.cellOrigin(row: 1, column: 1, padding: 2)
        XCTAssertEqual(c[empty.x + 40, empty.y + 40], .black)              // nil cell = pad value
        // The long column title is fitted: no ink outside its cell (plus half the padding each side).
        let o1 = L.cellOrigin(row: 0, column: 1, padding: 2), o2 = L.cellOrigin(row: 0, column: 2, padding: 2)
        var inkInCell1 = 0, inkInGap = 0
        for y in L.titleBand..<(L.titleBand + L.columnTitleBand) {
            for x in (o1.x - 1)..<(o1.x + 57) where c[x, y] != .white { inkInCell1 += 1 }
            for x in (o1.x + 57)..<(o2.x + 20) where c[x, y] != .white && x < o2.x - 1 { inkInGap += 1 }
        }
        XCTAssertGreaterThan(inkInCell1, 20)
        XCTAssertEqual(inkInGap, 0)
        // Row titles are drawn in the left band, vertically within their row.
        var rowInk = 0
        let r0 = L.cellOrigin(row: 0, column: 0, padding: 2)
        for y in r0.y..<(r0.y + 56) { for x in 0..<L.rowTitleBand where c[x, y] != .white { rowInk += 1 } }
        XCTAssertGreaterThan(rowInk, 20)
    }

    func testDivergingColormapAndErrors() throws {
        let signed = Tensor(shape: [1, 1, 4], scalars: [-2, 0, 1, 2])
        var grid = ImageGrid(cells: [[signed]])
        grid.colormap = .divergingBlueWhiteRed
        grid.padding = 0
        let c = try grid.render()
        XCTAssertEqual((0..<4).map { c[$0, 0] }, [RGB(0, 0, 255), .white, RGB(255, 128, 128), RGB(255, 0, 0)])
        grid.scaling = .range(-4, 4)
        let c2 = try grid.render()
        XCTAssertEqual(c2[0, 0], RGB(128, 128, 255))

        grid.cells = [[Tensor(zeros: [3, 2, 2])]]
        XCTAssertThrowsError(try grid.render()) { XCTAssertTrue("\($0)".contains("one-channel"), "\($0)") }
        let mismatched = ImageGrid(cells: [[Tensor(zeros: [3, 4, 4]), Tensor(zeros: [3, 4, 5])]])
        XCTAssertThrowsError(try mismatched.render()) { XCTAssertTrue("\($0)".contains("cell (0, 1) is 4x5"), "\($0)") }
        let badShape = ImageGrid(cells: [[Tensor(zeros: [2, 4, 4])]])
        XCTAssertThrowsError(try badShape.render()) { XCTAssertTrue("\($0)".contains("[2, 4, 4]"), "\($0)") }
        XCTAssertThrowsError(try ImageGrid(cells: [[nil]]).render())

        // A batch split like make_grid(nrow: 2): 5 images -> 3 rows, the last padded with nil.
        let batch = Tensor(shape: [5, 1, 2, 2]) { Float($0) }
        let rows = try ImageGrid.cells(fromBatch: batch, columns: 2)
        XCTAssertEqual(rows.map(\.count), [2, 2, 2])
        XCTAssertEqual(rows[2][0]?.scalars, [16, 17, 18, 19])
        XCTAssertNil(rows[2][1])
        XCTAssertThrowsError(try ImageGrid.cells(fromBatch: Tensor(zeros: [2, 2]), columns: 2))
    }

    // MARK: Tables

    func testTableCSVAndMarkdown() {
        var t = Table(headers: ["name", "value"])
        t.append(["plain", 1])
        t.append(["a,b", 2.5])
        t.append(["say \"hi\"", .missing])
        t.append(["line\nbreak", .fixed(3.14159, decimals: 2)])
        t.append(["pipe|x", .number(1e-5)])
        XCTAssertEqual(t.csv(), "name,value\r\nplain,1\r\n\"a,b\",2.5\r\n\"say \"\"hi\"\"\",\r\n\"line\nbreak\",3.14\r\npipe|x,1e-05\r\n")
        XCTAssertEqual(Table.csvField(" x "), " x ")
        XCTAssertEqual(t.alignment(ofColumn: 0), .left)
        XCTAssertEqual(t.alignment(ofColumn: 1), .right)
        let md = t.markdown().split(separator: "\n").map(String.init)
        XCTAssertEqual(md[0], "| name       | value |")
        XCTAssertEqual(md[1], "| :--------- | ----: |")
        XCTAssertEqual(md[3], "| a,b        |   2.5 |")
        XCTAssertEqual(md[5], "| line break |  3.14 |")
        XCTAssertEqual(md[6], "| pipe\\|x    | 1e-05 |")
        let html = t.html()
        XCTAssertTrue(html.contains("<td>say &quot;hi&quot;</td>"))
        XCTAssertTrue(html.contains("<td class=\"r\">2.5</td>"))
    }

    // MARK: SVG plots

    final class SVGCollector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var texts: [String] = []
        var current = ""
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            elements[name, default: 0] += 1; current = ""
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { current += string }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "text" { texts.append(current) }
        }
    }

    func testLinePlotSVGIsWellFormed() throws {
        var p = LinePlot(title: "loss <train> & \"val\"", xLabel: "epoch", yLabel: "loss")
        p.series.append(.init(name: "train", x: [0, 1, 2, 3, 4], y: [2.3, 0.9, 0.4, .nan, 0.1], markers: true))
        p.series.append(.init(name: "val & test", x: [0, 2, 4], y: [2.4, 0.7, 0.3], dashed: true))
        p.logY = true
        let svg = try p.svg()
        let collector = SVGCollector()
        let parser = XMLParser(data: Data(svg.utf8))
        parser.delegate = collector
        XCTAssertTrue(parser.parse(), "SVG not well-formed: \(String(describing: parser.parserError))")
        XCTAssertEqual(collector.elements["svg"], 1)
        XCTAssertEqual(collector.elements["path"], 2)
        XCTAssertEqual(collector.elements["circle"], 4 + 1)                 // 4 finite points + legend marker
        XCTAssertTrue(collector.texts.contains("loss <train> & \"val\""))
        XCTAssertTrue(collector.texts.contains("val & test"))
        XCTAssertTrue(collector.texts.contains("0.1") && collector.texts.contains("1") && collector.texts.contains("10"))
        // The NaN breaks the train line into two subpaths.
        XCTAssertEqual(svg.components(separatedBy: "M").count - 1, 3)

        var spectrum = LinePlot(title: "e.c.d.f.", xLabel: "eigenvalue", yLabel: "fraction")
        spectrum.series = [LinePlot.ecdf(name: "d = 4", values: [3, 1, 2, 2])]
        XCTAssertEqual(spectrum.series[0].x, [1, 1, 2, 2, 3])
        XCTAssertEqual(spectrum.series[0].y, [0, 0.25, 0.5, 0.75, 1])
        let p2 = XMLParser(data: Data(try spectrum.svg().utf8))
        XCTAssertTrue(p2.parse())
        XCTAssertTrue(try spectrum.svg().contains("H"))

        XCTAssertEqual(LinePlot.niceTicks(0, 0.93), [0, 0.2, 0.4, 0.6, 0.8, 1])
        XCTAssertEqual(LinePlot.niceTicks(-3.2, 17), [-5, 0, 5, 10, 15, 20])
        XCTAssertEqual(LinePlot.niceTicks(5, 5), [4.4, 4.6, 4.8, 5, 5.2, 5.4, 5.6])
        XCTAssertEqual(LinePlot.niceTicks(0.0013, 0.0071), [0, 0.002, 0.004, 0.006, 0.008])
        XCTAssertEqual(LinePlot.logTicks(0.003, 20), [0.001, 0.01, 0.1, 1, 10, 100])
        XCTAssertEqual(LinePlot.logTicks(0.3, 4), [0.1, 0.2, 0.5, 1, 2, 5, 10])

        var bad = LinePlot(title: "t")
        bad.series = [.init(name: "s", x: [1, 2], y: [1])]
        XCTAssertThrowsError(try bad.svg()) { XCTAssertTrue("\($0)".contains("series 's' has 2 x values and 1 y values")) }
        bad.series = [.init(name: "s", x: [1, 2], y: [1, 0])]
        bad.logY = true
        XCTAssertThrowsError(try bad.svg()) { XCTAssertTrue("\($0)".contains("y[1] = 0.0")) }
    }

    // MARK: HTML escaping and the Markdown subset

    func testHTMLEscapingAndMarkdownSubset() throws {
        XCTAssertEqual(HTML.escape("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
        XCTAssertEqual(MarkdownHTML.inline("Use *soft* gates: `sigmoid(z/T) < 1`"),
                       "Use <em>soft</em> gates: <code>sigmoid(z/T) &lt; 1</code>")
        XCTAssertEqual(MarkdownHTML.inline("**bold** and _it_ but snake_case_name stays"),
                       "<strong>bold</strong> and <em>it</em> but snake_case_name stays")
        XCTAssertEqual(MarkdownHTML.inline("math $a_i * b_j$ kept"), "math <span class=\"math\">$a_i * b_j$</span> kept")
        XCTAssertEqual(MarkdownHTML.inline("[ok](https://x.org/?a=1&b=2) [bad](javascript:alert(1)) [rel](fig1.png)"),
                       "<a href=\"https://x.org/?a=1&amp;b=2\">ok</a> bad <a href=\"fig1.png\">rel</a>")
        XCTAssertEqual(MarkdownHTML.inline("<script>alert(1)</script> \\*not em\\*"),
                       "&lt;script&gt;alert(1)&lt;/script&gt; *not em*")
        let md = "# Title <b>\n\nfirst line\nsecond\n\n- one\n- two *x*\n\n1. a\n2. b\n\n```\nlet x = a < b\n```\n"
        XCTAssertEqual(MarkdownHTML.render(md),
                       "<h1>Title &lt;b&gt;</h1>\n<p>first line\nsecond</p>\n<ul>\n<li>one</li>\n<li>two <em>x</em></li>\n</ul>\n"
                       + "<ol>\n<li>a</li>\n<li>b</li>\n</ol>\n<pre><code>let x = a &lt; b</code></pre>\n")

        var r = Report(title: "<script>alert('t')</script>")
        r.add(.heading("Results & <notes>", level: 2))
        r.add(.checks([CheckResult(name: "x<y", passed: false, measured: "1", expected: "2")]))
        r.add(.metadata([.init("seed", "<0>")]))
        r.add(.code("a </pre> b", language: "text"))
        let html = try r.html(resolve: { _ in Data() })
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("<notes>"))
        XCTAssertTrue(html.contains("<title>&lt;script&gt;alert(&#39;t&#39;)&lt;/script&gt;</title>"))
        XCTAssertTrue(html.contains("<td>x&lt;y</td>"))
        XCTAssertTrue(html.contains("<code>a &lt;/pre&gt; b</code>"))
        XCTAssertTrue(html.contains("Checks: 0/1 passed"))
        let mdOut = r.markdown()
        XCTAssertTrue(mdOut.hasPrefix("# \\<script>alert('t')\\</script>\n"), mdOut)
        XCTAssertTrue(mdOut.contains("| \u{274C} FAIL | x\\<y "), mdOut)
    }

    // MARK: PNG round trip

    func testPNGRoundTripIsPixelExact() throws {
        XCTAssertEqual(CRC32.checksum(Data("123456789".utf8)), 0xCBF4_3926)
        var canvas = RGBImage(width: 300, height: 200)
        for y in 0..<200 { for x in 0..<300 { canvas[x, y] = RGB(UInt8(x & 255), UInt8(y), UInt8((x * y) & 255)) } }
        for c in [canvas, RGBImage(width: 1, height: 1, fill: .white)] {
            let decoded = try PNG.decode(PNG.encode(c))
            XCTAssertEqual(decoded, c)
        }
    }

    // MARK: Report files

    func testReportWritesMarkdownAndSelfContainedHTML() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-test-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        var canvas = RGBImage(width: 3, height: 2, fill: .white)
        canvas[1, 1] = RGB(255, 0, 0)
        var plot = LinePlot(title: "curve", xLabel: "x", yLabel: "y")
        plot.series = [.init(name: "s", x: [0, 1, 2], y: [1, 3, 2])]
        var report = Report(title: "Run")
        report.add(.markdown("Some *prose* with `code`."))
        report.add(.canvas(canvas, file: "figs/grid one.png", caption: "A grid"))
        report.add(.plot(plot, file: "curve.svg", caption: "A curve"))
        report.add(.table(Table(headers: ["a", "b"], rows: [[1, "x,y"]]), caption: "T", csvFile: "t.csv"))
        report.add(.checks([CheckResult(name: "acc", measured: 0.95, expected: 0.96, tolerance: 0.02)]))
        let (mdURL, htmlURL) = try report.write(to: dir)

        let md = try String(contentsOf: mdURL, encoding: .utf8)
        XCTAssertTrue(md.contains("![A grid](figs/grid%20one.png)"), md)
        XCTAssertTrue(md.contains("![A curve](curve.svg)"))
        XCTAssertTrue(md.contains("[CSV](t.csv)"))
        XCTAssertTrue(md.contains("**Checks: 1/1 passed**"))
        let png = try Data(contentsOf: dir.appendingPathComponent("figs/grid one.png"))
        XCTAssertEqual(try PNG.decode(png), canvas)
        XCTAssertEqual(try String(contentsOf: dir.appendingPathComponent("t.csv"), encoding: .utf8), "a,b\r\n1,\"x,y\"\r\n")
        XCTAssertTrue(XMLParser(data: try Data(contentsOf: dir.appendingPathComponent("curve.svg"))).parse())

        let html = try String(contentsOf: htmlURL, encoding: .utf8)
        XCTAssertTrue(html.contains("src=\"data:image/png;base64,\(png.base64EncodedString())\""))
        XCTAssertTrue(html.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""))
        XCTAssertTrue(html.contains("<p>Some <em>prose</em> with <code>code</code>.</p>"))
        XCTAssertFalse(html.contains("src=\"figs/"))                        // self-contained

        // An existing image file is inlined from disk; a missing one is a clear error.
        var r2 = Report(title: "r2")
        r2.add(.image(path: "figs/grid one.png", caption: ""))
        XCTAssertTrue(try r2.html(resolve: { try Data(contentsOf: dir.appendingPathComponent($0)) }).contains(png.base64EncodedString()))
        r2.add(.image(path: "nope.png", caption: ""))
        XCTAssertThrowsError(try r2.write(to: dir)) { XCTAssertTrue("\($0)".contains("'nope.png' not found"), "\($0)") }
        var r3 = Report(title: "r3")
        r3.add(.canvas(canvas, file: "../escape.png", caption: ""))
        XCTAssertThrowsError(try r3.write(to: dir)) { XCTAssertTrue("\($0)".contains("'../escape.png'"), "\($0)") }
    }

    // MARK: End-to-end demo (look at it: REPORT_DEMO_DIR=/tmp/report-demo swift test ...)

    /// A Figure-1-like grid, a signed-map grid with the diverging colormap, two plots, a table,
    /// checks and metadata, written to $REPORT_DEMO_DIR (default: a temporary directory).
    func testRenderDemoReport() throws {
        let env = ProcessInfo.processInfo.environment["REPORT_DEMO_DIR"]
        let dir = URL(fileURLWithPath: env ?? NSTemporaryDirectory() + "report-demo-\(getpid())")
        defer { if env == nil { try? FileManager.default.removeItem(at: dir) } }
        var rng = SeededRNG(seed: 7)
        let n = 32
        func image(_ k: Int) -> Tensor {
            Tensor(shape: [3, n, n]) { i in
                let c = i / (n * n), y = (i / n) % n, x = i % n
                let dx = Float(x - n / 2 - k), dy = Float(y - n / 2 + k)
                let disk: Float = dx * dx + dy * dy < Float(60 + 20 * k) ? 1 : 0
                return 0.25 * Float(c + 1) * Float(x + y) / Float(2 * n) + 0.5 * disk * Float((c + k) % 3) / 2
            }
        }
        func perturbation(_ k: Int, _ j: Int) -> Tensor {
            Tensor(shape: [3, n, n]) { i in
                let y = (i / n) % n, x = i % n
                return sinf(Float(x * (j + 1)) / 5 + Float(k)) * cosf(Float(y) / Float(3 + j)) + 0.2 * Float(rng.uniform())
            }
        }
        let classes = ["tench", "cassette player", "church", "garbage truck", "golf ball"]
        var cells: [[Tensor?]] = []
        for k in 0..<3 { cells.append([image(k)] + (0..<4).map { perturbation(k, $0) }) }
        cells[2][4] = nil
        var fig1 = ImageGrid(cells: cells, rowTitles: Array(classes.prefix(3)),
                             columnTitles: ["clean"] + Array(classes.prefix(4)),
                             title: "Excitation pullbacks, 5-step PGA (demo data)")
        fig1.upscale = 3
        let fig1Canvas = try fig1.render()

        let digit = Tensor(shape: [1, 28, 28]) { i in
            let y = i / 28, x = i % 28
            return sinf(Float(x) / 4) * cosf(Float(y) / 5) * (x > 14 ? 1 : -0.5)
        }
        var signed = ImageGrid(cells: [[digit, digit.reshaped([28, 28]), nil]],
                               rowTitles: ["4 vs 7"], columnTitles: ["T = 0.1", "T = 1", "(empty)"])
        signed.colormap = .divergingBlueWhiteRed
        signed.upscale = 4
        signed.padding = 4
        signed.padValue = 1
        let signedCanvas = try signed.render()

        var curve = LinePlot(title: "Training loss", xLabel: "epoch", yLabel: "loss")
        curve.logY = true
        curve.series = [
            .init(name: "train", x: (0..<50).map(Double.init), y: (0..<50).map { 2.3 * exp(-Double($0) / 8) + 0.01 }),
            .init(name: "val", x: stride(from: 0.0, through: 49, by: 7).map { $0 }, y: stride(from: 0.0, through: 49, by: 7).map { 2.4 * exp(-$0 / 9) + 0.05 },
                  markers: true, dashed: true),
        ]
        var spectrum = LinePlot(title: "Gram eigenvalue e.c.d.f.", xLabel: "eigenvalue", yLabel: "fraction <= x")
        spectrum.legendPosition = .bottomRight
        for d in [2, 4, 8] {
            let values = (0..<200).map { _ in Double(rng.uniform()) * Double(d) / 4 + 0.5 }
            spectrum.series.append(LinePlot.ecdf(name: "d = \(d)", values: values))
        }
        var table = Table(headers: ["regime", "SGD %", "Adam %"])
        table.append(["FR-NPF(II)", .fixed(95.85, decimals: 2), .fixed(96.02, decimals: 2)])
        table.append(["DNPFL", .fixed(97.86, decimals: 2), .fixed(98.22, decimals: 2)])
        table.append(["ReLU, \"baseline\"", .fixed(97.85, decimals: 2), .fixed(98.14, decimals: 2)])

        var report = Report(title: "Demo report: figures, tables, checks")
        report.add(.markdown("""
            This report shows every block type. Cells are **min-max rescaled per cell** like
            torchvision `make_grid(normalize=True, scale_each=True)`; see docs/method.md.

            - soft gates: $\\sigma(z/T)$ with *T* = 0.3
            - HTML in prose is shown as text: <b>not bold</b>
            """))
        report.add(.heading("Figure 1", level: 2))
        try PNG.write(fig1Canvas, to: dir.appendingPathComponent("standalone/fig1.png"))
        XCTAssertEqual(try PNG.read(dir.appendingPathComponent("standalone/fig1.png")), fig1Canvas)
        report.add(.canvas(fig1Canvas, file: "fig1.png", caption: "Perturbed minus clean, per-cell min-max; rows: images, columns: target classes."))
        report.add(.canvas(signedCanvas, file: "signed.png", caption: "Signed maps, blue-white-red symmetric per cell."))
        report.add(.heading("Curves", level: 2))
        report.add(.plot(curve, file: "loss.svg", caption: "Loss (log scale)."))
        report.add(.plot(spectrum, file: "ecdf.svg", caption: "Eigenvalue e.c.d.f."))
        report.add(.heading("Numbers", level: 2))
        report.add(.table(table, caption: "Test accuracy (paper B targets)", csvFile: "accuracy.csv"))
        report.add(.checks([
            CheckResult(name: "DNPFL accuracy", measured: 97.7, expected: 97.86, tolerance: 0.5),
            CheckResult(name: "diagonal predictions", passed: false, measured: "4/5", expected: "5/5", note: "golf ball -> tench"),
        ]))
        report.add(.metadata([.init("seed", "7"), .init("engine", "0.1.0"), .init("weights", "resnet50-0676ba61.pth")]))
        report.add(.code("runner run recipes/fig1.yaml --steps 5", language: "sh"))
        let (md, html) = try report.write(to: dir)
        print("demo report: \(html.path) (\(fig1Canvas.width)x\(fig1Canvas.height) grid)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: md.path))
        let htmlText = try String(contentsOf: html, encoding: .utf8)
        XCTAssertEqual(htmlText.components(separatedBy: "data:image/png;base64,").count - 1, 2)
        XCTAssertEqual(htmlText.components(separatedBy: "<svg ").count - 1, 2)
        XCTAssertTrue(htmlText.contains("&lt;b&gt;not bold&lt;/b&gt;"))
    }
}
