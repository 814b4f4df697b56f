from golden_case import GoldenCase

# The reference adds Adam's eps before debiasing (torch.optim.Adam and we add it after), which moves
# trajectories by ~eps/sqrt(1-beta2): those cases compare at a looser tolerance. With debias=False the
# reference ignores alpha; the alpha case keeps debias on (tests/test_first_modules.py covers the rest).
CASES = [
    GoldenCase("LR", "tz.m.LR(1e-3)", "rosenbrock"),
    GoldenCase("StepSize", "tz.m.StepSize(0.05)", "quadratic"),
    GoldenCase("Adam", "tz.m.Adam(), tz.m.LR(0.1)", "rosenbrock", rtol=1e-5),
    GoldenCase("Adam-betas", "tz.m.Adam(beta1=0.5, beta2=0.9, eps=1e-6), tz.m.LR(0.05)", "mixed", rtol=1e-5, atol=1e-6),
    GoldenCase("Adam-amsgrad", "tz.m.Adam(amsgrad=True), tz.m.LR(0.05)", "quadratic", closure=False, rtol=1e-5, atol=1e-7),
    GoldenCase("Adam-nodebias", "tz.m.Adam(debias=False), tz.m.LR(0.02)", "mixed", rtol=1e-5, atol=1e-7),
    GoldenCase("Adam-alpha", "tz.m.Adam(alpha=0.5), tz.m.LR(0.02)", "mixed", rtol=1e-5, atol=1e-7),
]
