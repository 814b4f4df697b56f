"""Homotopies: the loss phi(f) and the chain-rule gradient phi'(f) grad f."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz

A = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
X0 = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
F0 = float((A * X0 * X0).sum())  # 36
G0 = 2 * A * X0


def f(x):
    return (A * x * x).sum()


def _cube(loss):
    return loss ** 3


tz.register_callable(_cube, "tests.modules.test_homotopy._cube")


def step(module, lr=0.01):
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], module, tz.m.LR(lr))

    def closure(backward=True):
        loss = f(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    loss = opt.step(closure)
    return (X0 - x.detach()) / lr, float(loss), opt


@pytest.mark.parametrize("module, phi, dphi", [
    (tz.m.SqrtHomotopy(), math.sqrt, lambda v: 0.5 / math.sqrt(v)),
    (tz.m.SquareHomotopy(), lambda v: v * v, lambda v: 2 * v),
    (tz.m.LogHomotopy(), math.log, lambda v: 1 / v),
    (tz.m.LambdaHomotopy(_cube), lambda v: v ** 3, lambda v: 3 * v * v),
])
def test_gradient_and_loss_follow_the_chain_rule(module, phi, dphi):
    g, loss, opt = step(module)
    assert torch.allclose(g, dphi(F0) * G0)
    assert loss == pytest.approx(phi(F0))
    assert opt.num_evaluations == 1


def test_exp_homotopy():
    x = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.ExpHomotopy(), tz.m.LR(1.0))
    loss = opt.step(lambda backward=True: _closure(x, opt, backward))
    f0 = 0.3 ** 2 + 0.2 ** 2
    assert float(loss) == pytest.approx(math.exp(f0))
    assert torch.allclose(x.detach(), torch.tensor([0.3, -0.2], dtype=torch.float64) * (1 - 2 * math.exp(f0)))


def _closure(x, opt, backward):
    loss = (x * x).sum()
    if backward:
        opt.zero_grad()
        loss.backward()
    return loss


def test_later_modules_see_the_transformed_objective():
    seen = {}

    class Probe(tz.Module):
        def apply(self, objective):
            seen["loss"] = float(objective.closure(False))
            with torch.no_grad():
                objective.params[0].mul_(0.5)
            with torch.enable_grad():
                seen["loss2"] = float(objective.closure(True))
            seen["grad2"] = objective.params[0].grad.clone()
            with torch.no_grad():
                objective.params[0].mul_(2.0)
            return objective
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.SqrtHomotopy(), Probe(), tz.m.LR(0.0))
    opt.step(lambda backward=True: _closure_f(x, opt, backward))
    assert seen["loss"] == pytest.approx(6.0)
    assert seen["loss2"] == pytest.approx(3.0)
    assert torch.allclose(seen["grad2"], 2 * A * X0 * 0.5 / (2 * 3.0))


def _closure_f(x, opt, backward):
    loss = f(x)
    if backward:
        opt.zero_grad()
        loss.backward()
    return loss


def test_homotopies_compose():
    g, loss, _ = step([tz.m.LogHomotopy(), tz.m.ExpHomotopy()])
    assert torch.allclose(g, G0) and loss == pytest.approx(F0)


def test_sqrt_homotopy_with_a_line_search_style_reuse_and_plain_closure():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.SqrtHomotopy(), tz.m.LR(0.5))

    def plain():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss
    for _ in range(30):
        opt.step(plain)
    assert float(f(x.detach())) < 0.05 * F0  # sqrt(f) is a cone: fixed steps end in a small cycle


def test_needs_closure_and_callable():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.LogHomotopy(), tz.m.LR(0.1))
    f(x).backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
    with pytest.raises(TypeError, match="callable"):
        tz.m.LambdaHomotopy(3)
    spec = tz.to_spec(tz.m.LambdaHomotopy(_cube))
    assert type(tz.from_spec(spec)).__name__ == "LambdaHomotopy"
