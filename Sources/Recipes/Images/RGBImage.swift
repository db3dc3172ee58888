// MARK: - RGBImage
//
// The one 8-bit RGB image type: what the decoders produce, what the resampler works on (paper A's
// app resizes uint8 PIL images, so pre-processing stays in 8 bits until the final /255), what
// report figures are drawn on (drawing lives in Reports/Drawing.swift) and what the PNG writer
// takes. Conversion to the engine's Float layout is [3, H, W] in [0, 1].
import Foundation
import SIMDCore

/// Errors reading or writing images; each names the file and what was wrong.
public struct ImageError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

extension ImageError {
    /// The bytes of an image file; an unreadable file is an error naming it.
    static func contents(of url: URL) throws -> Data {
        do { return try Data(contentsOf: url) } catch {
            throw ImageError(file: url.path, "cannot read file (\(error.localizedDescription))")
        }
    }
}

/// An 8-bit RGB image, row-major, top row first, channels interleaved
/// (`pixels[(y * width + x) * 3 + c]`).
///
/// ```swift
/// let img = try ImageFile.read(URL(fileURLWithPath: "data/images/chelsea.png"))
/// let x = img.tensor()            // [3, 300, 451], values k/255
/// var c = RGBImage(width: 4, height: 2, fill: .white)
/// c[1, 0] = .black
/// ```
public struct RGBImage: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    /// Wraps interleaved RGB bytes. The byte count is the caller's invariant (decoders and
    /// resamplers compute it from the size), so a mismatch is a programming error.
    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage: \(width)x\(height) needs \(width * height * 3) bytes, got \(pixels.count)")
        self.width = width; self.height = height; self.pixels = pixels
    }

    /// A blank image of one colour (what report figures are drawn on).
    public init(width: Int, height: Int, fill: RGB = .black) {
        precondition(width >= 0 && height >= 0, "RGBImage: negative size \(width)x\(height)")
        var p = [UInt8](repeating: 0, count: width * height * 3)
        if fill != .black {
            for i in 0..<(width * height) { p[3 * i] = fill.r; p[3 * i + 1] = fill.g; p[3 * i + 2] = fill.b }
        }
        self.init(width: width, height: height, pixels: p)
    }

    /// A grey image replicated into the three channels (what PIL's `convert("RGB")` does for mode L).
    public init(width: Int, height: Int, gray: [UInt8]) {
        precondition(gray.count == width * height, "RGBImage: \(width)x\(height) gray needs \(width * height) bytes, got \(gray.count)")
        var p = [UInt8](repeating: 0, count: gray.count * 3)
        for i in 0..<gray.count { p[3 * i] = gray[i]; p[3 * i + 1] = gray[i]; p[3 * i + 2] = gray[i] }
        self.init(width: width, height: height, pixels: p)
    }

    /// Channel `c` of pixel (x, y).
    @inlinable public subscript(x: Int, y: Int, c: Int) -> UInt8 { pixels[(y * width + x) * 3 + c] }

    /// Pixel (x, y) as a colour (not for hot loops).
    public subscript(x: Int, y: Int) -> RGB {
        get {
            let i = 3 * (y * width + x)
            return RGB(pixels[i], pixels[i + 1], pixels[i + 2])
        }
        set {
            let i = 3 * (y * width + x)
            pixels[i] = newValue.r; pixels[i + 1] = newValue.g; pixels[i + 2] = newValue.b
        }
    }

    // MARK: Tensor conversion

    /// [3, H, W] Float in [0, 1]: value / 255, like torchvision's `ToTensor` on a uint8 image.
    public func tensor() -> Tensor {
        let plane = width * height
        var out = [Float](repeating: 0, count: 3 * plane)
        for i in 0..<plane {
            for c in 0..<3 { out[c * plane + i] = Float(pixels[3 * i + c]) / 255 }
        }
        return Tensor(shape: [3, height, width], scalars: out)
    }

    /// From a [3, H, W] (or [1, 3, H, W]) tensor in [0, 1]: clamps and rounds `v * 255` to nearest.
    /// Throws if the shape is not an RGB image.
    public init(tensor t: Tensor) throws {
        var s = t.shape
        if s.count == 4 && s[0] == 1 { s.removeFirst() }
        guard s.count == 3, s[0] == 3 else {
            throw ImageError(file: "<tensor>", "expected a [3, H, W] or [1, 3, H, W] tensor, got shape \(t.shape)")
        }
        let h = s[1], w = s[2], plane = h * w
        var p = [UInt8](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for i in 0..<plane {
                let v = t.scalars[c * plane + i]
                let q = v.isNaN ? 0 : min(max(v, 0), 1) * 255
                p[3 * i + c] = UInt8(q.rounded(.toNearestOrAwayFromZero))
            }
        }
        self.init(width: w, height: h, pixels: p)
    }

    /// Channel 0 of every pixel: the grey values of an image built with `init(width:height:gray:)`.
    public var firstChannel: [UInt8] { (0..<(width * height)).map { pixels[3 * $0] } }
}

/// One 8-bit RGB colour.
public struct RGB: Equatable, Hashable, Sendable {
    public var r: UInt8, g: UInt8, b: UInt8
    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) { self.r = r; self.g = g; self.b = b }
    public static let black = RGB(0, 0, 0)
    public static let white = RGB(255, 255, 255)
    /// Grey from a value in [0, 1], converted like torchvision's `save_image` (see `RGB.byte`).
    public init(grey v: Float) { let b = RGB.byte(v); self.init(b, b, b) }

    /// torchvision `save_image` conversion of one [0, 1] value: `x * 255 + 0.5`, clamped to
    /// [0, 255], truncated. NaN maps to 0 (PyTorch leaves it undefined; we must not trap).
    @inline(__always)
    public static func byte(_ x: Float) -> UInt8 {
        let scaled = x * 255
        let v = scaled + 0.5
        if !(v > 0) { return 0 }
        if v >= 255 { return 255 }
        return UInt8(v)
    }
}

// MARK: - Format sniffing

/// Reads PNG or JPEG by content (magic bytes), not by file extension.
///
/// ```swift
/// let img = try ImageFile.read(URL(fileURLWithPath: "data/images/rocket.jpg"))
/// ```
public enum ImageFile {
    public static func read(_ url: URL) throws -> RGBImage { try decode(try ImageError.contents(of: url), file: url.path) }

    public static func decode(_ data: Data, file: String = "<memory>") throws -> RGBImage {
        let head = [UInt8](data.prefix(8))
        if head.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try PNG.decode(data, file: file) }
        if head.starts(with: [0xFF, 0xD8]) { return try JPEG.decode(data, file: file) }
        let hex = head.map { String(format: "%02x", $0) }.joined(separator: " ")
        throw ImageError(file: file, "not a PNG or JPEG file (first bytes: \(hex.isEmpty ? "none, file is empty" : hex))")
    }
}
