from golden_case import GoldenCase

# Full-matrix and diagonal quasi-Newton methods (issue 8). Fixed step sizes keep the cases independent of the
# line searches; the quadratic is well conditioned enough for unit steps after the first update.
_M = ["BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad", "Greenstadt1", "Greenstadt2", "McCormick", "Pearson", "ICUM",
      "ThomasOptimalMethod", "Horisho", "FletcherVMM", "PSB", "ShorR", "ProjectedNewtonRaphson"]

# SR1 with the default init_scale="auto" is broken in the reference: the first update starts from
# H = (s'y / y'y) I, which makes the SR1 denominator (s - Hy)'y vanish up to rounding, and the reference
# divides by that noise (the second step jumps by ~1e13 on the quadratic; the direct form gets an exactly
# singular B). Ours skips that first update
# (tests/modules/test_quasi_newton.py::test_sr1_auto_first_update_is_skipped); the SR1 cases here use init_scale=1.
# DiagonalSR1 has the same defect (the diagonal r'y is the same dot product) and the same treatment.
_ARGS = {"SR1": "init_scale=1.0", "DiagonalSR1": "init_scale=1.0"}

CASES = []
for _m in _M:
    _a = _ARGS.get(_m, "")
    CASES.append(GoldenCase(f"{_m}-quadratic", f"tz.m.{_m}({_a}), tz.m.StepSize(0.5)", "quadratic", steps=15, rtol=1e-6, atol=1e-9))
    CASES.append(GoldenCase(f"{_m}-mixed", f"tz.m.{_m}({_a}), tz.m.StepSize(0.2)", "mixed", steps=12, rtol=1e-6, atol=1e-9))

_D = ["DiagonalBFGS", "DiagonalSR1", "DiagonalQuasiCauchi", "DiagonalWeightedQuasiCauchi", "DNRTR", "NewDQN"]
for _m in _D:
    _a = _ARGS.get(_m, "")
    _lr = 0.05 if _m == "DiagonalSR1" else 0.3
    CASES.append(GoldenCase(f"{_m}-quadratic", f"tz.m.{_m}({_a}), tz.m.StepSize({_lr})", "quadratic", steps=15, rtol=1e-6, atol=1e-9))
    CASES.append(GoldenCase(f"{_m}-mixed", f"tz.m.{_m}({_a}), tz.m.StepSize(0.1)", "mixed", steps=12, rtol=1e-6, atol=1e-9))
    CASES.append(GoldenCase(f"{_m}-split", f"tz.m.{_m}(concat_params=False, init_scale=2.0), tz.m.StepSize(0.1)", "mixed", steps=12, rtol=1e-6, atol=1e-9))
