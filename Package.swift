// swift-tools-version:6.0
//
// A dependency-light Swift engine that reproduces excitation pullbacks (paper A) and
// gated networks / the neural path kernel (paper B). See README.md and docs/method.md.
import PackageDescription
import Foundation

// MARK: - Build target: which CPU the code is generated for, which kernel profile it uses
//
// The kernels come in three profiles, chosen when the package is built (README, "CPUs and builds"):
//
//   profile  registers it is tiled for                 micro-tile (rows x columns)   chosen for
//   avx512   32 zmm (512-bit)                         6 x 32 of SIMD16<Float>       AVX-512 F/BW/CD/DQ/VL CPUs
//   avx2     16 ymm (256-bit)                         6 x 16 of SIMD8<Float>        AVX2 + FMA CPUs
//   generic  16 xmm (SSE2, x86-64) / 32 q (NEON)      6 x 8 of SIMD4<Float>         anything else, arm64
//
// Each tile keeps 12 accumulators plus the B vectors and a broadcast in registers; a tile wider
// than the register file spills inside the innermost loop (AVX-512 tiles compiled for haswell:
// ResNet50 pullback step 212 ms against 128 ms).
//
// By default the code is generated for the building machine: on x86-64 its CPU features pick a
// named baseline (AVX-512: skylake-avx512, AVX2: haswell, else x86-64), so the binary also runs on
// other machines of that class; on arm64 the compiler's default for the host. Overrides:
//   EP_TARGET_CPU=<LLVM CPU name>     e.g. haswell, x86-64-v3, skylake-avx512, znver4, x86-64, native
//   EP_KERNEL_PROFILE=avx512|avx2|generic   (normally implied by the CPU)
// The binary checks at start-up that the CPU it runs on has what the target CPU needs (CPUCheck).

/// Named x86-64 CPUs whose vector unit the profiles are tiled for. Anything not listed is `generic`.
let avx512CPUs: Set<String> = [
    "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
    "rocketlake", "tigerlake", "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d",
    "diamondrapids", "znver4", "znver5", "x86-64-v4",
]
let avx2CPUs: Set<String> = [
    "haswell", "broadwell", "skylake", "alderlake", "raptorlake", "meteorlake", "arrowlake", "arrowlake-s",
    "lunarlake", "pantherlake", "gracemont", "znver1", "znver2", "znver3", "bdver4", "x86-64-v3",
]

/// The host's CPU flags (Linux), empty elsewhere.
func hostCPUFlags() -> Set<String> {
    guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
          let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
          let colon = line.firstIndex(of: ":") else { return [] }
    return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
}

/// The profile the host's own vector unit supports.
func hostProfile() -> String {
    #if arch(x86_64)
    let flags = hostCPUFlags()
    if flags.isEmpty { return "avx2" }   // macOS on Intel: every Mac since 2013 has AVX2
    if ["avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"].allSatisfy(flags.contains) { return "avx512" }
    if ["avx2", "fma", "bmi2"].allSatisfy(flags.contains) { return "avx2" }
    #endif
    return "generic"
}

let environment = ProcessInfo.processInfo.environment
func setting(_ name: String) -> String? {
    environment[name].map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
}

/// The LLVM CPU name code is generated for (nil: the compiler's default, arm64 without override).
let targetCPU: String? = {
    if let cpu = setting("EP_TARGET_CPU") { return cpu }
    #if arch(x86_64)
    switch hostProfile() {
    case "avx512": return "skylake-avx512"
    case "avx2": return "haswell"
    default: return "x86-64"
    }
    #else
    return nil
    #endif
}()

let kernelProfile: String = {
    if let p = setting("EP_KERNEL_PROFILE") {
        guard ["avx512", "avx2", "generic"].contains(p) else {
            fatalError("EP_KERNEL_PROFILE must be avx512, avx2 or generic, got '\(p)'")
        }
        return p
    }
    #if arch(x86_64)
    guard let cpu = targetCPU else { return "generic" }
    if cpu == "native" { return hostProfile() }
    return avx512CPUs.contains(cpu) ? "avx512" : avx2CPUs.contains(cpu) ? "avx2" : "generic"
    #else
    return "generic"
    #endif
}()

/// Swift code generation plus the compilation condition naming the profile (EP_PROFILE_AVX512, ...).
let cpuFlags: [SwiftSetting] = {
    var s: [SwiftSetting] = [.define("EP_PROFILE_\(kernelProfile.uppercased())")]
    if let cpu = targetCPU { s.append(.unsafeFlags(["-target-cpu", cpu])) }
    return s
}()

