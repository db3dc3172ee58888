// MARK: - A request target's query string as key/value pairs
//
// The server splits `?a=1&b=2` with this function rather than its HTTP library's, so the fuzz
// build (which leaves the HTTP library out) exercises the same code a request reaches.
// It keeps the library's rules: pieces split on '&' (a trailing empty piece is dropped, empty
// pieces inside are kept as key ""), the key is the text before the first '=', taken as is;
// the value is percent-decoded, or kept as is when its escapes are malformed. '+' stays '+'.
import Foundation

/// Splits a URL query string into the pairs `ExploreParameters.parse` reads.
public enum QueryString {
    /// The key/value pairs of `query` (without the leading '?'), in order.
    public static func pairs(_ query: String) -> [(String, String)] {
        let bytes = Array(query.utf8)
        var result: [(String, String)] = []
        var start = 0
        while start < bytes.count {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.count
            let piece = bytes[start..<end]
            if let eq = piece.firstIndex(of: UInt8(ascii: "=")) {
                let key = String(decoding: piece[..<eq], as: UTF8.self)
                let raw = piece[(eq + 1)...]
                result.append((key, percentDecoded(raw) ?? String(decoding: raw, as: UTF8.self)))
            } else {
                result.append((String(decoding: piece, as: UTF8.self), ""))
            }
            start = end + 1
        }
        return result
    }

    /// `%XX` escapes replaced by their bytes; nil when an escape is cut short or not hexadecimal.
    /// Bytes that are not UTF-8 become U+FFFD.
    static func percentDecoded(_ raw: ArraySlice<UInt8>) -> String? {
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = raw.startIndex
        while i < raw.endIndex {
            let b = raw[i]
            guard b == UInt8(ascii: "%") else { out.append(b); i += 1; continue }
            guard raw.endIndex - i >= 3, let hi = hex(raw[i + 1]), let lo = hex(raw[i + 2]) else { return nil }
            out.append(hi << 4 | lo)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
