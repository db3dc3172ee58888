// The cell-by-cell comparison of a figure grid with the authors' published one: a JPEG of a
// per-cell rescaled copy passes, another grid fails (fixtures: reference/grids/make_grid_fixtures.py).
import Foundation
import XCTest
import Recipes

final class GridComparisonTests: XCTestCase {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/grids")
    let layout = GridLayout(rows: 3, columns: 4, cell: 32)

    func image(_ name: String) throws -> RGBImage { try ImageFile.read(Self.fixtures.appendingPathComponent(name)) }

    func testLayoutIsMakeGrids() {
        XCTAssertEqual(GridLayout.paperA.width, 7 * 226 + 2)    // 1584: make_grid(nrow=7, padding=2) of 224-pixel cells
        XCTAssertEqual(GridLayout.paperA.height, 5 * 226 + 2)   // 1132
        XCTAssertEqual(layout.origin(row: 1, column: 2).x, 2 + 2 * 34)
        XCTAssertEqual(layout.origin(row: 1, column: 2).y, 2 + 34)
    }

    func testPearsonIsInvariantToAffineRescaling() {
        let a: [Double] = [1, 5, 2, 8, 3]
        XCTAssertEqual(GridComparison.pearson(a, a.map { 0.3 * $0 + 40 }), 1, accuracy: 1e-12)
        XCTAssertEqual(GridComparison.pearson(a, a.map { -$0 }), -1, accuracy: 1e-12)
        XCTAssertEqual(GridComparison.pearson([2, 2, 2], [2, 2, 2]), 1)
        XCTAssertEqual(GridComparison.pearson([2, 2, 2], [1, 2, 3]), 0)
    }

    func testJPEGOfARescaledCopyPassesAndAnotherGridFails() throws {
        let a = try image("grid_a.png"), jpeg = try image("grid_a_q75.jpg"), b = try image("grid_b.png")
        XCTAssertNotEqual(a.pixels, jpeg.pixels, "the copy differs pixel by pixel")
        let same = try GridComparison.compare(a, jpeg, layout: layout)
        print("same experiment: minimum cell correlation \(same.minimum)")
        XCTAssertTrue(same.passed, "\(same.failing)")
        XCTAssertGreaterThan(same.minimum, 0.85)   // measured 0.863
        XCTAssertLessThan(same.minimum, 1, "JPEG noise lowers it a little")
        let other = try GridComparison.compare(a, b, layout: layout)
        print("another grid: minimum \(other.minimum), cells failing \(other.failing.count) of 12")
        XCTAssertFalse(other.passed)
        XCTAssertEqual(other.failing.count, 12, "every cell of an unrelated grid fails")
        XCTAssertLessThan(other.cells.last!.correlation, 0.2)   // measured 0.130 at most
        // One wrong cell is found and named.
        var patched = jpeg
        let (x0, y0) = layout.origin(row: 2, column: 1), (bx, by) = layout.origin(row: 0, column: 3)
        for y in 0..<32 {
            let to = ((y0 + y) * patched.width + x0) * 3, from = ((by + y) * b.width + bx) * 3
            patched.pixels.replaceSubrange(to..<(to + 96), with: b.pixels[from..<(from + 96)])
        }
        let one = try GridComparison.compare(a, patched, layout: layout)
        XCTAssertEqual(one.failing.map { [$0.row, $0.column] }, [[2, 1]])
        // The worst cells side by side: this run's left, the reference's right.
        let side = GridComparison.worstCells(a, patched, layout: layout, result: one, count: 2)
        XCTAssertEqual(side.width, 2 * 32 + 12)
        XCTAssertEqual(side.height, 2 * 36 + 4)
        XCTAssertEqual(Array(side.pixels[((4 * side.width) + 4 + 36) * 3..<((4 * side.width) + 4 + 36) * 3 + 96]),
                       Array(b.pixels[(by * b.width + bx) * 3..<(by * b.width + bx) * 3 + 96]), "the right half of the worst pair is the reference's cell")
    }

    func testSizeMismatchIsAnError() throws {
        let a = try image("grid_a.png")
        XCTAssertThrowsError(try GridComparison.compare(a, a, layout: GridLayout.paperA)) { e in
            XCTAssertEqual("\(e)", "this run's grid is 138x104; a 5x7 grid of 224-pixel cells with padding 2 is 1584x1132")
        }
    }
}
