"""PSGD preconditioners (torchzero/modules/psgd): the fitted P meets the PSGD criterion, options act."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.psgd.helpers import procrustes_step, spd_norm_lower_bound, whiten_init_scale
from torchzero.modules.psgd.kron import balance, kron_precondition
from torchzero.modules.psgd.lra import lra_precondition

DQS = ["Q0.5EQ1.5", "QEQ", "QEP", "EQ", "QUAD", "QUAD4P"]


def _spd(n: int, cond: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T


def _closure(opt, loss_fn):
    def closure(backward: bool = True):
        loss = loss_fn()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return closure


def _fit(modules, x, loss_fn, steps):
    opt = tz.Optimizer([x], *modules)
    torch.manual_seed(0)
    for _ in range(steps):
        opt.step(_closure(opt, loss_fn))
    return opt


def _newton_error(P: torch.Tensor, H: torch.Tensor) -> float:
    """``||P H - I||_F / sqrt(n)``: zero when ``P = H^{-1}``."""
    n = H.shape[0]
    return float(torch.linalg.matrix_norm(P @ H - torch.eye(n, dtype=H.dtype)) / math.sqrt(n))


def _dense_P(opt, dQ: str) -> torch.Tensor:
    Q = opt.modules[0].global_state["Q"]
    return Q if dQ == "QUAD4P" else Q.T @ Q


def _kron_full_P(st: dict, dQ: str) -> torch.Tensor:
    mats = []
    for q in st["Q"]:
        M = q if q.dim() == 2 else torch.diag(q)
        mats.append(M if dQ == "QUAD4P" else M.T @ M)
    out = mats[0]
    for m in mats[1:]:
        out = torch.kron(out, m)
    return out


# ----------------------------------------------------------------------------- Newton: P -> H^{-1}

@pytest.mark.parametrize("dQ", DQS)
def test_dense_newton_fits_inverse_hessian(dQ):
    H = _spd(5, 30.0, 0)
    x = torch.ones(5, dtype=torch.float64, requires_grad=True)
    loss_fn = lambda: 0.5 * x @ H @ x
    opt = _fit([tz.m.PSGDDenseNewton(dQ=dQ, init_scale=0.3, lr_preconditioner=0.2), tz.m.LR(0.0)], x, loss_fn, 1)
    before = _newton_error(_dense_P(opt, dQ), H)
    torch.manual_seed(1)
    for _ in range(250):
        opt.step(_closure(opt, loss_fn))
    after = _newton_error(_dense_P(opt, dQ), H)
    assert after < 0.4 * before and after < 0.3, (before, after)


@pytest.mark.parametrize("dQ", DQS)
def test_kron_newton_fits_kronecker_hessian(dQ):
    # loss 0.5 vec(X)^T (A kron B) vec(X): the Kronecker-factored P can equal H^{-1} exactly
    A, B = _spd(3, 5.0, 1), _spd(4, 5.0, 2)
    H = torch.kron(A, B)
    x = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
    loss_fn = lambda: 0.5 * x.reshape(-1) @ H @ x.reshape(-1)
    mod = tz.m.PSGDKronNewton(dQ=dQ, max_skew=10.0, init_scale=0.5, lr_preconditioner=0.2)
    opt = _fit([mod, tz.m.LR(0.0)], x, loss_fn, 1)
    assert all(q.dim() == 2 for q in mod.state[x]["Q"])
    before = _newton_error(_kron_full_P(mod.state[x], dQ), H)
    torch.manual_seed(1)
    for _ in range(250):
        opt.step(_closure(opt, loss_fn))
    after = _newton_error(_kron_full_P(mod.state[x], dQ), H)
    assert after < 0.4 * before and after < 0.3, (before, after)


def test_lra_newton_fits_inverse_hessian():
    H = _spd(6, 30.0, 3)
    x = torch.ones(6, dtype=torch.float64, requires_grad=True)
    loss_fn = lambda: 0.5 * x @ H @ x
    mod = tz.m.PSGDLRANewton(rank=5, init_scale=0.3, lr_preconditioner=0.2)
    opt = _fit([mod, tz.m.LR(0.0)], x, loss_fn, 1)

    def P():
        return torch.stack([lra_precondition(mod.global_state["UVd"], e.unsqueeze(1)).squeeze(1)
                            for e in torch.eye(6, dtype=torch.float64)], 1)
    before = _newton_error(P(), H)
    torch.manual_seed(1)
    for _ in range(600):
        opt.step(_closure(opt, loss_fn))
    after = _newton_error(P(), H)
    assert after < 0.3 * before, (before, after)


# ----------------------------------------------------------------------------- whitening: P -> C^{-1/2}

def _whiten_error(P: torch.Tensor, C: torch.Tensor) -> float:
    """``||P C P - I||_F / sqrt(n)``: zero when ``P = C^{-1/2}``."""
    n = C.shape[0]
    return float(torch.linalg.matrix_norm(P @ C @ P - torch.eye(n, dtype=C.dtype)) / math.sqrt(n))


def _noisy_grads(x, C, seed):
    """A loss whose gradient is a fresh sample of N(0, C) at every evaluation."""
    L = torch.linalg.cholesky(C)
    g = torch.Generator().manual_seed(seed)
    return lambda: (x.reshape(-1) * (L @ torch.randn(C.shape[0], generator=g, dtype=C.dtype))).sum()


@pytest.mark.parametrize("dQ", DQS)
def test_kron_whiten_fits_inverse_sqrt_covariance(dQ):
    A, B = _spd(2, 4.0, 4), _spd(3, 4.0, 5)
    C = torch.kron(A, B)
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    mod = tz.m.PSGDKronWhiten(dQ=dQ, max_skew=10.0, init_scale=1.0, lr_preconditioner=0.05, betaL=0.95)
    loss_fn = _noisy_grads(x, C, 0)
    opt = _fit([mod, tz.m.LR(0.0)], x, loss_fn, 1)
    before = _whiten_error(_kron_full_P(mod.state[x], dQ), C)
    for _ in range(700):
        opt.step(_closure(opt, loss_fn))
    after = _whiten_error(_kron_full_P(mod.state[x], dQ), C)
    assert after < 0.5 * before and after < 0.45, (before, after)


def test_lra_whiten_fits_inverse_sqrt_covariance():
    C = _spd(5, 10.0, 6)
    x = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    mod = tz.m.PSGDLRAWhiten(rank=4, init_scale=1.0, lr_preconditioner=0.05, betaL=0.95)
    loss_fn = _noisy_grads(x, C, 1)
    opt = _fit([mod, tz.m.LR(0.0)], x, loss_fn, 1)
    st = mod.state[mod.get_fake_params("__concat", [x.reshape(-1)])[0]]

    def P():
        return torch.stack([lra_precondition(st["UVd"], e.unsqueeze(1)).squeeze(1) for e in torch.eye(5, dtype=torch.float64)], 1)
    before = _whiten_error(P(), C)
    for _ in range(700):
        opt.step(_closure(opt, loss_fn))
    after = _whiten_error(P(), C)
    assert after < 0.5 * before, (before, after)


# ----------------------------------------------------------------------------- convergence

@pytest.mark.parametrize("build, tol", [
    (lambda: [tz.m.PSGDDenseNewton(lr_preconditioner=0.3), tz.m.LR(0.5)], 1e-2),
    (lambda: [tz.m.PSGDKronNewton(max_skew=10.0, lr_preconditioner=0.3), tz.m.LR(0.5)], 3e-2),
    (lambda: [tz.m.PSGDLRANewton(rank=5, lr_preconditioner=0.3), tz.m.LR(0.5)], 0.3),
])
def test_newton_variants_beat_gradient_descent_on_ill_conditioned_quadratic(build, tol):
    H = _spd(6, 1e3, 7)
    b = torch.linspace(-1, 1, 6, dtype=torch.float64)
    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    loss_fn = lambda: 0.5 * x @ H @ x - b @ x
    xstar = torch.linalg.solve(H, b)
    f_star = float(-0.5 * b @ xstar)
    f0 = float(loss_fn()) - f_star
    _fit(build(), x, loss_fn, 150)
    gap = float(loss_fn()) - f_star
    assert gap < tol * f0
    # plain gradient descent at its largest stable rate after as many steps
    y = torch.zeros(6, dtype=torch.float64)
    for _ in range(150):
        y = y - (1 / 1e3) * (H @ y - b)
    assert gap < 0.5 * (float(0.5 * y @ H @ y - b @ y) - f_star)


def test_whiten_variants_decrease_loss():
    for mod in (tz.m.PSGDKronWhiten(), tz.m.PSGDLRAWhiten(rank=3)):
        H = _spd(6, 100.0, 8)
        x = torch.ones(6, dtype=torch.float64, requires_grad=True)
        loss_fn = lambda: 0.5 * x @ H @ x
        f0 = float(loss_fn())
        _fit([mod, tz.m.LR(0.05)], x, loss_fn, 100)
        assert float(loss_fn()) < 0.1 * f0


# ----------------------------------------------------------------------------- options

def _grads_problem():
    xs = [torch.full((3, 4), 2.0, dtype=torch.float64, requires_grad=True),
          torch.full((5,), 0.01, dtype=torch.float64, requires_grad=True)]
    return xs, lambda: sum(((x * torch.arange(1, x.numel() + 1, dtype=x.dtype).view_as(x)) ** 2).sum() for x in xs)


def test_kron_init_scale_is_per_tensor():
    # (the reference gives every tensor the scale of the last one)
    xs, loss_fn = _grads_problem()
    mod = tz.m.PSGDKronWhiten(lr_preconditioner=0.0)
    opt = tz.Optimizer(xs, mod, tz.m.LR(0.0))
    grads = torch.autograd.grad(loss_fn(), xs)
    opt.step(_closure(opt, loss_fn))
    for x, g in zip(xs, grads):
        P = _kron_full_P(mod.state[x], "Q0.5EQ1.5")
        s = whiten_init_scale(g)
        assert torch.allclose(P, s ** 2 * torch.eye(x.numel(), dtype=x.dtype))


def test_max_dim_and_max_skew_choose_diagonal_factors():
    x = torch.ones(3, 4, requires_grad=True)
    for kw, dims in [(dict(), [2, 1]), (dict(max_skew=10.0), [2, 2]), (dict(max_skew=10.0, max_dim=3), [2, 1])]:
        mod = tz.m.PSGDKronWhiten(**kw)
        opt = tz.Optimizer([x], mod, tz.m.LR(0.0))
        opt.step(_closure(opt, lambda: (x ** 2).sum()))
        assert [q.dim() for q in mod.state[x]["Q"]] == dims, kw


def test_update_probability_zero_keeps_preconditioner():
    for build in (lambda: tz.m.PSGDKronWhiten(init_scale=0.7, update_probability=0.0),
                  lambda: tz.m.PSGDKronNewton(init_scale=0.7, update_probability=0.0)):
        x = torch.ones(3, 4, dtype=torch.float64, requires_grad=True)
        mod = build()
        opt = tz.Optimizer([x], mod, tz.m.LR(0.1))
        for _ in range(5):
            opt.step(_closure(opt, lambda: (x ** 4).sum()))
        P = _kron_full_P(mod.state[x], "Q0.5EQ1.5")
        # the Newton variant fits once on the first step (to initialise); whitening never
        if isinstance(mod, tz.m.PSGDKronWhiten):
            assert torch.allclose(P, 0.49 * torch.eye(12, dtype=x.dtype))


def test_grad_clipping():
    xs, loss_fn = _grads_problem()
    opt = tz.Optimizer(xs, tz.m.PSGDKronWhiten(init_scale=10.0, grad_clip_max_amp=0.01), tz.m.LR(1.0))
    before = [x.detach().clone() for x in xs]
    opt.step(_closure(opt, loss_fn))
    step = torch.cat([(b - x.detach()).reshape(-1) for b, x in zip(before, xs)])
    assert math.isclose(float(step.square().mean().sqrt()), 0.01, rel_tol=1e-6)

    for mod in (tz.m.PSGDDenseNewton(init_scale=10.0, grad_clip_max_norm=0.02),
                tz.m.PSGDLRANewton(init_scale=10.0, grad_clip_max_norm=0.02)):
        xs, loss_fn = _grads_problem()
        opt = tz.Optimizer(xs, mod, tz.m.LR(1.0))
        before = [x.detach().clone() for x in xs]
        opt.step(_closure(opt, loss_fn))
        step = torch.cat([(b - x.detach()).reshape(-1) for b, x in zip(before, xs)])
        assert math.isclose(float(step.norm()), 0.02, rel_tol=1e-6)

    xs, loss_fn = _grads_problem()
    opt = tz.Optimizer(xs, tz.m.PSGDLRAWhiten(init_scale=10.0, grad_clip_max_amp=0.01), tz.m.LR(1.0))
    before = [x.detach().clone() for x in xs]
    opt.step(_closure(opt, loss_fn))
    step = torch.cat([(b - x.detach()).reshape(-1) for b, x in zip(before, xs)])
    assert math.isclose(float(step.square().mean().sqrt()), 0.01, rel_tol=1e-6)


def test_lra_concat_params_and_rank():
    xs, loss_fn = _grads_problem()
    mod = tz.m.PSGDLRAWhiten(rank=3, concat_params=False)
    opt = tz.Optimizer(xs, mod, tz.m.LR(0.01))
    opt.step(_closure(opt, loss_fn))
    assert [mod.state[x]["UVd"][0].shape for x in xs] == [(12, 3), (5, 3)]
    mod = tz.m.PSGDLRAWhiten(rank=30)
    opt = tz.Optimizer(xs, mod, tz.m.LR(0.01))
    opt.step(_closure(opt, loss_fn))
    (st,) = [s for s in mod.state.values() if "UVd" in s]
    assert st["UVd"][0].shape == (17, 16)  # rank is at most n - 1


@pytest.mark.parametrize("kw", [dict(betaL=0.5), dict(damping=1e-2), dict(lr_preconditioner=0.5), dict(init_scale=2.0)])
def test_settings_change_trajectory(kw):
    for cls in (tz.m.PSGDKronWhiten, tz.m.PSGDKronNewton, tz.m.PSGDDenseNewton, tz.m.PSGDLRANewton, tz.m.PSGDLRAWhiten):
        trajs = []
        for k in ({}, kw):
            xs, loss_fn = _grads_problem()
            opt = tz.Optimizer(xs, cls(**k), tz.m.LR(0.01))
            torch.manual_seed(0)
            for _ in range(3):
                opt.step(_closure(opt, loss_fn))
            trajs.append(torch.cat([x.detach().reshape(-1) for x in xs]))
        assert not torch.equal(*trajs), (cls.__name__, kw)


def test_inner_is_preconditioned_and_fit_uses_input():
    # with inner, the preconditioner is fitted on the gradient but applied to inner's output
    x = torch.ones(4, dtype=torch.float64, requires_grad=True)
    mod = tz.m.PSGDKronWhiten(init_scale=1.0, lr_preconditioner=0.0, inner=tz.m.Mul(3.0))
    opt = tz.Optimizer([x], mod, tz.m.LR(1.0))
    opt.step(_closure(opt, lambda: (x ** 2).sum()))
    assert torch.allclose(x.detach(), torch.full((4,), -5.0, dtype=torch.float64))


def test_balance_and_procrustes():
    Q = [torch.eye(2) * 100.0, torch.full((3,), 0.01)]
    P = torch.kron(Q[0].T @ Q[0], torch.diag(Q[1] ** 2))
    balance(Q)
    assert torch.allclose(torch.kron(Q[0].T @ Q[0], torch.diag(Q[1] ** 2)), P)
    assert math.isclose(float(Q[0].abs().amax()), float(Q[1].abs().amax()), rel_tol=1e-5)

    torch.manual_seed(0)
    q = torch.eye(3, dtype=torch.float64) + 0.1 * torch.randn(3, 3, dtype=torch.float64)
    P = q.T @ q
    asym = float((q - q.T).norm())
    for _ in range(30):
        procrustes_step(q)
    assert torch.allclose(q.T @ q, P, rtol=1e-2, atol=1e-3)  # (nearly) a rotation: P kept
    assert float((q - q.T).norm()) < 1e-3 * asym

    A = _spd(6, 50.0, 9)
    bound = float(spd_norm_lower_bound(A))
    assert bound <= 50.0 * (1 + 1e-9) and bound > 0.9 * 50.0


def test_kron_precondition_matches_full_matrix():
    torch.manual_seed(0)
    Q = [torch.randn(3, 3, dtype=torch.float64), torch.rand(4, dtype=torch.float64) + 0.5]
    X = torch.randn(3, 4, dtype=torch.float64)
    full = _kron_full_P({"Q": Q}, "Q0.5EQ1.5")
    assert torch.allclose(kron_precondition(Q, X).reshape(-1), full @ X.reshape(-1))


def test_bad_arguments():
    with pytest.raises(ValueError, match="dQ"):
        tz.m.PSGDKronWhiten(dQ="XYZ")
    with pytest.raises(ValueError, match="update_probability"):
        tz.m.PSGDDenseNewton(update_probability=2.0)
    with pytest.raises(ValueError, match="rank"):
        tz.m.PSGDLRAWhiten(rank=0)
    with pytest.raises(ValueError, match="hvp_method"):
        tz.m.PSGDLRANewton(hvp_method="nope")
    with pytest.raises(ValueError, match="betaL"):
        tz.m.PSGDKronNewton(betaL=1.5)


def test_newton_needs_closure():
    x = torch.ones(3, requires_grad=True)
    for mod in (tz.m.PSGDKronNewton(), tz.m.PSGDDenseNewton(), tz.m.PSGDLRANewton()):
        opt = tz.Optimizer([x], mod, tz.m.LR(0.1))
        (x ** 2).sum().backward()
        with pytest.raises(RuntimeError, match="closure"):
            opt.step()
