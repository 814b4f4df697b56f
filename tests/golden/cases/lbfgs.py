from golden_case import GoldenCase

# L-BFGS and L-SR1 against the reference (torchzero 0.4.4). Line-search combinations are in line_search.py.
CASES = [
    GoldenCase("LBFGS-LR", "tz.m.LBFGS(), tz.m.LR(0.5)", "quadratic"),
    GoldenCase("LBFGS-history", "tz.m.LBFGS(history_size=3), tz.m.LR(0.1)", "mixed"),
    GoldenCase("LBFGS-noscale", "tz.m.LBFGS(scale_first=False), tz.m.LR(1e-3)", "rosenbrock", rtol=1e-6, atol=1e-8),
    GoldenCase("LBFGS-update-freq", "tz.m.LBFGS(update_freq=2), tz.m.LR(0.1)", "quadratic", closure=False),
    GoldenCase("LBFGS-input", "tz.m.Mul(2.0), tz.m.LBFGS(), tz.m.LR(0.2)", "mixed"),
]
