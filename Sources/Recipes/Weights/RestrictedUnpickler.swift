// MARK: - Restricted unpickler
//
// A pickle virtual machine that only builds data. It mirrors torch.load(weights_only=True) for a
// state_dict of tensors: the only globals it will name are
//   collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter,
//   torch.<Dtype>Storage (FloatStorage, HalfStorage, BFloat16Storage, DoubleStorage, LongStorage, ...)
// and the only "calls" (REDUCE) it performs are fixed Swift constructions for the first three.
// Any other GLOBAL / STACK_GLOBAL (os.system, posix.system, builtins.eval, ...) stops the VM at once
// with an error naming the global and the file: nothing from the file is ever executed or imported.
// Objects that cannot exist in a state_dict (INST, OBJ, NEWOBJ, EXT*) are refused likewise.
//
// Opcodes: protocols 0–4 data opcodes (what torch.save writes with its default protocol 2, plus
// the protocol 4 framing ones for robustness).
import Foundation

/// A value on the pickle stack. Lists and dicts are reference boxes because pickle mutates them
/// after they are memoized (SETITEMS/APPENDS after BINPUT).
public indirect enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case bytes([UInt8])
    case tuple([PickleValue])
    case list(PickleList)
    case dict(PickleDict)
    case global(module: String, name: String)                 // an allowed global, not yet applied
    case storage(TorchStorageRef)                            // from persistent_load
    case tensor(TorchTensorRef)                              // from _rebuild_tensor_v2

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .bytes: return "bytes"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict: return "dict"
        case .global(let m, let n): return "\(m).\(n)"
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }
}

public final class PickleList {
    public internal(set) var items: [PickleValue] = []
    /// Nesting depth (1 + the deepest item) and whether the list sits inside another object;
    /// see `RestrictedUnpickler.insert`.
    var depth = 1, placed = false
    init(_ i: [PickleValue] = []) { items = i }
}

/// Insertion-ordered dictionary (pickled dicts and OrderedDicts keep their order).
public final class PickleDict {
    public private(set) var keys: [PickleValue] = []
    public private(set) var values: [PickleValue] = []
    private var position: [String: Int] = [:]
    var depth = 1, placed = false
    func set(_ k: PickleValue, _ v: PickleValue) {
        let id = Self.identity(k)
        if let id, let i = position[id] { values[i] = v; return }
        if let id { position[id] = keys.count }
        keys.append(k); values.append(v)
    }

    private static func identity(_ k: PickleValue) -> String? {
        switch k {
        case .string(let s): return "s:" + s
        case .int(let i): return "i:\(i)"
        case .bool(let b): return "b:\(b)"
        default: return nil
        }
    }
}

/// persistent_load(('storage', storage_type, key, location, numel)) → a reference to `<archive>/data/<key>`.
public struct TorchStorageRef {
    public let dtype: TorchDType
    public let key: String
    public let location: String
    public let count: Int          // elements
    public init(dtype: TorchDType, key: String, location: String, count: Int) {
        self.dtype = dtype; self.key = key; self.location = location; self.count = count
    }
}

/// torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
public struct TorchTensorRef {
    public let storage: TorchStorageRef
    public let offset: Int
    public let shape: [Int]
    public let strides: [Int]
    public init(storage: TorchStorageRef, offset: Int, shape: [Int], strides: [Int]) {
        self.storage = storage; self.offset = offset; self.shape = shape; self.strides = strides
    }
}

/// Element types of torch storages, with the legacy storage class name torch.save writes.
public enum TorchDType: String, CaseIterable, Sendable {
    case float32 = "FloatStorage", float64 = "DoubleStorage", float16 = "HalfStorage", bfloat16 = "BFloat16Storage"
    case int64 = "LongStorage", int32 = "IntStorage", int16 = "ShortStorage", int8 = "CharStorage"
    case uint8 = "ByteStorage", bool = "BoolStorage"

    public var byteSize: Int {
        switch self {
        case .float64, .int64: return 8
        case .float32, .int32: return 4
        case .float16, .bfloat16, .int16: return 2
        case .int8, .uint8, .bool: return 1
        }
    }
}

