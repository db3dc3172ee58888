// Start-up check: a binary generated for a CPU with more instruction-set extensions than the one
// it runs on would die with SIGILL at the first such instruction, with no message. This file is
// compiled WITHOUT the target CPU's flags (Package.swift) and runs as a constructor, before main
// and before any Swift code: it compares the extensions the build may use (CPUTarget) with those
// this CPU and its OS support, and on a mismatch prints one line and exits with status 2.
//
// EP_FORCE_CPU_CHECK_FAIL=1 makes the check fail as on a plain x86-64 CPU (for tests).
#include "cpu_check.h"
#include "cpu_target.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ep_build_target_cpu(void) { return ep_target_cpu_name; }
const char *ep_build_kernel_profile(void) { return ep_kernel_profile_name; }

#if defined(__x86_64__)
#include <cpuid.h>

enum { EAX, EBX, ECX, EDX };

/// Where CPUID reports a feature, and which OS-saved register state (XCR0 bits) it needs.
typedef struct {
    const char *name;
    unsigned leaf, subleaf, reg, bit;
    unsigned long long xcr0;
} Feature;

#define YMM_STATE 0x6ULL     /* SSE + AVX state */
#define ZMM_STATE 0xE6ULL    /* plus opmask, ZMM0-15 upper halves, ZMM16-31 */

static const Feature features[] = {
    {"sse3", 1, 0, ECX, 0, 0},          {"ssse3", 1, 0, ECX, 9, 0},
    {"sse4.1", 1, 0, ECX, 19, 0},       {"sse4.2", 1, 0, ECX, 20, 0},
    {"popcnt", 1, 0, ECX, 23, 0},       {"movbe", 1, 0, ECX, 22, 0},
    {"avx", 1, 0, ECX, 28, YMM_STATE},  {"fma", 1, 0, ECX, 12, YMM_STATE},
    {"f16c", 1, 0, ECX, 29, YMM_STATE},
    {"bmi", 7, 0, EBX, 3, 0},           {"bmi2", 7, 0, EBX, 8, 0},
    {"lzcnt", 0x80000001u, 0, ECX, 5, 0},
    {"avx2", 7, 0, EBX, 5, YMM_STATE},
    {"avx512f", 7, 0, EBX, 16, ZMM_STATE},     {"avx512dq", 7, 0, EBX, 17, ZMM_STATE},
    {"avx512ifma", 7, 0, EBX, 21, ZMM_STATE},  {"avx512cd", 7, 0, EBX, 28, ZMM_STATE},
    {"avx512bw", 7, 0, EBX, 30, ZMM_STATE},    {"avx512vl", 7, 0, EBX, 31, ZMM_STATE},
    {"avx512vbmi", 7, 0, ECX, 1, ZMM_STATE},   {"avx512vbmi2", 7, 0, ECX, 6, ZMM_STATE},
    {"gfni", 7, 0, ECX, 8, 0},                 {"vaes", 7, 0, ECX, 9, YMM_STATE},
    {"vpclmulqdq", 7, 0, ECX, 10, YMM_STATE},  {"avx512vnni", 7, 0, ECX, 11, ZMM_STATE},
    {"avx512bitalg", 7, 0, ECX, 12, ZMM_STATE},{"avx512vpopcntdq", 7, 0, ECX, 14, ZMM_STATE},
    {"avx512fp16", 7, 0, EDX, 23, ZMM_STATE},
    {"avxvnni", 7, 1, EAX, 4, YMM_STATE},      {"avx512bf16", 7, 1, EAX, 5, ZMM_STATE},
};

static unsigned long long xcr0(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27))) return 0;   /* no OSXSAVE */
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

/// True when this CPU reports `name` and the OS saves the registers it needs. Unknown names
/// count as present (the check only refuses what it can prove missing).
static int cpu_has(const char *name, unsigned long long os_state, int forced) {
    for (size_t i = 0; i < sizeof features / sizeof features[0]; i++) {
        const Feature *f = &features[i];
        if (strcmp(f->name, name) != 0) continue;
        if (forced) return 0;
        unsigned r[4] = {0, 0, 0, 0};
        if (!__get_cpuid_count(f->leaf, f->subleaf, &r[EAX], &r[EBX], &r[ECX], &r[EDX])) return 0;
        return (r[f->reg] >> f->bit) & 1u && (os_state & f->xcr0) == f->xcr0;
    }
    return 1;
}

__attribute__((constructor))
static void ep_check_cpu(void) {
    const char *force = getenv("EP_FORCE_CPU_CHECK_FAIL");
    int forced = force != NULL && force[0] != '\0' && strcmp(force, "0") != 0;
    unsigned long long os_state = xcr0();
    char missing[512] = "";
    size_t used = 0;
    for (const char *const *f = ep_required_features; *f != NULL; f++) {
        if (cpu_has(*f, os_state, forced)) continue;
        int n = snprintf(missing + used, sizeof missing - used, "%s%s", used ? " " : "", *f);
        if (n < 0 || (size_t)n >= sizeof missing - used) break;
        used += (size_t)n;
    }
    if (used == 0 && !forced) return;

    const char *has, *cpu;
    static const char *const avx512[] = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"};
    int has512 = 1;
    for (size_t i = 0; i < 5; i++) has512 = has512 && cpu_has(avx512[i], os_state, forced);
    if (has512) { has = "AVX-512"; cpu = "skylake-avx512"; }
    else if (cpu_has("avx2", os_state, forced) && cpu_has("fma", os_state, forced)) { has = "AVX2 and FMA, no AVX-512"; cpu = "haswell"; }
    else if (cpu_has("avx", os_state, forced)) { has = "AVX, no AVX2"; cpu = "x86-64-v2"; }
    else { has = "only the x86-64 baseline (SSE2)"; cpu = "x86-64"; }
    fprintf(stderr,
            "error: this build needs CPU features %s (target CPU %s, kernel profile %s) but this CPU has %s%s; "
            "rebuild for it with: EP_TARGET_CPU=%s swift build -c release\n",
            used ? missing : "(check forced)", ep_target_cpu_name, ep_kernel_profile_name, has,
            forced ? " (EP_FORCE_CPU_CHECK_FAIL is set)" : "", cpu);
    fflush(stderr);
    exit(2);
}
#else
/// arm64: NEON is part of the baseline; only the test hook can fail the check.
__attribute__((constructor))
static void ep_check_cpu(void) {
    const char *force = getenv("EP_FORCE_CPU_CHECK_FAIL");
    if (force == NULL || force[0] == '\0' || strcmp(force, "0") == 0) return;
    fprintf(stderr, "error: CPU check forced to fail (EP_FORCE_CPU_CHECK_FAIL is set; target CPU %s, kernel profile %s)\n",
            ep_target_cpu_name, ep_kernel_profile_name);
    fflush(stderr);
    exit(2);
}
#endif
