// MARK: - load_data: a data set split, optionally a per-class subset
//
//   - step: load_data
//     id: test
//     with: {dataset: mnist5k, split: test, per_class: 100, classes: [4, 7]}
//     # per_class: all keeps the whole split (useful when the value comes from a parameter)
//     # pad: 2         zero-pads every image by 2 pixels per side (28x28 → 32x32, for VGG's five pools)
//     # downsample: 2  averages 2x2 pixel blocks (28x28 → 14x14: a quarter of the work, for quick runs)
//
//   - step: load_data                 # your own files in the same formats, at any path
//     id: mine
//     with:
//       files: {format: idx, images: data/x-images-idx3-ubyte.gz, labels: data/x-labels-idx1-ubyte.gz, classes: names.txt}
//       # or {format: cifar10, batches: [a.bin, b.bin]} (cifar100: 2 label bytes, fine label used)
//
// Outputs a `Dataset` (images in [0, 1], NCHW). Shipped: mnist5k (offline). By download with a
// checksum into the data cache: mnist, cifar10, cifar100 (offline: an error saying what to put where).
import Foundation
import SIMDCore

struct LoadDataStep: RecipeStep {
    static let kind = "load_data"
    static let summary = "Load a data set split (mnist5k ships with the project; mnist, cifar10, cifar100 by download with checksum), or IDX / CIFAR-format files at given paths."
    static let keys = ["dataset", "split", "per_class", "classes", "limit", "pad", "downsample", "files"]
    static let fileKeys = ["format", "images", "labels", "batches", "classes"]

    /// `files:` — IDX or CIFAR binary files the recipe names.
    enum FileSet: Equatable {
        case idx(images: String, labels: String)
        case cifar(CIFAR.Variant, batches: [String])
    }

    let id: String
    let dataset: String
    /// Nil with `files:`.
    let split: DataSplit?
    let files: FileSet?
    /// With `files:`: a text file of class names, one a line.
    let classNamesFile: String?
    let perClass: Int?
    let classes: [Int]?
    let limit: Int?
    let pad: Int
    let downsample: Int
    var inputs: [StepInput] { [] }
    var output: StepValueType? { .dataset }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        if let f = try config.optional("files") {
            guard try config.optional("dataset") == nil, try config.optional("split") == nil else {
                throw config.error("give either `dataset:` and `split:`, or `files:`, not both")
            }
            try f.checkKeys(allowed: Self.fileKeys)
            let format = try f.string(at: "format")
            switch format {
            case "idx":
                files = .idx(images: try f.string(at: "images"), labels: try f.string(at: "labels"))
            case "cifar10", "cifar100":
                let b = try f.array(at: "batches").map { try $0.string }
                guard !b.isEmpty else { throw try f.node(at: "batches").error("batches must list at least one file") }
                files = .cifar(CIFAR.Variant(rawValue: format)!, batches: b)
            default:
                throw try f.node(at: "format").error("format must be idx, cifar10 or cifar100, got '\(format)'")
            }
            classNamesFile = try f.optional("classes")?.string
            dataset = "files"; split = nil
        } else {
            files = nil; classNamesFile = nil
            let d = try config.node(at: "dataset")
            dataset = try d.string
            let known = DataSets.names
            guard known.contains(dataset) else {
                var msg = "unknown dataset '\(dataset)'"
                if let n = nearestName(to: dataset, candidates: known) { msg += "; did you mean '\(n)'?" }
                throw d.error(msg + " (datasets: \(known.joined(separator: ", ")))")
            }
            let s = try config.node(at: "split")
            guard let sp = DataSplit(rawValue: try s.string) else { throw s.error("split must be train or test") }
            split = sp
        }
        // `per_class: all` (e.g. from a parameter) keeps the whole split.
        if let pc = try config.optional("per_class"), (try? pc.string) != "all" { perClass = try pc.int } else { perClass = nil }
        classes = try config.optional("classes")?.array.map { try $0.int }
        limit = try config.optional("limit")?.int
        pad = try config.int(at: "pad", default: 0, in: 0...256)
        downsample = try config.int(at: "downsample", default: 1, in: 1...256)
        if let p = perClass, p < 1 { throw config.error("per_class must be at least 1, got \(p)") }
    }

    /// A data set from the files the recipe names (each recorded with its SHA-256).
    func loadFiles(_ set: FileSet, _ ctx: RunContext) throws -> Dataset {
        func locate(_ p: String) throws -> URL {
            let u = try LoadModelStep.locate(p, recipe: ctx.recipe.file)
            ctx.recordInput(u)
            return u
        }
        switch set {
        case .idx(let images, let labels):
            let iu = try locate(images), lu = try locate(labels)
            let img = try IDX.readImages(iu), lab = try IDX.readLabels(lu)
            guard img.dims[0] == lab.count else {
                throw DataError(.format, file: lu.path, "\(lab.count) labels but \(iu.lastPathComponent) has \(img.dims[0]) images")
            }
            let count = try classNamesFile.map { try LoadModelStep.classNames(try locate($0), count: nil).count } ?? ((lab.max() ?? 0) + 1)
            let names = try classNamesFile.map { try LoadModelStep.classNames(try locate($0), count: count) } ?? (0..<count).map(String.init)
            return try Dataset(name: iu.lastPathComponent, bytes: img.bytes, shape: [img.dims[0], 1, img.dims[1], img.dims[2]],
                               labels: lab, classNames: names)
        case .cifar(let variant, let batches):
            let urls = try batches.map(locate)
            let names = try classNamesFile.map { try LoadModelStep.classNames(try locate($0), count: variant.classCount) }
            return try CIFAR.read(urls, variant: variant, classNames: names)
        }
    }

    func run(_ ctx: RunContext) throws {
        // EP_OFFLINE covers data sets as it covers weights and images: no downloader, so a missing
        // file is an error saying what to put where.
        var d: Dataset
        if let set = files { d = try loadFiles(set, ctx) }
        else { d = try DataSets.load(dataset, split: split!, fetch: downloadsDisabled() ? nil : WeightStore.fetchData) }
        // The files behind the data set: their SHA-256 goes into the manifest and into the cache
        // key of every step trained or evaluated on it.
        if files != nil {
            // Recorded as they were read.
        } else if dataset == "mnist5k" {
            if let dir = try? MNIST5k.defaultDirectory() {
                for f in [MNIST5k.imagesFile, MNIST5k.labelsFile] { ctx.recordInput(dir.appendingPathComponent(f)) }
            }
        } else if let source = DataCatalog.source(dataset) {
            let dir = DataCache().directory(for: source)
            for f in source.requiredFiles { ctx.recordInput(dir.appendingPathComponent(f)) }
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
        if downsample > 1 { d = try d.averagePooled(downsample) }
        if pad > 0 { d = try d.zeroPadded(pad) }
        ctx.store(.dataset(d))
        ctx.record("\(id).count", Double(d.count))
        ctx.markdown("Loaded **\(d.name)** (\(split?.rawValue ?? "files")): \(d.count) images of \(d.channels)×\(d.height)×\(d.width), classes \(d.classCounts.enumerated().filter { $0.element > 0 }.map { "\($0.offset)" }.joined(separator: ", ")).")
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

extension Dataset {
    /// Every image zero-padded by `p` pixels on each side: [N, C, H, W] → [N, C, H+2p, W+2p].
    func zeroPadded(_ p: Int) throws -> Dataset {
        let (n, c, h, w) = (count, channels, height, width)
        let oh = h + 2 * p, ow = w + 2 * p
        var y = Tensor(zeros: [n, c, oh, ow])
        images.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for plane in 0..<(n * c) { for i in 0..<h { for j in 0..<w {
                    yp[(plane * oh + i + p) * ow + j + p] = xp[(plane * h + i) * w + j]
                } } }
            }
        }
        return try Dataset(name: name, images: y, labels: labels, classNames: classNames, normalization: normalization)
    }
}

