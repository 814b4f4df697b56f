"""Unit tests of SG2, Spall's second-order stochastic gradient method (quasi_newton/sg2.py)."""
from __future__ import annotations

import inspect
import math

import pytest
import torch

import torchzero as tz
from torchzero.core.evaluation import FunctionEvaluator
from torchzero.linalg import Dense

from closures import backward_closure


def _quadratic(n: int = 6, cond: float = 100.0, dtype=torch.float64):
    q, _ = torch.linalg.qr(torch.sin(torch.arange(n * n, dtype=torch.float64) * 1.37).reshape(n, n))
    A = (q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T).to(dtype)
    b = torch.cos(torch.arange(n, dtype=dtype))
    x = torch.zeros(n, dtype=dtype, requires_grad=True)
    fstar = float(-0.5 * b @ torch.linalg.solve(A, b))
    return x, A, b, (lambda: 0.5 * x @ A @ x - b @ x), fstar


def _rademacher(gen: torch.Generator, like: list[torch.Tensor]) -> torch.Tensor:
    """The perturbation SG2 draws: +-1 entries from ``gen``, parameter by parameter, flattened."""
    return torch.cat([torch.empty_like(p).bernoulli_(0.5, generator=gen).mul_(2).sub_(1).reshape(-1) for p in like])


