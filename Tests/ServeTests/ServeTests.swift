// MARK: - runner serve: parameters, limits, queue, and the HTTP API of a server started in-process
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import XCTest
import Recipes
import SIMDCore
import Explore
import Serve

// MARK: - Parameters and image headers (no server)

final class ServeParameterTests: XCTestCase {
    func testDefaultsAndRoundTripThroughTheQuery() throws {
        let p = try ExploreParameters.parse([("model", "resnet50"), ("weights", "synthetic"), ("T", "0.03"), ("size", "64"), ("target", "9")])
        XCTAssertEqual(p.alpha, 20); XCTAssertEqual(p.eps, 100); XCTAssertEqual(p.image, .example("chelsea"))
        let pairs = p.query.split(separator: "&").map { kv -> (String, String) in
            let parts = kv.split(separator: "=", maxSplits: 1).map(String.init)
            return (parts[0], parts[1].removingPercentEncoding!)
        }
        XCTAssertEqual(try ExploreParameters.parse(pairs), p)
        XCTAssertEqual(try ExploreParameters.parse(QueryString.pairs(p.query)), p)
    }

    func testQueryStringSplitsAndDecodesLikeTheServer() {
        func pairs(_ q: String) -> [String] { QueryString.pairs(q).map { "\($0.0)|\($0.1)" } }
        XCTAssertEqual(pairs(""), [])
        XCTAssertEqual(pairs("a=1&b=x%3Ay&c"), ["a|1", "b|x:y", "c|"])
        XCTAssertEqual(pairs("a=&&b=1+2&"), ["a|", "|", "b|1+2"])        // '+' is not a space
        XCTAssertEqual(pairs("k%41=%4"), ["k%41|%4"])                      // keys as is; a cut escape keeps the value raw
        XCTAssertEqual(pairs("v=%zz&w=%e2%80%a6&x=a=b"), ["v|%zz", "w|\u{2026}", "x|a=b"])
        XCTAssertEqual(pairs("v=%ff"), ["v|\u{FFFD}"])
    }

    func testUnknownRepeatedAndOutOfRangeParametersNameTheKey() {
        func message(_ q: [(String, String)]) -> String {
            do { _ = try ExploreParameters.parse(q); return "accepted" } catch let e as ServeError {
                XCTAssertEqual(e.status, .badRequest); return e.message
            } catch { return "\(error)" }
        }
        XCTAssertTrue(message([("temperature", "1")]).hasPrefix("unknown parameter 'temperature'"))
        XCTAssertTrue(message([("T", "1"), ("T", "2")]).contains("given twice"))
        XCTAssertEqual(message([("T", "0")]), "T: 0 is out of range 0.001…100")
        XCTAssertEqual(message([("steps", "21")]), "steps: 21 is out of range 0…20")
        XCTAssertEqual(message([("target", "10")]), "target: 10 is out of range 0…9")
        XCTAssertTrue(message([("alpha", "nan")]).hasPrefix("alpha: expected a number"))
        XCTAssertTrue(message([("model", "resnet51")]).hasPrefix("model: expected one of mnist_cnn, resnet50"))
        XCTAssertTrue(message([("image", "example:chelsea")]).contains("mnist_cnn takes digit"))
        XCTAssertTrue(message([("image", "digit:1000")]).contains("out of range 0…999"))
        XCTAssertTrue(message([("image", "upload:../../etc")]).contains("16 hexadecimal digits"))
        XCTAssertTrue(message([("size", "64")]).contains("size is for the ImageNet models"))
    }

