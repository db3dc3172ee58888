// MARK: - PyTorch .pth checkpoints (torch.save zip format), loaded as data only
//
// A torch.save file (PyTorch >= 1.6) is a ZIP of stored entries:
//   <archive>/data.pkl          pickle (protocol 2) of the state_dict; tensors refer to storages by key
//   <archive>/data/<key>        raw little-endian bytes of storage <key>
//   <archive>/version, <archive>/byteorder (newer files), <archive>/.data/serialization_id
// The pickle is run by `RestrictedUnpickler` (allow-list like torch.load(weights_only=True)), then each
// tensor is gathered from its storage with its offset/sizes/strides into a contiguous Float32 Tensor.
// Dtypes: float32 as is; float16, bfloat16, float64, int64/32/16/8, uint8, bool converted to Float
// (int64 buffers such as `num_batches_tracked` become Float; exact below 2^24).
// The older non-zip format (torch < 1.6, or _use_new_zipfile_serialization=False) is refused.
import Foundation
import SIMDCore

/// A state_dict read from a `.pth` file, in the file's (pickle) order.
///
/// ```swift
/// let ckpt = try TorchCheckpoint(contentsOf: URL(fileURLWithPath: "resnet50-0676ba61.pth"))
/// let w = ckpt.tensors["conv1.weight"]!   // [64, 3, 7, 7]
/// for name in ckpt.names { print(name, ckpt.tensors[name]!.shape) }
/// ```
public struct TorchCheckpoint {
    public let file: String
    /// Tensor names in the order the state_dict lists them.
    public private(set) var names: [String] = []
    public private(set) var tensors: [String: Tensor] = [:]

    public init(contentsOf url: URL) throws {
        try self.init(data: try WeightsError.contents(of: url), file: url.path)
    }

