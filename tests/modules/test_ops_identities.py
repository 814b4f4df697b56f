"""Composition identities the seeds imply: optimizers rebuilt from ops equal the real thing."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

M = tz.m


def problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    A = A @ A.T / 6 + torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x0 = [torch.randn(2, 2, generator=g, dtype=torch.float64), torch.randn(2, generator=g, dtype=torch.float64)]

    def loss_fn(ps):
        x = torch.cat([p.reshape(-1) for p in ps])
        return 0.5 * x @ A @ x - b @ x + 0.1 * (x ** 4).sum()
    return x0, loss_fn


def trajectory(make_opt, steps=25, seed=0):
    x0, loss_fn = problem(seed)
    ps = [x.clone().requires_grad_(True) for x in x0]
    opt = make_opt(ps)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss_fn(ps).backward()
        opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in ps]))
    return torch.stack(out)


def same(a, b, rtol=1e-10, atol=1e-12):
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def adam_from_parts(beta1, beta2, eps):
    return M.DivModules(
        [M.EMA(beta1), M.Debias(beta1=beta1)],
        [M.EMASquared(beta2), M.Sqrt(), M.Debias2(beta2), M.Add(eps)],
    )


@pytest.mark.parametrize("beta1, beta2, eps, lr", [(0.9, 0.999, 1e-8, 0.05), (0.5, 0.9, 1e-3, 0.1)])
def test_adam_from_parts_equals_adam_and_torch_adam(beta1, beta2, eps, lr):
    if "EMA" not in tz.m.implemented():
        pytest.skip("EMA (momentum family) is not implemented yet")
    parts = trajectory(lambda ps: tz.Optimizer(ps, adam_from_parts(beta1, beta2, eps), M.LR(lr)))
    adam = trajectory(lambda ps: tz.Optimizer(ps, M.Adam(beta1, beta2, eps), M.LR(lr)))
    ref = trajectory(lambda ps: torch.optim.Adam(ps, lr=lr, betas=(beta1, beta2), eps=eps))
    same(parts, adam)
    same(parts, ref)


def test_rmsprop_from_parts_equals_torch():
    """``g / (sqrt(EMA(g^2)) + eps)`` is torch.optim.RMSprop; centered with CenteredSqrtEMASquared."""
    for centered, sq in ((False, M.SqrtEMASquared(0.9)), (True, M.CenteredSqrtEMASquared(0.9))):
        parts = trajectory(lambda ps: tz.Optimizer(ps, M.DivModules(M.Grad(), [sq, M.Add(1e-6)]), M.LR(0.01)))
        ref = trajectory(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, centered=centered))
        same(parts, ref)


def test_adagrad_from_parts_equals_torch():
    """``g / (sqrt(sum of g^2) + eps)`` is torch.optim.Adagrad."""
    parts = trajectory(lambda ps: tz.Optimizer(
        ps, M.DivModules(M.Grad(), [M.Pow(2), M.AccumulateSum(), M.Sqrt(), M.Add(1e-10)]), M.LR(0.1)))
    ref = trajectory(lambda ps: torch.optim.Adagrad(ps, lr=0.1, eps=1e-10))
    same(parts, ref)


@pytest.mark.parametrize("tensorwise", [True, False])
@pytest.mark.parametrize("ord", [2, 1, "linf", "mad"])
def test_graft_equals_graft_input_to_output(tensorwise, ord):
    """``Graft(D, M)`` equals ``D`` followed by ``GraftInputToOutput`` with ``M`` applied to the
    gradient, and the one-sided grafts are ``Graft`` with an identity part."""
    kw = dict(tensorwise=tensorwise, ord=ord)
    graft = trajectory(lambda ps: tz.Optimizer(ps, M.Graft(M.Sign(), M.Adam(), **kw), M.LR(0.05)))
    chained = trajectory(lambda ps: tz.Optimizer(ps, M.Sign(), M.GraftInputToOutput([M.Grad(), M.Adam()], **kw), M.LR(0.05)))
    same(graft, chained)
    a = trajectory(lambda ps: tz.Optimizer(ps, M.Graft(M.Identity(), M.Adam(), **kw), M.LR(0.05)))
    b = trajectory(lambda ps: tz.Optimizer(ps, M.GraftInputToOutput(M.Adam(), **kw), M.LR(0.05)))
    same(a, b)
    a = trajectory(lambda ps: tz.Optimizer(ps, M.Graft(M.Sign(), M.Identity(), **kw), M.LR(0.05)))
    b = trajectory(lambda ps: tz.Optimizer(ps, M.GraftOutputToInput(M.Sign(), **kw), M.LR(0.05)))
    same(a, b)


def test_sub_modules_and_lerp_compose_sgd_momentum_like_update():
    """``LerpModules(Grad, AccumulateMean, w)`` equals the explicit mix of the two parts."""
    a = trajectory(lambda ps: tz.Optimizer(ps, M.LerpModules(M.Grad(), M.AccumulateMean(), 0.3), M.LR(0.05)))
    b = trajectory(lambda ps: tz.Optimizer(ps, M.WeightedSum(M.Grad(), M.AccumulateMean(), weights=[0.7, 0.3]), M.LR(0.05)))
    same(a, b)