    func testImageHeaderReadsPNGAndJPEGSizesAndRefusesOtherBytes() throws {
        let png = try PNG.encode(RGBImage(width: 7, height: 3, fill: .white))
        XCTAssertEqual(try ImageHeader.read(png), ImageHeader(format: .png, width: 7, height: 3))
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("data/images/rocket.jpg"))
        XCTAssertEqual(try ImageHeader.read(jpeg), ImageHeader(format: .jpeg, width: 640, height: 427))
        XCTAssertThrowsError(try ImageHeader.read(Data("GIF89a not really".utf8))) {
            XCTAssertEqual(($0 as? ServeError)?.status, .unsupportedMediaType)
        }
    }

    func testAHugeImageIsRefusedFromItsHeaderBeforeDecoding() throws {
        let wb = Workbench(cacheDirectory: FileManager.default.temporaryDirectory)
        // A real 1x1 PNG whose IHDR is rewritten to 20000x20000 (the CRC is then wrong: the
        // refusal must come from the header check, before libpng sees it).
        var png = [UInt8](try PNG.encode(RGBImage(width: 1, height: 1, fill: .black)))
        for (offset, v) in [(16, 20000), (20, 20000)] {
            png[offset] = UInt8(v >> 24); png[offset + 1] = UInt8((v >> 16) & 255)
            png[offset + 2] = UInt8((v >> 8) & 255); png[offset + 3] = UInt8(v & 255)
        }
        XCTAssertThrowsError(try wb.storeUpload(Data(png))) {
            let e = $0 as? ServeError
            XCTAssertEqual(e?.status, .contentTooLarge)
            XCTAssertTrue(e?.message.contains("20000x20000") ?? false, "\($0)")
        }
        XCTAssertThrowsError(try wb.storeUpload(Data([0x89, 0x50, 0x4E, 0x47, 1, 2, 3]))) {
            XCTAssertEqual(($0 as? ServeError)?.status, .unsupportedMediaType)
        }
    }

    func testRecipeOfAViewIsAValidRecipe() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("serve-recipe-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var views = [try ExploreParameters.parse([("image", "digit:17"), ("target", "3"), ("gate", "normal_cdf"), ("T", "0.6")]),
                     try ExploreParameters.parse([("model", "vgg11_bn"), ("weights", "synthetic"), ("image", "example:rocket"), ("method", "gradient"), ("size", "96")])]
        views.append(try ExploreParameters.parse([("method", "smoothgrad")]))
        for (i, v) in views.enumerated() {
            let yaml = try Workbench.recipe(v)
            let url = dir.appendingPathComponent("view\(i).yaml")
            try yaml.write(to: url, atomically: true, encoding: .utf8)
            let r = try Recipe.load(url)
            XCTAssertEqual(r.title, "\(v.method.rawValue) and PGA toward class \(v.target) on \(v.model.rawValue)")
        }
        XCTAssertTrue(try Workbench.recipe(views[0]).contains("images: {indices: [17]}"))
        XCTAssertTrue(try Workbench.recipe(views[0]).contains("{method: excitation_pullback, gate: normal_cdf, temperature: 0.6}"))
        XCTAssertThrowsError(try Workbench.recipe(ExploreParameters.parse([("image", "upload:0123456789abcdef")])))
    }
}

// MARK: - Job queue: bounded, newer cancels older

final class ServeJobQueueTests: XCTestCase {
    /// Blocks a job until released (a semaphore the test owns).
    final class Gate: @unchecked Sendable {
        let started = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0)
    }

    func testANewerRequestOfTheSameClientCancelsTheOlderOne() async throws {
        let q = JobQueue(capacity: 4)
        let gate = Gate()
        let first = Task { try await q.run(client: "page-1") { job -> Int in
            gate.started.signal(); gate.release.wait(); try job.checkCancelled(); return 1 } }
        gate.started.wait()
        let second = Task { try await q.run(client: "page-1") { _ in 2 } }
        try await Task.sleep(nanoseconds: 50_000_000)   // the second is queued: it has cancelled the first
        gate.release.signal()
        do { _ = try await first.value; XCTFail("the older job finished instead of being cancelled") } catch let e as ServeError {
            XCTAssertEqual(e.status, .conflict)
        }
        let v = try await second.value
        XCTAssertEqual(v, 2)
        XCTAssertEqual(q.load, 0)
    }

    func testAFullQueueRefusesWith503AndRecovers() async throws {
        let q = JobQueue(capacity: 2)
        let gate = Gate()
        let a = Task { try await q.run(client: nil) { _ -> Int in gate.started.signal(); gate.release.wait(); return 1 } }
        gate.started.wait()
        let b = Task { try await q.run(client: nil) { _ in 2 } }
        while q.load < 2 { try await Task.sleep(nanoseconds: 5_000_000) }
        do { _ = try await q.run(client: nil) { _ in 3 }; XCTFail("a third job was accepted by a queue of 2") } catch let e as ServeError {
            XCTAssertEqual(e.status, .serviceUnavailable)
        }
        gate.release.signal()
        let (x, y) = (try await a.value, try await b.value)
        XCTAssertEqual(x + y, 3)
        let z = try await q.run(client: nil) { _ in 4 }
        XCTAssertEqual(z, 4)
    }
}

// MARK: - The HTTP API against a server started in-process on a free loopback port

final class ServeHTTPTests: XCTestCase {
    /// One server for the whole class (its MNIST CNN trains once, 1 epoch, in a temporary cache).
    final class Shared: @unchecked Sendable {
        static let shared = Shared()
        let lock = NSLock()
        var port: Int?
        var cache = FileManager.default.temporaryDirectory.appendingPathComponent("serve-tests-\(getpid())")

