// Start-up check that the CPU can run this build (see cpu_check.c).
#ifndef EP_CPU_CHECK_H
#define EP_CPU_CHECK_H

/// The LLVM CPU name the code was generated for ("skylake-avx512", "haswell", "x86-64", "default").
const char *ep_build_target_cpu(void);
/// The kernel profile compiled in: "avx512", "avx2" or "generic".
const char *ep_build_kernel_profile(void);

#endif
