// MARK: - MD5 (RFC 1321)
//
// Only to check downloads against the digests the data sets' publishers (and torchvision) list:
// MNIST and CIFAR publish MD5, not SHA-256. Integrity against transmission errors, not security.
// Reference: RFC 1321 §3; test vectors from its appendix A.5 (Tests/RecipesTests/DataTests.swift).
import Foundation

/// Streaming MD5.
///
/// ```swift
/// var h = MD5()
/// h.update(Data("abc".utf8))
/// h.hexDigest()                                   // "900150983cd24fb0d6963f7d28e17f72"
/// MD5.hex(of: try Data(contentsOf: url))          // one shot
/// ```
public struct MD5: Sendable {
    private var a0: UInt32 = 0x6745_2301, b0: UInt32 = 0xEFCD_AB89
    private var c0: UInt32 = 0x98BA_DCFE, d0: UInt32 = 0x1032_5476
    private var pending: [UInt8] = []          // < 64 bytes not yet compressed
    private var length: UInt64 = 0             // message length in bytes

    public init() {}

    // Per-round shift amounts and the sine table K[i] = floor(2^32 * |sin(i + 1)|).
    private static let shifts: [UInt32] = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                           5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
                                           4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                           6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21]
    private static let sines: [UInt32] = (0..<64).map { UInt32(truncatingIfNeeded: Int64((abs(sin(Double($0 + 1))) * 4_294_967_296).rounded(.down))) }

    public mutating func update(_ data: Data) {
        data.withUnsafeBytes { update(UnsafeRawBufferPointer($0)) }
    }

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        length &+= UInt64(bytes.count)
        var offset = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, bytes.count)
            pending.append(contentsOf: bytes[0..<take])
            offset = take
            if pending.count == 64 {
                pending.withUnsafeBytes { compress(block: $0.baseAddress!) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        while bytes.count - offset >= 64 {
            compress(block: bytes.baseAddress! + offset)
            offset += 64
        }
        if offset < bytes.count { pending.append(contentsOf: bytes[offset...]) }
    }

    /// The 16-byte digest (the hasher can keep being used; finishing works on a copy).
    public func digest() -> [UInt8] {
        var copy = self
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        tail += [UInt8](repeating: 0, count: (55 - Int(length % 64) + 64) % 64)
        for i in 0..<8 { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        let savedLength = copy.length
        tail.withUnsafeBytes { copy.update($0) }
        precondition(copy.pending.isEmpty && copy.length == savedLength + UInt64(tail.count))
        var out: [UInt8] = []
        for word in [copy.a0, copy.b0, copy.c0, copy.d0] {
            for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt32(i)))) }
        }
        return out
    }

    public func hexDigest() -> String { digest().map { String(format: "%02x", $0) }.joined() }

    public static func hex(of data: Data) -> String {
        var h = MD5(); h.update(data); return h.hexDigest()
    }

    /// MD5 of a file, read in 4 MiB pieces.
    public static func hex(ofFile url: URL) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: url.path) else {
            throw DataError(.io, file: url.path, "cannot open file to compute its MD5")
        }
        defer { try? handle.close() }
        var h = MD5()
        while true {
            let piece: Data
            do { piece = try handle.read(upToCount: 4 << 20) ?? Data() } catch {
                throw DataError(.io, file: url.path, "read failed while computing MD5 (\(error.localizedDescription))")
            }
            if piece.isEmpty { break }
            h.update(piece)
        }
        return h.hexDigest()
    }

    // One 64-byte block (RFC 1321 §3.4), little-endian words.
    private mutating func compress(block: UnsafeRawPointer) {
        var a = a0, b = b0, c = c0, d = d0
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 16) { m in
            for i in 0..<16 { m[i] = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)) }
            Self.sines.withUnsafeBufferPointer { k in
                Self.shifts.withUnsafeBufferPointer { s in
                    for i in 0..<64 {
                        var f: UInt32
                        let g: Int
                        switch i >> 4 {
                        case 0: f = (b & c) | (~b & d); g = i
                        case 1: f = (d & b) | (~d & c); g = (5 &* i &+ 1) & 15
                        case 2: f = b ^ c ^ d; g = (3 &* i &+ 5) & 15
                        default: f = c ^ (b | ~d); g = (7 &* i) & 15
                        }
                        f = f &+ a &+ k[i] &+ m[g]
                        a = d; d = c; c = b
                        b = b &+ ((f << s[i]) | (f >> (32 - s[i])))
                    }
                }
            }
        }
        a0 &+= a; b0 &+= b; c0 &+= c; d0 &+= d
    }
}
