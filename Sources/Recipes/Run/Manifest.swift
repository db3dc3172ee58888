// MARK: - Manifest
//
// Enough to reproduce or audit a run: which code (git commit, dirty flag, executable fingerprint) built
// for which CPU (kernel profile, target CPU), which toolchain and C libraries, which parameters and
// seed, which input files (SHA-256), how long each step took.
import Foundation
import CPNG
import CYAML
import CJPEG
import SIMDCore

public struct Manifest {
    public struct Input: Sendable { public let path: String; public let sha256: String }
    public struct StepTiming { let id: String; let kind: String; let seconds: Double; let cached: Bool; let hash: String }

    let recipe: Recipe
    let parameters: ResolvedParameters
    let settings: RunSettings
    var inputs: [Input] = []
    var steps: [StepTiming] = []
    var wallSeconds: Double = 0
    var verification = "not run"
    /// The code fingerprint that is part of every step's cache key.
    var code = ""
    /// The files this run put in the run directory (top-level names).
    var artifacts: [String] = []

    init(recipe: Recipe, parameters: ResolvedParameters, settings: RunSettings) {
        self.recipe = recipe; self.parameters = parameters; self.settings = settings
    }

    mutating func recordInput(_ url: URL) {
        inputs.append(Input(path: url.path, sha256: (try? SHA256.hexDigest(ofFile: url)) ?? "unreadable"))
    }

    /// Versions of the toolchain and of the C libraries actually linked.
    static var libraries: [String: String] {
        var v: [String: String] = [:]
        #if compiler(>=6.3)
        v["swift"] = "6.3 or newer"
        #else
        v["swift"] = "older than 6.3"
        #endif
        v["libpng"] = String(cString: png_get_libpng_ver(nil))
        v["libyaml"] = String(cString: yaml_get_version_string())
        v["libjpeg"] = "API \(JPEG_LIB_VERSION)"
        return v
    }

    /// `git rev-parse HEAD` and whether the tree has changes, in the recipe's repository.
    static func git(in dir: URL) -> (commit: String, dirty: Bool?) {
        func run(_ args: [String]) -> String? {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = ["git", "-C", dir.path] + args
            let out = Pipe()
            p.standardOutput = out; p.standardError = FileHandle.nullDevice
            do { try p.run() } catch { return nil }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
        }
        guard let head = run(["rev-parse", "HEAD"])?.trimmingCharacters(in: .whitespacesAndNewlines) else { return ("unknown", nil) }
        let status = run(["status", "--porcelain", "--untracked-files=no"]) ?? ""
        return (head, !status.isEmpty)
    }

    func json() throws -> Data {
        let g = Manifest.git(in: URL(fileURLWithPath: recipe.file).deletingLastPathComponent())
        var seedValue: Any = NSNull()
        if case .int(let s)? = parameters["seed"] { seedValue = s }
        let obj: [String: Any] = [
            "recipe": recipe.file,
            "name": recipe.name,
            "title": recipe.title,
            "created": ISO8601DateFormatter().string(from: Date()),
            "git": ["commit": g.commit, "dirty": g.dirty.map { $0 as Any } ?? NSNull()],
            "toolchain": Manifest.libraries,
            "build": ["kernel_profile": KernelProfile.current.rawValue, "target_cpu": KernelProfile.targetCPU],
            "threads": settings.threads ?? ProcessInfo.processInfo.activeProcessorCount,
            "seed": seedValue,
            "overrides": settings.overrides,
            "parameters": Dictionary(uniqueKeysWithValues: parameters.order.map { ($0, parameters[$0]!.description) }),
            "inputs": inputs.map { ["path": $0.path, "sha256": $0.sha256] },
            "steps": steps.map { ["id": $0.id, "kind": $0.kind, "seconds": ($0.seconds * 1000).rounded() / 1000,
                                  "cached": $0.cached, "hash": $0.hash] as [String: Any] },
            "wall_seconds": (wallSeconds * 1000).rounded() / 1000,
            "verification": verification,
            "code": code,
            "artifacts": artifacts,
        ]
        return try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys])
    }
}
