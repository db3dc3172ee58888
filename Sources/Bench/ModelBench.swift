// MARK: - bench pullback | train: whole-model measurements against PyTorch in the same run
//
//   bench pullback [--threads N] [--repeat R]
//       one excitation-pullback step (forward + input gradient, batch 1, 224x224, T = 0.3) on
//       ResNet50, VGG11_BN, DenseNet121 — this engine vs PyTorch with the same thread count —
//       and the peak resident memory of each. Each architecture runs in its own child process
//       (this binary re-invoked as `bench pullback-one ARCH`, the PyTorch script likewise), so a
//       peak RSS belongs to one model alone.
//   bench train [--threads N] [--repeat R]
//       training throughput (images/s) of paper B's C4GAP width 128 on 32x32x3, batch 32, Adam,
//       as DNN and as DLGN(x,1), vs PyTorch (bench/torch/torch_train_bench.py).
//       BENCH_TRAIN_PHASES=1 also prints each model's forward / backward / Adam wall times;
//       BENCH_TRAIN_ONLY=dnn (or dlgn) times one model only (for profilers).
//       On a machine shared with other jobs, `BENCH_CPU_TIME=1 ... --threads 1` (thread CPU time)
//       is the steadier comparison between two builds.
//   bench train-kernels [--threads N] [--repeat R]
//       the conv kernels of one C4GAP-128 training step at batch 32, one by one (forward, input
//       gradient, weight gradient batched and per image, bias gradient), ms and GFLOPS.
import Foundation
import SIMDCore
import Recipes

let pullbackArchitectures = ImageNetArchitecture.paperA.map(\.rawValue)

func peakRSSMegabytes() -> Double {
    var u = rusage()
    getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
    return Double(u.ru_maxrss) / 1024
}

/// Runs a command and returns its stdout (nil if it fails to start or exits non-zero).
func capture(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: executable)
    p.arguments = arguments
    if let environment { p.environment = environment }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    do { try p.run() } catch { return nil }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return p.terminationStatus == 0 ? String(decoding: data, as: UTF8.self) : nil
}

func jsonLines(_ text: String?) -> [[String: Any]] {
    (text ?? "").split(separator: "\n").compactMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
    }
}

var torchPython: String { ProcessInfo.processInfo.environment["TORCH_PYTHON"] ?? ".venv-reference/bin/python" }

// MARK: Pullback

/// The model with deterministic synthetic weights (timing does not depend on their values).
func syntheticPixelModel<M: ImageClassifier>(_ backbone: M) throws -> Classifier {
    var b = backbone
    try SyntheticWeights.fill(&b, seed: 1)
    return PixelModel(b)
}

/// Child process: time one architecture and print a JSON line.
func pullbackOne(_ arch: String, _ o: Options) throws {
    let model = try syntheticPixelModel(try ImageNetModels.make(arch))
    var rng = SeededRNG(seed: 7)
    let x = rng.uniformTensor([1, 3, 224, 224], bound: 1)
    let policy = try GatePolicy.excitation(temperature: 0.3)
    let t = try Parallel.$threadCount.withValue(o.threads) { () throws -> Double in
        var failure: Error?
        let m = medianTime(o.repeats) {
            do { _ = try ExplanationMethod.pullback(model, x, targets: [0], policy: policy) } catch { failure = error }
        }
        if let failure { throw failure }
        return m
    }
    print("{\"arch\": \"\(arch)\", \"median_ms\": \(t * 1000), \"peak_rss_mb\": \(peakRSSMegabytes())}")
}

