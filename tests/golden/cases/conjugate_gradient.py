from golden_case import GoldenCase

# Conjugate gradient methods against the reference (torchzero 0.4.4).
#
# The reference never updates the previous gradient of every method but FletcherReeves: its beta
# always uses the gradient of the last restart (of the first step with restart_interval=None),
# which contradicts the formulas the seed names. It is correct when every other step is a restart,
# so the other methods are compared here with restart_interval=2 (beta from the previous step, then
# a restart) and tests/modules/test_conjugate_gradient.py checks each beta against its formula
# (and the n-step convergence on quadratics) for the general case. StrongWolfe uses quadratic
# interpolation (the reference rounds its cubic interpolation to float32, see line_search.py).
# On Rosenbrock and on the mixed problem the reference StrongWolfe(c2=0.1) fails (makes no step) at
# some iterations where ours finds a Wolfe point, so the line-search cases use the quadratic only.
# With inner, the reference stores the restart direction aliased to the tensor inner then modifies
# in place, so the step after each restart uses inner(g) as the previous direction twice over; ours
# is u = inner(g) + beta u_prev throughout (unit test). The reference restarts every other step with restart_interval=1 (ours restarts every step, as
# the argument says); not a golden case.
SW = "tz.m.StrongWolfe(c2=0.1, a_init='first-order', interpolation='quadratic')"
CASES = [
    GoldenCase("FR-LR", "tz.m.FletcherReeves(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("FR-noreset", "tz.m.FletcherReeves(restart_interval=None), tz.m.LR(1e-3)", "rosenbrock", steps=20),
    GoldenCase("FR-interval", "tz.m.FletcherReeves(restart_interval=3), tz.m.LR(0.01)", "mixed"),
    GoldenCase("FR-SW", f"tz.m.FletcherReeves(), {SW}", "quadratic", steps=12, rtol=1e-6, atol=1e-8),
    GoldenCase("PR-2", "tz.m.PolakRibiere(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("PR-noclip-2", "tz.m.PolakRibiere(clip_beta=False, restart_interval=2), tz.m.LR(0.01)", "mixed"),
    GoldenCase("HS-2", "tz.m.HestenesStiefel(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("HS-clip-2", "tz.m.HestenesStiefel(restart_interval=2, clip_beta=True), tz.m.LR(0.01)", "mixed"),
    GoldenCase("DY-2", "tz.m.DaiYuan(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("CD-2", "tz.m.ConjugateDescent(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("LS-2", "tz.m.LiuStorey(restart_interval=2), tz.m.LR(0.01)", "mixed"),
    GoldenCase("HZ-2", "tz.m.HagerZhang(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("DYHS-2", "tz.m.DYHS(restart_interval=2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("PGM-LR", "tz.m.ProjectedGradientMethod(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("PGM-SW", f"tz.m.ProjectedGradientMethod(), {SW}", "quadratic", steps=12, rtol=1e-6, atol=1e-8),
    GoldenCase("PGM-options", "tz.m.ProjectedGradientMethod(init_scale=2.0, restart_interval=3, beta=0.5), tz.m.LR(0.02)", "mixed"),
    GoldenCase("PGM-split", "tz.m.ProjectedGradientMethod(concat_params=False), tz.m.LR(0.01)", "mixed", rtol=1e-5, atol=1e-6),
]
