from golden_case import GoldenCase

# Newton-type methods jump far on Rosenbrock from (-1.1, 2.5) and the multipoint methods diverge
# there (the reference does too), so those use few steps or the well-conditioned problems.
# hessian_method='gfd_central': the trajectory agrees with the reference, but the reference reports
# the loss of a perturbed point, not of the current one; tests/modules/test_second_order.py covers it.
CASES = [
    GoldenCase("Newton-quadratic", "tz.m.Newton()", "quadratic", steps=3),
    GoldenCase("Newton-rosenbrock", "tz.m.Newton(), tz.m.LR(0.5)", "rosenbrock", steps=15),
    GoldenCase("Newton-mixed", "tz.m.Newton()", "mixed", steps=6),
    GoldenCase("Newton-autograd", "tz.m.Newton(hessian_method='autograd'), tz.m.LR(0.5)", "mixed", steps=6),
    GoldenCase("Newton-damping", "tz.m.Newton(damping=1.0)", "rosenbrock", steps=10),
    GoldenCase("Newton-eigval", "tz.m.Newton(eigval_fn=torch.abs), tz.m.LR(0.5)", "rosenbrock", steps=10),
    GoldenCase("Newton-lstsq", "tz.m.Newton(use_lstsq=True), tz.m.LR(0.5)", "mixed", steps=6),
    GoldenCase("Newton-update_freq", "tz.m.Newton(update_freq=3), tz.m.LR(0.5)", "mixed", steps=8),
    GoldenCase("Newton-precompute", "tz.m.Newton(precompute_inverse=True, update_freq=2), tz.m.LR(0.5)", "mixed", steps=6),
    GoldenCase("Newton-inner", "tz.m.Newton(inner=tz.m.HeavyBall(0.5)), tz.m.LR(0.3)", "mixed", steps=6),
    GoldenCase("Newton-gfd_forward", "tz.m.Newton(hessian_method='gfd_forward'), tz.m.LR(0.5)", "quadratic", steps=4, rtol=1e-5, atol=1e-7),
    GoldenCase("Newton-eigv_tol", "tz.m.Newton(eigv_tol=0.1), tz.m.LR(0.5)", "quadratic", steps=4),
    GoldenCase("Newton-truncate", "tz.m.Newton(truncate=4), tz.m.LR(0.5)", "quadratic", steps=4),
    GoldenCase("InverseFreeNewton", "tz.m.InverseFreeNewton()", "mixed", steps=10),
    GoldenCase("InverseFreeNewton-rosenbrock", "tz.m.InverseFreeNewton(), tz.m.LR(0.5)", "rosenbrock", steps=10),
    GoldenCase("InverseFreeNewton-update_freq", "tz.m.InverseFreeNewton(update_freq=2)", "quadratic", steps=8),
    GoldenCase("TwoPointNewton", "tz.m.TwoPointNewton()", "mixed", steps=5),
    GoldenCase("TwoPointNewton-lstsq", "tz.m.TwoPointNewton(lstsq=True), tz.m.LR(0.5)", "quadratic", steps=3),
    GoldenCase("SixthOrder3P", "tz.m.SixthOrder3P()", "mixed", steps=4),
    GoldenCase("SixthOrder3PM2", "tz.m.SixthOrder3PM2()", "mixed", steps=4),
    GoldenCase("SixthOrder3PM2-quadratic", "tz.m.SixthOrder3PM2(derivatives_method='autograd')", "quadratic", steps=2),
]
