import ArgumentParser
import Recipes

struct Runner: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runner",
        abstract: "Reproduce excitation pullbacks and gated-network experiments from YAML recipes.",
        version: ProjectInfo.version)
}

Runner.main()
