"""Line searches: the behaviour the seed documents, exact closure-call counts, convergence."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.line_search.line_search import LineSearchBase, termination_condition


def quad_problem(n: int = 6, cond: float = 50.0):
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, dtype=torch.float64)
    return A, b


class Counter:
    """A problem with a closure that records every call."""

    def __init__(self, fn, x0):
        self.x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        self.fn = fn
        self.calls: list[tuple[torch.Tensor, bool, float]] = []
        self.opt = None

    def build(self, *modules):
        self.opt = tz.Optimizer([self.x], *modules)
        return self

    def closure(self, backward: bool = True):
        loss = self.fn(self.x)
        if backward:
            self.opt.zero_grad()
            loss.backward()
        self.calls.append((self.x.detach().clone(), backward, float(loss.detach())))
        return loss

    def step(self):
        self.calls.clear()
        n0 = self.opt.num_evaluations
        x0 = self.x.detach().clone()
        self.opt.step(self.closure)
        assert self.opt.num_evaluations - n0 == len(self.calls)
        return x0, list(self.calls)


def half_sq(x):
    return 0.5 * (x ** 2).sum()


# ---------------------------------------------------------------------------- conditions
def test_termination_conditions():
    # phi(a) = 0.5 (1 - a)^2: phi(0) = 0.5, phi'(0) = -1
    phi = lambda a: 0.5 * (1 - a) ** 2
    dphi = lambda a: -(1 - a)
    tc = lambda cond, a, c=0.1: termination_condition(cond, 0.5, -1.0, phi(a), dphi(a), a, c)
    assert tc("armijo", 1.7) and not tc("armijo", 1.9)
    assert tc("decrease", 1.99) and not tc("decrease", 2.0)
    assert tc("goldstein", 0.5) and not tc("goldstein", 0.1)  # needs a >= 2c
    assert tc("curvature", 0.95, 0.1) and not tc("curvature", 0.5, 0.1)
    assert tc("strong_curvature", 1.05, 0.1) and not tc("strong_curvature", 1.5, 0.1)
    assert tc("wolfe", 0.95, 0.1) and tc("strong_wolfe", 1.05, 0.1) and not tc("strong_wolfe", 0.5, 0.1)


# ---------------------------------------------------------------------------- Backtracking
def test_backtracking_counts_and_halving():
    p = Counter(half_sq, [2.0, -1.0]).build(tz.m.Backtracking(init=4.0))
    x0, calls = p.step()
    # 1 evaluation with gradient, then a = 4 (rejected), 2 (rejected: equal loss), 1 (accepted)
    assert [bw for _, bw, _ in calls] == [True, False, False, False]
    assert torch.allclose(p.x.detach(), torch.zeros(2, dtype=torch.float64))
    assert p.opt.num_evaluations == 4


def test_backtracking_failure_leaves_params_and_adapts():
    p = Counter(half_sq, [2.0, -1.0]).build(tz.m.Backtracking(init=100.0, maxiter=3))
    x0, calls = p.step()
    assert len(calls) == 4
    assert torch.equal(p.x.detach(), x0)  # failed: not moved, bit for bit
    _, calls = p.step()
    # continues from 100 * 0.5^3
    first_trial = calls[1][0]
    a = float((x0 - first_trial)[0] / x0[0])
    assert a == pytest.approx(12.5)

    q = Counter(half_sq, [2.0, -1.0]).build(tz.m.Backtracking(init=100.0, maxiter=3, adaptive=False))
    q.step()
    _, calls = q.step()
    assert float((x0 - calls[1][0])[0] / x0[0]) == pytest.approx(100.0)


@pytest.mark.parametrize("condition", ["curvature", "strong_curvature", "wolfe", "strong_wolfe"])
def test_backtracking_gradient_conditions(condition):
    # the reference crashes on these; ours evaluates the slope at the trial point
    A, b = quad_problem()
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    p = Counter(fn, [1.0] * 6).build(tz.m.Backtracking(init=1.0, c=0.9, condition=condition, maxiter=30))
    n_exact = 0
    for _ in range(5):
        x0, calls = p.step()
        assert all(bw for _, bw, _ in calls)  # every trial computed a gradient
        g0 = A @ x0 - b
        x1 = p.x.detach()
        if torch.equal(x1, x0):
            continue
        d = g0  # direction
        a = float((x0 - x1) @ d / (d @ d))
        g1 = A @ x1 - b
        ok = termination_condition(condition, float(fn(x0)), float(-(g0 @ d)), float(fn(x1)), float(-(g1 @ d)), a, 0.9)
        # otherwise accepted because shrinking further made the loss go up again
        assert ok or float(fn(x1)) < float(fn(x0))
        n_exact += ok
    if condition in ('curvature', 'strong_curvature'):
        assert n_exact > 0


def test_backtracking_stops_when_loss_increases_again():
    # phi(a) = 0.5 (1 - a)^2 from a = 4 with c = 0.99: 4 (worse), 2, 1 (best), 0.5 (worse) -> 1
    p = Counter(half_sq, [1.0]).build(tz.m.Backtracking(init=4.0, c=0.99))
    _, calls = p.step()
    assert len(calls) == 5
    assert float(p.x) == pytest.approx(0.0)


def test_backtracking_not_last_scales_update():
    # Backtracking followed by LR: the step is lr * a * d
    p = Counter(half_sq, [2.0]).build(tz.m.Backtracking(init=1.0), tz.m.LR(0.5))
    p.step()
    assert float(p.x) == pytest.approx(1.0)


# ---------------------------------------------------------------------------- AdaptiveBacktracking
def _trials(p, x0, calls, g0):
    return [float((x0 - c[0]) @ g0 / (g0 @ g0)) for c in calls[1:]]


def test_adaptive_backtracking_target_iters_and_nplus():
    A, b = quad_problem(4, 10.0)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    for target in (0, 1, 2):
        p = Counter(fn, [1.0] * 4).build(tz.m.AdaptiveBacktracking(init=1.0, target_iters=target, maxiter=30))
        x0, calls = p.step()
        g0 = A @ x0 - b
        tr = _trials(p, x0, calls, g0)
        k = len(tr) - 1  # reductions needed
        assert k >= 1
        x1, calls = p.step()
        g1 = A @ x1 - b
        first = _trials(p, x1, calls, g1)[0]
        assert first == pytest.approx(0.5 ** k / 0.5 ** target)
    # first trial accepted -> grows by nplus
    p = Counter(half_sq, [1.0, 1.0]).build(tz.m.AdaptiveBacktracking(init=0.01, nplus=3.0))
    x0, _ = p.step()
    x1, calls = p.step()
    assert float((x1 - calls[1][0])[0] / x1[0]) == pytest.approx(0.03)


def test_adaptive_backtracking_scale_beta():
    p = Counter(half_sq, [1.0, 1.0]).build(tz.m.AdaptiveBacktracking(init=0.01, nplus=3.0, scale_beta=0.5))
    p.step()
    x1, calls = p.step()
    # scale moves halfway from 1 to 3
    assert float((x1 - calls[1][0])[0] / x1[0]) == pytest.approx(0.02)


# ---------------------------------------------------------------------------- AdaptiveBisection
def test_adaptive_bisection():
    p = Counter(half_sq, [1.0]).build(tz.m.AdaptiveBisection(init=0.1))
    x0, calls = p.step()
    # forward-tracks 0.1, 0.2, 0.4, 0.8, 1.6 (worse) -> 0.8
    tr = [round(float(x0 - c[0]), 6) for c in calls[1:]]
    assert tr == [0.1, 0.2, 0.4, 0.8, 1.6]
    assert float(p.x) == pytest.approx(0.2)
    # next step starts at the previous step size; the first forward step is worse -> keep 0.8
    x1, calls = p.step()
    assert len(calls) == 3
    assert float(p.x) == pytest.approx(float(x1) * 0.2)


def test_adaptive_bisection_maxiter_is_exact_and_failure():
    p = Counter(half_sq, [1.0]).build(tz.m.AdaptiveBisection(init=100.0, maxiter=4))
    x0, calls = p.step()
    assert len(calls) == 1 + 4
    assert torch.equal(p.x.detach(), x0)
    _, calls = p.step()
    # adaptive: continues decreasing from the last trial
    assert float(x0 - calls[1][0]) == pytest.approx(100 * 0.5 ** 4)


# ---------------------------------------------------------------------------- StrongWolfe
def _check_strong_wolfe(fn, grad, x0, x1, d, c1, c2):
    a = float((x0 - x1) @ d / (d @ d))
    g0, g1 = -float(grad(x0) @ d), -float(grad(x1) @ d)
    assert float(fn(x1)) <= float(fn(x0)) + c1 * a * g0 + 1e-12
    assert abs(g1) <= c2 * abs(g0) + 1e-12


@pytest.mark.parametrize("interp", ["cubic", "quadratic", "bisection", "polynomial", "polynomial2"])
@pytest.mark.parametrize("a_init", ["fixed", "first-order", "quadratic", "quadratic-clip", "previous"])
def test_strong_wolfe_conditions_hold(interp, a_init):
    def fn(x):
        return (1 - x[0]) ** 2 + 10 * (x[1] - x[0] ** 2) ** 2

    def grad(x):
        x = x.clone().requires_grad_(True)
        return torch.autograd.grad(fn(x), x)[0]
    p = Counter(fn, [-1.2, 1.0]).build(tz.m.StrongWolfe(c2=0.1, a_init=a_init, interpolation=interp, init_value=3.0))
    for _ in range(6):
        x0, calls = p.step()
        x1 = p.x.detach()
        if not torch.equal(x0, x1):
            _check_strong_wolfe(fn, grad, x0, x1, grad(x0), 1e-4, 0.1)
        assert all(bw for _, bw, _ in calls)


def test_strong_wolfe_maxeval_fallback_plus_minus():
    p = Counter(half_sq, [1.0]).build(tz.m.StrongWolfe(init_value=1e-3, maxeval=2, c2=0.01))
    x0, calls = p.step()
    assert len(calls) == 1 + 2
    assert torch.equal(p.x.detach(), x0)  # failed without fallback
    p = Counter(half_sq, [1.0]).build(tz.m.StrongWolfe(init_value=1e-3, maxeval=2, c2=0.01, fallback=True))
    p.step()
    assert 0 < float(p.x) < 1  # best decreasing point
    # ascent direction: without plus_minus nothing happens, with it the search goes the other way
    p = Counter(half_sq, [1.0]).build(tz.m.Mul(-1.0), tz.m.StrongWolfe())
    x0, calls = p.step()
    assert torch.equal(p.x.detach(), x0) and len(calls) == 1
    p = Counter(half_sq, [1.0]).build(tz.m.Mul(-1.0), tz.m.StrongWolfe(plus_minus=True))
    p.step()
    assert abs(float(p.x)) < 1e-8


def test_strong_wolfe_adaptive_halves_init_after_failure():
    p = Counter(half_sq, [1.0]).build(tz.m.StrongWolfe(init_value=1e-3, maxeval=1, c2=0.01))
    x0, _ = p.step()
    _, calls = p.step()
    assert float(x0 - calls[1][0]) == pytest.approx(0.5e-3)


# Issue 8: StrongWolfe runs drift from the reference torchzero 0.4.4. The tests below pin the behaviours
# where ours follows Nocedal & Wright (Algorithms 3.5/3.6) and the reference does not (see the notes in
# tests/golden/cases/line_search.py).
def quartic(x):
    return (x ** 4).sum() + 0.5 * (x ** 2).sum()


def quartic_grad(x):
    return 4 * x ** 3 + x


@pytest.mark.parametrize("init_value, c2", [(0.5, 1e-3), (0.3, 1e-3), (0.1, 1e-3), (2.0, 1e-2)])
def test_strong_wolfe_zoom_keeps_bracket_after_swap(init_value, c2):
    """A zoom trial with sufficient decrease and phi' > 0 becomes the new low end and the old low end becomes
    the high end (a_hi <- a_lo, a_lo <- a_j), which can leave a_lo > a_hi. The bracket still holds strong Wolfe
    points, so the zoom goes on and finds one (the reference gives up there and leaves the parameters)."""
    p = Counter(quartic, [1.0]).build(tz.m.StrongWolfe(c2=c2, init_value=init_value))
    x0, calls = p.step()
    x1 = p.x.detach()
    assert not torch.equal(x0, x1)
    _check_strong_wolfe(quartic, quartic_grad, x0, x1, quartic_grad(x0), 1e-4, c2)
    assert len(calls) <= 8


def test_strong_wolfe_zoom_after_swap_exact_trials():
    """x^4 + x^2/2 from x = 1 (phi'(0) = -25), c2 = 1e-3, a_init = 0.5: a = 0.5 overshoots (zoom on [0, 0.5]),
    the cubic step 0.242 has phi' > 0 (bracket becomes [0.242 (low), 0 (high)]), then 0.158 (phi' < 0) and
    0.2000 satisfies strong Wolfe: 1 + 4 closure calls."""
    p = Counter(quartic, [1.0]).build(tz.m.StrongWolfe(c2=1e-3, init_value=0.5))
    x0, calls = p.step()
    a = [(1 - float(c[0])) / 5 for c in calls]  # x = 1 - a * 5
    assert len(calls) == 5
    assert a[1] == pytest.approx(0.5) and a[2] == pytest.approx(0.24206957827, rel=1e-8)
    assert a[3] == pytest.approx(0.15811928977, rel=1e-8) and a[4] == pytest.approx(0.2, abs=1e-4)
    assert float(p.x.detach()) == pytest.approx(float(calls[-1][0]))


def test_quadratic_interpolation_from_a_nonzero_end():
    """The parabola through (t1, f1) with slope g1 and (t2, f2) has its minimizer at t1 + offset, not at the
    offset (the reference's zoom uses the offset alone; it only agrees while the low end is 0)."""
    from torchzero.modules.line_search import interpolation as interp
    phi = lambda t: (t - 3.0) ** 2 + 1  # minimizer 3
    dphi = lambda t: 2 * (t - 3.0)
    assert interp.quadratic(2.0, phi(2.0), dphi(2.0), 5.0, phi(5.0), 2.0, 5.0) == pytest.approx(3.0)
    assert interp.quadratic(4.0, phi(4.0), dphi(4.0), 0.5, phi(0.5), 0.5, 4.0) == pytest.approx(3.0)
    # end to end on phi(a) = 5 (1 - 10 a)^2: trials a = 0.001, 0.01 (extrapolation clipped to 10 a), then the
    # parabola through the last two points gives the exact minimizer a = 0.1
    p = Counter(lambda x: 5 * (x ** 2).sum(), [1.0]).build(
        tz.m.StrongWolfe(interpolation="quadratic", init_value=0.001, c2=1e-3))
    _, calls = p.step()
    assert [round((1 - float(c[0])) / 10, 12) for c in calls] == [0.0, 0.001, 0.01, 0.1]
    assert abs(float(p.x.detach())) < 1e-12


def test_cubic_interpolation_in_double_precision():
    """Values met on Rosenbrock (issue 8): the ray is nearly linear, so d1^2 - g1 g2 is a cancellation. In double
    precision it is positive (cubic minimizer beyond the interval, step clipped to 10 a); rounding phi and phi'
    to float32 first, as the reference does, makes it negative and gives the midpoint 5.505 instead."""
    from torchzero.modules.line_search import interpolation as interp
    f0, g0 = 6.336926812826561, -0.003605539820076574
    f1, g1 = 6.333347699823128, -0.0035526542624471674
    assert interp.cubic(0.0, f0, g0, 1.0, f1, g1, 1.01, 10.0) == 10.0
    import numpy as np
    r = lambda v: float(np.float32(v))
    assert interp.cubic(0.0, f0, g0, 1.0, r(f1), r(g1), 1.01, 10.0) == pytest.approx(5.505)


def test_strong_wolfe_ascent_direction_costs_no_evaluation_and_adapts():
    """phi'(0) >= 0 without plus_minus: no trial evaluations (the reference spends up to maxzoom + 1 closure calls
    on the ascent ray and then fails too), parameters unchanged, and the failure halves the next initial step."""
    p = Counter(half_sq, [1.0, -2.0]).build(tz.m.Mul(-1.0), tz.m.StrongWolfe(init_value=1.0))
    x0, calls = p.step()
    assert len(calls) == 1 and torch.equal(p.x.detach(), x0)
    assert p.opt.modules[-1].global_state["init_scale"] == 0.5


def test_lbfgs_strong_wolfe_matches_torch_lbfgs():
    """Same iterates and the same number of closure calls as torch.optim.LBFGS(line_search_fn="strong_wolfe")."""
    torch.manual_seed(0)
    n = 20
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=torch.float64))
    A = q @ torch.diag(torch.logspace(0, 3, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, dtype=torch.float64)
    fn = lambda x: 0.5 * x @ A @ x - b @ x + 0.01 * (x ** 4).sum()
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.LBFGS([x], lr=1, max_iter=1, max_eval=25, history_size=10, line_search_fn="strong_wolfe",
                             tolerance_grad=0, tolerance_change=0)
    count = [0]

    def tcl():
        count[0] += 1
        topt.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss
    p = Counter(fn, [0.0] * n).build(tz.m.LBFGS(), tz.m.StrongWolfe())
    for _ in range(25):
        topt.step(tcl)
        p.step()
        assert p.opt.num_evaluations == count[0]
        assert torch.allclose(p.x.detach(), x.detach(), rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------- ScipyMinimizeScalar
def test_scipy_exact_line_search_on_quadratic_and_maxiter():
    A, b = quad_problem()
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    p = Counter(fn, [1.0] * 6).build(tz.m.ScipyMinimizeScalar())
    x0, _ = p.step()
    g = A @ x0 - b
    a_exact = float(g @ g / (g @ A @ g))
    assert float((x0 - p.x.detach()) @ g / (g @ g)) == pytest.approx(a_exact, rel=1e-5)
    p = Counter(fn, [1.0] * 6).build(tz.m.ScipyMinimizeScalar(maxiter=4))
    x0, calls = p.step()
    assert len(calls) == 1 + 4
    assert float(fn(p.x.detach())) == min(c[2] for c in calls)  # best point so far
    p = Counter(fn, [1.0] * 6).build(tz.m.ScipyMinimizeScalar(method="bounded", bounds=(0, 0.01)))
    x0, _ = p.step()
    assert float((x0 - p.x.detach()) @ g / (g @ g)) <= 0.01 + 1e-9


# ---------------------------------------------------------------------------- base class
class GridLineSearch(LineSearchBase):
    """The seed's example: evaluates a grid of step sizes and keeps the best."""

    def __init__(self, start, end, num):
        super().__init__(dict(start=start, end=end, num=num))

    def search(self, update, var):
        s = self.settings[var.params[0]]
        best, best_f = 0.0, self.f_0()
        for a in torch.linspace(s["start"], s["end"], s["num"]).tolist():
            f = self.evaluate_f(a)
            if f < best_f:
                best, best_f = a, f
        return best


def test_custom_line_search_and_base_maxiter():
    p = Counter(half_sq, [1.0]).build(GridLineSearch(0.0, 2.0, 5))
    _, calls = p.step()
    assert len(calls) == 1 + 4  # a = 0 is known and costs nothing
    assert float(p.x) == pytest.approx(0.0)


# ---------------------------------------------------------------------------- convergence
def rosenbrock(x):
    return (1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("mods, steps, tol", [
    (lambda: [tz.m.LBFGS(), tz.m.StrongWolfe()], 60, 1e-10),
    (lambda: [tz.m.LBFGS(), tz.m.Backtracking()], 100, 1e-8),
    (lambda: [tz.m.LBFGS(), tz.m.ScipyMinimizeScalar(maxiter=30)], 80, 1e-8),
])
def test_convergence_rosenbrock(mods, steps, tol):
    p = Counter(rosenbrock, [-1.2, 1.0]).build(*mods())
    for _ in range(steps):
        p.step()
    assert float(rosenbrock(p.x.detach())) < tol


@pytest.mark.parametrize("ls", [lambda: tz.m.StrongWolfe(), lambda: tz.m.Backtracking(), lambda: tz.m.AdaptiveBisection(),
                                lambda: tz.m.AdaptiveBacktracking()])
def test_convergence_ill_conditioned_quadratic_and_least_squares(ls):
    A, b = quad_problem(10, 1e3)
    fn = lambda x: 0.5 * x @ A @ x - b @ x
    xstar = torch.linalg.solve(A, b)
    p = Counter(fn, [0.0] * 10).build(tz.m.LBFGS(), ls())
    for _ in range(100):
        p.step()
    assert float(fn(p.x.detach()) - fn(xstar)) < 1e-6

    torch.manual_seed(1)
    M, y = torch.randn(30, 8, dtype=torch.float64), torch.randn(30, dtype=torch.float64)
    ls_fn = lambda x: ((M @ x - y) ** 2).mean()
    sol = torch.linalg.lstsq(M, y).solution
    p = Counter(ls_fn, [0.0] * 8).build(tz.m.LBFGS(), ls())
    for _ in range(60):
        p.step()
    assert float(ls_fn(p.x.detach()) - ls_fn(sol)) < 1e-9


def test_bad_arguments():
    with pytest.raises(ValueError, match="condition"):
        tz.m.Backtracking(condition="nope")
    with pytest.raises(ValueError, match="beta"):
        tz.m.Backtracking(beta=1.5)
    with pytest.raises(ValueError, match="a_init"):
        tz.m.StrongWolfe(a_init="nope")
    with pytest.raises(ValueError, match="interpolation"):
        tz.m.StrongWolfe(interpolation="nope")
    with pytest.raises(ValueError, match="bounds"):
        tz.m.ScipyMinimizeScalar(method="bounded")