def _sym_outer(a: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    return (torch.outer(a, d) + torch.outer(d, a)) / 2


def _rosenbrock():
    x = torch.tensor([-1.1, 2.5], dtype=torch.float64, requires_grad=True)
    return x, (lambda: (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def _traj(modules, x, f, steps):
    x0 = x.detach().clone()
    opt = tz.Optimizer([x], *modules)
    cl = backward_closure(opt, f)
    out = []
    for _ in range(steps):
        opt.step(cl)
        out.append(x.detach().clone())
    with torch.no_grad():
        x.copy_(x0)
    return torch.stack(out)


# ---------------------------------------------------------------------------------------------- signature
def test_signature_matches_reference():
    sig = inspect.signature(tz.m.SG2)
    assert [(p.name, p.default) for p in sig.parameters.values()] == [
        ("n_samples", 1), ("n_first_step_samples", 10), ("start_step", 10), ("beta", None), ("damping", 1e-4),
        ("h", 0.01), ("seed", None), ("update_freq", 1), ("inner", None)]


@pytest.mark.parametrize("kwargs", [dict(n_samples=0), dict(n_first_step_samples=0), dict(start_step=-1),
                                    dict(beta=1.5), dict(h=0.0), dict(update_freq=0)])
def test_bad_arguments(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        tz.m.SG2(**kwargs)


def test_needsbackward_closure():
    x, A, b, f, _ = _quadratic()
    opt = tz.Optimizer([x], tz.m.SG2())
    f().backward()
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


# ---------------------------------------------------------------------------------------------- the estimate
@pytest.mark.parametrize("m", [1, 3])
def test_first_estimate_is_the_mean_of_symmetrised_central_differences(m):
    """Spall's 2SG estimate, H_hat = sym(dG Delta^T) with dG = (g(x+h Delta) - g(x-h Delta)) / 2h, averaged over
    n_first_step_samples perturbations (true central differences for every sample), plus damping I."""
    x, f = _rosenbrock()
    h, damping = 0.1, 0.5
    sg2 = tz.m.SG2(n_first_step_samples=m, h=h, damping=damping, seed=3)
    x0 = x.detach().clone()

    def grad_at(v):
        v = v.clone().requires_grad_(True)
        return torch.autograd.grad((1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2, v)[0]
    opt = tz.Optimizer([x], sg2)
    opt.step(backward_closure(opt, f))
    gen = torch.Generator().manual_seed(3)
    expected = torch.zeros(2, 2, dtype=torch.float64)
    for _ in range(m):
        d = _rademacher(gen, [x0])
        expected += _sym_outer((grad_at(x0 + h * d) - grad_at(x0 - h * d)) / (2 * h), d) / m
    expected += damping * torch.eye(2, dtype=torch.float64)
    torch.testing.assert_close(sg2.global_state["H"], expected, rtol=1e-12, atol=1e-10)
    H = sg2.get_H()
    assert isinstance(H, Dense)
    torch.testing.assert_close(H.to_tensor(), expected, rtol=1e-12, atol=1e-10)


def test_running_average_weights_and_beta():
    """beta=None: H_k = k/(k+1) H_{k-1} + H_hat_k/(k+1) from H_1 = H_hat_1; beta: exponential average.
    On a quadratic each H_hat is sym(A Delta Delta^T) + damping I exactly."""
    for beta in (None, 0.6):
        x, A, b, f, _ = _quadratic(n=5)
        sg2 = tz.m.SG2(n_samples=2, n_first_step_samples=1, start_step=100, beta=beta, damping=1e-3, seed=7)
        opt = tz.Optimizer([x], sg2, tz.m.LR(1e-3))
        cl = backward_closure(opt, f)
        gen = torch.Generator().manual_seed(7)
        eye = torch.eye(5, dtype=torch.float64)
        H = None
        for k in range(1, 6):
            opt.step(cl)
            ds = [_rademacher(gen, [x]) for _ in range(1 if k == 1 else 2)]
            H_hat = sum(_sym_outer(A @ d, d) for d in ds) / len(ds) + 1e-3 * eye
            if H is None:
                H = H_hat
            elif beta is None:
                H = k / (k + 1) * H + H_hat / (k + 1)
            else:
                H = beta * H + (1 - beta) * H_hat
            torch.testing.assert_close(sg2.global_state["H"], H, rtol=1e-10, atol=1e-10)


def test_estimate_converges_to_the_hessian():
    """E[sym(A Delta Delta^T)] = A for Rademacher Delta, and the running average converges to it."""
    x, A, b, f, _ = _quadratic(n=4, cond=10.0)
    sg2 = tz.m.SG2(n_samples=4, n_first_step_samples=4, start_step=10**6, damping=0.0, seed=0)
    opt = tz.Optimizer([x], sg2, tz.m.LR(0.0))
    cl = backward_closure(opt, f)
    errs = []
    for k in range(1, 101):
        opt.step(cl)
        if k in (1, 100):
            errs.append(float(torch.linalg.matrix_norm(sg2.global_state["H"] - A) / torch.linalg.matrix_norm(A)))
    assert errs[1] < 0.1
    assert errs[1] < errs[0] / 4


# ---------------------------------------------------------------------------------------------- the step
def test_step_before_and_after_start_step():
    """Refreshes 1..start_step: update = g / |tr(H)|; afterwards update = H^-1 g (Newton-like)."""
    x, A, b, f, _ = _quadratic(n=5)
    sg2 = tz.m.SG2(n_samples=3, n_first_step_samples=5, start_step=2, damping=0.1, seed=1)
    opt = tz.Optimizer([x], sg2)
    cl = backward_closure(opt, f)
    for k in range(1, 5):
        x0 = x.detach().clone()
        g = A @ x0 - b
        opt.step(cl)
        H = sg2.global_state["H"]
        u = x0 - x.detach()
        expected = g / torch.trace(H) if k <= 2 else torch.linalg.solve(H, g)
        torch.testing.assert_close(u, expected, rtol=1e-9, atol=1e-12)


def test_first_steps_descend_when_the_estimate_has_a_negative_trace():
    """Before start_step the update is scaled by 1/|tr(H)| (the reference divides by tr(H) and climbs)."""
    x = torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64, requires_grad=True)
    f = lambda: -(x ** 2).sum() + 0.5 * x[0] * x[1]  # noqa: E731  (concave: every estimate has a negative trace)
    sg2 = tz.m.SG2(n_first_step_samples=1, seed=0)
    opt = tz.Optimizer([x], sg2)
    x0 = x.detach().clone()
    with torch.enable_grad():
        g = torch.autograd.grad(f(), x)[0]
    opt.step(backward_closure(opt, f))
    tr = float(torch.trace(sg2.global_state["H"]))
    assert tr < 0
    torch.testing.assert_close(x0 - x.detach(), g / abs(tr))


def test_singular_estimate_uses_the_minimum_norm_solution():
    """With damping=0 a single estimate has rank 2; the step is the pseudo-inverse solution."""
    x, A, b, f, _ = _quadratic(n=6)
    sg2 = tz.m.SG2(n_first_step_samples=1, start_step=0, damping=0.0, seed=2)
    opt = tz.Optimizer([x], sg2)
    x0 = x.detach().clone()
    opt.step(backward_closure(opt, f))
    H = sg2.global_state["H"]
    assert int(torch.linalg.matrix_rank(H)) == 2
    expected = torch.linalg.lstsq(H, (A @ x0 - b).unsqueeze(1)).solution.squeeze(1)
    torch.testing.assert_close(x0 - x.detach(), expected, rtol=1e-8, atol=1e-10)


def test_inner_output_is_preconditioned():
    x, A, b, f, _ = _quadratic(n=5)
    a = _traj([tz.m.SG2(n_first_step_samples=2, start_step=1, seed=4), tz.m.Mul(0.5)], x, f, 4)
    c = _traj([tz.m.SG2(n_first_step_samples=2, start_step=1, seed=4, inner=tz.m.Mul(0.5))], x, f, 4)
    torch.testing.assert_close(a, c)


# ---------------------------------------------------------------------------------------------- convergence
def test_converges_on_an_ill_conditioned_quadratic():
    """With a line search guarding the early noisy estimates, the Newton-like steps converge far faster than
    gradient descent at its best fixed step size (1 / lambda_max) on a condition number of 1e3."""
    x, A, b, f, fstar = _quadratic(n=8, cond=1e3)
    f0 = float(f().detach()) - fstar
    opt = tz.Optimizer([x], tz.m.SG2(n_samples=4, start_step=5, seed=0), tz.m.Backtracking())
    cl = backward_closure(opt, f)
    for _ in range(80):
        opt.step(cl)
    assert (float(f().detach()) - fstar) / f0 < 1e-8
    with torch.no_grad():
        x.zero_()
    gd = tz.Optimizer([x], tz.m.LR(1e-3))
    cl = backward_closure(gd, f)
    for _ in range(80):
        gd.step(cl)
    assert (float(f().detach()) - fstar) / f0 > 0.1


def test_levenberg_marquardt_on_rosenbrock():
    """The seed's example: SG2 inside a trust region, which reads the estimate through get_H."""
    x, f = _rosenbrock()
    opt = tz.Optimizer([x], tz.m.LevenbergMarquardt(tz.m.SG2(beta=0.75, n_samples=4, seed=0)))
    cl = backward_closure(opt, f)
    for _ in range(100):
        opt.step(cl)
    assert float(f().detach()) < 1e-6


# ---------------------------------------------------------------------------------------------- randomness, evaluations
def test_seed_reproducibility():
    x, f = _rosenbrock()
    mods = lambda seed: [tz.m.SG2(n_samples=2, start_step=2, damping=1.0, seed=seed), tz.m.LR(1e-2)]  # noqa: E731
    a, b, c = _traj(mods(5), x, f, 6), _traj(mods(5), x, f, 6), _traj(mods(6), x, f, 6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # seed=None draws from the global generator
    torch.manual_seed(0)
    d = _traj(mods(None), x, f, 6)
    torch.manual_seed(0)
    e = _traj(mods(None), x, f, 6)
    assert torch.equal(d, e)


def test_closure_calls_per_step():
    x, A, b, f, _ = _quadratic(n=4)
    opt = tz.Optimizer([x], tz.m.SG2(n_samples=3, n_first_step_samples=5, update_freq=2, seed=0), tz.m.LR(1e-2))
    calls: list[bool] = []
    cl = backward_closure(opt, f, calls)
    counts = []
    for _ in range(5):
        calls.clear()
        opt.step(cl)
        counts.append(len(calls))
    # the gradient at x plus two per perturbation on refresh steps
    assert counts == [1 + 2 * 5, 1, 1 + 2 * 3, 1, 1 + 2 * 3]


def test_one_batch_per_refresh_and_same_steps_as_a_plain_closure():
    x, A, b, f, _ = _quadratic(n=4)
    fn = lambda xs: 0.5 * xs[0] @ A @ xs[0] - b @ xs[0]  # noqa: E731
    batches = []

    class Counting(FunctionEvaluator):
        def evaluate_batch(self, points, backward=False):
            batches.append((len(points), backward))
            return super().evaluate_batch(points, backward)
    mods = lambda: [tz.m.SG2(n_samples=2, n_first_step_samples=3, start_step=1, seed=0), tz.m.LR(0.5)]  # noqa: E731
    ref = _traj(mods(), x, f, 3)
    opt = tz.Optimizer([x], *mods())
    got = []
    for _ in range(3):
        opt.step(Counting(fn))
        got.append(x.detach().clone())
    torch.testing.assert_close(torch.stack(got), ref, rtol=1e-12, atol=1e-14)
    perturbed = [n for n, bw in batches if n > 1]
    assert perturbed == [6, 4, 4] and all(bw for _, bw in batches)


# ---------------------------------------------------------------------------------------------- options
def test_every_option_changes_the_trajectory():
    x, f = _rosenbrock()
    base = dict(n_samples=2, n_first_step_samples=3, start_step=2, beta=None, damping=1.0, h=0.01, seed=0, update_freq=1)
    ref = _traj([tz.m.SG2(**base), tz.m.LR(1e-2)], x, f, 5)
    changes = dict(n_samples=3, n_first_step_samples=2, start_step=1, beta=0.5, damping=2.0, h=0.3, seed=1, update_freq=2)
    for k, v in changes.items():
        got = _traj([tz.m.SG2(**{**base, k: v}), tz.m.LR(1e-2)], x, f, 5)
        assert torch.isfinite(got).all(), k
        assert not torch.allclose(got, ref, rtol=1e-9, atol=0), k
    got = _traj([tz.m.SG2(**base, inner=tz.m.Mul(0.3)), tz.m.LR(1e-2)], x, f, 5)
    assert not torch.allclose(got, ref, rtol=1e-9, atol=0)


def test_state_dict_round_trip_with_seed():
    x, f = _rosenbrock()
    x0 = x.detach().clone()
    a = tz.Optimizer([x], tz.m.SG2(n_samples=2, start_step=2, damping=1.0, seed=3), tz.m.LR(1e-2))
    cl = backward_closure(a, f)
    for _ in range(3):
        a.step(cl)
    sd = a.state_dict()
    y = x.detach().clone().requires_grad_(True)
    fy = lambda: (1 - y[0]) ** 2 + 100 * (y[1] - y[0] ** 2) ** 2  # noqa: E731
    b = tz.Optimizer([y], tz.m.SG2(n_samples=2, start_step=2, damping=1.0, seed=3), tz.m.LR(1e-2))
    b.load_state_dict(sd)
    cb = backward_closure(b, fy)
    for _ in range(3):
        a.step(cl)
        b.step(cb)
    assert torch.equal(x.detach(), y.detach())
    assert not torch.equal(x.detach(), x0)


def test_step_returns_the_loss_at_x():
    """Not the loss at a perturbed point (the reference returns f(x + h Delta))."""
    x, A, b, f, _ = _quadratic(n=4)
    with torch.no_grad():
        x.fill_(0.3)
    opt = tz.Optimizer([x], tz.m.SG2(seed=0, h=0.1), tz.m.LR(1e-2))
    expected = float(f().detach())
    assert float(opt.step(backward_closure(opt, f)).detach()) == pytest.approx(expected, rel=1e-14)
