import XCTest
import Foundation
import SIMDCore
import Recipes

/// conv2d / linear forward and pullbacks against PyTorch (reference/ops/make_conv_goldens.py).
/// Tolerance: 1e-4 absolute on values of order 1..10 (float32, different summation orders).
final class ConvGoldenTests: XCTestCase {
    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/ops/conv.safetensors")
    let tolerance: Float = 1e-4

    func check(_ name: String, _ ours: Tensor?, _ golden: Tensor) throws {
        let ours = try XCTUnwrap(ours, "\(name): no gradient")
        XCTAssertEqual(ours.shape, golden.shape, name)
        guard ours.shape == golden.shape else { return }
        let d = ours.maxAbsDifference(golden)
        print("\(name): max |ours - torch| = \(d)")
        XCTAssertLessThan(d, tolerance, name)
    }

    func testConvMatchesPyTorch() throws {
        let st = try SafeTensors(contentsOf: Self.url)
        let cases = try XCTUnwrap(Int(st.metadata["cases"] ?? ""))
        XCTAssertEqual(cases, 6)
        for i in 0..<cases {
            let k = "c\(i)"
            let sp = try XCTUnwrap(st.metadata[k]).split(separator: ",").map { Int($0)! }
            let tape = Tape()
            let x = tape.input(try st.tensor("\(k).x"), requiresGrad: true)
            let w = tape.parameter(try st.tensor("\(k).w"))
            let b = tape.parameter(try st.tensor("\(k).b"))
            let y = try tape.conv2d(x, weight: w, bias: b, stride: sp[0], padding: sp[1])
            try check("\(k) y (stride \(sp[0]) pad \(sp[1]))", tape.value(y), try st.tensor("\(k).y"))
            let g = try tape.backward(from: y, seed: try st.tensor("\(k).dy"))
            try check("\(k) dx", g[x], try st.tensor("\(k).dx"))
            try check("\(k) dw", g[w], try st.tensor("\(k).dw"))
            try check("\(k) db", g[b], try st.tensor("\(k).db"))
        }
    }

    func testLinearMatchesPyTorch() throws {
        let st = try SafeTensors(contentsOf: Self.url)
        let tape = Tape()
        let x = tape.input(try st.tensor("lin.x"), requiresGrad: true)
        let w = tape.parameter(try st.tensor("lin.w"))
        let b = tape.parameter(try st.tensor("lin.b"))
        let y = try tape.linear(x, weight: w, bias: b)
        try check("linear y", tape.value(y), try st.tensor("lin.y"))
        let g = try tape.backward(from: y, seed: try st.tensor("lin.dy"))
        try check("linear dx", g[x], try st.tensor("lin.dx"))
        try check("linear dw", g[w], try st.tensor("lin.dw"))
        try check("linear db", g[b], try st.tensor("lin.db"))
    }
}
