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

final class SafeTensorsDTypeTests: XCTestCase {
    /// F16 / BF16 written by the safetensors library match torch's float32 conversion exactly.
    func testHalfAndBFloat16() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/weights")
        let st = try SafeTensors(contentsOf: dir.appendingPathComponent("dtypes16.safetensors"))
        let ref = try SafeTensors(contentsOf: dir.appendingPathComponent("views.safetensors"))
        XCTAssertEqual(try st.tensor("half"), try ref.tensor("half"))
        XCTAssertEqual(try st.tensor("bf16"), try ref.tensor("bf16"))
        XCTAssertEqual(try st.tensor("bf16").shape, [2, 2])
    }

    func testOverlappingOffsetsRefused() throws {
        let header = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        var data = Data()
        withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { data.append(contentsOf: $0) }
        data.append(Data(header.utf8)); data.append(Data(count: 12))
        XCTAssertThrowsError(try SafeTensors(data: data, file: "overlap.safetensors")) {
            XCTAssertTrue("\($0)".contains("overlapping"), "\($0)"); XCTAssertTrue("\($0)".contains("overlap.safetensors"))
        }
    }
}
