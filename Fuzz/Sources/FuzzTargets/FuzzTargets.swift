// MARK: - libFuzzer entry point for every parser of untrusted bytes
//
// One binary, many targets: FUZZ_TARGET=<name> picks the parser (scripts/fuzz sets it).
// A target may throw any error — that is a clean refusal; only a trap, a sanitizer report,
// a hang or a memory blow-up is a finding.
import Foundation
@testable import Recipes

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    FuzzTarget.selected.run(Data(bytes: data, count: size))
    return 0
}

/// libFuzzer's driver (in the runtime that -sanitize=fuzzer links).
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<CInt>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> CInt) -> CInt

/// SwiftPM links an executable's entry point under its own name, so the program starts here
/// and hands over to libFuzzer rather than relying on the runtime's `main`.
@main
enum FuzzMain {
    static func main() {
        _ = FuzzTarget.selected                 // an unknown FUZZ_TARGET stops before fuzzing
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzOneInput))
    }
}

enum FuzzTarget: String, CaseIterable {
    case recipe, safetensors, pth, pickle, png, jpeg, idx, cifar, tar, set, serve

    /// The target named by FUZZ_TARGET; an unknown or missing name stops the fuzzer at once.
    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? ""
        guard let t = FuzzTarget(rawValue: name) else {
            FileHandle.standardError.write(Data("FUZZ_TARGET must be one of \(allCases.map(\.rawValue).joined(separator: ", ")), got '\(name)'\n".utf8))
            exit(2)
        }
        return t
    }()

    func run(_ data: Data) {
        switch self {
        case .safetensors: _ = try? SafeTensors(data: data)
        case .pth: _ = try? TorchCheckpoint(data: data)
        case .pickle: FuzzPickle.run(data)
        case .png: _ = try? PNG.decode(data)
        case .jpeg: _ = try? JPEG.decode(data)
        case .idx: _ = try? IDX.parse(data)
        case .cifar:
            _ = try? CIFAR.parse(data, variant: data.first.map { $0 & 1 == 0 } ?? true ? .cifar10 : .cifar100)
        case .tar: _ = try? Tar.members(data, wanted: ["a", "data_batch_1.bin", "cifar-10-batches-bin/test_batch.bin"], file: "<fuzz>")
        case .recipe: _ = try? FuzzRecipe.plan(data)
        case .set: _ = try? FuzzRecipe.overrides(data)
        case .serve: FuzzServe.run(data)
        }
    }
}
