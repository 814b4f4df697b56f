"""SAM, ASAM, MSAM, MSAMMomentum."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.sharpness.sam import sam_perturbation

A = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
X0 = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)


def f(x):
    return (A * x * x).sum()


def grad(x):
    return 2 * A * x


def one_step(modules, x0=X0, split=False):
    xs = [x0[:2].clone().requires_grad_(True), x0[2:].clone().requires_grad_(True)] if split else [x0.clone().requires_grad_(True)]
    opt = tz.Optimizer(xs, *modules)
    n = [0]

    def closure(backward=True):
        n[0] += 1
        loss = f(torch.cat(xs))
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    loss = opt.step(closure)
    return torch.cat([x.detach() for x in xs]), float(loss), n[0]


def test_sam_gradient_at_the_worst_case_point():
    g = grad(X0)
    e = 0.1 * g / g.norm()
    x, loss, n = one_step([tz.m.SAM(rho=0.1), tz.m.LR(0.01)])
    assert torch.allclose(x, X0 - 0.01 * grad(X0 + e))
    assert loss == pytest.approx(float(f(X0)))  # the loss reported is f(x)
    assert n == 2


def test_sam_norm_is_over_all_parameters():
    a, _, _ = one_step([tz.m.SAM(rho=0.1), tz.m.LR(0.01)])
    b, _, _ = one_step([tz.m.SAM(rho=0.1), tz.m.LR(0.01)], split=True)
    assert torch.allclose(a, b)


@pytest.mark.parametrize("p", [1, 1.5, 2, 3, math.inf])
def test_sam_perturbation_maximizes_the_linearization(p):
    g = [torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)]
    e = sam_perturbation(g, [X0], rho=0.3, p=p, eps=0.0, asam=False)[0]
    assert float(torch.linalg.vector_norm(e, ord=p)) == pytest.approx(0.3)
    # no other point of the p-ball has a larger g.e (check random candidates)
    best = float(g[0] @ e)
    q = math.inf if p == 1 else (1.0 if math.isinf(p) else p / (p - 1))
    assert best == pytest.approx(0.3 * float(torch.linalg.vector_norm(g[0], ord=q)))
    torch.manual_seed(0)
    for _ in range(200):
        c = torch.randn(3, dtype=torch.float64)
        c = 0.3 * c / torch.linalg.vector_norm(c, ord=p)
        assert float(g[0] @ c) <= best + 1e-12


def test_asam_scales_by_weight_magnitude():
    g = grad(X0)
    T = X0.abs()
    e = 0.5 * T * T * g / (T * g).norm()
    x, _, _ = one_step([tz.m.ASAM(), tz.m.LR(0.01)])
    assert torch.allclose(x, X0 - 0.01 * grad(X0 + e))
    y, _, _ = one_step([tz.m.SAM(rho=0.5, asam=True), tz.m.LR(0.01)])
    assert torch.allclose(x, y)


def test_sam_closure_for_later_modules_and_plain_closures():
    seen = []

    class Probe(tz.Module):
        def apply(self, objective):
            with torch.enable_grad():
                objective.closure(True)
            seen.append(objective.params[0].grad.clone())
            return objective
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.SAM(rho=0.1), Probe(), tz.m.LR(0.01))

    def plain():
        opt.zero_grad()
        loss = f(x)
        loss.backward()
        return loss
    opt.step(plain)
    g = grad(X0)
    assert torch.allclose(seen[0], grad(X0 + 0.1 * g / g.norm()))
    assert opt.num_evaluations == 4


def test_sam_avoids_a_sharp_minimum():
    # a wide basin at 2 and a deeper but sharp one at -1: from -0.9 gradient descent settles in the
    # sharp minimum, SAM (rho = 0.5, wider than the sharp basin) does not
    fn = lambda x: -torch.exp(-((x - 2) ** 2) / 2).sum() - 1.5 * torch.exp(-((x + 1) ** 2) / 0.05).sum()
    ends = {}
    for name, mods in (("gd", [tz.m.LR(0.01)]), ("sam", [tz.m.SAM(rho=0.5), tz.m.LR(0.01)])):
        x = torch.tensor([-0.9], dtype=torch.float64, requires_grad=True)
        opt = tz.Optimizer([x], *mods)
        for _ in range(400):
            opt.step(lambda backward=True: _bw(fn, x, opt, backward))
        ends[name] = float(x.detach())
    assert abs(ends["gd"] + 1) < 0.01
    assert abs(ends["sam"] + 1) > 0.3


def _bw(fn, x, opt, backward):
    loss = fn(x)
    if backward:
        opt.zero_grad()
        loss.backward()
    return loss


def test_msam_momentum_first_steps_closed_form():
    lr, mu, rho = 0.1, 0.5, 0.2
    x, _, _ = one_step([tz.m.MSAMMomentum(lr, momentum=mu, rho=rho)])
    g = grad(X0)
    assert torch.allclose(x, X0 - lr * g - rho * g / g.norm())


def test_msam_momentum_rho_zero_is_heavy_ball():
    a = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    b = a.detach().clone().requires_grad_(True)
    o1 = tz.Optimizer([a], tz.m.MSAMMomentum(0.01, momentum=0.9, rho=0.0))
    o2 = torch.optim.SGD([b], lr=0.01, momentum=0.9)
    for _ in range(10):
        for o, x in ((o1, a), (o2, b)):
            o.zero_grad()
            (x ** 2 * torch.tensor([1.0, 5.0], dtype=torch.float64)).sum().backward()
            o.step()
    assert torch.allclose(a, b)


@pytest.mark.parametrize("nesterov, lerp", [(False, False), (True, False), (False, True)])
def test_msam_keeps_the_unperturbed_iterate(nesterov, lerp):
    # x~ + rho d/||d|| (d the current perturbation direction) follows the plain momentum method
    mu, rho, lr = 0.8, 0.3, 0.01
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.MSAMMomentum(lr, momentum=mu, rho=rho, nesterov=nesterov, lerp=lerp))
    m = opt.modules[0]
    v = torch.zeros(3, dtype=torch.float64)
    xu = X0.clone()  # unperturbed iterate
    for _ in range(6):
        g = grad(x.detach())
        v = mu * v + ((1 - mu) * g if lerp else g)
        d = g + mu * v if nesterov else v
        xu = xu - lr * d
        opt.zero_grad()
        f(x).backward()
        opt.step()
        direction = m.state[x]["direction"] if nesterov else m.state[x]["momentum_buffer"]
        assert torch.allclose(x.detach() + rho * direction / direction.norm(), xu)


def test_msam_first_step():
    # MSAM hands the raw gradient to its modules (they may have their own momentum); the perturbation
    # uses MSAM's momentum. With modules = [LR] the first step is x - lr g - rho g/||g||
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.MSAM([tz.m.LR(0.01)], momentum=0.9, rho=0.2))
    f(x).backward()
    opt.step()
    g = grad(X0)
    assert torch.allclose(x.detach(), X0 - 0.01 * g - 0.2 * g / g.norm())


def test_msam_with_adam_converges():
    x = X0.clone().requires_grad_(True)
    opt = tz.Optimizer([x], tz.m.MSAM([tz.m.Adam(), tz.m.LR(0.05)], rho=0.05))
    for _ in range(300):
        opt.zero_grad()
        f(x).backward()
        opt.step()
    assert float(f(x.detach())) < 1e-2
