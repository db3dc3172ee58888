// MARK: - load_data: a data set split, optionally a per-class subset
//
//   - step: load_data
//     id: test
//     with: {dataset: mnist5k, split: test, per_class: 100, classes: [4, 7]}
//
// Outputs a `Dataset` (images in [0, 1], NCHW). Shipped: mnist5k (offline). By download with a
// checksum into the data cache: mnist, cifar10, cifar100 (offline: an error saying what to put where).
import Foundation
import SIMDCore

struct LoadDataStep: RecipeStep {
    static let kind = "load_data"
    static let summary = "Load a data set split (mnist5k ships with the project; mnist, cifar10, cifar100 by download with checksum)."
    static let keys = ["dataset", "split", "per_class", "classes", "limit"]

    let id: String
    let dataset: String
    let split: DataSplit
    let perClass: Int?
    let classes: [Int]?
    let limit: Int?
    var dependencies: [String] { [] }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        let d = try config.node(at: "dataset")
        dataset = try d.string
        let known = ["mnist5k", "mnist", "cifar10", "cifar100"]
        guard known.contains(dataset) else {
            var msg = "unknown dataset '\(dataset)'"
            if let n = nearestName(to: dataset, candidates: known) { msg += "; did you mean '\(n)'?" }
            throw d.error(msg + " (datasets: \(known.joined(separator: ", ")))")
        }
        let s = try config.node(at: "split")
        guard let sp = DataSplit(rawValue: try s.string) else { throw s.error("split must be train or test") }
        split = sp
        perClass = try config.optional("per_class")?.int
        classes = try config.optional("classes")?.array.map { try $0.int }
        limit = try config.optional("limit")?.int
        if let p = perClass, p < 1 { throw config.error("per_class must be at least 1, got \(p)") }
    }

    func run(_ ctx: RunContext) throws {
        var d = try DataSets.load(dataset, split: split, fetch: WeightStore.fetchData)
        if let dir = try? MNIST5k.defaultDirectory(), dataset == "mnist5k" {
            for f in ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"] { ctx.recordInput(dir.appendingPathComponent(f)) }
        }
        if let p = perClass { d = try d.take(perClass: p, classes: classes) }
        else if let c = classes {
            // Every image of these classes (take(perClass:) would demand that many of each).
            if let bad = c.first(where: { $0 < 0 || $0 >= d.classNames.count }) {
                throw RecipeError("classes: class \(bad) is outside 0..<\(d.classNames.count) for \(d.name)")
            }
            let all = d
            d = all.subset(all.labels.indices.filter { c.contains(all.labels[$0]) })
        }
        if let l = limit { d = d.prefix(l) }
        ctx.store(d, as: id)
        ctx.record("\(id).count", Double(d.count))
        ctx.markdown("Loaded **\(d.name)** (\(split.rawValue)): \(d.count) images of \(d.channels)×\(d.height)×\(d.width), classes \(d.classCounts.enumerated().filter { $0.element > 0 }.map { "\($0.offset)" }.joined(separator: ", ")).")
    }
}

// MARK: - Picking example images

/// Which images of a data set a step shows: `per_class: 1` (the first of each class, in class
/// order), `classes: [0, 4]` (the first of each listed class), `indices: [3, 17]`, or `all` (in order).
struct ImageSelection {
    enum Rule { case perClass(Int), classes([Int]), indices([Int]), all }
    let rule: Rule
    static let keys = ["per_class", "classes", "indices"]

    init(_ node: YAMLNode?, default d: Rule = .perClass(1)) throws {
        guard let n = node else { rule = d; return }
        if case .scalar = n.kind {
            guard try n.string == "all" else { throw n.error("images must be `all` or a mapping with per_class, classes or indices") }
            rule = .all; return
        }
        try n.checkKeys(allowed: ImageSelection.keys)
        if let i = try n.optional("indices") { rule = .indices(try i.array.map { try $0.int }) }
        else if let c = try n.optional("classes") { rule = .classes(try c.array.map { try $0.int }) }
        else { rule = .perClass(try n.int(at: "per_class", default: 1)) }
    }

    /// Indices into `d`, in display order.
    func indices(in d: Dataset) throws -> [Int] {
        switch rule {
        case .all:
            return Array(0..<d.count)
        case .indices(let ix):
            for i in ix where i < 0 || i >= d.count { throw RecipeError("image index \(i) is out of range for \(d.name) (\(d.count) images)") }
            return ix
        case .classes(let cs):
            return try cs.map { c in
                guard let i = d.labels.firstIndex(of: c) else { throw RecipeError("\(d.name) has no image of class \(c)") }
                return i
            }
        case .perClass(let k):
            let classes = Array(Set(d.labels)).sorted()
            return classes.flatMap { c in d.labels.enumerated().filter { $0.element == c }.prefix(k).map(\.offset) }
        }
    }
}

extension Dataset {
    /// Images `ix` mapped to the models' input space [-1, 1] (paper A: x = 2·rgb01 − 1).
    func modelInput(_ ix: [Int]) -> Tensor {
        var x = images(at: ix)
        for i in 0..<x.count { x.scalars[i] = 2 * x.scalars[i] - 1 }
        return x
    }

    func className(_ c: Int) -> String { c < classNames.count ? classNames[c] : String(c) }
}
