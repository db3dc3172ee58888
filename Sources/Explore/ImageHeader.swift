// MARK: - Image dimensions from the header, before any decoding
//
// An upload's width and height are read from its first bytes (PNG: the IHDR chunk; JPEG: the
// first start-of-frame marker), so a 20000x20000 image is refused before a decoder allocates
// anything for it.
import Foundation

/// The format and size an image file declares.
public struct ImageHeader: Equatable, Sendable {
    public enum Format: String, Sendable { case png, jpeg }
    public let format: Format
    public let width: Int
    public let height: Int

    public init(format: Format, width: Int, height: Int) { self.format = format; self.width = width; self.height = height }

    /// The header of `data`, or a 415 error when it is neither PNG nor JPEG.
    public static func read(_ data: Data) throws -> ImageHeader {
        let b = [UInt8](data.prefix(1 << 16))
        let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        if b.count >= 24, Array(b[0..<8]) == pngSignature, Array(b[12..<16]) == Array("IHDR".utf8) {
            func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
            return ImageHeader(format: .png, width: be32(16), height: be32(20))
        }
        if b.count >= 4, b[0] == 0xFF, b[1] == 0xD8 {
            var i = 2
            while i + 9 < b.count {
                guard b[i] == 0xFF else { break }
                let marker = b[i + 1]
                if marker == 0xFF { i += 1; continue }                       // fill byte
                if marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }   // no length
                let length = Int(b[i + 2]) << 8 | Int(b[i + 3])
                // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
                if (0xC0...0xCF).contains(marker), ![0xC4, 0xC8, 0xCC].contains(marker) {
                    let h = Int(b[i + 5]) << 8 | Int(b[i + 6]), w = Int(b[i + 7]) << 8 | Int(b[i + 8])
                    return ImageHeader(format: .jpeg, width: w, height: h)
                }
                guard length >= 2 else { break }
                i += 2 + length
            }
            throw ServeError(.unsupportedMediaType, "the upload starts like a JPEG but has no frame header in its first 64 KiB")
        }
        throw ServeError(.unsupportedMediaType, "the upload is not a PNG or JPEG image (its first bytes are neither signature)")
    }
}
