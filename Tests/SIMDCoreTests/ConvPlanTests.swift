import XCTest
import SIMDCore

/// The convolution plan's table (ConvPlan.swift), row by row, on the layers it was written for.
/// Which path a geometry takes is part of the contract: each path has its own tests against the
/// naive references (ConvTests), and this keeps the choice itself from drifting.
final class ConvPlanTests: XCTestCase {
    func plan(_ cin: Int, _ cout: Int, k: Int, stride: Int = 1, pad: Int, hw: Int) throws -> ConvPlan {
        ConvPlan(try Conv2D.geometry(input: [1, cin, hw, hw], weight: [cout, cin, k, k], bias: nil,
                                     stride: stride, padding: pad))
    }

    func testResNet50AndC4GAPLayers() throws {
        // Stem 7x7/2 on 224: 112-wide output (window); strided, so dx through the column matrix;
        // 3 input channels cannot be read in place for dw.
        let stem = try plan(3, 64, k: 7, stride: 2, pad: 3, hw: 224)
        XCTAssertEqual(stem.forward, .window)
        XCTAssertEqual(stem.inputGradient, .columnMatrix)
        XCTAssertNotEqual(stem.weightGradient, .xInPlace)
        // 1x1: plain GEMMs.
        let pointwise = try plan(64, 256, k: 1, pad: 0, hw: 56)
        XCTAssertEqual(pointwise.forward, .pointwise)
        XCTAssertEqual(pointwise.inputGradient, .pointwise)
        // Stride-1 3x3 from 14x14 up (layers 1-3), C4GAP-128 on 32x32 and DenseNet's 128 -> 32:
        // Winograd forward, dx a transposed conv planned as a Winograd forward too, dw with X read
        // in place (Cin a multiple of every profile's NR).
        for (cin, cout, hw) in [(64, 64, 56), (128, 128, 28), (256, 256, 14), (128, 128, 32), (128, 32, 56)] {
            let p = try plan(cin, cout, k: 3, pad: 1, hw: hw)
            XCTAssertEqual(p.forward, .winograd, "\(cin) on \(hw)")
            XCTAssertEqual(p.inputGradient, .transposed, "\(cin) on \(hw)")
            if cout == cin { XCTAssertEqual(p.weightGradient, .xInPlace, "\(cin) on \(hw)") }
            let g = try Conv2D.geometry(input: [1, cin, hw, hw], weight: [cout, cin, 3, 3], bias: nil, stride: 1, padding: 1)
            XCTAssertEqual(ConvPlan.forward(ConvPlan.transposedGeometry(g)), .winograd)
        }
        // Layer 2's strided 3x3: a 28-wide output is a window.
        XCTAssertEqual(try plan(128, 128, k: 3, stride: 2, pad: 1, hw: 56).forward, .window)
        // Layer 4 3x3 on 7x7: 4x4 tiles would cover 8x8; 49 pixels pad to 64 (or 56): the
        // transposed product on every profile.
        XCTAssertEqual(try plan(512, 512, k: 3, pad: 1, hw: 7).forward, .pixelWindow)
        // Layer 3's strided 3x3 on a 14x14 output (K = 2304): the transposed product pays only
        // with 32-wide tiles (196 -> 224 columns); 16- and 8-wide tiles pad 196 to 208 and 200.
        XCTAssertEqual(try plan(256, 256, k: 3, stride: 2, pad: 1, hw: 28).forward, GEMM.nr == 32 ? .pixelWindow : .columnMatrix)
    }

    func testOtherRows() throws {
        // Small map, few output channels (M < 4 MR): never the transposed product (nor Winograd).
        XCTAssertEqual(try plan(16, 8, k: 3, pad: 1, hw: 10).forward, .columnMatrix)
        // VGG's first layer (3 input channels): the window path; its dx (64 -> 3) too.
        let first = try Conv2D.geometry(input: [1, 3, 224, 224], weight: [64, 3, 3, 3], bias: nil, stride: 1, padding: 1)
        XCTAssertEqual(ConvPlan.forward(first), .window)
        XCTAssertEqual(ConvPlan.forward(ConvPlan.transposedGeometry(first)), .window)
        // More than 256 pixels but narrower than 28: B packed from the image.
        XCTAssertEqual(ConvPlan.forward(try Conv2D.geometry(input: [1, 4, 40, 20], weight: [8, 4, 3, 3], bias: nil,
                                                            stride: 1, padding: 1)), .packedImage)
        // Padding 3 on a 3x3 kernel would start tiles past the padded input: not Winograd.
        XCTAssertNotEqual(ConvPlan.forward(try Conv2D.geometry(input: [1, 16, 12, 12], weight: [16, 16, 3, 3], bias: nil,
                                                               stride: 1, padding: 3)), .winograd)
        // Padding beyond k-1 cannot be a transposed conv.
        XCTAssertEqual(try plan(4, 4, k: 3, pad: 3, hw: 9).inputGradient, .columnMatrix)
        // Weight gradient orientation: less tile padding wins (K' = 27 rows, Cout 64).
        func up(_ x: Int, _ m: Int) -> Int { (x + m - 1) / m * m }
        XCTAssertEqual(try plan(3, 64, k: 3, pad: 1, hw: 32).weightGradient,
                       up(27, GEMM.mr) * up(64, GEMM.nr) <= up(64, GEMM.mr) * up(27, GEMM.nr) ? .xIsA : .xIsB)
    }

    func testBatchSplitDependsOnlyOnBatchAndThreads() {
        XCTAssertFalse(ConvPlan.splitsBatchByImages(1, threads: 2))
        XCTAssertFalse(ConvPlan.splitsBatchByImages(3, threads: 2))
        XCTAssertTrue(ConvPlan.splitsBatchByImages(4, threads: 2))
        XCTAssertFalse(ConvPlan.splitsBatchByImages(32, threads: 1))
    }
}
