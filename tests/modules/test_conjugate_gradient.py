"""Conjugate gradient methods: each beta formula, restarts, options, n-step convergence on
quadratics, closure counts, and the restart strategies wrapped around them."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.core.module import Module

METHODS = ["FletcherReeves", "PolakRibiere", "HestenesStiefel", "DaiYuan", "ConjugateDescent", "LiuStorey",
           "HagerZhang", "DYHS"]


def quad(n=6, cond=100.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64, generator=g))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, dtype=torch.float64, generator=g)
    return A, b


def run(mods, A, b, steps, x0=None, closure=True):
    n = b.numel()
    x = (torch.linspace(-1, 1, n, dtype=torch.float64) if x0 is None else x0.clone()).requires_grad_(True)
    opt = tz.Optimizer([x], *mods)

    def cl(backward=True):
        loss = 0.5 * x @ A @ x - b @ x
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    traj = []
    for _ in range(steps):
        if closure:
            opt.step(cl)
        else:
            opt.zero_grad()
            cl(False).backward()
            opt.step()
        traj.append(x.detach().clone())
    return traj, opt


def beta_formula(name, g, gp, d):
    """The textbook formulas, with the search direction d (d = -update)."""
    y = g - gp
    if name == "FletcherReeves":
        return g @ g / (gp @ gp)
    if name == "PolakRibiere":
        return g @ y / (gp @ gp)
    if name == "HestenesStiefel":
        return g @ y / (d @ y)
    if name == "DaiYuan":
        return g @ g / (d @ y)
    if name == "ConjugateDescent":
        return -(g @ g) / (d @ gp)
    if name == "LiuStorey":
        return -(g @ y) / (d @ gp)
    if name == "HagerZhang":
        return (y - 2 * d * (y @ y) / (d @ y)) @ g / (d @ y)
    if name == "DYHS":
        return max(0.0, min(float(g @ y / (d @ y)), float(g @ g / (d @ y))))
    raise KeyError(name)


def model(name, A, b, x0, lr, steps, clip=False, interval=None):
    """Nonlinear CG with a fixed step size, written out directly."""
    x, gp, d, out = x0.clone(), None, None, []
    for k in range(steps):
        g = A @ x - b
        if gp is None or (interval is not None and k % interval == 0):
            d = -g
        else:
            beta = float(beta_formula(name, g, gp, d))
            if clip:
                beta = max(beta, 0.0)
            d = -g + beta * d
        gp = g
        x = x + lr * d
        out.append(x.clone())
    return out


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("clip", [False, True])
def test_beta_formulas(name, clip):
    A, b = quad(6, cond=30.0)
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64)
    got, _ = run([getattr(tz.m, name)(clip_beta=clip, restart_interval=None), tz.m.LR(0.02)], A, b, 8)
    exp = model(name, A, b, x0, 0.02, 8, clip=clip)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)


def test_polak_ribiere_clips_by_default():
    A, b = quad(6, cond=30.0)
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64)
    got, _ = run([tz.m.PolakRibiere(restart_interval=None), tz.m.LR(0.02)], A, b, 8)
    assert torch.allclose(got[-1], model("PolakRibiere", A, b, x0, 0.02, 8, clip=True)[-1], rtol=1e-10)
    assert not torch.allclose(got[-1], model("PolakRibiere", A, b, x0, 0.02, 8, clip=False)[-1], rtol=1e-6)


@pytest.mark.parametrize("interval", [2, 3, "auto"])
def test_restart_interval(interval):
    A, b = quad(4, cond=30.0)
    x0 = torch.linspace(-1, 1, 4, dtype=torch.float64)
    got, _ = run([tz.m.HestenesStiefel(restart_interval=interval), tz.m.LR(0.02)], A, b, 12)
    k = 5 if interval == "auto" else interval
    exp = model("HestenesStiefel", A, b, x0, 0.02, 12, interval=k)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)


def test_restart_interval_one_is_gradient_descent():
    A, b = quad(4)
    got, _ = run([tz.m.FletcherReeves(restart_interval=1), tz.m.LR(0.01)], A, b, 5)
    exp, _ = run([tz.m.LR(0.01)], A, b, 5)
    assert all(torch.allclose(g, e) for g, e in zip(got, exp))


def test_inner_is_applied_to_the_gradient():
    # u_k = inner(g_k) + beta u_{k-1}; a linear inner scales the whole direction
    A, b = quad(5)
    got, _ = run([tz.m.FletcherReeves(restart_interval=None, inner=tz.m.Mul(0.5)), tz.m.LR(0.02)], A, b, 6)
    exp, _ = run([tz.m.FletcherReeves(restart_interval=None), tz.m.LR(0.01)], A, b, 6)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-12)


def test_bad_restart_interval():
    with pytest.raises(ValueError, match="restart_interval"):
        tz.m.FletcherReeves(restart_interval=0)


class ExactQuadraticStep(Module):
    """Test helper: the exact minimizing step along the update on ``0.5 x'Ax - b'x``."""

    def __init__(self, A):
        super().__init__()
        self.A = A

    def apply(self, objective):
        u = objective.get_updates()[0]
        g = objective.get_grads()[0]
        alpha = (g @ u) / (u @ self.A @ u)
        objective.set_updates([u * alpha])
        return objective


@pytest.mark.parametrize("name", METHODS + ["ProjectedGradientMethod"])
def test_n_step_convergence_exact_line_search(name):
    n = 8
    A, b = quad(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run([getattr(tz.m, name)(), ExactQuadraticStep(A)], A, b, n)
    assert float((traj[-2] - xs).norm() / xs.norm()) > 1e-2  # not before step n
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-8
    # steepest descent with the same line search is far away after n steps
    sd, _ = run([ExactQuadraticStep(A)], A, b, n)
    assert float((sd[-1] - xs).norm() / xs.norm()) > 1e-2


@pytest.mark.parametrize("name", METHODS + ["ProjectedGradientMethod"])
def test_n_step_convergence_strong_wolfe(name):
    n = 8
    A, b = quad(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run([getattr(tz.m, name)(), tz.m.StrongWolfe(c2=0.1)], A, b, n)
    assert float((traj[-2] - xs).norm() / xs.norm()) > 1e-2
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-6


@pytest.mark.parametrize("name", ["FletcherReeves", "PolakRibiere", "HagerZhang", "DYHS"])
def test_rosenbrock(name):
    x = torch.tensor([-1.1, 2.5], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], getattr(tz.m, name)(), tz.m.StrongWolfe(c2=0.1))

    def cl(backward=True):
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(200):
        opt.step(cl)
    assert float(cl(False).detach()) < 1e-6


def test_closure_counts():
    A, b = quad(5)
    _, opt = run([tz.m.PolakRibiere(), tz.m.LR(0.01)], A, b, 7)
    assert opt.num_evaluations == 7
    _, opt = run([tz.m.PolakRibiere(), tz.m.LR(0.01)], A, b, 7, closure=False)
    assert opt.num_evaluations == 7


def test_works_without_closure_and_with_split_params():
    A, b = quad(4)
    a, _ = run([tz.m.DaiYuan(), tz.m.LR(0.02)], A, b, 6)
    c, _ = run([tz.m.DaiYuan(), tz.m.LR(0.02)], A, b, 6, closure=False)
    assert all(torch.equal(x, y) for x, y in zip(a, c))


def test_projected_gradient_get_H_and_restart():
    A, b = quad(4)
    m = tz.m.ProjectedGradientMethod(restart_interval=None)
    _, opt = run([m, tz.m.LR(0.01)], A, b, 5)
    H = m.get_H()
    assert H is not None
    # four updates of a rank-one projection annihilate the 4-dimensional space
    P = opt.modules[0].state[opt.modules[0]._fake_params["__concat"][0]]["H"]
    assert float(P.abs().max()) < 1e-6


# ------------------------------------------------------------------ with restart strategies
def test_cg_with_powell_restart_converges():
    n = 8
    A, b = quad(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run([tz.m.PowellRestart(tz.m.FletcherReeves(restart_interval=None)), tz.m.StrongWolfe(c2=0.1)], A, b, 3 * n)
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-6


def test_restart_every_one_makes_cg_steepest_descent():
    A, b = quad(5)
    got, _ = run([tz.m.RestartEvery(tz.m.FletcherReeves(restart_interval=None), 1), tz.m.LR(0.01)], A, b, 5)
    exp, _ = run([tz.m.LR(0.01)], A, b, 5)
    assert all(torch.allclose(g, e) for g, e in zip(got, exp))


def test_restart_every_none_after_cg_matches_interval():
    # resetting every module after every k-th step == restarting CG at steps k, 2k, ...
    A, b = quad(5)
    got, _ = run([tz.m.HestenesStiefel(restart_interval=None), tz.m.RestartEvery(None, 3), tz.m.LR(0.02)], A, b, 10)
    exp, _ = run([tz.m.HestenesStiefel(restart_interval=3), tz.m.LR(0.02)], A, b, 10)
    assert all(torch.allclose(g, e, rtol=1e-12) for g, e in zip(got, exp))


def test_birgin_martinez_with_cg_on_rosenbrock():
    x = torch.tensor([-1.1, 2.5], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.BirginMartinezRestart(tz.m.HestenesStiefel()), tz.m.StrongWolfe(c2=0.1))

    def cl(backward=True):
        loss = (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(150):
        opt.step(cl)
    assert float(cl(False).detach()) < 1e-6
