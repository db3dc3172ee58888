// MARK: - ConvPlan: which algorithm computes each part of a convolution
//
// The one place that decides, from the geometry, the thread count and the kernel profile (whose
// micro-tile width NR enters through `GEMM.nr`), which algorithm runs. Every choice is a pure
// function of those, never of the data, and every path computes each output element as the same
// chain of multiply-adds per KC block whichever worker runs it: results are bit-identical at any
// thread count. Each path has a naive reference it is tested against (SIMDCoreTests.ConvTests).
//
// Forward, per image: y[Cout, P] = W[Cout, K] · col(x), P = Hout*Wout output pixels, K = Cin*kh*kw.
//   geometry                                path           why
//   1x1, stride 1, no padding               pointwise      col(x) is x itself: a plain GEMM.
//   3x3, stride 1, padding <= 2, output     winograd       F(2x2, 3x3): 16 multiplies per 2x2 outputs
//   at least 8x8, Cin and Cout >= 16                       instead of 36 (WinogradConv.swift). Measured
//                                                          on Zen 4, 2 threads: 1.3-1.7x faster than
//                                                          the window path from 14x14 up, transforms
//                                                          included; 7x7 maps would pad 4x4 tiles to
//                                                          8x8 and NR panels to twice 16 tiles.
//   output at least 28 wide                 window         col's rows are windows of the padded
//                                                          (phase) image: B is never packed, which
//                                                          was a fifth of wide convs; the (kw-1)/sw
//                                                          extra columns per row cost <= 7% from 28 up.
//   P <= 256 and GEMM prefers C^T           pixelWindow    C^T = col^T · W^T (padding P to NR would
//   (e.g. 14x14, 7x7 with 32-wide tiles)                   waste a fifth) with A read from the padded
//                                                          image by 7-pixel tiles: no column matrix.
//   other P <= 256                          columnMatrix   the GEMM splits C by rows, so every worker
//                                                          would gather all of B: build col once.
//   other (large maps narrower than 28)     packedImage    B panels packed straight from the image,
//                                                          each worker its own columns.
//
// Input gradient: dx from dy [Cout, P] and W.
//   1x1, stride 1, no padding               pointwise      dx = W^T · dy.
//   stride 1, padding <= kernel - 1         transposed     a forward conv of dy with the flipped,
//                                                          channel-transposed kernel and padding
//                                                          k-1-p, planned by the forward rules: no
//                                                          column matrix, the fast forward paths.
//   otherwise (strided)                     columnMatrix   dcol = W^T · dy, then col2im.
//
// Weight gradient: dw = sum over the batch of dy_n · col_n^T as ONE GEMM of depth N*P over
// channel-last copies (ConvWeightGradient.swift); C is dw as [Cout, K'] or its transpose.
//   Cin a multiple of NR and Cout's MR      xInPlace       C = D · X^T with X's NR panels read in
//   panels <= 10% padding                                  place (32 channels of one tap are one
//                                                          contiguous run): X, 9x D's size for 3x3,
//                                                          is never packed.
//   tiles pad less as C^T[K', Cout]         xIsA           C^T = X · D^T.
//   otherwise                               xIsB           C = D · X^T.
//
// Batch: with at least two images per worker the images are split over the workers, each image
// single-threaded (one 32x32 image is too little work to split well); otherwise each image uses all
// workers. Constant weights cached as GEMM panels (PackedWeightCache) are packed for the role the
// planned path reads them in: NR panels when the product is the transposed one.

/// The algorithms that compute one convolution (see the table above).
///
/// ```swift
/// let plan = ConvPlan(g)          // e.g. ResNet50 layer 4, 3x3 on 7x7 with AVX-512:
/// plan.forward                    // .pixelWindow
/// plan.inputGradient              // .transposed
/// plan.weightGradient             // .xInPlace
/// ```
public struct ConvPlan: Equatable, Sendable {
    public enum Forward: String, Sendable, CaseIterable {
        case pointwise, winograd, window, pixelWindow, columnMatrix, packedImage
    }
    public enum InputGradient: String, Sendable, CaseIterable {
        case pointwise, transposed, columnMatrix
    }
    public enum WeightGradient: String, Sendable, CaseIterable {
        case xInPlace, xIsA, xIsB
    }

