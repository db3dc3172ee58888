// MARK: - Writing a state_dict as torch.save does
//
// The layout `TorchCheckpoint` reads and `torch.load` (also with weights_only=True) accepts:
//   a ZIP of STORED entries  <archive>/data.pkl, <archive>/byteorder ("little"),
//   <archive>/data/<k> (one float32 storage per tensor, little-endian), <archive>/version ("3"),
//   each entry's data aligned to 64 bytes by an "FB" padding extra field, as PyTorchStreamWriter does;
//   data.pkl a protocol-2 pickle of
//   OrderedDict([(name, torch._utils._rebuild_tensor_v2(
//       persistent_id(('storage', torch.FloatStorage, '<k>', 'cpu', numel)),
//       0, size, contiguous strides, False, OrderedDict())), ...])
// Only the opcodes and globals the restricted unpickler accepts are written.
import Foundation
import SIMDCore

extension TorchCheckpoint {
    /// A torch.save-style checkpoint of `tensors` (float32, contiguous), in the order given.
    ///
    /// ```swift
    /// try AtomicFile.write(TorchCheckpoint.encode(net.parameterShapes.map { ($0.0, net.parameters[$0.0]!) }), to: url)
    /// ```
    public static func encode(_ tensors: [(String, Tensor)], archive: String = "archive") -> Data {
        var zip = ZipWriter()
        zip.add("\(archive)/data.pkl", pickle(tensors))
        zip.add("\(archive)/byteorder", Data("little".utf8))
        for (k, (_, t)) in tensors.enumerated() {
            var raw = [UInt8](repeating: 0, count: t.count * 4)
            for (i, v) in t.scalars.enumerated() {
                let b = v.bitPattern.littleEndian
                for j in 0..<4 { raw[4 * i + j] = UInt8(truncatingIfNeeded: b >> (8 * UInt32(j))) }
            }
            zip.add("\(archive)/data/\(k)", Data(raw))
        }
        zip.add("\(archive)/version", Data("3\n".utf8))
        return zip.finish()
    }

    /// Writes `tensors` as a `.pth` checkpoint (atomically).
    public static func write(_ tensors: [(String, Tensor)], to url: URL) throws {
        try AtomicFile.write(encode(tensors, archive: url.deletingPathExtension().lastPathComponent), to: url)
    }

    // MARK: The pickle

    static func pickle(_ tensors: [(String, Tensor)]) -> Data {
        var p: [UInt8] = [0x80, 0x02]                                   // PROTO 2
        func global(_ module: String, _ name: String) { p += [0x63] + Array("\(module)\n\(name)\n".utf8) }
        func string(_ s: String) {                                     // BINUNICODE
            let b = Array(s.utf8)
            p += [0x58] + le32(b.count) + b
        }
        func int(_ v: Int) { p += [0x4a] + le32(v) }                    // BININT (values < 2^31 here)
        func ints(_ xs: [Int]) { p.append(0x28); xs.forEach(int); p.append(0x74) }   // MARK … TUPLE
        global("collections", "OrderedDict"); p += [0x29, 0x52]         // OrderedDict()
        p.append(0x28)                                                  // MARK
        for (k, (name, t)) in tensors.enumerated() {
            string(name)
            global("torch._utils", "_rebuild_tensor_v2")
            p.append(0x28)                                              // MARK (args)
            p.append(0x28)                                              // MARK (persistent id)
            string("storage"); global("torch", "FloatStorage"); string(String(k)); string("cpu"); int(t.count)
            p += [0x74, 0x51]                                           // TUPLE, BINPERSID
            int(0)                                                      // storage offset
            ints(t.shape)
            var strides = [Int](repeating: 1, count: t.shape.count)
            for i in stride(from: t.shape.count - 2, through: 0, by: -1) { strides[i] = strides[i + 1] * t.shape[i + 1] }
            ints(strides)
            p.append(0x89)                                              // requires_grad False
            global("collections", "OrderedDict"); p += [0x29, 0x52]     // backward hooks
            p += [0x74, 0x52]                                           // TUPLE, REDUCE
        }
        p += [0x75, 0x2e]                                               // SETITEMS, STOP
        return Data(p)
    }

    static func le32(_ v: Int) -> [UInt8] {
        let u = UInt32(truncatingIfNeeded: v)
        return (0..<4).map { UInt8(truncatingIfNeeded: u >> (8 * UInt32($0))) }
    }
}

// MARK: - ZIP writer (stored entries, 64-byte aligned data)

/// Builds a ZIP of uncompressed entries in memory (archives below 4 GiB; no ZIP64).
struct ZipWriter {
    private var out = Data()
    private var central = Data()
    private var count = 0

    static func le16(_ v: Int) -> [UInt8] { [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8)] }

    mutating func add(_ name: String, _ data: Data) {
        let nameBytes = Array(name.utf8)
        let crc = CRC32.checksum(data)
        let offset = out.count
        // Pad with an "FB" extra field so the data start on a 64-byte boundary (as torch.save does).
        let headerEnd = offset + 30 + nameBytes.count + 4
        let pad = (64 - headerEnd % 64) % 64
        let extra = Array("FB".utf8) + Self.le16(pad) + [UInt8](repeating: 0x5A, count: pad)
        var local: [UInt8] = TorchCheckpoint.le32(0x0403_4b50) + Self.le16(20) + Self.le16(0) + Self.le16(0)
        local += Self.le16(0) + Self.le16(0x21)                          // mod time, date (1980-01-01)
        local += TorchCheckpoint.le32(Int(crc)) + TorchCheckpoint.le32(data.count) + TorchCheckpoint.le32(data.count)
        local += Self.le16(nameBytes.count) + Self.le16(extra.count) + nameBytes + extra
        out.append(contentsOf: local)
        out.append(data)
        var c: [UInt8] = TorchCheckpoint.le32(0x0201_4b50) + Self.le16(20) + Self.le16(20) + Self.le16(0) + Self.le16(0)
        c += Self.le16(0) + Self.le16(0x21)
        c += TorchCheckpoint.le32(Int(crc)) + TorchCheckpoint.le32(data.count) + TorchCheckpoint.le32(data.count)
        c += Self.le16(nameBytes.count) + Self.le16(0) + Self.le16(0) + Self.le16(0) + Self.le16(0)
        c += TorchCheckpoint.le32(0) + TorchCheckpoint.le32(offset) + nameBytes
        central.append(contentsOf: c)
        count += 1
    }

    mutating func finish() -> Data {
        let start = out.count
        out.append(central)
        var end: [UInt8] = TorchCheckpoint.le32(0x0605_4b50) + Self.le16(0) + Self.le16(0)
        end += Self.le16(count) + Self.le16(count) + TorchCheckpoint.le32(central.count) + TorchCheckpoint.le32(start) + Self.le16(0)
        out.append(contentsOf: end)
        return out
    }
}