        func start() throws -> Int {
            lock.lock(); defer { lock.unlock() }
            if let p = port { return p }
            var config = ServeConfiguration()
            config.port = 0; config.cacheDirectory = cache; config.mnistEpochs = 1; config.queueCapacity = 4
            let ready = DispatchSemaphore(value: 0)
            let box = PortBox()
            let app = ServeApp.make(config) { p in box.port = p; ready.signal() }
            Task.detached { try? await app.run() }
            guard ready.wait(timeout: .now() + 60) == .success, let p = box.port else { throw ServeError(.internalError, "the server did not start") }
            port = p
            return p
        }
    }
    final class PortBox: @unchecked Sendable { var port: Int? }

    struct Reply { let status: Int; let body: Data
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: body)) as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    func request(_ path: String, method: String = "GET", body: Data? = nil) async throws -> Reply {
        let port = try Shared.shared.start()
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        r.timeoutInterval = 300
        if let body { r.httpBody = body }
        let (data, response) = try await URLSession.shared.data(for: r)
        return Reply(status: (response as! HTTPURLResponse).statusCode, body: data)
    }

    func testThePageAndTheModelList() async throws {
        let page = try await request("/")
        XCTAssertEqual(page.status, 200)
        XCTAssertTrue(page.text.contains("<html"), page.text)
        let models = try await request("/api/models")
        XCTAssertEqual(models.status, 200)
        let list = models.json["models"] as? [[String: Any]] ?? []
        XCTAssertEqual(list.first?["model"] as? String, "mnist_cnn")
        XCTAssertEqual(list.count, 7)   // the CNN, then 3 architectures x (torchvision, synthetic)
        for m in list where m["weights"] as? String == "torchvision" && m["available"] as? Bool == false {
            XCTAssertTrue((m["note"] as? String ?? "").contains("download https://download.pytorch.org/"), "\(m)")
        }
        let classes = try await request("/api/classes?model=resnet50&q=tabby")
        XCTAssertEqual((classes.json["classes"] as? [[String: Any]])?.first?["index"] as? Int, 281)
    }

    func testExplainOnTheMNISTCNNRaisesTheTargetLogit() async throws {
        // Digit 0 of the test split is a 0; ascend toward 8.
        let r = try await request("/api/explain?image=digit:0&target=8&steps=5&T=0.3")
        XCTAssertEqual(r.status, 200, r.text)
        let j = r.json
        let logits = j["target_logits"] as? [Double] ?? []
        XCTAssertEqual(logits.count, 6)
        XCTAssertGreaterThan(logits.last!, logits.first! + 1, "5 steps of ascent should raise the target logit: \(logits)")
        let before = j["top5_before"] as? [[String: Any]] ?? [], after = j["top5_after"] as? [[String: Any]] ?? []
        XCTAssertEqual(before.count, 5); XCTAssertEqual(after.count, 5)
        XCTAssertEqual(before.first?["index"] as? Int, 0, "the trained CNN should call test digit 0 a zero")
        let images = j["images"] as? [String: String] ?? [:]
        XCTAssertEqual(Set(images.keys), ["input", "map", "perturbed", "difference"])
        for (_, v) in images { XCTAssertTrue(v.hasPrefix("data:image/png;base64,")) }
        XCTAssertNotEqual(images["input"], images["perturbed"])
        XCTAssertLessThanOrEqual(j["perturbation_l2"] as? Double ?? 1e9, 7.0 + 1e-3)
    }

    func testTheMapIsTheSameWhetherTakenFromTheFirstStepOrComputedAlone() async throws {
        // With steps the map is the first ascent step's attribution; without, it is computed on
        // its own: both must be the same picture, and so must the top-5 before.
        for view in ["image=digit:5&target=2&method=gradient", "model=vgg11_bn&weights=synthetic&size=32&target=7&gate=normal_cdf&T=0.6"] {
            let zero = try await request("/api/explain?\(view)&steps=0"), five = try await request("/api/explain?\(view)&steps=5")
            XCTAssertEqual(zero.status, 200, zero.text); XCTAssertEqual(five.status, 200, five.text)
            XCTAssertEqual((zero.json["images"] as? [String: String])?["map"], (five.json["images"] as? [String: String])?["map"], view)
            XCTAssertEqual((zero.json["top5_before"] as? [[String: Any]])?.map { $0["index"] as? Int },
                           (five.json["top5_before"] as? [[String: Any]])?.map { $0["index"] as? Int })
            XCTAssertEqual((zero.json["target_logits"] as? [Double])?.count, 1)
        }
    }

    func testStripsOnASyntheticImageNetModel() async throws {
        let t = try await request("/api/strip?kind=temperature&model=resnet50&weights=synthetic&size=32&target=1")
        XCTAssertEqual(t.status, 200, t.text)
        let cells = t.json["cells"] as? [[String: Any]] ?? []
        XCTAssertEqual(cells.map { $0["title"] as? String ?? "" },
                       ["gradient (T → 0)", "T = 0.01", "T = 0.03", "T = 0.1", "T = 0.3", "T = 1", "T = 3", "T = 10"])
        // The maps differ with T (the strip's point); the logit at the clean image does not.
        XCTAssertNotEqual(cells[1]["image"] as? String, cells[7]["image"] as? String)
        let l0 = cells[0]["target_logit"] as? Double ?? 0
        for c in cells { XCTAssertEqual(c["target_logit"] as? Double ?? .nan, l0, accuracy: 1e-9) }
        let s = try await request("/api/strip?kind=steps&image=digit:3&target=2")
        XCTAssertEqual(s.status, 200, s.text)
        let sl = (s.json["cells"] as? [[String: Any]] ?? []).map { $0["target_logit"] as? Double ?? .nan }
        XCTAssertEqual(sl.count, 3)
        XCTAssertLessThan(sl[0], sl[2], "10 steps should raise the target logit more than 1: \(sl)")
    }

    func testUploadsAndTheirLimits() async throws {
        let png = try PNG.encode(RGBImage(width: 40, height: 30, fill: RGB(250, 250, 250)))
        let ok = try await request("/api/upload", method: "POST", body: png)
        XCTAssertEqual(ok.status, 200, ok.text)
        let id = ok.json["image"] as? String ?? ""
        XCTAssertTrue(id.hasPrefix("upload:"))
        let r = try await request("/api/explain?image=\(id)&target=1&steps=1")
        XCTAssertEqual(r.status, 200, r.text)
        let notImage = try await request("/api/upload", method: "POST", body: Data("hello, I am text".utf8))
        XCTAssertEqual(notImage.status, 415, notImage.text)
        let big = try await request("/api/upload", method: "POST", body: Data(count: (16 << 20) + 1))
        XCTAssertEqual(big.status, 413, big.text)
        let gone = try await request("/api/explain?image=upload:0123456789abcdef")
        XCTAssertEqual(gone.status, 404, gone.text)
    }

    func testBadRequestsGetClearErrors() async throws {
        let cases: [(String, Int, String)] = [
            ("/api/explain?bogus=1", 400, "unknown parameter 'bogus'"),
            ("/api/explain?T=-1", 400, "T: -1 is out of range"),
            ("/api/explain?steps=1000000", 400, "steps: 1000000 is out of range"),
            ("/api/strip?kind=colour", 400, "kind: expected one of temperature, steps"),
            ("/api/explain?model=resnet50&weights=torchvision&size=32", 0, ""),   // 200 with weights, 422 without
            ("/../Package.swift", 404, "no such page"),
            ("/%2e%2e/%2e%2e/etc/passwd", 404, "no such page"),
            ("/api/../../Package.swift", 404, "no such page"),
            ("/Sources/Serve/Server.swift", 404, "no such page"),
        ]
        for (path, status, text) in cases {
            let r = try await request(path)
            if status == 0 { XCTAssertTrue([200, 422].contains(r.status), "\(path): \(r.status) \(r.text)"); continue }
            XCTAssertEqual(r.status, status, "\(path): \(r.text)")
            XCTAssertTrue((r.json["error"] as? String ?? "").contains(text), "\(path): \(r.text)")
        }
        let post = try await request("/api/explain", method: "POST", body: Data())
        XCTAssertEqual(post.status, 405)
    }

    func testFiftyConcurrentRequestsGetAnswersOrA503AndTheServerStaysUp() async throws {
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for i in 0..<50 {
                group.addTask { try await self.request("/api/explain?image=digit:\(i)&target=\(i % 10)&steps=2").status }
            }
            var all: [Int] = []
            for try await s in group { all.append(s) }
            return all
        }
        XCTAssertEqual(statuses.count, 50)
        XCTAssertTrue(statuses.allSatisfy { $0 == 200 || $0 == 503 }, "\(statuses)")
        XCTAssertGreaterThan(statuses.filter { $0 == 200 }.count, 0)
        XCTAssertGreaterThan(statuses.filter { $0 == 503 }.count, 0, "a queue of 4 cannot hold 50")
        let after = try await request("/api/explain?image=digit:1&steps=1")
        XCTAssertEqual(after.status, 200)
    }
}
