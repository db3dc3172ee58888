// MARK: - Kernel profiles
//
// Which profile the build compiled in (a compilation condition Package.swift sets from the
// target CPU) and which CPU the code was generated for. The micro-kernels and the vector type
// each profile uses: MicroKernels.swift.
import CPUCheck

/// The kernel profile this binary was built with, and the CPU its code was generated for.
///
/// ```swift
/// print(KernelProfile.current, KernelProfile.targetCPU)   // avx512 skylake-avx512
/// ```
public enum KernelProfile: String, CaseIterable, Sendable {
    case avx512, avx2, generic

    #if EP_PROFILE_AVX512
    public static let current = KernelProfile.avx512
    #elseif EP_PROFILE_AVX2
    public static let current = KernelProfile.avx2
    #else
    public static let current = KernelProfile.generic
    #endif

    /// The LLVM CPU name the code was generated for (`EP_TARGET_CPU`, or chosen from the building
    /// machine), "default" when the compiler's own default was used.
    public static var targetCPU: String { String(cString: ep_build_target_cpu()) }

    /// Floats per vector register the profile's micro-kernels use.
    public var vectorWidth: Int {
        switch self {
        case .avx512: return 16
        case .avx2: return 8
        case .generic: return 4
        }
    }

    /// The GEMM micro-tile, rows x columns: 6 broadcast rows by two vectors.
    public var microTile: (rows: Int, columns: Int) { (6, 2 * vectorWidth) }

    /// One line for `--version` and run manifests, e.g. "kernels avx512 (6x32 tiles), target CPU skylake-avx512".
    public static var buildDescription: String {
        let t = current.microTile
        return "kernels \(current.rawValue) (\(t.rows)x\(t.columns) tiles), target CPU \(targetCPU)"
    }
}