func benchPullback(_ o: Options) {
    print("One excitation-pullback step: forward + input gradient, batch 1, 224x224, T = 0.3, \(o.threads) threads, median of \(o.repeats)")
    print("load average at start: \(loadAverage())")
    print("| model | this engine ms | PyTorch ms | ratio (engine / PyTorch) | engine peak RSS MB | PyTorch peak RSS MB |")
    print("|---|---|---|---|---|---|")
    let me = CommandLine.arguments[0]
    let script = ProcessInfo.processInfo.environment["TORCH_PULLBACK_SCRIPT"] ?? "bench/torch/torch_pullback_bench.py"
    for arch in pullbackArchitectures {
        let ours = jsonLines(capture(me, ["pullback-one", arch, "--threads", "\(o.threads)", "--repeat", "\(o.repeats)"])).first
        let theirs = FileManager.default.fileExists(atPath: torchPython)
            ? jsonLines(capture(torchPython, [script, arch, "\(o.threads)", "\(o.repeats)"])).first : nil
        let a = ours?["median_ms"] as? Double, b = theirs?["median_ms"] as? Double
        let ratio = (a != nil && b != nil) ? f2(a! / b!) : "n/a"
        print("| \(arch) | \(a.map(f1) ?? "failed") | \(b.map(f1) ?? "PyTorch: not available") | \(ratio) | \((ours?["peak_rss_mb"] as? Double).map(f1) ?? "-") | \((theirs?["peak_rss_mb"] as? Double).map(f1) ?? "-") |")
    }
}

// MARK: Training throughput

func benchTrain(_ o: Options) throws {
    print("Training throughput: C4GAP width 128, 32x32x3, batch 32, Adam, cross-entropy, \(o.threads) threads, median of \(o.repeats) steps")
    print("load average at start: \(loadAverage())")
    var rng = SeededRNG(seed: 3)
    let x = rng.normalTensor([32, 3, 32, 32])
    let y = (0..<32).map { _ in rng.below(10) }
    let script = ProcessInfo.processInfo.environment["TORCH_TRAIN_SCRIPT"] ?? "bench/torch/torch_train_bench.py"
    let theirs = FileManager.default.fileExists(atPath: torchPython)
        ? jsonLines(capture(torchPython, [script, "\(o.threads)", "\(o.repeats)"])) : []
    print("| model | this engine images/s | PyTorch images/s | ratio (engine / PyTorch time) |")
    print("|---|---|---|---|")
    let only = ProcessInfo.processInfo.environment["BENCH_TRAIN_ONLY"]
    for (name, config) in [("dnn", GatingConfiguration.dnn), ("dlgn", GatingConfiguration.dlgn(valueInput: .ones))]
    where only == nil || only == name {
        var net = try GatedNetwork(architecture: .c4gap(inputChannels: 3, imageSize: 32, width: 128, classes: 10),
                                   configuration: config, seed: 1)
        var trainer = Trainer(optimizer: Adam(), schedule: ConstantLearningRate(3e-4),
                              configuration: TrainingConfiguration(epochs: 1, batchSize: 32))
        let t = try Parallel.$threadCount.withValue(o.threads) { () throws -> Double in
            var failure: Error?
            let m = medianTime(o.repeats) {
                do { _ = try trainer.step(&net, x, y, learningRate: 3e-4) } catch { failure = error }
            }
            if let failure { throw failure }
            return m
        }
        if ProcessInfo.processInfo.environment["BENCH_TRAIN_PHASES"] == "1" {
            try trainPhases(net, x, y, o)
        }
        let torchMs = theirs.first { $0["variant"] as? String == name }?["median_ms"] as? Double
        let ratio = torchMs.map { f2(t * 1000 / $0) } ?? "n/a"
        print("| C4GAP-128 \(name == "dnn" ? "DNN" : "DLGN(x,1)") | \(f1(32 / t)) | \(torchMs.map { f1(32000 / $0) } ?? "PyTorch: not available") | \(ratio) |")
    }
}

