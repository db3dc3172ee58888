import SIMDCore
print("bench: nothing yet")
