from golden_case import GoldenCase

# Step sizes (issue 7). Where the reference (torchzero 0.4.4) is broken, our module follows the seed
# and the case records the reference's error (the replay skips it); tests/modules/test_step_size.py
# covers those paths instead:
# - PolyakStepSize(use_grad=False) fails an assertion in the reference;
# - BBStab(inf_iters=0) raises KeyError('s_norm_min') in the reference.
# RandomStepSize draws from this module's own torch generator (project rule), the reference from
# Python's `random`: only the low == high case can be compared.
CASES = [
    GoldenCase("Warmup", "tz.m.Adam(), tz.m.LR(0.1), tz.m.Warmup(steps=10, start_lr=0.01)", "rosenbrock", rtol=1e-5),
    GoldenCase("Warmup-end", "tz.m.Warmup(steps=5, start_lr=0.1, end_lr=0.5), tz.m.LR(0.01)", "mixed"),
    GoldenCase("WarmupNormClip", "tz.m.WarmupNormClip(steps=5, start_norm=0.01, end_norm=0.5), tz.m.LR(0.1)", "mixed"),
    GoldenCase("WarmupNormClip-rosen", "tz.m.WarmupNormClip(steps=20, start_norm=1e-3, end_norm=1), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("RandomStepSize-fixed", "tz.m.RandomStepSize(0.5, 0.5, seed=0), tz.m.LR(0.01)", "mixed"),
    GoldenCase("PolyakStepSize", "tz.m.PolyakStepSize(), tz.m.LR(0.1)", "mixed"),
    GoldenCase("PolyakStepSize-unknown", "tz.m.PolyakStepSize(f_star=None, max=0.1, alpha=0.5)", "rosenbrock"),
    GoldenCase("PolyakStepSize-fstar", "tz.m.PolyakStepSize(f_star=-1.1708200257477, y=2, y_decay=0.1, alpha=0.5)", "quadratic"),
    GoldenCase("PolyakStepSize-nograd", "tz.m.PolyakStepSize(f_star=None, use_grad=False, y=0.5, y_decay=0.1), tz.m.LR(0.3)", "mixed"),
    GoldenCase("BarzilaiBorwein", "tz.m.BarzilaiBorwein(alpha_0=1e-3)", "quadratic"),
    GoldenCase("BarzilaiBorwein-long", "tz.m.BarzilaiBorwein(type='long', alpha_0=1e-3)", "mixed"),
    GoldenCase("BarzilaiBorwein-short-update", "tz.m.BarzilaiBorwein(type='short', alpha_0=1e-3, use_grad=False)", "mixed", closure=False),
    GoldenCase("BarzilaiBorwein-geom-fallback", "tz.m.BarzilaiBorwein(type='geom-fallback', alpha_0=1e-4)", "rosenbrock"),
    GoldenCase("BarzilaiBorwein-inner", "tz.m.BarzilaiBorwein(alpha_0=1e-2, inner=tz.m.Mul(0.5))", "quadratic"),
    GoldenCase("BBStab", "tz.m.BBStab(alpha_0=1e-3)", "mixed"),
    GoldenCase("BBStab-delta", "tz.m.BBStab(alpha_0=1e-3, delta=0.1, type='short')", "quadratic"),
    GoldenCase("BBStab-c", "tz.m.BBStab(alpha_0=1e-2, c=0.9, inf_iters=2, type='long')", "mixed"),
    GoldenCase("BBStab-inf0", "tz.m.BBStab(alpha_0=1e-2, inf_iters=0)", "quadratic"),
    GoldenCase("AdGD", "tz.m.AdGD(alpha_0=1e-3)", "mixed"),
    GoldenCase("AdGD-v1", "tz.m.AdGD(variant=1, alpha_0=1e-3)", "quadratic"),
    GoldenCase("AdGD-v1-nosqrt", "tz.m.AdGD(variant=1, sqrt=False, alpha_0=1e-3, use_grad=False)", "mixed"),
    GoldenCase("AdGD-rosen", "tz.m.AdGD(alpha_0=1e-4)", "rosenbrock"),
    GoldenCase("BoldDriver", "tz.m.BoldDriver()", "mixed"),
    GoldenCase("BoldDriver-args", "tz.m.BoldDriver(a_init=0.05, nplus=1.5, nminus=0.5)", "rosenbrock"),
    GoldenCase("BoldDriver-inner", "tz.m.BoldDriver(a_init=0.01, inner=tz.m.Adam())", "quadratic", rtol=1e-5),
]
