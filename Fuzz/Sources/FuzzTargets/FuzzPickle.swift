// MARK: - The restricted unpickler on its own
//
// Inside a .pth the pickle is CRC-checked, so mutations of it rarely get past the ZIP layer:
// this target feeds data.pkl bytes straight to the VM, then gathers every tensor it describes
// from a zero-filled storage of the stated size (capped, so the view checks get exercised).
import Foundation
@testable import Recipes

enum FuzzPickle {
    static func run(_ data: Data) {
        var vm = RestrictedUnpickler(data: data, file: "fuzz.pkl")
        guard let root = try? vm.load() else { return }
        guard case .dict(let d) = root else { return }
        for case .tensor(let ref) in d.values {
            let bytes = min(ref.storage.count.multipliedReportingOverflow(by: ref.storage.dtype.byteSize).partialValue, 1 << 16)
            _ = try? TorchCheckpoint.gather(ref, raw: Data(count: max(bytes, 0)), name: "t", file: "fuzz.pkl")
        }
    }
}
