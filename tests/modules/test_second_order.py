"""Second-order methods: Newton (and its options), inverse-free Newton, multipoint methods,
Newton-CG, Nystrom and subspace Newton."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.linalg import Dense

DT = torch.float64


def _quadratic(n: int = 6, cond: float = 50.0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=DT)) @ q.T
    b = torch.randn(n, generator=g, dtype=DT)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def _rosenbrock():
    x = torch.tensor([-1.1, 2.5], dtype=DT, requires_grad=True)
    return x, lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


def _quartic():
    x = torch.tensor([0.7, -0.4, 1.2], dtype=DT, requires_grad=True)
    return x, lambda: (x ** 4).sum() / 4 + 0.1 * x[0] * x[1] * x[2] + torch.exp(0.3 * x[0]) + 0.5 * (x ** 2).sum()


def _run(opt, f, steps: int) -> list[float]:
    losses = []

    def closure(backward: bool = True):
        loss = f()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss

    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
    return losses


def _grad_hess(f, x):
    loss = f()
    g = torch.autograd.grad(loss, x, create_graph=True)[0]
    H = torch.stack([torch.autograd.grad(g[i], x, retain_graph=True)[0] for i in range(x.numel())])
    return g.detach(), H.detach()


# ------------------------------------------------------------------------------------------ Newton
def test_newton_quadratic_one_step():
    x, A, b, f = _quadratic()
    opt = tz.Optimizer([x], tz.m.Newton())
    _run(opt, f, 1)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(A, b))


def test_newton_step_formula_with_damping():
    x, f = _quartic()
    g, H = _grad_hess(f, x)
    expected = x.detach() - torch.linalg.solve(H + 0.5 * torch.eye(3, dtype=DT), g)
    opt = tz.Optimizer([x], tz.m.Newton(damping=0.5))
    _run(opt, f, 1)
    torch.testing.assert_close(x.detach(), expected)


def test_newton_rosenbrock_converges():
    x, f = _rosenbrock()
    opt = tz.Optimizer([x], tz.m.Newton(), tz.m.Backtracking())
    losses = _run(opt, f, 30)
    assert losses[-1] < 1e-10


def test_newton_eigval_fn_descends_on_nonconvex():
    # f = x0^2 - x1^2 + x1^4: at (0.5, 0.1) the Hessian is indefinite; plain Newton moves towards the
    # saddle in x1, |L| makes the model convex and the step decreases f
    x = torch.tensor([0.5, 0.1], dtype=DT, requires_grad=True)
    f = lambda: x[0] ** 2 - x[1] ** 2 + x[1] ** 4
    f0 = float(f().detach())
    plain = x.detach().clone()
    opt = tz.Optimizer([x], tz.m.Newton(eigval_fn=torch.abs))
    _run(opt, f, 1)
    assert float(f()) < f0
    x2 = plain.clone().requires_grad_(True)
    f2 = lambda: x2[0] ** 2 - x2[1] ** 2 + x2[1] ** 4
    _run(tz.Optimizer([x2], tz.m.Newton()), f2, 1)
    assert float(f2()) > float(f())


def test_newton_eigv_tol_and_truncate_drop_directions():
    x, A, b, f = _quadratic(cond=1000.0)
    L, Q = torch.linalg.eigh(A)
    opt = tz.Optimizer([x], tz.m.Newton(truncate=2))
    _run(opt, f, 1)
    Qk, Lk = Q[:, -2:], L[-2:]
    torch.testing.assert_close(x.detach(), Qk @ ((Qk.T @ b) / Lk))
    x2, _, _, f2 = _quadratic(cond=1000.0)
    _run(tz.Optimizer([x2], tz.m.Newton(eigv_tol=0.5)), f2, 1)
    keep = L >= 0.5 * L.max()
    torch.testing.assert_close(x2.detach(), Q[:, keep] @ ((Q[:, keep].T @ b) / L[keep]))


def test_newton_use_lstsq_singular():
    # the Hessian of (x0 + x1)^2 is singular: least squares gives the minimum-norm step
    x = torch.tensor([1.0, 2.0], dtype=DT, requires_grad=True)
    f = lambda: (x[0] + x[1] - 1) ** 2
    _run(tz.Optimizer([x], tz.m.Newton(use_lstsq=True)), f, 1)
    assert torch.isfinite(x).all()
    assert abs(float(x.sum()) - 1) < 1e-10


def test_newton_update_freq_reuses_hessian():
    x, f = _quartic()
    opt = tz.Optimizer([x], tz.m.Newton(update_freq=3), tz.m.LR(0.5))
    _run(opt, f, 3)
    x2, f2 = _quartic()
    opt2 = tz.Optimizer([x2], tz.m.Newton(), tz.m.LR(0.5))
    _run(opt2, f2, 3)
    assert not torch.allclose(x.detach(), x2.detach())
    # the first step is the same
    x3, f3 = _quartic()
    x4, f4 = _quartic()
    _run(tz.Optimizer([x3], tz.m.Newton(update_freq=3), tz.m.LR(0.5)), f3, 1)
    _run(tz.Optimizer([x4], tz.m.Newton(), tz.m.LR(0.5)), f4, 1)
    torch.testing.assert_close(x3.detach(), x4.detach())


def test_newton_precompute_inverse_same_steps():
    x, f = _quartic()
    x2, f2 = _quartic()
    _run(tz.Optimizer([x], tz.m.Newton(precompute_inverse=True, update_freq=2), tz.m.LR(0.5)), f, 4)
    _run(tz.Optimizer([x2], tz.m.Newton(precompute_inverse=False, update_freq=2), tz.m.LR(0.5)), f2, 4)
    torch.testing.assert_close(x.detach(), x2.detach())


@pytest.mark.parametrize("method,tol", [("autograd", 1e-12), ("functional_revrev", 1e-12), ("func", 1e-12),
                                        ("gfd_forward", 1e-3), ("gfd_central", 1e-6), ("fd", 1e-4)])
def test_hessian_methods_agree(method: str, tol: float):
    x, f = _quartic()
    _, H = _grad_hess(f, x)
    obj = tz.core.Objective([x], lambda backward=True: _closure_of(f, x, backward))
    loss, g, H2 = obj.hessian(method, h=1e-4)
    torch.testing.assert_close(H2, H, atol=tol, rtol=tol)
    assert abs(float(loss) - float(f())) < 1e-12


def _closure_of(f, x, backward):
    loss = f()
    if backward:
        x.grad = None
        loss.backward()
    return loss


def test_hessian_method_thoad_is_a_clear_error():
    x, f = _quartic()
    with pytest.raises(ValueError, match="thoad"):
        _run(tz.Optimizer([x], tz.m.Newton(hessian_method="thoad")), f, 1)


def test_newton_inner_preconditions_inner_output():
    x, f = _quartic()
    g, H = _grad_hess(f, x)
    expected = x.detach() - 2 * torch.linalg.solve(H, g)
    _run(tz.Optimizer([x], tz.m.Newton(inner=tz.m.Mul(2.0))), f, 1)
    torch.testing.assert_close(x.detach(), expected)


def test_newton_get_H_is_the_hessian():
    x, f = _quartic()
    _, H = _grad_hess(f, x)
    newton = tz.m.Newton(damping=0.25)
    _run(tz.Optimizer([x], newton, tz.m.LR(0.0)), f, 1)
    op = newton.get_H()
    assert isinstance(op, Dense)
    torch.testing.assert_close(op.to_tensor(), H + 0.25 * torch.eye(3, dtype=DT))


def test_newton_needs_closure():
    x, f = _quartic()
    opt = tz.Optimizer([x], tz.m.Newton())
    f().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


# ------------------------------------------------------------------------------- InverseFreeNewton
def test_inverse_free_newton_first_step_and_convergence():
    x, A, b, f = _quadratic(cond=10.0)
    Y0 = A.T / (torch.linalg.matrix_norm(A, 1) * torch.linalg.matrix_norm(A, float("inf")))
    opt = tz.Optimizer([x], tz.m.InverseFreeNewton())
    _run(opt, f, 1)
    torch.testing.assert_close(x.detach(), Y0 @ b)
    _run(opt, f, 40)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(A, b), atol=1e-8, rtol=1e-8)


def test_inverse_free_newton_y_tends_to_inverse():
    x, A, b, f = _quadratic(cond=10.0)
    m = tz.m.InverseFreeNewton()
    _run(tz.Optimizer([x], m, tz.m.LR(0.0)), f, 25)
    torch.testing.assert_close(m.global_state["Y"], torch.linalg.inv(A), atol=1e-8, rtol=1e-8)


# ------------------------------------------------------------------------------------ multipoint
@pytest.mark.parametrize("name", ["TwoPointNewton", "SixthOrder3P", "SixthOrder3PM2"])
def test_multipoint_quadratic_one_step(name: str):
    x, A, b, f = _quadratic()
    _run(tz.Optimizer([x], getattr(tz.m, name)()), f, 1)
    torch.testing.assert_close(x.detach(), torch.linalg.solve(A, b))


def test_two_point_newton_formula():
    x, f = _quartic()
    x0 = x.detach().clone()
    g, H = _grad_hess(f, x)
    y = x0 - torch.linalg.solve(H, g)
    with torch.no_grad():
        x.copy_(y)
    gy, _ = _grad_hess(f, x)
    expected = y - torch.linalg.solve(H, gy)
    with torch.no_grad():
        x.copy_(x0)
    _run(tz.Optimizer([x], tz.m.TwoPointNewton()), f, 1)
    torch.testing.assert_close(x.detach(), expected)


@pytest.mark.parametrize("name", ["TwoPointNewton", "SixthOrder3P", "SixthOrder3PM2"])
def test_multipoint_converges_fast(name: str):
    x, f = _quartic()
    ref, fr = _quartic()
    _run(tz.Optimizer([ref], tz.m.Newton()), fr, 30)
    _run(tz.Optimizer([x], getattr(tz.m, name)(lstsq=True)), f, 4)
    torch.testing.assert_close(x.detach(), ref.detach(), atol=1e-10, rtol=1e-10)