extension Dataset {
    /// Every image averaged over f x f pixel blocks: [N, C, H, W] → [N, C, H/f, W/f] (H, W multiples of f).
    func averagePooled(_ f: Int) throws -> Dataset {
        let (n, c, h, w) = (count, channels, height, width)
        guard h % f == 0, w % f == 0 else {
            throw RecipeError("load_data: downsample \(f) needs image sides that are multiples of \(f), got \(h)x\(w)")
        }
        let oh = h / f, ow = w / f
        var y = Tensor(zeros: [n, c, oh, ow])
        let inv = 1 / Float(f * f)
        images.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in
                for plane in 0..<(n * c) { for i in 0..<oh { for j in 0..<ow {
                    var s: Float = 0
                    for a in 0..<f { for b in 0..<f { s += xp[(plane * h + i * f + a) * w + j * f + b] } }
                    yp[(plane * oh + i) * ow + j] = s * inv
                } } }
            }
        }
        return try Dataset(name: name, images: y, labels: labels, classNames: classNames, normalization: normalization)
    }
}

// MARK: - Shape before loading (cost estimates of `runner plan`)

extension LoadDataStep: ShapeEstimating {
    /// The split's size from the data sets' published sizes, without reading them (a data set
    /// that is not downloaded yet can be planned for).
    var estimatedShape: DataShape {
        let (trainCount, testCount, classCount, side, channels): (Int, Int, Int, Int, Int)
        switch dataset {
        case "mnist5k": (trainCount, testCount, classCount, side, channels) = (4000, 1000, 10, 28, 1)
        case "mnist": (trainCount, testCount, classCount, side, channels) = (60000, 10000, 10, 28, 1)
        case "cifar100": (trainCount, testCount, classCount, side, channels) = (50000, 10000, 100, 32, 3)
        default: (trainCount, testCount, classCount, side, channels) = (50000, 10000, 10, 32, 3)
        }
        let total = split == .train ? trainCount : testCount
        let kept = classes?.count ?? classCount
        var count = perClass.map { min($0, total / classCount) * kept } ?? total * kept / classCount
        if let l = limit { count = min(count, l) }
        let s = max(1, (side + 2 * pad) / downsample)
        return DataShape(count: count, channels: channels, height: s, width: s, classes: classCount)
    }
}
