import XCTest
import Foundation
import Recipes

final class SHA256Tests: XCTestCase {
    // NIST FIPS 180-2 / CAVS example vectors.
    func testNISTVectors() {
        XCTAssertEqual(SHA256.hexDigest(of: Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),   // 448 bits
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(SHA256.hexDigest(of: Data("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".utf8)),   // 896 bits
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        // One million 'a', fed in uneven pieces to exercise the partial-block path.
        var h = SHA256()
        let piece = [UInt8](repeating: 0x61, count: 997)
        var left = 1_000_000
        while left > 0 { let n = min(left, piece.count); h.update(Array(piece[0..<n])); left -= n }
        XCTAssertEqual(h.finalizeHex(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Every split point of a 200-byte message gives the one-shot digest (block boundaries 55/56/64).
    func testStreamingSplits() {
        let msg = Data((0..<200).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        let whole = SHA256.hexDigest(of: msg)
        for cut in [0, 1, 55, 56, 63, 64, 65, 119, 128, 199, 200] {
            var h = SHA256(); h.update(msg.prefix(cut)); h.update(msg.suffix(from: cut))
            XCTAssertEqual(h.finalizeHex(), whole, "split at \(cut)")
        }
        // Lengths at the padding boundary (55 fits the length in one block, 56 needs a second); expected
        // values from Python's hashlib.
        XCTAssertEqual(SHA256.hexDigest(of: msg.prefix(55)), "8aa994584139d128848eeebc4e815639ba5ab6e6e39574195a63ac4f14f7c43b")
        XCTAssertEqual(SHA256.hexDigest(of: msg.prefix(56)), "ad574708f75c044c9b85de64cb568ee7711ff4f36448c6242f053ba8f6cc2b63")
        XCTAssertEqual(SHA256.hexDigest(of: msg.prefix(64)), "c6ab9724ade5b6a7a1edfffb12f3aa9181351355af8fd08c919952ad211339dd")
    }

    func testFileHashStreamsInChunks() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("sha-\(getpid()).bin")
        defer { try? FileManager.default.removeItem(at: url) }
        let data = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 2654435761 >> 13) })
        try data.write(to: url)
        let small = try SHA256.hexDigest(ofFile: url, chunkSize: 4097)
        XCTAssertEqual(small, SHA256.hexDigest(of: data))
        XCTAssertEqual(try SHA256.hexDigest(ofFile: url), small)
        XCTAssertThrowsError(try SHA256.hexDigest(ofFile: url.appendingPathExtension("missing"))) {
            XCTAssertTrue("\($0)".contains("missing"))
        }
    }

    /// Throughput on 64 MiB, printed (weights are ~100 MB and are hashed on download).
    func testThroughput() {
        let data = Data(count: 64 << 20)
        let t0 = Date()
        let d = SHA256.hexDigest(of: data)
        let secs = Date().timeIntervalSince(t0)
        print("SHA256 64 MiB: \(String(format: "%.3f", secs)) s = \(String(format: "%.0f", 64 / secs)) MiB/s")
        XCTAssertEqual(d, "3b6a07d0d404fab4e23b6d34bc6696a6a312dd92821332385e5af7c01c421351")
    }
}
