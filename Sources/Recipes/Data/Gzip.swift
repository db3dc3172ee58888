// MARK: - Gzip
//
// gzip through the system zlib (CZlib). `decompress` accepts gzip or zlib streams (windowBits
// 15 + 32 lets zlib detect the header) and concatenated gzip members (RFC 1952 §2.2); a stream
// that ends early is reported as truncated rather than returning a short result.
import CZlib
import Foundation

/// gzip compression and decompression of in-memory buffers.
///
/// ```swift
/// let packed = try Gzip.compress(Data("hello".utf8))
/// let plain = try Gzip.decompress(packed, file: "hello.gz")   // "hello"
/// ```
public enum Gzip {
    /// True when `data` starts with the gzip magic bytes 1f 8b.
    public static func isGzip(_ data: Data) -> Bool {
        var it = data.makeIterator()
        return it.next() == 0x1F && it.next() == 0x8B
    }

    /// Inflates a gzip (or zlib) stream. `file` only names the source in errors; output beyond
    /// `limit` bytes (default Limits.maxInflatedBytes) is refused, so a gzip bomb is an error.
    public static func decompress(_ data: Data, file: String = "<memory>", limit: Int = Limits.maxInflatedBytes) throws -> Data {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 32, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(.io, file: file, "zlib inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }

        // The gzip trailer stores the uncompressed size mod 2^32: a capacity hint (bounded, as a
        // truncated file ends in arbitrary bytes).
        var out = Data()
        if data.count >= 18, isGzip(data) {
            let isize = data.suffix(4).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) }
            out.reserveCapacity(min(Int(isize), data.count * 1032, limit))   // deflate expands at most ~1032:1
        }
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)

        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            guard let base = raw.bindMemory(to: Bytef.self).baseAddress, raw.count > 0 else {
                throw DataError(.format, file: file, "empty file, expected a gzip stream")
            }
            var consumed = 0                       // bytes of `raw` handed to zlib so far
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = 0
            while true {
                // Feed at most 1 GiB at a time: avail_in is 32-bit.
                if stream.avail_in == 0 && consumed < raw.count {
                    let n = min(raw.count - consumed, 1 << 30)
                    stream.next_in = UnsafeMutablePointer(mutating: base + consumed)
                    stream.avail_in = uInt(n)
                    consumed += n
                }
                let status: Int32 = buffer.withUnsafeMutableBufferPointer { b in
                    stream.next_out = b.baseAddress
                    stream.avail_out = uInt(chunk)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    out.append(b.baseAddress!, count: chunk - Int(stream.avail_out))
                    return s
                }
                guard out.count <= limit else {
                    throw DataError(.format, file: file, "gzip stream inflates to more than \(limitName(limit)) bytes (gzip bomb, or not the expected file)")
                }
                let remaining = Int(stream.avail_in) + (raw.count - consumed)
                switch status {
                case Z_STREAM_END:
                    if remaining == 0 { return }
                    let rest = UnsafeRawBufferPointer(start: raw.baseAddress! + (raw.count - remaining), count: remaining)
                    if rest.count >= 2 && rest[0] == 0x1F && rest[1] == 0x8B {
                        inflateReset(&stream)        // another gzip member follows
                    } else if rest.allSatisfy({ $0 == 0 }) {
                        return                       // zero padding after the last member
                    } else {
                        throw DataError(.format, file: file, "\(remaining) bytes of trailing garbage after the gzip stream")
                    }
                case Z_OK:
                    continue
                case Z_BUF_ERROR where remaining == 0:
                    throw DataError(.format, file: file, "truncated gzip stream: input ended after \(raw.count) bytes, \(out.count) bytes inflated so far")
                case Z_BUF_ERROR:
                    continue
                default:
                    let why = stream.msg.map { String(cString: $0) } ?? "zlib status \(status)"
                    throw DataError(.format, file: file, "corrupt gzip stream (\(why)) after \(out.count) inflated bytes")
                }
            }
        }
        return out
    }

    static func limitName(_ limit: Int) -> String {
        limit == Limits.maxInflatedBytes ? "Limits.maxInflatedBytes = \(limit)" : "the limit of \(limit)"
    }

    /// Deflates `data` into a gzip stream (header without name or time, so output is reproducible).
    public static func compress(_ data: Data, level: Int32 = 6) throws -> Data {
        var stream = z_stream()
        guard deflateInit2_(&stream, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY,
                            zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw DataError(.io, file: "<memory>", "zlib deflateInit2 failed (level \(level))")
        }
        defer { deflateEnd(&stream) }
        var out = Data()
        let chunk = 1 << 20
        var buffer = [UInt8](repeating: 0, count: chunk)
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.bindMemory(to: Bytef.self).baseAddress
            var consumed = 0
            stream.avail_in = 0
            while true {
                if stream.avail_in == 0 && consumed < raw.count, let base {
                    let n = min(raw.count - consumed, 1 << 30)
                    stream.next_in = UnsafeMutablePointer(mutating: base + consumed)
                    stream.avail_in = uInt(n)
                    consumed += n
                }
                let flush = consumed == raw.count ? Z_FINISH : Z_NO_FLUSH
                let status: Int32 = buffer.withUnsafeMutableBufferPointer { b in
                    stream.next_out = b.baseAddress
                    stream.avail_out = uInt(chunk)
                    let s = deflate(&stream, flush)
                    out.append(b.baseAddress!, count: chunk - Int(stream.avail_out))
                    return s
                }
                if status == Z_STREAM_END { return }
                guard status == Z_OK || status == Z_BUF_ERROR else {
                    throw DataError(.io, file: "<memory>", "zlib deflate failed with status \(status)")
                }
            }
        }
        return out
    }
}
