// MARK: - The step kinds a recipe can use (see docs/recipes.md)
let registeredSteps: [RecipeStep.Type] = [
    LoadDataStep.self,
    TrainStep.self,
    ExplainStep.self,
    AscendStep.self,
    CheckStep.self,
    TableStep.self,
]
