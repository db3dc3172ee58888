// MARK: - ZIP reader (stored entries only)
//
// What torch.save writes (PyTorchStreamWriter, miniz): every entry STORED (method 0, no compression),
// local headers with sizes zeroed and a data descriptor (flag bit 3), data aligned to 64 bytes with an
// "FB" padding extra field, ZIP64 records when the archive passes 4 GiB. So the central directory is the
// source of truth: sizes and local-header offsets come from there (ZIP64 extra field when 0xFFFFFFFF),
// and the local header is read only for its own name/extra lengths to find the data.
//
// Layout read here (APPNOTE.TXT 6.3):
//   [local header 0x04034b50 | name | extra | data]*  [central header 0x02014b50 ...]*
//   [zip64 end record 0x06064b50, zip64 locator 0x07064b50]?  end record 0x06054b50 | comment
// Compressed (deflate etc.) and encrypted entries are refused with an error naming the entry.
import Foundation
import CZlib

/// One file inside a ZIP archive.
public struct ZipEntry: Sendable {
    public let name: String
    public let method: UInt16          // 0 = stored; anything else is refused on read
    public let flags: UInt16
    public let crc32: UInt32
    public let compressedSize: Int
    public let uncompressedSize: Int
    public let localHeaderOffset: Int
}

/// A read-only ZIP archive over an in-memory (usually memory-mapped) file.
///
/// ```swift
/// let zip = try ZipArchive(contentsOf: url)
/// let pkl = try zip.data(for: "archive/data.pkl")
/// ```
public struct ZipArchive {
    public let file: String
    public let entries: [ZipEntry]          // central-directory order
    private let bytes: Data
    private let index: [String: Int]

    public init(contentsOf url: URL) throws {
        try self.init(data: try WeightsError.contents(of: url), file: url.path)
    }

    public init(data: Data, file: String = "<memory>") throws {
        self.file = file
        // Re-base so integer offsets index from 0 whatever slice we were given.
        self.bytes = data.startIndex == 0 ? data : Data(data)
        let r = ByteReader(bytes, file: file)
        guard bytes.count >= 22 else { throw WeightsError(file: file, "not a ZIP file: only \(bytes.count) bytes (a ZIP ends with a 22-byte end-of-central-directory record)") }

        // End of central directory: last occurrence of its signature within the final 64 KiB + 22 bytes.
        var eocd = -1
        var p = bytes.count - 22
        let lowest = max(0, bytes.count - 22 - 65_535)
        while p >= lowest { if try r.u32(p) == 0x0605_4b50 { eocd = p; break }; p -= 1 }
        guard eocd >= 0 else {
            if try r.u32(0) == 0x0403_4b50 {
                throw WeightsError(file: file, "truncated ZIP: starts with a ZIP local header but has no end-of-central-directory record (incomplete download?)")
            }
            throw WeightsError(file: file, "not a ZIP file (no end-of-central-directory record)")
        }
        var count = Int(try r.u16(eocd + 10))
        var cdSize = Int(try r.u32(eocd + 12))
        var cdOffset = Int(try r.u32(eocd + 16))
        // ZIP64: locator sits immediately before the classic record and points at the ZIP64 end record.
        if eocd >= 20, try r.u32(eocd - 20) == 0x0706_4b50 {
            let z64 = Int(clamping: try r.u64(eocd - 20 + 8))
            guard z64 >= 0, z64 <= bytes.count - 56, try r.u32(z64) == 0x0606_4b50 else {
                throw WeightsError(file: file, "corrupt ZIP64 end record (locator points at \(z64))")
            }
            count = Int(clamping: try r.u64(z64 + 32))
            cdSize = Int(clamping: try r.u64(z64 + 40))
            cdOffset = Int(clamping: try r.u64(z64 + 48))
        }
        guard cdOffset >= 0, cdSize >= 0, cdOffset <= eocd, cdSize <= eocd - cdOffset, count <= cdSize / 46 else {
            throw WeightsError(file: file, "truncated or corrupt ZIP: central directory of \(count) entries at \(cdOffset)+\(cdSize) does not fit before the end record at \(eocd)")
        }

        var entries: [ZipEntry] = []
        var index: [String: Int] = [:]
        var q = cdOffset
        for i in 0..<count {
            guard try r.u32(q) == 0x0201_4b50 else { throw WeightsError(file: file, "corrupt ZIP: central directory entry \(i) at \(q) has a bad signature") }
            let flags = try r.u16(q + 8), method = try r.u16(q + 10)
            let crc = try r.u32(q + 16)
            var csize = UInt64(try r.u32(q + 20)), usize = UInt64(try r.u32(q + 24))
            let nameLen = Int(try r.u16(q + 28)), extraLen = Int(try r.u16(q + 30)), commentLen = Int(try r.u16(q + 32))
            var local = UInt64(try r.u32(q + 42))
            let name = String(decoding: try r.slice(q + 46, nameLen), as: UTF8.self)
            // ZIP64 extended information (id 0x0001): only the fields saturated at 0xFFFFFFFF, in this order.
            var e = q + 46 + nameLen
            let extraEnd = e + extraLen
            while e + 4 <= extraEnd {
                let id = try r.u16(e), len = Int(try r.u16(e + 2))
                if id == 0x0001 {
                    var f = e + 4
                    if usize == 0xFFFF_FFFF { usize = try r.u64(f); f += 8 }
                    if csize == 0xFFFF_FFFF { csize = try r.u64(f); f += 8 }
                    if local == 0xFFFF_FFFF { local = try r.u64(f); f += 8 }
                }
                e += 4 + len
            }
            guard csize < UInt64(Int.max / 2), usize < UInt64(Int.max / 2), local < UInt64(Int.max / 2) else {
                throw WeightsError(file: file, "corrupt ZIP: entry '\(name)' has absurd sizes")
            }
            index[name] = entries.count
            entries.append(ZipEntry(name: name, method: method, flags: flags, crc32: crc, compressedSize: Int(csize),
                                    uncompressedSize: Int(usize), localHeaderOffset: Int(local)))
            q = extraEnd + commentLen
        }
        self.entries = entries
        self.index = index
    }

