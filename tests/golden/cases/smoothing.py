from golden_case import GoldenCase

# smoothing/laplacian.py (issue 7). The reference smooths a parameter only when it has more than
# min_numel elements; ours from min_numel on ("minimum number of elements ... to apply"), so no case
# has a parameter of exactly min_numel elements (tests/modules/test_smoothing.py covers that).
CASES = [
    GoldenCase("LaplacianSmoothing", "tz.m.LaplacianSmoothing(), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("LaplacianSmoothing-sigma", "tz.m.LaplacianSmoothing(sigma=0.3, min_numel=2), tz.m.LR(0.02)", "mixed"),
    GoldenCase("LaplacianSmoothing-global", "tz.m.LaplacianSmoothing(sigma=2.0, layerwise=False), tz.m.LR(0.05)", "mixed", closure=False),
    GoldenCase("LaplacianSmoothing-min_numel", "tz.m.LaplacianSmoothing(min_numel=7), tz.m.LR(0.02)", "mixed"),
]
