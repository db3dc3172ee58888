// MARK: - PNG
//
// Through libpng's simplified API (png_image_*): it handles every bit depth and colour type and
// reports errors in `image.message` instead of longjmp-ing through our frames.
//
// Reading: we always ask for 8-bit RGBA and drop alpha, which is what PIL's `convert("RGB")`
// does (no compositing). Gray/palette/16-bit inputs are expanded by libpng. 16-bit files without
// gamma information are taken as sRGB-encoded (PNG_IMAGE_FLAG_16BIT_sRGB), so 16→8 is a plain
// rescale. The simplified API would gamma-correct files whose gAMA is far from sRGB; PIL (and so
// paper A) ignores colour management, so we drop gAMA/cHRM/sRGB/iCCP chunks before decoding.
import Foundation
import CPNG

/// PNG reader and writer.
///
/// ```swift
/// let img = try PNG.read(URL(fileURLWithPath: "data/images/chelsea.png"))
/// try PNG.write(img, to: URL(fileURLWithPath: "out/cat.png"))
/// ```
public enum PNG {
    // png.h format codes (macros built with `|` are not imported into Swift).
    static let formatGray: UInt32 = 0        // PNG_FORMAT_GRAY
    static let formatRGB: UInt32 = 2         // PNG_FORMAT_FLAG_COLOR
    static let formatRGBA: UInt32 = 3        // PNG_FORMAT_FLAG_COLOR | PNG_FORMAT_FLAG_ALPHA
    static let flag16BitSRGB: UInt32 = 0x04  // PNG_IMAGE_FLAG_16BIT_sRGB

    // MARK: Read

    public static func read(_ url: URL) throws -> RGBImage { try decode(try ImageError.contents(of: url), file: url.path) }

    public static func decode(_ data: Data, file: String = "<memory>") throws -> RGBImage {
        let data = strippingColorManagement(data)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        defer { png_image_free(&image) }
        let ok = data.withUnsafeBytes { raw -> Int32 in
            guard let base = raw.baseAddress else { return 0 }
            return png_image_begin_read_from_memory(&image, base, raw.count)
        }
        guard ok != 0 else { throw ImageError(file: file, "not a readable PNG: \(message(of: &image, or: "empty input"))") }
        let w = Int(image.width), h = Int(image.height)
        guard w > 0, h > 0, w <= Limits.maxImageSide, h <= Limits.maxImageSide else {
            throw ImageError(file: file, "PNG dimensions \(w)x\(h): each side must be in 1...\(Limits.maxImageSide) (Limits.maxImageSide)")
        }
        guard w * h <= Limits.maxImagePixels else {   // sides ≤ 2^15: no overflow
            throw ImageError(file: file, "PNG dimensions \(w)x\(h) exceed Limits.maxImagePixels = \(Limits.maxImagePixels) pixels")
        }
        image.format = formatRGBA
        image.flags |= flag16BitSRGB
        var rgba = [UInt8](repeating: 0, count: w * h * 4)
        // The data must stay alive for finish_read: begin_read keeps a pointer into it.
        let done = data.withUnsafeBytes { _ in
            rgba.withUnsafeMutableBytes { png_image_finish_read(&image, nil, $0.baseAddress, 0, nil) }
        }
        guard done != 0 else { throw ImageError(file: file, "cannot decode PNG: \(message(of: &image, or: "unknown libpng error"))") }
        var rgb = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) { rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2] }
        return RGBImage(width: w, height: h, pixels: rgb)
    }

    /// The PNG without its colour-management chunks (gAMA, cHRM, sRGB, iCCP), so pixel values come
    /// out as stored, like PIL. Anything that does not walk as a chunk list is returned unchanged
    /// for libpng to diagnose.
    static func strippingColorManagement(_ data: Data) -> Data {
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { return data }
        let drop: Set<[UInt8]> = [Array("gAMA".utf8), Array("cHRM".utf8), Array("sRGB".utf8), Array("iCCP".utf8)]
        var out = Array(bytes[0..<8])
        var i = 8
        var dropped = false
        while i + 12 <= bytes.count {
            let len = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let end = i + 12 + len
            guard len >= 0, end <= bytes.count else { return data }
            if drop.contains(Array(bytes[(i + 4)..<(i + 8)])) { dropped = true } else { out += bytes[i..<end] }
            i = end
        }
        guard dropped else { return data }
        out += bytes[i...]
        return Data(out)
    }

    // MARK: Write

    /// Encodes an RGB image (8-bit, sRGB) as PNG bytes.
    public static func encode(_ img: RGBImage) throws -> Data {
        try encode(bytes: img.pixels, width: img.width, height: img.height, format: formatRGB, file: "<memory>")
    }

    /// Encodes an 8-bit grayscale image (`gray.count == width * height`) as PNG bytes.
    public static func encode(gray: [UInt8], width: Int, height: Int) throws -> Data {
        guard gray.count == width * height else {
            throw ImageError(file: "<memory>", "grayscale \(width)x\(height) needs \(width * height) bytes, got \(gray.count)")
        }
        return try encode(bytes: gray, width: width, height: height, format: formatGray, file: "<memory>")
    }

    /// Writes an RGB PNG atomically (temporary file + rename).
    public static func write(_ img: RGBImage, to url: URL) throws {
        let data: Data
        do { data = try encode(img) } catch let e as ImageError { throw ImageError(file: url.path, e.message) }
        try AtomicFile.write(data, to: url)
    }

    /// Writes a grayscale PNG atomically.
    public static func write(gray: [UInt8], width: Int, height: Int, to url: URL) throws {
        let data: Data
        do { data = try encode(gray: gray, width: width, height: height) } catch let e as ImageError { throw ImageError(file: url.path, e.message) }
        try AtomicFile.write(data, to: url)
    }

    static func encode(bytes: [UInt8], width: Int, height: Int, format: UInt32, file: String) throws -> Data {
        guard width > 0, height > 0 else { throw ImageError(file: file, "cannot write an empty \(width)x\(height) PNG") }
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width); image.height = UInt32(height); image.format = format
        defer { png_image_free(&image) }
        // First call sizes the buffer, second fills it.
        var size = 0
        let sized = bytes.withUnsafeBytes { png_image_write_to_memory(&image, nil, &size, 0, $0.baseAddress, 0, nil) }
        guard sized != 0, size > 0 else { throw ImageError(file: file, "cannot encode PNG: \(message(of: &image, or: "unknown libpng error"))") }
        var out = Data(count: size)
        let ok = out.withUnsafeMutableBytes { dst in
            bytes.withUnsafeBytes { png_image_write_to_memory(&image, dst.baseAddress, &size, 0, $0.baseAddress, 0, nil) }
        }
        guard ok != 0 else { throw ImageError(file: file, "cannot encode PNG: \(message(of: &image, or: "unknown libpng error"))") }
        return out.prefix(size)
    }

    /// libpng's message: a fixed 64-byte C string inside png_image.
    static func message(of image: inout png_image, or fallback: String) -> String {
        let text = withUnsafeBytes(of: &image.message) { raw -> String in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
        return text.isEmpty ? fallback : text
    }
}