CASES += [
    GoldenCase("DiagonalSR1-direct", "tz.m.DiagonalSR1(init_scale=1.0, inverse=False), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("DNRTR-bounds", "tz.m.DNRTR(lb=0.5, ub=80.0), tz.m.StepSize(0.01)", "quadratic", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("NewDQN-bounds", "tz.m.NewDQN(lb=0.5, ub=20.0), tz.m.StepSize(0.1)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("GradientCorrection", "tz.m.GradientCorrection(), tz.m.StepSize(0.05)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("GradientCorrection-BFGS", "tz.m.BFGS(inner=tz.m.GradientCorrection()), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
]

for _m in ["BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad"]:
    _a = ", ".join(a for a in (_ARGS.get(_m, ""), "inverse=False") if a)
    CASES.append(GoldenCase(f"{_m}-direct", f"tz.m.{_m}({_a}), tz.m.StepSize(0.5)", "quadratic", steps=15, rtol=1e-6, atol=1e-9))

CASES += [
    GoldenCase("BFGS-rosenbrock", "tz.m.BFGS(), tz.m.StepSize(0.1)", "rosenbrock", steps=30, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-init_scale", "tz.m.BFGS(init_scale=2.0), tz.m.StepSize(0.5)", "quadratic", steps=10, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-direct-init_scale", "tz.m.BFGS(init_scale=2.0, inverse=False), tz.m.StepSize(0.5)", "quadratic", steps=10, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-scale_first", "tz.m.BFGS(scale_first=True), tz.m.StepSize(1.0)", "quadratic", steps=10, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-restart", "tz.m.BFGS(restart_interval=3), tz.m.StepSize(0.5)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-restart-auto", "tz.m.BFGS(restart_interval='auto'), tz.m.StepSize(0.5)", "rosenbrock", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-beta", "tz.m.BFGS(beta=0.5), tz.m.StepSize(0.5)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-update_freq", "tz.m.BFGS(update_freq=2), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-ptol", "tz.m.BFGS(ptol=0.05), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-ptol_restart", "tz.m.BFGS(ptol=0.05, ptol_restart=True), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-gtol", "tz.m.BFGS(gtol=0.5), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-tol", "tz.m.BFGS(tol=1e-2), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-split", "tz.m.BFGS(concat_params=False), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("BFGS-noclosure", "tz.m.BFGS(), tz.m.StepSize(0.3)", "mixed", steps=12, closure=False, rtol=1e-6, atol=1e-9),
    GoldenCase("SR1-direct-split", "tz.m.SR1(init_scale=1.0, inverse=False, concat_params=False), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("DFP-restart", "tz.m.DFP(restart_interval=4, init_scale=1.5), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("ShorR-alpha", "tz.m.ShorR(alpha=0.8), tz.m.StepSize(0.05)", "quadratic", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("PNR-interval", "tz.m.ProjectedNewtonRaphson(restart_interval=3), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
]

# -- self-scaling methods: SSVM, NewSSM (self_scaling.py) --
# SSVM: every switching rule matches the reference bit for bit while its update stays finite. Where the
# reference breaks: switch=2 with eps = g's / g'Hy < 0 takes the square root of a negative number and fills H
# with NaN (the run then stalls); ours skips that update (and any update with a non-finite or non-positive
# gamma). NewSSM: the reference applies the update even when the scaled curvature psi * s'y is <= 0, which makes
# H indefinite (type=1 gives psi < 0 whenever the decrease of f exceeds s'y, i.e. on almost every step that is not
# an exact line search); ours skips such updates like BFGS does. Those behaviours are covered by unit tests in
# tests/modules/test_self_scaling_qn.py; the cases below are the runs in which neither defect is reached.
for _sw in ["1", "2", "3", "4", "(0.3, 0.6)"]:
    CASES.append(GoldenCase(f"SSVM-{_sw}-quadratic", f"tz.m.SSVM(switch={_sw}), tz.m.StepSize(0.5)", "quadratic", steps=15, rtol=1e-6, atol=1e-9))
    CASES.append(GoldenCase(f"SSVM-{_sw}-mixed", f"tz.m.SSVM(switch={_sw}), tz.m.StepSize(0.2)", "mixed", steps=15, rtol=1e-6, atol=1e-9))
CASES += [
    GoldenCase("SSVM-backtracking", "tz.m.SSVM(), tz.m.Backtracking()", "quadratic", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-1-backtracking", "tz.m.SSVM(switch=1), tz.m.Backtracking()", "mixed", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-4-backtracking", "tz.m.SSVM(switch=4), tz.m.Backtracking()", "quadratic", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-rosenbrock", "tz.m.SSVM(), tz.m.StepSize(0.02)", "rosenbrock", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-restart", "tz.m.SSVM(init_scale=2.0, restart_interval=4), tz.m.StepSize(0.5)", "quadratic", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-beta", "tz.m.SSVM(switch=1, beta=0.5), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("SSVM-pair-update_freq", "tz.m.SSVM(switch=(0.5, 0.5), update_freq=2), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-mixed", "tz.m.NewSSM(type=2), tz.m.StepSize(0.2)", "mixed", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-split", "tz.m.NewSSM(type=2, concat_params=False), tz.m.StepSize(0.2)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-init_scale", "tz.m.NewSSM(type=2, init_scale=3.0), tz.m.StepSize(0.3)", "mixed", steps=12, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-backtracking", "tz.m.NewSSM(type=2), tz.m.Backtracking()", "quadratic", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-backtracking-mixed", "tz.m.NewSSM(type=2), tz.m.Backtracking()", "mixed", steps=15, rtol=1e-6, atol=1e-9),
    GoldenCase("NewSSM-2-backtracking-rosenbrock", "tz.m.NewSSM(type=2), tz.m.Backtracking()", "rosenbrock", steps=15, rtol=1e-6, atol=1e-9),
]

# SG2 has its own case file (tests/golden/cases/sg2.py), with the notes on where the reference differs.
