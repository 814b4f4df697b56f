"""Full-matrix and diagonal quasi-Newton methods (issue 8): secant conditions, convergence, get_H, options."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from closures import quadratic_problem, rosenbrock_problem, run_steps
from torchzero.linalg import BlockDiagonal, Dense, DenseInverse, Diagonal

DT = torch.float64


def _rand_problem(n: int = 6, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, n, generator=g, dtype=DT)
    H = A @ A.T / n + torch.eye(n, dtype=DT)
    s = torch.randn(n, generator=g, dtype=DT)
    y = s + 0.3 * torch.randn(n, generator=g, dtype=DT)
    p_prev = torch.randn(n, generator=g, dtype=DT)
    g_prev = torch.randn(n, generator=g, dtype=DT)
    return H, s, y, p_prev + s, g_prev + y, p_prev, g_prev


# methods whose inverse update satisfies H+ y = s exactly
SECANT_INVERSE = ["BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad", "Greenstadt1", "Greenstadt2", "McCormick",
                  "Pearson", "ICUM", "ThomasOptimalMethod", "Horisho", "FletcherVMM"]
# methods with a direct form satisfying B+ s = y
SECANT_DIRECT = ["BFGS", "DFP", "SR1", "BroydenGood", "BroydenBad", "PSB"]


@pytest.mark.parametrize("name", SECANT_INVERSE)
def test_inverse_secant_condition(name: str) -> None:
    m = getattr(tz.m, name)()
    H, s, y, p, g, p_prev, g_prev = _rand_problem()
    state: dict = {}
    for k in range(3):  # a few consecutive updates (Thomas keeps extra state)
        H = m.update_H(H, s, y, p, g, p_prev, g_prev, state, dict(m.defaults))
        torch.testing.assert_close(H @ y, s, rtol=1e-9, atol=1e-9)
        _, s, y, p, g, p_prev, g_prev = _rand_problem(seed=k + 1)


@pytest.mark.parametrize("name", SECANT_DIRECT)
def test_direct_secant_condition(name: str) -> None:
    m = getattr(tz.m, name)(inverse=False)
    B, s, y, p, g, p_prev, g_prev = _rand_problem()
    B = m.update_B(B, s, y, p, g, p_prev, g_prev, {}, dict(m.defaults))
    torch.testing.assert_close(B @ s, y, rtol=1e-9, atol=1e-9)


def test_bfgs_inverse_and_direct_forms_agree() -> None:
    H, s, y, p, g, p_prev, g_prev = _rand_problem()
    Hn = tz.m.BFGS().update_H(H.clone(), s, y, p, g, p_prev, g_prev, {}, dict(tz.m.BFGS().defaults))
    Bn = tz.m.BFGS(inverse=False).update_B(torch.linalg.inv(H), s, y, p, g, p_prev, g_prev, {}, dict(tz.m.BFGS().defaults))
    torch.testing.assert_close(Hn @ Bn, torch.eye(6, dtype=DT), rtol=1e-9, atol=1e-9)


def test_shor_r_dilates_along_hy() -> None:
    H, s, y, p, g, p_prev, g_prev = _rand_problem()
    m = tz.m.ShorR(alpha=0.5)
    Hn = m.update_H(H.clone(), s, y, p, g, p_prev, g_prev, {}, dict(m.defaults))
    # y^T H+ y = alpha^2 y^T H y; vectors with y^T H v = 0 are untouched
    torch.testing.assert_close(y @ Hn @ y, 0.25 * (y @ H @ y))
    v = torch.linspace(-1, 1, 6, dtype=DT)
    v = v - (y @ H @ v) / (y @ H @ y) * y
    torch.testing.assert_close(Hn @ v, H @ v)


def test_projected_newton_raphson_annihilates_y() -> None:
    H, s, y, p, g, p_prev, g_prev = _rand_problem()
    m = tz.m.ProjectedNewtonRaphson()
    state: dict = {}
    Hn = m.update_H(H.clone(), s, y, p, g, p_prev, g_prev, state, dict(m.defaults))
    torch.testing.assert_close(Hn @ y, torch.zeros(6, dtype=DT), atol=1e-12, rtol=0)
    # the restart matrix R satisfies the secant condition
    torch.testing.assert_close(state["R"] @ y, s)


def test_bfgs_unit_step_converges_superlinearly_on_quadratic() -> None:
    x, A, b, f = quadratic_problem(8, cond=30.0)
    xstar = torch.linalg.solve(A, b)
    opt = tz.Optimizer([x], tz.m.BFGS(), tz.m.StepSize(1.0))
    errs = []
    for _ in range(25):
        run_steps(opt, f, 1)
        errs.append(float((x.detach() - xstar).norm()))
    assert errs[-1] < 1e-8
    # superlinear: the error ratio goes to zero
    tail = [b_ / a_ for a_, b_ in zip(errs, errs[1:]) if a_ > 1e-12][-3:]
    assert max(tail) < 0.3, tail


@pytest.mark.parametrize("name, kwargs", [
    ("BFGS", {}), ("BFGS", {"inverse": False}), ("SR1", {}), ("SR1", {"inverse": False}), ("Horisho", {}), ("FletcherVMM", {}), ("ThomasOptimalMethod", {}), ("BroydenGood", {}),
    ("McCormick", {}), ("Pearson", {}), ("Greenstadt2", {}),
])
def test_converges_on_ill_conditioned_quadratic(name: str, kwargs: dict) -> None:
    x, A, b, f = quadratic_problem(6, cond=1e3, seed=1)
    opt = tz.Optimizer([x], getattr(tz.m, name)(**kwargs), tz.m.StepSize(0.5))
    fstar = float(-0.5 * b @ torch.linalg.solve(A, b))
    losses = run_steps(opt, f, 80)
    assert losses[-1] - fstar < 1e-6 * max(1.0, abs(fstar)), (losses[0], losses[-1], fstar)


@pytest.mark.parametrize("name, kwargs, kind", [
    ("BFGS", {}, DenseInverse), ("BFGS", {"inverse": False}, Dense), ("SR1", {"inverse": False}, Dense),
    ("PSB", {}, Dense), ("ThomasOptimalMethod", {}, DenseInverse),
])
def test_get_H_is_consistent_with_the_step(name: str, kwargs: dict, kind: type) -> None:
    """The step of every iteration solves ``B d = g`` with the operator ``get_H`` returns after it."""
    x, A, b, f = quadratic_problem(5, cond=30.0)
    m = getattr(tz.m, name)(**kwargs)
    opt = tz.Optimizer([x], m, tz.m.StepSize(1.0))
    for _ in range(4):
        x0 = x.detach().clone()
        opt.zero_grad()
        f().backward()
        g = x.grad.detach().clone()
        run_steps(opt, f, 1)
        d = x0 - x.detach()
        H = m.get_H()
        assert isinstance(H, kind) and H.size() == 5
        torch.testing.assert_close(H.solve(g), d, rtol=1e-7, atol=1e-10)
        torch.testing.assert_close(H.matvec(d), g, rtol=1e-7, atol=1e-10)


def test_get_H_matches_the_preconditioner() -> None:
    x, A, b, f = quadratic_problem(5, cond=30.0)
    m = tz.m.BFGS()
    opt = tz.Optimizer([x], m, tz.m.StepSize(1.0))
    run_steps(opt, f, 3)
    H = m.get_H()
    # the next step's preconditioner is the state after the update of that step: recompute it by hand
    st = m.state[m._fake_params["__concat"][0]]
    torch.testing.assert_close(H.solve(torch.ones(5, dtype=DT)), st["H"] @ torch.ones(5, dtype=DT))
    torch.testing.assert_close(H.to_tensor() @ st["H"], torch.eye(5, dtype=DT))


def test_get_H_per_parameter_is_block_diagonal() -> None:
    a = torch.tensor([1.0, 2.0], dtype=DT, requires_grad=True)
    c = torch.tensor([[0.5]], dtype=DT, requires_grad=True)
    m = tz.m.DFP(concat_params=False)
    opt = tz.Optimizer([a, c], m, tz.m.StepSize(0.1))
    assert m.get_H() is None
    run_steps(opt, lambda: (a ** 2).sum() + 3 * (c ** 2).sum() + (a.sum() * c.sum()) ** 2, 4)
    H = m.get_H()
    assert isinstance(H, BlockDiagonal) and H.size() == 3
    dense = H.to_tensor()
    assert dense[:2, 2].abs().max() == 0 and dense[2, :2].abs().max() == 0


def test_sr1_auto_first_update_is_skipped() -> None:
    """Reference bug: with init_scale='auto' the first SR1 denominator is rounding noise and the step explodes."""
    x, A, b, f = quadratic_problem(10, cond=100)
    m = tz.m.SR1()
    opt = tz.Optimizer([x], m, tz.m.StepSize(0.5))
    run_steps(opt, f, 2)
    H = m.state[m._fake_params["__concat"][0]]["H"]
    # the first update was skipped: H is the auto-scaled identity
    torch.testing.assert_close(H, H[0, 0] * torch.eye(10, dtype=DT))
    assert float(x.detach().abs().max()) < 10
    losses = run_steps(opt, f, 40)
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["FletcherVMM", "Greenstadt1", "Greenstadt2", "Horisho", "ICUM", "McCormick", "Pearson",
                                  "ThomasOptimalMethod"])
def test_inverse_only_methods_reject_direct_form(name: str) -> None:
    with pytest.raises(ValueError, match="inverse"):
        getattr(tz.m, name)(inverse=False)


def test_psb_has_only_a_direct_form() -> None:
    with pytest.raises(ValueError, match="inverse"):
        tz.m.PSB(inverse=True)
    assert isinstance(tz.m.PSB().get_H(), type(None))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="restart_interval"):
        tz.m.BFGS(restart_interval=0)
    with pytest.raises(TypeError, match="init_scale"):
        tz.m.BFGS(init_scale="big")  # type: ignore[arg-type]


def test_init_scale_sets_the_first_step() -> None:
    x, A, b, f = quadratic_problem(4, cond=30.0)
    opt = tz.Optimizer([x], tz.m.BFGS(init_scale=4.0), tz.m.StepSize(1.0))
    opt.zero_grad()
    f().backward()
    g = x.grad.detach().clone()
    run_steps(opt, f, 1)
    torch.testing.assert_close(x.detach(), -g / 4)


def test_scale_first_divides_by_l1_norm() -> None:
    x, A, b, f = quadratic_problem(4, cond=30.0)
    x.data.fill_(3.0)
    opt = tz.Optimizer([x], tz.m.BFGS(scale_first=True), tz.m.StepSize(1.0))
    opt.zero_grad()
    f().backward()
    g = x.grad.detach().clone()
    run_steps(opt, f, 1)
    torch.testing.assert_close(x.detach(), 3.0 - g / g.abs().sum())


def test_restart_interval_resets_to_scaled_identity() -> None:
    x, A, b, f = quadratic_problem(6, cond=30.0)
    m = tz.m.BFGS(restart_interval=3)
    opt = tz.Optimizer([x], m, tz.m.StepSize(0.5))
    run_steps(opt, f, 3)
    H = m.state[m._fake_params["__concat"][0]]["H"]
    torch.testing.assert_close(H, H[0, 0] * torch.eye(6, dtype=DT))
    run_steps(opt, f, 1)
    H = m.state[m._fake_params["__concat"][0]]["H"]
    assert not torch.allclose(H, H[0, 0] * torch.eye(6, dtype=DT))


def test_update_freq_and_beta_change_the_trajectory() -> None:
    def traj(**kw):
        x, A, b, f = quadratic_problem(6, cond=30.0)
        opt = tz.Optimizer([x], tz.m.BFGS(**kw), tz.m.StepSize(0.5))
        run_steps(opt, f, 6)
        return x.detach().clone()
    base = traj()
    for kw in [{"update_freq": 2}, {"beta": 0.5}, {"ptol": 10.0}, {"gtol": 10.0}, {"tol": 1e3}]:
        assert not torch.allclose(traj(**kw), base), kw
    # skipping every update leaves plain gradient descent
    x, A, b, f = quadratic_problem(6, cond=30.0)
    opt = tz.Optimizer([x], tz.m.BFGS(gtol=1e9), tz.m.StepSize(0.01))
    run_steps(opt, f, 3)
    x2, *_rest, f2 = quadratic_problem(6, cond=30.0)
    opt2 = tz.Optimizer([x2], tz.m.StepSize(0.01))
    run_steps(opt2, f2, 3)
    torch.testing.assert_close(x.detach(), x2.detach())


def test_inner_output_is_preconditioned() -> None:
    x, A, b, f = quadratic_problem(4, cond=30.0)
    m = tz.m.BFGS(init_scale=2.0, inner=tz.m.StepSize(3.0))
    opt = tz.Optimizer([x], m, tz.m.StepSize(1.0))
    opt.zero_grad()
    f().backward()
    g = x.grad.detach().clone()
    run_steps(opt, f, 1)
    torch.testing.assert_close(x.detach(), -3 * g / 2)


def _has(*names: str) -> bool:
    return all(n in tz.m.implemented() for n in names)


@pytest.mark.skipif(not _has("Backtracking"), reason="line searches are not implemented yet")
@pytest.mark.parametrize("name, steps", [("BFGS", 100), ("Horisho", 150), ("FletcherVMM", 100)])
def test_rosenbrock_with_backtracking(name: str, steps: int) -> None:
    x, f = rosenbrock_problem()
    opt = tz.Optimizer([x], getattr(tz.m, name)(), tz.m.Backtracking())
    losses = run_steps(opt, f, steps)
    assert losses[-1] < 1e-6, losses[-1]


@pytest.mark.skipif(not _has("StrongWolfe"), reason="line searches are not implemented yet")
def test_bfgs_strong_wolfe_rosenbrock() -> None:
    x, f = rosenbrock_problem()
    opt = tz.Optimizer([x], tz.m.BFGS(), tz.m.StrongWolfe())
    losses = run_steps(opt, f, 60)
    assert losses[-1] < 1e-10, losses[-1]




# ---------------------------------------------------------------------- diagonal methods
def _rand_diag(n: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    d = torch.rand(n, generator=g, dtype=DT) + 0.5
    s = torch.randn(n, generator=g, dtype=DT)
    y = s * (torch.rand(n, generator=g, dtype=DT) + 0.5)
    z = torch.zeros(n, dtype=DT)
    return d, s, y, z + s, z + y, z, z


@pytest.mark.parametrize("name", ["DiagonalQuasiCauchi", "DiagonalWeightedQuasiCauchi", "DNRTR"])
def test_quasi_cauchy_condition(name: str) -> None:
    """The quasi-Cauchy (weak secant) condition s^T B+ s = s^T y."""
    m = getattr(tz.m, name)()
    b, s, y, p, g, p_prev, g_prev = _rand_diag()
    b = m.update_B(b, s, y, p, g, p_prev, g_prev, {}, dict(m.defaults))
    torch.testing.assert_close(s @ (b * s), s @ y)


def test_diagonal_bfgs_and_sr1_formulas() -> None:
    h, s, y, p, g, p_prev, g_prev = _rand_diag()
    rho = 1 / (s @ y)
    m = tz.m.DiagonalBFGS()
    out = m.update_H(h.clone(), s, y, p, g, p_prev, g_prev, {}, dict(m.defaults))
    torch.testing.assert_close(out, (1 - rho * s * y) ** 2 * h + rho * s * s)
    # DiagonalSR1 is the diagonal of the full SR1 update
    m = tz.m.DiagonalSR1()
    out = m.update_H(h.clone(), s, y, p, g, p_prev, g_prev, {}, dict(m.defaults))
    H = tz.m.SR1().update_H(torch.diag(h), s, y, p, g, p_prev, g_prev, {}, dict(tz.m.SR1().defaults))
    torch.testing.assert_close(out, H.diagonal())


def test_diagonal_methods_converge_on_a_separable_quadratic() -> None:
    for name in ["DiagonalBFGS", "DiagonalQuasiCauchi", "DiagonalWeightedQuasiCauchi", "DNRTR", "NewDQN"]:
        x = torch.zeros(5, dtype=DT, requires_grad=True)
        a = torch.tensor([1.0, 3.0, 10.0, 0.5, 2.0], dtype=DT)
        f = lambda: 0.5 * (a * (x - 1) ** 2).sum()  # noqa: E731
        opt = tz.Optimizer([x], getattr(tz.m, name)(), tz.m.StepSize(0.5))
        losses = run_steps(opt, f, 60)
        if name == "NewDQN":  # its diagonal only grows while s^T y > 0: steady but slow progress
            assert losses[-1] < 0.25 * losses[0], losses[-1]
        else:
            assert losses[-1] < 1e-8 * losses[0], (name, losses[-1])


def test_diagonal_get_H_and_bounds() -> None:
    x = torch.zeros(4, dtype=DT, requires_grad=True)
    a = torch.tensor([1.0, 4.0, 100.0, 0.5], dtype=DT)
    f = lambda: 0.5 * (a * (x - 1) ** 2).sum()  # noqa: E731
    m = tz.m.DNRTR(lb=0.9, ub=50.0)
    opt = tz.Optimizer([x], m, tz.m.StepSize(0.01))
    run_steps(opt, f, 3)
    H = m.get_H()
    assert isinstance(H, Diagonal)
    b = m.state[m._fake_params["__concat"][0]]["B"]
    # entries outside [lb, ub] are replaced by 1 in the operator (and in the step)
    expect = torch.where((b < 0.9) | (b > 50.0), torch.ones_like(b), b)
    torch.testing.assert_close(H.diagonal(), expect)
    x0 = x.detach().clone()
    opt.zero_grad()
    f().backward()
    gr = x.grad.detach().clone()
    run_steps(opt, f, 1)
    torch.testing.assert_close((x0 - x.detach()) / 0.01, m.get_H().solve(gr))
    with pytest.raises(ValueError, match="lb"):
        tz.m.DNRTR(lb=2.0, ub=1.0)
    # inverse diagonal methods give the reciprocal of the kept vector
    m2 = tz.m.DiagonalBFGS()
    opt2 = tz.Optimizer([x], m2, tz.m.StepSize(0.01))
    run_steps(opt2, f, 3)
    h = m2.state[m2._fake_params["__concat"][0]]["H"]
    torch.testing.assert_close(m2.get_H().diagonal(), 1 / h)


def test_diagonal_sr1_auto_first_update_is_skipped() -> None:
    x, A, b, f = quadratic_problem(10, cond=100)
    m = tz.m.DiagonalSR1()
    opt = tz.Optimizer([x], m, tz.m.StepSize(0.05))
    run_steps(opt, f, 2)
    h = m.state[m._fake_params["__concat"][0]]["H"]
    torch.testing.assert_close(h, h[0].expand_as(h))
    assert float(x.detach().abs().max()) < 10


# ---------------------------------------------------------------------- GradientCorrection
def test_gradient_correction_is_exact_on_a_quadratic_line() -> None:
    """On a quadratic the corrected gradient is the gradient at the line minimiser along the last step."""
    x, A, b, f = quadratic_problem(5, cond=30.0)
    opt = tz.Optimizer([x], tz.m.GradientCorrection(), tz.m.StepSize(0.02))
    run_steps(opt, f, 1)
    x0 = x.detach().clone()
    x_prev = torch.zeros(5, dtype=DT)
    s = x0 - x_prev
    # the line minimiser of the quadratic along x_prev + t s
    g_prev = A @ x_prev - b
    t = -(s @ g_prev) / (s @ A @ s)
    expected = A @ (x_prev + t * s) - b
    run_steps(opt, f, 1)
    torch.testing.assert_close((x0 - x.detach()) / 0.02, expected)
    assert abs(float(expected @ s)) < 1e-10


def test_gradient_correction_first_step_passes_gradient() -> None:
    x, A, b, f = quadratic_problem(5, cond=30.0)
    opt = tz.Optimizer([x], tz.m.GradientCorrection(), tz.m.StepSize(0.1))
    run_steps(opt, f, 1)
    torch.testing.assert_close(x.detach(), 0.1 * b)


@pytest.mark.skipif(not _has("Backtracking"), reason="line searches are not implemented yet")
def test_bfgs_with_gradient_correction_and_backtracking() -> None:
    x, f = rosenbrock_problem()
    opt = tz.Optimizer([x], tz.m.BFGS(inner=tz.m.GradientCorrection()), tz.m.Backtracking())
    losses = run_steps(opt, f, 200)
    assert losses[-1] < 1e-4, losses[-1]
