// MARK: - The HTTP server: routes, limits, errors
//
//   GET  /                 the page (index.html); /app.js, /style.css: its script and style
//   GET  /api/models       the model choices, with what is missing for each
//   GET  /api/classes      ?model=…&q=…: class names matching a search (all when q is empty)
//   GET  /api/explain      ?<view>: map, ascent, top-5 before/after, target logit along the steps
//   GET  /api/strip        ?kind=temperature|steps&<view>: the teaching strips
//   GET  /api/recipe       ?<view>: the recipe YAML that reproduces the view (a download)
//   GET  /api/progress     ?client=…: how far that page's current computation is
//   POST /api/upload       a PNG or JPEG as the body: {"image": "upload:<id>"}
//
// The page's files are three fixed strings compiled into the binary: any other path is 404, so
// no request can reach a file on disk. Bodies are limited before they are read (Content-Length)
// and while they are read; computations go through the JobQueue. Every error is JSON
// {"error": "…"} with the status of its ServeError.
import Foundation
import Hummingbird
import Logging
import NIOCore
import Explore
import Recipes

/// How `runner serve` is set up.
public struct ServeConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var threads: Int?
    public var cacheDirectory = Workbench.defaultCacheDirectory()
    /// Largest request body (an upload).
    public var maxBodyBytes = 16 << 20
    /// Computations running or waiting at once.
    public var queueCapacity = 8
    /// Epochs of the MNIST CNN when it is trained on first use.
    public var mnistEpochs = 4
    public init() {}
}

/// The server: a Hummingbird application around a Workbench and a JobQueue.
public enum ServeApp {
    /// The application; `onRunning` receives the port it listens on (useful with port 0).
    public static func make(_ config: ServeConfiguration, workbench: Workbench? = nil,
                            onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let handler = Handler(config: config,
                              workbench: workbench ?? Workbench(cacheDirectory: config.cacheDirectory, mnistEpochs: config.mnistEpochs),
                              jobs: JobQueue(capacity: config.queueCapacity, threads: config.threads))
        var logger = Logger(label: "runner-serve")
        logger.logLevel = .warning
        return Application(responder: CallbackResponder<BasicRequestContext> { request, _ in await handler.respond(request) },
                           configuration: .init(address: .hostname(config.host, port: config.port), serverName: "runner-serve"),
                           onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? config.port) },
                           logger: logger)
    }
}

/// Routes one request.
struct Handler: Sendable {
    let config: ServeConfiguration
    let workbench: Workbench
    let jobs: JobQueue

    func respond(_ request: Request) async -> Response {
        do {
            return try await route(request)
        } catch let e as ServeError {
            return Self.error(e)
        } catch {
            return Self.error(ServeError(.internalError, "\(error)"))
        }
    }

    func route(_ request: Request) async throws -> Response {
        let path = request.uri.path
        let isGet = request.method == .get || request.method == .head
        if path == "/api/upload" {
            guard request.method == .post else { throw ServeError(.methodNotAllowed, "/api/upload takes POST with the image as the body") }
            return try await upload(request)
        }
        guard isGet else { throw ServeError(.methodNotAllowed, "\(path) takes GET") }
        let query = QueryString.pairs(request.uri.query ?? "")
        switch path {
        case "/api/models":
            try noParameters(query)
            return Self.json(["models": workbench.catalogue().map {
                ["model": $0.model.rawValue, "weights": $0.weights.rawValue, "label": $0.label,
                 "available": $0.available, "note": $0.note, "classes": $0.model.classCount,
                 "defaults": ExploreParameters.defaults(for: $0.model).query]
            }, "examples": ExampleImages.files.map { ["name": $0.name, "label": $0.label] },
               "digits": ExploreParameters.digitCount,
               "strips": ["temperatures": Workbench.StripKind.temperatures.map(Double.init), "steps": Workbench.StripKind.stepCounts]])
        case "/api/classes":
            return try classes(query)
        case "/api/explain":
            let p = try ExploreParameters.parse(query)
            let wb = workbench
            return Self.json(try await jobs.run(client: p.client) { job in JSONBox(try wb.explain(p, control: job)) }.value)
        case "/api/strip":
            let kindText = query.first { $0.0 == "kind" }?.1 ?? ""
            let kind: Workbench.StripKind = try ExploreParameters.name(kindText, key: "kind")
            let p = try ExploreParameters.parse(query, extra: ["kind"])
            let wb = workbench
            return Self.json(try await jobs.run(client: p.client.map { $0 + "-strip" }) { job in JSONBox(try wb.strip(p, kind: kind, control: job)) }.value)
        case "/api/recipe":
            let p = try ExploreParameters.parse(query)
            var headers = HTTPFields()
            headers[.contentType] = "application/x-yaml; charset=utf-8"
            headers[.contentDisposition] = "attachment; filename=\"view-\(p.model.rawValue)-\(p.target).yaml\""
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: try Workbench.recipe(p))))
        case "/api/progress":
            guard query.count == 1, query[0].0 == "client" else { throw ServeError(.badRequest, "/api/progress takes exactly one parameter, client") }
            return Self.json(jobs.progress(client: query[0].1) ?? ["done": 0, "total": 0, "note": "idle"])
        default:
            guard let file = PageFiles.files[path] else {
                throw ServeError(.notFound, "no such page: \(Limits.quoted(path)) (the page is at /)")
            }
            var headers = HTTPFields()
            headers[.contentType] = file.contentType
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: file.text)))
        }
    }

    func noParameters(_ query: [(String, String)]) throws {
        if let k = query.first?.0 { throw ServeError(.badRequest, "unknown parameter '\(Limits.quoted(k))'; this endpoint takes none") }
    }

    func classes(_ query: [(String, String)]) throws -> Response {
        var model = ServeModel.mnistCNN, q = ""
        for (k, v) in query {
            switch k {
            case "model": model = try ExploreParameters.name(v, key: "model")
            case "q": q = v.lowercased()
            default: throw ServeError(.badRequest, "unknown parameter '\(Limits.quoted(k))'; known: model, q")
            }
        }
        let names = try workbench.classNames(model)
        let hits = names.enumerated().filter { q.isEmpty || $0.element.lowercased().contains(q) || String($0.offset) == q }
        return Self.json(["model": model.rawValue, "count": hits.count,
                          "classes": hits.prefix(50).map { ["index": $0.offset, "name": $0.element] }])
    }

    func upload(_ request: Request) async throws -> Response {
        let limit = config.maxBodyBytes
        if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > limit {
            throw ServeError(.contentTooLarge, "the body is \(declared) bytes; uploads may have at most \(limit) bytes")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch {
            throw ServeError(.contentTooLarge, "the body is larger than \(limit) bytes, the most an upload may have")
        }
        guard buffer.readableBytes > 0 else { throw ServeError(.unsupportedMediaType, "the upload is empty; send a PNG or JPEG as the body") }
        let id = try workbench.storeUpload(Data(buffer.readableBytesView))
        return Self.json(["image": "upload:\(id)"])
    }

    // MARK: Responses

    static func json(_ object: [String: Any], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ e: ServeError) -> Response {
        var r = json(["error": e.message, "status": e.status.rawValue], status: HTTPResponse.Status(code: e.status.rawValue))
        if e.status == .serviceUnavailable { r.headers[.retryAfter] = "1" }
        return r
    }
}

/// A JSON object crossing from the compute thread (JSONSerialization's values are immutable).
struct JSONBox: @unchecked Sendable {
    let value: [String: Any]
    init(_ value: [String: Any]) { self.value = value }
}