func loadAverage() -> String {
    (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
}

// MARK: Training kernels one by one

func benchTrainKernels(_ o: Options) throws {
    print("C4GAP-128 conv kernels at batch 32 (32x32 maps), \(o.threads) threads, median of \(o.repeats)")
    print("load average at start: \(loadAverage())")
    print("| kernel | layer | ms | GFLOPS |")
    print("|---|---|---|---|")
    var rng = SeededRNG(seed: 4)
    let layers = ProcessInfo.processInfo.environment["BENCH_CIN"].flatMap(Int.init).map { [$0] } ?? [3, 128]
    for cin in layers {
        let g = try Conv2D.geometry(input: [32, cin, 32, 32], weight: [128, cin, 3, 3], bias: [128], stride: 1, padding: 1)
        let x = rng.normalTensor([32, cin, 32, 32]), w = rng.normalTensor([128, cin, 3, 3])
        let dy = rng.normalTensor([32, 128, 32, 32])
        var y = Tensor(zeros: [32, 128, 32, 32]), dx = Tensor(zeros: x.shape), dw = Tensor(zeros: w.shape)
        var db = Tensor(zeros: [128])
        let flops = 32 * g.flops
        func row(_ name: String, _ body: () -> Void) {
            if let only = ProcessInfo.processInfo.environment["BENCH_ONLY"], !name.contains(only) { return }
            let t = Parallel.$threadCount.withValue(o.threads) { medianTime(o.repeats, body) }
            print("| \(name) | Cin \(cin) | \(f2(t * 1000)) | \(name.hasPrefix("bias") ? "-" : f1(flops / t / 1e9)) |")
        }
        x.withUnsafeBufferPointer { xp in w.withUnsafeBufferPointer { wp in dy.withUnsafeBufferPointer { dp in
            let (xb, wb, db0) = (xp.baseAddress!, wp.baseAddress!, dp.baseAddress!)
            y.withUnsafeMutableBufferPointer { yp in
                row("forward") { Conv2D.forward(x: xb, batch: 32, weight: wb, bias: nil, g, y: yp.baseAddress!) }
            }
            if cin > 3 {
                dx.withUnsafeMutableBufferPointer { p in
                    row("input gradient") { Conv2D.inputGradient(dy: db0, batch: 32, weight: wb, g, dx: p.baseAddress!) }
                }
            }
            dw.withUnsafeMutableBufferPointer { p in
                row("weight gradient (batched)") { Conv2D.weightGradientBatched(dy: db0, x: xb, batch: 32, g, dw: p.baseAddress!) }
                row("weight gradient (per image)") { Conv2D.weightGradientPerImage(dy: db0, x: xb, batch: 32, g, dw: p.baseAddress!) }
            }
            db.withUnsafeMutableBufferPointer { p in
                row("bias gradient") { Conv2D.biasGradient(dy: db0, batch: 32, channels: 128, pixels: 1024, db: p.baseAddress!) }
            }
        } } }
    }
}

/// BENCH_TRAIN_PHASES=1: wall time of one training step's phases (forward on a recording tape,
/// backward, Adam), medians over the repeats, printed before the model's row.
func trainPhases(_ net: GatedNetwork, _ x: Tensor, _ y: [Int], _ o: Options) throws {
    var times: [[Double]] = [[], [], []]
    var opt = Adam()
    var params = net.parameters
    try Parallel.$threadCount.withValue(o.threads) {
        for r in 0...o.repeats {
            let t0 = now()
            let tape = Tape(weightCache: PackedWeightCache())
            let out = try net.forward(on: tape, input: x, training: true)
            let loss = try tape.crossEntropy(logits: out.logits, labels: y)
            let t1 = now()
            let g = try tape.backward(from: loss)
            let t2 = now()
            var named: [String: Tensor] = [:]
            for (k, v) in out.parameters { if let gv = g[v] { named[k] = gv } }
            try opt.step(&params, gradients: named, learningRate: 3e-4)
            let t3 = now()
            if r > 0 { times[0].append(t1 - t0); times[1].append(t2 - t1); times[2].append(t3 - t2) }
        }
    }
    let med = times.map { $0.sorted()[$0.count / 2] * 1000 }
    print("phases \(net.configuration): forward \(f1(med[0])) ms, backward \(f1(med[1])) ms, Adam \(f2(med[2])) ms")
}
