"""Conjugate gradient methods: each beta formula, restarts, options, n-step convergence on
quadratics, closure counts, and the restart strategies wrapped around them."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from closures import ExactQuadraticStep, rosenbrock_problem, run_quadratic, run_steps, spd_quadratic

METHODS = ["FletcherReeves", "PolakRibiere", "HestenesStiefel", "DaiYuan", "ConjugateDescent", "LiuStorey",
           "HagerZhang", "DYHS"]


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
    A, b = spd_quadratic(6, cond=30.0)
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64)
    got, _ = run_quadratic([getattr(tz.m, name)(clip_beta=clip, restart_interval=None), tz.m.LR(0.02)], A, b, 8)
    exp = model(name, A, b, x0, 0.02, 8, clip=clip)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)


def test_polak_ribiere_clips_by_default():
    A, b = spd_quadratic(6, cond=30.0)
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64)
    got, _ = run_quadratic([tz.m.PolakRibiere(restart_interval=None), tz.m.LR(0.02)], A, b, 8)
    assert torch.allclose(got[-1], model("PolakRibiere", A, b, x0, 0.02, 8, clip=True)[-1], rtol=1e-10)
    assert not torch.allclose(got[-1], model("PolakRibiere", A, b, x0, 0.02, 8, clip=False)[-1], rtol=1e-6)


@pytest.mark.parametrize("interval", [2, 3, "auto"])
def test_restart_interval(interval):
    A, b = spd_quadratic(4, cond=30.0)
    x0 = torch.linspace(-1, 1, 4, dtype=torch.float64)
    got, _ = run_quadratic([tz.m.HestenesStiefel(restart_interval=interval), tz.m.LR(0.02)], A, b, 12)
    k = 5 if interval == "auto" else interval
    exp = model("HestenesStiefel", A, b, x0, 0.02, 12, interval=k)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)


def test_restart_interval_one_is_gradient_descent():
    A, b = spd_quadratic(4)
    got, _ = run_quadratic([tz.m.FletcherReeves(restart_interval=1), tz.m.LR(0.01)], A, b, 5)
    exp, _ = run_quadratic([tz.m.LR(0.01)], A, b, 5)
    assert all(torch.allclose(g, e) for g, e in zip(got, exp))


def test_inner_is_applied_to_the_gradient():
    # u_k = inner(g_k) + beta u_{k-1}; a linear inner scales the whole direction
    A, b = spd_quadratic(5)
    got, _ = run_quadratic([tz.m.FletcherReeves(restart_interval=None, inner=tz.m.Mul(0.5)), tz.m.LR(0.02)], A, b, 6)
    exp, _ = run_quadratic([tz.m.FletcherReeves(restart_interval=None), tz.m.LR(0.01)], A, b, 6)
    for g, e in zip(got, exp):
        assert torch.allclose(g, e, rtol=1e-12)


def test_bad_restart_interval():
    with pytest.raises(ValueError, match="restart_interval"):
        tz.m.FletcherReeves(restart_interval=0)


@pytest.mark.parametrize("name", METHODS + ["ProjectedGradientMethod"])
def test_n_step_convergence_exact_line_search(name):
    n = 8
    A, b = spd_quadratic(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run_quadratic([getattr(tz.m, name)(), ExactQuadraticStep(A)], A, b, n)
    assert float((traj[-2] - xs).norm() / xs.norm()) > 1e-2  # not before step n
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-8
    # steepest descent with the same line search is far away after n steps
    sd, _ = run_quadratic([ExactQuadraticStep(A)], A, b, n)
    assert float((sd[-1] - xs).norm() / xs.norm()) > 1e-2


@pytest.mark.parametrize("name", METHODS + ["ProjectedGradientMethod"])
def test_n_step_convergence_strong_wolfe(name):
    n = 8
    A, b = spd_quadratic(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run_quadratic([getattr(tz.m, name)(), tz.m.StrongWolfe(c2=0.1)], A, b, n)
    assert float((traj[-2] - xs).norm() / xs.norm()) > 1e-2
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-6


@pytest.mark.parametrize("name", ["FletcherReeves", "PolakRibiere", "HagerZhang", "DYHS"])
def test_rosenbrock(name):
    x, f = rosenbrock_problem()
    run_steps(tz.Optimizer([x], getattr(tz.m, name)(), tz.m.StrongWolfe(c2=0.1)), f, 200)
    assert float(f().detach()) < 1e-6


def test_closure_counts():
    A, b = spd_quadratic(5)
    _, opt = run_quadratic([tz.m.PolakRibiere(), tz.m.LR(0.01)], A, b, 7)
    assert opt.num_evaluations == 7
    _, opt = run_quadratic([tz.m.PolakRibiere(), tz.m.LR(0.01)], A, b, 7, closure=False)
    assert opt.num_evaluations == 7


def test_works_without_closure_and_with_split_params():
    A, b = spd_quadratic(4)
    a, _ = run_quadratic([tz.m.DaiYuan(), tz.m.LR(0.02)], A, b, 6)
    c, _ = run_quadratic([tz.m.DaiYuan(), tz.m.LR(0.02)], A, b, 6, closure=False)
    assert all(torch.equal(x, y) for x, y in zip(a, c))


def test_projected_gradient_get_H_and_restart():
    A, b = spd_quadratic(4)
    m = tz.m.ProjectedGradientMethod(restart_interval=None)
    _, opt = run_quadratic([m, tz.m.LR(0.01)], A, b, 5)
    H = m.get_H()
    assert H is not None
    # four updates of a rank-one projection annihilate the 4-dimensional space
    P = opt.modules[0].state[opt.modules[0]._fake_params["__concat"][0]]["H"]
    assert float(P.abs().max()) < 1e-6


# ------------------------------------------------------------------ with restart strategies
def test_cg_with_powell_restart_converges():
    n = 8
    A, b = spd_quadratic(n, cond=100.0)
    xs = torch.linalg.solve(A, b)
    traj, _ = run_quadratic([tz.m.PowellRestart(tz.m.FletcherReeves(restart_interval=None)), tz.m.StrongWolfe(c2=0.1)], A, b, 3 * n)
    assert float((traj[-1] - xs).norm() / xs.norm()) < 1e-6


def test_restart_every_one_makes_cg_steepest_descent():
    A, b = spd_quadratic(5)
    got, _ = run_quadratic([tz.m.RestartEvery(tz.m.FletcherReeves(restart_interval=None), 1), tz.m.LR(0.01)], A, b, 5)
    exp, _ = run_quadratic([tz.m.LR(0.01)], A, b, 5)
    assert all(torch.allclose(g, e) for g, e in zip(got, exp))


def test_restart_every_none_after_cg_matches_interval():
    # resetting every module after every k-th step == restarting CG at steps k, 2k, ...
    A, b = spd_quadratic(5)
    got, _ = run_quadratic([tz.m.HestenesStiefel(restart_interval=None), tz.m.RestartEvery(None, 3), tz.m.LR(0.02)], A, b, 10)
    exp, _ = run_quadratic([tz.m.HestenesStiefel(restart_interval=3), tz.m.LR(0.02)], A, b, 10)
    assert all(torch.allclose(g, e, rtol=1e-12) for g, e in zip(got, exp))


def test_birgin_martinez_with_cg_on_rosenbrock():
    x, f = rosenbrock_problem()
    run_steps(tz.Optimizer([x], tz.m.BirginMartinezRestart(tz.m.HestenesStiefel()), tz.m.StrongWolfe(c2=0.1)), f, 150)
    assert float(f().detach()) < 1e-6
