from golden_case import GoldenCase

CASES = [
    GoldenCase("GradientAccumulation", "tz.m.GradientAccumulation(3), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("GradientAccumulation-sum", "tz.m.GradientAccumulation(2, mean=False), tz.m.Adam(), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GradientAccumulation-nostop", "tz.m.GradientAccumulation(4, stop=False), tz.m.LR(0.01)", "quadratic", closure=False),
]
