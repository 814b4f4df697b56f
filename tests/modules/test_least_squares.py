"""Least squares: GaussNewton and SumOfSquares on residual closures."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from torchzero.linalg import Dense

DT = torch.float64


def _res(X):
    x1, x2 = X[0], X[1]
    return torch.stack([(1 - x1), 10 * (x2 - x1 ** 2), 0.5 * x1 * x2])


def _steps(mods, n, res=_res, x0=(-1.1, 2.5)):
    X = torch.tensor(x0, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([X], *mods)
    losses = []
    for _ in range(n):
        losses.append(float(opt.step(lambda backward=True: res(X)).detach()))
    return X.detach(), losses, opt


def _gn_step(X, reg):
    J = torch.autograd.functional.jacobian(_res, X)
    r = _res(X)
    return X - torch.linalg.solve(J.T @ J + reg * torch.eye(2, dtype=DT), J.T @ r)


@pytest.mark.parametrize("reg", [1e-8, 1.0])
@pytest.mark.parametrize("batched", [True, False])
def test_gauss_newton_step_formula(reg, batched):
    # the reference takes exactly these steps (checked against torchzero 0.4.4 while writing this)
    X0 = torch.tensor([-1.1, 2.5], dtype=DT)
    X, _, _ = _steps([tz.m.GaussNewton(reg=reg, batched=batched)], 1)
    torch.testing.assert_close(X, _gn_step(X0, reg))
    X2, _, _ = _steps([tz.m.GaussNewton(reg=reg, batched=batched)], 2)
    torch.testing.assert_close(X2, _gn_step(_gn_step(X0, reg), reg))


def test_gauss_newton_matches_reference_numbers():
    # recorded from torchzero 0.4.4 (GaussNewton() and GaussNewton(reg=1.0), one step)
    X, _, _ = _steps([tz.m.GaussNewton()], 1)
    torch.testing.assert_close(X, torch.tensor([-0.5694, 0.0461], dtype=DT), atol=1e-4, rtol=0)
    X, _, _ = _steps([tz.m.GaussNewton(reg=1.0)], 1)
    torch.testing.assert_close(X, torch.tensor([-1.0270, 1.0612], dtype=DT), atol=1e-4, rtol=0)


def test_gauss_newton_zero_residual_problem_converges():
    # Rosenbrock as residuals (zero residual at the optimum): Gauss-Newton converges quadratically
    res = lambda X: torch.stack([1 - X[0], 10 * (X[1] - X[0] ** 2)])
    X, losses, _ = _steps([tz.m.GaussNewton()], 6, res=res)
    torch.testing.assert_close(X, torch.ones(2, dtype=DT))
    assert losses[0] > 1


def test_gauss_newton_linear_least_squares_one_step():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(8, 3, generator=g, dtype=DT)
    b = torch.randn(8, generator=g, dtype=DT)
    X, _, _ = _steps([tz.m.GaussNewton(reg=0.0)], 1, res=lambda X: A @ X - b, x0=(0.0, 0.0, 0.0))
    torch.testing.assert_close(X, torch.linalg.lstsq(A, b.unsqueeze(-1)).solution.squeeze(-1))


def test_gauss_newton_update_freq_reuses_jacobian():
    X0 = torch.tensor([-1.1, 2.5], dtype=DT)
    J0 = torch.autograd.functional.jacobian(_res, X0)
    X1 = _gn_step(X0, 1e-8)
    # second step: new residuals, old Jacobian
    X2 = X1 - torch.linalg.solve(J0.T @ J0 + 1e-8 * torch.eye(2, dtype=DT), J0.T @ _res(X1))
    X, _, _ = _steps([tz.m.GaussNewton(update_freq=2)], 2)
    torch.testing.assert_close(X, X2)


def test_gauss_newton_loss_and_line_search():
    X, losses, _ = _steps([tz.m.GaussNewton(), tz.m.Backtracking()], 8)
    assert all(b <= a + 1e-12 for a, b in zip(losses, losses[1:]))
    # the loss the optimizer sees is the sum of squares
    torch.testing.assert_close(torch.tensor(losses[0], dtype=DT), _res(torch.tensor([-1.1, 2.5], dtype=DT)).square().sum())


def test_gauss_newton_inner_and_get_H():
    gn = tz.m.GaussNewton(inner=tz.m.Mul(2.0))
    X, _, _ = _steps([gn], 1)
    X0 = torch.tensor([-1.1, 2.5], dtype=DT)
    torch.testing.assert_close(X, X0 - 2 * (X0 - _gn_step(X0, 1e-8)))
    J = torch.autograd.functional.jacobian(_res, X0)
    H = gn.get_H()
    assert isinstance(H, Dense)
    torch.testing.assert_close(H.to_tensor(), 2 * J.T @ J + 2e-8 * torch.eye(2, dtype=DT))


def test_sum_of_squares_gives_gradient_of_sum():
    X0 = torch.tensor([-1.1, 2.5], dtype=DT)
    J = torch.autograd.functional.jacobian(_res, X0)
    X, losses, _ = _steps([tz.m.SumOfSquares(), tz.m.LR(0.01)], 1)
    # matches torchzero 0.4.4: x - lr * 2 J^T r
    torch.testing.assert_close(X, X0 - 0.01 * 2 * J.T @ _res(X0))
    torch.testing.assert_close(X, torch.tensor([-6.6996, -0.0951], dtype=DT), atol=1e-4, rtol=0)
    assert losses[0] == pytest.approx(float(_res(X0).square().sum()))


def test_sum_of_squares_with_newton_and_line_search():
    X, losses, _ = _steps([tz.m.SumOfSquares(), tz.m.LBFGS(), tz.m.Backtracking()], 30)
    assert losses[-1] < losses[0]
    X2, losses2, _ = _steps([tz.m.SumOfSquares(), tz.m.Newton(), tz.m.Backtracking()], 10)
    assert losses2[-1] < losses2[0] * 0.5


def test_needs_closure():
    X = torch.tensor([1.0, 2.0], dtype=DT, requires_grad=True)
    opt = tz.Optimizer([X], tz.m.GaussNewton())
    _res(X).sum().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
