// MARK: - Recipes
//
// Everything with I/O lives here: recipe schema, models, weights, data, images, reports.
import SIMDCore

/// The project's version string, shown by `runner --version`.
public enum ProjectInfo {
    public static let version = "0.1.0"
}
