// MARK: - NPY: NumPy's array file format, version 1.0
//
// A step's numeric results leave the engine as `.npy` files that `numpy.load` reads as they are:
//
//   "\x93NUMPY" 0x01 0x00 <header length, UInt16 little-endian> <header> <data>
//
// The header is a Python dict literal, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`,
// padded with spaces and ended by "\n" so that the data starts at a multiple of 64 bytes (numpy's
// own alignment). Data are little-endian, C order (last index fastest). Two element types cover
// what the steps write: float32 ('<f4') for images, maps and logits, int64 ('<i8') for class indices.
import Foundation
import SIMDCore

/// The element types the engine writes and reads.
public enum NPYType: String, Sendable, Equatable {
    case float32 = "<f4"
    case int64 = "<i8"

    var byteSize: Int { self == .float32 ? 4 : 8 }
}

/// One array read from a `.npy` file.
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var type: NPYType
    /// The elements when `type` is float32 (else empty), in C order.
    public var floats: [Float]
    /// The elements when `type` is int64 (else empty), in C order.
    public var ints: [Int64]

    public var count: Int { shape.reduce(1, *) }

    /// As a tensor (float32 arrays only).
    public var tensor: Tensor? { type == .float32 ? Tensor(shape: shape, scalars: floats) : nil }
}

