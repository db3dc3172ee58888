import Foundation   // NSLock

// MARK: - Packed constant weights
//
// GEMM packs op(A) into MR panels (or, for the transposed product of small feature maps, into NR
// panels) on every call. For a convolution that is a full strided pass over the weights W [Cout, K]
// — 9 MB for each of ResNet50's layer-4 3x3 kernels, ~30% of that forward — although the weights
// are constants across PGA steps and pullbacks. `PackedWeightCache` keeps GEMM-ready panels.
//
// Why a cached packing can never be stale: an entry retains the weight's [Float] storage. While it
// does, that storage is not uniquely referenced, so any in-place mutation by its owner (Array
// copy-on-write, including `withUnsafeMutableBufferPointer`) first copies to a NEW buffer. A buffer
// whose address matches an entry therefore still holds exactly the values that were packed, and it
// cannot be freed and reused while the entry lives. Entries match on (storage address, count,
// shape, layout, role).
//
// Panels are byte-for-byte what the on-the-fly packer writes, so results are bit-identical with or
// without the cache (and still independent of the thread count).

/// Which matrix made from a conv weight w [Cout, Cin, kh, kw] is packed.
public enum PackedWeightLayout: Hashable, Sendable {
    /// w as [Cout, K]: forward.
    case forward
    /// The flipped, channel-transposed kernel [Cin, Cout*kh*kw]: stride-1 input gradient.
    case flipped
    /// w^T [K, Cout]: 1x1 and general (strided) input gradient.
    case transposed
}

/// A small LRU cache of packed weight panels, owned by a model (or passed to each Tape). Lookups
/// are serialised by a lock; the packing itself and the GEMMs use all workers.
///
/// ```swift
/// let cache = PackedWeightCache()
/// let tape = Tape(recording: true, weightCache: cache)   // reuse the same cache across PGA steps
/// ```
public final class PackedWeightCache: @unchecked Sendable {   // mutable state guarded by `lock`
    /// Entries are evicted (least recently used first) beyond this many bytes of panels.
    public let capacityBytes: Int
    /// Lookups served from / added to the cache (for tests and benchmarks).
    public private(set) var hits = 0, misses = 0
    private var entries: [PackedPanels] = []   // least recently used first
    private var bytes = 0
    private let lock = NSLock()

    public init(capacityBytes: Int = 1 << 30) { self.capacityBytes = capacityBytes }

    /// Number of packed matrices held.
    public var count: Int { lock.lock(); defer { lock.unlock() }; return entries.count }
    public var byteCount: Int { lock.lock(); defer { lock.unlock() }; return bytes }

    public func removeAll() { lock.lock(); defer { lock.unlock() }; entries.removeAll(); bytes = 0 }

    /// Panels of the M x K matrix `packer` yields (op(A) of the GEMM), made from `source`; `asB`:
    /// NR panels of its transpose (when GEMM computes the transposed product).
    func panels<PA: GEMMPackA>(source: [Float], shape: [Int], layout: PackedWeightLayout,
                               m: Int, k: Int, asB: Bool, packer: PA) -> PackedPanels {
        let address = source.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) }
        lock.lock(); defer { lock.unlock() }
        if let i = entries.firstIndex(where: {
            $0.address == address && $0.source.count == source.count && $0.shape == shape
                && $0.layout == layout && $0.asB == asB && $0.m == m && $0.k == k
        }) {
            hits += 1
            let e = entries.remove(at: i)
            entries.append(e)
            return e
        }
        misses += 1
        let e = PackedPanels(source: source, address: address, shape: shape, layout: layout, m: m, k: k, asB: asB, packer: packer)
        entries.append(e)
        bytes += e.byteCount
        while bytes > capacityBytes && entries.count > 1 {
            bytes -= entries.removeFirst().byteCount
        }
        return e
    }
}

/// One packed matrix: for each depth block pc (GEMM.kc deep), the MR (or NR) panels of all rows,
/// block pc starting at `pc * paddedRows`.
final class PackedPanels {
    let source: [Float]            // retained: keeps the packed values' storage immutable (see top)
    let address: UnsafeRawPointer
    let shape: [Int]
    let layout: PackedWeightLayout
    let m: Int, k: Int, asB: Bool
    let paddedRows: Int
    let base: UnsafeMutablePointer<Float>
    var byteCount: Int { paddedRows * k * 4 }

    init<PA: GEMMPackA>(source: [Float], address: UnsafeRawPointer, shape: [Int], layout: PackedWeightLayout,
                        m: Int, k: Int, asB: Bool, packer: PA) {
        self.source = source; self.address = address; self.shape = shape; self.layout = layout
        self.m = m; self.k = k; self.asB = asB
        paddedRows = GEMM.roundUp(m, asB ? GEMM.nr : GEMM.mr)
        base = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, paddedRows * k) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: Swift.max(1, paddedRows * k))
        let blocks = (k + GEMM.kc - 1) / GEMM.kc
        let (base, rows) = (base, paddedRows)
        Parallel.forEachChunk(count: blocks) { r in
            for b in r {
                // Safe: depth block b is written only by the worker owning b.
                let pc = b * GEMM.kc, kcur = Swift.min(GEMM.kc, k - pc)
                if asB { packer.packTransposedAsB(into: base + pc * rows, k0: pc, kc: kcur, i0: 0, nc: m) }
                else { packer.pack(into: base + pc * rows, i0: 0, mc: m, k0: pc, kc: kcur) }
            }
        }
    }

    deinit { base.deallocate() }
}

/// op(A) served from `PackedPanels` (falls back to `fallback` for the role it was not packed for).
struct PrepackedA<PA: GEMMPackA>: GEMMPackA {
    let fallback: PA
    let panels: PackedPanels

    func pack(into dst: UnsafeMutablePointer<Float>, i0: Int, mc: Int, k0: Int, kc: Int) {
        fallback.pack(into: dst, i0: i0, mc: mc, k0: k0, kc: kc)
    }
    func packTransposedAsB(into dst: UnsafeMutablePointer<Float>, k0: Int, kc: Int, i0: Int, nc: Int) {
        fallback.packTransposedAsB(into: dst, k0: k0, kc: kc, i0: i0, nc: nc)
    }
    func prepacked(i0: Int, k0: Int, kc: Int) -> UnsafePointer<Float>? {
        panels.asB ? nil : UnsafePointer(panels.base + k0 * panels.paddedRows + i0 * kc)
    }
    func prepackedTransposedAsB(k0: Int, kc: Int, i0: Int) -> UnsafePointer<Float>? {
        panels.asB ? UnsafePointer(panels.base + k0 * panels.paddedRows + i0 * kc) : nil
    }
}
