// What the build was compiled for: read by CPUCheck (before main) and by `KernelProfile`.
#ifndef EP_CPU_TARGET_H
#define EP_CPU_TARGET_H

/// Instruction-set extensions the target CPU lets the compiler use, as x86 feature names
/// ("avx2", "avx512f", ...), NULL-terminated. Empty on arm64 (NEON is part of the baseline).
extern const char *const ep_required_features[];
/// The LLVM CPU name the Swift code was generated for ("skylake-avx512", "haswell", "default", ...).
extern const char ep_target_cpu_name[];
/// The kernel profile compiled in: "avx512", "avx2" or "generic".
extern const char ep_kernel_profile_name[];

#endif
