// MARK: - Recipes
//
// Everything with I/O lives here: recipe schema, models, weights, data, images, reports.
import SIMDCore

/// The project's version string, shown by `runner --version`.
public enum ProjectInfo {
    public static let version = "0.1.0"

    /// The version and what the binary was built for, e.g.
    /// "0.1.0, kernels avx512 (6x32 tiles), target CPU skylake-avx512".
    public static var versionLine: String { "\(version), \(KernelProfile.buildDescription)" }
}
