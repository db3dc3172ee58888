// MARK: - Limits on untrusted input
//
// Weights, images, data sets and recipes come from other people. Every size, count or depth read
// from such input is checked against the file's real size and against one of these stated
// limits, with overflow-checked arithmetic, before anything is allocated; the error names the
// limit, so a user whose legitimate file is refused knows which bound it crossed.

/// The stated bounds on what a file or parameter may ask for.
///
/// ```swift
/// guard count <= Limits.maxTensorElements else { throw … "more than Limits.maxTensorElements" }
/// let n = try Limits.product([65536, 65536, 65536, 65536])   // nil: overflows Int
/// ```
public enum Limits {
    /// Elements in one tensor read from a file (2^28: 1 GiB as Float; the largest weight of the
    /// model catalogue, VGG's first classifier layer, has 103 M).
    public static let maxTensorElements = 1 << 28
    /// Width or height of a decoded PNG or JPEG.
    public static let maxImageSide = 1 << 15
    /// Pixels in a decoded PNG or JPEG (8192 x 8192; 256 MiB as RGBA bytes).
    public static let maxImagePixels = 1 << 26
    /// Nesting depth of a YAML document (recipes nest fewer than 10 levels).
    public static let maxYAMLDepth = 100
    /// Nodes (scalars, sequences, mappings, alias copies) in a YAML document.
    public static let maxYAMLNodes = 1_000_000
    /// Bytes a gzip stream may inflate to (the largest data set archive, CIFAR-100, is 168 MB).
    public static let maxInflatedBytes = 1 << 32
    /// Nesting depth of the objects in a pickle (a state_dict nests about 5 deep).
    public static let maxPickleDepth = 100
    /// Items of a list quoted in an error message before it says "… (N in all)".
    public static let maxListedItems = 20

    /// The product of `dims`, or nil when a factor is negative or the product overflows `Int`.
    public static func product(_ dims: [Int]) -> Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            let (m, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow { return nil }
            n = m
        }
        return n
    }

    /// `items` joined by ", ", cut after `Limits.maxListedItems` with a count, so an error
    /// quoting a list from a file stays one readable line.
    ///
    /// ```swift
    /// Limits.listed((0..<1000).map(String.init))   // "0, 1, …, 19, … (1000 in all)"
    /// ```
    public static func listed(_ items: [String], separator: String = ", ") -> String {
        guard items.count > maxListedItems else { return items.joined(separator: separator) }
        return items.prefix(maxListedItems).joined(separator: separator) + "\(separator)… (\(items.count) in all)"
    }

    /// `text` cut to at most `maxQuotedCharacters` characters, for values quoted in errors.
    public static func quoted(_ text: String) -> String {
        text.count <= maxQuotedCharacters ? text : text.prefix(maxQuotedCharacters) + "… (\(text.utf8.count) bytes)"
    }

    /// Characters of a value quoted in an error message.
    public static let maxQuotedCharacters = 200
}
