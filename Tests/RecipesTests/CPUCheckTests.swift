import XCTest
import Foundation
import SIMDCore

/// The start-up CPU check (Sources/CPUCheck): a binary built for instructions this CPU lacks says
/// so in one line and exits 2 instead of dying on SIGILL. The failure is forced with
/// EP_FORCE_CPU_CHECK_FAIL, since this machine can run its own build.
final class CPUCheckTests: XCTestCase {
    /// Runs the built `runner` with `args` and extra environment; returns (status, stdout, stderr).
    func runRunner(_ args: [String], environment extra: [String: String]) throws -> (Int32, String, String) {
        guard let runner = RunnerCLITests.findRunner() else {
            throw XCTSkip("the runner executable is not built (swift build -c release)")
        }
        let p = Process()
        p.executableURL = runner
        p.arguments = args
        p.environment = ProcessInfo.processInfo.environment.merging(extra) { $1 }
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        // The outputs are at most a few lines: reading one pipe to its end cannot block the other.
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func testForcedFailurePrintsOneLineAndExits2() throws {
        let (status, stdout, stderr) = try runRunner(["--version"], environment: ["EP_FORCE_CPU_CHECK_FAIL": "1"])
        XCTAssertEqual(status, 2)
        XCTAssertEqual(stdout, "", "nothing runs after a failed check")
        let lines = stderr.split(separator: "\n", omittingEmptySubsequences: false)
        XCTAssertEqual(lines.count, 2, "one line and its newline: \(stderr)")
        let line = String(lines[0])
        print("forced CPU check: \(line)")
        XCTAssertTrue(line.hasPrefix("error: this build needs CPU features "), line)
        XCTAssertTrue(line.contains("target CPU \(KernelProfile.targetCPU), kernel profile \(KernelProfile.current.rawValue)"), line)
        #if arch(x86_64)
        // What the CPU has (forced: the baseline) and how to rebuild for it.
        XCTAssertTrue(line.contains("this CPU has only the x86-64 baseline (SSE2)"), line)
        XCTAssertTrue(line.hasSuffix("rebuild for it with: EP_TARGET_CPU=x86-64 swift build -c release"), line)
        if KernelProfile.current == .avx512 { XCTAssertTrue(line.contains("avx512f"), line) }
        #endif
    }

    func testVersionNamesProfileAndTargetCPU() throws {
        let (status, stdout, _) = try runRunner(["--version"], environment: ["EP_FORCE_CPU_CHECK_FAIL": "0"])
        XCTAssertEqual(status, 0)
        let t = KernelProfile.current.microTile
        XCTAssertEqual(stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                       "0.1.0, kernels \(KernelProfile.current.rawValue) (\(t.rows)x\(t.columns) tiles), target CPU \(KernelProfile.targetCPU)")
    }
}
