// MARK: - Kernel scratch

extension UnsafeMutablePointer where Pointee == Float {
    /// `count` uninitialised floats on a 64-byte boundary (one zmm register, one cache line): the
    /// packed panels, phase images and tiles of the kernels. The caller deallocates.
    ///
    /// ```swift
    /// let panel = UnsafeMutablePointer<Float>.allocateAligned(kc * 32)
    /// defer { panel.deallocate() }
    /// ```
    @inline(__always)
    static func allocateAligned(_ count: Int) -> UnsafeMutablePointer<Float> {
        UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, count) * 4, alignment: 64)
            .bindMemory(to: Float.self, capacity: Swift.max(1, count))
    }
}
