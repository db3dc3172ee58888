// MARK: - The computations of one view: map, ascent, top-5, strips
//
// `explain` answers the page's main panel: the attribution map of the target logit at the clean
// image, the PGA ascent along the chosen method (perturbed image, perturbed − clean), the top-5
// before and after, and the target logit before every step and after the last. `strip` answers
// the teaching strips: the same map at T = 0.01 … 10 (with the vanilla gradient first, its
// T → 0 limit), or the ascent after 1, 5 and 10 steps. Images travel as PNG data URLs.
import Foundation
import Recipes
import SIMDCore

/// Checks between steps whether the computation is still wanted, and reports how far it is.
public protocol JobControl: AnyObject {
    /// Throws ServeError(.conflict) when a newer request replaced this one.
    func checkCancelled() throws
    /// How far the job is: `done` of `total` units, with a line for the page.
    func report(done: Int, total: Int, note: String)
}

/// One class with its score, for the top-5 lists.
public struct Prediction: Equatable, Sendable {
    public let index: Int
    public let name: String
    public let probability: Double
    public let logit: Double
    var json: [String: Any] { ["index": index, "name": name, "probability": probability, "logit": logit] }
}

extension Workbench {
    /// The teaching strips (a closed set).
    public enum StripKind: String, CaseIterable, Sendable {
        case temperature
        case steps
        /// The temperatures of the temperature strip; the vanilla gradient comes first as T → 0.
        public static let temperatures: [Float] = [0.01, 0.03, 0.1, 0.3, 1, 3, 10]
        /// Step counts of the steps strip.
        public static let stepCounts = [1, 5, 10]
    }

    // MARK: Main panel

    /// The main panel of a view, as a JSON object.
    public func explain(_ p: ExploreParameters, control: JobControl) throws -> [String: Any] {
        let t0 = DispatchTime.now().uptimeNanoseconds
        control.report(done: 0, total: p.steps + 1, note: "loading \(p.model.rawValue)")
        let model = try classifier(p) { control.report(done: 0, total: p.steps + 1, note: $0) }
        let names = try classNames(p.model)
        let (x, label) = try input(p)
        try control.checkCancelled()
        let method = try Self.method(p)
        try control.checkCancelled()
        let t1 = DispatchTime.now().uptimeNanoseconds
        control.report(done: 1, total: p.steps + 1, note: "attribution map and ascent")
        // The first ascent step follows the map at the clean image: it is taken from there (one
        // backward pass fewer); without steps it is computed on its own.
        var targetLogits: [Double] = []
        var before: Tensor?, map: Tensor?
        let pga = PGA(alpha: p.alpha, eps: p.eps, steps: p.steps, method: method)
        let result = try pga.ascend(model: model, images: x, targets: [p.target]) { k, xk, logits, g in
            try control.checkCancelled()
            control.report(done: 1 + k, total: p.steps + 1, note: "ascent step \(k + 1) of \(p.steps)")
            let l = try logits ?? Self.forward(model, xk)
            if k == 0 { before = l; map = g }
            targetLogits.append(Double(l.scalars[p.target]))
        }
        if before == nil || map == nil { (before, map) = try attribution(model, x, target: p.target, method: method) }
        let after = try Self.forward(model, result.perturbed)
        targetLogits.append(Double(after.scalars[p.target]))
        let t2 = DispatchTime.now().uptimeNanoseconds
        control.report(done: p.steps + 1, total: p.steps + 1, note: "done")
        return [
            "view": p.query,
            "model": p.model.rawValue, "weights": p.weights.rawValue,
            "target": ["index": p.target, "name": names[p.target]],
            "label": label.map { ["index": $0, "name": names[$0]] as Any } ?? (NSNull() as Any),
            "images": [
                "input": try Self.pngURL(Self.picture(x)),
                "map": try Self.pngURL(Self.diverging(map!)),
                "perturbed": try Self.pngURL(Self.picture(result.perturbed)),
                "difference": try Self.pngURL(Self.diverging(result.differences)),
            ],
            "top5_before": Self.top5(before!, names).map(\.json),
            "top5_after": Self.top5(after, names).map(\.json),
            "target_logits": targetLogits,
            "perturbation_l2": Self.l2(result.differences),
            "milliseconds": ["load": Double(t1 - t0) / 1e6, "compute": Double(t2 - t1) / 1e6],
        ]
    }

    // MARK: Strips

