// MARK: - The step kinds a recipe can use (see docs/recipes.md)
let registeredSteps: [RecipeStep.Type] = [
    CheckStep.self,
]
