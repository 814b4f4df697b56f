"""Accumulators, moments of the update, Adam's bias corrections and the EMA helpers."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import torchzero as tz

sys.path.insert(0, str(Path(__file__).parent))
from _ops_helpers import randn, run_steps  # noqa: E402

M = tz.m
G = [[t] for t in randn((6,), (6,), (6,), (6,), seed=31)]


def seq(fn):
    """Expected outputs for steps 1..T from a function of the gradients seen so far."""
    return [fn([g[0] for g in G[: t + 1]], t + 1) for t in range(len(G))]


def check(mods, expected):
    got = run_steps(mods, G)
    for i, (a, b) in enumerate(zip(got, expected)):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"step {i}")


@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_accumulators(decay):
    f = 1 - decay
    check([M.AccumulateSum(decay)], seq(lambda gs, t: f * sum(gs)))
    check([M.AccumulateMean(decay)], seq(lambda gs, t: f * sum(gs) / t))
    check([M.AccumulateMaximum(decay)], seq(lambda gs, t: f * torch.stack(gs + [torch.zeros(6, dtype=torch.float64)]).amax(0)))
    check([M.AccumulateMinimum(decay)], seq(lambda gs, t: f * torch.stack(gs + [torch.zeros(6, dtype=torch.float64)]).amin(0)))
    check([M.AccumulateProduct(decay)], seq(lambda gs, t: f * torch.stack(gs).prod(0)))


def test_accumulate_product_starts_at_one():
    """The reference (0.4.4) starts the product at zero, so it always outputs zero."""
    out = run_steps([M.AccumulateProduct()], [[torch.tensor([2.0, 3.0])], [torch.tensor([0.5, -1.0])]])
    torch.testing.assert_close(out[1], torch.tensor([1.0, -3.0]))
    with pytest.raises(ValueError, match="target"):
        M.AccumulateProduct(target="grad")


def ema(gs, beta, fn=lambda g: g):
    v = torch.zeros_like(gs[0])
    out = []
    for g in gs:
        v = beta * v + (1 - beta) * fn(g)
        out.append(v)
    return out


def test_ema_squared():
    check([M.EMASquared(0.8)], seq(lambda gs, t: ema(gs, 0.8, lambda g: g ** 2)[-1]))
    check([M.EMASquared(0.8, pow=3)], seq(lambda gs, t: ema(gs, 0.8, lambda g: g.abs() ** 3)[-1]))
    check([M.EMASquared(0.8, amsgrad=True)], seq(lambda gs, t: torch.stack(ema(gs, 0.8, lambda g: g ** 2)).amax(0)))


def test_sqrt_ema_squared():
    check([M.SqrtEMASquared(0.8)], seq(lambda gs, t: ema(gs, 0.8, lambda g: g ** 2)[-1].sqrt()))
    check([M.SqrtEMASquared(0.8, debiased=True)], seq(lambda gs, t: (ema(gs, 0.8, lambda g: g ** 2)[-1] / (1 - 0.8 ** t)).sqrt()))
    check([M.SqrtEMASquared(0.8, debiased=True, pow=3)],
          seq(lambda gs, t: (ema(gs, 0.8, lambda g: g.abs() ** 3)[-1] / (1 - 0.8 ** t)) ** (1 / 3)))
    check([M.SqrtEMASquared(0.8, amsgrad=True)], seq(lambda gs, t: torch.stack(ema(gs, 0.8, lambda g: g ** 2)).amax(0).sqrt()))


def centered(gs, beta):
    m, v = ema(gs, beta), ema(gs, beta, lambda g: g ** 2)
    return [b - a ** 2 for a, b in zip(m, v)]


def test_centered_ema_squared():
    check([M.CenteredEMASquared(0.7)], seq(lambda gs, t: centered(gs, 0.7)[-1]))
    check([M.CenteredSqrtEMASquared(0.7)], seq(lambda gs, t: centered(gs, 0.7)[-1].sqrt()))
    check([M.CenteredSqrtEMASquared(0.7, debiased=True)], seq(lambda gs, t: (centered(gs, 0.7)[-1] / (1 - 0.7 ** t)).sqrt()))


def test_centered_amsgrad_keeps_the_centering():
    """The reference (0.4.4) outputs the plain EMA of squares when amsgrad=True."""
    running_max = lambda gs, t: torch.stack(centered(gs, 0.7) + [torch.zeros(6, dtype=torch.float64)]).amax(0)
    check([M.CenteredEMASquared(0.7, amsgrad=True)], seq(running_max))
    check([M.CenteredSqrtEMASquared(0.7, amsgrad=True)], seq(lambda gs, t: running_max(gs, t).sqrt()))


def test_debias():
    check([M.Debias()], seq(lambda gs, t: gs[-1]))
    check([M.Debias(beta1=0.5, alpha=2.0)], seq(lambda gs, t: 2 * gs[-1] / (1 - 0.5 ** t)))
    check([M.Debias(beta2=0.5)], seq(lambda gs, t: gs[-1] * (1 - 0.5 ** t) ** 0.5))
    check([M.Debias(beta1=0.5, beta2=0.75, pow=3)], seq(lambda gs, t: gs[-1] * (1 - 0.75 ** t) ** (1 / 3) / (1 - 0.5 ** t)))
    check([M.Debias2(0.5)], seq(lambda gs, t: gs[-1] / (1 - 0.5 ** t) ** 0.5))
    check([M.Debias2(0.5, pow=3)], seq(lambda gs, t: gs[-1] / (1 - 0.5 ** t) ** (1 / 3)))


def test_betas_are_per_parameter_settings():
    g = [[torch.tensor([1.0]), torch.tensor([1.0])]]
    out = run_steps([M.Debias2(0.5)], g, groups=[dict(beta=0.75), dict()])
    torch.testing.assert_close(out[0], torch.tensor([1 / 0.25 ** 0.5, 1 / 0.5 ** 0.5]))
    out = run_steps([M.EMASquared(0.5, amsgrad=False)], g, groups=[dict(amsgrad=True, beta=0.9), dict()])
    torch.testing.assert_close(out[0], torch.tensor([0.1, 0.5]))


def test_ema_helpers_are_exported_and_registered():
    assert tz.m.EMA_SQ_FN is M.EMASquared.EMA_SQ_FN
    assert tz.m.SQRT_EMA_SQ_FN is M.SqrtEMASquared.SQRT_EMA_SQ_FN
    from torchzero.core.spec import decode, encode
    for fn in (tz.m.EMA_SQ_FN, tz.m.SQRT_EMA_SQ_FN):
        assert decode(encode(fn)) is fn


def test_ema_helpers_compute_the_moments():
    x = randn((3,), (2, 2), seed=32)
    v = [torch.zeros_like(t) for t in x]
    vmax = [torch.zeros_like(t) for t in x]
    out = tz.m.EMA_SQ_FN(x, v, 0.9, None)
    assert out[0] is v[0]
    torch.testing.assert_close(v[1], 0.1 * x[1] ** 2)
    out = tz.m.EMA_SQ_FN(x, v, [0.5, 0.9], vmax, pow=3)
    assert out[0] is vmax[0]
    torch.testing.assert_close(v[0], 0.5 * 0.1 * x[0] ** 2 + 0.5 * x[0].abs() ** 3)
    v = [torch.zeros_like(t) for t in x]
    r = tz.m.SQRT_EMA_SQ_FN(x, v, 0.9, None, debiased=True, step=1)
    for a, t in zip(r, x):
        torch.testing.assert_close(a, t.abs())
    r = tz.m.SQRT_EMA_SQ_FN(x, v, 0.9, None, debiased=False, step=2)
    torch.testing.assert_close(r[0], (0.19 * x[0] ** 2).sqrt())
