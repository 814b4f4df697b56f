from golden_case import GoldenCase

# More matrix / curvature-aware methods (torchzero/modules/matrix_adaptive): MatrixMomentum.
#
# MatrixMomentum: with modules after it (e.g. tz.m.Mul), the reference's second step does not follow
# the documented rule (its update is a rescaled gradient we could not explain), so the cases below use
# MatrixMomentum alone, where every step matches update = lr*g - (d - mu*H d).
# Finite-difference HVPs are compared with fd_forward on the quadratic only: elsewhere (and for
# fd_central) the trajectories drift apart at the 1e-3 level by rounding in the differences, and on
# non-quadratic problems the reference may also scale the difference step h differently from our core's
# h/|d| (Objective.hessian_vector_product). adaptive=True (not in the seed documentation) raises NotImplementedError in ours.
CASES = [
    GoldenCase("MatrixMomentum", "tz.m.MatrixMomentum(lr=1e-3, mu=1e-3)", "rosenbrock", steps=20),
    GoldenCase("MatrixMomentum-quad", "tz.m.MatrixMomentum(lr=0.01, mu=0.005)", "quadratic", steps=20),
    GoldenCase("MatrixMomentum-fwd", "tz.m.MatrixMomentum(lr=0.01, mu=0.01, hvp_method='fd_forward')", "quadratic", steps=15, rtol=1e-4, atol=1e-6),
    GoldenCase("MatrixMomentum-inner", "tz.m.MatrixMomentum(lr=0.05, mu=0.005, inner=tz.m.Adam())", "mixed", steps=15, rtol=1e-5, atol=1e-7),
]
