// MARK: - RunSettings
//
// What the command line asked for, independent of ArgumentParser so tests can drive the engine.

/// Options of one `runner` invocation.
public struct RunSettings: Sendable {
    public var recipePath: String
    /// `key=value` strings from `--set`, applied in order after the recipe's variant.
    public var overrides: [String]
    public var outDirectory: String?
    public var seed: UInt64?
    public var threads: Int?
    public var force: Bool
    public var dryRun: Bool
    public var quiet: Bool

    public init(recipePath: String, overrides: [String] = [], outDirectory: String? = nil,
                seed: UInt64? = nil, threads: Int? = nil, force: Bool = false,
                dryRun: Bool = false, quiet: Bool = true) {
        self.recipePath = recipePath; self.overrides = overrides; self.outDirectory = outDirectory
        self.seed = seed; self.threads = threads; self.force = force; self.dryRun = dryRun
        self.quiet = quiet
    }
}
