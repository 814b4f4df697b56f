from golden_case import GoldenCase

# Projections (torchzero/modules/projections/). Cases with Adam use rtol=1e-5: the reference adds Adam's
# eps before debiasing (see core.py). Where the reference is broken there is no golden case and
# tests/modules/test_projections.py covers it: Print* modules inside a projection crash the reference
# (they read an update that is not formed yet, "shapes = None" then an AssertionError).
CASES = [
    GoldenCase("VectorProjection", "tz.m.VectorProjection(tz.m.Adam()), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("VectorProjection-lr-inside", "tz.m.VectorProjection([tz.m.Adam(), tz.m.LR(0.05)])", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("VectorProjection-closure", "tz.m.VectorProjection([tz.m.LR(0.3), tz.m.NegateOnLossIncrease(True)])", "mixed"),
    GoldenCase("VectorProjection-noclosure", "tz.m.VectorProjection(tz.m.Adam()), tz.m.LR(0.05)", "quadratic", closure=False, rtol=1e-5, atol=1e-7),
    GoldenCase("ScalarProjection", "tz.m.ScalarProjection(tz.m.Adam()), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("ScalarProjection-fill", "tz.m.ScalarProjection([tz.m.FillLoss(0.1), tz.m.GradSign()]), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("To-float32", "tz.m.To(tz.m.Adam(), dtype=torch.float32), tz.m.LR(0.05)", "rosenbrock", rtol=1e-4, atol=1e-5),
    GoldenCase("To-float32-closure", "tz.m.To([tz.m.LR(0.3), tz.m.NegateOnLossIncrease(True)], dtype=torch.float32), tz.m.LR(0.1)", "mixed", rtol=1e-5, atol=1e-6),
    GoldenCase("ViewAsReal-real", "tz.m.ViewAsReal(tz.m.Adam()), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
]
