from golden_case import GoldenCase

# Full-matrix adaptive methods (torchzero/modules/matrix_adaptive).
# FullMatrixAdagrad(init='GGT'): the reference starts from the first outer product and then adds it
# again (its first step is ours divided by sqrt 2), and with beta its debiased GGT start drifts from
# the second step; ours starts from the first outer product once, as documented
# (tests/modules/test_matrix_adaptive_full.py). init='zeros' leaves a near-singular accumulator, so
# that case compares at a looser tolerance (round-off of the root).
CASES = [
    GoldenCase("FullMatrixAdagrad", "tz.m.FullMatrixAdagrad(), tz.m.LR(0.1)", "rosenbrock", steps=25),
    GoldenCase("FullMatrixAdagrad-mixed", "tz.m.FullMatrixAdagrad(precond_freq=3, reg=1e-6), tz.m.LR(0.1)", "mixed", steps=15),
    GoldenCase("FullMatrixAdagrad-split", "tz.m.FullMatrixAdagrad(concat_params=False, init='zeros', reg=1e-4), tz.m.LR(0.1)", "mixed", steps=15, rtol=1e-6, atol=1e-7),
    GoldenCase("FullMatrixAdagrad-beta", "tz.m.FullMatrixAdagrad(beta=0.9, reg=1e-6, inner=tz.m.EMA(0.8)), tz.m.LR(0.05)", "quadratic", steps=15, rtol=1e-6, atol=1e-8),
    GoldenCase("FullMatrixAdagrad-nodebias", "tz.m.FullMatrixAdagrad(beta=0.9, beta_debias=False, matrix_power=-1.0, matrix_power_method='svd'), tz.m.LR(0.05)", "quadratic", steps=15, rtol=1e-6, atol=1e-8),
]
