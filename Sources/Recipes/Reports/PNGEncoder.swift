// MARK: - PNGEncoder (stored, uncompressed)
//
// A dependency-free PNG writer: 8-bit RGB, no filtering, zlib stream made of *stored* deflate
// blocks (no compression). Files are ~3 bytes/pixel; correct and tiny code. The libpng wrapper in
// Sources/Recipes/Images can replace it wherever size matters: report code takes the encoder as a
// `PNGEncode` closure.
import Foundation

/// Encodes a canvas as PNG bytes. `PNGEncoder.storedPNG` is the built-in one.
public typealias PNGEncode = (RGBCanvas) throws -> Data

public enum PNGEncoder {
    /// Uncompressed PNG (colour type 2, bit depth 8, filter 0 on every row, stored deflate blocks).
    ///
    /// ```swift
    /// let data = PNGEncoder.storedPNG(RGBCanvas(width: 2, height: 2, fill: .white))
    /// try AtomicFile.write(data, to: URL(fileURLWithPath: "/tmp/x.png"))
    /// ```
    public static func storedPNG(_ canvas: RGBCanvas) -> Data {
        // Raw scanlines: filter byte 0 ("None") then the row's RGB bytes.
        let rowBytes = canvas.width * 3
        var raw = [UInt8]()
        raw.reserveCapacity(canvas.height * (rowBytes + 1))
        for y in 0..<canvas.height {
            raw.append(0)
            raw.append(contentsOf: canvas.pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
        }

        // zlib: CMF 0x78 (deflate, 32K window), FLG 0x01 (0x7801 % 31 == 0), stored blocks, Adler-32.
        var z: [UInt8] = [0x78, 0x01]
        let maxBlock = 65_535
        var offset = 0
        repeat {
            let n = min(maxBlock, raw.count - offset)
            let final: UInt8 = offset + n == raw.count ? 1 : 0
            z.append(final)                        // BFINAL bit, BTYPE = 00 (stored)
            z.append(UInt8(n & 0xFF)); z.append(UInt8(n >> 8))
            z.append(UInt8(~n & 0xFF)); z.append(UInt8((~n >> 8) & 0xFF))
            z.append(contentsOf: raw[offset..<(offset + n)])
            offset += n
        } while offset < raw.count
        appendBigEndian(&z, adler32(raw))

        var ihdr = [UInt8]()
        appendBigEndian(&ihdr, UInt32(canvas.width))
        appendBigEndian(&ihdr, UInt32(canvas.height))
        ihdr += [8, 2, 0, 0, 0]                   // bit depth, colour type RGB, deflate, filter 0, no interlace

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        appendChunk(&png, "IHDR", ihdr)
        appendChunk(&png, "IDAT", z)
        appendChunk(&png, "IEND", [])
        return Data(png)
    }

    // MARK: Checksums

    /// CRC-32 (ISO 3309 / PNG / zlib polynomial 0xEDB88320, reflected). `crc32("123456789") == 0xCBF43926`.
    public static func crc32<S: Sequence>(_ bytes: S, initial: UInt32 = 0) -> UInt32 where S.Element == UInt8 {
        var c = ~initial
        for b in bytes { c = crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
        return ~c
    }

    /// Adler-32 (RFC 1950). `adler32("Wikipedia") == 0x11E60398`.
    public static func adler32<S: Sequence>(_ bytes: S) -> UInt32 where S.Element == UInt8 {
        var a: UInt32 = 1, b: UInt32 = 0
        var n = 0
        for x in bytes {
            a += UInt32(x); b += a
            n += 1
            if n == 5552 { a %= 65521; b %= 65521; n = 0 }   // 5552: largest run without UInt32 overflow
        }
        return ((b % 65521) << 16) | (a % 65521)
    }

    private static let crcTable: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    private static func appendBigEndian(_ out: inout [UInt8], _ v: UInt32) {
        out += [UInt8(v >> 24), UInt8((v >> 16) & 0xFF), UInt8((v >> 8) & 0xFF), UInt8(v & 0xFF)]
    }

    private static func appendChunk(_ out: inout [UInt8], _ type: String, _ data: [UInt8]) {
        appendBigEndian(&out, UInt32(data.count))
        let typeAndData = Array(type.utf8) + data
        out += typeAndData
        appendBigEndian(&out, crc32(typeAndData))
    }
}

extension RGBCanvas {
    /// Encodes with `encode` (default: the stored PNG writer) and writes atomically to `url`.
    public func writePNG(to url: URL, encode: PNGEncode = PNGEncoder.storedPNG) throws {
        try AtomicFile.write(try encode(self), to: url)
    }
}
