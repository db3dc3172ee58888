// MARK: - YAML parser (libyaml event API → YAMLNode)
//
// libyaml tokenises and checks the syntax; we compose its events into a tree with a stack.
// Composition rules of our own: one document per file, mapping keys are scalars and unique,
// aliases (*name) resolve to a copy of the anchored node (&name). Expansion is capped so an
// alias bomb is an error, not an out-of-memory; nesting depth and node count are capped as the
// events stream in (Limits.maxYAMLDepth, Limits.maxYAMLNodes), before a huge tree is built.
// YAML 1.1 merge keys (`<<`) are plain keys.
import Foundation
import CYAML

/// Parses YAML text into a `YAMLNode` tree.
///
/// ```swift
/// let root = try YAMLParser.parse("a: 1\nb: [x, y]\n", file: "inline.yaml")
/// try root.int(at: "a")            // 1
/// try root.array(at: "b").count    // 2
/// ```
public enum YAMLParser {
    /// Upper bound on nodes created by alias expansion (each alias copies its anchor's subtree).
    public static let maxAliasExpansion = 100_000

    public static func parse(file url: URL) throws -> YAMLNode {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw YAMLError(file: url.path, mark: YAMLMark(line: 1, column: 1), "cannot read file (\(error.localizedDescription))")
        }
        return try parse(data, file: url.path)
    }

    public static func parse(_ text: String, file: String = "<string>") throws -> YAMLNode {
        try parse(Data(text.utf8), file: file)
    }

    public static func parse(_ data: Data, file: String) throws -> YAMLNode {
        var composer = Composer(file: file)
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) != 0 else {
            throw YAMLError(file: file, mark: YAMLMark(line: 1, column: 1), "libyaml could not initialise a parser (out of memory)")
        }
        defer { yaml_parser_delete(&parser) }
        // libyaml reads from the buffer as it goes, so the whole parse happens inside this closure.
        try data.withUnsafeBytes { raw in
            let empty: [UInt8] = [0]
            try empty.withUnsafeBufferPointer { zero in
                let base = raw.bindMemory(to: UInt8.self).baseAddress ?? zero.baseAddress!
                yaml_parser_set_input_string(&parser, base, raw.count)
                var event = yaml_event_t()
                while true {
                    guard yaml_parser_parse(&parser, &event) != 0 else { throw syntaxError(&parser, file: file) }
                    defer { yaml_event_delete(&event) }
                    if event.type == YAML_STREAM_END_EVENT { break }
                    try composer.handle(&event)
                }
            }
        }
        return composer.root ?? YAMLNode(.scalar("", style: .plain), mark: YAMLMark(line: 1, column: 1), file: file)
    }

    /// libyaml's problem text at its 1-based mark, with the context ("while scanning a quoted
    /// scalar") and where that context started.
    static func syntaxError(_ p: inout yaml_parser_t, file: String) -> YAMLError {
        let problem = p.problem.map { String(cString: $0) } ?? "unknown libyaml error"
        if p.error == YAML_READER_ERROR {
            return YAMLError(file: file, mark: YAMLMark(line: 1, column: 1),
                             "cannot read input at byte offset \(p.problem_offset): \(problem)")
        }
        if p.error == YAML_MEMORY_ERROR {
            return YAMLError(file: file, mark: YAMLMark(line: 1, column: 1), "libyaml ran out of memory")
        }
        let mark = YAMLMark(line: Int(p.problem_mark.line) + 1, column: Int(p.problem_mark.column) + 1)
        var msg = problem
        if let ctx = p.context.map({ String(cString: $0) }) {
            msg += " \(ctx) (started at \(p.context_mark.line + 1):\(p.context_mark.column + 1))"
        }
        return YAMLError(file: file, mark: mark, msg)
    }
}

// MARK: - Composer

/// Turns the event stream into nodes. One open frame per sequence/mapping being built.
struct Composer {
    struct Frame {
        var isMapping: Bool
        var mark: YAMLMark
        var path: String
        var anchor: String?
        var tag: String?
        var items: [YAMLNode] = []
        var pairs: [(key: YAMLNode, value: YAMLNode)] = []
        var pendingKey: YAMLNode? = nil
        var keyMarks: [String: YAMLMark] = [:]
    }

    let file: String
    var stack: [Frame] = []
    var anchors: [String: YAMLNode] = [:]
    var root: YAMLNode? = nil
    var documents = 0
    var expanded = 0
    /// Nodes started so far (scalars, aliases, sequences, mappings), checked against Limits.maxYAMLNodes.
    var nodes = 0

    init(file: String) { self.file = file }

