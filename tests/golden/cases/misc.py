from golden_case import GoldenCase

# Golden trajectories of the misc family (torchzero/modules/misc/).
#
# Where the reference (torchzero 0.4.4) is broken or differs on purpose, there is no golden case and
# tests/modules/test_misc.py covers the behaviour instead:
# - Previous: the reference returns its stored buffer itself, so a later in-place module (LR) rescales
#   the stored history; ours returns copies. The cases put the scaling before Previous.
# - RandomHvp(update_freq > 1): same aliasing in the reference: the reused product is scaled in place by
#   the following LR at every step it is reused. Covered by a unit test.
# - GraftToParams: the reference bounds the update norm by eps instead of the output norm as the seed
#   documents ("no smaller than eps"); identical whenever both norms exceed eps (the cases here).
# - RandomHvp(hvp_method="central"): the documented default literal crashes in the reference; ours
#   accepts it (finite differences, central).
# - ord="l0" crashes the reference's grafting (division by zero); ours counts non-zeros.
# - GraftToParams-tensorwise uses a tiny eps: "mixed" has a parameter at 0, which ours lifts to norm eps.
# - NoiseSign(variance=v): the reference scales normal and Rademacher noise by v (variance v**2) but
#   uniform noise to variance v; ours gives every distribution variance v. Only the uniform case is golden.
# - Online: the reference's step returns the loss at the previous point (re-evaluated on the new batch);
#   ours returns the loss at the current point. Trajectories agree (see test_misc.py), losses do not,
#   so Online has no golden case.
# - The reference adds Adam's eps before debiasing (see core.py): cases with Adam use rtol=1e-5.
# - Print* inside projections crash the reference (they read an update that is not formed yet).
CASES = [
    GoldenCase("DivByLoss", "tz.m.DivByLoss(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("DivByLoss-args", "tz.m.DivByLoss(alpha=2.0, min_value=0.5, backward=False), tz.m.LR(0.01)", "mixed"),
    GoldenCase("MulByLoss", "tz.m.MulByLoss(alpha=0.5), tz.m.LR(1e-4)", "rosenbrock"),
    GoldenCase("MulByLoss-min", "tz.m.MulByLoss(min_value=0.3), tz.m.LR(0.01)", "mixed"),
    GoldenCase("FillLoss", "tz.m.FillLoss(alpha=0.1), tz.m.LR(1e-3)", "mixed", steps=10),
    GoldenCase("GradSign", "tz.m.Adam(), tz.m.GradSign(), tz.m.LR(0.01)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("UpdateSign", "tz.m.Adam(), tz.m.UpdateSign(), tz.m.LR(1e-3)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("Relative", "tz.m.Relative(), tz.m.LR(0.05)", "mixed"),
    GoldenCase("Relative-min", "tz.m.Relative(min_value=0.5), tz.m.LR(0.05)", "mixed"),
    GoldenCase("GraftToGrad", "tz.m.Adam(), tz.m.GraftToGrad(), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftToGrad-tensorwise", "tz.m.Adam(), tz.m.GraftToGrad(tensorwise=True, ord=1), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftToGrad-linf", "tz.m.Adam(), tz.m.GraftToGrad(ord=float('inf'), eps=1e-3), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftToGrad-mad", "tz.m.Adam(), tz.m.GraftToGrad(ord='mad'), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftGradToUpdate", "tz.m.Adam(), tz.m.GraftGradToUpdate(), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftGradToUpdate-tensorwise", "tz.m.Adam(), tz.m.GraftGradToUpdate(tensorwise=True, ord=3), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("GraftToParams", "tz.m.GraftToParams(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("GraftToParams-tensorwise", "tz.m.GraftToParams(tensorwise=True, eps=1e-12), tz.m.LR(0.01)", "mixed"),
    GoldenCase("HpuEstimate", "tz.m.HpuEstimate(), tz.m.LR(0.01)", "quadratic", steps=10),
    GoldenCase("LastDifference", "tz.m.LastDifference(), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("LastGradDifference", "tz.m.LastGradDifference(), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("LastProduct", "tz.m.LastProduct(), tz.m.LR(1e-4)", "mixed", steps=6),
    GoldenCase("LastRatio", "tz.m.LastRatio(), tz.m.LR(0.01)", "mixed", steps=6),
    GoldenCase("LastRatio-prev", "tz.m.LastRatio(numerator='prev'), tz.m.LR(0.01)", "mixed", steps=6),
    GoldenCase("LastAbsoluteRatio", "tz.m.LastAbsoluteRatio(), tz.m.LR(0.01)", "mixed", steps=6),
    GoldenCase("LastAbsoluteRatio-prev", "tz.m.LastAbsoluteRatio(numerator='prev', eps=0.5), tz.m.LR(0.01)", "mixed", steps=6),
    GoldenCase("NoiseSign", "tz.m.NoiseSign(), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("NoiseSign-uniform", "tz.m.NoiseSign('uniform', variance=2.0), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("NoiseSign-sphere", "tz.m.NoiseSign('sphere'), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("NoiseSign-rademacher", "tz.m.NoiseSign('rademacher'), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("Previous", "tz.m.LR(0.01), tz.m.Previous()", "mixed"),
    GoldenCase("Previous-3", "tz.m.LR(0.01), tz.m.Previous(n=3)", "mixed"),
    GoldenCase("RandomHvp", "tz.m.RandomHvp(seed=1), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("RandomHvp-zHz", "tz.m.RandomHvp(n_samples=3, zHz=True, seed=2), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("RandomHvp-rademacher", "tz.m.RandomHvp(distribution='rademacher', seed=3), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("RandomHvp-uniform", "tz.m.RandomHvp(distribution='uniform', seed=4), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("RandomHvp-sphere", "tz.m.RandomHvp(distribution='sphere', seed=5), tz.m.LR(0.01)", "mixed", steps=10),
    GoldenCase("RandomHvp-fd", "tz.m.RandomHvp(hvp_method='fd_forward', seed=6), tz.m.LR(0.01)", "mixed", steps=10, rtol=1e-4, atol=1e-6),
    GoldenCase("SaveBest", "tz.m.LR(0.01), tz.m.SaveBest()", "rosenbrock"),
    GoldenCase("PrintLoss", "tz.m.PrintLoss(print_fn=lambda *a: None), tz.m.LR(1e-3)", "rosenbrock", steps=5),
    GoldenCase("PrintUpdate", "tz.m.PrintUpdate(print_fn=lambda *a: None), tz.m.LR(1e-3)", "rosenbrock", steps=5),
    GoldenCase("Multistep", "tz.m.Multistep(tz.m.Adam(), 3), tz.m.LR(0.01)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("Multistep-lr", "tz.m.Multistep([tz.m.Adam(), tz.m.LR(0.05)], 2)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Sequential", "tz.m.Sequential([tz.m.Adam(), [tz.m.GradSign(), tz.m.LR(0.1)]], steps=2), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("NegateOnLossIncrease", "tz.m.LR(0.3), tz.m.NegateOnLossIncrease()", "mixed"),
    GoldenCase("NegateOnLossIncrease-bt", "tz.m.LR(0.3), tz.m.NegateOnLossIncrease(backtrack=True)", "mixed"),
    GoldenCase("Split", "tz.m.Split(lambda p: p.ndim >= 2, true=tz.m.Adam(), false=[tz.m.GradSign(), tz.m.LR(0.5)]), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Split-none", "tz.m.Split(lambda p: p.numel() > 3, true=None, false=tz.m.Adam()), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Alternate", "tz.m.Alternate(tz.m.Adam(), [tz.m.GradSign(), tz.m.LR(0.5)], steps=[2, 3]), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Switch", "tz.m.Switch(tz.m.Adam(), [tz.m.Adam(beta1=0.5), tz.m.LR(0.5)], tz.m.LR(2.0), steps=(3, 4)), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-7),
]