/// The C side of the start-up check: `CPUTarget` is compiled for the target CPU, so the compiler's
/// feature macros list what the Swift code may use (it holds data only, no code runs from it);
/// `CPUCheck` is compiled for the baseline and compares that list with the CPU's before `main`.
let targetNameDefines: [CSetting] = [
    .define("EP_TARGET_CPU_NAME", to: "\"\(targetCPU ?? "default")\""),
    .define("EP_KERNEL_PROFILE_NAME", to: "\"\(kernelProfile)\""),
]
let cpuTargetCFlags: [CSetting] = {
    #if arch(x86_64)
    if let cpu = targetCPU { return targetNameDefines + [.unsafeFlags(["-march=\(cpu)"])] }
    #endif
    return targetNameDefines
}()

let package = Package(
    name: "ExcitationPullbacks",
    products: [
        .executable(name: "runner", targets: ["Runner"]),
        .executable(name: "bench", targets: ["Bench"]),
        .library(name: "SIMDCore", targets: ["SIMDCore"]),
        .library(name: "Recipes", targets: ["Recipes"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // MARK: System C libraries (found through pkg-config; installed by scripts/install-deps).
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"]), .brew(["libyaml"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Our own ~60-line C wrapper: libjpeg's error_exit must longjmp, which Swift cannot do.
        .target(name: "CJPEGShim", dependencies: ["CJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),

        // MARK: Start-up CPU check (see above): no target flags on CPUCheck, on purpose.
        .target(name: "CPUTarget", cSettings: cpuTargetCFlags),
        .target(name: "CPUCheck", dependencies: ["CPUTarget"], cSettings: targetNameDefines),

        // MARK: The engine: tensors, kernels, autodiff. No file or network I/O.
        .target(name: "SIMDCore", dependencies: ["CPUCheck"], swiftSettings: cpuFlags),

        // MARK: Recipes: schema, models, data, weights, images, experiments, reports.
        .target(name: "Recipes",
                dependencies: ["SIMDCore", "CPNG", "CYAML", "CJPEG", "CJPEGShim", "CZlib"],
                swiftSettings: cpuFlags),

        // MARK: Executables.
        .executableTarget(name: "Runner",
                          dependencies: ["Recipes", "SIMDCore",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: cpuFlags),
        // The local page's parameters, computations and job queue (`runner serve` without the
        // HTTP server), always built so the fuzz build reaches its request parsing.
        .target(name: "Explore", dependencies: ["Recipes", "SIMDCore"], swiftSettings: cpuFlags),
        .executableTarget(name: "Bench", dependencies: ["SIMDCore", "Recipes"],
                          swiftSettings: cpuFlags),

        // MARK: Tests.
        .testTarget(name: "SIMDCoreTests", dependencies: ["SIMDCore"], swiftSettings: cpuFlags),
        .testTarget(name: "RecipesTests", dependencies: ["Recipes", "SIMDCore"], swiftSettings: cpuFlags),
    ],
    // Language mode 5: kernels share unsafe buffers across `concurrentPerform` workers; the
    // static, disjoint output partitions (see Parallel.swift) are the race-freedom argument.
    swiftLanguageModes: [.v5]
)

// MARK: - Fuzz targets (libFuzzer) — only when EP_FUZZ=1, so normal builds and tests never see them.
// Built by scripts/fuzz with -sanitize=fuzzer,address into .build-fuzz; see README "Fuzzing".
if Context.environment["EP_FUZZ"] == "1" {
    package.targets.append(.executableTarget(name: "FuzzTargets", dependencies: ["Recipes", "SIMDCore", "Explore"],
                                             path: "Fuzz/Sources/FuzzTargets", swiftSettings: cpuFlags))
    package.products.append(.executable(name: "fuzz-targets", targets: ["FuzzTargets"]))
}

// MARK: - The local web page (`runner serve`) — left out when EP_NO_SERVER=1.
// Hummingbird and SwiftNIO add minutes to a first build; builds that never serve the page (the
// other kernel profiles in scripts/check-profiles, the fuzz build) set EP_NO_SERVER=1.
if Context.environment["EP_NO_SERVER"] != "1" {
    package.dependencies.append(.package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"))
    package.targets.append(.target(name: "Serve",
                                   dependencies: ["Explore", "Recipes", "SIMDCore",
                                                  .product(name: "Hummingbird", package: "hummingbird")],
                                   swiftSettings: cpuFlags))
    package.targets.append(.testTarget(name: "ServeTests",
                                       dependencies: ["Serve", "Explore", "Recipes", "SIMDCore"],
                                       swiftSettings: cpuFlags))
    if let runner = package.targets.first(where: { $0.name == "Runner" }) {
        runner.dependencies += ["Serve", "Explore"]
        runner.swiftSettings = (runner.swiftSettings ?? []) + [.define("EP_SERVE")]
    }
}
