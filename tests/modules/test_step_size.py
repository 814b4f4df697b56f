"""Step sizes (issue 7): LR schedulers through LR / StepSize, schedules, and the adaptive step sizes."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz

M = tz.m


def quadratic(n: int = 6, cond: float = 20.0, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    A = q @ torch.diag(torch.linspace(1, cond, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=g, dtype=torch.float64)
    xs = torch.linalg.solve(A, b)
    f_star = float(0.5 * xs @ A @ xs - b @ xs)
    return A, b, xs, f_star


def run_quadratic(modules, steps: int, n: int = 6, cond: float = 20.0):
    A, b, xs, f_star = quadratic(n, cond)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *modules)

    def closure(backward=True):
        loss = 0.5 * x @ A @ x - b @ x
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(steps):
        opt.step(closure)
    return float(closure(False).detach()) - f_star, x.detach(), xs


def feed(module_list, grads, losses=None, x0=None):
    """Steps a chain on one 1-d parameter with prescribed gradients (and losses); returns the updates."""
    x = torch.tensor(x0 if x0 is not None else [0.0] * len(grads[0]), dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *module_list)
    out = []
    for i in range(len(grads)):
        before = x.detach().clone()

        def closure(backward=True, i=i):
            if backward:
                x.grad = torch.tensor(grads[i], dtype=torch.float64)
            return torch.tensor(losses[i] if losses else 0.0, dtype=torch.float64)
        opt.step(closure)
        out.append((before - x.detach()).tolist())
    return out


def norm(u):
    return math.sqrt(sum(v * v for v in u))


# ---------------------------------------------------------------------------- LR schedulers
def _traj_with_scheduler(make_opt, make_sched, steps=12):
    g = torch.Generator().manual_seed(0)
    ps = [torch.randn(4, 3, generator=g, dtype=torch.float64).requires_grad_(True),
          torch.randn(2, generator=g, dtype=torch.float64).requires_grad_(True)]
    opt = make_opt(ps)
    sched = make_sched(opt)
    out = []
    for _ in range(steps):
        opt.zero_grad()
        loss = sum(((p - 1) ** 2).sum() + 0.1 * (p ** 4).sum() for p in ps)
        loss.backward()
        opt.step()
        sched.step()
        out.append(torch.cat([p.detach().reshape(-1).clone() for p in ps]))
    return out


@pytest.mark.parametrize("make_sched", [
    lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 1 / (1 + k)),
], ids=["StepLR", "CosineAnnealingLR", "LambdaLR"])
def test_lr_scheduler_through_lr(make_sched):
    """A torch scheduler drives ``LR`` exactly as it drives torch.optim (SGD and Adam)."""
    ours = _traj_with_scheduler(lambda ps: tz.Optimizer(ps, M.LR(0.1)), make_sched)
    ref = _traj_with_scheduler(lambda ps: torch.optim.SGD(ps, lr=0.1), make_sched)
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)
    ours = _traj_with_scheduler(lambda ps: tz.Optimizer(ps, M.Adam(), M.LR(0.1)), make_sched)
    ref = _traj_with_scheduler(lambda ps: torch.optim.Adam(ps, lr=0.1), make_sched)
    for a, b in zip(ours, ref):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lr_scheduler_with_step_size_key():
    """``StepSize(key="lr")`` follows the scheduler; with its own key it keeps its value."""
    sched = lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.1)
    a = _traj_with_scheduler(lambda ps: tz.Optimizer(ps, M.StepSize(0.1, key="lr")), sched)
    b = _traj_with_scheduler(lambda ps: torch.optim.SGD(ps, lr=0.1), sched)
    assert all(torch.allclose(x, y) for x, y in zip(a, b))
    # a separate key: the scheduler only changes "lr", which LR reads, not StepSize
    c = _traj_with_scheduler(lambda ps: tz.Optimizer(ps, M.StepSize(0.5), M.LR(0.2)), sched)
    d = _traj_with_scheduler(lambda ps: torch.optim.SGD(ps, lr=0.1), sched)
    assert all(torch.allclose(x, y) for x, y in zip(c, d))


# ---------------------------------------------------------------------------- schedules
def test_warmup_factors():
    out = feed([M.Warmup(steps=4, start_lr=0.1, end_lr=0.5)], [[1.0]] * 7)
    assert [u[0] for u in out] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="steps"):
        M.Warmup(steps=0)


def test_warmup_norm_clip():
    out = feed([M.WarmupNormClip(steps=4, start_norm=0.1, end_norm=2.0)], [[3.0, 4.0]] * 6)
    assert [norm(u) for u in out] == pytest.approx([0.1, 0.575, 1.05, 1.525, 2.0, 5.0])
    # below the bound nothing changes
    out = feed([M.WarmupNormClip(steps=4, start_norm=10.0, end_norm=20.0)], [[3.0, 4.0]])
    assert out[0] == [3.0, 4.0]


def test_random_step_size():
    a = feed([M.RandomStepSize(0.5, 2.0, seed=3)], [[1.0, 1.0]] * 20)
    b = feed([M.RandomStepSize(0.5, 2.0, seed=3)], [[1.0, 1.0]] * 20)
    assert a == b
    vals = [u[0] for u in a]
    assert all(0.5 <= v < 2.0 for v in vals) and len(set(vals)) > 10
    assert all(u[0] == u[1] for u in a)
    # parameterwise: one draw per parameter tensor
    x, y = torch.zeros(2, requires_grad=True), torch.zeros(2, requires_grad=True)
    opt = tz.Optimizer([x, y], M.RandomStepSize(parameterwise=True, seed=0))
    x.grad, y.grad = torch.ones(2), torch.ones(2)
    opt.step()
    assert x[0] == x[1] and y[0] == y[1] and x[0] != y[0]
    with pytest.raises(ValueError):
        M.RandomStepSize(2, 1)


# ---------------------------------------------------------------------------- Polyak
def test_polyak_known_and_unknown_f_star():
    G = [[1.0, 2.0], [0.5, 1.5], [0.2, 0.1]]
    L = [10.0, 8.0, 9.0]
    out = feed([M.PolyakStepSize()], G, L)
    assert out[0] == pytest.approx([2.0, 4.0]) and out[1] == pytest.approx([1.6, 4.8])
    out = feed([M.PolyakStepSize(f_star=None, y=2, y_decay=0.5)], G, L)
    # f* = best - y: 10 - 2, then 8 - 1, then 8 - 0.5
    assert out[0] == pytest.approx([0.4, 0.8]) and out[1] == pytest.approx([0.2, 0.6]) and out[2] == pytest.approx([6.0, 3.0])
    # max clamps the step size before alpha multiplies it
    out = feed([M.PolyakStepSize(max=2, alpha=0.5)], G, L)
    assert out[1] == pytest.approx([0.5, 1.5])


def test_polyak_without_grad():
    """use_grad=False (an assertion error in the reference): denominator <u, u> of the update."""
    x = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], M.Mul(2.0), M.PolyakStepSize(use_grad=False))
    opt.step(lambda backward=True: _set(x, [1.0, 2.0], 10.0, backward))
    u = torch.tensor([2.0, 4.0], dtype=torch.float64)
    assert torch.allclose(-x.detach(), 10.0 / float(u @ u) * u)


def _set(x, g, f, backward):
    if backward:
        x.grad = torch.tensor(g, dtype=torch.float64)
    return torch.tensor(f, dtype=torch.float64)


def test_polyak_converges_with_f_star():
    A, b, xs, f_star = quadratic()
    gap, _, _ = run_quadratic([M.PolyakStepSize(f_star=f_star)], 150)
    assert gap < 1e-4


# ---------------------------------------------------------------------------- Barzilai-Borwein
def test_bb_formulas():
    G = [[1.0, 2.0], [0.5, 1.5]]
    # x0 = 0, first step alpha_0 g0 = 0.5 g0 -> s = -[0.5, 1], y = [-0.5, -0.5]
    sy, ss, yy = 0.75, 1.25, 0.5
    for kind, step in (("long", ss / sy), ("short", sy / yy), ("geom", math.sqrt(ss / yy)), ("geom-fallback", math.sqrt(ss / yy))):
        out = feed([M.BarzilaiBorwein(type=kind, alpha_0=0.5)], G)
        assert out[0] == pytest.approx([0.5, 1.0])
        assert out[1] == pytest.approx([step * 0.5, step * 1.5]), kind
    # negative curvature: alpha_0 for long / short, |s.y| / y.y for geom
    G = [[1.0, 0.0], [2.0, 0.5]]
    assert feed([M.BarzilaiBorwein(type="long", alpha_0=0.5)], G)[1] == pytest.approx([1.0, 0.25])
    # s = -[0.5, 0], y = [1, 0.5]: s.y = -0.5, y.y = 1.25
    assert feed([M.BarzilaiBorwein(type="geom", alpha_0=0.5)], G)[1] == pytest.approx([2 * 0.4, 0.5 * 0.4])
    with pytest.raises(ValueError, match="type"):
        M.BarzilaiBorwein(type="middle")


def test_bb_small_first_step():
    """A small input is rescaled to alpha_0 in the max-norm on the first step, never beyond itself."""
    assert feed([M.BarzilaiBorwein(alpha_0=0.5)], [[0.8, 0.0]])[0] == pytest.approx([0.5, 0.0])
    assert feed([M.BarzilaiBorwein(alpha_0=0.5)], [[0.4, 0.1]])[0] == pytest.approx([0.4, 0.1])
    assert feed([M.BarzilaiBorwein(alpha_0=0.5)], [[2.0, 0.0]])[0] == pytest.approx([1.0, 0.0])


@pytest.mark.parametrize("module", [
    lambda: M.BarzilaiBorwein(alpha_0=1e-3),
    lambda: M.BarzilaiBorwein(type="long", alpha_0=1e-3),
    lambda: M.BarzilaiBorwein(type="short", alpha_0=1e-3, use_grad=False),
    lambda: M.BBStab(alpha_0=1e-3),
    lambda: M.AdGD(alpha_0=1e-3),
    lambda: M.AdGD(variant=1, alpha_0=1e-3),
], ids=["BB-geom", "BB-long", "BB-short-update", "BBStab", "AdGD-2", "AdGD-1"])
def test_converges_on_quadratic_without_tuning(module):
    gap, _, _ = run_quadratic([module()], 150)
    assert gap < 1e-6


def test_bbstab_bounds_the_step():
    A, b, _, _ = quadratic()
    x = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], M.BBStab(alpha_0=0.05, delta=0.05))
    lengths = []
    for _ in range(20):
        before = x.detach().clone()

        def closure(backward=True):
            loss = 0.5 * x @ A @ x - b @ x
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
        lengths.append(float((x.detach() - before).norm()))
    assert max(lengths[1:]) <= 0.05 + 1e-12


def test_bbstab_adaptive_delta():
    """With delta=None the shortest of the first inf_iters BB steps, times c, bounds the later ones."""
    G = [[1.0, 2.0], [0.5, 1.5], [0.2, 0.1], [0.3, -0.2], [0.1, 0.1], [0.3, 0.3], [1.0, 1.0], [2.0, 1.0]]
    bb = feed([M.BarzilaiBorwein(alpha_0=0.5)], G)
    st = feed([M.BBStab(alpha_0=0.5, c=0.2, inf_iters=3)], G)
    bb_len = [norm(u) for u in bb]
    st_len = [norm(u) for u in st]
    assert st_len[:5] == pytest.approx(bb_len[:5])
    delta = 0.2 * min(bb_len[1:4])
    assert all(v <= delta + 1e-12 for v in st_len[5:]) and st_len[5] == pytest.approx(delta)
    # inf_iters=0 (a KeyError in the reference): the first BB step alone sets delta, which bounds the next ones
    st0 = feed([M.BBStab(alpha_0=0.5, c=0.2, inf_iters=0)], G)
    assert all(math.isfinite(v) for u in st0 for v in u)
    assert st0[:2] == bb[:2]
    assert all(norm(u) <= 0.2 * bb_len[1] + 1e-12 for u in st0[2:])
    assert any(norm(u) == pytest.approx(0.2 * bb_len[1]) for u in st0[2:])


# ---------------------------------------------------------------------------- AdGD
def test_adgd_rules():
    G = [[1.0, 1.0], [5.0, 5.0], [5.0, 5.0]]
    # variant 2: lambda_1 = lambda_0 / sqrt(2 lambda_0^2 L^2 - 1), L = 8
    out = feed([M.AdGD(alpha_0=0.5)], G)
    lam1 = 0.5 / math.sqrt(2 * 0.25 * 64 - 1)
    assert out[1] == pytest.approx([5 * lam1] * 2)
    assert out[2] == pytest.approx([5 * math.sqrt(2 / 3 + lam1 / 0.5) * lam1] * 2)
    # variant 1: 1 / (sqrt(2) L), or 1 / (2 L) with sqrt=False
    assert feed([M.AdGD(variant=1, alpha_0=0.5)], G)[1] == pytest.approx([5 / (math.sqrt(2) * 8)] * 2)
    assert feed([M.AdGD(variant=1, sqrt=False, alpha_0=0.5)], G)[1] == pytest.approx([5 / 16] * 2)
    with pytest.raises(ValueError, match="variant"):
        M.AdGD(variant=3)


# ---------------------------------------------------------------------------- bold driver
def test_bold_driver():
    G = [[1.0]] * 5
    out = feed([M.BoldDriver(a_init=0.5, nplus=2, nminus=0.25)], G, [10.0, 8.0, 9.0, 5.0, 5.0])
    assert [u[0] for u in out] == pytest.approx([0.5, 1.0, 0.25, 0.5, 0.125])


def test_bold_driver_inner_and_convergence():
    gap, _, _ = run_quadratic([M.BoldDriver(a_init=0.01, inner=M.Normalize() if "Normalize" in M.implemented() else None)], 100)
    assert gap < 1e-2
