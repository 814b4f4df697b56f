from golden_case import GoldenCase

# The reference visits coordinates in an order that differs from the documented one for more than
# two coordinates ("cyclic" runs backwards: 0, n-1, ..., 1; "cyclic2" is 0, n-1, ..., 1, 1, ..., n-1,
# 0, 0), so golden cases use the 2-D Rosenbrock function, where "cyclic" orders agree; the documented
# orders are unit-tested. Its adaptive step only ever shrinks; ours also grows back (documented), so
# adaptive cases are not compared. GradientSampling with its defaults (fixed=True, no modules)
# recurses forever in the reference (RecursionError) and is random: unit tests only.
CASES = [
    GoldenCase("CD-cyclic", "tz.m.CD(h=1e-3, index='cyclic', adaptive=False), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("CD-grad", "tz.m.CD(h=1e-3, grad=True, index='cyclic', adaptive=False), tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("CD-twopoint", "tz.m.CD(h=1e-2, threepoint=False, index='cyclic', adaptive=False), tz.m.LR(1e-2)", "rosenbrock"),
    GoldenCase("CD-twopoint-grad", "tz.m.CD(h=1e-4, grad=True, threepoint=False, index='cyclic', adaptive=False), tz.m.LR(2e-4)", "rosenbrock", rtol=1e-6, atol=1e-8),
]