    public let forward: Forward
    public let inputGradient: InputGradient
    public let weightGradient: WeightGradient

    public init(forward: Forward, inputGradient: InputGradient, weightGradient: WeightGradient) {
        self.forward = forward; self.inputGradient = inputGradient; self.weightGradient = weightGradient
    }

    /// The plan the rules above make for `g`.
    public init(_ g: ConvGeometry) {
        forward = ConvPlan.forward(g)
        inputGradient = ConvPlan.inputGradient(g)
        weightGradient = ConvPlan.weightGradient(g)
    }

    // MARK: Forward

    /// 3x3 stride-1 maps at least this high and wide, with at least this many channels in and out,
    /// take the Winograd path.
    static let winogradMinimumOutputSize = 8
    static let winogradMinimumChannels = 16
    /// Output maps at least this wide take the window path.
    static let windowMinimumOutputWidth = 28
    /// Output maps with at most this many pixels are "small" (pixelWindow or columnMatrix).
    static let smallMapPixels = 256

    public static func forward(_ g: ConvGeometry) -> Forward {
        if g.isPointwise { return .pointwise }
        if WinogradConv.applies(g) && g.outHeight >= winogradMinimumOutputSize && g.outWidth >= winogradMinimumOutputSize
            && g.inChannels >= winogradMinimumChannels && g.outChannels >= winogradMinimumChannels { return .winograd }
        if g.outWidth >= windowMinimumOutputWidth { return .window }
        if g.outPixels <= smallMapPixels {
            return GEMM.prefersTransposedProduct(m: g.outChannels, n: g.outPixels, k: g.k) ? .pixelWindow : .columnMatrix
        }
        return .packedImage
    }

    // MARK: Input gradient

    public static func inputGradient(_ g: ConvGeometry) -> InputGradient {
        if g.isPointwise { return .pointwise }
        if g.strideH == 1 && g.strideW == 1 && g.padH <= g.kernelHeight - 1 && g.padW <= g.kernelWidth - 1 {
            return .transposed
        }
        return .columnMatrix
    }

    /// The forward convolution that computes a `.transposed` input gradient: dy [Cout, Hout, Wout]
    /// convolved with the flipped kernel [Cin, Cout, kh, kw] and padding k-1-p gives dx [Cin, H, W].
    public static func transposedGeometry(_ g: ConvGeometry) -> ConvGeometry {
        ConvGeometry(inChannels: g.outChannels, height: g.outHeight, width: g.outWidth, outChannels: g.inChannels,
                     kernelHeight: g.kernelHeight, kernelWidth: g.kernelWidth, strideH: 1, strideW: 1,
                     padH: g.kernelHeight - 1 - g.padH, padW: g.kernelWidth - 1 - g.padW)
    }

    // MARK: Weight gradient

    public static func weightGradient(_ g: ConvGeometry) -> WeightGradient {
        let mr = GEMM.mr, nr = GEMM.nr, cout = g.outChannels
        if g.inChannels % nr == 0 && GEMM.roundUp(cout, mr) * 10 <= cout * 11 { return .xInPlace }
        let asA = GEMM.roundUp(g.k, mr) * GEMM.roundUp(cout, nr)
        let asB = GEMM.roundUp(cout, mr) * GEMM.roundUp(g.k, nr)
        return asA <= asB ? .xIsA : .xIsB
    }

    // MARK: Batch and cached weights

    /// True when a batch is split over the workers by images (each image single-threaded).
    public static func splitsBatchByImages(_ batch: Int, threads: Int = Parallel.threadCount) -> Bool {
        threads > 1 && batch >= 2 * threads
    }

    /// True when a GEMM-family product with A = the weights [m, k] and n columns reads A as NR
    /// panels (the transposed product). `convolving`: the convolution run with these weights,
    /// whose window path reads MR panels whatever the shape.
    static func weightsAsNRPanels(m: Int, n: Int, k: Int, convolving c: ConvGeometry?) -> Bool {
        if let c, forward(c) == .window { return false }
        return GEMM.prefersTransposedProduct(m: m, n: n, k: k)
    }
}
