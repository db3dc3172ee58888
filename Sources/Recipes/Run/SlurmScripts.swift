// MARK: - Slurm job scripts
//
// `runner slurm <recipe>` writes two sbatch scripts into `<run dir>/slurm/`:
//   shards.sbatch  a job array, task i runs `runner <recipe> --shard i/N` (threads from
//                  SLURM_CPUS_PER_TASK); a failed task can be resubmitted alone with
//                  `sbatch --array=<i> shards.sbatch`
//   merge.sbatch   names the units still missing (`runner plan … --check-complete`, exit 1 if
//                  any), else runs the recipe without --shard, which finds every unit cached
//                  and writes the report; submitted with --dependency=afterok:<array job>
// Every path in the scripts is absolute: they run from wherever Slurm starts them.
import Foundation

/// What the scripts run and with which resources.
public struct SlurmJob: Sendable {
    /// Absolute path of the runner executable.
    public var runner: String
    /// Absolute path of the recipe.
    public var recipe: String
    /// `--set` values and `--seed`, passed to every command.
    public var overrides: [String]
    public var seed: UInt64?
    /// Absolute run directory (on a file system every node shares).
    public var runDirectory: String
    /// Directory the jobs start in (relative data paths resolve from here).
    public var workingDirectory: String
    public var shards: Int
    public var cpusPerTask: Int
    public var time: String?
    public var partition: String?
    public var jobName: String

    public init(runner: String, recipe: String, overrides: [String], seed: UInt64?, runDirectory: String,
                workingDirectory: String, shards: Int, cpusPerTask: Int, time: String?, partition: String?, jobName: String) {
        self.runner = runner; self.recipe = recipe; self.overrides = overrides; self.seed = seed
        self.runDirectory = runDirectory; self.workingDirectory = workingDirectory; self.shards = shards
        self.cpusPerTask = cpusPerTask; self.time = time; self.partition = partition; self.jobName = jobName
    }

    /// Where the scripts and the jobs' logs go.
    public var scriptDirectory: String { runDirectory + "/slurm" }

    /// `--set …` and `--seed …` as shell words.
    var recipeArguments: String {
        (overrides.flatMap { ["--set", $0] } + (seed.map { ["--seed", String($0)] } ?? []) + ["--out", runDirectory])
            .map(SlurmJob.quote).joined(separator: " ")
    }

    /// Single-quoted for sh: `it's` → `'it'\''s'`.
    static func quote(_ s: String) -> String {
        if !s.isEmpty, s.allSatisfy({ $0.isLetter || $0.isNumber || "-_./=:,+@%".contains($0) }) { return s }
        return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func header(name: String, output: String) -> [String] {
        var lines = ["#!/bin/bash", "#SBATCH --job-name=\(SlurmJob.quote(name))", "#SBATCH --cpus-per-task=\(cpusPerTask)",
                     "#SBATCH --ntasks=1", "#SBATCH --output=\(SlurmJob.quote(output))"]
        if let t = time { lines.append("#SBATCH --time=\(t)") }
        if let p = partition { lines.append("#SBATCH --partition=\(p)") }
        return lines
    }

    /// The job array: one task per shard.
    public var shardsScript: String {
        var lines = header(name: jobName + "-shards", output: scriptDirectory + "/shard-%a.out")
        lines.insert("#SBATCH --array=1-\(shards)", at: 2)
        lines += [
            "# Shard i of \(shards) computes its share of the recipe's units of work into the run",
            "# directory's unit store. Resubmit failed shards alone: sbatch --array=<i>[,<j>…] \(SlurmJob.quote(scriptDirectory + "/shards.sbatch"))",
            "set -euo pipefail",
            "cd \(SlurmJob.quote(workingDirectory))",
            "exec \(SlurmJob.quote(runner)) run \(SlurmJob.quote(recipe)) \(recipeArguments) --quiet \\",
            "  --shard \"${SLURM_ARRAY_TASK_ID}/\(shards)\" --threads \"${SLURM_CPUS_PER_TASK:-\(cpusPerTask)}\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// The merge job: submit with --dependency=afterok:<array job id>.
    public var mergeScript: String {
        var lines = header(name: jobName + "-merge", output: scriptDirectory + "/merge.out")
        lines += [
            "# Runs after every shard succeeded. Names the units still missing (and fails) if any,",
            "# else writes the report from the units every shard computed.",
            "set -euo pipefail",
            "cd \(SlurmJob.quote(workingDirectory))",
            "\(SlurmJob.quote(runner)) plan \(SlurmJob.quote(recipe)) \(recipeArguments) --check-complete > /dev/null",
            "exec \(SlurmJob.quote(runner)) run \(SlurmJob.quote(recipe)) \(recipeArguments) --quiet --threads \"${SLURM_CPUS_PER_TASK:-\(cpusPerTask)}\"",
        ]
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes both scripts (atomically, executable); returns their paths.
    public func write() throws -> (shards: URL, merge: URL) {
        let dir = URL(fileURLWithPath: scriptDirectory)
        let shardsURL = dir.appendingPathComponent("shards.sbatch"), mergeURL = dir.appendingPathComponent("merge.sbatch")
        try AtomicFile.write(shardsScript, to: shardsURL)
        try AtomicFile.write(mergeScript, to: mergeURL)
        for u in [shardsURL, mergeURL] { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: u.path) }
        return (shardsURL, mergeURL)
    }

    // MARK: Submitting

    /// Runs `sbatch --parsable <args>` and returns the job id it prints.
    public static func sbatch(_ arguments: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["sbatch", "--parsable"] + arguments
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        do { try p.run() } catch { throw RecipeError("cannot run sbatch: \(error.localizedDescription) (is Slurm installed and on PATH?)") }
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: o, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, let id = text.split(separator: ";").first, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw RecipeError("sbatch \(arguments.joined(separator: " ")) failed (status \(p.terminationStatus)): \(String(decoding: e, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        return String(id)
    }
}
