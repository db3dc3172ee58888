// MARK: - RunSettings
//
// What the command line asked for, independent of ArgumentParser so tests can drive the engine.
import Foundation

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
    /// `verify` compares a run whose parameters differ from the goldens' (otherwise refused).
    public var allowOverrides: Bool = false
    /// Identifies the code that computes the steps; part of every step's cache key, so a rebuilt
    /// runner never reuses what an older one cached. `nil`: the running executable's SHA-256
    /// (`CodeFingerprint.executable`). Tests set it to show that changed code recomputes.
    public var codeFingerprint: String?
    /// `--shard i/n`: compute only shard i's units of work, write no report (WorkUnits.swift).
    public var shard: ShardSpec?

    public init(recipePath: String, overrides: [String] = [], outDirectory: String? = nil,
                seed: UInt64? = nil, threads: Int? = nil, force: Bool = false,
                dryRun: Bool = false, quiet: Bool = true, codeFingerprint: String? = nil,
                shard: ShardSpec? = nil) {
        self.recipePath = recipePath; self.overrides = overrides; self.outDirectory = outDirectory
        self.seed = seed; self.threads = threads; self.force = force; self.dryRun = dryRun
        self.quiet = quiet; self.codeFingerprint = codeFingerprint; self.shard = shard
    }
}

// MARK: - Code fingerprint

/// The identity of the code a run executes.
///
/// ```swift
/// let code = CodeFingerprint.executable   // "sha256:3f1c…" of /proc/self/exe, hashed on first use
/// ```
public enum CodeFingerprint {
    /// SHA-256 of the running executable (hashed once per process, on first use). The executable
    /// holds every kernel, trainer and step, so any change to them changes it. When it cannot be
    /// read, a value unique to this process: nothing cached by another process is then reused.
    public static let executable: String = {
        let candidates = [URL(fileURLWithPath: "/proc/self/exe")] + (Bundle.main.executableURL.map { [$0] } ?? [])
        for url in candidates {
            if let h = try? SHA256.hexDigest(ofFile: url) { return "sha256:" + h }
        }
        return "unreadable-executable:" + UUID().uuidString
    }()
}