    static func string(_ p: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        p.map { String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self)) }
    }

    /// Path of the node about to start, from the enclosing frame.
    func childPath() -> String {
        guard let top = stack.last else { return "" }
        if top.isMapping {
            guard let key = top.pendingKey else { return top.path }   // this node is a key
            let k = key.scalarText ?? "?"
            return top.path.isEmpty ? k : "\(top.path).\(k)"
        }
        return "\(top.path)[\(top.items.count)]"
    }

    mutating func handle(_ e: inout yaml_event_t) throws {
        let mark = YAMLMark(line: Int(e.start_mark.line) + 1, column: Int(e.start_mark.column) + 1)
        switch e.type {
        case YAML_SCALAR_EVENT, YAML_ALIAS_EVENT, YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
            nodes += 1
            if nodes > Limits.maxYAMLNodes {
                throw YAMLError(file: file, mark: mark, "more than Limits.maxYAMLNodes = \(Limits.maxYAMLNodes) YAML nodes")
            }
            if e.type == YAML_SEQUENCE_START_EVENT || e.type == YAML_MAPPING_START_EVENT, stack.count >= Limits.maxYAMLDepth {
                throw YAMLError(file: file, mark: mark, "YAML nested deeper than Limits.maxYAMLDepth = \(Limits.maxYAMLDepth) levels")
            }
        default: break
        }
        switch e.type {
        case YAML_DOCUMENT_START_EVENT:
            documents += 1
            if documents > 1 { throw YAMLError(file: file, mark: mark, "expected a single YAML document, found a second one ('---')") }
        case YAML_SCALAR_EVENT:
            let s = e.data.scalar
            let text = String(decoding: UnsafeBufferPointer(start: s.value, count: Int(s.length)), as: UTF8.self)
            let style: YAMLNode.ScalarStyle
            switch s.style {
            case YAML_SINGLE_QUOTED_SCALAR_STYLE: style = .singleQuoted
            case YAML_DOUBLE_QUOTED_SCALAR_STYLE: style = .doubleQuoted
            case YAML_LITERAL_SCALAR_STYLE: style = .literal
            case YAML_FOLDED_SCALAR_STYLE: style = .folded
            default: style = .plain
            }
            let node = YAMLNode(.scalar(text, style: style), mark: mark, file: file, path: childPath(), tag: Composer.string(s.tag))
            try add(node, anchor: Composer.string(s.anchor))
        case YAML_ALIAS_EVENT:
            let name = Composer.string(e.data.alias.anchor) ?? ""
            guard let target = anchors[name] else {
                throw YAMLError(file: file, mark: mark, "unknown alias '*\(Limits.quoted(name))' (no anchor '&\(Limits.quoted(name))' before it)")
            }
            var copy = target
            try repath(&copy, to: childPath(), at: mark)
            try add(copy, anchor: nil)
        case YAML_SEQUENCE_START_EVENT:
            let s = e.data.sequence_start
            stack.append(Frame(isMapping: false, mark: mark, path: childPath(), anchor: Composer.string(s.anchor), tag: Composer.string(s.tag)))
        case YAML_MAPPING_START_EVENT:
            let s = e.data.mapping_start
            stack.append(Frame(isMapping: true, mark: mark, path: childPath(), anchor: Composer.string(s.anchor), tag: Composer.string(s.tag)))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            let f = stack.removeLast()
            let kind: YAMLNode.Kind = f.isMapping ? .mapping(f.pairs) : .sequence(f.items)
            try add(YAMLNode(kind, mark: f.mark, file: file, path: f.path, tag: f.tag), anchor: f.anchor)
        default:
            break   // stream start, document end: nothing to build
        }
    }

    /// Places a finished node in its parent (or as the root) and records its anchor.
    mutating func add(_ node: YAMLNode, anchor: String?) throws {
        if let a = anchor { anchors[a] = node }
        guard !stack.isEmpty else { root = node; return }
        let i = stack.count - 1
        if !stack[i].isMapping { stack[i].items.append(node); return }
        guard let key = stack[i].pendingKey else {
            guard let k = node.scalarText else {
                throw YAMLError(file: file, mark: node.mark, "mapping keys must be scalars, found \(node.kindDescription)")
            }
            if let first = stack[i].keyMarks[k] {
                let inMap = stack[i].path.isEmpty ? "" : " in '\(Limits.quoted(stack[i].path))'"
                throw YAMLError(file: file, mark: node.mark, "duplicate key '\(Limits.quoted(k))'\(inMap) (first defined at line \(first.line), column \(first.column))")
            }
            stack[i].keyMarks[k] = node.mark
            stack[i].pendingKey = node
            return
        }
        stack[i].pairs.append((key, node))
        stack[i].pendingKey = nil
    }

    /// Gives an alias copy the key paths of where it is used, counting expanded nodes.
    mutating func repath(_ n: inout YAMLNode, to path: String, at mark: YAMLMark) throws {
        expanded += 1
        nodes += 1
        if nodes > Limits.maxYAMLNodes {
            throw YAMLError(file: file, mark: mark, "more than Limits.maxYAMLNodes = \(Limits.maxYAMLNodes) YAML nodes (aliases included)")
        }
        if expanded > YAMLParser.maxAliasExpansion {
            throw YAMLError(file: file, mark: mark, "aliases expand to more than \(YAMLParser.maxAliasExpansion) nodes (alias bomb?)")
        }
        n.path = path
        switch n.kind {
        case .scalar: break
        case .sequence(var items):
            for j in items.indices { try repath(&items[j], to: "\(path)[\(j)]", at: mark) }
            n.kind = .sequence(items)
        case .mapping(var pairs):
            for j in pairs.indices {
                let k = pairs[j].key.scalarText ?? "?"
                try repath(&pairs[j].value, to: path.isEmpty ? k : "\(path).\(k)", at: mark)
            }
            n.kind = .mapping(pairs)
        }
    }
}
