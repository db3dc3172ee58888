// MARK: - One computation at a time, a bounded queue, newer requests cancel older ones
//
// The kernels already use every core the server was given, so computations run one after the
// other on one thread of their own (never on the HTTP event loops). At most `capacity` jobs are
// running or waiting; the next one is refused with 503 and a Retry-After, never queued without
// bound. A job that names a `client` cancels that client's earlier job: the earlier one stops at
// its next step and answers 409, so a page whose slider moves fast gets the newest view quickly.
import Foundation
import SIMDCore

/// The compute thread, its bounded queue and the per-client cancellation.
public final class JobQueue: @unchecked Sendable {
    public let capacity: Int
    public let threads: Int?
    private let lock = NSLock()
    private let worker = DispatchQueue(label: "excitation-pullbacks.serve.compute")
    private var pending = 0
    private var latest: [String: Job] = [:]

    public init(capacity: Int = 8, threads: Int? = nil) {
        self.capacity = max(1, capacity); self.threads = threads
    }

    /// One job's cancellation flag and progress (read by `/api/progress`).
    public final class Job: JobControl, @unchecked Sendable {
        private let lock = NSLock()
        private var cancelled = false
        private var state = (done: 0, total: 1, note: "queued")

        public func cancel() { lock.lock(); cancelled = true; lock.unlock() }
        public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }
        public func checkCancelled() throws {
            if isCancelled { throw ServeError(.conflict, "cancelled: a newer request from the same page replaced this one") }
        }
        public func report(done: Int, total: Int, note: String) {
            lock.lock(); state = (done, max(total, 1), note); lock.unlock()
        }
        public var progress: [String: Any] {
            lock.lock(); defer { lock.unlock() }
            return ["done": state.done, "total": state.total, "note": state.note]
        }
    }

    /// Jobs running or waiting now.
    public var load: Int { lock.lock(); defer { lock.unlock() }; return pending }

    /// The progress of a client's newest job, nil when it has none.
    public func progress(client: String) -> [String: Any]? {
        lock.lock(); defer { lock.unlock() }
        return latest[client]?.progress
    }

    /// Runs `work` on the compute thread; 503 when the queue is full, 409 when cancelled.
    public func run<T: Sendable>(client: String?, _ work: @escaping @Sendable (Job) throws -> T) async throws -> T {
        let job = Job()
        let accepted: Bool = lock.withLock {
            guard pending < capacity else { return false }
            pending += 1
            if let c = client { latest[c]?.cancel(); latest[c] = job }
            return true
        }
        guard accepted else {
            throw ServeError(.serviceUnavailable, "busy: \(capacity) computations are running or waiting; try again in a moment")
        }
        let threads = self.threads
        return try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, Error>) in
            worker.async {
                let result: Result<T, Error>
                if job.isCancelled {
                    result = .failure(ServeError(.conflict, "cancelled: a newer request from the same page replaced this one"))
                } else {
                    result = Result {
                        if let t = threads { return try Parallel.$threadCount.withValue(t) { try work(job) } }
                        return try work(job)
                    }
                }
                self.lock.lock()
                self.pending -= 1
                if let c = client, self.latest[c] === job, result.isSuccess { self.latest[c] = nil }
                self.lock.unlock()
                k.resume(with: result)
            }
        }
    }
}

private extension Result {
    var isSuccess: Bool { if case .success = self { return true }; return false }
}
