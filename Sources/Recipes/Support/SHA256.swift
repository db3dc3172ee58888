// MARK: - SHA-256 (FIPS 180-4)
//
// Our own implementation so weight files can be verified without a crypto dependency.
// Streaming: `update` any number of times, then `finalize`. Files are hashed in 1 MiB chunks, so
// a ~100 MB checkpoint never has to be in memory at once.
//
// Per 64-byte block: message schedule W[0..63] (W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]),
// then 64 rounds over the working variables a..h; the block's result is added to the state H.
import Foundation

/// Streaming SHA-256.
///
/// ```swift
/// var h = SHA256()
/// h.update(Data("ab".utf8)); h.update(Data("c".utf8))
/// h.finalizeHex()   // "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// try SHA256.hexDigest(ofFile: URL(fileURLWithPath: "resnet50-0676ba61.pth"))
/// ```
public struct SHA256: Sendable {
    private var state: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
    private var pending: [UInt8] = []          // < 64 bytes waiting for a full block
    private var byteCount: UInt64 = 0

    public init() { pending.reserveCapacity(64) }

    // MARK: Round constants (first 32 bits of the fractional parts of the cube roots of the first 64 primes)
    private static let k: [UInt32] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
    ]

    // MARK: Streaming interface

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        byteCount &+= UInt64(bytes.count)
        var p = base, n = bytes.count
        if !pending.isEmpty {                                  // top up a partial block first
            let take = min(64 - pending.count, n)
            pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: take))
            p += take; n -= take
            if pending.count == 64 {
                pending.withUnsafeBytes { Self.compress(&state, blocks: $0.baseAddress!, count: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let full = n / 64
        if full > 0 { Self.compress(&state, blocks: p, count: full); p += 64 * full; n -= 64 * full }
        if n > 0 { pending.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n)) }
    }

    public mutating func update(_ data: Data) { data.withUnsafeBytes { update($0) } }
    public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    /// Pads (0x80, zeros, 64-bit big-endian bit length) and returns the 32-byte digest.
    public mutating func finalize() -> [UInt8] {
        let bitLength = byteCount &* 8
        var tail: [UInt8] = [0x80]
        let padZeros = (55 - Int(byteCount % 64) + 64) % 64
        tail += [UInt8](repeating: 0, count: padZeros)
        for i in (0..<8).reversed() { tail.append(UInt8(truncatingIfNeeded: bitLength >> (8 * UInt64(i)))) }
        let savedCount = byteCount
        update(tail)
        byteCount = savedCount
        precondition(pending.isEmpty, "SHA256: padding did not end on a block boundary")
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for w in state { out += [UInt8(w >> 24), UInt8((w >> 16) & 0xff), UInt8((w >> 8) & 0xff), UInt8(w & 0xff)] }
        return out
    }

    public mutating func finalizeHex() -> String { Self.hex(finalize()) }

    // MARK: One-shot helpers

    public static func hex(_ digest: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var s: [UInt8] = []
        s.reserveCapacity(digest.count * 2)
        for b in digest { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 15)]) }
        return String(decoding: s, as: UTF8.self)
    }

    public static func hexDigest(of data: Data) -> String { var h = SHA256(); h.update(data); return h.finalizeHex() }

    /// Hashes a file in `chunkSize` pieces (never the whole file in memory).
    public static func hexDigest(ofFile url: URL, chunkSize: Int = 1 << 20) throws -> String {
        guard let fh = try? FileHandle(forReadingFrom: url) else {
            throw WeightsError(file: url.path, "cannot open file to compute its SHA-256")
        }
        defer { try? fh.close() }
        var h = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try fh.read(upToCount: chunkSize) } catch {
                throw WeightsError(file: url.path, "read error while hashing (\(error.localizedDescription))")
            }
            guard let c = chunk, !c.isEmpty else { break }
            h.update(c)
        }
        return h.finalizeHex()
    }

    // MARK: Compression function

    @inline(__always) private static func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }

    private static func compress(_ state: inout [UInt32], blocks: UnsafeRawPointer, count: Int) {
        k.withUnsafeBufferPointer { k in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
                var h0 = state[0], h1 = state[1], h2 = state[2], h3 = state[3]
                var h4 = state[4], h5 = state[5], h6 = state[6], h7 = state[7]
                for blk in 0..<count {
                    let p = blocks + 64 * blk
                    for t in 0..<16 { w[t] = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4 * t, as: UInt32.self)) }
                    for t in 16..<64 {
                        let x = w[t - 15], y = w[t - 2]
                        let s0 = rotr(x, 7) ^ rotr(x, 18) ^ (x >> 3)
                        let s1 = rotr(y, 17) ^ rotr(y, 19) ^ (y >> 10)
                        w[t] = w[t - 16] &+ s0 &+ w[t - 7] &+ s1
                    }
                    var a = h0, b = h1, c = h2, d = h3, e = h4, f = h5, g = h6, h = h7
                    for t in 0..<64 {
                        let S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)
                        let ch = (e & f) ^ (~e & g)
                        let t1 = h &+ S1 &+ ch &+ k[t] &+ w[t]
                        let S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)
                        let maj = (a & b) ^ (a & c) ^ (b & c)
                        let t2 = S0 &+ maj
                        h = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
                    }
                    h0 &+= a; h1 &+= b; h2 &+= c; h3 &+= d; h4 &+= e; h5 &+= f; h6 &+= g; h7 &+= h
                }
                state = [h0, h1, h2, h3, h4, h5, h6, h7]
            }
        }
    }
}
