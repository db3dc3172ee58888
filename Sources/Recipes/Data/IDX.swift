// MARK: - IDX (the MNIST file format)
//
// Layout (LeCun's MNIST page): bytes 0,1 = 0; byte 2 = element type (0x08 unsigned byte,
// 0x09 signed byte, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64); byte 3 = number of dimensions d;
// then d big-endian UInt32 sizes; then the elements, row-major. Only 0x08 occurs in MNIST and
// is the only type read here. Files may be gzipped (detected by the 1f 8b magic, not the name).
import Foundation

/// An IDX array of unsigned bytes.
///
/// ```swift
/// let a = try IDX.read(URL(fileURLWithPath: "data/mnist5k/images-idx3-ubyte.gz"))
/// a.dims        // [5000, 28, 28]
/// try IDX.write(a, to: URL(fileURLWithPath: "/tmp/copy-idx3-ubyte"))   // plain; ".gz" → gzipped
/// ```
public struct IDXArray: Equatable, Sendable {
    public var dims: [Int]
    public var bytes: [UInt8]

    public init(dims: [Int], bytes: [UInt8]) {
        precondition(dims.reduce(1, *) == bytes.count, "IDXArray: dims \(dims) need \(dims.reduce(1, *)) bytes, got \(bytes.count)")
        self.dims = dims; self.bytes = bytes
    }
}

public enum IDX {
    static let typeNames: [UInt8: String] = [0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16",
                                             0x0C: "int32", 0x0D: "float32", 0x0E: "float64"]

    // MARK: Reading

    /// Reads a plain or gzipped IDX file of unsigned bytes.
    public static func read(_ url: URL) throws -> IDXArray {
        try parse(readFileData(url), file: url.path)
    }

    /// Parses IDX bytes (inflating them first when they are gzipped). `file` names the source in errors.
    public static func parse(_ data: Data, file: String = "<memory>") throws -> IDXArray {
        let raw = Gzip.isGzip(data) ? try Gzip.decompress(data, file: file) : data
        return try raw.withUnsafeBytes { (p: UnsafeRawBufferPointer) -> IDXArray in
            guard p.count >= 4 else {
                throw DataError(.format, file: file, "truncated: \(p.count) bytes, an IDX file starts with a 4-byte magic number")
            }
            guard p[0] == 0, p[1] == 0 else {
                throw DataError(.format, file: file, String(format: "bad IDX magic %02x %02x %02x %02x: the first two bytes must be 0 (is this an IDX file?)", p[0], p[1], p[2], p[3]))
            }
            guard p[2] == 0x08 else {
                let name = typeNames[p[2]].map { "\($0) (0x\(String(p[2], radix: 16)))" } ?? String(format: "unknown type 0x%02x", p[2])
                throw DataError(.format, file: file, "IDX element type is \(name); only unsigned byte (0x08) is supported")
            }
            let rank = Int(p[3])
            guard rank >= 1 else { throw DataError(.format, file: file, "IDX header says 0 dimensions") }
            let headerBytes = 4 + 4 * rank
            guard p.count >= headerBytes else {
                throw DataError(.format, file: file, "truncated: header of a \(rank)-dimensional IDX array needs \(headerBytes) bytes, file has \(p.count)")
            }
            var dims: [Int] = []
            for i in 0..<rank { dims.append(Int(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 + 4 * i, as: UInt32.self)))) }
            let (count, overflow) = dims.reduce((1, false)) { acc, d in
                let m = acc.0.multipliedReportingOverflow(by: d); return (m.partialValue, acc.1 || m.overflow)
            }
            guard !overflow else { throw DataError(.format, file: file, "IDX dimensions \(dims) overflow") }
            let have = p.count - headerBytes
            guard have >= count else {
                throw DataError(.format, file: file, "truncated: dims \(dims) need \(count) data bytes after the \(headerBytes)-byte header, file has \(have)")
            }
            guard have == count else {
                throw DataError(.format, file: file, "\(have - count) unexpected bytes after the \(count) data bytes of dims \(dims)")
            }
            return IDXArray(dims: dims, bytes: Array(p[headerBytes...]))
        }
    }

    /// Reads images [N, H, W] (rank-3 IDX) and checks the rank.
    public static func readImages(_ url: URL) throws -> IDXArray {
        let a = try read(url)
        guard a.dims.count == 3 else {
            throw DataError(.format, file: url.path, "expected an image file with dims [N, H, W], got dims \(a.dims)")
        }
        return a
    }

    /// Reads labels [N] (rank-1 IDX) as Ints.
    public static func readLabels(_ url: URL) throws -> [Int] {
        let a = try read(url)
        guard a.dims.count == 1 else {
            throw DataError(.format, file: url.path, "expected a label file with dims [N], got dims \(a.dims)")
        }
        return a.bytes.map(Int.init)
    }

    // MARK: Writing

    /// The plain (uncompressed) IDX encoding.
    public static func encode(_ a: IDXArray) -> Data {
        precondition(a.dims.count <= 255 && a.dims.allSatisfy { $0 >= 0 && $0 <= Int(UInt32.max) })
        var out = Data([0, 0, 0x08, UInt8(a.dims.count)])
        for d in a.dims { withUnsafeBytes(of: UInt32(d).bigEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: a.bytes)
        return out
    }

    /// Writes `a` atomically; gzipped when `gzip` is true (default: when the name ends in ".gz").
    public static func write(_ a: IDXArray, to url: URL, gzip: Bool? = nil) throws {
        let plain = encode(a)
        let packed = (gzip ?? (url.pathExtension == "gz")) ? try Gzip.compress(plain) : plain
        try AtomicFile.write(packed, to: url)
    }
}
