// MARK: - Paper A's image pre-processing
//
// Paper A's app (lib/dataset.py `ConditionalTransform`, applied to a uint8 PIL RGB image):
//   square  → T.Resize(224)                    → 224x224
//   else    → T.Resize(256) → T.CenterCrop(224)
//   then ToTensor (/255) and Normalize(0.5, 0.5) (x = 2·rgb01 − 1; that last step is the model's).
// torchvision hands PIL images to `Image.resize(size, BILINEAR)`, i.e. Pillow's Resample.c
// 8-bit path, reproduced here exactly:
//   • separable triangle filter, support 1 scaled by the downscale factor (antialiasing);
//   • window [Int(center − support + 0.5), Int(center + support + 0.5)) clipped to the image,
//     weights normalised to sum 1, then quantised to 22-bit fixed point (round half away from 0);
//   • horizontal pass first, rounded and clamped to uint8, then the vertical pass on that result.
// A plain double-precision reference (no fixed point, no intermediate rounding) sits beside it.
import Foundation
import SIMDCore

/// PIL-compatible antialiased bilinear resampling of 8-bit RGB images.
///
/// ```swift
/// let small = PILResample.bilinear(img, width: 256, height: 384)
/// ```
public enum PILResample {
    /// Pillow's PRECISION_BITS for 8-bit images (32 − 8 − 2).
    static let precisionBits = 22

    /// Filter taps for one output axis: output i reads input[start[i] ..< start[i] + count[i]].
    struct Taps {
        var start: [Int] = []
        var count: [Int] = []
        var weights: [[Double]] = []   // normalised to sum 1
    }

    /// Pillow's precompute_coeffs for the bilinear (triangle) filter, box = [0, inSize).
    static func taps(inSize: Int, outSize: Int) -> Taps {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        var t = Taps()
        for i in 0..<outSize {
            let center = (Double(i) + 0.5) * scale
            let lo = max(Int(center - support + 0.5), 0)          // C (int) cast: truncation toward 0
            let hi = min(Int(center + support + 0.5), inSize)
            var w = [Double]()
            var sum = 0.0
            for x in lo..<max(hi, lo) {
                let d = abs((Double(x) - center + 0.5) / filterScale)
                let v = d < 1 ? 1 - d : 0
                w.append(v); sum += v
            }
            if sum != 0 { w = w.map { $0 / sum } }
            t.start.append(lo); t.count.append(w.count); t.weights.append(w)
        }
        return t
    }

    /// Weights in 22-bit fixed point, rounded half away from zero like normalize_coeffs_8bpc.
    static func fixedPoint(_ w: [Double]) -> [Int32] {
        let one = Double(1 << precisionBits)
        return w.map { $0 < 0 ? Int32(-0.5 + $0 * one) : Int32(0.5 + $0 * one) }
    }

    @inline(__always) static func clip8(_ acc: Int32) -> UInt8 {
        let v = acc >> Int32(precisionBits)   // arithmetic shift = floor, as Pillow's lookup table
        return UInt8(clamping: v)
    }

    /// Resizes to `width` x `height` exactly as Pillow's `Image.resize(size, Image.BILINEAR)` on an
    /// RGB image. Same size returns the image unchanged (Pillow copies).
    public static func bilinear(_ img: RGBImage, width: Int, height: Int) -> RGBImage {
        precondition(width > 0 && height > 0, "PILResample.bilinear: output \(width)x\(height) must be positive")
        if width == img.width && height == img.height { return img }
        let tv = taps(inSize: img.height, outSize: height)
        var src = img
        if width != img.width {
            // Pillow only runs the horizontal pass over the rows the vertical pass will read;
            // the result on those rows is identical, so we do every row for simplicity.
            let th = taps(inSize: img.width, outSize: width)
            let kk = th.weights.map(fixedPoint)
            var out = [UInt8](repeating: 0, count: width * img.height * 3)
            img.pixels.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    for y in 0..<img.height {
                        let row = y * img.width * 3
                        for x in 0..<width {
                            var a0: Int32 = 1 << 21, a1: Int32 = 1 << 21, a2: Int32 = 1 << 21
                            let k = kk[x], x0 = th.start[x]
                            for j in 0..<k.count {
                                let p = row + (x0 + j) * 3
                                a0 &+= Int32(s[p]) &* k[j]; a1 &+= Int32(s[p + 1]) &* k[j]; a2 &+= Int32(s[p + 2]) &* k[j]
                            }
                            let o = (y * width + x) * 3
                            d[o] = clip8(a0); d[o + 1] = clip8(a1); d[o + 2] = clip8(a2)
                        }
                    }
                }
            }
            src = RGBImage(width: width, height: img.height, pixels: out)
        }
        if height == img.height { return src }
        let kk = tv.weights.map(fixedPoint)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        src.pixels.withUnsafeBufferPointer { s in
            out.withUnsafeMutableBufferPointer { d in
                for y in 0..<height {
                    let k = kk[y], y0 = tv.start[y]
                    for x in 0..<(width * 3) {
                        var a: Int32 = 1 << 21
                        for j in 0..<k.count { a &+= Int32(s[(y0 + j) * width * 3 + x]) &* k[j] }
                        d[y * width * 3 + x] = clip8(a)
                    }
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Reference: the same filter in double precision over the full 2-D window, one rounding at
    /// the end. Differs from `bilinear` only by Pillow's fixed point and intermediate rounding.
    public static func bilinearReference(_ img: RGBImage, width: Int, height: Int) -> RGBImage {
        let th = taps(inSize: img.width, outSize: width), tv = taps(inSize: img.height, outSize: height)
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    var acc = 0.0
                    for (i, wy) in tv.weights[y].enumerated() {
                        for (j, wx) in th.weights[x].enumerated() {
                            acc += wy * wx * Double(img[th.start[x] + j, tv.start[y] + i, c])
                        }
                    }
                    out[(y * width + x) * 3 + c] = UInt8(min(max(acc.rounded(), 0), 255))
                }
            }
        }
        return RGBImage(width: width, height: height, pixels: out)
    }
}

