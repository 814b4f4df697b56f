"""momentum/: EMA, HeavyBall, NAG, the averaging windows and the cautious family (issue 7)."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from module_updates import updates

DT = torch.float64


def grads_seq(n: int = 6, shapes=((4,), (2, 3))) -> list[list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [[torch.randn(s, generator=g, dtype=DT) for s in shapes] for _ in range(n)]


def close(a, b, **kw) -> bool:
    return all(torch.allclose(x, y, **kw) for x, y in zip(a, b))


def quad_problem():
    g = torch.Generator().manual_seed(3)
    A = torch.randn(6, 6, generator=g, dtype=DT)
    A = A @ A.T / 6 + torch.eye(6, dtype=DT) * 0.5
    b = torch.randn(6, generator=g, dtype=DT)
    return A, b


def run_torch_vs_tz(torch_opt_fn, tz_modules, steps: int = 15) -> None:
    A, b = quad_problem()
    x1 = torch.ones(6, dtype=DT, requires_grad=True)
    x2 = torch.ones(6, dtype=DT, requires_grad=True)
    o1 = torch_opt_fn([x1])
    o2 = tz.Optimizer([x2], *tz_modules)
    for _ in range(steps):
        for x, o in ((x1, o1), (x2, o2)):
            o.zero_grad()
            (0.5 * x @ A @ x - b @ x).backward()
            o.step()
    assert torch.allclose(x1, x2, rtol=1e-12, atol=1e-12), (x1, x2)


# ----------------------------------------------------------------------------- torch.optim parity
@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_heavyball_zeros_init_is_torch_sgd_momentum(momentum: float) -> None:
    run_torch_vs_tz(lambda p: torch.optim.SGD(p, lr=0.05, momentum=momentum),
                    [tz.m.HeavyBall(momentum, ema_init="zeros"), tz.m.LR(0.05)])


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_nag_is_torch_sgd_nesterov(momentum: float) -> None:
    run_torch_vs_tz(lambda p: torch.optim.SGD(p, lr=0.05, momentum=momentum, nesterov=True),
                    [tz.m.NAG(momentum), tz.m.LR(0.05)])


def test_heavyball_with_weight_decay_is_torch_sgd() -> None:
    run_torch_vs_tz(lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, weight_decay=0.1),
                    [tz.m.WeightDecay(0.1), tz.m.HeavyBall(0.9, ema_init="zeros"), tz.m.LR(0.05)])


def test_heavyball_dampening_after_first_step_follows_torch_recursion() -> None:
    # torch starts its buffer at g_1 (no dampening on the first step); HeavyBall's default
    # ema_init='update' starts at g_1 too and then applies the recursion to it.
    seq = grads_seq(4, shapes=((5,),))
    got = updates([tz.m.HeavyBall(0.9, dampening=0.3)], seq)
    m = seq[0][0].clone()
    for (g,), (u,) in zip(seq, got):
        m = 0.9 * m + 0.7 * g
        assert torch.allclose(u, m)


# ----------------------------------------------------------------------------- EMA formulas
def test_ema_formulas_and_options() -> None:
    seq = grads_seq(5, shapes=((3,),))
    for lerp in (True, False):
        for damp in (0.0, 0.4):
            for debias in (False, True):
                got = updates([tz.m.EMA(0.8, dampening=damp, debias=debias, lerp=lerp)], seq)
                m = torch.zeros(3, dtype=DT)
                for t, ((g,), (u,)) in enumerate(zip(seq, got), start=1):
                    m = 0.8 * m + (1 - damp) * (0.2 if lerp else 1.0) * g
                    exp = m / (1 - 0.8 ** t) if debias else m
                    assert torch.allclose(u, exp), (lerp, damp, debias, t)


def test_ema_init_update() -> None:
    seq = grads_seq(3, shapes=((3,),))
    (u1,), (u2,), _ = [u for u in updates([tz.m.EMA(0.5, ema_init="update")], seq)]
    assert torch.allclose(u1, seq[0][0])
    assert torch.allclose(u2, 0.5 * seq[0][0] + 0.5 * seq[1][0])
    with pytest.raises(ValueError, match="ema_init"):
        tz.m.EMA(ema_init="ones")


def test_ema_output_does_not_alias_state_for_inplace_followers() -> None:
    # LR (not last) multiplies the update in place: the EMA buffer must not be changed by it
    seq = grads_seq(3, shapes=((4,),))
    a = updates([tz.m.EMA(0.5), tz.m.LR(2.0), tz.m.LR(0.5)], seq)
    b = updates([tz.m.EMA(0.5)], seq)
    assert close([u for s in a for u in s], [u for s in b for u in s])


def test_nag_lerp_and_dampening() -> None:
    seq = grads_seq(4, shapes=((3,),))
    for lerp in (False, True):
        got = updates([tz.m.NAG(0.7, dampening=0.2, lerp=lerp)], seq)
        m = torch.zeros(3, dtype=DT)
        for (g,), (u,) in zip(seq, got):
            m = 0.7 * m + 0.8 * (0.3 if lerp else 1.0) * g
            assert torch.allclose(u, g + (m if lerp else 0.7 * m))


def test_momentum_speeds_up_gd_on_ill_conditioned_quadratic() -> None:
    def final_loss(mods):
        A, b = quad_problem()
        x = torch.zeros(6, dtype=DT, requires_grad=True)
        opt = tz.Optimizer([x], *mods)
        for _ in range(60):
            opt.zero_grad()
            loss = 0.5 * x @ A @ x - b @ x
            loss.backward()
            opt.step()
        return float((0.5 * x @ A @ x - b @ x).detach())
    opt_val = float(-0.5 * torch.linalg.solve(*quad_problem()) @ quad_problem()[1])
    gd = final_loss([tz.m.LR(0.1)]) - opt_val
    assert final_loss([tz.m.HeavyBall(0.8), tz.m.LR(0.1)]) - opt_val < gd
    assert final_loss([tz.m.NAG(0.8), tz.m.LR(0.1)]) - opt_val < gd


# ----------------------------------------------------------------------------- averaging
def test_averaging_is_window_mean() -> None:
    seq = grads_seq(7)
    got = updates([tz.m.Averaging(3)], seq)
    for t in range(len(seq)):
        win = seq[max(0, t - 2): t + 1]
        for i in range(2):
            assert torch.allclose(got[t][i], torch.stack([w[i] for w in win]).mean(0))


def test_averaging_running_sum_stays_exact_over_many_windows() -> None:
    seq = [[torch.full((2,), 1e6 * (-1) ** k, dtype=DT)] for k in range(20)] + [[torch.full((2,), 1e-3, dtype=DT)]] * 3
    got = updates([tz.m.Averaging(3)], seq)
    assert torch.allclose(got[-1][0], torch.full((2,), 1e-3, dtype=DT), rtol=1e-9, atol=0)


def test_median_averaging_odd_and_even() -> None:
    vals = [1.0, -4.0, 9.0, -16.0, 25.0]
    seq = [[torch.tensor([v], dtype=DT)] for v in vals]
    got = [float(u[0]) for u in updates([tz.m.MedianAveraging(4)], seq)]
    # windows: [1], [1,-4], [1,-4,9], [1,-4,9,-16], [-4,9,-16,25]
    assert got == pytest.approx([1.0, -1.5, 1.0, -1.5, 2.5])


def test_weighted_averaging_weights_newest_last() -> None:
    vals = [1.0, -4.0, 9.0, -16.0]
    seq = [[torch.tensor([v], dtype=DT)] for v in vals]
    got = [float(u[0]) for u in updates([tz.m.WeightedAveraging([1.0, 2.0, 3.0])], seq)]
    assert got == pytest.approx([3.0, (2 - 12) / 2, (1 - 8 + 27) / 3, (-4 + 18 - 48) / 3])
    same = updates([tz.m.WeightedAveraging(torch.ones(3, dtype=DT))], grads_seq(5))
    plain = updates([tz.m.Averaging(3)], grads_seq(5))
    assert close([u for s in same for u in s], [u for s in plain for u in s])


def test_weighted_averaging_per_group_weights() -> None:
    p1 = torch.zeros(2, dtype=DT, requires_grad=True)
    p2 = torch.zeros(2, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([{"params": [p1]}, {"params": [p2], "weights": (0.0, 1.0)}], tz.m.WeightedAveraging([1.0, 1.0]))
    for g in (1.0, 3.0):
        p1.grad = torch.full((2,), g, dtype=DT)
        p2.grad = torch.full((2,), g, dtype=DT)
        opt.step()
    assert torch.allclose(p1, torch.full((2,), -1.0 - 2.0, dtype=DT))  # means 1, then 2
    assert torch.allclose(p2, torch.full((2,), -1.0 - 1.5, dtype=DT))  # 1*1/1, then (0*1 + 1*3)/2


# ----------------------------------------------------------------------------- cautious
def _hb_then(mod, seq):
    return updates([tz.m.HeavyBall(0.9), mod], seq)


def test_cautious_modes() -> None:
    seq = grads_seq(4)
    hb = updates([tz.m.HeavyBall(0.9)], seq)
    for mode in ("zero", "grad", "backtrack"):
        got = _hb_then(tz.m.Cautious(mode=mode), seq)
        for gs, us, outs in zip(seq, hb, got):
            for g, u, o in zip(gs, us, outs):
                keep = u * g > 0
                other = {"zero": torch.zeros_like(u), "grad": g, "backtrack": -u}[mode]
                assert torch.equal(o, torch.where(keep, u, other))


def test_cautious_normalize_uses_global_fraction_and_eps() -> None:
    seq = grads_seq(3)
    hb = updates([tz.m.HeavyBall(0.9)], seq)
    for eps in (1e-6, 0.9):
        got = _hb_then(tz.m.Cautious(normalize=True, eps=eps), seq)
        for gs, us, outs in zip(seq, hb, got):
            masks = [(u * g > 0).to(DT) for u, g in zip(us, gs)]
            frac = max(float(sum(m.sum() for m in masks)) / sum(m.numel() for m in masks), eps)
            for u, m, o in zip(us, masks, outs):
                assert torch.allclose(o, u * m / frac)
    # normalize has no effect outside 'zero' mode
    a = _hb_then(tz.m.Cautious(mode="grad", normalize=True), seq)
    b = _hb_then(tz.m.Cautious(mode="grad"), seq)
    assert close([u for s in a for u in s], [u for s in b for u in s])
    with pytest.raises(ValueError, match="mode"):
        tz.m.Cautious(mode="nope")


def test_update_gradient_sign_consistency() -> None:
    seq = grads_seq(3)
    hb = updates([tz.m.HeavyBall(0.9)], seq)
    got = _hb_then(tz.m.UpdateGradientSignConsistency(), seq)
    normed = _hb_then(tz.m.UpdateGradientSignConsistency(normalize=True), seq)
    for gs, us, outs, nouts in zip(seq, hb, got, normed):
        masks = [(u * g > 0).to(DT) for u, g in zip(us, gs)]
        frac = float(sum(m.sum() for m in masks)) / sum(m.numel() for m in masks)
        for m, o, no in zip(masks, outs, nouts):
            assert torch.equal(o, m)
            assert torch.allclose(no, m / frac)


def test_scale_by_grad_cosine_similarity() -> None:
    seq = grads_seq(3)
    hb = updates([tz.m.HeavyBall(0.9)], seq)
    for eps in (1e-6, 50.0):
        got = _hb_then(tz.m.ScaleByGradCosineSimilarity(eps=eps), seq)
        for gs, us, outs in zip(seq, hb, got):
            u = torch.cat([x.reshape(-1) for x in us])
            g = torch.cat([x.reshape(-1) for x in gs])
            cos = (u @ g) / max(float(u.norm() * g.norm()), eps)
            assert close(outs, [x * cos for x in us])


def test_intermodule_cautious_and_cosine_scaling() -> None:
    seq = grads_seq(4)
    a = updates([tz.m.HeavyBall(0.9)], seq)
    b = updates([tz.m.EMA(0.5)], seq)
    for mode in ("zero", "grad", "backtrack"):
        got = updates([tz.m.IntermoduleCautious(tz.m.HeavyBall(0.9), tz.m.EMA(0.5), mode=mode)], seq)
        for xs, ys, outs in zip(a, b, got):
            for x, y, o in zip(xs, ys, outs):
                other = {"zero": torch.zeros_like(x), "grad": y, "backtrack": -x}[mode]
                assert torch.equal(o, torch.where(x * y > 0, x, other))
    got = updates([tz.m.ScaleModulesByCosineSimilarity(tz.m.HeavyBall(0.9), tz.m.EMA(0.5))], seq)
    for xs, ys, outs in zip(a, b, got):
        x = torch.cat([t.reshape(-1) for t in xs])
        y = torch.cat([t.reshape(-1) for t in ys])
        assert close(outs, [t * (x @ y) / (x.norm() * y.norm()) for t in xs])


def test_intermodule_children_do_not_see_each_other() -> None:
    # main negates the update in place; compare must still see the original: all signs disagree
    seq = grads_seq(2)
    got = updates([tz.m.IntermoduleCautious(tz.m.LR(-1.0), tz.m.LR(1.0))], seq)
    assert all(torch.count_nonzero(o) == 0 for s in got for o in s)
    got = updates([tz.m.IntermoduleCautious(tz.m.LR(-1.0), tz.m.LR(1.0), mode="grad")], seq)
    assert close([o for s in got for o in s], [g for s in seq for g in s])


def test_intermodule_cautious_with_closure_evaluates_once() -> None:
    x = torch.tensor([1.0, -2.0], dtype=DT, requires_grad=True)
    opt = tz.Optimizer([x], tz.m.IntermoduleCautious(tz.m.HeavyBall(), tz.m.EMA()), tz.m.LR(0.1))
    calls = []

    def closure(backward=True):
        calls.append(backward)
        loss = (x ** 2).sum()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    loss = opt.step(closure)
    assert len(calls) == 1 and float(loss.detach()) == 5.0
    assert torch.allclose(x.detach(), torch.tensor([1.0, -2.0], dtype=DT) * (1 - 0.1 * 2 * 1.9))
