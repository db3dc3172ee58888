// MARK: - `runner serve`'s request parsing, without the HTTP server
//
// The bytes are a request target's query string: split into pairs by the server's own
// QueryString.pairs, read by ExploreParameters.parse (as /api/explain and /api/strip do), and
// when they parse, turned into the recipe /api/recipe would send. The same bytes are also an
// upload body for the header check that sizes an image before any decoder sees it.
import Explore
import Foundation

enum FuzzServe {
    static func run(_ data: Data) {
        let pairs = QueryString.pairs(String(decoding: data, as: UTF8.self))
        if let p = try? ExploreParameters.parse(pairs) {
            // The page's own query for a view must read back as the same view (less the client).
            var q = p
            q.client = nil
            let again = try? ExploreParameters.parse(QueryString.pairs(q.query))
            precondition(again == q, "query round trip: \(q.query) read back as \(String(describing: again))")
            _ = try? Workbench.recipe(p)
        }
        if let kindText = pairs.first(where: { $0.0 == "kind" })?.1 {
            let _: Workbench.StripKind? = try? ExploreParameters.name(kindText, key: "kind")
        }
        _ = try? ExploreParameters.parse(pairs, extra: ["kind"])
        _ = try? ImageHeader.read(data)
    }
}
