from golden_case import GoldenCase

# PSGD preconditioners (torchzero/modules/psgd). The modules have no seed: like the reference they draw
# from the global generator (seeded once per trajectory by the recorder), in the same order (update
# probability, Hessian-vector-product directions, damping noise, probes of the norm bounds, balancing,
# the U-or-V coin of LRA), so the trajectories are reproducible and compared here. Recording the Kron
# cases needs opt_einsum next to the reference (pip install --no-deps --target .reference opt_einsum).
#
# Where the reference differs (covered by tests/modules/test_psgd.py instead):
# * Kron with init_scale=None and several tensors: the reference gives every tensor the scale computed
#   from the last tensor; ours computes it per tensor (single-tensor cases below compare the heuristic).
# * PSGDKronNewton: dQ="EQ", "QEP" and "QEQ" crash in the reference; dQ="QUAD" runs the QEQ update
#   (Q <- Q - mu Q E) instead of the quadratic form. Ours implements all of them (QUAD as for whitening).
# * PSGDKronWhiten dQ="EQ" (v integrated out) and dQ="QEP" with matrix factors follow our derivation from
#   the criterion; the reference normalises them differently (QEP with diagonal factors agrees).
CASES = [
    GoldenCase("KronWhiten", "tz.m.PSGDKronWhiten(), tz.m.LR(0.05)", "quadratic", steps=20),
    GoldenCase("KronWhiten-mixed", "tz.m.PSGDKronWhiten(init_scale=0.5, lr_preconditioner=0.3, betaL=0.5), tz.m.LR(0.05)", "mixed", steps=15),
    GoldenCase("KronWhiten-rosen", "tz.m.PSGDKronWhiten(max_skew=2.0, damping=1e-3), tz.m.LR(0.01)", "rosenbrock", steps=20),
    GoldenCase("KronWhiten-clip", "tz.m.PSGDKronWhiten(init_scale=1.0, grad_clip_max_amp=0.5), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("KronWhiten-prob", "tz.m.PSGDKronWhiten(init_scale=1.0, update_probability=0.5, balance_probability=0.5), tz.m.LR(0.05)", "mixed", steps=15),
    GoldenCase("KronWhiten-maxdim", "tz.m.PSGDKronWhiten(init_scale=1.0, max_dim=2, max_skew=10.0), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("KronWhiten-inner", "tz.m.PSGDKronWhiten(inner=tz.m.EMA(0.9)), tz.m.LR(0.05)", "quadratic", steps=15),
    GoldenCase("KronWhiten-QEQ", "tz.m.PSGDKronWhiten(init_scale=1.0, dQ='QEQ'), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("KronWhiten-QUAD", "tz.m.PSGDKronWhiten(init_scale=1.0, dQ='QUAD'), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("KronWhiten-QUAD4P", "tz.m.PSGDKronWhiten(init_scale=1.0, dQ='QUAD4P'), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("KronWhiten-QEP-diag", "tz.m.PSGDKronWhiten(dQ='QEP'), tz.m.LR(0.05)", "quadratic", steps=10),
    GoldenCase("KronWhiten-Q0p5", "tz.m.PSGDKronWhiten(dQ='Q0p5EQ1p5'), tz.m.LR(0.05)", "quadratic", steps=5),
]
CASES += [
    GoldenCase("KronNewton", "tz.m.PSGDKronNewton(), tz.m.LR(0.5)", "quadratic", steps=20),
    GoldenCase("KronNewton-mixed", "tz.m.PSGDKronNewton(init_scale=0.3, lr_preconditioner=0.3), tz.m.LR(0.3)", "mixed", steps=15),
    GoldenCase("KronNewton-rosen", "tz.m.PSGDKronNewton(max_skew=2.0), tz.m.LR(0.1)", "rosenbrock", steps=20),
    GoldenCase("KronNewton-clip", "tz.m.PSGDKronNewton(init_scale=0.3, grad_clip_max_amp=0.3, betaL=0.5), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("KronNewton-prob", "tz.m.PSGDKronNewton(init_scale=0.3, update_probability=0.5, balance_probability=0.5), tz.m.LR(0.3)", "mixed", steps=15),
    GoldenCase("KronNewton-rademacher", "tz.m.PSGDKronNewton(init_scale=0.3, distribution='rademacher', max_dim=3), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("KronNewton-QUAD4P", "tz.m.PSGDKronNewton(init_scale=0.3, dQ='QUAD4P'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("KronNewton-fd", "tz.m.PSGDKronNewton(hvp_method='fd_central'), tz.m.LR(0.5)", "quadratic", steps=10, rtol=1e-6, atol=1e-8, compare_losses=False),
    GoldenCase("KronNewton-inner", "tz.m.PSGDKronNewton(inner=tz.m.EMA(0.5)), tz.m.LR(0.5)", "quadratic", steps=10),
]
CASES += [
    GoldenCase("DenseNewton", "tz.m.PSGDDenseNewton(), tz.m.LR(0.5)", "quadratic", steps=20),
    GoldenCase("DenseNewton-rosen", "tz.m.PSGDDenseNewton(lr_preconditioner=0.5), tz.m.LR(0.2)", "rosenbrock", steps=20),
    GoldenCase("DenseNewton-mixed", "tz.m.PSGDDenseNewton(init_scale=0.3, betaL=0.5, damping=1e-4), tz.m.LR(0.3)", "mixed", steps=15),
    GoldenCase("DenseNewton-clip", "tz.m.PSGDDenseNewton(grad_clip_max_norm=0.5, update_probability=0.5), tz.m.LR(0.5)", "quadratic", steps=15),
    GoldenCase("DenseNewton-EQ", "tz.m.PSGDDenseNewton(dQ='EQ'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("DenseNewton-QEQ", "tz.m.PSGDDenseNewton(dQ='QEQ'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("DenseNewton-QEP", "tz.m.PSGDDenseNewton(dQ='QEP'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("DenseNewton-QUAD", "tz.m.PSGDDenseNewton(dQ='QUAD'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("DenseNewton-QUAD4P", "tz.m.PSGDDenseNewton(dQ='QUAD4P', distribution='rademacher'), tz.m.LR(0.3)", "mixed", steps=10),
    GoldenCase("DenseNewton-fd", "tz.m.PSGDDenseNewton(hvp_method='fd_forward'), tz.m.LR(0.5)", "quadratic", steps=10, rtol=1e-6, atol=1e-8, compare_losses=False),
    GoldenCase("DenseNewton-inner", "tz.m.PSGDDenseNewton(inner=tz.m.EMA(0.5)), tz.m.LR(0.5)", "quadratic", steps=10),
]
CASES += [
    GoldenCase("LRAWhiten", "tz.m.PSGDLRAWhiten(), tz.m.LR(0.05)", "quadratic", steps=20),
    GoldenCase("LRAWhiten-mixed", "tz.m.PSGDLRAWhiten(rank=3, lr_preconditioner=0.3), tz.m.LR(0.05)", "mixed", steps=15),
    GoldenCase("LRAWhiten-split", "tz.m.PSGDLRAWhiten(concat_params=False, init_scale=0.5, betaL=0.5), tz.m.LR(0.05)", "mixed", steps=15),
    GoldenCase("LRAWhiten-clip", "tz.m.PSGDLRAWhiten(rank=2, grad_clip_max_amp=0.3, update_probability=0.5, damping=1e-3), tz.m.LR(0.05)", "mixed", steps=10),
    GoldenCase("LRAWhiten-rosen", "tz.m.PSGDLRAWhiten(inner=tz.m.EMA(0.9)), tz.m.LR(0.01)", "rosenbrock", steps=20),
    GoldenCase("LRANewton", "tz.m.PSGDLRANewton(), tz.m.LR(0.5)", "quadratic", steps=20),
    GoldenCase("LRANewton-rank", "tz.m.PSGDLRANewton(rank=2, lr_preconditioner=0.3, betaL=0.5), tz.m.LR(0.3)", "mixed", steps=15),
    GoldenCase("LRANewton-rosen", "tz.m.PSGDLRANewton(init_scale=0.1), tz.m.LR(0.2)", "rosenbrock", steps=20),
    GoldenCase("LRANewton-clip", "tz.m.PSGDLRANewton(grad_clip_max_norm=0.5, update_probability=0.5, distribution='rademacher'), tz.m.LR(0.5)", "quadratic", steps=15),
    GoldenCase("LRANewton-fd", "tz.m.PSGDLRANewton(hvp_method='fd_central', inner=tz.m.EMA(0.5)), tz.m.LR(0.5)", "quadratic", steps=10, rtol=1e-6, atol=1e-8, compare_losses=False),
]
