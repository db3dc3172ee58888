// MARK: - check: a paper's claim, measured
//
//   - step: check
//     with:
//       claim: "dlgn_x1.test_accuracy / dnn.test_accuracy >= 0.835"
//       says: "DLGN(x,1) recovers at least 83.5% of the DNN's accuracy (paper B, Table II)"
//       required: false      # true: a claim that fails makes `runner verify` fail
//
// A claim that does not hold is reported plainly as measured; it is never tuned away.
import Foundation

struct CheckStep: RecipeStep {
    static let kind = "check"
    static let summary = "State a claim over recorded metrics (e.g. a / b >= 0.835) and report whether it holds."
    static let keys = ["claim", "says", "required"]

    let id: String
    let claim: Claim
    let says: String
    let required: Bool
    var inputs: [StepInput] { [] }
    var output: StepValueType? { nil }

    init(id: String, config: YAMLNode) throws {
        self.id = id
        let c = try config.node(at: "claim")
        do { claim = try Claim(try c.string) } catch let e as RecipeError { throw c.error(e.message) }
        says = try config.string(at: "says", default: claim.text)
        required = try config.bool(at: "required", default: false)
    }

    func run(_ ctx: RunContext) throws {
        let r = try claim.evaluate { ctx.metric($0) }
        ctx.checks.append(CheckResult(name: says, passed: r.holds,
                                      measured: "\(formatMetric(r.lhs)) vs \(formatMetric(r.rhs))",
                                      expected: claim.text + (required ? "" : " (reported, not required)")))
        ctx.record("\(id).holds", r.holds ? 1 : 0)
        if required && !r.holds {
            ctx.failedRequiredClaims.append(says)
            ctx.narrator.say("  claim does not hold: \(claim.text) (\(formatMetric(r.lhs)) vs \(formatMetric(r.rhs)))")
        }
    }
}
