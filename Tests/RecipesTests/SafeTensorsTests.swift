import XCTest
import Foundation
import SIMDCore
import Recipes

final class SafeTensorsTests: XCTestCase {
    func testRoundTripAndTruncation() throws {
        let a = Tensor(shape: [2, 3]) { Float($0) - 2.5 }
        let b = Tensor(shape: [4]) { Float($0) * 0.25 }
        let data = try SafeTensors.encode(["a": a, "b": b], metadata: ["k": "v"])
        let st = try SafeTensors(data: data)
        XCTAssertEqual(try st.tensor("a"), a)
        XCTAssertEqual(try st.tensor("b"), b)
        XCTAssertEqual(st.metadata["k"], "v")
        XCTAssertEqual(st.names, ["a", "b"])
        XCTAssertThrowsError(try st.tensor("c")) { XCTAssertTrue("\($0)".contains("no tensor 'c'")) }
        XCTAssertThrowsError(try SafeTensors(data: data.prefix(data.count - 3), file: "cut.safetensors")) {
            XCTAssertTrue("\($0)".contains("cut.safetensors")); XCTAssertTrue("\($0)".contains("'b'"))
        }
        XCTAssertThrowsError(try SafeTensors(data: data.prefix(5)))
    }
}
