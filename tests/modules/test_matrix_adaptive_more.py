"""Unit tests for MatrixMomentum (and further matrix_adaptive modules)."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz

A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 0.5]], dtype=torch.float64)
B = torch.tensor([1.0, -1.0, 0.5], dtype=torch.float64)


def _quad(x):
    return 0.5 * x @ A @ x - B @ x


def _run(modules, steps, x0=(1.0, -2.0, 0.5)):
    x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *modules(x) if callable(modules) else modules)

    def closure(backward=True):
        loss = _quad(x)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss

    traj = [x.detach().clone()]
    for _ in range(steps):
        opt.step(closure)
        traj.append(x.detach().clone())
    return traj


def test_matrix_momentum_rule_on_quadratic():
    lr, mu = 0.1, 0.3
    traj = _run([tz.m.MatrixMomentum(lr=lr, mu=mu)], 6)
    I = torch.eye(3, dtype=torch.float64)
    for k in range(len(traj) - 1):
        g = A @ traj[k] - B
        expected = -lr * g
        if k >= 2:
            d = traj[k] - traj[k - 1]
            expected = expected + (I - mu * A) @ d
        torch.testing.assert_close(traj[k + 1] - traj[k], expected)


def test_matrix_momentum_mu_zero_is_unit_heavy_ball_term():
    # with mu = 0 the momentum term is the full previous step (I - 0*H = I)
    traj = _run([tz.m.MatrixMomentum(lr=0.05, mu=0.0)], 4)
    g3 = A @ traj[3] - B
    torch.testing.assert_close(traj[4] - traj[3], -0.05 * g3 + (traj[3] - traj[2]))


def test_matrix_momentum_converges():
    xstar = torch.linalg.solve(A, B)
    traj = _run([tz.m.MatrixMomentum(lr=0.3, mu=0.45)], 200)
    assert torch.linalg.vector_norm(traj[-1] - xstar) < 1e-6


@pytest.mark.parametrize("method", ["batched_autograd", "fd_forward", "fd_central"])
def test_matrix_momentum_hvp_methods_agree(method):
    ref = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.3)], 6)
    other = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.3, hvp_method=method, h=1e-4)], 6)
    torch.testing.assert_close(other[-1], ref[-1], rtol=1e-5, atol=1e-6)


def test_matrix_momentum_mu_and_inner_change_the_result():
    base = _run([tz.m.MatrixMomentum(lr=0.1, mu=0.1)], 5)[-1]
    assert not torch.allclose(base, _run([tz.m.MatrixMomentum(lr=0.1, mu=0.4)], 5)[-1])
    assert not torch.allclose(base, _run([tz.m.MatrixMomentum(lr=0.1, mu=0.1, inner=tz.m.Mul(2.0))], 5)[-1])
    # inner output is what gets scaled by lr: Mul(2) inside with lr equals lr doubled
    torch.testing.assert_close(_run([tz.m.MatrixMomentum(lr=0.05, mu=0.1, inner=tz.m.Mul(2.0))], 5)[-1], base)


def test_matrix_momentum_errors():
    with pytest.raises(ValueError, match="hvp_method"):
        tz.m.MatrixMomentum(lr=0.1, hvp_method="bogus")
    with pytest.raises(NotImplementedError):
        tz.m.MatrixMomentum(lr=0.1, adaptive=True)
    x = torch.zeros(2, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.MatrixMomentum(lr=0.1))
    x.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
