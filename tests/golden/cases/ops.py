from golden_case import GoldenCase

# Golden trajectories of the ops family (issue 6) against the reference torchzero 0.4.4.
#
# Where the reference is broken, ours follows the seed and the behaviour is covered by
# tests/modules/test_ops*.py instead of a golden case:
# - GramSchimdt: the reference returns ``u - u / v`` elementwise, which is not orthogonal to v;
#   ours subtracts the projection ``(<u, v> / <v, v>) v``.
# - PowModules: the reference divides ``input / exponent``; ours raises ``input ** exponent``.
# - WeightedSum / WeightedMean: the reference fails to instantiate with ``weights=``.
# - CustomUnaryOperation: the reference calls the method on the list and crashes; ours calls it
#   on each tensor.
# - AccumulateProduct: the reference's accumulator starts at zero, so the output is always zero;
#   ours starts at one (the product of all past updates).
# - CenteredEMASquared / CenteredSqrtEMASquared with amsgrad=True: the reference drops the
#   centering (outputs the plain EMA of squares); ours keeps the running maximum of ``v - m^2``.
#   CenteredSqrtEMASquared clamps ``v - m^2`` at 0 before the root (the reference gives NaN
#   where it is negative, possible with pow != 2).
# - Graft* with ord="l0" and tensorwise=False: ZeroDivisionError in the reference.
# - RandomSample with a variance: the reference scales normal / rademacher / sphere samples by
#   the variance instead of its square root; ours gives entries of that variance (uniform agreed).
# Cases with tz.m.Adam inside compare at a looser tolerance: the reference's Adam adds eps before
# debiasing (see core.py). Adam rebuilt from EMA + ops is tested in tests/modules/test_ops_identities.py
# (EMA belongs to the momentum family).
CASES = [
    # binary ops with numbers and with modules
    GoldenCase("Add-num", "tz.m.Add(0.5, alpha=0.1), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Add-module", "tz.m.Add(tz.m.Sign(), alpha=0.5), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("Sub", "tz.m.Sub(tz.m.Mul(0.5), alpha=0.5), tz.m.Sub(0.01), tz.m.LR(0.02)", "mixed"),
    GoldenCase("RSub", "tz.m.RSub(tz.m.Mul(2)), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("RSub-num", "tz.m.Mul(-1), tz.m.RSub(0.01), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("Mul-Div", "tz.m.Mul(tz.m.Abs()), tz.m.Div([tz.m.Abs(), tz.m.Add(1)]), tz.m.Div(2), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RDiv", "tz.m.Exp(), tz.m.RDiv(1.0), tz.m.RDiv(tz.m.Sign()), tz.m.Mul(-1), tz.m.LR(0.01)", "quadratic", steps=15),
    GoldenCase("Pow", "tz.m.Pow(3), tz.m.LR(0.001)", "mixed"),
    GoldenCase("Pow-module", "tz.m.Abs(), tz.m.Pow(tz.m.Fill(0.5)), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("RPow", "tz.m.Clip(-1, 1), tz.m.RPow(2.0), tz.m.Sub(1), tz.m.LR(0.05)", "quadratic"),
    GoldenCase("RPow-module", "tz.m.Clip(-1, 1), tz.m.RPow(tz.m.Fill(3.0)), tz.m.Sub(1), tz.m.LR(0.05)", "mixed"),
    GoldenCase("Clip", "tz.m.Clip(-2, 1), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("Clip-modules", "tz.m.Clip(tz.m.Fill(-0.5), [tz.m.Abs(), tz.m.Mul(0.5)]), tz.m.LR(0.02)", "mixed"),
    GoldenCase("Maximum-Minimum", "tz.m.Maximum(tz.m.Mul(0.5)), tz.m.Minimum(5.0), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Minimum-module", "tz.m.Minimum(tz.m.Mul(2)), tz.m.Maximum(-3.0), tz.m.LR(0.01)", "mixed"),
    GoldenCase("CopySign", "tz.m.Fill(0.01), tz.m.CopySign(tz.m.Grad()), tz.m.LR(1.0)", "rosenbrock"),
    GoldenCase("CopyMagnitude", "tz.m.CopyMagnitude([tz.m.Abs(), tz.m.Sqrt()]), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("RCopySign", "tz.m.RCopySign(tz.m.Fill(0.1)), tz.m.LR(0.1)", "mixed"),
    GoldenCase("Threshold-above", "tz.m.Threshold(0.5, 0.0, True), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Threshold-below", "tz.m.Threshold(tz.m.Fill(1.0), tz.m.Mul(0.1), False), tz.m.LR(0.02)", "mixed"),
    GoldenCase("GraftInputToOutput", "tz.m.Sign(), tz.m.GraftInputToOutput(tz.m.Grad()), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("GraftInputToOutput-global", "tz.m.Sign(), tz.m.GraftInputToOutput(tz.m.Grad(), tensorwise=False, ord=1, eps=1e-3), tz.m.LR(0.02)", "mixed"),
    GoldenCase("GraftInputToOutput-mad", "tz.m.Sign(), tz.m.GraftInputToOutput(tz.m.Grad(), tensorwise=False, ord='mad'), tz.m.LR(0.02)", "mixed"),
    GoldenCase("GraftInputToOutput-linf", "tz.m.Sign(), tz.m.GraftInputToOutput(tz.m.Grad(), ord='linf'), tz.m.LR(0.02)", "mixed"),
    GoldenCase("GraftInputToOutput-std", "tz.m.Sign(), tz.m.GraftInputToOutput(tz.m.Grad(), tensorwise=False, ord='std'), tz.m.LR(0.02)", "mixed"),
    GoldenCase("GraftOutputToInput", "tz.m.GraftOutputToInput(tz.m.Sign()), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("GraftOutputToInput-global", "tz.m.GraftOutputToInput(tz.m.Adam(), tensorwise=False, ord=3), tz.m.LR(0.02)", "mixed", rtol=1e-5, atol=1e-7),
    # multi-operand ops
    GoldenCase("Graft", "tz.m.Graft(tz.m.Sign(), tz.m.Adam()), tz.m.LR(0.05)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("Graft-global", "tz.m.Graft(tz.m.Sign(), tz.m.Adam(), tensorwise=False, ord='l1', strength=0.7), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Graft-sum", "tz.m.Graft(tz.m.Sign(), tz.m.Grad(), ord='sum', eps=1e-2), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("ClipModules", "tz.m.ClipModules(tz.m.Adam(), -0.5, tz.m.Fill(0.3)), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("DivModules", "tz.m.DivModules(tz.m.Grad(), [tz.m.Abs(), tz.m.Add(1)]), tz.m.LR(0.05)", "quadratic"),
    GoldenCase("DivModules-num", "tz.m.DivModules(1.0, [tz.m.Abs(), tz.m.Add(1)], other_first=True), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.01)", "mixed"),
    GoldenCase("LerpModules", "tz.m.LerpModules(tz.m.Adam(), tz.m.Sign(), 0.3), tz.m.LR(0.02)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("PowModules-num", "tz.m.PowModules(0.5, tz.m.Sign()), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("SubModules", "tz.m.SubModules(tz.m.Mul(2), tz.m.Sign(), alpha=0.5), tz.m.LR(0.01)", "mixed"),
    GoldenCase("SubModules-num", "tz.m.SubModules(0.1, tz.m.Mul(-1)), tz.m.LR(0.01)", "quadratic"),
    # reductions
    GoldenCase("Sum", "tz.m.Sum(tz.m.Adam(), 0.01, tz.m.Sign()), tz.m.LR(0.01)", "rosenbrock", rtol=1e-5, atol=1e-7),
    GoldenCase("Mean", "tz.m.Mean(tz.m.Adam(), 0.01, tz.m.Sign()), tz.m.LR(0.02)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Prod", "tz.m.Prod(tz.m.Sign(), 0.5, [tz.m.Abs(), tz.m.Sqrt()]), tz.m.LR(0.02)", "quadratic"),
    GoldenCase("MaximumModules", "tz.m.MaximumModules(tz.m.Identity(), -0.1, tz.m.Mul(0.5)), tz.m.LR(0.02)", "mixed"),
    GoldenCase("MinimumModules", "tz.m.MinimumModules(tz.m.Identity(), 0.2, tz.m.Mul(0.5)), tz.m.LR(0.02)", "quadratic"),
    # unary
    GoldenCase("Abs-Sign", "tz.m.Abs(), tz.m.Sqrt(), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("Sign", "tz.m.Sign(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Exp-Negate", "tz.m.Negate(), tz.m.Exp(), tz.m.Sub(1), tz.m.Negate(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Reciprocal", "tz.m.Abs(), tz.m.Reciprocal(eps=1.0), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.05)", "mixed"),
    GoldenCase("NanToNum", "tz.m.NanToNum(nan=0.0, posinf=1.0, neginf=-1.0), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("UnaryLambda", "tz.m.UnaryLambda(lambda ts: [t.tanh() for t in ts]), tz.m.LR(0.05)", "mixed"),
    GoldenCase("UnaryParameterwiseLambda", "tz.m.UnaryParameterwiseLambda(lambda t: t / (1 + t.abs())), tz.m.LR(0.05)", "rosenbrock"),
    # utility
    GoldenCase("Clone-Grad", "tz.m.Mul(5), tz.m.Clone(), tz.m.Grad(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Identity-Noop", "tz.m.Identity(1, 2, a=3), tz.m.Noop(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("UpdateToNone", "tz.m.Mul(100), tz.m.UpdateToNone(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("GradToNone", "tz.m.GradToNone(), tz.m.Grad(), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Params", "tz.m.Params(), tz.m.Sub(tz.m.Grad(), alpha=10), tz.m.LR(0.001)", "mixed"),
    GoldenCase("Fill-Ones-Zeros", "tz.m.Sum(tz.m.Fill(0.1), tz.m.Ones(), tz.m.Zeros()), tz.m.CopySign(tz.m.Grad()), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Randn", "tz.m.Add(tz.m.Randn(), alpha=0.1), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Uniform", "tz.m.Add(tz.m.Uniform(-1, 2), alpha=0.1), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("RandomSample-normal", "tz.m.Add(tz.m.RandomSample(), alpha=0.1), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RandomSample-uniform", "tz.m.Add(tz.m.RandomSample('uniform', variance=2.0), alpha=0.1), tz.m.LR(0.01)", "mixed"),
    GoldenCase("RandomSample-sphere", "tz.m.Add(tz.m.RandomSample('sphere'), alpha=0.5), tz.m.LR(0.01)", "mixed", rtol=1e-6, atol=1e-9),
    GoldenCase("RandomSample-rademacher", "tz.m.Add(tz.m.RandomSample('rademacher'), alpha=0.1), tz.m.LR(0.01)", "quadratic"),
    # accumulators
    GoldenCase("AccumulateSum", "tz.m.AccumulateSum(decay=0.2), tz.m.LR(0.001)", "quadratic"),
    GoldenCase("AccumulateMean", "tz.m.AccumulateMean(), tz.m.LR(0.01)", "mixed"),
    GoldenCase("AccumulateMaximum", "tz.m.AccumulateMaximum(decay=0.5), tz.m.Sub(tz.m.Grad(), alpha=-1), tz.m.LR(0.005)", "quadratic"),
    GoldenCase("AccumulateMinimum", "tz.m.AccumulateMinimum(), tz.m.Add(tz.m.Grad()), tz.m.LR(0.005)", "mixed"),
    # moments and bias corrections
    GoldenCase("EMASquared", "tz.m.DivModules(tz.m.Grad(), [tz.m.EMASquared(0.9), tz.m.Sqrt(), tz.m.Add(1e-3)]), tz.m.LR(0.01)", "rosenbrock"),
    GoldenCase("EMASquared-amsgrad-pow", "tz.m.DivModules(tz.m.Grad(), [tz.m.EMASquared(0.9, amsgrad=True, pow=3), tz.m.Add(1e-3)]), tz.m.LR(0.01)", "mixed"),
    GoldenCase("SqrtEMASquared", "tz.m.DivModules(tz.m.Grad(), [tz.m.SqrtEMASquared(0.95, debiased=True), tz.m.Add(1e-3)]), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("SqrtEMASquared-amsgrad", "tz.m.DivModules(tz.m.Grad(), [tz.m.SqrtEMASquared(0.9, amsgrad=True, pow=3), tz.m.Add(1e-3)]), tz.m.LR(0.01)", "mixed"),
    GoldenCase("CenteredEMASquared", "tz.m.DivModules(tz.m.Grad(), [tz.m.CenteredEMASquared(0.9), tz.m.Sqrt(), tz.m.Add(0.1)]), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("CenteredSqrtEMASquared", "tz.m.DivModules(tz.m.Grad(), [tz.m.CenteredSqrtEMASquared(0.9, debiased=True), tz.m.Add(0.1)]), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Debias", "tz.m.Debias(beta1=0.9, beta2=0.99, alpha=0.5), tz.m.LR(0.01)", "quadratic"),
    GoldenCase("Debias-pow", "tz.m.Debias(beta1=0.5, beta2=0.9, pow=3), tz.m.LR(0.01)", "mixed"),
    GoldenCase("Debias2", "tz.m.Debias2(beta=0.9), tz.m.Debias2(beta=0.8, pow=3), tz.m.LR(0.01)", "quadratic"),
]
