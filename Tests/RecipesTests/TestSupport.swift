// MARK: - Helpers shared by the recipe and runner tests
import Foundation
import XCTest

/// The text of the error `body` throws; fails the test (at the caller's line) when it throws none.
///
/// ```swift
/// let t = errorText { try RecipeEngine.run(settings, verify: true, updateGoldens: false) }
/// XCTAssertTrue(t.contains("7 files are missing"), t)
/// ```
func errorText(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> String {
    do { _ = try body(); XCTFail("expected an error", file: file, line: line); return "" } catch {
        print("error: \(error)")
        return "\(error)"
    }
}

/// Runs `body` with the environment variables `vars` set, restoring their earlier values after.
///
/// ```swift
/// try withEnvironment(["EP_OFFLINE": "1"]) { … }
/// ```
func withEnvironment<T>(_ vars: [String: String], _ body: () throws -> T) rethrows -> T {
    var old: [String: String?] = [:]
    for (k, v) in vars { old[k] = ProcessInfo.processInfo.environment[k]; setenv(k, v, 1) }
    defer { for (k, v) in old { if let v { setenv(k, v, 1) } else { unsetenv(k) } } }
    return try body()
}
