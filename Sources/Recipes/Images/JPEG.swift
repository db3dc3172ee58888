// MARK: - JPEG
//
// Decoding goes through Sources/CJPEGShim (our C wrapper around libjpeg's setjmp error handling):
// corrupt or truncated files come back as an error string, never exit() or a crash.
// Defaults match PIL's decoder: integer slow DCT, fancy upsampling, no EXIF rotation.
import Foundation
import CJPEGShim

/// JPEG reader (decode only; the project writes PNG).
///
/// ```swift
/// let img = try JPEG.read(URL(fileURLWithPath: "data/images/rocket.jpg"))   // 640x427
/// ```
public enum JPEG {
    public static func read(_ url: URL) throws -> RGBImage { try decode(try ImageError.contents(of: url), file: url.path) }

    public static func decode(_ data: Data, file: String = "<memory>") throws -> RGBImage {
        guard !data.isEmpty else { throw ImageError(file: file, "cannot decode JPEG: file is empty") }
        var pixels: UnsafeMutablePointer<UInt8>? = nil
        var w: Int32 = 0, h: Int32 = 0
        var err = [CChar](repeating: 0, count: 256)
        let errSize = err.count
        let rc = data.withUnsafeBytes { raw in
            ep_jpeg_decode_rgb(raw.bindMemory(to: UInt8.self).baseAddress, raw.count, &pixels, &w, &h,
                               Limits.maxImageSide, Limits.maxImagePixels, &err, errSize)
        }
        defer { ep_jpeg_free(pixels) }
        guard rc == 0, let p = pixels else {
            let msg = String(decoding: err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw ImageError(file: file, "cannot decode JPEG: \(msg.isEmpty ? "unknown libjpeg error" : msg)")
        }
        let n = Int(w) * Int(h) * 3
        return RGBImage(width: Int(w), height: Int(h), pixels: Array(UnsafeBufferPointer(start: p, count: n)))
    }
}