// MARK: - Crop and the full pipeline

/// Paper A's pre-processing (see the top of this file).
///
/// ```swift
/// let img = try ImageFile.read(URL(fileURLWithPath: "data/images/rocket.jpg"))
/// let x = try ImagePreprocessing.paperA(img).tensor()   // [3, 224, 224] in [0, 1]
/// ```
public enum ImagePreprocessing {
    /// torchvision `Resize(size)` with an int: the short side becomes `size`, the long side
    /// `Int(size * long / short)` (truncated, as torchvision's `int(...)`).
    public static func resizedSize(width: Int, height: Int, shortSide size: Int) -> (width: Int, height: Int) {
        if width <= height {
            return (size, Int(Double(size) * Double(height) / Double(width)))
        } else {
            return (Int(Double(size) * Double(width) / Double(height)), size)
        }
    }

    /// torchvision `CenterCrop`: offsets `round((in − out) / 2)` with Python's round-half-to-even.
    /// Throws if the image is smaller than the crop (torchvision would pad; paper A never needs it).
    public static func centerCrop(_ img: RGBImage, width: Int, height: Int) throws -> RGBImage {
        guard img.width >= width, img.height >= height else {
            throw ImageError(file: "<image>", "centre crop \(width)x\(height) is larger than the \(img.width)x\(img.height) image")
        }
        let top = Int((Double(img.height - height) / 2).rounded(.toNearestOrEven))
        let left = Int((Double(img.width - width) / 2).rounded(.toNearestOrEven))
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            let s = ((top + y) * img.width + left) * 3
            out.replaceSubrange((y * width * 3)..<((y + 1) * width * 3), with: img.pixels[s..<(s + width * 3)])
        }
        return RGBImage(width: width, height: height, pixels: out)
    }

    /// Square → bilinear 224x224; otherwise short side → 256 then centre crop 224
    /// (the app's `ConditionalTransform`).
    public static func paperA(_ img: RGBImage, size: Int = 224, resizeTo: Int = 256) throws -> RGBImage {
        guard img.width > 0, img.height > 0 else { throw ImageError(file: "<image>", "cannot pre-process an empty \(img.width)x\(img.height) image") }
        if img.width == img.height {
            return PILResample.bilinear(img, width: size, height: size)
        }
        return try resizeThenCenterCrop(img, resize: resizeTo, crop: size)
    }

    /// `T.Resize(resize)` then `T.CenterCrop(crop)` for every image, square or not: paper A's
    /// dataset transform (lib/dataset.py `get_transform`, used for Imagenette).
    public static func resizeThenCenterCrop(_ img: RGBImage, resize: Int = 256, crop: Int = 224) throws -> RGBImage {
        guard img.width > 0, img.height > 0 else { throw ImageError(file: "<image>", "cannot pre-process an empty \(img.width)x\(img.height) image") }
        let (w, h) = resizedSize(width: img.width, height: img.height, shortSide: resize)
        // A long, thin image grows by the short side's factor: checked before allocating
        // (sides ≤ 2^15 and resize ≤ a few thousand: the product cannot overflow).
        guard w * h <= Limits.maxImagePixels else {
            throw ImageError(file: "<image>", "resizing the \(img.width)x\(img.height) image to short side \(resize) gives \(w)x\(h), more than Limits.maxImagePixels = \(Limits.maxImagePixels) pixels (aspect ratio too extreme)")
        }
        return try centerCrop(PILResample.bilinear(img, width: w, height: h), width: crop, height: crop)
    }

    /// Reads an image file and returns paper A's input in [0, 1], shape [3, 224, 224].
    /// (The model's own first step maps it to [−1, 1].)
    public static func paperATensor(contentsOf url: URL) throws -> Tensor {
        let img = try ImageFile.read(url)
        do { return try paperA(img).tensor() } catch let e as ImageError { throw ImageError(file: url.path, e.message) }
    }
}
