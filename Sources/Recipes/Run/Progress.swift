// MARK: - Progress
//
// Progress bars for long steps, on stderr and only when stderr is a terminal (never in logs or
// pipes, where stdout stays machine-readable).
import Foundation

/// A single-line progress bar redrawn in place.
///
/// ```swift
/// let bar = ProgressBar(label: "train", total: 300, enabled: !quiet)
/// for i in 0..<300 { ...; bar.update(i + 1, note: "loss 0.31") }
/// bar.finish()
/// ```
public final class ProgressBar {
    public let label: String
    public let total: Int
    let enabled: Bool
    private var lastDraw = Date.distantPast
    private let start = Date()

    public init(label: String, total: Int, enabled: Bool) {
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
    }

    /// Redraws at most 10 times per second.
    public func update(_ done: Int, note: String = "") {
        guard enabled else { return }
        let now = Date()
        if done < total && now.timeIntervalSince(lastDraw) < 0.1 { return }
        lastDraw = now
        let width = 28
        let frac = Double(min(done, total)) / Double(total)
        let filled = Int(frac * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        let elapsed = now.timeIntervalSince(start)
        let eta = frac > 0 ? elapsed * (1 - frac) / frac : 0
        let line = String(format: "\r%@ %@ %3.0f%% %d/%d %@ [%.0fs, eta %.0fs]\u{1B}[K",
                          label, bar, frac * 100, done, total, note, elapsed, eta)
        FileHandle.standardError.write(Data(line.utf8))
    }

    public func finish() {
        guard enabled else { return }
        update(total)
        FileHandle.standardError.write(Data("\n".utf8))
    }
}

/// Narration of the steps of a run on stderr (suppressed by --quiet).
public struct Narrator: Sendable {
    public let quiet: Bool
    public init(quiet: Bool) { self.quiet = quiet }
    public func say(_ s: String) {
        guard !quiet else { return }
        FileHandle.standardError.write(Data((s + "\n").utf8))
    }
}
