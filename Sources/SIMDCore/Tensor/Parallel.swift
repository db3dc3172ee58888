// MARK: - Parallel
//
// Both cores, with static partitions, run by the persistent threads of WorkerPool.swift. A kernel
// splits its OUTPUT into contiguous chunks and each worker owns one chunk, so no two workers write
// the same element and every reduction runs in the same order whatever the thread count: results
// are bit-identical for 1 or N threads.
import Dispatch
import Foundation

/// Static work partitioning over the persistent `WorkerPool` (or, when it is busy,
/// `DispatchQueue.concurrentPerform`).
///
/// ```swift
/// Parallel.forEachChunk(count: rows) { range in
///     for r in range { ... }      // this worker owns rows `range`
/// }
/// ```
public enum Parallel {
    /// Worker count used by kernels. Bound per task with
    /// `Parallel.$threadCount.withValue(1) { ... }`; defaults to the active processor count.
    @TaskLocal public static var threadCount: Int = ProcessInfo.processInfo.activeProcessorCount

    /// Splits `0..<count` into at most `threadCount` contiguous chunks (each at least `minChunk`
    /// long) and runs `body` on each concurrently. Chunk boundaries depend only on `count`,
    /// `threadCount` and `minChunk`.
    public static func forEachChunk(count: Int, minChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        guard count > 0 else { return }
        let workers = Swift.max(1, Swift.min(threadCount, count / Swift.max(minChunk, 1)))
        if workers == 1 { body(0..<count); return }
        func run(_ w: Int) { body(chunk(w, of: workers, count: count)) }
        if !WorkerPool.shared.run(workers: workers, run) {
            // The pool is serving another job (a nested call, or a second thread): same chunks.
            DispatchQueue.concurrentPerform(iterations: workers, execute: run)
        }
    }

    /// Runs `body(i)` for every `i` in `0..<count`; each worker takes a contiguous block.
    public static func forEach(_ count: Int, minChunk: Int = 1, _ body: (Int) -> Void) {
        forEachChunk(count: count, minChunk: minChunk) { r in for i in r { body(i) } }
    }

    /// The `w`-th of `workers` near-equal contiguous chunks of `0..<count`.
    @inline(__always)
    public static func chunk(_ w: Int, of workers: Int, count: Int) -> Range<Int> {
        let base = count / workers, extra = count % workers
        let lo = w * base + Swift.min(w, extra)
        return lo..<(lo + base + (w < extra ? 1 : 0))
    }
}
