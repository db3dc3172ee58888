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
    /// Winograd's transformed 3x3 kernels, 16 x [Cout, Cin] (WinogradConv): forward.
    case winograd
    /// The same for the flipped kernel: stride-1 input gradient.
    case winogradFlipped
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
    private var entries: [CachedPanels] = []   // least recently used first
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
        panels(source: source, shape: shape, layout: layout, m: m, k: k, asB: asB) {
            PackedPanels(m: m, k: k, asB: asB, packer: packer)
        }
    }

    /// The same, with the panels made by `make` on a miss (which must return an m x k matrix's
    /// panels in role `asB`).
    func panels(source: [Float], shape: [Int], layout: PackedWeightLayout,
                m: Int, k: Int, asB: Bool, make: () -> PackedPanels) -> PackedPanels {
        let address = source.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress!) }
        lock.lock(); defer { lock.unlock() }
        if let i = entries.firstIndex(where: {
            $0.address == address && $0.source.count == source.count && $0.shape == shape
                && $0.layout == layout && $0.panels.asB == asB && $0.panels.m == m && $0.panels.k == k
        }) {
            hits += 1
            let e = entries.remove(at: i)
            entries.append(e)
            return e.panels
        }
        misses += 1
        let e = CachedPanels(source: source, address: address, shape: shape, layout: layout,
                             panels: make())
        entries.append(e)
        bytes += e.panels.byteCount
        while bytes > capacityBytes && entries.count > 1 {
            bytes -= entries.removeFirst().panels.byteCount
        }
        return e.panels
    }
}

/// A cache entry: the packed panels and what they were made from.
final class CachedPanels {
    let source: [Float]            // retained: keeps the packed values' storage immutable (see top)
    let address: UnsafeRawPointer
    let shape: [Int]
    let layout: PackedWeightLayout
    let panels: PackedPanels

    init(source: [Float], address: UnsafeRawPointer, shape: [Int], layout: PackedWeightLayout, panels: PackedPanels) {
        self.source = source; self.address = address; self.shape = shape; self.layout = layout; self.panels = panels
    }
}
