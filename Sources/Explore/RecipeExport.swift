// MARK: - "Save as recipe": the YAML that reproduces a view with `runner`
//
// The recipe holds the view's model, image, target, method and PGA settings as its own steps
// (load or train the model, explain, ascend), so `runner <file>` draws the same map and ascent in
// a report. An uploaded picture has no file the recipe could name: for an ImageNet model the
// recipe names `upload.png` next to itself (save the picture there); the MNIST CNN's recipes read
// digits from the shipped test set only, so an upload is refused with 422.

extension Workbench {
    /// The YAML of a view. 422 for an upload on the MNIST CNN.
    public static func recipe(_ p: ExploreParameters) throws -> String {
        var y = "# Reproduces this view of `runner serve`: \(p.query)\n"
        y += "# Run it with: runner <this file>\n"
        y += "title: \"\(p.method.rawValue) and PGA toward class \(p.target) on \(p.model.rawValue)\"\n"
        y += "paper: A\nfigure: serve-view\n"
        y += "summary: |\n  One view of the interactive page, as a recipe: the attribution map of the target logit and\n"
        y += "  \(p.steps) steps of projected gradient ascent toward it (alpha \(number(p.alpha)), eps \(number(p.eps))).\n"
        y += "cells:\n"
        let method = methodYAML(p)
        switch p.model {
        case .mnistCNN:
            guard case .digit(let i) = p.image else {
                throw ServeError(.unprocessable, "an uploaded picture has no recipe form for mnist_cnn (its recipes read the shipped test digits); choose a test digit")
            }
            y += """
              - step: load_data
                id: train_set
                with: {dataset: mnist5k, split: train}
              - step: load_data
                id: test_set
                with: {dataset: mnist5k, split: test}
              - step: train
                id: cnn
                with: {model: mnist_cnn, train: train_set, test: test_set, epochs: 4, batch_size: 32, optimizer: adam, learning_rate: 0.001}
              - step: explain
                id: map
                with: {model: cnn, data: test_set, images: {indices: [\(i)]}, target: \(p.target), methods: [\(method)], colormap: diverging, upscale: 8}
              - step: ascend
                id: pga
                with: {model: cnn, data: test_set, images: {indices: [\(i)]}, targets: [\(p.target)], method: \(method), steps: \(p.steps), alpha: \(number(p.alpha)), eps: \(number(p.eps)), show: both, colormap: diverging, upscale: 8}

            """
        default:
            let file: String, name: String, label: Int
            switch p.image {
            case .example(let n):
                let e = ExampleImages.files.first { $0.name == n }!
                (file, name, label) = ("data/images/\(e.file)", n, e.label)
            case .upload:
                y = "# Save the uploaded picture as upload.png next to this recipe first.\n" + y
                (file, name, label) = ("upload.png", "upload", p.target)
            case .digit:
                throw ServeError(.badRequest, "image: digit images go with mnist_cnn")
            }
            y += """
              - step: load_model
                id: net
                with: {architecture: \(p.model.rawValue), weights: \(p.weights.rawValue)}
              - step: load_images
                id: examples
                with:
                  size: \(p.size)
                  files:
                    - {name: \(name), label: \(label), file: \(file)}
              - step: explain
                id: map
                with: {model: net, data: examples, images: all, target: \(p.target), methods: [\(method)], colormap: diverging}
              - step: ascend
                id: pga
                with: {model: net, data: examples, images: all, targets: [\(p.target)], method: \(method), steps: \(p.steps), alpha: \(number(p.alpha)), eps: \(number(p.eps)), show: both, colormap: diverging}

            """
        }
        return y
    }

    /// The method as a recipe value (a name or a flow mapping).
    static func methodYAML(_ p: ExploreParameters) -> String {
        switch p.method {
        case .excitationPullback:
            return "{method: excitation_pullback, gate: \(p.gate.rawValue), temperature: \(number(p.temperature))}"
        case .gradient, .inputXGradient, .smoothgrad, .integratedGradients:
            return p.method.rawValue
        }
    }
}
