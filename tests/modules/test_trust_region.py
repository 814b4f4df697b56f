"""Trust regions: convergence, radius behaviour, evaluation counts, subproblem solvers, options."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.core.module import Module
from torchzero.linalg import Dense, ScaledIdentity
from torchzero.modules.trust_region._solvers import cubic_step, dogleg_step, steihaug_cg

D = torch.float64


class FixedH(Module):
    """A test Hessian module: always the matrix ``A`` (``get_H``), nothing else."""

    def __init__(self, A: torch.Tensor):
        super().__init__()
        self.A = A

    def apply(self, objective):
        return objective

    def get_H(self, objective=None):
        return Dense(self.A)


def quad(n: int = 4, seed_shift: float = 0.0):
    i = torch.arange(n, dtype=D)
    A = torch.diag(1.0 + i * 3)
    b = torch.cos(i + seed_shift)
    x = torch.sin(i + 1).clone().requires_grad_(True)
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x)


def rosen():
    x = torch.tensor([-1.1, 2.5], dtype=D, requires_grad=True)
    return x, (lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


class Counter:
    def __init__(self, opt, loss_fn):
        self.opt, self.loss_fn, self.n, self.backward = opt, loss_fn, 0, []

    def __call__(self, backward=True):
        self.n += 1
        self.backward.append(backward)
        loss = self.loss_fn()
        if backward:
            self.opt.zero_grad()
            loss.backward()
        return loss


def run(x, loss_fn, *modules, steps=1):
    opt = tz.Optimizer([x], *modules)
    c = Counter(opt, loss_fn)
    for _ in range(steps):
        opt.step(c)
    return opt, c


def radius(opt) -> float:
    return opt.modules[0].global_state["trust_radius"]


# ---------------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("make", [
    lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False)),
    lambda: tz.m.LevenbergMarquardt(tz.m.SR1(inverse=False)),
    lambda: tz.m.LevenbergMarquardt(tz.m.LBFGS()),  # the reference cannot damp an L-BFGS operator
    lambda: tz.m.Dogleg(tz.m.BFGS(inverse=False)),
    lambda: tz.m.TrustCG(tz.m.BFGS(inverse=False)),
    lambda: tz.m.TrustCG(tz.m.SR1(inverse=False)),
    lambda: tz.m.CubicRegularization(tz.m.BFGS(inverse=False)),
], ids=["LM-BFGS", "LM-SR1", "LM-LBFGS", "Dogleg", "TrustCG-BFGS", "TrustCG-SR1", "Cubic"])
def test_converges_on_rosenbrock(make):
    x, f = rosen()
    opt, _ = run(x, f, make(), steps=150)
    assert float(f().detach()) < 1e-8
    assert torch.allclose(x.detach(), torch.ones(2, dtype=D), atol=1e-4)


@pytest.mark.parametrize("cls", [tz.m.LevenbergMarquardt, tz.m.Dogleg, tz.m.TrustCG, tz.m.CubicRegularization])
def test_exact_hessian_quadratic(cls):
    """With the exact Hessian and a large region, the first step is the Newton step (the minimiser)."""
    x, A, b, f = quad()
    run(x, f, cls(FixedH(A), init=1e12), steps=1)
    assert torch.allclose(x.detach(), torch.linalg.solve(A, b), atol=1e-8)


# ---------------------------------------------------------------------------------- radius behaviour
@pytest.mark.parametrize("cls", [tz.m.LevenbergMarquardt, tz.m.Dogleg, tz.m.TrustCG, tz.m.CubicRegularization])
def test_radius_shrinks_on_rejected_steps(cls):
    """B underestimates the curvature 100x: the model's steps overshoot and are rejected until the
    radius is small enough; every attempt is exactly one loss evaluation without gradient."""
    x, A, b, f = quad()
    opt, c = run(x, f, cls(FixedH(A * 0.01), init=10.0), steps=1)
    r = radius(opt)
    assert r < 10.0
    attempts = c.n - 1
    assert attempts >= 2
    assert c.backward == [True] + [False] * attempts
    assert float(f().detach()) < float(quad()[3]().detach())


@pytest.mark.parametrize("cls", [tz.m.LevenbergMarquardt, tz.m.Dogleg, tz.m.TrustCG, tz.m.CubicRegularization])
def test_radius_grows_on_good_steps(cls):
    """The model is exact on a quadratic: rho = 1 > rho_good, the radius grows by nplus each step."""
    x, A, b, f = quad()
    kw = dict(rho_good=0.5, init=1e-3, nplus=3.0)
    opt, c = run(x, f, cls(FixedH(A), **kw), steps=3)
    assert radius(opt) == pytest.approx(1e-3 * 27, rel=1e-6)
    assert c.n == 6  # one gradient and one accepted trial per step


def test_max_attempts_zero_update_and_exact_count():
    x, A, b, f = quad()
    x0 = x.detach().clone()
    opt, c = run(x, f, tz.m.LevenbergMarquardt(FixedH(A * 1e-6), init=1e6, max_attempts=3), steps=1)
    assert c.n == 1 + 3
    assert torch.equal(x.detach(), x0)  # all attempts rejected: zero update
    assert radius(opt) == pytest.approx(1e6 * 0.25 ** 3)


def test_eta_rejects_mediocre_steps():
    """A step with 0 < rho < eta is rejected (and costs another attempt)."""
    x, A, b, f = quad()
    _, c0 = run(x, f, tz.m.LevenbergMarquardt(FixedH(A * 0.7), init=1e6, rho_bad=-1.0), steps=1)
    x, A, b, f = quad()
    _, c1 = run(x, f, tz.m.LevenbergMarquardt(FixedH(A * 0.7), init=1e6, rho_bad=-1.0, eta=0.9, max_attempts=2), steps=1)
    assert c0.n == 2 and c1.n == 3


def test_boundary_tol_blocks_growth_for_interior_steps():
    x, A, b, f = quad()
    opt, _ = run(x, f, tz.m.TrustCG(FixedH(A), init=100.0, rho_good=0.5), steps=1)
    assert radius(opt) == 100.0  # Newton step well inside: no growth
    x, A, b, f = quad()
    opt, _ = run(x, f, tz.m.TrustCG(FixedH(A), init=100.0, rho_good=0.5, boundary_tol=None, nplus=1e6), steps=1)
    assert radius(opt) > 100.0  # nplus * ||d|| without the boundary test


def test_fixed_radius_strategy_one_evaluation_per_step():
    x, A, b, f = quad()
    opt, c = run(x, f, tz.m.Dogleg(FixedH(A), radius_strategy="fixed", init=0.1), steps=3)
    assert c.n == 3 and radius(opt) == 0.1


def test_custom_radius_strategy():
    calls = []

    def strategy(**kw):
        calls.append(kw["trust_radius"])
        return kw["trust_radius"] * 0.5, True

    x, A, b, f = quad()
    opt, c = run(x, f, tz.m.TrustCG(FixedH(A), radius_strategy=strategy, init=2.0), steps=2)
    assert calls == [2.0, 1.0] and radius(opt) == 0.5 and c.n == 2


def test_nminus_and_nplus():
    x, A, b, f = quad()
    opt, _ = run(x, f, tz.m.LevenbergMarquardt(FixedH(A * 1e-6), init=1.0, nminus=0.5, max_attempts=2), steps=1)
    assert radius(opt) == 0.25


# ---------------------------------------------------------------------------------- options
def _traj(make, steps=5, problem="quad", n=4):
    if problem == "quad":
        x, A, b, f = quad(n)
    else:
        x, f = rosen()
    run(x, f, make(), steps=steps)
    return x.detach().clone()


def test_update_freq():
    a = _traj(lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False)), problem="rosen")
    b = _traj(lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False), update_freq=3), problem="rosen")
    assert not torch.allclose(a, b)


def test_inner_replaces_gradient():
    a = _traj(lambda: tz.m.TrustCG(tz.m.BFGS(inverse=False)), problem="rosen")
    b = _traj(lambda: tz.m.TrustCG(tz.m.BFGS(inverse=False), inner=tz.m.Mul(0.5)), problem="rosen")
    assert not torch.allclose(a, b)


def test_lm_y_and_adaptive():
    base = _traj(lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False)), problem="rosen")
    y = _traj(lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False), y=1.0), problem="rosen")
    ad = _traj(lambda: tz.m.LevenbergMarquardt(tz.m.BFGS(inverse=False), adaptive=True), problem="rosen")
    assert not torch.allclose(base, y) and not torch.allclose(base, ad)


def test_lm_damping_formula():
    """d = (B + lambda D)^-1 g with lambda = 1/r (times sqrt(||g||) when adaptive), D = (1-y) I + y diag(B)."""
    x, A, b, f = quad()
    g = (A @ x - b).detach()
    x0 = x.detach().clone()
    r, yv = 0.7, 0.4
    run(x, f, tz.m.LevenbergMarquardt(FixedH(A), init=r, y=yv, adaptive=True, eta=-math.inf, rho_bad=-math.inf), steps=1)
    lam = math.sqrt(float(g.norm())) / r
    Dm = torch.diag((1 - yv) + yv * A.diagonal())
    assert torch.allclose(x0 - x.detach(), torch.linalg.solve(A + lam * Dm, g), atol=1e-12)


def test_lm_inverse_hessian_needs_fallback():
    x, f = rosen()
    with pytest.raises(RuntimeError, match="inverse"):
        run(x, f, tz.m.LevenbergMarquardt(tz.m.BFGS()))
    x, f = rosen()
    run(x, f, tz.m.LevenbergMarquardt(tz.m.BFGS(), fallback=True), steps=3)
    with pytest.raises(RuntimeError, match="inverse"):
        x, f = rosen()
        run(x, f, tz.m.CubicRegularization(tz.m.BFGS()))


def test_cubic_check_decrease_saves_evaluations():
    x, f = rosen()
    _, c0 = run(x, f, tz.m.CubicRegularization(tz.m.BFGS(inverse=False)), steps=10)
    a = x.detach().clone()
    x, f = rosen()
    _, c1 = run(x, f, tz.m.CubicRegularization(tz.m.BFGS(inverse=False), check_decrease=True), steps=10)
    assert not torch.allclose(a, x.detach())
    # the unregularized step is evaluated at most once per step, never again by the radius rule
    assert c1.n <= c0.n + 10


def test_trust_cg_options():
    x, A, b, f = quad(8)
    base = _traj(lambda: tz.m.TrustCG(FixedH(A), init=0.5), steps=2, n=8)
    for kw in [dict(reg=5.0), dict(maxiter=1), dict(cg_tol=0.5, miniter=1)]:
        other = _traj(lambda: tz.m.TrustCG(FixedH(A), init=0.5, **kw), steps=2, n=8)
        assert not torch.allclose(base, other), kw


def test_errors():
    with pytest.raises(ValueError, match="radius_strategy"):
        tz.m.TrustCG(tz.m.BFGS(inverse=False), radius_strategy="nope")
    with pytest.raises(ValueError, match="max_attempts"):
        tz.m.Dogleg(tz.m.BFGS(inverse=False), max_attempts=0)
    x, f = rosen()
    opt = tz.Optimizer([x], tz.m.Dogleg(tz.m.BFGS(inverse=False)))
    f().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_get_H_is_the_hess_modules():
    x, A, b, f = quad()
    opt, _ = run(x, f, tz.m.TrustCG(FixedH(A)))
    assert torch.equal(opt.modules[0].get_H().to_tensor(), A)


# ---------------------------------------------------------------------------------- subproblem solvers
def test_dogleg_step_cases():
    B = torch.diag(torch.tensor([1.0, 10.0], dtype=D))
    g = torch.tensor([1.0, 1.0], dtype=D)
    H = Dense(B)
    d_n = torch.linalg.solve(B, g)
    assert torch.allclose(dogleg_step(H, g, 10.0), d_n)  # Newton point inside: the reference extrapolates past it
    d_c = (g @ g) / (g @ B @ g) * g
    small = 0.5 * float(d_c.norm())
    assert torch.allclose(dogleg_step(H, g, small), g / g.norm() * small)
    mid = 0.5 * (float(d_c.norm()) + float(d_n.norm()))
    d = dogleg_step(H, g, mid)
    assert float(d.norm()) == pytest.approx(mid)
    # on the segment between the Cauchy and Newton points
    t = float((d - d_c) @ (d_n - d_c) / ((d_n - d_c) @ (d_n - d_c)))
    assert 0 < t < 1 and torch.allclose(d, d_c + t * (d_n - d_c))


def test_steihaug_cg_negative_curvature_goes_to_boundary():
    B = torch.diag(torch.tensor([2.0, -1.0], dtype=D))
    g = torch.tensor([1.0, 1.0], dtype=D)
    d = steihaug_cg(Dense(B), g, 3.0)
    assert float(d.norm()) == pytest.approx(3.0)
    assert float(g @ d - 0.5 * d @ B @ d) > 0
    # positive definite and inside: the solution of B d = g
    B2 = torch.diag(torch.tensor([2.0, 4.0], dtype=D))
    assert torch.allclose(steihaug_cg(Dense(B2), g, 10.0), torch.linalg.solve(B2, g))


def test_trust_cg_prefer_exact_on_scaled_identity():
    g = torch.tensor([3.0, 4.0], dtype=D)
    assert torch.allclose(tz.m.TrustCG(FixedH(torch.eye(2, dtype=D))).trust_solve(
        0.0, g, ScaledIdentity(2.0), 1.0, [], None, {"reg": 0.0, "prefer_exact": True}), g / 5)


def test_cubic_step_is_the_global_minimiser():
    """Indefinite B: the step solves (B + sigma ||d|| I) d = g with the matrix PSD, and no sampled point
    has a lower model value (the reference returns a stationary point that is not the minimiser)."""
    B = torch.tensor([[454.0, 440.0], [440.0, 200.0]], dtype=D)
    g = torch.tensor([563.4, 258.0], dtype=D)
    sigma = 1.0
    d = cubic_step(Dense(B), g, sigma)
    r = float(d.norm())
    assert torch.allclose((B + sigma * r * torch.eye(2, dtype=D)) @ d, g, rtol=1e-8, atol=1e-6)
    assert float(torch.linalg.eigvalsh(B + sigma * r * torch.eye(2, dtype=D)).min()) >= -1e-8

    def m(v):
        return float(-g @ v + 0.5 * v @ B @ v + sigma / 3 * v.norm() ** 3)
    gen = torch.Generator().manual_seed(0)
    pts = torch.randn(2000, 2, generator=gen, dtype=D) * 100
    assert all(m(p) >= m(d) - 1e-6 for p in pts)


def test_cubic_step_hard_case():
    """g orthogonal to the eigenvector of the negative eigenvalue: the minimiser still moves along it."""
    B = torch.diag(torch.tensor([-2.0, 1.0], dtype=D))
    g = torch.tensor([0.0, 1.0], dtype=D)
    d = cubic_step(Dense(B), g, 1.0)
    assert torch.isfinite(d).all()
    r = float(d.norm())
    assert r == pytest.approx(2.0)  # sigma ||d|| = -L_min
    assert torch.allclose((B + r * torch.eye(2, dtype=D)) @ d, g, atol=1e-10)
    assert abs(float(d[0])) > 1.0