    public init(data: Data, file: String = "<memory>") throws {
        self.file = file
        try Self.checkFormat(data, file: file)
        let zip = try ZipArchive(data: data, file: file)

        // <archive>/data.pkl: the archive folder name is whatever torch.save chose (file stem or "archive").
        let pickles = zip.names.filter { $0 == "data.pkl" || ($0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2) }
        guard pickles.count == 1, let pkl = pickles.first else {
            throw WeightsError(file: file, pickles.isEmpty ? "ZIP has no <archive>/data.pkl: not a torch.save checkpoint (entries: \(zip.names.prefix(5).joined(separator: ", ")))"
                                                            : "ZIP has several data.pkl entries (\(pickles.joined(separator: ", "))); expected one")
        }
        let prefix = String(pkl.dropLast("data.pkl".count))
        if let bo = zip.entry(prefix + "byteorder") {
            let order = String(decoding: try zip.data(for: bo), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard order == "little" else { throw WeightsError(file: file, "byteorder is '\(order)'; only little-endian checkpoints are supported") }
        }

        var vm = RestrictedUnpickler(data: try zip.data(for: pkl), file: file)
        let root = try vm.load()
        guard case .dict(let dict) = root else {
            throw WeightsError(file: file, "top-level object is a \(root.kind); expected a state_dict (a dict of tensors)")
        }

        var storages: [String: Data] = [:]          // storages shared between tensors are read once
        for (k, v) in Swift.zip(dict.keys, dict.values) {
            guard case .string(let name) = k else { throw WeightsError(file: file, "state_dict key is a \(k.kind), expected a string") }
            guard case .tensor(let ref) = v else {
                let hint: String
                if case .dict = v { hint = " (a nested dict: the tensors are probably under this key; extract checkpoint['\(name)'] and save it alone)" } else { hint = "" }
                throw WeightsError(file: file, "state_dict entry '\(name)' is a \(v.kind), not a tensor\(hint)")
            }
            let raw: Data
            if let s = storages[ref.storage.key] { raw = s } else {
                let entry = prefix + "data/" + ref.storage.key
                guard zip.entry(entry) != nil else { throw WeightsError(file: file, "tensor '\(name)': storage entry '\(entry)' is missing") }
                raw = try zip.data(for: entry)
                storages[ref.storage.key] = raw
            }
            guard tensors[name] == nil else { throw WeightsError(file: file, "duplicate tensor name '\(name)'") }
            tensors[name] = try Self.gather(ref, raw: raw, name: name, file: file)
            names.append(name)
        }
    }

    // MARK: Format detection

    static func checkFormat(_ data: Data, file: String) throws {
        let head = [UInt8](data.prefix(8))
        if head.starts(with: [0x50, 0x4b, 0x03, 0x04]) || head.starts(with: [0x50, 0x4b, 0x05, 0x06]) { return }
        if head.first == 0x80 {
            throw WeightsError(file: file, "legacy (non-zip) PyTorch format, written by torch < 1.6 or with _use_new_zipfile_serialization=False; not supported. Re-save it with a recent PyTorch (torch.save(torch.load(f, weights_only=True), f2)) or convert it to safetensors")
        }
        if data.count > 262, [UInt8](data[(data.startIndex + 257)..<(data.startIndex + 262)]) == Array("ustar".utf8) {
            throw WeightsError(file: file, "legacy tar-based PyTorch format (torch < 0.4); not supported. Re-save it with a recent PyTorch or convert it to safetensors")
        }
        throw WeightsError(file: file, "not a ZIP file (torch.save checkpoint expected; file starts with \(head.prefix(4).map { String(format: "%02x", $0) }.joined(separator: " ")))")
    }

    // MARK: Gather a (possibly strided) view into a contiguous Float32 tensor

    /// Copies the view `ref` (offset, sizes, strides) of a little-endian storage into a contiguous Float tensor;
    /// throws if the view reaches past the storage.
    public static func gather(_ ref: TorchTensorRef, raw: Data, name: String, file: String) throws -> Tensor {
        let s = ref.storage
        func err(_ m: String) -> WeightsError { WeightsError(file: file, "tensor '\(name)': \(m)") }
        let (needed, tooBig) = s.count.multipliedReportingOverflow(by: s.dtype.byteSize)
        guard !tooBig, raw.count >= needed else {
            throw err("storage '\(s.key)' has \(raw.count) bytes; \(s.count) × \(s.dtype) needs \(tooBig ? "more than Int.max" : "\(needed)") (truncated?)")
        }
        guard ref.shape.allSatisfy({ $0 >= 0 }), ref.offset >= 0 else { throw err("negative size \(ref.shape) or offset \(ref.offset)") }
        // Element count and the largest storage index touched, with overflow checks (values come from the file).
        var count = 1, last = ref.offset, overflow = false
        for (n, st) in Swift.zip(ref.shape, ref.strides) {
            let (c, o1) = count.multipliedReportingOverflow(by: n); count = c; overflow = overflow || o1
            if n > 0 {
                guard st >= 0 || n == 1 else { throw err("negative stride \(ref.strides)") }
                let (d, o2) = (n - 1).multipliedReportingOverflow(by: Swift.max(st, 0))
                let (l, o3) = last.addingReportingOverflow(d); last = l; overflow = overflow || o2 || o3
            }
        }
        guard !overflow, count <= Limits.maxTensorElements else {
            throw err("size \(Limits.quoted("\(ref.shape)")) has more than Limits.maxTensorElements = \(Limits.maxTensorElements) elements")
        }
        // Each element comes from the file: a view that repeats storage elements (stride 0, as
        // expand() makes) could otherwise ask for far more memory than the file holds.
        guard count <= s.count else {
            throw err("view of \(count) elements is larger than its storage '\(s.key)' of \(s.count) (an expand()ed tensor? save tensor.contiguous())")
        }
        if count > 0 && last >= s.count {
            throw err("view out of bounds: offset \(ref.offset), size \(ref.shape), stride \(ref.strides) reaches element \(last), storage '\(s.key)' has \(s.count)")
        }
        if count == 0 { return Tensor(shape: ref.shape, scalars: []) }

        return raw.withUnsafeBytes { (buf: UnsafeRawBufferPointer) -> Tensor in
            let read = reader(s.dtype, buf)
            var out = [Float](repeating: 0, count: count)
            let contiguous = ref.strides == rowMajorStrides(ref.shape)
            out.withUnsafeMutableBufferPointer { o in
                if contiguous && s.dtype == .float32 {            // the common case: one copy (little-endian host)
                    UnsafeMutableRawPointer(o.baseAddress!).copyMemory(from: buf.baseAddress! + 4 * ref.offset, byteCount: 4 * count)
                } else if contiguous {
                    for i in 0..<count { o[i] = read(ref.offset + i) }
                } else {
                    // Odometer over the index space; `src` follows the strides.
                    let rank = ref.shape.count
                    var idx = [Int](repeating: 0, count: rank)
                    var src = ref.offset
                    for i in 0..<count {
                        o[i] = read(src)
                        var d = rank - 1
                        while d >= 0 {
                            idx[d] += 1; src += ref.strides[d]
                            if idx[d] < ref.shape[d] { break }
                            src -= ref.strides[d] * ref.shape[d]; idx[d] = 0; d -= 1
                        }
                    }
                }
            }
            return Tensor(shape: ref.shape, scalars: out)
        }
    }

    static func rowMajorStrides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count), acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// Element `i` of a little-endian storage as Float.
    static func reader(_ dtype: TorchDType, _ b: UnsafeRawBufferPointer) -> (Int) -> Float {
        switch dtype {
        case .float32: return { Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .float64: return { Float(Double(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        case .float16: return { Float(Float16(bitPattern: UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self)))) }
        case .bfloat16: return { Float(bitPattern: UInt32(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        case .int64: return { Float(Int64(littleEndian: b.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
        case .int32: return { Float(Int32(littleEndian: b.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        case .int16: return { Float(Int16(littleEndian: b.loadUnaligned(fromByteOffset: 2 * $0, as: Int16.self))) }
        case .int8: return { Float(b.load(fromByteOffset: $0, as: Int8.self)) }
        case .uint8, .bool: return { Float(b[$0]) }
        }
    }
}