    public var names: [String] { entries.map(\.name) }

    public func entry(_ name: String) -> ZipEntry? { index[name].map { entries[$0] } }

    /// The bytes of a stored entry, CRC-32 checked. Compressed or encrypted entries are refused.
    public func data(for name: String, verifyCRC: Bool = true) throws -> Data {
        guard let e = entry(name) else { throw WeightsError(file: file, "ZIP has no entry '\(name)'") }
        return try data(for: e, verifyCRC: verifyCRC)
    }

    public func data(for e: ZipEntry, verifyCRC: Bool = true) throws -> Data {
        guard e.flags & 1 == 0 else { throw WeightsError(file: file, "ZIP entry '\(e.name)' is encrypted; not supported") }
        guard e.method == 0 else {
            let what = e.method == 8 ? "deflate" : "method \(e.method)"
            throw WeightsError(file: file, "ZIP entry '\(e.name)' is compressed (\(what)); only stored (uncompressed) entries are supported, as torch.save writes them — re-save the checkpoint with torch.save instead of re-zipping it")
        }
        guard e.compressedSize == e.uncompressedSize else {
            throw WeightsError(file: file, "ZIP entry '\(e.name)' is stored but sizes differ (\(e.compressedSize) vs \(e.uncompressedSize))")
        }
        let r = ByteReader(bytes, file: file)
        let h = e.localHeaderOffset
        guard try r.u32(h) == 0x0403_4b50 else { throw WeightsError(file: file, "corrupt or truncated ZIP: no local header for '\(e.name)' at offset \(h)") }
        let start = h + 30 + Int(try r.u16(h + 26)) + Int(try r.u16(h + 28))
        guard start + e.uncompressedSize <= bytes.count else {
            throw WeightsError(file: file, "truncated ZIP: entry '\(e.name)' needs bytes \(start)..<\(start + e.uncompressedSize), file has \(bytes.count)")
        }
        let out = bytes.subdata(in: start..<(start + e.uncompressedSize))
        if verifyCRC {
            let c = CRC32.checksum(out)
            guard c == e.crc32 else {
                throw WeightsError(file: file, "ZIP entry '\(e.name)' is corrupt: CRC-32 \(String(c, radix: 16)) != recorded \(String(e.crc32, radix: 16))")
            }
        }
        return out
    }
}

// MARK: - Little-endian bounds-checked reads

struct ByteReader {
    let data: Data
    let file: String
    init(_ data: Data, file: String) { self.data = data; self.file = file }

    private func check(_ off: Int, _ n: Int) throws {
        guard off >= 0, n >= 0, off <= data.count, n <= data.count - off else {
            throw WeightsError(file: file, "truncated ZIP: need bytes \(off)..<\(off + n), file has \(data.count)")
        }
    }
    func u16(_ off: Int) throws -> UInt16 {
        try check(off, 2); return data.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: off, as: UInt16.self)) }
    }
    func u32(_ off: Int) throws -> UInt32 {
        try check(off, 4); return data.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: off, as: UInt32.self)) }
    }
    func u64(_ off: Int) throws -> UInt64 {
        try check(off, 8); return data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: off, as: UInt64.self)) }
    }
    func slice(_ off: Int, _ n: Int) throws -> Data { try check(off, n); return data.subdata(in: off..<(off + n)) }
}

// MARK: - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as ZIP uses

/// The CRC-32 of ZIP, PNG and gzip, computed by the linked zlib (the same library that inflates
/// gzip data), so the project carries no second copy of the table-driven loop.
public enum CRC32 {
    /// `CRC32.checksum(Data("123456789".utf8)) == 0xCBF43926`
    public static func checksum(_ data: Data) -> UInt32 {
        data.withUnsafeBytes { raw in
            guard let base = raw.bindMemory(to: Bytef.self).baseAddress else { return 0 }
            return UInt32(truncatingIfNeeded: crc32_z(0, base, z_size_t(raw.count)))
        }
    }
}