    /// A teaching strip of a view, as a JSON object with one cell per temperature or step count.
    public func strip(_ p: ExploreParameters, kind: StripKind, control: JobControl) throws -> [String: Any] {
        let model = try classifier(p) { control.report(done: 0, total: 1, note: $0) }
        let (x, _) = try input(p)
        var cells: [[String: Any]] = []
        switch kind {
        case .temperature:
            let total = StripKind.temperatures.count + 1
            let methods: [(String, ExplanationMethod)] = [("gradient (T → 0)", .gradient)]
                + (try StripKind.temperatures.map { t in
                    ("T = \(number(t))", ExplanationMethod.excitationPullback(try GatePolicy.excitation(temperature: t, gate: p.gate.rawValue)))
                })
            for (i, (title, m)) in methods.enumerated() {
                try control.checkCancelled()
                control.report(done: i, total: total, note: title)
                let (logits, map) = try attribution(model, x, target: p.target, method: m)
                cells.append(["title": title, "image": try Self.pngURL(Self.diverging(map)),
                              "target_logit": Double(logits.scalars[p.target])])
            }
        case .steps:
            let maxSteps = StripKind.stepCounts.max()!
            var snapshots: [Int: Tensor] = [:]
            let pga = PGA(alpha: p.alpha, eps: p.eps, steps: maxSteps, method: try Self.method(p))
            let result = try pga.ascend(model: model, images: x, targets: [p.target]) { k, xk, _, _ in
                try control.checkCancelled()
                control.report(done: k, total: maxSteps, note: "ascent step \(k + 1) of \(maxSteps)")
                if StripKind.stepCounts.contains(k) { snapshots[k] = xk }
            }
            snapshots[maxSteps] = result.perturbed
            for n in StripKind.stepCounts {
                var d = snapshots[n]!
                for i in 0..<d.count { d.scalars[i] -= x.scalars[i] }
                let l = try Self.forward(model, snapshots[n]!)
                cells.append(["title": "\(n) step\(n == 1 ? "" : "s")", "image": try Self.pngURL(Self.diverging(d)),
                              "target_logit": Double(l.scalars[p.target])])
            }
        }
        control.report(done: 1, total: 1, note: "done")
        return ["kind": kind.rawValue, "view": p.query, "cells": cells]
    }

    // MARK: Pieces

    /// Logits at `x` and the attribution of `target`.
    func attribution(_ model: Classifier, _ x: Tensor, target: Int, method: ExplanationMethod) throws -> (Tensor, Tensor) {
        switch method {
        case .gradient:
            let r = try ExplanationMethod.pullback(model, x, targets: [target], policy: .vanilla)
            return (r.logits, r.gradient)
        case .excitationPullback(let policy):
            let r = try ExplanationMethod.pullback(model, x, targets: [target], policy: policy)
            return (r.logits, r.gradient)
        default:
            return (try Self.forward(model, x), try method.attribute(model, x, targets: [target]))
        }
    }

    /// Logits of a forward pass (no backward).
    static func forward(_ model: Classifier, _ x: Tensor) throws -> Tensor {
        let tape = Tape()
        return tape.value(try model.logits(tape, tape.input(x), policy: .vanilla))
    }

    /// The five most probable classes (softmax of the logits, in Double).
    static func top5(_ logits: Tensor, _ names: [String]) -> [Prediction] {
        let l = logits.scalars.map(Double.init)
        let m = l.max() ?? 0
        let e = l.map { Foundation.exp($0 - m) }
        let z = e.reduce(0, +)
        return l.indices.sorted { l[$0] != l[$1] ? l[$0] > l[$1] : $0 < $1 }.prefix(5).map {
            Prediction(index: $0, name: $0 < names.count ? names[$0] : String($0), probability: e[$0] / z, logit: l[$0])
        }
    }

    static func l2(_ t: Tensor) -> Double { t.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot() }

    // MARK: Pictures

    /// A model input [1, C, H, W] in [-1, 1] as an 8-bit picture.
    static func picture(_ x: Tensor) throws -> RGBImage {
        let c = x.shape[1], h = x.shape[2], w = x.shape[3]
        var px = [UInt8](repeating: 0, count: w * h * 3)
        for i in 0..<(w * h) {
            for k in 0..<3 {
                let v = x.scalars[(c == 1 ? 0 : k) * w * h + i]
                px[3 * i + k] = UInt8(max(0, min(255, ((v + 1) / 2 * 255).rounded())))
            }
        }
        return RGBImage(width: w, height: h, pixels: px)
    }

    /// Summed over channels, blue (negative) – white – red (positive), scaled by the largest |value|.
    static func diverging(_ t: Tensor) throws -> RGBImage {
        let c = t.shape[1], h = t.shape[2], w = t.shape[3]
        var s = [Float](repeating: 0, count: w * h)
        for k in 0..<c { for i in 0..<(w * h) { s[i] += t.scalars[k * w * h + i] } }
        let m = max(s.map { abs($0) }.max() ?? 0, 1e-12)
        var px = [UInt8](repeating: 255, count: w * h * 3)
        for i in 0..<(w * h) {
            let v = max(-1, min(1, s[i] / m))
            let fade = UInt8((255 * (1 - abs(v))).rounded())
            if v >= 0 { px[3 * i + 1] = fade; px[3 * i + 2] = fade } else { px[3 * i] = fade; px[3 * i + 1] = fade }
        }
        return RGBImage(width: w, height: h, pixels: px)
    }

    static func pngURL(_ img: RGBImage) throws -> String {
        "data:image/png;base64," + (try PNG.encode(img)).base64EncodedString()
    }
}
