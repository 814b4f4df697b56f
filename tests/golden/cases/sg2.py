from golden_case import GoldenCase

# SG2 (Spall's 2SG, quasi_newton/sg2.py).
#
# The reference evaluates closure(backward=True) under torch.no_grad, so a closure that does not enable
# grad itself crashes it ("element 0 of tensors does not require grad"); tests/golden/problems.py's closure
# turns grad mode on when asked for gradients, which is what makes these cases recordable.
#
# Where ours deliberately differs from the reference (covered by tests/modules/test_sg2.py instead):
# * more than one perturbation per refresh (n_samples > 1, and n_first_step_samples > 1, the default 10):
#   for every sample after the first, the reference takes the "minus" gradient at x instead of
#   x - h*Delta and still divides by 2h, so those samples enter the average at about half weight
#   (exactly half on a quadratic). Ours averages true central differences. The cases here use one sample.
# * before start_step the reference scales the update by 1 / tr(H), which steps uphill where the
#   estimate has a negative trace (e.g. Rosenbrock at the start with some seeds); ours uses 1 / |tr(H)|.
#   The seeds below give positive traces.
# * Optimizer.step returns f(x) here; the reference returns the loss at the last perturbed point it evaluated
#   (x + h*Delta), so the cases compare trajectories only (compare_losses=False).
# The solve after start_step is a minimum-norm least-squares solve in both (pinv here, gelsy in the
# reference): trajectories agree to rounding, which ill-conditioned Newton steps on rank-deficient early
# estimates amplify, hence the short quadratic runs.
CASES = [
    GoldenCase("SG2-quadratic", "tz.m.SG2(seed=0, n_first_step_samples=1), tz.m.LR(0.5)", "quadratic", steps=14, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-quadratic-beta-damping",
               "tz.m.SG2(seed=1, n_first_step_samples=1, start_step=3, beta=0.8, damping=1.0)", "quadratic", steps=7, rtol=1e-6, compare_losses=False),
    GoldenCase("SG2-quadratic-update_freq",
               "tz.m.SG2(seed=2, n_first_step_samples=1, start_step=2, update_freq=3), tz.m.LR(0.5)", "quadratic", steps=9, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-quadratic-inner-h",
               "tz.m.SG2(seed=3, n_first_step_samples=1, start_step=4, h=0.05, damping=0.1, inner=tz.m.Mul(0.5))",
               "quadratic", steps=10, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-rosenbrock", "tz.m.SG2(seed=0, n_first_step_samples=1, start_step=3, damping=1.0), tz.m.LR(0.1)",
               "rosenbrock", steps=15, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-mixed-before-start", "tz.m.SG2(seed=0, n_first_step_samples=1, start_step=100), tz.m.LR(0.5)",
               "mixed", steps=15, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-LM-rosenbrock", "tz.m.LevenbergMarquardt(tz.m.SG2(seed=0, n_first_step_samples=1, start_step=2))",
               "rosenbrock", steps=20, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-LM-mixed", "tz.m.LevenbergMarquardt(tz.m.SG2(seed=0, n_first_step_samples=1, start_step=0))",
               "mixed", steps=15, rtol=1e-7, compare_losses=False),
    GoldenCase("SG2-LM-mixed-beta-h", "tz.m.LevenbergMarquardt(tz.m.SG2(seed=0, n_first_step_samples=1, beta=0.75, h=0.1))",
               "mixed", steps=15, rtol=1e-7, compare_losses=False),
]
