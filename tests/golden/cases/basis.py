from golden_case import GoldenCase

# Optimizers run in a rotated basis (torchzero/modules/basis).
#
# SOAPBasis: Adam inside compares at a looser tolerance (the reference adds Adam's eps before
# debiasing, see core.py; in the eigenbasis some coordinates are tiny, where eps weighs more). The reference re-projects Adagrad's accumulator of squared gradients as
# if it were a gradient (a rotation), which makes it negative and the step NaN after the first
# basis refresh; ours re-orders it like a second moment (unit test in tests/modules/test_basis.py).
CASES = [
    GoldenCase("SOAPBasis-Adam", "tz.m.SOAPBasis(tz.m.Adam(0.95, 0.95)), tz.m.LR(0.05)", "mixed", steps=30, rtol=1e-5, atol=1e-5),
    GoldenCase("SOAPBasis-Adam-freq2", "tz.m.SOAPBasis(tz.m.Adam(0.9, 0.99, amsgrad=True), precond_freq=2, merge_small=False), tz.m.LR(0.05)", "mixed", steps=25, rtol=1e-5, atol=1e-5),
    GoldenCase("SOAPBasis-RMSprop", "tz.m.SOAPBasis(tz.m.RMSprop(0.9), precond_freq=2, shampoo_beta=0.8), tz.m.LR(0.02)", "mixed", steps=25),
    GoldenCase("SOAPBasis-EMA-Sign", "tz.m.SOAPBasis([tz.m.EMA(0.9), tz.m.Sign()], precond_freq=3, merge_small=False), tz.m.LR(0.02)", "mixed", steps=25),
    GoldenCase("SOAPBasis-Lion-inner", "tz.m.SOAPBasis(tz.m.Lion(), precond_freq=2, inner=tz.m.EMA(0.5), shampoo_beta=None), tz.m.LR(0.02)", "mixed", steps=25),
    GoldenCase("SOAPBasis-quadratic", "tz.m.SOAPBasis(tz.m.HeavyBall(0.5), precond_freq=1), tz.m.LR(0.01)", "quadratic", steps=30),
    GoldenCase("SOAPBasis-1d-off", "tz.m.SOAPBasis(tz.m.EMA(0.8), precond_freq=2, precondition_1d=False), tz.m.LR(0.05)", "mixed", steps=20, closure=False),
]

# GGTBasis: with rdamping the reference differs from ours, as it does for tz.m.GGT; no case uses it.
# approx_sq_reproject / approx_cu_reproject change nothing in the reference for the modules tried.
CASES += [
    GoldenCase("GGTBasis-Adam", "tz.m.GGTBasis(tz.m.Adam(0.9, 0.95), history_size=3), tz.m.LR(0.05)", "mixed", steps=25, rtol=1e-5, atol=1e-5),
    GoldenCase("GGTBasis-EMA-inner", "tz.m.GGTBasis(tz.m.EMA(0.5), history_size=4, update_freq=2, inner=tz.m.Mul(2.0)), tz.m.LR(0.02)", "mixed", steps=25),
    GoldenCase("GGTBasis-RMSprop", "tz.m.GGTBasis(tz.m.RMSprop(0.9), history_size=5, truncate=3), tz.m.LR(0.02)", "quadratic", steps=25),
    GoldenCase("GGTBasis-Lion", "tz.m.GGTBasis(tz.m.Lion(), damping=1e-3), tz.m.LR(0.01)", "rosenbrock", steps=25, closure=False),
]
