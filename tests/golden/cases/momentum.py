from golden_case import GoldenCase

# momentum/: EMA, HeavyBall, NAG, the averaging windows and the cautious family (issue 7).
CASES = [
    GoldenCase("EMA", "tz.m.EMA(), tz.m.LR(2e-3)", "rosenbrock"),
    GoldenCase("EMA-debias-damp", "tz.m.EMA(0.8, dampening=0.3, debias=True), tz.m.LR(0.02)", "mixed"),
    GoldenCase("EMA-nolerp-init", "tz.m.EMA(0.7, lerp=False, ema_init='update'), tz.m.LR(0.005)", "quadratic", closure=False),
    GoldenCase("HeavyBall", "tz.m.HeavyBall(), tz.m.LR(1e-4)", "rosenbrock"),
    GoldenCase("HeavyBall-damp", "tz.m.HeavyBall(0.8, dampening=0.3), tz.m.LR(0.005)", "mixed"),
    GoldenCase("HeavyBall-zeros-debias", "tz.m.HeavyBall(0.5, ema_init='zeros', debias=True), tz.m.LR(0.005)", "quadratic"),
    GoldenCase("NAG", "tz.m.NAG(), tz.m.LR(1e-4)", "rosenbrock"),
    GoldenCase("NAG-damp-lerp", "tz.m.NAG(0.8, dampening=0.2, lerp=True), tz.m.LR(0.01)", "mixed", closure=False),
    GoldenCase("Averaging", "tz.m.Averaging(4), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("MedianAveraging", "tz.m.MedianAveraging(4), tz.m.LR(0.01)", "mixed"),
    GoldenCase("MedianAveraging-odd", "tz.m.MedianAveraging(3), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("WeightedAveraging", "tz.m.WeightedAveraging([0.2, 0.5, 1.0, 2.0]), tz.m.LR(0.002)", "mixed"),
    GoldenCase("Cautious", "tz.m.HeavyBall(), tz.m.Cautious(), tz.m.LR(1e-4)", "rosenbrock"),
    GoldenCase("Cautious-normalize", "tz.m.HeavyBall(0.9), tz.m.Cautious(normalize=True), tz.m.LR(0.005)", "mixed"),
    GoldenCase("Cautious-grad", "tz.m.HeavyBall(0.9), tz.m.Cautious(mode='grad'), tz.m.LR(0.005)", "quadratic"),
    GoldenCase("Cautious-backtrack", "tz.m.HeavyBall(0.9), tz.m.Cautious(mode='backtrack'), tz.m.LR(0.005)", "mixed"),
    GoldenCase("UpdateGradientSignConsistency", "tz.m.HeavyBall(0.9), tz.m.UpdateGradientSignConsistency(normalize=True), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("ScaleByGradCosineSimilarity", "tz.m.HeavyBall(0.9), tz.m.ScaleByGradCosineSimilarity(), tz.m.LR(0.005)", "mixed"),
    GoldenCase("IntermoduleCautious", "tz.m.IntermoduleCautious(tz.m.HeavyBall(0.9), tz.m.EMA(0.5), normalize=True), tz.m.LR(0.005)", "mixed"),
    GoldenCase("IntermoduleCautious-grad", "tz.m.IntermoduleCautious(tz.m.NAG(), tz.m.EMA(0.5), mode='grad'), tz.m.LR(0.005)", "quadratic"),
    GoldenCase("IntermoduleCautious-backtrack", "tz.m.IntermoduleCautious(tz.m.HeavyBall(), tz.m.EMA(0.5), mode='backtrack'), tz.m.LR(1e-4)", "rosenbrock"),
    GoldenCase("ScaleModulesByCosineSimilarity", "tz.m.ScaleModulesByCosineSimilarity(tz.m.HeavyBall(0.9), tz.m.EMA(0.5)), tz.m.LR(0.005)", "mixed"),
]
