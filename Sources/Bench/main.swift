// MARK: - bench: FMA peak, GEMM and ResNet50 convolutions vs PyTorch (same run, same threads)
//
//   bench conv|gemm|peak|all|pullback|train|train-kernels [--threads N] [--repeat R]   (pullback, train: ModelBench.swift)
//
// Every time is the median (BENCH_STAT=min: the minimum) of R runs after one warm-up. PyTorch timings come from
// bench/torch/torch_conv_bench.py, launched with $TORCH_PYTHON (default .venv-reference/bin/python, made by reference/setup-env.sh)
// and torch.set_num_threads(N) for the same N. Run from the repository root (the script path is
// relative; override with $TORCH_BENCH_SCRIPT).
// Tuning switches (environment): BENCH_ONLY=<substring of a layer name>, BENCH_NO_PEAK=1 (skip the
// peak loops, e.g. under perf), BENCH_CPU_TIME=1 (thread CPU time instead of wall time; with
// --threads 1 only, for a machine shared with other jobs), BENCH_NO_CACHE=1 (conv: re-pack the
// weights on every call instead of using a PackedWeightCache, i.e. the cost of a first call).
import Dispatch
import Foundation
import SIMDCore
import Recipes

// MARK: Options

struct Options {
    var mode = "all"
    var threads = Parallel.threadCount
    var repeats = 5
    /// Architecture of `pullback-one` (the child process of `bench pullback`).
    var arch = ""
}

func parseOptions() -> Options {
    var o = Options()
    var args = Array(CommandLine.arguments.dropFirst())
    func fail(_ msg: String) -> Never {
        FileHandle.standardError.write("bench: \(msg)\nusage: bench conv|gemm|peak|all|pullback|train|train-kernels [--threads N] [--repeat R]\n".data(using: .utf8)!)
        exit(2)
    }
    while !args.isEmpty {
        let a = args.removeFirst()
        switch a {
        case "conv", "gemm", "peak", "all", "pullback", "train", "train-kernels": o.mode = a
        case "pullback-one":
            guard let arch = args.first else { fail("pullback-one needs an architecture") }
            o.mode = a; o.arch = arch; args.removeFirst()
        case "--threads", "--repeat":
            guard let v = args.first.flatMap(Int.init), v >= 1 else { fail("\(a) needs a positive integer") }
            args.removeFirst()
            if a == "--threads" { o.threads = v } else { o.repeats = v }
        case "-h", "--help": fail("help")
        default: fail("unknown argument '\(a)'")
        }
    }
    return o
}

// MARK: Timing

