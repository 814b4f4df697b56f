"""Hessian-free second-order methods: NewtonCG and NewtonCGSteihaug (and their Krylov solvers)."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from closures import run_steps
from torchzero.modules.second_order._krylov import cg, minres, steihaug_cg, steihaug_from_path

DT = torch.float64


def _spd(n: int = 6, lo: float = 1.0, hi: float = 50.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = q @ torch.diag(torch.linspace(lo, hi, n, dtype=DT)) @ q.T
    return A, torch.randn(n, generator=g, dtype=DT)


def _quadratic(n: int = 6, lo: float = 1.0, hi: float = 50.0):
    A, b = _spd(n, lo, hi)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def _rosenbrock():
    x = torch.tensor([-1.1, 2.5], dtype=DT, requires_grad=True)
    return x, lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2




# ------------------------------------------------------------------------------- Krylov solvers
def test_cg_solves_spd_system():
    A, b = _spd(8)
    x = cg(lambda v: A @ v, b, tol=1e-12)
    assert torch.allclose(A @ x, b, atol=1e-9)
    xr = cg(lambda v: A @ v, b, tol=1e-12, reg=2.0)
    assert torch.allclose((A + 2 * torch.eye(8, dtype=DT)) @ xr, b, atol=1e-9)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_minres_minimises_residual_over_krylov_space(k):
    A, b = _spd(8, lo=-3.0, hi=10.0)  # indefinite
    x = minres(lambda v: A @ v, b, tol=0.0, maxiter=k, miniter=k)
    K = torch.stack([torch.linalg.matrix_power(A, i) @ b for i in range(k)], 1)
    best = K @ torch.linalg.lstsq(A @ K, b.unsqueeze(1)).solution.squeeze(1)
    assert torch.allclose(x, best, atol=1e-10)


def test_steihaug_stays_in_ball_and_path_reuse_matches_fresh_solve():
    A, b = _spd(6, lo=-2.0, hi=20.0)
    d, r, path = steihaug_cg(lambda v: A @ v, b, radius=1.0)
    assert float(d.norm()) <= 1.0 + 1e-12
    assert torch.allclose(r, b - A @ d, atol=1e-10)
    for radius in (0.5, 0.1, 1e-3):
        fresh, _, _ = steihaug_cg(lambda v: A @ v, b, radius=radius)
        reused = steihaug_from_path(path, radius)
        assert reused is not None
        assert torch.allclose(reused[0], fresh, atol=1e-12)


# ------------------------------------------------------------------------------------- NewtonCG
def test_newton_cg_quadratic_one_step():
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.NewtonCG())
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-6)


def test_newton_cg_matches_newton_on_indefinite_rosenbrock():
    x1, f1 = _rosenbrock()
    x2, f2 = _rosenbrock()
    run_steps(tz.Optimizer([x1], tz.m.NewtonCG(reg=0), tz.m.LR(0.5)), f1, 5)
    run_steps(tz.Optimizer([x2], tz.m.Newton(), tz.m.LR(0.5)), f2, 5)
    assert torch.allclose(x1.detach(), x2.detach(), atol=1e-8)


def test_newton_cg_converges_on_rosenbrock_with_line_search():
    x, f = _rosenbrock()
    losses = run_steps(tz.Optimizer([x], tz.m.NewtonCG(), tz.m.Backtracking()), f, 40)
    assert losses[-1] < 1e-8


def test_newton_cg_reg_and_inner():
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.NewtonCG(reg=3.0, inner=tz.m.Mul(2.0)))
    run_steps(opt, f, 1)
    expected = -torch.linalg.solve(A + 3 * torch.eye(6, dtype=DT), 2 * (-b))
    assert torch.allclose(x.detach(), expected, atol=1e-8)


@pytest.mark.parametrize("method", ["fd_forward", "fd_central", "batched_autograd"])
def test_newton_cg_hvp_methods_agree(method):
    x, A, b, f = _quadratic()
    run_steps(tz.Optimizer([x], tz.m.NewtonCG(hvp_method=method, tol=1e-10)), f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-5)


def test_newton_cg_maxiter_truncates_and_warm_start_continues():
    x, A, b, f = _quadratic(8)
    sol = torch.linalg.solve(A, b)
    run_steps(tz.Optimizer([x], tz.m.NewtonCG(maxiter=1)), f, 1)
    # one CG iteration from 0 is the exact line minimiser along the gradient
    g = -b
    step = (g @ g) / (g @ A @ g) * g
    assert torch.allclose(x.detach(), -step, atol=1e-10)
    assert not torch.allclose(x.detach(), sol, atol=1e-3)

    errs = {}
    for warm in (False, True):
        x, A, b, f = _quadratic(8)
        run_steps(tz.Optimizer([x], tz.m.NewtonCG(maxiter=2, warm_start=warm)), f, 4)
        errs[warm] = float((x.detach() - sol).norm())
    assert errs[True] != errs[False]


def test_newton_cg_miniter_and_tol():
    calls = {}
    for kw in (dict(tol=1e3), dict(tol=1e3, miniter=3), dict(tol=1e3, miniter=0)):
        x, A, b, f = _quadratic(8)
        opt = tz.Optimizer([x], tz.m.NewtonCG(**kw))
        n = [0]
        orig = torch.autograd.grad

        def counting(*a, **k):
            n[0] += 1
            return orig(*a, **k)
        torch.autograd.grad = counting
        try:
            run_steps(opt, f, 1)
        finally:
            torch.autograd.grad = orig
        calls[tuple(sorted(kw.items()))] = n[0]
    # one gradient with a graph, then Hessian-vector products: miniter + 1 of them, none for miniter=0
    assert calls[(("tol", 1e3),)] == 1 + 2
    assert calls[(("miniter", 3), ("tol", 1e3))] == 1 + 4
    assert calls[(("miniter", 0), ("tol", 1e3))] == 1


def test_newton_cg_npc_terminate_returns_gradient_on_negative_curvature():
    x = torch.tensor([0.3, -0.2], dtype=DT, requires_grad=True)
    f = lambda: -(x ** 2).sum() + 0.1 * x[0]  # noqa: E731  (concave)
    opt = tz.Optimizer([x], tz.m.NewtonCG(npc_terminate=True))
    g = torch.tensor([2 * -0.3 + 0.1, 0.4], dtype=DT)
    x0 = x.detach().clone()
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), x0 - g)


def test_newton_cg_minres_solves_quadratic():
    x, A, b, f = _quadratic()
    run_steps(tz.Optimizer([x], tz.m.NewtonCG(solver="minres")), f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-6)


def test_newton_cg_needs_closure_and_validates_arguments():
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.NewtonCG())
    f().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
    with pytest.raises(ValueError, match="hvp_method"):
        tz.m.NewtonCG(hvp_method="nope")
    with pytest.raises(ValueError, match="solver"):
        tz.m.NewtonCG(solver="nope")
    with pytest.raises(ValueError, match="solver"):
        tz.m.NewtonCGSteihaug(solver="nope")


# ----------------------------------------------------------------------------- NewtonCGSteihaug
def test_steihaug_first_step_within_initial_radius():
    x, f = _rosenbrock()
    x0 = x.detach().clone()
    run_steps(tz.Optimizer([x], tz.m.NewtonCGSteihaug(init=0.05)), f, 1)
    assert float((x.detach() - x0).norm()) <= 0.05 + 1e-9


def test_steihaug_converges_on_rosenbrock_and_loss_never_increases():
    x, f = _rosenbrock()
    losses = run_steps(tz.Optimizer([x], tz.m.NewtonCGSteihaug(hvp_method="autograd")), f, 60)
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))
    assert losses[-1] < 1e-10


def test_steihaug_quadratic_large_radius_is_newton_step():
    x, A, b, f = _quadratic()
    run_steps(tz.Optimizer([x], tz.m.NewtonCGSteihaug(init=100.0, hvp_method="autograd")), f, 1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-6)


def test_steihaug_radius_adapts():
    x, f = _rosenbrock()
    opt = tz.Optimizer([x], tz.m.NewtonCGSteihaug(init=1e-3, nplus=2.0))
    run_steps(opt, f, 1)  # a tiny radius: the model is accurate and the step is on the boundary
    assert opt.modules[0].global_state["radius"] == pytest.approx(2e-3)
    x2, f2 = _rosenbrock()
    opt2 = tz.Optimizer([x2], tz.m.NewtonCGSteihaug(init=50.0, nminus=0.5))
    run_steps(opt2, f2, 1)
    assert opt2.modules[0].global_state["radius"] < 50.0


def test_steihaug_max_attempts_zero_gives_zero_update_when_rejected():
    x, f = _rosenbrock()
    x0 = x.detach().clone()
    # a huge radius on the indefinite start: the boundary step overshoots and is rejected
    run_steps(tz.Optimizer([x], tz.m.NewtonCGSteihaug(init=1e3, max_attempts=0)), f, 1)
    assert torch.equal(x.detach(), x0)


@pytest.mark.parametrize("kw", [dict(npc_terminate=True), dict(terminate_on_tr=False), dict(solver="minres"),
                                dict(adapt_tol=True, max_attempts=3), dict(max_history=1)])
def test_steihaug_options_descend(kw):
    x, f = _rosenbrock()
    losses = run_steps(tz.Optimizer([x], tz.m.NewtonCGSteihaug(hvp_method="autograd", **kw)), f, 15)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]
