// MARK: - The step kinds a recipe can use (see docs/recipes.md)
let registeredSteps: [RecipeStep.Type] = [
    LoadDataStep.self,
    LoadImagesStep.self,
    LoadModelStep.self,
    TrainStep.self,
    ExplainStep.self,
    AscendStep.self,
    TableStep.self,
    CheckStep.self,
    MemorisationSpectraStep.self,
    FaithfulnessStep.self,
    PathStabilityStep.self,
    NPKDynamicsStep.self,
    KernelAlignmentStep.self,
]
