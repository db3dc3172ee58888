// MARK: - NeurIPS 2020 regimes for FC gated networks
//
// "Neural Path Features and Neural Path Kernel" (NeurIPS 2020), Table 1, FC nets:
//   FR-NPF(II)  fixed random gates: feature network random and FROZEN; value weights independent.
//   FR-NPF(DI)  fixed random gates: feature network frozen; value weights IDENTICAL to the feature
//               weights at initialisation (then trained apart).
//   FL-NPF      fixed learnt gates: feature weights copied from a trained ReLU net, frozen; value
//               network freshly initialised.
//   DNPFL       decoupled learning: both networks trained, soft gates sigmoid(beta q_f).
//   ReLU        the DNN itself.
// FR and FL use hard gates 1[q_f > 0] (no gradient reaches the feature network anyway).
import Foundation
import SIMDCore

/// How an FC gated network's feature network is obtained and trained (NeurIPS 2020 Table 1).
public enum FCRegime: Equatable, Sendable, CustomStringConvertible {
    case relu
    case fixedRandomIndependent
    case fixedRandomIdentical
    /// Gates from a trained ReLU net whose parameters ("layers.l.weight", "head.weight") are given.
    case fixedLearnt(trainedReLU: [String: Tensor])
    case decoupledLearnt(beta: Float)

    public var description: String {
        switch self {
        case .relu: return "ReLU"
        case .fixedRandomIndependent: return "FR-NPF(II)"
        case .fixedRandomIdentical: return "FR-NPF(DI)"
        case .fixedLearnt: return "FL-NPF"
        case .decoupledLearnt(let b): return "DNPFL(beta=\(b))"
        }
    }
}

extension GatedNetwork {
    /// An FC network in one of the NeurIPS 2020 regimes, `x_f = x_v = x`.
    ///
    /// ```swift
    /// let relu = try GatedNetwork.fullyConnected(.fc(inputs: 784, width: 128, depth: 5, classes: 10), regime: .relu, seed: 1)
    /// // ... train relu ...
    /// let fl = try GatedNetwork.fullyConnected(relu.architecture, regime: .fixedLearnt(trainedReLU: relu.parameters), seed: 2)
    /// ```
    public static func fullyConnected(_ architecture: GatedArchitecture, regime: FCRegime, seed: UInt64) throws -> GatedNetwork {
        guard case .fullyConnected = architecture else {
            throw EngineError(op: "GatedNetwork.fullyConnected", "regimes are defined for FC architectures; got \(architecture)")
        }
        switch regime {
        case .relu:
            return try GatedNetwork(architecture: architecture, configuration: .dnn, seed: seed)
        case .decoupledLearnt(let beta):
            return try GatedNetwork(architecture: architecture, configuration: .dgn(valueInput: .same, gate: .soft(beta: beta)), seed: seed)
        case .fixedRandomIndependent, .fixedRandomIdentical, .fixedLearnt:
            var net = try GatedNetwork(architecture: architecture, configuration: .dgn(valueInput: .same, gate: .hard), seed: seed)
            let featureNames = net.parameters.keys.filter { $0.hasPrefix("feature.") }
            if regime == .fixedRandomIdentical {
                for name in featureNames {
                    let valueName = "value." + name.dropFirst("feature.".count)
                    if net.parameters[valueName] != nil { net.parameters[valueName] = net.parameters[name] }
                }
            }
            if case .fixedLearnt(let trained) = regime {
                for name in featureNames {
                    let dnnName = String(name.dropFirst("feature.".count))
                    guard let t = trained[dnnName] else {
                        throw WeightsError(file: "FL-NPF", "trained ReLU parameters lack '\(dnnName)' (needed for '\(name)')")
                    }
                    guard t.shape == net.parameters[name]!.shape else {
                        throw WeightsError(file: "FL-NPF", "trained '\(dnnName)' has shape \(t.shape), expected \(net.parameters[name]!.shape)")
                    }
                    net.parameters[name] = t
                }
            }
            net.frozen = Set(featureNames)
            return net
        }
    }
}

extension GatedNetwork {
    /// NeurIPS 2020 Figure 2 initialisation: every weight matrix (names ending in ".weight") set to
    /// ±sigma with probability 1/2 each, sigma = sqrt(2 / width) for FC nets; drawn from
    /// `SeededRNG(seed)` in sorted-name order. Biases are left alone (the FC nets have none).
    public mutating func initialiseBernoulli(sigma: Float, seed: UInt64) {
        var rng = SeededRNG(seed: seed)
        for name in parameters.keys.sorted() where name.hasSuffix(".weight") {
            let shape = parameters[name]!.shape
            parameters[name] = Tensor(shape: shape) { _ in rng.nextUInt64() >> 63 == 1 ? sigma : -sigma }
        }
    }
}
