// MARK: - Tar (read-only, in memory)
//
// Just enough of POSIX ustar (plus GNU 'L' long names and pax 'path' records) to unpack the
// CIFAR binary archives. Only members asked for by exact path are returned, so names in the
// archive can never make us write outside the cache directory.
import Foundation

public enum Tar {
    /// The contents of the regular files named in `wanted` ("dir/file", a leading "./" ignored).
    public static func members(_ tar: Data, wanted: Set<String>, file: String) throws -> [String: Data] {
        var found: [String: Data] = [:]
        try tar.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            var offset = 0
            var longName: String?
            while offset + 512 <= p.count {
                let h = UnsafeRawBufferPointer(rebasing: p[offset..<offset + 512])
                if h.allSatisfy({ $0 == 0 }) { break }                       // end-of-archive block
                guard checksumMatches(h) else {
                    throw DataError(.format, file: file, "tar header at byte \(offset) has a bad checksum (not a tar archive, or corrupt)")
                }
                guard let size = octal(h, 124, 12) else {
                    throw DataError(.format, file: file, "tar header at byte \(offset) has an unreadable size field")
                }
                let dataStart = offset + 512
                // Compared by subtraction: a size near Int.max must not overflow the sum.
                guard size <= p.count - dataStart else {
                    throw DataError(.format, file: file, "truncated tar archive: member at byte \(offset) needs \(size) bytes, \(p.count - dataStart) left")
                }
                let body = UnsafeRawBufferPointer(rebasing: p[dataStart..<dataStart + size])
                var name = string(h, 0, 100)
                if h[257..<262].elementsEqual("ustar".utf8) {
                    let prefix = string(h, 345, 155)
                    if !prefix.isEmpty { name = prefix + "/" + name }
                }
                if let l = longName { name = l; longName = nil }
                switch h[156] {
                case UInt8(ascii: "L"):                                       // GNU long name for the next member
                    longName = String(decoding: body.prefix { $0 != 0 }, as: UTF8.self)
                case UInt8(ascii: "x"):                                       // pax extended header
                    longName = paxPath(body)
                case 0, UInt8(ascii: "0"):
                    var key = name
                    while key.hasPrefix("./") { key.removeFirst(2) }
                    if wanted.contains(key) { found[key] = Data(body) }
                default:
                    break                                                     // directories, links, ...
                }
                offset = dataStart + (size + 511) / 512 * 512
            }
        }
        return found
    }

    private static func string(_ h: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> String {
        String(decoding: h[at..<at + n].prefix { $0 != 0 }, as: UTF8.self)
    }

    /// Octal (NUL/space terminated) or GNU base-256 (high bit set) number field; nil when
    /// unreadable, negative (base-256 sign bit) or too large for `Int`.
    private static func octal(_ h: UnsafeRawBufferPointer, _ at: Int, _ n: Int) -> Int? {
        let f = h[at..<at + n]
        if let first = f.first, first & 0x80 != 0 {
            guard first & 0x40 == 0 else { return nil }                  // negative
            var v = Int(first & 0x3F)
            for b in f.dropFirst() {
                guard v <= Int.max >> 8 else { return nil }
                v = v << 8 | Int(b)
            }
            return v
        }
        let digits = f.drop { $0 == 0x20 }.prefix { $0 >= 0x30 && $0 <= 0x37 }
        if digits.isEmpty { return f.allSatisfy { $0 == 0 || $0 == 0x20 } ? 0 : nil }
        return digits.reduce(0) { $0 << 3 | Int($1 - 0x30) }   // at most 12 digits: < 2^36
    }

    private static func checksumMatches(_ h: UnsafeRawBufferPointer) -> Bool {
        guard let stored = octal(h, 148, 8) else { return false }
        var sum = 0
        for i in 0..<512 { sum += (148..<156).contains(i) ? 0x20 : Int(h[i]) }
        return sum == stored
    }

    /// The "path" value of pax records "<len> path=<value>\n".
    private static func paxPath(_ body: UnsafeRawBufferPointer) -> String? {
        let text = String(decoding: body, as: UTF8.self)
        for line in text.split(separator: "\n") {
            guard let space = line.firstIndex(of: " ") else { continue }
            let record = line[line.index(after: space)...]
            if record.hasPrefix("path=") { return String(record.dropFirst(5)) }
        }
        return nil
    }
}
