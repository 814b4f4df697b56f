"""Curvature-based preconditioners: the Hutchinson estimator, AdaHessian, SophiaH, ESGD."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from closures import run_steps
from torchzero.core.objective import Objective
from torchzero.modules.curvature.adahessian import block_average
from torchzero.modules.curvature.hutchinson import hutchinson, random_vectors

DT = torch.float64


def _dense_quadratic(n: int = 5, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    M = torch.randn(n, n, generator=g, dtype=DT)
    A = M @ M.T + n * torch.eye(n, dtype=DT)
    b = torch.randn(n, generator=g, dtype=DT)
    x = torch.zeros(n, dtype=DT, requires_grad=True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def _diag_quadratic():
    h = torch.tensor([1.0, 4.0, 0.5, 10.0], dtype=DT)
    x = torch.tensor([1.0, -2.0, 3.0, 0.5], dtype=DT, requires_grad=True)
    return x, h, (lambda: 0.5 * (h * x * x).sum())


def _closure_for(x, f):
    def closure(backward: bool = True):
        loss = f()
        if backward:
            x.grad = None
            loss.backward()
        return loss
    return closure


# ------------------------------------------------------------------ Hutchinson estimator
@pytest.mark.parametrize("distribution", ["rademacher", "normal", "uniform", "sphere"])
def test_random_vectors_unit_second_moment(distribution):
    like = [torch.zeros(3, 4, dtype=DT), torch.zeros(5, dtype=DT)]
    gen = torch.Generator().manual_seed(0)
    acc = torch.zeros(17, dtype=DT)
    n = 1500
    for _ in range(n):
        z = torch.cat([t.reshape(-1) for t in random_vectors(distribution, like, gen)])
        acc += z * z
    assert torch.allclose(acc / n, torch.ones(17, dtype=DT), atol=0.12)


@pytest.mark.parametrize("hvp_method", ["autograd", "fd_central"])
def test_hutchinson_diagonal_is_unbiased(hvp_method):
    x, A, b, f = _dense_quadratic()
    obj = Objective([x], _closure_for(x, f))
    est = hutchinson(obj, 1500, "rademacher", True, hvp_method, 1e-3, torch.Generator().manual_seed(1))[0]
    off = A - torch.diag(torch.diag(A))
    # the standard error of the mean of z_i (Az)_i is at most sqrt(sum_j off_ij^2 / 1500)
    tol = 4 * (off ** 2).sum(1).sqrt() / math.sqrt(1500)
    assert ((est - torch.diag(A)).abs() <= tol).all()


def test_hutchinson_exact_for_diagonal_hessian():
    x, h, f = _diag_quadratic()
    obj = Objective([x], _closure_for(x, f))
    est = hutchinson(obj, 1, "rademacher", True, "autograd", 1e-3, torch.Generator().manual_seed(3))[0]
    assert torch.allclose(est, h)


# ------------------------------------------------------------------ AdaHessian
def test_block_average_consecutive_blocks():
    d = torch.arange(1.0, 25.0, dtype=DT).reshape(6, 4)
    out = block_average(d, 2)
    assert torch.equal(out[0], (d[0] + d[1]) / 2) and torch.equal(out[1], out[0])
    assert torch.equal(out[4], (d[4] + d[5]) / 2)
    out = block_average(d, 4)  # a block of 4 rows and a last block of 2
    assert torch.allclose(out[:4], d[:4].mean(0).expand(4, 4))
    assert torch.allclose(out[4:], d[4:].mean(0).expand(2, 4))
    assert torch.equal(block_average(torch.arange(5.0), 2), torch.arange(5.0))  # vectors unchanged


def test_block_average_spatial():
    d = torch.arange(1.0, 37.0, dtype=DT).reshape(2, 2, 3, 3)
    out = block_average(d, None)
    assert torch.allclose(out, d.mean((2, 3), keepdim=True).expand_as(d))
    m = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(block_average(m, None), m)


def test_adahessian_is_newton_on_diagonal_quadratic():
    # beta1 = beta2 = 0, rademacher zHz: D = diag(H) exactly and the step is g / |diag H| = x
    x, h, f = _diag_quadratic()
    opt = tz.Optimizer([x], tz.m.AdaHessian(beta1=0.0, beta2=0.0, averaging=False, eps=0.0, seed=0), tz.m.LR(1.0))
    run_steps(opt, f, 1)
    assert torch.allclose(x.detach(), torch.zeros(4, dtype=DT), atol=1e-12)


def test_adahessian_debias_and_power():
    x, h, f = _diag_quadratic()
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], tz.m.AdaHessian(averaging=False, eps=0.0, hessian_power=0.5, seed=0), tz.m.LR(1.0))
    run_steps(opt, f, 1)
    # debiased first step: m_hat = g, sqrt(v_hat) = |h|; power 0.5: g / |h|^0.5
    assert torch.allclose(x0 - x.detach(), h * x0 / h.sqrt())


def test_adahessian_converges_and_seed_reproducible():
    trajs = []
    for _ in range(2):
        x, A, b, f = _dense_quadratic()
        opt = tz.Optimizer([x], tz.m.AdaHessian(seed=5), tz.m.LR(0.1))
        losses = run_steps(opt, f, 60)
        trajs.append(x.detach().clone())
    assert losses[-1] < losses[0] - 0.5 * abs(losses[0])
    assert torch.equal(trajs[0], trajs[1])


def test_adahessian_update_freq_saves_hvps():
    calls = {}
    for freq in (1, 3):
        x, A, b, f = _dense_quadratic()
        counter: list = []
        opt = tz.Optimizer([x], tz.m.AdaHessian(update_freq=freq, seed=0, hvp_method="fd_forward"), tz.m.LR(0.1))
        run_steps(opt, f, 6, counter)
        calls[freq] = len(counter)
    # fd_forward: one extra gradient per estimate; steps without an estimate only need the gradient
    assert calls[1] == 6 * 2 and calls[3] == 6 + 2


def test_adahessian_inner_and_tfms_do_something():
    results = []
    for kw in [{}, dict(inner=tz.m.NAG(0.9)), dict(exp_avg_tfm=tz.m.Sign()), dict(D_exp_avg_sq_tfm=tz.m.Mul(4.0))]:
        x, A, b, f = _dense_quadratic()
        opt = tz.Optimizer([x], tz.m.AdaHessian(beta1=0.0 if "inner" in kw else 0.9, seed=0, **kw), tz.m.LR(0.1))
        run_steps(opt, f, 3)
        results.append(x.detach().clone())
    for r in results[1:]:
        assert not torch.allclose(r, results[0])


def test_hessian_methods_agree():
    outs = []
    for method in ("autograd", "batched_autograd", "fd_central"):
        x, A, b, f = _dense_quadratic()
        opt = tz.Optimizer([x], tz.m.AdaHessian(seed=0, hvp_method=method), tz.m.LR(0.1))
        run_steps(opt, f, 3)
        outs.append(x.detach().clone())
    assert torch.equal(outs[0], outs[1])
    assert torch.allclose(outs[0], outs[2], atol=1e-6)


@pytest.mark.parametrize("cls", ["AdaHessian", "SophiaH", "ESGD"])
def test_bad_arguments(cls):
    m = getattr(tz.m, cls)
    with pytest.raises(ValueError, match="distribution"):
        m(distribution="cauchy")
    with pytest.raises(ValueError, match="hvp_method"):
        m(hvp_method="magic")
    with pytest.raises(ValueError, match="n_samples"):
        m(n_samples=0)


# ------------------------------------------------------------------ SophiaH
def test_sophia_first_step_and_clip():
    x, h, f = _diag_quadratic()
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], tz.m.SophiaH(beta1=0.5, beta2=0.5, debias=True, clip=2.0, precond_scale=0.5, seed=0,
                                         distribution="rademacher"), tz.m.LR(1.0))
    run_steps(opt, f, 1)
    g = h * x0
    expected = (g / (0.5 * h)).clamp(-2.0, 2.0)  # debiased: m = g, D = diag(H)
    assert torch.allclose(x0 - x.detach(), expected)


def test_sophia_eps_floors_negative_curvature():
    x = torch.tensor([0.1, -0.2], dtype=DT, requires_grad=True)
    f = lambda: -0.5 * (x ** 2).sum() + (x ** 4).sum()  # negative curvature near 0
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], tz.m.SophiaH(beta1=0.0, beta2=0.0, eps=1e-2, clip=1e9, distribution="rademacher", seed=0),
                       tz.m.LR(1.0))
    run_steps(opt, f, 1)
    g = -x0 + 4 * x0 ** 3
    assert torch.allclose(x0 - x.detach(), g / 1e-2)


def test_sophia_update_freq_and_convergence():
    x, A, b, f = _dense_quadratic()
    counter: list = []
    opt = tz.Optimizer([x], tz.m.SophiaH(seed=0, hvp_method="fd_central"), tz.m.LR(0.05))
    losses = run_steps(opt, f, 40, counter)
    assert len(counter) == 40 + 2 * 4  # 4 estimates (steps 0, 10, 20, 30), two gradients each
    assert losses[-1] < losses[0]
    assert min(losses) < -0.5 * abs(losses[0])


def test_sophia_tfms_do_something():
    outs = []
    for kw in [{}, dict(exp_avg_tfm=tz.m.Sign()), dict(D_exp_avg_tfm=tz.m.Mul(3.0)), dict(inner=tz.m.Mul(0.5))]:
        x, A, b, f = _dense_quadratic()
        opt = tz.Optimizer([x], tz.m.SophiaH(seed=0, update_freq=1, clip=100.0, **kw), tz.m.LR(0.1))
        run_steps(opt, f, 2)
        outs.append(x.detach().clone())
    for o in outs[1:]:
        assert not torch.allclose(o, outs[0])


# ------------------------------------------------------------------ ESGD
def test_esgd_average_of_squared_products():
    # Hz = h * z with rademacher z: (Hz)^2 = h^2 for every estimate, so sqrt(a / i) = |h| for every i
    x, h, f = _diag_quadratic()
    opt = tz.Optimizer([x], tz.m.ESGD(damping=0.0, update_freq=1, distribution="rademacher", seed=0), tz.m.LR(0.5))
    for _ in range(3):
        x_prev = x.detach().clone()
        run_steps(opt, f, 1)
        assert torch.allclose(x_prev - x.detach(), 0.5 * h * x_prev / h)


def test_esgd_beta_debias():
    x, h, f = _diag_quadratic()
    opt = tz.Optimizer([x], tz.m.ESGD(damping=0.0, update_freq=1, distribution="rademacher", seed=0, beta=0.9),
                       tz.m.LR(0.5))
    for _ in range(3):
        x_prev = x.detach().clone()
        run_steps(opt, f, 1)
        assert torch.allclose(x_prev - x.detach(), 0.5 * x_prev)
    x, h, f = _diag_quadratic()
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], tz.m.ESGD(damping=0.0, distribution="rademacher", seed=0, beta=0.9, beta_debias=False),
                       tz.m.LR(0.5))
    run_steps(opt, f, 1)
    assert torch.allclose(x0 - x.detach(), 0.5 * h * x0 / (math.sqrt(0.1) * h))


def test_esgd_inner_and_convergence():
    x, A, b, f = _dense_quadratic()
    opt = tz.Optimizer([x], tz.m.ESGD(seed=0, inner=tz.m.HeavyBall(0.5), Hz_sq_acc_tfm=tz.m.Mul(1.0)), tz.m.LR(0.3))
    losses = run_steps(opt, f, 60)
    assert losses[-1] < losses[0] - 0.5 * abs(losses[0])


@pytest.mark.parametrize("cls", ["AdaHessian", "SophiaH", "ESGD"])
def test_needs_closure(cls):
    x, A, b, f = _dense_quadratic()
    opt = tz.Optimizer([x], getattr(tz.m, cls)(), tz.m.LR(0.1))
    f().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()
