// MARK: - Drawing on an RGBImage
//
// The few raster operations report figures need (image grids, panels, titles). They work on the
// same `RGBImage` the decoders produce and the PNG writer takes, so a figure goes to disk without
// a conversion.

extension RGBImage {
    /// Fills the rectangle, clipped to the image.
    ///
    /// ```swift
    /// var c = RGBImage(width: 4, height: 2, fill: .white)
    /// c.fillRect(x: 0, y: 0, width: 2, height: 2, color: .black)
    /// c[1, 0]   // RGB(r: 0, g: 0, b: 0)
    /// ```
    public mutating func fillRect(x: Int, y: Int, width w: Int, height h: Int, color: RGB) {
        let x0 = max(0, x), y0 = max(0, y), x1 = min(width, x + w), y1 = min(height, y + h)
        guard x0 < x1, y0 < y1 else { return }
        for yy in y0..<y1 {
            var i = 3 * (yy * width + x0)
            for _ in x0..<x1 { pixels[i] = color.r; pixels[i + 1] = color.g; pixels[i + 2] = color.b; i += 3 }
        }
    }

    /// Copies `other` with its top-left corner at (x, y), clipped to this image.
    public mutating func draw(_ other: RGBImage, x: Int, y: Int) {
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
    public func upscaled(by factor: Int) -> RGBImage {
        precondition(factor >= 1, "RGBImage.upscaled: factor must be >= 1, got \(factor)")
        if factor == 1 { return self }
        var out = RGBImage(width: width * factor, height: height * factor)
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
