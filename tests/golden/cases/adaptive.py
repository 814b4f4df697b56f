from golden_case import GoldenCase

# Adaptive methods (issue 7). Where the reference (torchzero 0.4.4) is broken, our module follows the
# seed and the case below records the reference's error (the replay skips it); unit tests in
# tests/modules/test_adaptive.py cover those paths instead:
# - AdagradNorm(layerwise=False) crashes in the reference (TypeError in add_);
# - RMSprop(amsgrad=True) crashes in the reference (KeyError 'max_exp_avg_sq');
# - Rprop / ScaleLRBySignChange / SignConsistencyLRs with lb=None or ub=None (documented "can be None") crash;
# - SignConsistencyMask returns its input unchanged instead of the 0/1 mask (no case: nothing to compare);
# - BacktrackOnSignChange(backtrack=True) repeats the previous input where the sign changed instead of
#   undoing the previous update (and keeps comparing with the flipped value); the backtrack=False case matches;
# - RMSprop(centered=True, debias=True) debiases the mean as well as the mean square before centering, so the
#   variance is exactly 0 on the first step, the update is g / eps and the trajectories turn to NaN. Ours
#   debiases the centered second moment (v - m^2) / (1 - a^t), which is finite (no case: the reference is NaN).
CASES = [
    GoldenCase("Adagrad", "tz.m.Adagrad(), tz.m.LR(0.5)", "rosenbrock"),
    GoldenCase("Adagrad-args", "tz.m.Adagrad(lr_decay=0.1, initial_accumulator_value=0.5, eps=1e-3, alpha=2), tz.m.LR(0.1)", "mixed"),
    GoldenCase("Adagrad-tfms", "tz.m.Adagrad(inner=tz.m.Mul(2.0), accumulator_tfm=tz.m.Mul(3.0)), tz.m.LR(0.1)", "quadratic", closure=False),
    GoldenCase("AdagradNorm", "tz.m.AdagradNorm(), tz.m.LR(0.1)", "mixed"),
    GoldenCase("AdagradNorm-beta", "tz.m.AdagradNorm(beta=0.9, initial_accumulator_value=1, lr_decay=0.05, alpha=2), tz.m.LR(0.1)", "quadratic"),
    GoldenCase("AdagradNorm-nodebias-nosqrt", "tz.m.AdagradNorm(beta=0.5, beta_debias=False, use_sqrt=False, eps=0.1), tz.m.LR(0.1)", "mixed"),
    GoldenCase("AdagradNorm-global", "tz.m.AdagradNorm(layerwise=False), tz.m.LR(0.1)", "mixed"),
    GoldenCase("Adan", "tz.m.Adan(), tz.m.LR(0.05)", "rosenbrock"),
    GoldenCase("Adan-betas", "tz.m.Adan(beta1=0.5, beta2=0.7, beta3=0.9, eps=1e-3), tz.m.LR(0.02)", "mixed"),
    GoldenCase("Adan-tfms", "tz.m.Adan(m_tfm=tz.m.Mul(2.0), v_tfm=tz.m.Mul(3.0), n_tfm=tz.m.Mul(4.0)), tz.m.LR(0.01)", "quadratic", closure=False),
    GoldenCase("AdaptiveHeavyBall", "tz.m.AdaptiveHeavyBall(f_star=-1.1708200257477)", "quadratic", steps=8),
    GoldenCase("AdaptiveHeavyBall-rosen", "tz.m.AdaptiveHeavyBall()", "rosenbrock", steps=12),
    GoldenCase("AEGD", "tz.m.AEGD()", "rosenbrock"),
    GoldenCase("AEGD-args", "tz.m.AEGD(lr=0.05, c=3)", "mixed"),
    GoldenCase("Lion", "tz.m.Lion(), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("Lion-betas", "tz.m.Lion(0.5, 0.8), tz.m.LR(0.01)", "mixed", closure=False),
    GoldenCase("MARSCorrection", "tz.m.MARSCorrection(), tz.m.RMSprop(), tz.m.LR(0.05)", "mixed"),
    GoldenCase("MARSCorrection-args", "tz.m.MARSCorrection(beta=0.5, scaling=1, max_norm=0.5), tz.m.Lion(beta1=0.5), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("MARSCorrection-noclip", "tz.m.MARSCorrection(max_norm=None), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RMSprop", "tz.m.RMSprop(), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("RMSprop-centered", "tz.m.RMSprop(centered=True), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RMSprop-debias", "tz.m.RMSprop(smoothing=0.9, debias=True, eps=1e-6), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("RMSprop-init-update", "tz.m.RMSprop(init='update'), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RMSprop-tfms", "tz.m.RMSprop(exp_avg_sq_tfm=tz.m.Mul(2.0), inner=tz.m.Mul(3.0)), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("RMSprop-amsgrad", "tz.m.RMSprop(amsgrad=True), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Rprop", "tz.m.Rprop(), tz.m.LR(0.1)", "rosenbrock"),
    GoldenCase("Rprop-nobacktrack", "tz.m.Rprop(backtrack=False, lb=0.1, ub=0.5, nplus=1.5, nminus=0.25), tz.m.LR(0.1)", "mixed"),
    GoldenCase("Rprop-alpha", "tz.m.Rprop(alpha=0.01)", "quadratic", closure=False),
    GoldenCase("Rprop-unbounded", "tz.m.Rprop(lb=None, ub=None), tz.m.LR(0.1)", "mixed"),
    GoldenCase("ScaleLRBySignChange", "tz.m.ScaleLRBySignChange(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("ScaleLRBySignChange-grad", "tz.m.HeavyBall(0.5), tz.m.ScaleLRBySignChange(use_grad=True, nplus=1.5, alpha=0.5), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("SignConsistencyLRs", "tz.m.Mul(tz.m.SignConsistencyLRs()), tz.m.LR(0.01)", "mixed"),
    GoldenCase("SignConsistencyLRs-args", "tz.m.Mul(tz.m.SignConsistencyLRs(nplus=1.5, nminus=0.2, lb=0.1, ub=2.0, alpha=0.5)), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("BacktrackOnSignChange-zero", "tz.m.BacktrackOnSignChange(backtrack=False), tz.m.LR(0.01)", "mixed"),
    GoldenCase("OrthoGrad", "tz.m.OrthoGrad(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("OrthoGrad-args", "tz.m.OrthoGrad(eps=0.01, renormalize=False), tz.m.LR(0.01)", "quadratic"),
]
