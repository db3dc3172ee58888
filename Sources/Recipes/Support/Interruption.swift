// MARK: - Clean interrupts (SIGINT, SIGTERM)
//
// A signal asks the run to stop; the run stops at its next check — between steps, and between
// training iterations — so no file is left half-written. The step that was running leaves no
// cache entry (RecipeEngine removes it; entries without their `complete` marker are also swept
// at the start of every run). A second signal exits at once. The runner exits 128 + signal
// (130 for SIGINT, 143 for SIGTERM) with one line on stderr.
//
// The flag is process-wide because signals are: this is the one piece of shared state, behind
// a lock, set only by the signal handlers.
import Foundation

/// The error a run throws when a signal asked it to stop.
public struct Interrupted: Error, CustomStringConvertible, Equatable {
    public let signal: Int32
    /// The step that was running, when known.
    public var step: String? = nil
    public init(signal: Int32, step: String? = nil) { self.signal = signal; self.step = step }
    /// 130 for SIGINT, 143 for SIGTERM: the shell's convention for death by signal.
    public var exitCode: Int32 { 128 + signal }
    public var signalName: String { signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)" }
    public var description: String { "interrupted by \(signalName)" + (step.map { " during step '\($0)'" } ?? "") }
}

/// Whether a stop was requested, and the signal handlers that request it.
///
/// ```swift
/// Interruption.installHandlers()          // once, in the executable
/// for batch in batches { try Interruption.check(); … }
/// ```
public enum Interruption {
    final class State: @unchecked Sendable {
        let lock = NSLock()
        var signal: Int32? = nil
        var sources: [DispatchSourceSignal] = []
    }
    static let state = State()

    /// Throws `Interrupted` once a signal has asked the run to stop.
    public static func check() throws {
        if let s = requested { throw Interrupted(signal: s) }
    }

    /// The signal that asked to stop, if any.
    public static var requested: Int32? {
        state.lock.lock(); defer { state.lock.unlock() }
        return state.signal
    }

    /// Records a stop request; returns false when one was already pending.
    @discardableResult
    static func request(_ signal: Int32) -> Bool {
        state.lock.lock(); defer { state.lock.unlock() }
        guard state.signal == nil else { return false }
        state.signal = signal
        return true
    }

    /// Forgets a pending request (tests that run several interrupted runs in one process).
    static func reset() {
        state.lock.lock(); defer { state.lock.unlock() }
        state.signal = nil
    }

    /// SIGINT and SIGTERM set the flag instead of killing the process; a second one exits at
    /// once with 128 + signal.
    public static func installHandlers(_ signals: [Int32] = [SIGINT, SIGTERM]) {
        let queue = DispatchQueue(label: "runner.signals")
        for sig in signals {
            signal(sig, SIG_IGN)          // the default action would kill the process first
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler {
                if !request(sig) {
                    FileHandle.standardError.write(Data("\nrunner: interrupted again by \(Interrupted(signal: sig).signalName): exiting at once\n".utf8))
                    _exit(128 + sig)
                }
            }
            source.resume()
            state.lock.lock(); state.sources.append(source); state.lock.unlock()
        }
    }

    // MARK: Cache entries without their marker

    /// Removes the subdirectories of `cache` that lack a `complete` marker: left by a run that
    /// was killed or interrupted mid-step, they could otherwise be mistaken for results later.
    /// Returns the names removed.
    @discardableResult
    public static func removeIncompleteEntries(in cache: URL) -> [String] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: cache.path) else { return [] }
        var removed: [String] = []
        for name in names.sorted() {
            // The unit store has no marker of its own: each unit is published whole (WorkUnits.swift).
            if name == "units" { continue }
            let entry = cache.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: entry.path, isDirectory: &isDirectory), isDirectory.boolValue,
                  !fm.fileExists(atPath: entry.appendingPathComponent("complete").path) else { continue }
            if (try? fm.removeItem(at: entry)) != nil { removed.append(name) }
        }
        return removed
    }
}
