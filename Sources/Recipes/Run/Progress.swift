// MARK: - Progress
//
// Progress of long steps on stderr (stdout stays machine-readable): a bar redrawn in place when
// stderr is a terminal; otherwise (a batch job's log) one plain line at a steady interval —
// every 30 s, or $EP_PROGRESS_INTERVAL seconds — so a long run logged to a file can be followed.
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
    /// Seconds between plain progress lines when stderr is not a terminal; nil: no lines.
    let logInterval: TimeInterval?
    private var lastDraw = Date.distantPast
    private var lastLog: Date
    private let start = Date()

    /// Default seconds between progress lines in a log.
    public static let defaultLogInterval: TimeInterval = 30
    /// Overrides `defaultLogInterval` (seconds, e.g. 0.5).
    public static let intervalVariable = "EP_PROGRESS_INTERVAL"

    public init(label: String, total: Int, enabled: Bool,
                environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.label = label
        self.total = max(total, 1)
        let terminal = isatty(STDERR_FILENO) == 1
        self.enabled = enabled && terminal
        self.logInterval = enabled && !terminal ? Self.interval(environment) : nil
        self.lastLog = start
    }

    /// $EP_PROGRESS_INTERVAL when it is a non-negative number, else 30 s.
    static func interval(_ environment: [String: String]) -> TimeInterval {
        guard let text = environment[intervalVariable], let v = Double(text), v.isFinite, v >= 0 else { return defaultLogInterval }
        return v
    }

    /// Redraws at most 10 times per second (terminal), or writes a line every `logInterval` (log).
    public func update(_ done: Int, note: String = "") {
        if let interval = logInterval {
            let now = Date()
            guard now.timeIntervalSince(lastLog) >= interval else { return }
            lastLog = now
            FileHandle.standardError.write(Data((logLine(done, note: note, now: now) + "\n").utf8))
            return
        }
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

    /// One line for a log: step, position, the caller's note (epoch, loss), elapsed time and ETA.
    func logLine(_ done: Int, note: String, now: Date) -> String {
        let frac = Double(min(done, total)) / Double(total)
        let elapsed = now.timeIntervalSince(start)
        let eta = frac > 0 ? String(format: "about %.0f s left", elapsed * (1 - frac) / frac) : "time left unknown"
        let what = label.trimmingCharacters(in: .whitespaces)
        return String(format: "progress: %@ %d/%d (%.0f%%)%@; %.0f s elapsed, %@",
                      what, done, total, frac * 100, note.isEmpty ? "" : " " + note, elapsed, eta)
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
