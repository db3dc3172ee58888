// MARK: - WorkerPool: the threads behind Parallel
//
// A pullback step makes about a thousand parallel calls of a few hundred microseconds each.
// DispatchQueue.concurrentPerform wakes a pool thread through the kernel on every one of them, and
// the caller then waits out the wake-up (perf: 5-6% of a DenseNet121 step in the scheduler alone).
// These workers stay: after a job each spins on its mailbox for a while (OpenMP's runtimes, which
// PyTorch uses, do the same), then sleeps on a condition until the next ticket.
//
// Each job is `body(w)` for w in 0 ..< workers: w = 0 on the calling thread, w >= 1 on worker w.
// Only the workers a job needs get a ticket, and the caller returns after they have all finished,
// so no worker ever sees a stale job. The pool serves one job at a time: a call made while it is
// busy (a nested call from inside a job, or a second thread) returns false and the caller runs
// the same chunks some other way — what a chunk computes never depends on the thread running it.

import Foundation
import Synchronization

final class WorkerPool: @unchecked Sendable {   // mutable state: see `run` and `Mailbox`
    /// The process's pool (threads are started on first use, as many as the widest job needs).
    static let shared = WorkerPool()

    /// Spins on the mailbox before sleeping: about 50-100 µs on current x86 cores.
    static let spinLimit = 1 << 15

    /// A worker's ticket counter and the condition it sleeps on.
    final class Mailbox: @unchecked Sendable {
        let ticket = Atomic<Int>(0)
        let sleeping = Atomic<Bool>(false)
        let condition = NSCondition()
    }

    private let busy = Atomic<Bool>(false)
    private let finished = Atomic<Int>(0)
    private var mailboxes: [Mailbox] = []    // index w - 1 for worker w; grows only while busy
    private var body: ((Int) -> Void)?       // set before tickets are issued, read by ticketed workers

    /// Runs `body(w)` for every w in 0 ..< workers concurrently (w = 0 on the calling thread) and
    /// returns true, or returns false at once, running nothing, when the pool is serving another job.
    func run(workers: Int, _ body: (Int) -> Void) -> Bool {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while mailboxes.count < workers - 1 { start(worker: mailboxes.count + 1) }
        withoutActuallyEscaping(body) { body in
            self.body = body
            finished.store(0, ordering: .relaxed)
            for w in 1..<workers {
                let m = mailboxes[w - 1]
                m.ticket.add(1, ordering: .sequentiallyConsistent)
                if m.sleeping.load(ordering: .sequentiallyConsistent) {
                    m.condition.lock(); m.condition.signal(); m.condition.unlock()
                }
            }
            body(0)
            var spins = 0
            while finished.load(ordering: .acquiring) < workers - 1 {
                spins += 1
                if spins > Self.spinLimit { sched_yield() }
            }
            self.body = nil
        }
        return true
    }

    private func start(worker w: Int) {
        let m = Mailbox()
        mailboxes.append(m)
        let thread = Thread { [unowned self] in self.serve(worker: w, mailbox: m) }
        thread.name = "SIMDCore worker \(w)"
        thread.start()
    }

    /// Worker w's loop: wait for a ticket, run its chunk of the job, report, forever.
    private func serve(worker w: Int, mailbox m: Mailbox) {
        var seen = 0
        while true {
            var spins = 0
            while m.ticket.load(ordering: .acquiring) == seen {
                spins += 1
                guard spins > Self.spinLimit else { continue }
                m.condition.lock()
                m.sleeping.store(true, ordering: .sequentiallyConsistent)
                while m.ticket.load(ordering: .sequentiallyConsistent) == seen { m.condition.wait() }
                m.sleeping.store(false, ordering: .relaxed)
                m.condition.unlock()
            }
            seen += 1
            body!(w)
            finished.add(1, ordering: .releasing)
        }
    }
}
