from golden_case import GoldenCase

# PerturbWeights, WeightDropout and Dropout are abstract in the reference (cannot be instantiated);
# they, RandomReinitialize and EscapeAnnealing are random: unit tests only
# (tests/modules/test_perturbation.py). The deterministic corner cases below are comparable.
CASES = [
    GoldenCase("RandomReinitialize-never", "tz.m.RandomReinitialize(p_reinit=0.0), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("EscapeAnnealing-idle", "tz.m.LR(0.01), tz.m.EscapeAnnealing()", "quadratic"),
]
