from golden_case import GoldenCase

# weight_decay/ (issue 7). The reference computes the decay of order ord as w^(ord-1), which for odd
# ord >= 3 pushes negative weights further from zero; ours uses the gradient of the penalty
# (1/ord) sum |w|^ord, sign(w) |w|^(ord-1) (the same for ord 1, 2 and even orders), so the cases
# below use ord 1, 2 and 4 and tests/modules/test_weight_decay.py covers ord=3.
CASES = [
    GoldenCase("WeightDecay", "tz.m.WeightDecay(0.5), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("WeightDecay-l1", "tz.m.WeightDecay(0.2, ord=1), tz.m.LR(0.02)", "mixed"),
    GoldenCase("WeightDecay-l4", "tz.m.WeightDecay(0.1, ord=4), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("WeightDecay-decoupled", "tz.m.HeavyBall(), tz.m.WeightDecay(0.5), tz.m.LR(0.005)", "mixed", closure=False),
    GoldenCase("CautiousWeightDecay", "tz.m.HeavyBall(), tz.m.CautiousWeightDecay(0.5), tz.m.LR(0.005)", "mixed"),
    GoldenCase("CautiousWeightDecay-l1", "tz.m.CautiousWeightDecay(0.3, ord=1), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("DirectWeightDecay", "tz.m.DirectWeightDecay(0.05), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("DirectWeightDecay-after", "tz.m.HeavyBall(), tz.m.DirectWeightDecay(0.02, ord=1), tz.m.LR(0.005)", "mixed"),
    GoldenCase("DirectWeightDecay-noclosure", "tz.m.DirectWeightDecay(0.05, ord=4), tz.m.LR(0.01)", "quadratic", closure=False),
    GoldenCase("RelativeWeightDecay", "tz.m.RelativeWeightDecay(), tz.m.LR(0.02)", "mixed"),
    GoldenCase("RelativeWeightDecay-grad", "tz.m.HeavyBall(), tz.m.RelativeWeightDecay(0.5, norm_input='grad', metric=2), tz.m.LR(0.005)", "mixed"),
    GoldenCase("RelativeWeightDecay-params", "tz.m.RelativeWeightDecay(0.2, ord=1, norm_input='params', metric='std', cautious=True), tz.m.LR(0.02)", "quadratic"),
]
