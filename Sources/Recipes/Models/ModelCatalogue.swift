// MARK: - Models a recipe can name (`runner list models`)
public enum ModelCatalogue {
    public struct Entry: Sendable { public let name: String; public let summary: String }
    public static let entries: [Entry] = []
}
