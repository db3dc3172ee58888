// swift-tools-version:6.0
//
// A dependency-light Swift engine that reproduces excitation pullbacks (paper A) and
// gated networks / the neural path kernel (paper B). See README.md and docs/method.md.
import PackageDescription

/// Code generation for the machines this project runs on (AVX-512: Zen 4 and Sapphire Rapids).
/// `skylake-avx512` = AVX-512 F/BW/CD/DQ/VL, the subset both have, so `SIMD16<Float>` lives in one zmm register and
/// `addProduct` lowers to `vfmadd231ps`.
let cpuFlags: [SwiftSetting] = [
    .unsafeFlags(["-target-cpu", "skylake-avx512"]),
]

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
        // MARK: System C libraries (found through pkg-config; installed with apt).
        .systemLibrary(name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CYAML", path: "Sources/CYAML", pkgConfig: "yaml-0.1",
                       providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
                       providers: [.apt(["libjpeg-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),

        // Our own ~60-line C wrapper: libjpeg's error_exit must longjmp, which Swift cannot do.
        .target(name: "CJPEGShim", dependencies: ["CJPEG"], linkerSettings: [.linkedLibrary("jpeg")]),

        // MARK: The engine: tensors, kernels, autodiff. No file or network I/O.
        .target(name: "SIMDCore", swiftSettings: cpuFlags),

        // MARK: Recipes: schema, models, data, weights, images, experiments, reports.
        .target(name: "Recipes",
                dependencies: ["SIMDCore", "CPNG", "CYAML", "CJPEG", "CJPEGShim", "CZlib"],
                swiftSettings: cpuFlags),

        // MARK: Executables.
        .executableTarget(name: "Runner",
                          dependencies: ["Recipes", "SIMDCore",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: cpuFlags),
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
    package.targets.append(.executableTarget(name: "FuzzTargets", dependencies: ["Recipes", "SIMDCore"],
                                             path: "Fuzz/Sources/FuzzTargets", swiftSettings: cpuFlags))
    package.products.append(.executable(name: "fuzz-targets", targets: ["FuzzTargets"]))
}