/// A `.npy` file that is not one this reader understands; says which file and what was expected.
public struct NPYError: Error, CustomStringConvertible, Equatable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Writes and reads NumPy `.npy` files (format 1.0).
///
/// ```swift
/// try NPY.write(maps, to: dir.appendingPathComponent("maps/attributions.npy"))   // '<f4', maps.shape
/// try NPY.write(ints: [0, 482, 9], shape: [3], to: dir.appendingPathComponent("maps/targets.npy"))
/// let back = try NPY.read(dir.appendingPathComponent("maps/attributions.npy"))     // back.floats == maps.scalars
/// ```
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // "\x93NUMPY"
    /// The data start at a multiple of this many bytes.
    static let alignment = 64
    /// Largest header this reader accepts (numpy's own writer stays far below).
    static let maxHeader = 4096

    // MARK: Writing

    /// The header (magic, version, length, padded dict) for an array of `type` and `shape`.
    static func header(_ type: NPYType, shape: [Int]) -> Data {
        let dims = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(type.rawValue)', 'fortran_order': False, 'shape': \(dims), }"
        let fixed = magic.count + 2 + 2
        let total = (fixed + dict.utf8.count + 1 + alignment - 1) / alignment * alignment
        dict += String(repeating: " ", count: total - fixed - dict.utf8.count - 1) + "\n"
        var out = Data(magic)
        out.append(contentsOf: [1, 0])
        let n = UInt16(dict.utf8.count)
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8)])
        out.append(contentsOf: Array(dict.utf8))
        return out
    }

    /// A float32 array file's bytes.
    public static func encode(_ scalars: [Float], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == scalars.count, "NPY.encode: \(scalars.count) values for shape \(shape)")
        var out = header(.float32, shape: shape)
        var bytes = [UInt8](repeating: 0, count: scalars.count * 4)
        for (i, v) in scalars.enumerated() {
            let b = v.bitPattern.littleEndian
            bytes[4 * i] = UInt8(truncatingIfNeeded: b); bytes[4 * i + 1] = UInt8(truncatingIfNeeded: b >> 8)
            bytes[4 * i + 2] = UInt8(truncatingIfNeeded: b >> 16); bytes[4 * i + 3] = UInt8(truncatingIfNeeded: b >> 24)
        }
        out.append(contentsOf: bytes)
        return out
    }

    /// An int64 array file's bytes.
    public static func encode(ints: [Int], shape: [Int]) -> Data {
        precondition(shape.reduce(1, *) == ints.count, "NPY.encode: \(ints.count) values for shape \(shape)")
        var out = header(.int64, shape: shape)
        var bytes = [UInt8](repeating: 0, count: ints.count * 8)
        for (i, v) in ints.enumerated() {
            let b = UInt64(bitPattern: Int64(v))
            for k in 0..<8 { bytes[8 * i + k] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(k))) }
        }
        out.append(contentsOf: bytes)
        return out
    }

    /// Writes `t` as float32 with its shape (atomically).
    public static func write(_ t: Tensor, to url: URL) throws {
        try AtomicFile.write(encode(t.scalars, shape: t.shape), to: url)
    }

    /// Writes `ints` as int64 with `shape` (atomically).
    public static func write(ints: [Int], shape: [Int], to url: URL) throws {
        try AtomicFile.write(encode(ints: ints, shape: shape), to: url)
    }

    // MARK: Reading

    public static func read(_ url: URL) throws -> NPYArray {
        guard let data = FileManager.default.contents(atPath: url.path) else { throw NPYError("\(url.path): cannot read the file") }
        return try decode(data, file: url.path)
    }

    /// Parses a format 1.0 file of '<f4' or '<i8' elements in C order.
    public static func decode(_ data: Data, file: String = "<data>") throws -> NPYArray {
        let b = [UInt8](data)
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw NPYError("\(file): not a .npy file (expected the magic bytes \\x93NUMPY)") }
        guard b[6] == 1, b[7] == 0 else { throw NPYError("\(file): .npy format version \(b[6]).\(b[7]); this reader reads version 1.0") }
        let hlen = Int(b[8]) | Int(b[9]) << 8
        guard hlen <= maxHeader, 10 + hlen <= b.count else { throw NPYError("\(file): header length \(hlen) runs past the end of the file (\(b.count) bytes)") }
        guard let dict = String(bytes: b[10..<(10 + hlen)], encoding: .ascii) else { throw NPYError("\(file): header is not ASCII") }
        let descr = try value(of: "descr", in: dict, file: file)
        guard let type = NPYType(rawValue: descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))) else {
            throw NPYError("\(file): element type \(descr); this reader reads '<f4' (float32) and '<i8' (int64)")
        }
        guard try value(of: "fortran_order", in: dict, file: file) == "False" else {
            throw NPYError("\(file): fortran_order is True; this reader reads C order only")
        }
        let shapeText = try value(of: "shape", in: dict, file: file)
        guard shapeText.hasPrefix("("), shapeText.hasSuffix(")") else { throw NPYError("\(file): shape \(shapeText) is not a tuple") }
        var shape: [Int] = []
        var count = 1
        for part in shapeText.dropFirst().dropLast().split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t), d >= 0 else { throw NPYError("\(file): shape \(shapeText): '\(t)' is not a dimension") }
            let (p, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, p <= b.count else { throw NPYError("\(file): shape \(shapeText) holds more elements than the file has bytes") }
            shape.append(d); count = p
        }
        let start = 10 + hlen
        guard b.count - start == count * type.byteSize else {
            throw NPYError("\(file): shape \(shapeText) of \(type.rawValue) needs \(count * type.byteSize) data bytes, the file has \(b.count - start)")
        }
        var out = NPYArray(shape: shape, type: type, floats: [], ints: [])
        switch type {
        case .float32:
            out.floats = (0..<count).map { i in
                let o = start + 4 * i
                return Float(bitPattern: UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24)
            }
        case .int64:
            out.ints = (0..<count).map { i in
                var v: UInt64 = 0
                for k in 0..<8 { v |= UInt64(b[start + 8 * i + k]) << (8 * UInt64(k)) }
                return Int64(bitPattern: v)
            }
        }
        return out
    }

    /// The text of `'key': value` in a header dict, up to the next top-level comma.
    static func value(of key: String, in dict: String, file: String) throws -> String {
        guard let r = dict.range(of: "'\(key)':") else { throw NPYError("\(file): header has no '\(key)'") }
        var depth = 0
        var text = ""
        for ch in dict[r.upperBound...] {
            if ch == "(" { depth += 1 } else if ch == ")" { depth -= 1 }
            if depth == 0 && (ch == "," || ch == "}") { break }
            text.append(ch)
            if depth < 0 { break }
        }
        return text.trimmingCharacters(in: .whitespaces)
    }
}
