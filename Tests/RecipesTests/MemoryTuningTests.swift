import XCTest
import Foundation
import Recipes

final class MemoryTuningTests: XCTestCase {
    func minorFaults() -> Int {
        var u = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &u)
        return u.ru_minflt
    }

    /// After `keepFreedMemory`, a freed 16 MB block is reused without faulting its pages in again
    /// (by default glibc mmaps and unmaps blocks that size: 4,096 faults per round).
    func testFreedBlocksAreReusedWithoutPageFaults() {
        MemoryTuning.keepFreedMemory()
        let count = 4 << 20   // floats: 16 MB
        func round() {
            let p = UnsafeMutablePointer<Float>.allocate(capacity: count)
            for i in stride(from: 0, to: count, by: 1024) { p[i] = Float(i) }   // touch every page
            p.deallocate()
        }
        round()
        let before = minorFaults()
        for _ in 0..<5 { round() }
        let faults = minorFaults() - before
        print("minor page faults over 5 rounds of a 16 MB block after keepFreedMemory: \(faults)")
        XCTAssertLessThan(faults, 1000, "a 16 MB block is 4,096 pages: freed blocks should stay mapped")
    }
}
