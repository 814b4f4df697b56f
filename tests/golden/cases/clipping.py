from golden_case import GoldenCase

# clipping/ (issue 7). Where the reference 0.4.4 is broken the case is left out and a unit test in
# tests/modules/test_clipping.py covers the documented behaviour instead:
# - dim=None with several parameters: the reference reduces every parameter over the dimensions of
#   the *first* one (e.g. a matrix after a vector is clipped column by column); ours takes each
#   parameter whole, as documented. dim=None cases below use single-parameter problems.
# - ord='sum' with dim='global': a negative sum gives a negative factor (the update is flipped);
#   ord='l0' with dim='global' raises ZeroDivisionError; ClipNormByEMA / NormalizeByEMA raise
#   TypeError for every string ord ('mad', 'l1', ...).
# - inverse_dims with a negative dim: the reference does not wrap the dim before taking the other
#   dimensions, so dim=-1 with inverse_dims=True reduces over all dimensions; ours over all but the last.
# - ClipNormGrowth with min_value > 1 divides every unclipped update by min_value, and on its
#   second step ignores min_value; ours follows "next norm is at most max(prev_norm, min_value) * mul".
# - ClipValueGrowth with add, min_value and max_decay together: min_value (documented for the
#   multiplicative limit) changes the additive limit too; ours keeps it to the multiplicative one.
CASES = [
    GoldenCase("ClipValue", "tz.m.ClipValue(2.0), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("ClipNorm", "tz.m.ClipNorm(5.0), tz.m.LR(0.02)", "rosenbrock"),
    GoldenCase("ClipNorm-l1", "tz.m.ClipNorm(2.0, ord=1), tz.m.LR(0.05)", "quadratic"),
    GoldenCase("ClipNorm-global", "tz.m.ClipNorm(1.0, dim='global'), tz.m.LR(0.1)", "mixed"),
    GoldenCase("ClipNorm-global-linf", "tz.m.ClipNorm(0.5, ord='linf', dim='global'), tz.m.LR(0.1)", "mixed", closure=False),
    GoldenCase("ClipNorm-global-mad", "tz.m.ClipNorm(0.3, ord='mad', dim='global'), tz.m.LR(0.1)", "mixed"),
    GoldenCase("ClipNorm-dim0", "tz.m.ClipNorm(0.5, dim=0), tz.m.LR(0.1)", "mixed"),
    GoldenCase("ClipNorm-dim-inverse", "tz.m.ClipNorm(0.5, dim=0, inverse_dims=True, min_size=2), tz.m.LR(0.1)", "mixed"),
    GoldenCase("Normalize", "tz.m.Normalize(), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("Normalize-std", "tz.m.Normalize(0.5, ord='std'), tz.m.LR(0.05)", "quadratic"),
    GoldenCase("Normalize-global-l3", "tz.m.Normalize(2.0, ord='l3', dim='global'), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Normalize-dims", "tz.m.Normalize(1.0, dim=(0, 2)), tz.m.LR(0.02)", "mixed"),
    GoldenCase("Normalize-var-dim", "tz.m.Normalize(1.0, ord='var', dim=-1, min_size=3), tz.m.LR(0.02)", "mixed"),
    GoldenCase("Centralize", "tz.m.Centralize(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Centralize-dim", "tz.m.Centralize(dim=0, inverse_dims=True, min_size=1), tz.m.LR(0.02)", "mixed"),
    GoldenCase("Centralize-global", "tz.m.Centralize(dim='global'), tz.m.LR(0.02)", "mixed"),
    GoldenCase("ClipNormByEMA", "tz.m.ClipNormByEMA(), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("ClipNormByEMA-opts", "tz.m.ClipNormByEMA(0.5, ord=1, max_ema_growth=1.2, init=0.5, min_norm=0.1), tz.m.LR(0.02)", "mixed"),
    GoldenCase("ClipNormByEMA-global", "tz.m.ClipNormByEMA(0.8, tensorwise=False, max_ema_growth=None), tz.m.LR(0.02)", "mixed", closure=False),
    GoldenCase("ClipNormByEMA-inner", "tz.m.ClipNormByEMA(0.8, inner=tz.m.HeavyBall()), tz.m.LR(0.005)", "quadratic"),
    GoldenCase("NormalizeByEMA", "tz.m.NormalizeByEMA(0.9), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("NormalizeByEMA-global", "tz.m.NormalizeByEMA(0.5, tensorwise=False, max_ema_growth=1.1), tz.m.LR(0.02)", "mixed"),
    GoldenCase("ClipValueByEMA", "tz.m.ClipValueByEMA(0.9), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("ClipValueByEMA-opts", "tz.m.ClipValueByEMA(0.5, init=1.0, inner=tz.m.HeavyBall(0.5), exp_avg_tfm=tz.m.HeavyBall(0.5)), tz.m.LR(0.01)", "mixed"),
    GoldenCase("ClipNormGrowth", "tz.m.ClipNormGrowth(), tz.m.LR(2e-3)", "rosenbrock"),
    GoldenCase("ClipNormGrowth-momentum", "tz.m.HeavyBall(0.9), tz.m.ClipNormGrowth(mul=1.2), tz.m.LR(0.01)", "mixed"),
    GoldenCase("ClipNormGrowth-add", "tz.m.ClipNormGrowth(add=0.5, mul=1.2, max_decay=None, ord=1), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("ClipNormGrowth-global", "tz.m.HeavyBall(0.9), tz.m.ClipNormGrowth(mul=1.1, min_value=0.01, max_decay=1.5, tensorwise=False), tz.m.LR(0.01)", "mixed"),
    GoldenCase("ClipValueGrowth", "tz.m.HeavyBall(0.9), tz.m.ClipValueGrowth(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("ClipValueGrowth-add", "tz.m.ClipValueGrowth(add=0.2, mul=1.3, min_value=None, max_decay=1.5), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("ClipValueGrowth-minvalue", "tz.m.ClipValueGrowth(mul=1.3, min_value=0.5, max_decay=1.5), tz.m.LR(0.02)", "quadratic"),
]
