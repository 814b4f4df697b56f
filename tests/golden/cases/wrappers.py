from golden_case import GoldenCase

# Wrap: torch.optim optimizers as modules. The reference cannot wrap optimizers whose step needs a
# closure (torch.optim.LBFGS: "missing 1 required positional argument: 'closure'"); ours hands them the
# objective's closure (tests/modules/test_wrappers.py).
CASES = [
    GoldenCase("Wrap-Adam", "tz.m.Wrap(torch.optim.Adam, lr=1), tz.m.LR(0.1)", "rosenbrock"),
    GoldenCase("Wrap-Adam-last", "tz.m.Wrap(torch.optim.Adam, lr=0.05, betas=(0.8, 0.99))", "mixed"),
    GoldenCase("Wrap-SGD-momentum", "tz.m.Wrap(torch.optim.SGD, lr=1, momentum=0.9, nesterov=True), tz.m.LR(1e-3)", "quadratic"),
    GoldenCase("Wrap-Adagrad-noclosure", "tz.m.Wrap(torch.optim.Adagrad, lr=0.1), tz.m.LR(0.5)", "mixed", closure=False),
    GoldenCase("Wrap-RMSprop-chain", "tz.m.Adam(), tz.m.Wrap(torch.optim.RMSprop, 1.0, alpha=0.9), tz.m.LR(1e-3)", "mixed", rtol=1e-5, atol=1e-7),
]
