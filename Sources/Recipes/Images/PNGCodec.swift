// MARK: - PNGCodec: report canvases through libpng
//
// Report code draws on `RGBCanvas`; image files are `RGBImage`. Both are 8-bit interleaved RGB,
// so converting is a copy of the pixel array.
import Foundation

public enum PNGCodec {
    /// Compressed PNG bytes of a canvas (libpng).
    public static func encode(_ canvas: RGBCanvas) throws -> Data {
        try PNG.encode(RGBImage(width: canvas.width, height: canvas.height, pixels: canvas.pixels))
    }

    /// Decodes a PNG file into a canvas (any PNG colour type becomes 8-bit RGB).
    public static func decode(_ url: URL) throws -> RGBCanvas {
        let img = try PNG.read(url)
        return try RGBCanvas(width: img.width, height: img.height, pixels: img.pixels)
    }
}
