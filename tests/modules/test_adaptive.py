"""Adaptive methods (issue 7): parity with torch.optim, the behaviour each seed section states,
and the paths where the reference implementation is broken (see tests/golden/cases/adaptive.py)."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz

M = tz.m


# ---------------------------------------------------------------------------- helpers
def make_params() -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randn(3, 4, generator=g, dtype=torch.float64).requires_grad_(True),
            torch.randn(5, generator=g, dtype=torch.float64).requires_grad_(True),
            torch.randn((), generator=g, dtype=torch.float64).requires_grad_(True)]


def loss_fn(params: list[torch.Tensor]) -> torch.Tensor:
    total = torch.zeros((), dtype=torch.float64)
    for i, p in enumerate(params):
        t = torch.cos(torch.arange(p.numel(), dtype=torch.float64) + i).reshape(p.shape)
        total = total + (i + 1) * ((p - t) ** 2).sum() + 0.1 * (p ** 4).sum()
    return total


def trajectory(build, steps: int = 15, groups=None) -> list[torch.Tensor]:
    params = make_params()
    opt = build(params if groups is None else groups(params))
    out = []
    for _ in range(steps):
        def closure(backward=True):
            loss = loss_fn(params)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
        out.append(torch.cat([p.detach().reshape(-1).clone() for p in params]))
    return out


def same(a, b, rtol=1e-10, atol=1e-12):
    for i, (x, y) in enumerate(zip(a, b)):
        assert torch.allclose(x, y, rtol=rtol, atol=atol), f"step {i}: max diff {float((x - y).abs().max()):.3e}"


def differs(a, b):
    return any(not torch.allclose(x, y, rtol=1e-9, atol=1e-12) for x, y in zip(a, b))


def final_loss(build, steps: int = 60) -> float:
    params = make_params()
    opt = build(params)
    for _ in range(steps):
        def closure(backward=True):
            loss = loss_fn(params)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
    return float(loss_fn(params).detach())


INITIAL_LOSS = float(loss_fn(make_params()).detach())


def feed(module_list, grads, losses=None, x0=None):
    """Steps a chain on one 1-d parameter with prescribed gradients (and losses); returns the updates."""
    x = torch.tensor(x0 if x0 is not None else [0.0] * len(grads[0]), dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], *module_list)
    out = []
    for i, g in enumerate(grads):
        before = x.detach().clone()

        def closure(backward=True, i=i):
            if backward:
                x.grad = torch.tensor(grads[i], dtype=torch.float64)
            return torch.tensor(losses[i] if losses else 0.0, dtype=torch.float64)
        opt.step(closure)
        out.append((before - x.detach()).tolist())
    return out


# ---------------------------------------------------------------------------- parity with torch.optim
@pytest.mark.parametrize("kw", [{}, dict(lr_decay=0.1, initial_accumulator_value=0.3, eps=1e-4)])
def test_adagrad_equals_torch(kw):
    ours = trajectory(lambda ps: tz.Optimizer(ps, M.Adagrad(**kw), M.LR(0.1)))
    ref = trajectory(lambda ps: torch.optim.Adagrad(ps, lr=0.1, **kw))
    same(ours, ref)


def test_adagrad_not_last_equals_fused():
    """The same numbers whether Adagrad writes the step itself (last) or hands the update on."""
    fused = trajectory(lambda ps: tz.Optimizer(ps, M.Adagrad(), M.LR(0.1)))
    unfused = trajectory(lambda ps: tz.Optimizer(ps, M.Adagrad(), M.LR(0.1), M.Identity()))
    same(fused, unfused)


@pytest.mark.parametrize("centered", [False, True])
def test_rmsprop_equals_torch(centered):
    ours = trajectory(lambda ps: tz.Optimizer(ps, M.RMSprop(smoothing=0.9, eps=1e-6, centered=centered), M.LR(0.01)))
    ref = trajectory(lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, centered=centered))
    same(ours, ref)


def test_rprop_equals_torch():
    ours = trajectory(lambda ps: tz.Optimizer(ps, M.Rprop(nplus=1.3, nminus=0.4, lb=1e-4, ub=0.3, backtrack=False, alpha=0.05), M.LR(1)))
    ref = trajectory(lambda ps: torch.optim.Rprop(ps, lr=0.05, etas=(0.4, 1.3), step_sizes=(1e-4, 0.3)))
    same(ours, ref)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adam_equals_torch_with_groups(amsgrad):
    """Per-group settings (a different beta1, eps and lr for one group) and amsgrad."""
    def tz_groups(ps):
        return [{"params": ps[:1], "beta1": 0.5, "eps": 1e-4, "lr": 0.05}, {"params": ps[1:]}]

    def torch_groups(ps):
        return [{"params": ps[:1], "betas": (0.5, 0.99), "eps": 1e-4, "lr": 0.05}, {"params": ps[1:]}]
    ours = trajectory(lambda g: tz.Optimizer(g, M.Adam(beta2=0.99, amsgrad=amsgrad), M.LR(0.1)), groups=tz_groups)
    ref = trajectory(lambda g: torch.optim.Adam(g, lr=0.1, betas=(0.9, 0.99), amsgrad=amsgrad), groups=torch_groups)
    same(ours, ref)


def test_adam_from_parts_equals_adam_and_torch():
    """DivModules(EMA + Debias, EMASquared -> Sqrt -> Debias2 -> Add(eps)) is Adam is torch.optim.Adam."""
    missing = {"EMA", "Debias", "EMASquared", "Sqrt", "Debias2", "Add", "DivModules"} - set(dir(M))
    if missing or "EMA" not in M.implemented():
        pytest.skip(f"ops not implemented: {missing or 'EMA'}")
    parts = trajectory(lambda ps: tz.Optimizer(ps, M.DivModules([M.EMA(0.8), M.Debias(beta1=0.8)],
                                                                [M.EMASquared(0.95), M.Sqrt(), M.Debias2(0.95), M.Add(1e-6)]), M.LR(0.05)))
    adam = trajectory(lambda ps: tz.Optimizer(ps, M.Adam(0.8, 0.95, 1e-6), M.LR(0.05)))
    ref = trajectory(lambda ps: torch.optim.Adam(ps, lr=0.05, betas=(0.8, 0.95), eps=1e-6))
    same(parts, adam)
    same(adam, ref)


# ---------------------------------------------------------------------------- convergence
@pytest.mark.parametrize("chain", [
    lambda: [M.Adagrad(), M.LR(0.5)],
    lambda: [M.AdagradNorm(), M.LR(0.5)],
    lambda: [M.RMSprop(), M.LR(0.05)],
    lambda: [M.Adan(), M.LR(0.05)],
    lambda: [M.Lion(), M.LR(0.02)],
    lambda: [M.Rprop(), M.LR(0.1)],
    lambda: [M.AEGD(lr=0.2)],
    lambda: [M.MARSCorrection(), M.Adam(), M.LR(0.05)],
    lambda: [M.OrthoGrad(), M.Adam(), M.LR(0.05)],
], ids=["Adagrad", "AdagradNorm", "RMSprop", "Adan", "Lion", "Rprop", "AEGD", "MARS", "OrthoGrad"])
def test_decreases_loss(chain):
    # OrthoGrad removes the radial direction, which this problem needs: it still makes steady progress
    assert final_loss(lambda ps: tz.Optimizer(ps, *chain())) < 0.7 * INITIAL_LOSS


# ---------------------------------------------------------------------------- every option does something
@pytest.mark.parametrize("name, base, variants", [
    ("Adagrad", {}, [dict(lr_decay=0.5), dict(initial_accumulator_value=2.0), dict(eps=0.5), dict(alpha=2.0), dict(pow=3),
                     dict(use_sqrt=False), dict(inner=M.Mul(2.0)), dict(accumulator_tfm=M.Mul(4.0))]),
    ("AdagradNorm", {}, [dict(lr_decay=0.5), dict(initial_accumulator_value=2.0), dict(eps=0.5), dict(beta=0.5),
                         dict(layerwise=False), dict(use_sqrt=False), dict(alpha=2.0), dict(inner=M.Mul(2.0))]),
    ("RMSprop", {}, [dict(smoothing=0.5), dict(eps=0.5), dict(centered=True), dict(debias=True), dict(amsgrad=True),
                     dict(init="update"), dict(inner=M.Mul(2.0)), dict(exp_avg_sq_tfm=M.Mul(4.0)), dict(pow=3)]),
    ("Adan", {}, [dict(beta1=0.5), dict(beta2=0.5), dict(beta3=0.5), dict(eps=0.5), dict(m_tfm=M.Mul(2.0)),
                  dict(v_tfm=M.Mul(2.0)), dict(n_tfm=M.Mul(2.0))]),
    ("Lion", {}, [dict(beta1=0.0), dict(beta2=0.5)]),
    ("Rprop", {}, [dict(nplus=2.0), dict(nminus=0.1), dict(lb=0.5), dict(ub=0.5), dict(backtrack=False), dict(alpha=0.5)]),
    ("MARSCorrection", {}, [dict(beta=0.5), dict(scaling=1.0), dict(max_norm=None)]),
    ("OrthoGrad", {}, [dict(eps=10.0), dict(renormalize=False)]),
    ("AEGD", {}, [dict(lr=0.01), dict(c=10.0)]),
    ("ScaleLRBySignChange", {}, [dict(nplus=2.0), dict(nminus=0.1), dict(lb=0.9), dict(ub=1.1), dict(alpha=0.5), dict(use_grad=True)]),
    ("SignConsistencyLRs", {}, [dict(nplus=2.0), dict(nminus=0.1), dict(lb=0.9), dict(ub=1.1), dict(alpha=0.5)]),
    ("BacktrackOnSignChange", {}, [dict(backtrack=False), dict(use_grad=True)]),
])
def test_each_option_changes_the_trajectory(name, base, variants):
    cls = getattr(M, name)
    wrap = (lambda m: M.Mul(m)) if name == "SignConsistencyLRs" else (lambda m: m)
    sign_based = name in ("BacktrackOnSignChange", "ScaleLRBySignChange", "SignConsistencyLRs")
    tail = [] if name == "AEGD" else [M.LR(0.2 if sign_based else 0.05)]
    head = [M.HeavyBall(0.9)] if sign_based else []  # oscillates, so that signs change
    ref = trajectory(lambda ps: tz.Optimizer(ps, *head, wrap(cls(**base)), *tail), steps=8)
    for kw in variants:
        got = trajectory(lambda ps: tz.Optimizer(ps, *head, wrap(cls(**base, **kw)), *tail), steps=8)
        assert differs(ref, got), f"{name}({kw}) did not change the trajectory"


# ---------------------------------------------------------------------------- formulas / seed statements
def test_adagrad_pow_and_use_sqrt():
    g = [[1.0, -2.0], [3.0, 0.5]]
    out = feed([M.Adagrad(pow=3, eps=0.0)], g)
    acc = [abs(1.0) ** 3 + 27, 8 + 0.125]
    assert out[1] == pytest.approx([3 / acc[0] ** (1 / 3), 0.5 / acc[1] ** (1 / 3)])
    out = feed([M.Adagrad(use_sqrt=False, eps=0.0)], g)
    assert out[1] == pytest.approx([3 / 10, 0.5 / 4.25])


def test_adagradnorm_global_accumulator():
    """layerwise=False (broken in the reference): one accumulator of the norm of all parameters."""
    a = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([3.0], dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([a, b], M.AdagradNorm(layerwise=False, eps=0.0))
    a.grad = torch.tensor([1.0, 2.0], dtype=torch.float64)
    b.grad = torch.tensor([2.0], dtype=torch.float64)
    opt.step()
    assert a.tolist() == pytest.approx([1 - 1 / 3, 2 - 2 / 3]) and b.tolist() == pytest.approx([3 - 2 / 3])
    a.grad = torch.tensor([0.0, 4.0], dtype=torch.float64)
    b.grad = torch.tensor([0.0], dtype=torch.float64)
    opt.step()
    assert a.tolist() == pytest.approx([2 / 3, 4 / 3 - 4 / 5])


def test_adagradnorm_ema_debiased():
    out = feed([M.AdagradNorm(beta=0.5, eps=0.0)], [[1.0, 2.0], [0.5, 1.5]])
    assert out[0] == pytest.approx([1 / 5 ** 0.5, 2 / 5 ** 0.5])
    assert out[1] == pytest.approx([0.5 / (2.5 / 0.75) ** 0.5, 1.5 / (2.5 / 0.75) ** 0.5])


def test_rmsprop_amsgrad_divides_by_running_max():
    """amsgrad (a KeyError in the reference) divides by the largest mean square so far."""
    g = [[4.0], [0.0], [1.0]]
    out = feed([M.RMSprop(smoothing=0.5, eps=0.0, amsgrad=True)], g)
    v = [8.0, 4.0, 2.5]
    assert out[2] == pytest.approx([1 / math.sqrt(max(v))])


def test_rmsprop_centered_debias_is_finite():
    """The reference turns to NaN here (zero variance on the first step); ours debiases v - m^2."""
    out = feed([M.RMSprop(smoothing=0.9, eps=0.0, centered=True, debias=True)], [[2.0], [1.0]])
    v1, m1 = 0.1 * 4, 0.1 * 2
    assert out[0] == pytest.approx([2 / math.sqrt((v1 - m1 ** 2) / 0.1)])
    assert all(math.isfinite(u[0]) for u in out)


def test_rmsprop_init_update():
    out = feed([M.RMSprop(init="update", eps=0.0)], [[2.0, -3.0]])
    assert out[0] == pytest.approx([1.0, -1.0])


def test_rprop_unbounded_and_backtrack():
    """lb/ub may be None (a crash in the reference); backtrack undoes the previous step of a weight."""
    g = [[1.0]] * 30
    out = feed([M.Rprop(lb=None, ub=None)], g)
    assert out[-1][0] == pytest.approx(1.2 ** 29) and out[-1][0] > 50
    out = feed([M.Rprop()], [[1.0, -2.0], [2.0, 1.0], [-1.0, 1.0], [0.5, -1.0]])
    assert out == [pytest.approx(v) for v in ([1.0, -1.0], [1.2, 1.0], [-1.2, 0.5], [0.6, -0.5])]


def test_sign_consistency_mask_is_a_mask():
    """The reference returns its input unchanged; the seed says 0 where the sign changed, 1 elsewhere."""
    g = [[1.0, -2.0, 0.5], [2.0, 1.0, 0.5], [-1.0, 1.0, 0.0]]
    out = feed([M.SignConsistencyMask()], g)
    assert out == [[1.0, 1.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
    # multiplying by it skips the weights whose gradient flipped
    out = feed([M.Mul(M.SignConsistencyMask())], g)
    assert out[1] == [2.0, 0.0, 0.5]


def test_sign_consistency_lrs_and_scale():
    g = [[1.0, -2.0, 0.5], [2.0, 1.0, 0.5], [-1.0, 1.0, 0.25]]
    lrs = feed([M.SignConsistencyLRs()], g)
    assert lrs == [pytest.approx(v) for v in ([1, 1, 1], [1.2, 0.5, 1.2], [0.6, 0.6, 1.44])]
    scaled = feed([M.ScaleLRBySignChange()], g)
    assert scaled == [pytest.approx([a * b for a, b in zip(x, y)]) for x, y in zip(lrs, g)]


def test_backtrack_on_sign_change_undoes():
    """backtrack=True moves a flipped weight back by its previous step (the reference repeats it instead)."""
    g = [[1.0, -2.0], [2.0, 1.0], [-1.0, 1.0]]
    out = feed([M.BacktrackOnSignChange()], g)
    assert out[1] == [2.0, 2.0]     # weight 1 flipped: undo its previous update (-2)
    assert out[2] == [-2.0, 1.0]    # weight 0 flipped: undo its previous update (2); weight 1 has no memory
    out = feed([M.BacktrackOnSignChange(backtrack=False)], g)
    assert out[1] == [2.0, 0.0] and out[2] == [0.0, 1.0]


def test_lion_update_is_sign():
    out = feed([M.Lion(), M.LR(0.1)], [[3.0, -0.01, 0.0], [-1.0, 1.0, 2.0]])
    assert out[0] == pytest.approx([0.1, -0.1, 0.0])
    # second step: sign(0.9 m + 0.1 g) with m = 0.01 g0
    m = [0.03, -0.0001, 0.0]
    exp = [0.1 * math.copysign(1, 0.9 * mi + 0.1 * gi) for mi, gi in zip(m, [-1.0, 1.0, 2.0])]
    assert out[1] == pytest.approx(exp)


def test_adan_first_step_and_formula():
    b1, b2, b3 = 0.5, 0.7, 0.9
    out = feed([M.Adan(b1, b2, b3, eps=0.0)], [[2.0], [1.0]])
    assert out[0] == pytest.approx([1.0])  # m / bc1 = g, v = 0, sqrt(n / bc3) = |g|
    m = b1 * (1 - b1) * 2 + (1 - b1) * 1
    v = (1 - b2) * (1 - 2)
    n = b3 * (1 - b3) * 4 + (1 - b3) * (1 + b2 * (1 - 2)) ** 2
    exp = (m / (1 - b1 ** 2) + b2 * v / (1 - b2 ** 2)) / math.sqrt(n / (1 - b3 ** 2))
    assert out[1] == pytest.approx([exp])


def test_aegd_energy_decreases():
    params = make_params()
    opt = tz.Optimizer(params, M.AEGD(lr=0.2))
    energies = []
    for _ in range(10):
        def closure(backward=True):
            loss = loss_fn(params)
            if backward:
                opt.zero_grad()
                loss.backward()
            return loss
        opt.step(closure)
        energies.append(torch.cat([opt.modules[0].state[p]["r"].reshape(-1) for p in params]))
    for a, b in zip(energies, energies[1:]):
        assert (b <= a).all()


def test_aegd_needs_loss():
    x = torch.ones(2, requires_grad=True)
    opt = tz.Optimizer([x], M.AEGD())
    x.grad = torch.ones(2)
    with pytest.raises(RuntimeError, match="closure"):
        opt.step()


def test_adaptive_heavyball_solves_quadratic_in_n_steps():
    """With the exact f*, the method is conjugate gradient on a quadratic: n steps for n variables."""
    g = torch.Generator().manual_seed(1)
    n = 6
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    A = q @ torch.diag(torch.linspace(1, 20, n, dtype=torch.float64)) @ q.T
    b = torch.randn(n, generator=g, dtype=torch.float64)
    xs = torch.linalg.solve(A, b)
    f_star = float(0.5 * xs @ A @ xs - b @ xs)
    x = torch.zeros(n, dtype=torch.float64, requires_grad=True)
    opt = tz.Optimizer([x], M.AdaptiveHeavyBall(f_star=f_star))

    def closure(backward=True):
        loss = 0.5 * x @ A @ x - b @ x
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    for _ in range(n):
        opt.step(closure)
    assert torch.allclose(x.detach(), xs, atol=1e-6)


def test_orthograd_projects_out_the_weights():
    a = torch.tensor([1.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    w = torch.cat([a.detach(), b.detach().reshape(-1)])
    g = [torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64), torch.tensor([[2.0, 1.0]], dtype=torch.float64)]
    gv = torch.cat([t.reshape(-1) for t in g])
    for renorm in (True, False):
        x, y = a.detach().clone().requires_grad_(True), b.detach().clone().requires_grad_(True)
        opt = tz.Optimizer([x, y], M.OrthoGrad(renormalize=renorm, eps=0.0))
        x.grad, y.grad = g[0].clone(), g[1].clone()
        opt.step()
        upd = w - torch.cat([x.detach(), y.detach().reshape(-1)])
        assert abs(float(upd @ w)) < 1e-12
        if renorm:
            assert float(upd.norm()) == pytest.approx(float(gv.norm()))


def test_mars_correction_formula_and_clip():
    beta, gamma = 0.5, 1.0
    out = feed([M.MARSCorrection(beta=beta, scaling=gamma, max_norm=None)], [[1.0, 2.0], [0.5, 1.5]])
    assert out[0] == [1.0, 2.0]
    assert out[1] == pytest.approx([0.5 + gamma * beta / (1 - beta) * (0.5 - 1.0), 1.5 + gamma * beta / (1 - beta) * (1.5 - 2.0)])
    out = feed([M.MARSCorrection(max_norm=1.0)], [[3.0, 4.0]])
    assert out[0] == pytest.approx([0.6, 0.8])


def test_bad_arguments():
    with pytest.raises(ValueError, match="init"):
        M.RMSprop(init="ones")
