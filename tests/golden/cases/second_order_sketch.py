from golden_case import GoldenCase

# SubspaceNewton: the random sketches ("orthonormal", "rows", "rademacher", "mixed") draw from a
# different random stream than the reference, so only the deterministic bases are replayed here.
# With "common_directions", once the basis is full our oldest direction is dropped before the new
# gradient is orthogonalised (the seed does not say how a full basis is refreshed and the reference
# does it differently), so the cases keep sketch_size >= steps; tests/modules/test_second_order_sketch.py
# covers the rest.
CASES = [
    GoldenCase("SubspaceNewton-cd", "tz.m.SubspaceNewton(sketch_size=8), tz.m.LR(0.5)", "quadratic", steps=6),
    GoldenCase("SubspaceNewton-cd-rosen", "tz.m.SubspaceNewton(), tz.m.LR(0.5)", "rosenbrock", steps=8),
    GoldenCase("SubspaceNewton-cd-mixed", "tz.m.SubspaceNewton(sketch_size=6, damping=0.1)", "mixed", steps=5),
    GoldenCase("SubspaceNewton-topk", "tz.m.SubspaceNewton(sketch_size=3, sketch_type='topk'), tz.m.LR(0.5)", "quadratic", steps=6),
    GoldenCase("SubspaceNewton-autograd", "tz.m.SubspaceNewton(sketch_size=4, sketch_type='topk', hvp_method='autograd', eigval_fn=torch.abs)", "mixed", steps=5),
]