/// Wall clock, or with BENCH_CPU_TIME=1 the calling thread's CPU time (only meaningful with
/// --threads 1; useful to tune kernels on a machine shared with other jobs).
let useThreadCPUTime = ProcessInfo.processInfo.environment["BENCH_CPU_TIME"] == "1"
func now() -> Double {
    if useThreadCPUTime {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
    return Double(DispatchTime.now().uptimeNanoseconds) * 1e-9
}

/// BENCH_STAT=min: the fastest of R runs instead of the median (conv and gemm sections, and the
/// PyTorch script in the same run). On a machine shared with other jobs the minimum is the more
/// stable estimate of what the code can do; the median is the default because it is the honest one.
let useMinimum = ProcessInfo.processInfo.environment["BENCH_STAT"] == "min"
let statName = useMinimum ? "min" : "median"

func medianTime(_ repeats: Int, _ body: () -> Void) -> Double {
    body()   // warm-up
    var ts: [Double] = []
    for _ in 0..<repeats { let t0 = now(); body(); ts.append(now() - t0) }
    ts.sort()
    if useMinimum { return ts[0] }
    return ts.count % 2 == 1 ? ts[ts.count / 2] : 0.5 * (ts[ts.count / 2 - 1] + ts[ts.count / 2])
}

func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
func f1(_ x: Double) -> String { String(format: "%.1f", x) }
func f2(_ x: Double) -> String { String(format: "%.2f", x) }

// MARK: Warm-up

/// Keeps both workers busy with short fork/joins (~0.25 ms each, like a small conv) for `seconds`
/// before timing. Measured here: in a fresh process the first second or two of 1-2 ms fork/joins
/// ran at up to half speed (l1 3x3 forward 1.9-3.4 ms first, 1.3 ms after 200 calls) while the FMA
/// loop ran at full peak: parked workers on idle vCPUs wake slowly until the guest's idle polling
/// (cpuidle haltpoll) has adapted. PyTorch's OpenMP workers spin between regions instead.
func warmUpWorkers(seconds: Double) {
    let end = now() + seconds
    var sink = [Float](repeating: 0, count: 2)
    while now() < end {
        sink.withUnsafeMutableBufferPointer { sp in
            let p = sp.baseAddress!
            Parallel.forEachChunk(count: 2) { r in for w in r { p[w] += fmaLoop(20_000, Float(w + 1), width: KernelProfile.current.vectorWidth) } }
        }
    }
    if sink.contains(where: { $0.isNaN }) { print("(warm-up sink NaN)") }
}

// MARK: FMA peak

/// One multiply-add as the micro-kernels do it (`multiplyAdd`): fused where the profile has an
/// FMA instruction; plain x86-64 (generic) has none, and `addingProduct` there is a library call
/// per lane, which would make the peak the micro-kernels are measured against 40x too low.
@inline(__always)
func madd<V: SIMD>(_ c: V, _ m: V, _ a: V) -> V where V.Scalar == Float {
    #if arch(x86_64) && EP_PROFILE_GENERIC
    return c + m * a
    #else
    return c.addingProduct(m, a)
    #endif
}

/// Register-only FMA loops: 12 independent accumulators (more than latency x throughput), no
/// memory traffic, one copy per vector width (concrete types, so each lowers to one FMA
/// instruction per accumulator: SIMD16 to a zmm FMA with AVX-512, SIMD8 to a ymm FMA with AVX2).
/// Return a value so the loop is not removed.
@inline(never)
func fmaLoop16(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD16<Float>
    let m = V(repeating: 0.999999), a = V(repeating: seed * 1e-7)
    var c0 = V(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
    var c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    for _ in 0..<iterations {
        c0 = madd(c0, m, a); c1 = madd(c1, m, a); c2 = madd(c2, m, a)
        c3 = madd(c3, m, a); c4 = madd(c4, m, a); c5 = madd(c5, m, a)
        c6 = madd(c6, m, a); c7 = madd(c7, m, a); c8 = madd(c8, m, a)
        c9 = madd(c9, m, a); c10 = madd(c10, m, a); c11 = madd(c11, m, a)
    }
    let s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
    return s.sum()
}

@inline(never)
func fmaLoop8(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD8<Float>
    let m = V(repeating: 0.999999), a = V(repeating: seed * 1e-7)
    var c0 = V(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
    var c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    for _ in 0..<iterations {
        c0 = madd(c0, m, a); c1 = madd(c1, m, a); c2 = madd(c2, m, a)
        c3 = madd(c3, m, a); c4 = madd(c4, m, a); c5 = madd(c5, m, a)
        c6 = madd(c6, m, a); c7 = madd(c7, m, a); c8 = madd(c8, m, a)
        c9 = madd(c9, m, a); c10 = madd(c10, m, a); c11 = madd(c11, m, a)
    }
    let s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
    return s.sum()
}

@inline(never)
func fmaLoop4(_ iterations: Int, _ seed: Float) -> Float {
    typealias V = SIMD4<Float>
    let m = V(repeating: 0.999999), a = V(repeating: seed * 1e-7)
    var c0 = V(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
    var c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
    for _ in 0..<iterations {
        c0 = madd(c0, m, a); c1 = madd(c1, m, a); c2 = madd(c2, m, a)
        c3 = madd(c3, m, a); c4 = madd(c4, m, a); c5 = madd(c5, m, a)
        c6 = madd(c6, m, a); c7 = madd(c7, m, a); c8 = madd(c8, m, a)
        c9 = madd(c9, m, a); c10 = madd(c10, m, a); c11 = madd(c11, m, a)
    }
    let s = ((c0 + c1) + (c2 + c3)) + ((c4 + c5) + (c6 + c7)) + ((c8 + c9) + (c10 + c11))
    return s.sum()
}

/// The FMA loop for a vector width (16: zmm, 8: ymm, 4: xmm/NEON).
func fmaLoop(_ iterations: Int, _ seed: Float, width: Int) -> Float {
    switch width {
    case 16: return fmaLoop16(iterations, seed)
    case 8: return fmaLoop8(iterations, seed)
    default: return fmaLoop4(iterations, seed)
    }
}

/// Vector widths this build's target CPU executes as one register each, widest first.
var nativeWidths: [Int] {
    switch KernelProfile.current {
    case .avx512: return [16, 8]
    case .avx2: return [8]
    case .generic: return [4]
    }
}

/// GFLOPS of `workers` concurrent fmaLoops (12 FMA x `width` lanes x 2 flops per iteration each).
func measurePeak(workers: Int, repeats: Int, width: Int = KernelProfile.current.vectorWidth) -> Double {
    let iters = 20_000_000
    var sink = [Float](repeating: 0, count: workers)
    let t = medianTime(repeats) {
        sink.withUnsafeMutableBufferPointer { sp in
            let p = sp.baseAddress!
            DispatchQueue.concurrentPerform(iterations: workers) { w in p[w] = fmaLoop(iters, Float(w + 1), width: width) }
        }
    }
    if sink.contains(where: { $0.isNaN }) { print("(peak sink NaN)") }
    return Double(workers) * Double(iters) * 12 * Double(width) * 2 / t / 1e9
}

// MARK: PyTorch in the same run

struct ConvShape { let name: String; let cin, cout, k, stride, pad, hw, count: Int }

/// ResNet50 (torchvision, stride on the 3x3) at 224x224, batch 1: every distinct conv shape and how
/// many times it occurs.
let resnet50Convs: [ConvShape] = [
    ConvShape(name: "stem 7x7/2", cin: 3, cout: 64, k: 7, stride: 2, pad: 3, hw: 224, count: 1),
    ConvShape(name: "l1 1x1", cin: 64, cout: 64, k: 1, stride: 1, pad: 0, hw: 56, count: 1),
    ConvShape(name: "l1 3x3", cin: 64, cout: 64, k: 3, stride: 1, pad: 1, hw: 56, count: 3),
    ConvShape(name: "l1 1x1 up", cin: 64, cout: 256, k: 1, stride: 1, pad: 0, hw: 56, count: 4),
    ConvShape(name: "l1 1x1 down", cin: 256, cout: 64, k: 1, stride: 1, pad: 0, hw: 56, count: 2),
    ConvShape(name: "l2 1x1 in", cin: 256, cout: 128, k: 1, stride: 1, pad: 0, hw: 56, count: 1),
    ConvShape(name: "l2 3x3/2", cin: 128, cout: 128, k: 3, stride: 2, pad: 1, hw: 56, count: 1),
    ConvShape(name: "l2 1x1 up", cin: 128, cout: 512, k: 1, stride: 1, pad: 0, hw: 28, count: 4),
    ConvShape(name: "l2 ds 1x1/2", cin: 256, cout: 512, k: 1, stride: 2, pad: 0, hw: 56, count: 1),
    ConvShape(name: "l2 1x1 down", cin: 512, cout: 128, k: 1, stride: 1, pad: 0, hw: 28, count: 3),
    ConvShape(name: "l2 3x3", cin: 128, cout: 128, k: 3, stride: 1, pad: 1, hw: 28, count: 3),
    ConvShape(name: "l3 1x1 in", cin: 512, cout: 256, k: 1, stride: 1, pad: 0, hw: 28, count: 1),
    ConvShape(name: "l3 3x3/2", cin: 256, cout: 256, k: 3, stride: 2, pad: 1, hw: 28, count: 1),
    ConvShape(name: "l3 1x1 up", cin: 256, cout: 1024, k: 1, stride: 1, pad: 0, hw: 14, count: 6),
    ConvShape(name: "l3 ds 1x1/2", cin: 512, cout: 1024, k: 1, stride: 2, pad: 0, hw: 28, count: 1),
    ConvShape(name: "l3 1x1 down", cin: 1024, cout: 256, k: 1, stride: 1, pad: 0, hw: 14, count: 5),
    ConvShape(name: "l3 3x3", cin: 256, cout: 256, k: 3, stride: 1, pad: 1, hw: 14, count: 5),
    ConvShape(name: "l4 1x1 in", cin: 1024, cout: 512, k: 1, stride: 1, pad: 0, hw: 14, count: 1),
    ConvShape(name: "l4 3x3/2", cin: 512, cout: 512, k: 3, stride: 2, pad: 1, hw: 14, count: 1),
    ConvShape(name: "l4 1x1 up", cin: 512, cout: 2048, k: 1, stride: 1, pad: 0, hw: 7, count: 3),
    ConvShape(name: "l4 ds 1x1/2", cin: 1024, cout: 2048, k: 1, stride: 2, pad: 0, hw: 14, count: 1),
    ConvShape(name: "l4 1x1 down", cin: 2048, cout: 512, k: 1, stride: 1, pad: 0, hw: 7, count: 2),
    ConvShape(name: "l4 3x3", cin: 512, cout: 512, k: 3, stride: 1, pad: 1, hw: 7, count: 2),
]

let gemmSizes: [(m: Int, n: Int, k: Int)] = [(256, 256, 256), (512, 512, 512), (1024, 1024, 1024), (64, 3136, 576)]

struct TorchTimes { var version: String; var conv: [(fwd: Double, dx: Double)]; var gemm: [Double] }

/// Runs the PyTorch script; nil (with the reason printed) when torch is not available.
func torchTimes(threads: Int, repeats: Int, convs: [ConvShape], gemms: [(m: Int, n: Int, k: Int)]) -> TorchTimes? {
    let python = ProcessInfo.processInfo.environment["TORCH_PYTHON"] ?? ".venv-reference/bin/python"
    let script = ProcessInfo.processInfo.environment["TORCH_BENCH_SCRIPT"] ?? "bench/torch/torch_conv_bench.py"
    guard FileManager.default.isExecutableFile(atPath: python), FileManager.default.fileExists(atPath: script) else {
        print("PyTorch: not available (python \(python), script \(script))")
        return nil
    }
    let job: [String: Any] = [
        "threads": threads, "repeat": repeats, "stat": statName,
        "conv": convs.map { ["cin": $0.cin, "cout": $0.cout, "k": $0.k, "stride": $0.stride, "pad": $0.pad, "h": $0.hw, "w": $0.hw] },
        "gemm": gemms.map { ["m": $0.m, "n": $0.n, "k": $0.k] },
    ]
    let p = Process()
    p.executableURL = URL(fileURLWithPath: python)
    p.arguments = [script]
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe; p.standardOutput = outPipe
    p.standardError = FileHandle.nullDevice
    do {
        try p.run()
        inPipe.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: job))
        try inPipe.fileHandleForWriting.close()
        let data = outPipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
              let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let conv = obj["conv"] as? [[String: Double]], let gemm = obj["gemm"] as? [Double] else {
            print("PyTorch: not available (script exited with \(p.terminationStatus))")
            return nil
        }
        return TorchTimes(version: obj["torch"] as? String ?? "?",
                          conv: conv.map { ($0["forward"] ?? .nan, $0["input_grad"] ?? .nan) }, gemm: gemm)
    } catch {
        print("PyTorch: not available (\(error))")
        return nil
    }
}

// MARK: Sections

func randomBuffer(_ n: Int, seed: UInt64) -> [Float] {
    var rng = SeededRNG(seed: seed)
    return (0..<n).map { _ in rng.uniform(-1, 1) }
}

func benchGEMM(_ o: Options, peak2: Double?, torch: TorchTimes?) {
    print("\nGEMM (C = A·B, row-major, \(o.threads) thread(s), \(statName) of \(o.repeats))")
    print(pad("M x N x K", 18) + pad("ms", 9) + pad("GFLOPS", 9) + pad("%peak2", 8) + pad("torch ms", 10) + pad("ours/torch", 11))
    for (i, s) in gemmSizes.enumerated() {
        let a = randomBuffer(s.m * s.k, seed: 1), b = randomBuffer(s.k * s.n, seed: 2)
        var c = [Float](repeating: 0, count: s.m * s.n)
        let t = medianTime(o.repeats) {
            c.withUnsafeMutableBufferPointer { cp in
                GEMM.multiply(m: s.m, n: s.n, k: s.k, a: a, lda: s.k, b: b, ldb: s.n, c: cp.baseAddress!, ldc: s.n)
            }
        }
        let gf = 2 * Double(s.m * s.n * s.k) / t / 1e9
        var line = pad("\(s.m)x\(s.n)x\(s.k)", 18) + pad(f2(t * 1e3), 9) + pad(f1(gf), 9)
        line += pad(peak2.map { f1(100 * gf / $0) } ?? "-", 8)
        if let tt = torch?.gemm[i] { line += pad(f2(tt * 1e3), 10) + pad(f2(tt / t), 11) } // >1: we are faster
        print(line)
    }
}

let noWeightCache = ProcessInfo.processInfo.environment["BENCH_NO_CACHE"] == "1"

func benchConv(_ o: Options, peak2: Double?, torch: TorchTimes?) {
    print("\nResNet50 convolutions, 224x224 batch 1, \(o.threads) thread(s), \(statName) of \(o.repeats), weights \(noWeightCache ? "re-packed every call" : "packed once (PackedWeightCache)")")
    print("speed = torch time / our time (>1: faster than PyTorch); %pk = % of measured 2-core FMA peak")
    print("host = the 2-core FMA loop rerun right after the row's forward, % of the run's peak (! below 90:")
    print("       the shared host gave this process less than usual while the row was measured)")
    print(pad("layer", 13) + pad("Cin>Cout", 11) + pad("k/s", 5) + pad("HW", 5) + pad("x", 3)
          + pad("fwd ms", 8) + pad("GFLOPS", 8) + pad("%pk", 6) + pad("speed", 7)
          + pad("dx ms", 8) + pad("GFLOPS", 8) + pad("%pk", 6) + pad("speed", 7) + pad("host", 6))
    warmUpWorkers(seconds: 2)
    var totals = (ours: 0.0, oursDx: 0.0, torch: 0.0, torchDx: 0.0, flops: 0.0)
    var threeByThree: [(name: String, frac: Double, degraded: Bool)] = []
    let only = ProcessInfo.processInfo.environment["BENCH_ONLY"]   // substring of a layer name
    for (i, s) in resnet50Convs.enumerated() {
        if let only, !s.name.contains(only) { continue }
        let g = ConvGeometry(inChannels: s.cin, height: s.hw, width: s.hw, outChannels: s.cout,
                             kernelHeight: s.k, kernelWidth: s.k, strideH: s.stride, strideW: s.stride, padH: s.pad, padW: s.pad)
        let x = randomBuffer(s.cin * s.hw * s.hw, seed: 3), w = randomBuffer(s.cout * g.k, seed: 4)
        let dy = randomBuffer(s.cout * g.outPixels, seed: 5)
        var y = [Float](repeating: 0, count: s.cout * g.outPixels), dx = [Float](repeating: 0, count: x.count)
        // Constant weights are packed once (as in PGA / pullback steps); BENCH_NO_CACHE=1 re-packs
        // them on every call. The first (untimed warm-up) call fills the cache.
        let cache: PackedWeightCache? = noWeightCache ? nil : PackedWeightCache()
        let tf = medianTime(o.repeats) {
            y.withUnsafeMutableBufferPointer { yp in Conv2D.forward(x: x, batch: 1, weight: w, bias: nil, g, y: yp.baseAddress!, cache: cache) }
        }
        let host = peak2.map { measurePeak(workers: 2, repeats: 3) / $0 }
        let tb = medianTime(o.repeats) {
            dx.withUnsafeMutableBufferPointer { xp in Conv2D.inputGradient(dy: dy, batch: 1, weight: w, g, dx: xp.baseAddress!, cache: cache) }
        }
        let gf = g.flops / tf / 1e9, gb = g.flops / tb / 1e9
        totals.ours += Double(s.count) * tf; totals.oursDx += Double(s.count) * tb; totals.flops += Double(s.count) * g.flops
        var line = pad(s.name, 13) + pad("\(s.cin)>\(s.cout)", 11) + pad("\(s.k)/\(s.stride)", 5) + pad("\(s.hw)", 5) + pad("\(s.count)", 3)
        line += pad(f2(tf * 1e3), 8) + pad(f1(gf), 8) + pad(peak2.map { f1(100 * gf / $0) } ?? "-", 6)
        line += pad(torch.map { f2($0.conv[i].fwd / tf) } ?? "-", 7)
        line += pad(f2(tb * 1e3), 8) + pad(f1(gb), 8) + pad(peak2.map { f1(100 * gb / $0) } ?? "-", 6)
        line += pad(torch.map { f2($0.conv[i].dx / tb) } ?? "-", 7)
        line += pad(host.map { f1(100 * $0) + ($0 < 0.9 ? "!" : "") } ?? "-", 6)
        print(line)
        if let tt = torch { totals.torch += Double(s.count) * tt.conv[i].fwd; totals.torchDx += Double(s.count) * tt.conv[i].dx }
        if s.k == 3, let peak2 { threeByThree.append((s.name, gf / peak2, (host ?? 1) < 0.9)) }
    }
    var line = "all 53 convs (weighted by count): forward \(f2(totals.ours * 1e3)) ms (\(f1(totals.flops / totals.ours / 1e9)) GFLOPS)"
    line += ", inputGradient \(f2(totals.oursDx * 1e3)) ms"
    if torch != nil {
        line += "; PyTorch forward \(f2(totals.torch * 1e3)) ms, inputGradient \(f2(totals.torchDx * 1e3)) ms"
    }
    print(line)
    if !threeByThree.isEmpty {
        let worst = threeByThree.min { $0.frac < $1.frac }!
        print("3x3 forward: min \(f1(100 * worst.frac))% of 2-core peak (\(worst.name)); target >= 60%")
        let degraded = threeByThree.filter(\.degraded).map(\.name)
        if !degraded.isEmpty { print("  measured while the host was degraded (host < 90%): \(degraded.joined(separator: ", "))") }
    }
}

// MARK: Main

let o = parseOptions()
MemoryTuning.keepFreedMemory()   // as `runner` does
// Whole-model benchmarks (ModelBench.swift) run on their own.
do {
    switch o.mode {
    case "pullback-one": try pullbackOne(o.arch, o); exit(0)
    case "pullback": benchPullback(o); exit(0)
    case "train": try benchTrain(o); exit(0)
    case "train-kernels": try benchTrainKernels(o); exit(0)
    default: break
    }
} catch {
    FileHandle.standardError.write("bench \(o.mode): \(error)\n".data(using: .utf8)!)
    exit(1)
}

Parallel.$threadCount.withValue(o.threads) {
    let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    print("bench \(o.mode): \(o.threads) thread(s), repeat \(o.repeats), \(ProcessInfo.processInfo.activeProcessorCount) cores, load average \(load)")
    print("build: \(KernelProfile.buildDescription)")
    var peak2: Double? = nil
    if ProcessInfo.processInfo.environment["BENCH_NO_PEAK"] != "1" {   // (=1 when profiling one layer)
        print("\nFMA peak (register-only multiply-add loop, 12 accumulators), per vector width")
        for width in nativeWidths {
            let p1 = measurePeak(workers: 1, repeats: o.repeats, width: width)
            let p2 = measurePeak(workers: 2, repeats: o.repeats, width: width)
            // Shares of peak below are of this profile's own width.
            if width == KernelProfile.current.vectorWidth { peak2 = p2 }
            print("  \(width * 32)-bit: 1 core \(f1(p1)) GFLOPS, 2 cores \(f1(p2)) GFLOPS\(width == KernelProfile.current.vectorWidth ? "  (this profile's width)" : "")")
        }
    }
    if o.mode == "peak" || o.mode == "all" {
        // The GEMM micro-kernel alone, operands resident in L1/L2 (upper bound for GEMM/conv).
        let nr = GEMM.nr
        for kc in [64, 128, 256] {
            let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
            let b = UnsafeMutableRawPointer.allocate(byteCount: kc * nr * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * nr)
            a.initialize(repeating: 0.5, count: kc * 6); b.initialize(repeating: 0.25, count: kc * nr)
            var c = [Float](repeating: 0, count: 6 * nr)
            let calls = 200_000_000 / (kc * 6 * nr)
            let t = medianTime(o.repeats) {
                c.withUnsafeMutableBufferPointer { cp in
                    for _ in 0..<calls { GEMM.microKernel(kc, a, b, cp.baseAddress!, nr, true) }
                }
            }
            print("  micro-kernel 6x\(nr), kc \(kc), 1 core: \(f1(Double(calls * kc * 6 * nr * 2) / t / 1e9)) GFLOPS")
            a.deallocate(); b.deallocate()
        }
        // The window micro-kernel alone on a 3x3 conv's phase image (rows of width `wq`, 29
        // channels = 261 taps >= KC), L1/L2-resident: wq 34 (a padded 32x32 map: unaligned,
        // cache-line-splitting loads) against wq 48 with a 16-float-aligned base (no splits).
        for wq in [34, 48] {
            let kc = 256, channels = 29, plane = 34 * wq
            let a = UnsafeMutableRawPointer.allocate(byteCount: kc * 6 * 4, alignment: 64).bindMemory(to: Float.self, capacity: kc * 6)
            let ph = UnsafeMutableRawPointer.allocate(byteCount: (channels * plane + 64) * 4, alignment: 64)
                .bindMemory(to: Float.self, capacity: channels * plane + 64)
            a.initialize(repeating: 0.5, count: kc * 6); ph.initialize(repeating: 0.25, count: channels * plane + 64)
            var offsets = [Int]()
            for ci in 0..<channels { for ky in 0..<3 { for kx in 0..<3 { offsets.append(ci * plane + ky * wq + (wq == 48 ? 0 : kx)) } } }
            var c = [Float](repeating: 0, count: 6 * nr)
            let calls = 200_000_000 / (kc * 6 * nr)
            let t = medianTime(o.repeats) {
                c.withUnsafeMutableBufferPointer { cp in
                    offsets.withUnsafeBufferPointer { op in
                        for i in 0..<calls {
                            WindowConv.windowKernel(kc, a, ph + (i % 8) * wq, op.baseAddress!, cp.baseAddress!, nr, true)
                        }
                    }
                }
            }
            print("  window micro-kernel 6x\(nr), kc \(kc), row width \(wq)\(wq == 48 ? " (aligned)" : ""), 1 core: \(f1(Double(calls * kc * 6 * nr * 2) / t / 1e9)) GFLOPS")
            a.deallocate(); ph.deallocate()
        }
    }
    guard o.mode != "peak" else { return }
    let wantConv = o.mode == "conv" || o.mode == "all", wantGEMM = o.mode == "gemm" || o.mode == "all"
    let torch = torchTimes(threads: o.threads, repeats: o.repeats,
                           convs: wantConv ? resnet50Convs : [], gemms: wantGEMM ? gemmSizes : [])
    if let torch { print("PyTorch \(torch.version), torch.set_num_threads(\(o.threads)), timed in this run") }
    if wantGEMM { benchGEMM(o, peak2: peak2, torch: torch) }
    if wantConv { benchConv(o, peak2: peak2, torch: torch) }
}
