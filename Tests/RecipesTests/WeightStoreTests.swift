import XCTest
import Foundation
import SIMDCore
import Recipes
#if canImport(Glibc)
import Glibc
#endif

/// A one-thread HTTP/1.1 server on 127.0.0.1 (ephemeral port) for download tests; no network needed.
/// Each route returns `body`; `declaredLength` (if set) is sent as Content-Length, so a larger value
/// than the body simulates a download cut short.
final class LocalHTTPServer: @unchecked Sendable {
    struct Route { var body: Data; var declaredLength: Int? = nil; var status = 200 }
    let port: UInt16
    private let fd: Int32
    private let routes: [String: Route]
    private(set) var requests = 0

    init(routes: [String: Route]) throws {
        self.routes = routes
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw NSError(domain: "server", code: 1) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let ok = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard ok == 0, listen(fd, 8) == 0 else { close(fd); throw NSError(domain: "server", code: 2) }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        self.fd = fd
        port = UInt16(bigEndian: addr.sin_port)
        let t = Thread { [self] in self.serve() }
        t.start()
    }

    func url(_ path: String) -> URL { URL(string: "http://127.0.0.1:\(port)\(path)")! }

    private func serve() {
        while true {
            let c = accept(fd, nil, nil)
            if c < 0 { return }                       // listening socket closed by stop()
            requests += 1
            var request = [UInt8]()
            var buf = [UInt8](repeating: 0, count: 4096)
            while !request.ends(with: Array("\r\n\r\n".utf8)) {
                let n = read(c, &buf, buf.count)
                if n <= 0 { break }
                request += buf[0..<n]
            }
            let line = String(decoding: request.prefix { $0 != 0x0d }, as: UTF8.self).split(separator: " ")
            let path = line.count > 1 ? String(line[1]) : "/"
            let route = routes[path] ?? Route(body: Data("not found".utf8), status: 404)
            let header = "HTTP/1.1 \(route.status) X\r\nContent-Length: \(route.declaredLength ?? route.body.count)\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
            var out = Data(header.utf8); out.append(route.body)
            out.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count { let n = write(c, raw.baseAddress! + off, raw.count - off); if n <= 0 { break }; off += n }
            }
            shutdown(c, Int32(SHUT_RDWR)); close(c)
        }
    }

    func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
}

private extension Array where Element == UInt8 {
    func ends(with s: [UInt8]) -> Bool { count >= s.count && Array(suffix(s.count)) == s }
}

