from golden_case import GoldenCase

# Termination criteria never change the update: these cases check that they pass it through unchanged.
# The flag itself differs from the reference (torchzero 0.4.4) on purpose, and tests/modules/test_termination.py
# covers it:
# - TerminateAfterNSteps(n) / TerminateAfterNEvaluations(n): the reference raises the flag one step late
#   (after n + 1 steps); ours after exactly n, so `while not opt.should_terminate: opt.step(closure)` makes n steps.
# - TerminateAfterNEvaluations without a closure: the reference never counts evaluations and never stops;
#   ours counts each step's gradient as one evaluation.
# - criteria with n > 1 (TerminateByGradientNorm, TerminateByUpdateNorm): the reference lowers the flag again
#   on the step after it was raised; ours keeps it raised while the condition holds.
CASES = [
    GoldenCase("TerminateAfterNSteps", "tz.m.LR(1e-3), tz.m.TerminateAfterNSteps(5)", "rosenbrock", steps=10),
    GoldenCase("TerminateByGradientNorm", "tz.m.TerminateByGradientNorm(tol=1.0, n=2), tz.m.LR(0.05)", "quadratic", steps=10),
    GoldenCase("TerminateByUpdateNorm", "tz.m.LR(0.05), tz.m.TerminateByUpdateNorm(tol=1e-2, n=2, ord='linf')", "quadratic", steps=10),
    GoldenCase("TerminateOnLossReached", "tz.m.LR(0.05), tz.m.TerminateOnLossReached(0.0)", "mixed", steps=10),
    GoldenCase("TerminateOnNoImprovement", "tz.m.LR(0.05), tz.m.TerminateOnNoImprovement(tol=1e-3, n=2)", "mixed", steps=10),
    GoldenCase("TerminateAny", "tz.m.LR(0.05), tz.m.TerminateAny(tz.m.TerminateAfterNEvaluations(3), tz.m.TerminateNever())", "mixed", steps=10),
    GoldenCase("TerminateAll", "tz.m.TerminateAll(tz.m.TerminateAfterNSeconds(100.0), tz.m.TerminateAfterNSteps(2)), tz.m.LR(0.05)", "mixed", steps=10),
]
