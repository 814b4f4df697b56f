from golden_case import GoldenCase

# Line searches against the reference (torchzero 0.4.4).
#
# Where the reference differs from the seed, ours follows the seed and the behaviour is covered by
# tests/modules/test_line_search.py instead of a golden case:
# * Backtracking with a condition that needs the slope at the trial point ("curvature",
#   "strong_curvature", "wolfe", "strong_wolfe") crashes in the reference (it passes no gradient).
# * AdaptiveBacktracking: the reference rescales the *original* init rather than the current one
#   and ignores target_iters, so its initial step jumps back to init after any search that needed
#   exactly one reduction.
# * AdaptiveBisection: when the first forward step already increases the loss, the reference moves
#   to previous*nminus (a point it never evaluated) instead of keeping the previous step, and it
#   makes maxiter + 1 evaluations.
# * StrongWolfe: the reference rounds losses and slopes to float32 before its cubic interpolation
#   (relative differences ~1e-7 per trial, amplified on Rosenbrock), so cubic cases are compared on
#   the quadratic at a looser tolerance and the other cases use quadratic interpolation, which
#   matches exactly. With interpolation="bisection" the reference extrapolates by 1% per bracketing
#   step; ours bisects the extrapolation interval. Polynomial fits differ by construction.
# * ScipyMinimizeScalar(maxiter=...) makes more than maxiter evaluations in the reference.
CASES = [
    GoldenCase("Backtracking-gd", "tz.m.Backtracking()", "quadratic"),
    GoldenCase("Backtracking-params", "tz.m.Backtracking(init=2.0, beta=0.7, c=0.3)", "mixed"),
    GoldenCase("Backtracking-decrease", "tz.m.Backtracking(condition='decrease')", "rosenbrock"),
    GoldenCase("Backtracking-goldstein", "tz.m.Backtracking(condition='goldstein', c=0.2)", "quadratic"),
    GoldenCase("Backtracking-adaptive", "tz.m.Backtracking(init=100, maxiter=3)", "quadratic"),
    GoldenCase("Backtracking-nonadaptive", "tz.m.Backtracking(init=100, maxiter=3, adaptive=False)", "quadratic"),
    GoldenCase("LBFGS-Backtracking", "tz.m.LBFGS(), tz.m.Backtracking()", "rosenbrock", rtol=1e-6, atol=1e-8),
    GoldenCase("LBFGS-Backtracking-LR", "tz.m.LBFGS(history_size=3), tz.m.Backtracking(), tz.m.LR(0.5)", "mixed"),
    GoldenCase("Scipy-brent", "tz.m.ScipyMinimizeScalar()", "quadratic"),
    GoldenCase("Scipy-golden", "tz.m.ScipyMinimizeScalar(method='golden')", "quadratic"),
    GoldenCase("Scipy-bounded", "tz.m.ScipyMinimizeScalar(method='bounded', bounds=(0, 2))", "mixed", rtol=1e-6, atol=1e-8),
    GoldenCase("Scipy-bracket-tol", "tz.m.ScipyMinimizeScalar(bracket=(0, 0.1), tol=1e-3)", "quadratic"),
    GoldenCase("StrongWolfe-LBFGS-quadinterp", "tz.m.LBFGS(), tz.m.StrongWolfe(interpolation='quadratic')", "rosenbrock", rtol=1e-6, atol=1e-8),
    GoldenCase("StrongWolfe-LBFGS-maxeval", "tz.m.LBFGS(), tz.m.StrongWolfe(maxeval=3, interpolation='quadratic')", "rosenbrock", rtol=1e-6, atol=1e-8),
    GoldenCase("StrongWolfe-first-order", "tz.m.StrongWolfe(a_init='first-order', c2=0.1, interpolation='quadratic')", "quadratic"),
    GoldenCase("StrongWolfe-quadratic-init", "tz.m.StrongWolfe(a_init='quadratic', interpolation='quadratic')", "mixed"),
    GoldenCase("StrongWolfe-previous", "tz.m.StrongWolfe(a_init='previous', interpolation='quadratic', init_value=0.01)", "quadratic", rtol=1e-5, atol=1e-7),
    GoldenCase("StrongWolfe-bisection", "tz.m.LBFGS(), tz.m.StrongWolfe(interpolation='bisection')", "quadratic"),
    GoldenCase("StrongWolfe-LBFGS-cubic", "tz.m.LBFGS(), tz.m.StrongWolfe()", "quadratic", rtol=1e-4, atol=1e-6),
]
