// MARK: - RGBCanvas
//
// An 8-bit RGB pixel buffer: what every raster artifact (image grids, figure panels) is drawn on
// before it is encoded. Encoding is someone else's job (see `PNGEncoder` and the libpng wrapper),
// so report code stays pure Swift and testable without C libraries.

/// An 8-bit RGB image, row-major, interleaved `r, g, b` per pixel, top row first.
///
/// ```swift
/// var c = RGBCanvas(width: 4, height: 2, fill: .white)
/// c.fillRect(x: 0, y: 0, width: 2, height: 2, color: .black)
/// c[1, 0]   // RGB(r: 0, g: 0, b: 0)
/// ```
public struct RGBCanvas: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes.
    public var pixels: [UInt8]

    public init(width: Int, height: Int, fill: RGB = .black) {
        precondition(width >= 0 && height >= 0, "RGBCanvas: negative size \(width)x\(height)")
        self.width = width
        self.height = height
        var p = [UInt8](repeating: 0, count: width * height * 3)
        if fill != .black {
            for i in 0..<(width * height) { p[3 * i] = fill.r; p[3 * i + 1] = fill.g; p[3 * i + 2] = fill.b }
        }
        self.pixels = p
    }

    /// Wraps existing interleaved RGB bytes; throws if the byte count does not match the size.
    public init(width: Int, height: Int, pixels: [UInt8]) throws {
        guard width >= 0, height >= 0, pixels.count == width * height * 3 else {
            throw ReportError.invalidInput("RGBCanvas: \(width)x\(height) needs \(max(0, width * height * 3)) bytes, got \(pixels.count)")
        }
        self.width = width
        self.height = height
        self.pixels = pixels
    }

    // MARK: Pixel access (not for hot loops)

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

    // MARK: Drawing

    /// Fills the rectangle, clipped to the canvas.
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            var i = 3 * (yy * width + x0)
            for _ in x0..<x1 { pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b; i += 3 }
        }
    }

    /// Copies `other` with its top-left corner at (x, y), clipped to this canvas.
    public mutating func draw(_ other: RGBCanvas, x: Int, y: Int) {
        for sy in 0..<other.height {
            let ty = y + sy
            guard ty >= 0, ty < height else { continue }
            for sx in 0..<other.width {
                let tx = x + sx
                guard tx >= 0, tx < width else { continue }
                let s = 3 * (sy * other.width + sx), t = 3 * (ty * width + tx)
                pixels[t] = other.pixels[s]; pixels[t + 1] = other.pixels[s + 1]; pixels[t + 2] = other.pixels[s + 2]
            }
        }
    }

    /// Nearest-neighbour enlargement by an integer factor (each pixel becomes a `factor x factor` block).
    public func upscaled(by factor: Int) -> RGBCanvas {
        precondition(factor >= 1, "RGBCanvas.upscaled: factor must be >= 1, got \(factor)")
        if factor == 1 { return self }
        var out = RGBCanvas(width: width * factor, height: height * factor)
        for y in 0..<out.height {
            let sy = y / factor
            for x in 0..<out.width {
                let s = 3 * (sy * width + x / factor), t = 3 * (y * out.width + x)
                out.pixels[t] = pixels[s]; out.pixels[t + 1] = pixels[s + 1]; out.pixels[t + 2] = pixels[s + 2]
            }
        }
        return out
    }
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

/// Errors from report building: invalid shapes, bad plot data, missing files.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    case invalidInput(String)
    case missingFile(String)

    public var description: String {
        switch self {
        case .invalidInput(let m): return m
        case .missingFile(let m): return m
        }
    }
}
