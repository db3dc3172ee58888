// MARK: - CIFAR-10 / CIFAR-100 (binary versions)
//
// Layout (https://www.cs.toronto.edu/~kriz/cifar.html): a file is a sequence of records,
//   CIFAR-10:  <1 byte label 0..9> <3072 pixel bytes>
//   CIFAR-100: <1 byte coarse label 0..19> <1 byte fine label 0..99> <3072 pixel bytes>
// The 3072 bytes are the red, green, blue planes of 32×32, each row-major: already CHW.
// CIFAR-100 is read with its fine labels (100 classes).
import Foundation

public enum CIFAR {
    public enum Variant: String, Sendable, CaseIterable {
        case cifar10, cifar100

        /// Label bytes before the pixels of each record.
        public var labelBytes: Int { self == .cifar10 ? 1 : 2 }
        public var classCount: Int { self == .cifar10 ? 10 : 100 }
        public var recordSize: Int { labelBytes + imageBytes }
        public var title: String { self == .cifar10 ? "CIFAR-10" : "CIFAR-100" }
        public var source: DataSetSource { self == .cifar10 ? DataCatalog.cifar10 : DataCatalog.cifar100 }
    }

    public static let imageBytes = 3 * 32 * 32

    /// Class names in label order (the published batches.meta.txt / fine_label_names.txt).
    public static let cifar10ClassNames = ["airplane", "automobile", "bird", "cat", "deer",
                                           "dog", "frog", "horse", "ship", "truck"]
    public static let cifar100ClassNames = [
        "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
        "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
        "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
        "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
        "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
        "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
        "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
        "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
        "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger", "tractor",
        "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
    ]

    // MARK: Reading

    /// Pixel bytes [N, 3, 32, 32] and labels (fine labels for CIFAR-100) of one binary file.
    public static func parse(_ data: Data, variant: Variant, file: String = "<memory>") throws -> (pixels: [UInt8], labels: [Int]) {
        let r = variant.recordSize
        guard !data.isEmpty else {
            throw DataError(.format, file: file, "empty file, expected \(variant.title) records of \(r) bytes")
        }
        guard data.count % r == 0 else {
            throw DataError(.format, file: file, "\(data.count) bytes is not a whole number of \(r)-byte \(variant.title) records "
                            + "(\(data.count / r) records + \(data.count % r) bytes): truncated, or not a \(variant.title) binary file")
        }
        let n = data.count / r
        var pixels = [UInt8](repeating: 0, count: n * imageBytes)
        var labels = [Int](repeating: 0, count: n)
        try data.withUnsafeBytes { (p: UnsafeRawBufferPointer) in
            try pixels.withUnsafeMutableBytes { out in
                for i in 0..<n {
                    let rec = i * r
                    let label = Int(p[rec + variant.labelBytes - 1])           // fine label is the last label byte
                    if variant == .cifar100, p[rec] >= 20 {
                        throw DataError(.format, file: file, "record \(i): coarse label \(p[rec]) is outside 0..19")
                    }
                    guard label < variant.classCount else {
                        throw DataError(.format, file: file, "record \(i): label \(label) is outside 0..\(variant.classCount - 1) for \(variant.title)")
                    }
                    labels[i] = label
                    out.baseAddress!.advanced(by: i * imageBytes)
                        .copyMemory(from: p.baseAddress! + rec + variant.labelBytes, byteCount: imageBytes)
                }
            }
        }
        return (pixels, labels)
    }

    /// Reads and concatenates binary files into one data set of [N, 3, 32, 32] in [0, 1].
    /// `expectedCount`, when given, is checked (10,000 per CIFAR-10 batch file, etc.).
    public static func read(_ files: [URL], variant: Variant, classNames: [String]? = nil,
                            expectedCount: Int? = nil, name: String? = nil) throws -> Dataset {
        var pixels: [UInt8] = [], labels: [Int] = []
        for f in files {
            let part = try parse(readFileData(f), variant: variant, file: f.path)
            pixels += part.pixels; labels += part.labels
        }
        let label = name ?? files.map(\.lastPathComponent).joined(separator: "+")
        if let expectedCount, labels.count != expectedCount {
            throw DataError(.format, file: files.map(\.path).joined(separator: ", "),
                            "\(labels.count) records, expected \(expectedCount) for \(label)")
        }
        let names = classNames ?? (variant == .cifar10 ? cifar10ClassNames : cifar100ClassNames)
        return try Dataset(name: label, bytes: pixels, shape: [labels.count, 3, 32, 32], labels: labels, classNames: names)
    }

    // MARK: From the cache

    /// The standard split from the data cache; fetched (with `fetch`) and unpacked when absent.
    ///
    /// ```swift
    /// let train = try CIFAR.load(.cifar10, split: .train)           // offline: DataError(.missing) with instructions
    /// ```
    public static func load(_ variant: Variant, split: DataSplit, cache: DataCache = DataCache(),
                            fetch: DataFetch? = nil) throws -> Dataset {
        let dir = try cache.prepare(variant.source, fetch: fetch)
        let files: [String], count: Int
        switch (variant, split) {
        case (.cifar10, .train): files = (1...5).map { "cifar-10-batches-bin/data_batch_\($0).bin" }; count = 50_000
        case (.cifar10, .test): files = ["cifar-10-batches-bin/test_batch.bin"]; count = 10_000
        case (.cifar100, .train): files = ["cifar-100-binary/train.bin"]; count = 50_000
        case (.cifar100, .test): files = ["cifar-100-binary/test.bin"]; count = 10_000
        }
        let metaFile = variant == .cifar10 ? "cifar-10-batches-bin/batches.meta.txt" : "cifar-100-binary/fine_label_names.txt"
        let names = classNames(in: dir.appendingPathComponent(metaFile), count: variant.classCount)
        return try read(files.map { dir.appendingPathComponent($0) }, variant: variant, classNames: names,
                        expectedCount: count, name: "\(variant.rawValue)-\(split.rawValue)")
    }

    /// Names from a one-per-line label file, when it exists and has exactly `count` names.
    static func classNames(in url: URL, count: Int) -> [String]? {
        guard let text = try? String(contentsOf: url, encoding: .utf8) else { return nil }
        let names = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return names.count == count ? names : nil
    }
}
