// MARK: - Memory tuning for long runs
//
// Every training step and pullback allocates fresh tensors of a few MB (activations, gradients,
// phase images). glibc serves blocks above its mmap threshold (128 KB, rising only as far as the
// largest freed block) with fresh mmaps and trims the heap top back to the kernel, so the same
// pages are faulted in and zeroed again on every step: ~170,000 faults over six C4GAP-128 steps
// at batch 32, ~3% of the step. Raising both thresholds keeps freed memory in the process for
// reuse (peak RSS of that run: 212 -> 224 MB).
#if canImport(Glibc)
import Glibc
#endif

public enum MemoryTuning {
    /// Keep freed blocks (up to 256 MB each) in the process instead of returning them to the
    /// kernel. Process-wide and idempotent; call once at the start of `runner` and `bench`.
    ///
    /// ```swift
    /// MemoryTuning.keepFreedMemory()
    /// ```
    public static func keepFreedMemory() {
        #if canImport(Glibc)
        // mallopt(3) is not in Swift's Glibc module: look it up (a libc function, not a file).
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
        let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
        let trimThreshold: Int32 = -1, mmapThreshold: Int32 = -3   // M_TRIM_THRESHOLD, M_MMAP_THRESHOLD (malloc.h)
        _ = mallopt(mmapThreshold, 256 << 20)
        _ = mallopt(trimThreshold, 1 << 30)
        #endif
    }
}