final class WeightStoreTests: XCTestCase {
    var dir: URL!
    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("weightstore-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func cacheContents(_ cache: URL) -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: cache.path)) ?? []).sorted() }

    /// A small payload and its torchvision-style name `tiny-<8hex>.pth`.
    func payload() throws -> (Data, String, String) {
        let data = try Data(contentsOf: TorchCheckpointTests.dir.appendingPathComponent("tiny_model.pth"))
        let digest = SHA256.hexDigest(of: data)
        return (data, digest, "tiny-\(digest.prefix(8)).pth")
    }

    func testDefaultCacheDirectoryFollowsTorchHub() {
        XCTAssertEqual(WeightStore.defaultCacheDirectory(environment: ["TORCH_HOME": "/x/th", "HOME": "/h"]).path, "/x/th/hub/checkpoints")
        XCTAssertEqual(WeightStore.defaultCacheDirectory(environment: ["XDG_CACHE_HOME": "/xdg", "HOME": "/h"]).path, "/xdg/torch/hub/checkpoints")
        XCTAssertEqual(WeightStore.defaultCacheDirectory(environment: ["HOME": "/h"]).path, "/h/.cache/torch/hub/checkpoints")
    }

    func testReusesHuggingFaceCacheForTimmFiles() throws {
        let hub = dir.appendingPathComponent("hf/hub")
        let snap = hub.appendingPathComponent("models--timm--resnet50.tv_in1k/snapshots/abc123")
        try FileManager.default.createDirectory(at: snap, withIntermediateDirectories: true)
        let (data, _, _) = try payload()
        try data.write(to: snap.appendingPathComponent("model.safetensors"))
        XCTAssertEqual(WeightStore.defaultHuggingFaceCache(environment: ["HF_HOME": dir.appendingPathComponent("hf").path]).path, hub.path)
        let store = WeightStore(cacheDirectory: dir.appendingPathComponent("torch"), allowDownload: false,
                                environment: ["HF_HUB_CACHE": hub.path, "HOME": dir.path])
        XCTAssertEqual(try store.resolve(WeightCatalogue.timmResNet50).path, snap.appendingPathComponent("model.safetensors").path)
        XCTAssertThrowsError(try store.resolve(WeightCatalogue.timmVGG11BN)) {   // not in either cache, downloads off
            XCTAssertTrue("\($0)".contains("https://huggingface.co/timm/vgg11_bn.tv_in1k/resolve/main/model.safetensors"), "\($0)")
        }
    }

    func testCatalogue() {
        XCTAssertEqual(WeightCatalogue.resnet50.hashPrefix, "0676ba61")
        XCTAssertEqual(WeightCatalogue.vgg11BN.url.absoluteString, "https://download.pytorch.org/models/vgg11_bn-6002323d.pth")
        XCTAssertEqual(WeightCatalogue.densenet121.hashPrefix, "a639ec97")
        XCTAssertEqual(WeightCatalogue.timmResNet50.url.absoluteString, "https://huggingface.co/timm/resnet50.tv_in1k/resolve/main/model.safetensors")
        XCTAssertNil(WeightCatalogue.timmResNet50.hashPrefix)
        XCTAssertEqual(WeightCatalogue.named("resnet50"), WeightCatalogue.resnet50)
        XCTAssertEqual(WeightCatalogue.named("timm/vgg11_bn.tv_in1k"), WeightCatalogue.timmVGG11BN)
        XCTAssertEqual(WeightCatalogue.named("densenet121-a639ec97.pth"), WeightCatalogue.densenet121)
    }

    func testFileURLDownloadVerifiesAndCaches() throws {
        let (data, _, name) = try payload()
        let src = dir.appendingPathComponent("src-\(name)"); try data.write(to: src)
        let cache = dir.appendingPathComponent("cache")
        var store = WeightStore(cacheDirectory: cache); store.showProgress = false
        let file = WeightFile(architecture: "tiny", fileName: name, url: src, format: .pytorch)
        let got = try store.resolve(file)
        XCTAssertEqual(got, cache.appendingPathComponent(name))
        XCTAssertEqual(try Data(contentsOf: got), data)
        XCTAssertEqual(cacheContents(cache), [name])                // no temporary left
        try FileManager.default.removeItem(at: src)                 // now served from the cache
        XCTAssertEqual(try store.resolve(file), got)
        let sd = try store.load(file)
        XCTAssertEqual(sd.names.count, 10)
    }

    func testHTTPDownloadFullHashAndPrefix() throws {
        let (data, digest, name) = try payload()
        let server = try LocalHTTPServer(routes: ["/models/\(name)": .init(body: data)])
        defer { server.stop() }
        let cache = dir.appendingPathComponent("cache")
        var store = WeightStore(cacheDirectory: cache); store.showProgress = false
        // Prefix check (torchvision convention)
        let byPrefix = WeightFile(architecture: "tiny", fileName: name, url: server.url("/models/\(name)"), format: .pytorch)
        XCTAssertEqual(try Data(contentsOf: store.resolve(byPrefix)), data)
        // Full hash, different cache name
        let byHash = WeightFile(architecture: "tiny", fileName: "tiny.pth", url: server.url("/models/\(name)"), sha256: digest, format: .pytorch)
        XCTAssertEqual(try Data(contentsOf: store.resolve(byHash)), data)
        XCTAssertEqual(cacheContents(cache), [name, "tiny.pth"].sorted())
        XCTAssertEqual(server.requests, 2)
    }

    func testWrongChecksumIsNotKept() throws {
        let (data, digest, _) = try payload()
        let server = try LocalHTTPServer(routes: ["/w.pth": .init(body: data)])
        defer { server.stop() }
        let cache = dir.appendingPathComponent("cache")
        var store = WeightStore(cacheDirectory: cache); store.showProgress = false
        let wrongPrefix = WeightFile(architecture: "tiny", fileName: "tiny-deadbeef.pth", url: server.url("/w.pth"), format: .pytorch)
        XCTAssertThrowsError(try store.resolve(wrongPrefix)) { e in
            print("wrong prefix ->", e)
            XCTAssertTrue("\(e)".contains("deadbeef") && "\(e)".contains(digest), "\(e)")
        }
        let wrongFull = WeightFile(architecture: "tiny", fileName: "t.pth", url: server.url("/w.pth"), sha256: String(repeating: "ab", count: 32), format: .pytorch)
        XCTAssertThrowsError(try store.resolve(wrongFull)) { e in
            XCTAssertTrue("\(e)".contains(String(repeating: "ab", count: 32)) && "\(e)".contains(digest), "\(e)")
        }
        XCTAssertEqual(cacheContents(cache), [])                    // neither the file nor a temporary
        // A cached file with the wrong content is reported, not used.
        try Data("corrupt".utf8).write(to: cache.appendingPathComponent("tiny-deadbeef.pth"))
        XCTAssertThrowsError(try store.resolve(wrongPrefix)) { XCTAssertTrue("\($0)".contains("cached file fails its checksum"), "\($0)") }
    }

    func testTruncatedDownload() throws {
        let (data, _, name) = try payload()
        let server = try LocalHTTPServer(routes: ["/cut.pth": .init(body: data.prefix(1000), declaredLength: data.count)])
        defer { server.stop() }
        let cache = dir.appendingPathComponent("cache")
        var store = WeightStore(cacheDirectory: cache); store.showProgress = false; store.timeout = 10
        let file = WeightFile(architecture: "tiny", fileName: name, url: server.url("/cut.pth"), format: .pytorch)
        XCTAssertThrowsError(try store.resolve(file)) { e in
            print("truncated download ->", e)
            XCTAssertTrue("\(e)".contains("cut.pth"), "\(e)")
            XCTAssertTrue("\(e)".contains("1000 of \(data.count) bytes"), "\(e)")
        }
        XCTAssertEqual(cacheContents(cache), [])
    }

    func testHTTPErrorStatus() throws {
        let server = try LocalHTTPServer(routes: [:])
        defer { server.stop() }
        var store = WeightStore(cacheDirectory: dir.appendingPathComponent("cache")); store.showProgress = false
        let file = WeightFile(architecture: "x", fileName: "x-00000000.pth", url: server.url("/nope.pth"), format: .pytorch)
        XCTAssertThrowsError(try store.resolve(file)) { XCTAssertTrue("\($0)".contains("HTTP status 404"), "\($0)") }
    }

    func testOfflineMissingFileSaysWhatToDownloadAndWhere() throws {
        let cache = dir.appendingPathComponent("cache")
        let offline = WeightStore(cacheDirectory: cache, allowDownload: false)
        XCTAssertThrowsError(try offline.resolve(WeightCatalogue.resnet50)) { e in
            let m = "\(e)"
            print("offline ->", m)
            XCTAssertTrue(m.contains("https://download.pytorch.org/models/resnet50-0676ba61.pth"), m)
            XCTAssertTrue(m.contains(cache.appendingPathComponent("resnet50-0676ba61.pth").path), m)
        }
        // Network unreachable: a closed port on 127.0.0.1 (bind, read the port, close).
        let server = try LocalHTTPServer(routes: [:]); let port = server.port; server.stop()
        var store = WeightStore(cacheDirectory: cache); store.showProgress = false; store.timeout = 5
        let file = WeightFile(architecture: "x", fileName: "x-00000000.pth", url: URL(string: "http://127.0.0.1:\(port)/x.pth")!, format: .pytorch)
        XCTAssertThrowsError(try store.resolve(file)) { e in
            print("unreachable ->", e)
            XCTAssertTrue("\(e)".contains("http://127.0.0.1:\(port)/x.pth") && "\(e)".contains(cache.path), "\(e)")
        }
        XCTAssertEqual(cacheContents(cache), [])
    }
}