/// The pickle VM. `load()` returns the top-level object; it throws on any global or opcode outside
/// the allow-list (see the file comment).
///
/// ```swift
/// let value = try RestrictedUnpickler(data: pkl, file: "resnet50-0676ba61.pth").load()
/// ```
public struct RestrictedUnpickler {
    public let file: String
    private let bytes: [UInt8]
    private var pos = 0
    // Each stack and memo value carries its nesting depth (lists and dicts keep their own, as
    // they grow), so no object deeper than Limits.maxPickleDepth is ever built.
    private var stack: [PickleValue] = []
    private var depths: [Int] = []
    private var marks: [Int] = []
    private var memo: [Int: (value: PickleValue, depth: Int)] = [:]

    /// The globals a state_dict may name (module, name).
    public static let allowedGlobals: Set<String> = {
        var s: Set<String> = ["collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"]
        for d in TorchDType.allCases { s.insert("torch.\(d.rawValue)") }
        return s
    }()

    public init(data: Data, file: String) { self.bytes = [UInt8](data); self.file = file }

    private func fail(_ msg: String) -> WeightsError { WeightsError(file: file, "pickle: \(msg)") }

    // MARK: Reading primitives

    private mutating func take(_ n: Int) throws -> ArraySlice<UInt8> {
        guard n >= 0, n <= bytes.count - pos else { throw fail("truncated data.pkl (need \(n) bytes at \(pos), have \(bytes.count - pos))") }
        defer { pos += n }
        return bytes[pos..<(pos + n)]
    }
    private mutating func u8() throws -> Int { Int(try take(1).first!) }
    private mutating func le(_ n: Int) throws -> UInt64 {
        var v: UInt64 = 0
        for (i, b) in try take(n).enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
        return v
    }
    private mutating func line() throws -> String {
        guard let nl = bytes[pos...].firstIndex(of: 0x0a) else { throw fail("truncated data.pkl (unterminated line at \(pos))") }
        defer { pos = nl + 1 }
        return String(decoding: bytes[pos..<nl], as: UTF8.self)
    }
    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast() else { throw fail("stack underflow at byte \(pos)") }
        depths.removeLast()
        return v
    }
    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast(), m <= stack.count else { throw fail("MARK missing at byte \(pos)") }
        let items = Array(stack[m...]); stack.removeSubrange(m...); depths.removeSubrange(m...)
        return items
    }
    private mutating func popMarkWithDepths() throws -> ([PickleValue], [Int]) {
        guard let m = marks.last, m <= stack.count else { throw fail("MARK missing at byte \(pos)") }
        let d = Array(depths[m...])
        return (try popMark(), d)
    }
    private mutating func push(_ v: PickleValue, depth: Int = 0) { stack.append(v); depths.append(depth) }

    // MARK: Nesting: bounded depth, no cycles

    /// The nesting depth of `v` as stored with it (`d`), or a list's or dict's own.
    private func nesting(_ v: PickleValue, _ d: Int) -> Int {
        switch v {
        case .list(let l): return l.depth
        case .dict(let x): return x.depth
        default: return d
        }
    }

    /// 1 + the deepest of `items`, which now sit inside a new object: lists and dicts among them
    /// are marked placed (no longer modifiable). Deeper than Limits.maxPickleDepth is an error —
    /// freeing a million-deep object recurses a million frames.
    private func enclose(_ items: [PickleValue], depths d: [Int]? = nil) throws -> Int {
        var deepest = 0
        for (i, v) in items.enumerated() {
            switch v {
            case .list(let l): l.placed = true
            case .dict(let x): x.placed = true
            default: break
            }
            deepest = max(deepest, nesting(v, d?[i] ?? 0))
        }
        guard deepest < Limits.maxPickleDepth else {
            throw fail("objects nested deeper than Limits.maxPickleDepth = \(Limits.maxPickleDepth) at byte \(pos)")
        }
        return deepest + 1
    }

    /// Appends to a list or sets in a dict. Only a container not yet inside another may change
    /// (Python's pickler fills each one before placing it): so depths stay true and no object
    /// can come to contain itself (a cycle would never be freed).
    private func insert(_ items: [PickleValue], depths d: [Int], into target: PickleValue) throws {
        let (placed, targetDepth): (Bool, Int)
        switch target {
        case .list(let l): (placed, targetDepth) = (l.placed, l.depth)
        case .dict(let x): (placed, targetDepth) = (x.placed, x.depth)
        default: throw fail("insert into a \(target.kind)")
        }
        guard !placed else { throw fail("a \(target.kind) changed after it was placed in another object (byte \(pos)); not supported") }
        for v in items {
            switch (v, target) {
            case (.list(let a), .list(let b)) where a === b: throw fail("a list that contains itself (byte \(pos)); not supported")
            case (.dict(let a), .dict(let b)) where a === b: throw fail("a dict that contains itself (byte \(pos)); not supported")
            default: break
            }
        }
        let depth = max(targetDepth, try enclose(items, depths: d))
        switch target {
        case .list(let l): l.depth = depth
        case .dict(let x): x.depth = depth
        default: break
        }
    }
    private mutating func top() throws -> PickleValue {
        guard let v = stack.last else { throw fail("stack underflow at byte \(pos)") }
        return v
    }

    // MARK: Globals: refuse before anything else happens

    private func global(_ module: String, _ name: String) throws -> PickleValue {
        let full = "\(module).\(name)"
        guard Self.allowedGlobals.contains(full) else {
            let hint = (module == "posix" || module == "nt") ? " (os.\(name))" : ""
            throw fail("refused global '\(full)'\(hint): only tensors and OrderedDicts may appear in a weights file (like torch.load(weights_only=True)); nothing was executed")
        }
        return .global(module: module, name: name)
    }

    // MARK: The VM

    public mutating func load() throws -> PickleValue { try run() }

    private mutating func run() throws -> PickleValue {
        while true {
            let op = try u8()
            switch op {
            case 0x80: _ = try u8()                                        // PROTO
            case 0x95: _ = try le(8)                                       // FRAME
            case 0x2e: return try pop()                                    // STOP '.'
            // Constants
            case 0x4e: push(.none)                                 // NONE 'N'
            case 0x88: push(.bool(true))                           // NEWTRUE
            case 0x89: push(.bool(false))                          // NEWFALSE
            case 0x4b: push(.int(try u8()))                        // BININT1 'K'
            case 0x4d: push(.int(Int(try le(2))))                  // BININT2 'M'
            case 0x4a: push(.int(Int(Int32(truncatingIfNeeded: try le(4)))))   // BININT 'J'
            case 0x8a:                                                     // LONG1
                let n = try u8()
                guard n <= 8 else { throw fail("LONG1 of \(n) bytes is too large for a tensor size or offset") }
                let raw = Array(try take(n))
                var v: UInt64 = 0
                for (i, b) in raw.enumerated() { v |= UInt64(b) << (8 * UInt64(i)) }
                if n > 0 && n < 8 && raw[n - 1] & 0x80 != 0 { v |= ~UInt64(0) << (8 * UInt64(n)) }   // sign-extend
                push(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                                     // BINFLOAT 'G' (big-endian double)
                var v: UInt64 = 0
                for b in try take(8) { v = (v << 8) | UInt64(b) }
                push(.float(Double(bitPattern: v)))
            case 0x49:                                                     // INT 'I' (protocol 0)
                let s = try line()
                if s == "01" { push(.bool(true)) } else if s == "00" { push(.bool(false)) }
                else if let v = Int(s) { push(.int(v)) } else { throw fail("bad INT '\(s)'") }
            // Strings
            case 0x58: let n = Int(try le(4)); push(.string(String(decoding: try take(n), as: UTF8.self)))   // BINUNICODE 'X'
            case 0x8c: let n = try u8(); push(.string(String(decoding: try take(n), as: UTF8.self)))         // SHORT_BINUNICODE
            case 0x8d: let n = Int(clamping: try le(8)); push(.string(String(decoding: try take(n), as: UTF8.self)))   // BINUNICODE8
            case 0x55: let n = try u8(); push(.string(String(decoding: try take(n), as: UTF8.self)))         // SHORT_BINSTRING 'U'
            case 0x54: let n = Int(try le(4)); push(.string(String(decoding: try take(n), as: UTF8.self)))   // BINSTRING 'T'
            case 0x43: let n = try u8(); push(.bytes(Array(try take(n))))                                      // SHORT_BINBYTES 'C'
            case 0x42: let n = Int(try le(4)); push(.bytes(Array(try take(n))))                                // BINBYTES 'B'
            // Containers
            case 0x29: push(.tuple([]), depth: 1)                          // EMPTY_TUPLE ')'
            case 0x5d: push(.list(PickleList()))                           // EMPTY_LIST ']'
            case 0x7d: push(.dict(PickleDict()))                           // EMPTY_DICT '}'
            case 0x28: marks.append(stack.count)                           // MARK '('
            case 0x74:                                                     // TUPLE 't'
                let (items, d) = try popMarkWithDepths()
                push(.tuple(items), depth: try enclose(items, depths: d))
            case 0x85, 0x86, 0x87:                                         // TUPLE1, TUPLE2, TUPLE3
                let n = Int(op) - 0x84
                guard stack.count >= n else { throw fail("stack underflow at byte \(pos)") }
                let items = Array(stack.suffix(n)), d = Array(depths.suffix(n))
                stack.removeLast(n); depths.removeLast(n)
                push(.tuple(items), depth: try enclose(items, depths: d))
            case 0x6c:                                                     // LIST 'l'
                let (items, d) = try popMarkWithDepths()
                let l = PickleList()
                try insert(items, depths: d, into: .list(l)); l.items = items
                push(.list(l))
            case 0x64:                                                     // DICT 'd'
                let (items, d) = try popMarkWithDepths()
                let x = PickleDict()
                try insert(items, depths: d, into: .dict(x)); try setItems(x, items)
                push(.dict(x))
            case 0x61:                                                     // APPEND 'a'
                let d = depths.last ?? 0, v = try pop()
                guard case .list(let l) = try top() else { throw fail("APPEND to a non-list") }
                try insert([v], depths: [d], into: .list(l))
                l.items.append(v)
            case 0x65:                                                     // APPENDS 'e'
                let (items, d) = try popMarkWithDepths()
                guard case .list(let l) = try top() else { throw fail("APPENDS to a non-list") }
                try insert(items, depths: d, into: .list(l))
                l.items += items
            case 0x73:                                                     // SETITEM 's'
                let dv = depths.last ?? 0, v = try pop()
                let dk = depths.last ?? 0, k = try pop()
                guard case .dict(let x) = try top() else { throw fail("SETITEM on a \(try top().kind), expected a dict") }
                try insert([k, v], depths: [dk, dv], into: .dict(x))
                x.set(k, v)
            case 0x75:                                                     // SETITEMS 'u'
                let (items, d) = try popMarkWithDepths()
                guard case .dict(let x) = try top() else { throw fail("SETITEMS on a \(try top().kind), expected a dict") }
                try insert(items, depths: d, into: .dict(x))
                try setItems(x, items)
            // Stack and memo
            case 0x30: _ = try pop()                                       // POP '0'
            case 0x31: _ = try popMark()                                   // POP_MARK '1'
            case 0x32: let v = try top(); push(v, depth: depths.last ?? 0)   // DUP '2'
            case 0x71: memo[try u8()] = (try top(), depths.last ?? 0)      // BINPUT 'q'
            case 0x72: memo[Int(clamping: try le(4))] = (try top(), depths.last ?? 0)   // LONG_BINPUT 'r'
            case 0x94: memo[memo.count] = (try top(), depths.last ?? 0)    // MEMOIZE
            case 0x70: guard let i = Int(try line()) else { throw fail("bad PUT") }; memo[i] = (try top(), depths.last ?? 0)   // PUT 'p'
            case 0x68, 0x6a, 0x67:                                         // BINGET 'h', LONG_BINGET 'j', GET 'g'
                let i: Int
                if op == 0x68 { i = try u8() } else if op == 0x6a { i = Int(try le(4)) }
                else { guard let v = Int(try line()) else { throw fail("bad GET") }; i = v }
                guard let m = memo[i] else { throw fail("memo key \(i) missing") }
                push(m.value, depth: m.depth)
            // Globals, persistent ids, reduce, build
            case 0x63:                                                     // GLOBAL 'c': "module\nname\n"
                let module = try line(), name = try line()
                push(try global(module, name))
            case 0x93:                                                     // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                push(try global(module, name))
            case 0x51: push(try persistentLoad(try pop()))                 // BINPERSID 'Q'
            case 0x50: throw fail("text persistent ids (PERSID) are not used by torch.save; refused")
            case 0x52:                                                     // REDUCE 'R'
                let d = depths.last ?? 0, args = try pop(), callable = try pop()
                let v = try reduce(callable, args)
                if case .dict(let x) = v { x.depth = max(d, 1) }            // OrderedDict(list): no deeper than its argument
                push(v, depth: d)
            case 0x62:                                                     // BUILD 'b'
                let state = try pop()
                // torch state_dicts carry `_metadata` (module versions) as OrderedDict state: data only, ignored.
                guard case .dict = try top() else { throw fail("BUILD (setstate) on a \(try top().kind) with \(state.kind) state; only OrderedDict state is allowed") }
            case 0x81, 0x92, 0x69, 0x6f, 0x82, 0x83, 0x84:                 // NEWOBJ, NEWOBJ_EX, INST, OBJ, EXT1/2/4
                throw fail("opcode 0x\(String(op, radix: 16)) builds arbitrary objects; refused (weights files contain only tensors)")
            default:
                throw fail("unsupported opcode 0x\(String(op, radix: 16)) at byte \(pos - 1)")
            }
        }
    }

    private func setItems(_ d: PickleDict, _ items: [PickleValue]) throws {
        guard items.count % 2 == 0 else { throw fail("SETITEMS with an odd number of items") }
        for i in stride(from: 0, to: items.count, by: 2) { d.set(items[i], items[i + 1]) }
    }

    // ('storage', torch.FloatStorage, '0', 'cpu', 24)
    private func persistentLoad(_ pid: PickleValue) throws -> PickleValue {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0],
              case .global("torch", let typeName) = t[1], case .string(let key) = t[2],
              case .string(let location) = t[3], case .int(let count) = t[4] else {
            throw fail("persistent id is not ('storage', <torch storage type>, key, location, numel)")
        }
        guard let dtype = TorchDType(rawValue: typeName) else { throw fail("storage type torch.\(typeName) is not supported") }
        guard count >= 0 else { throw fail("storage '\(key)' has negative size \(count)") }
        return .storage(TorchStorageRef(dtype: dtype, key: key, location: location, count: count))
    }

    private func ints(_ v: PickleValue, _ what: String) throws -> [Int] {
        guard case .tuple(let t) = v else { throw fail("\(what) must be a tuple of ints, got \(v.kind)") }
        return try t.map { guard case .int(let i) = $0 else { throw fail("\(what) must be a tuple of ints") }; return i }
    }

    private func reduce(_ callable: PickleValue, _ args: PickleValue) throws -> PickleValue {
        guard case .global(let module, let name) = callable else { throw fail("REDUCE on a \(callable.kind), not a global") }
        guard case .tuple(let a) = args else { throw fail("REDUCE args for \(module).\(name) are a \(args.kind), not a tuple") }
        switch "\(module).\(name)" {
        case "collections.OrderedDict":
            let d = PickleDict()
            if let first = a.first {                          // OrderedDict([(k, v), ...])
                guard a.count == 1, case .list(let l) = first else { throw fail("OrderedDict(...) with unsupported arguments") }
                for item in l.items {
                    guard case .tuple(let kv) = item, kv.count == 2 else { throw fail("OrderedDict item is not a (key, value) pair") }
                    d.set(kv[0], kv[1])
                }
            }
            return .dict(d)
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1] else {
                throw fail("_rebuild_tensor_v2 expects (storage, offset, size, stride, ...)")
            }
            let shape = try ints(a[2], "tensor size"), strides = try ints(a[3], "tensor stride")
            guard shape.count == strides.count else { throw fail("tensor size \(shape) and stride \(strides) differ in rank") }
            return .tensor(TorchTensorRef(storage: s, offset: offset, shape: shape, strides: strides))
        case "torch._utils._rebuild_parameter":
            guard let data = a.first, case .tensor = data else { throw fail("_rebuild_parameter expects a tensor") }
            return data
        default:
            throw fail("calling \(module).\(name) is not allowed")   // e.g. a storage type used as a function
        }
    }
}
