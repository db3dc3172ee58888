// MARK: - safetensors
//
// The format (huggingface/safetensors): 8-byte little-endian header length N, N bytes of JSON
//   { "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..} }
// then the raw little-endian tensor bytes; offsets are relative to the end of the header.
// Pure data: nothing in the file is executed. Used for weights, checkpoints and goldens.
import Foundation
import SIMDCore

/// Errors reading weights or golden files; each names the file and what was wrong.
public struct WeightsError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let message: String
    public init(file: String, _ message: String) { self.file = file; self.message = message }
    public var description: String { "\(file): \(message)" }
}

extension WeightsError {
    /// The bytes of a weights file (memory-mapped when safe); an unreadable file is an error naming it.
    static func contents(of url: URL) throws -> Data {
        do { return try Data(contentsOf: url, options: .mappedIfSafe) } catch {
            throw WeightsError(file: url.path, "cannot read file (\(error.localizedDescription))")
        }
    }
}

/// A named collection of tensors stored as safetensors.
///
/// ```swift
/// let st = try SafeTensors(contentsOf: URL(fileURLWithPath: "Tests/Fixtures/ops/relu.safetensors"))
/// let x = try st.tensor("x")
/// try SafeTensors.write(["y": y], metadata: ["source": "engine"], to: url)
/// ```
public struct SafeTensors {
    public private(set) var tensors: [String: Tensor] = [:]
    public private(set) var metadata: [String: String] = [:]
    /// Tensor names in file order (by data offset).
    public private(set) var names: [String] = []

    public init(tensors: [String: Tensor], metadata: [String: String] = [:]) {
        self.tensors = tensors; self.metadata = metadata; self.names = tensors.keys.sorted()
    }

    public init(contentsOf url: URL) throws {
        try self.init(data: try WeightsError.contents(of: url), file: url.path)
    }

    public init(data: Data, file: String = "<memory>") throws {
        guard data.count >= 8 else { throw WeightsError(file: file, "truncated: \(data.count) bytes, a safetensors file starts with an 8-byte header length") }
        let n = data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian
        guard n <= UInt64(data.count - 8) else { throw WeightsError(file: file, "truncated: header says \(n) bytes of JSON, file has \(data.count - 8) after the length") }
        let headerEnd = 8 + Int(n)
        guard let header = try? JSONSerialization.jsonObject(with: data.subdata(in: 8..<headerEnd)) as? [String: Any] else {
            throw WeightsError(file: file, "header is not a JSON object")
        }
        var entries: [(String, Int)] = []
        var spans: [(String, Int, Int)] = []
        for (name, value) in header {
            if name == "__metadata__" {
                if let m = value as? [String: String] { metadata = m }
                continue
            }
            guard let e = value as? [String: Any], let dtype = e["dtype"] as? String,
                  let shape = e["shape"] as? [Int], let off = e["data_offsets"] as? [Int], off.count == 2 else {
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': entry needs dtype, shape and data_offsets")
            }
            let shapeText = Limits.quoted("\(shape)")
            // Offsets are checked against the bytes after the header before any addition.
            let dataBytes = data.count - headerEnd
            guard off[0] >= 0, off[0] <= off[1], off[1] <= dataBytes else {
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': data_offsets \(off) lie outside the \(dataBytes) data bytes after the header (truncated?)")
            }
            let begin = headerEnd + off[0], end = headerEnd + off[1]
            guard shape.allSatisfy({ $0 >= 0 }) else {
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': shape \(shapeText) has a negative dimension")
            }
            guard let count = Limits.product(shape), count <= Limits.maxTensorElements else {
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': shape \(shapeText) has more than Limits.maxTensorElements = \(Limits.maxTensorElements) elements")
            }
            let width: Int
            switch dtype {
            case "F32": width = 4
            case "F64", "I64": width = 8
            case "F16", "BF16": width = 2
            default:
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': dtype \(Limits.quoted(dtype)) is not supported (F32, F16, BF16, F64, I64)")
            }
            guard end - begin == count * width else {   // count ≤ 2^31, width ≤ 8: no overflow
                throw WeightsError(file: file, "tensor '\(Limits.quoted(name))': shape \(shapeText) needs \(count * width) bytes of \(dtype), offsets give \(end - begin)")
            }
            let scalars: [Float] = data.subdata(in: begin..<end).withUnsafeBytes { raw in
                switch dtype {
                case "F32":
                    return (0..<count).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
                case "F64":
                    return (0..<count).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
                case "I64":
                    return (0..<count).map { Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self))) }
                default:
                    let bf16 = dtype == "BF16"
                    return (0..<count).map {
                        let bits = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))
                        return bf16 ? Float(bitPattern: UInt32(bits) << 16) : Float(Float16(bitPattern: bits))
                    }
                }
            }
            tensors[name] = Tensor(shape: shape, scalars: scalars)
            entries.append((name, off[0]))
            spans.append((name, off[0], off[1]))
        }
        // Tensors must not share bytes: overlapping data_offsets mean a corrupt or crafted header.
        spans.sort { $0.1 < $1.1 || ($0.1 == $1.1 && $0.2 < $1.2) }
        for i in spans.indices.dropFirst() where spans[i].1 < spans[i - 1].2 {
            throw WeightsError(file: file, "tensors '\(Limits.quoted(spans[i - 1].0))' \([spans[i - 1].1, spans[i - 1].2]) and '\(Limits.quoted(spans[i].0))' \([spans[i].1, spans[i].2]) have overlapping data_offsets")
        }
        names = entries.sorted { $0.1 < $1.1 || ($0.1 == $1.1 && $0.0 < $1.0) }.map(\.0)
    }

    /// The tensor called `name`; a missing name lists what the file has.
    public func tensor(_ name: String) throws -> Tensor {
        guard let t = tensors[name] else {
            throw WeightsError(file: metadata["__file__"] ?? "safetensors", "no tensor '\(name)'; has \(names.prefix(20).joined(separator: ", "))\(names.count > 20 ? ", …" : "")")
        }
        return t
    }

    /// Serialises F32 tensors (sorted by name) with optional string metadata.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let names = tensors.keys.sorted()
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while (8 + json.count) % 8 != 0 { json.append(0x20) }   // pad with spaces to 8-byte alignment
        var out = Data()
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for name in names {
            tensors[name]!.scalars.withUnsafeBufferPointer { bp in
                out.append(contentsOf: UnsafeRawBufferPointer(bp))   // little-endian host
            }
        }
        return out
    }

    /// Writes atomically: to a temporary file beside `url`, then renamed over it.
    public static func write(_ tensors: [String: Tensor], metadata: [String: String] = [:], to url: URL) throws {
        try AtomicFile.write(try encode(tensors, metadata: metadata), to: url)
    }
}
