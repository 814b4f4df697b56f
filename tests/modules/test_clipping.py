"""clipping/: ClipValue, ClipNorm, Normalize, Centralize, the EMA and growth clipping (issue 7)."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from module_updates import updates, once

DT = torch.float64


def rand(*shapes, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=DT) * scale for s in shapes]


# ----------------------------------------------------------------------------- torch parity
def test_clipnorm_global_is_clip_grad_norm() -> None:
    for max_norm in (0.5, 100.0):
        gs = rand((3, 4), (5,), (), scale=3.0)
        ref = [g.clone() for g in gs]
        ps = [torch.zeros_like(g, requires_grad=True) for g in gs]
        for p, g in zip(ps, ref):
            p.grad = g
        torch.nn.utils.clip_grad_norm_(ps, max_norm)
        got = once([tz.m.ClipNorm(max_norm, dim="global")], gs)
        for a, p in zip(got, ps):
            assert torch.allclose(a, p.grad, rtol=1e-5, atol=0)


def test_clipvalue_is_clip_grad_value() -> None:
    gs = rand((3, 4), (5,), (), scale=2.0)
    ps = [torch.zeros_like(g, requires_grad=True) for g in gs]
    for p, g in zip(ps, gs):
        p.grad = g.clone()
    torch.nn.utils.clip_grad_value_(ps, 0.7)
    for a, p in zip(once([tz.m.ClipValue(0.7)], gs), ps):
        assert torch.equal(a, p.grad)


# ----------------------------------------------------------------------------- ords and dims
@pytest.mark.parametrize("ord", [1, 2, 3.5, 0.5, math.inf, "l1", "l2", "l3", "l4", "linf"])
def test_normalize_each_p_norm(ord) -> None:
    x, y = rand((3, 4), (6,), seed=1)
    p = {"l1": 1, "l2": 2, "l3": 3, "l4": 4, "linf": math.inf}.get(ord, ord)
    for t in once([tz.m.Normalize(2.0, ord=ord)], [x, y]):
        assert float(torch.linalg.vector_norm(t, p)) == pytest.approx(2.0)


def test_normalize_statistics_ords() -> None:
    x = torch.tensor([3.0, -4.0, 0.0, 1.0, -2.0], dtype=DT)
    assert torch.allclose(once([tz.m.Normalize(1.0, ord="mad")], [x])[0], x / 2.0)
    assert torch.allclose(once([tz.m.Normalize(1.0, ord="std")], [x])[0], x / x.std())
    assert torch.allclose(once([tz.m.Normalize(1.0, ord="var")], [x])[0], x / x.var())
    assert torch.allclose(once([tz.m.Normalize(1.0, ord="l0")], [x])[0], x / 4.0)
    assert torch.allclose(once([tz.m.Normalize(1.0, ord=0)], [x])[0], x / 4.0)
    pos = x.abs() + 0.5
    assert torch.allclose(once([tz.m.Normalize(1.0, ord="sum")], [pos])[0], pos / pos.sum())
    # a non-positive "norm" (negative sum) or a zero tensor leaves the update as it is
    assert torch.equal(once([tz.m.Normalize(1.0, ord="sum")], [x])[0], x)
    z = torch.zeros(3, dtype=DT)
    assert torch.equal(once([tz.m.Normalize(1.0)], [z])[0], z)


def test_global_ords_over_all_parameters() -> None:
    gs = rand((3, 4), (5,), (), seed=2)
    flat = torch.cat([g.reshape(-1) for g in gs])
    for ord, val in [(2, flat.norm()), (1, flat.abs().sum()), ("linf", flat.abs().max()), (-math.inf, flat.abs().min()),
                     ("l0", float((flat != 0).sum())), ("mad", flat.abs().mean()), ("std", flat.std()), ("var", flat.var())]:
        out = once([tz.m.Normalize(1.0, ord=ord, dim="global")], gs)
        for o, g in zip(out, gs):
            assert torch.allclose(o, g / val), ord


def test_global_negative_sum_leaves_update() -> None:
    # the reference multiplies by max_norm / sum < 0 here and flips the update
    gs = [torch.tensor([1.0, -5.0, 1.0], dtype=DT), torch.tensor([0.5, 0.5], dtype=DT)]
    out = once([tz.m.ClipNorm(1.0, ord="sum", dim="global")], gs)
    assert all(torch.equal(o, g) for o, g in zip(out, gs))


def test_clipnorm_clips_only_above_max_norm() -> None:
    small, big = torch.tensor([0.3, 0.4], dtype=DT), torch.tensor([3.0, 4.0], dtype=DT)
    a, b = once([tz.m.ClipNorm(1.0)], [small, big])
    assert torch.equal(a, small)
    assert torch.allclose(b, big / 5.0)


def test_dim_none_takes_each_parameter_whole() -> None:
    # the reference reduces over the dims of the first parameter for all of them (here: a matrix
    # after a vector would be clipped column by column)
    v = torch.tensor([1.0, 2.0, 2.0], dtype=DT)
    A = torch.tensor([[3.0, 4.0, 1.0, 2.0], [0.0, 1.0, -2.0, 2.0], [4.0, -3.0, 2.0, 1.0]], dtype=DT)
    ov, oA = once([tz.m.Normalize(1.0)], [v, A])
    assert torch.allclose(ov, v / 3.0)
    assert torch.allclose(oA, A / A.norm())


def test_dims_int_sequence_negative_inverse_and_min_size() -> None:
    A = torch.tensor([[3.0, 4.0, 1.0, 2.0], [0.0, 1.0, -2.0, 2.0], [4.0, -3.0, 2.0, 1.0]], dtype=DT)
    T = torch.arange(24, dtype=DT).reshape(2, 3, 4) - 10
    v = torch.tensor([1.0, 2.0, 2.0], dtype=DT)
    s = torch.tensor(5.0, dtype=DT)

    def n(x, dims):
        return x / torch.linalg.vector_norm(x, dim=dims, keepdim=True)

    oA, oT, ov, os = once([tz.m.Normalize(1.0, dim=0)], [A, T, v, s])
    assert torch.allclose(oA, n(A, 0)) and torch.allclose(oT, n(T, 0)) and torch.allclose(ov, v / 3)
    assert float(os) == 1.0  # a scalar has dim 0 as in torch reductions
    oA, oT, ov, os = once([tz.m.Normalize(1.0, dim=1)], [A, T, v, s])
    assert torch.allclose(oA, n(A, 1)) and torch.allclose(oT, n(T, 1)) and torch.equal(ov, v) and torch.equal(os, s)
    oA, oT = once([tz.m.Normalize(1.0, dim=(0, 2))], [A, T])
    assert torch.allclose(oA, n(A, 0)) and torch.allclose(oT, n(T, (0, 2)))
    oA, oT = once([tz.m.Normalize(1.0, dim=-1)], [A, T])
    assert torch.allclose(oA, n(A, 1)) and torch.allclose(oT, n(T, 2))
    # inverse: every dimension but those named; -1 is wrapped first (all but the last)
    oA, oT, ov = once([tz.m.Normalize(1.0, dim=-1, inverse_dims=True)], [A, T, v])
    assert torch.allclose(oA, n(A, 0)) and torch.allclose(oT, n(T, (0, 1))) and torch.equal(ov, v)
    oA, oT = once([tz.m.Normalize(1.0, dim=0, inverse_dims=True)], [A, T])
    assert torch.allclose(oA, n(A, 1)) and torch.allclose(oT, n(T, (1, 2)))
    # min_size counts the elements of a slice (or of the parameter)
    oA, oT = once([tz.m.Normalize(1.0, dim=0, min_size=3)], [A, T])
    assert torch.allclose(oA, n(A, 0)) and torch.equal(oT, T)
    oA, oT, ov = once([tz.m.ClipNorm(0.1, min_size=13)], [A, T, v])
    assert torch.equal(oA, A) and torch.allclose(oT, T / T.norm() * 0.1) and torch.equal(ov, v)


def test_centralize() -> None:
    A, v = rand((3, 4), (5,), seed=3)
    one = torch.ones(1, dtype=DT)
    oA, ov, o1 = once([tz.m.Centralize()], [A, v, one])
    assert abs(float(oA.mean())) < 1e-12 and abs(float(ov.mean())) < 1e-12
    assert torch.equal(o1, one)  # fewer than min_size=2 elements
    # gradient centralization: each output unit (row) has zero mean
    (oA,) = once([tz.m.Centralize(dim=0, inverse_dims=True)], [A])
    assert torch.allclose(oA.mean(1), torch.zeros(3, dtype=DT), atol=1e-12)
    assert torch.allclose(oA, A - A.mean(1, keepdim=True))
    (oA,) = once([tz.m.Centralize(dim=0, min_size=4)], [A])
    assert torch.equal(oA, A)
    oA, ov = once([tz.m.Centralize(dim="global")], [A, v])
    mean = (A.sum() + v.sum()) / 17
    assert torch.allclose(oA, A - mean) and torch.allclose(ov, v - mean)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="ord"):
        tz.m.ClipNorm(1.0, ord="l5")
    with pytest.raises(TypeError, match="ord"):
        tz.m.Normalize(ord=None)
    with pytest.raises(ValueError, match="dim"):
        tz.m.ClipNorm(1.0, dim="all")
    with pytest.raises(TypeError, match="dim"):
        tz.m.Centralize(dim=1.5)


# ----------------------------------------------------------------------------- EMA clipping
def _norm_ema_reference(seq, beta, growth, init, min_norm, normalize, ord=2):
    m = torch.full_like(seq[0][0], init)
    prev = None
    outs = []
    for (u,) in seq:
        m = beta * m + (1 - beta) * u
        n = torch.linalg.vector_norm(m, ord)
        if growth is not None and prev is not None:
            cap = max(prev * growth, min_norm)
            if n > cap:
                m = m * cap / n
                n = torch.tensor(cap, dtype=DT)
        prev = float(n)
        un = torch.linalg.vector_norm(u, ord)
        f = n / un if (normalize and un > 0) or (not normalize and un > n) else 1.0
        outs.append(u * f)
    return outs


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("growth, init, min_norm", [(None, 0.0, 1e-6), (1.5, 0.0, 1e-6), (1.2, 1.0, 0.5)])
def test_clip_norm_by_ema_formula(normalize, growth, init, min_norm) -> None:
    scales = [1, 10, 0.01, 100, 1, 1, 30]
    seq = [[t * s] for t, s in zip(rand(*[(4,)] * 7, seed=4), scales)]
    cls = tz.m.NormalizeByEMA if normalize else tz.m.ClipNormByEMA
    got = updates([cls(0.5, max_ema_growth=growth, init=init, min_norm=min_norm)], seq)
    exp = _norm_ema_reference(seq, 0.5, growth, init, min_norm, normalize)
    for (g,), e in zip(got, exp):
        assert torch.allclose(g, e)


def test_ema_clipping_string_ords_and_tensorwise() -> None:
    # the reference raises TypeError for every string ord
    seq = [[t] for t in rand((4,), (4,), (4,), seed=5)]
    got = updates([tz.m.NormalizeByEMA(0.5, ord="l1", max_ema_growth=None)], seq)
    exp = _norm_ema_reference(seq, 0.5, None, 0.0, 1e-6, True, ord=1)
    assert all(torch.allclose(g[0], e) for g, e in zip(got, exp))
    updates([tz.m.ClipNormByEMA(ord="mad"), tz.m.LR(1.0)], seq)
    # tensorwise=False: the norms of all parameters together
    a, b = rand((3,), (2,), seed=6)
    oa, ob = once([tz.m.NormalizeByEMA(0.5, tensorwise=False)], [a, b])
    f = 0.5  # the EMA after one step is 0.5 * u
    assert torch.allclose(oa, a * f) and torch.allclose(ob, b * f)


def test_clip_norm_by_ema_inner_gets_factor_from_input() -> None:
    seq = [[t * s] for t, s in zip(rand((3,), (3,), (3,), seed=7), (1.0, 10.0, 1.0))]
    got = updates([tz.m.ClipNormByEMA(0.5, max_ema_growth=None, inner=tz.m.LR(2.0))], seq)
    plain = updates([tz.m.ClipNormByEMA(0.5, max_ema_growth=None)], seq)
    assert all(torch.allclose(g[0], 2 * p[0]) for g, p in zip(got, plain))


def test_clip_value_by_ema() -> None:
    seq = [[t] for t in rand((5,), (5,), (5,), (5,), seed=8, scale=3.0)]
    for init in (0.0, 1.0, 0.5):
        got = updates([tz.m.ClipValueByEMA(0.6, init=init)], seq)
        a = init * seq[0][0].abs()
        for (u,), (g,) in zip(seq, got):
            a = 0.6 * a + 0.4 * u.abs()
            assert torch.allclose(g, torch.maximum(torch.minimum(u, a), -a))
    got = updates([tz.m.ClipValueByEMA(0.6, exp_avg_tfm=tz.m.LR(2.0))], seq)
    a = torch.zeros(5, dtype=DT)
    for (u,), (g,) in zip(seq, got):
        a = 0.6 * a + 0.4 * u.abs()
        assert torch.allclose(g, torch.maximum(torch.minimum(u, 2 * a), -2 * a))


# ----------------------------------------------------------------------------- growth clipping
def _growth(mags, add, mul, min_value, max_decay):
    r, out = None, []
    for m in mags:
        if r is None:
            out.append(m)
            r = m
            continue
        bounds = []
        if mul is not None:
            bounds.append(max(r, min_value if min_value is not None else 0.0) * mul)
        if add is not None:
            bounds.append(r + add)
        passed = min([m] + bounds)
        out.append(passed)
        r = passed if max_decay is None else max(passed, r / max_decay)
    return out


NORMS = [5, 50, 0.05, 500, 1, 5, 5, 20, 8, 100, 1e-6, 3]


@pytest.mark.parametrize("kw", [dict(), dict(max_decay=None), dict(min_value=None, max_decay=None), dict(add=1.0, mul=None),
                                dict(add=1.0, mul=2.0, max_decay=1.2), dict(min_value=3.0, max_decay=None), dict(min_value=10.0, mul=2.0)])
def test_clip_norm_growth(kw) -> None:
    # min_value > 1: the reference divides every unclipped update by min_value
    seq = [[torch.tensor([0.6 * n, -0.8 * n], dtype=DT)] for n in NORMS]
    got = [float(u[0].norm()) for u in updates([tz.m.ClipNormGrowth(**kw)], seq)]
    full = dict(add=None, mul=1.5, min_value=1e-4, max_decay=2) | kw
    assert got == pytest.approx(_growth(NORMS, **full), rel=1e-12)
    # the direction is kept
    for u, (g,) in zip(updates([tz.m.ClipNormGrowth(**kw)], seq), seq):
        assert torch.allclose(u[0] / u[0].norm(), g / g.norm())


def test_clip_norm_growth_tensorwise_false_and_ord() -> None:
    seq = [[torch.tensor([3.0, 4.0], dtype=DT) * s, torch.tensor([12.0], dtype=DT) * s] for s in (1.0, 10.0)]
    _, (a, b) = updates([tz.m.ClipNormGrowth(tensorwise=False)], seq)
    assert float(torch.cat([a, b]).norm()) == pytest.approx(13 * 1.5)
    _, (a, b) = updates([tz.m.ClipNormGrowth(ord=1)], seq)
    assert float(a.abs().sum()) == pytest.approx(7 * 1.5) and float(b.abs().sum()) == pytest.approx(12 * 1.5)


@pytest.mark.parametrize("kw", [dict(), dict(max_decay=None), dict(add=0.2, mul=None), dict(add=0.2, mul=1.3, min_value=0.5, max_decay=1.5),
                                dict(min_value=3.0, max_decay=1.5)])
def test_clip_value_growth(kw) -> None:
    # with add, min_value and max_decay together the reference lets min_value change the additive limit
    vals = [1.0, -0.2, 0.1, 0.05, -0.3, 0.9, 0.02, 0.01, 0.6, -0.6, 0.6, 5.0]
    seq = [[torch.tensor([v, -2 * v, 0.0], dtype=DT)] for v in vals]
    got = updates([tz.m.ClipValueGrowth(**kw)], seq)
    full = dict(add=None, mul=1.5, min_value=1e-4, max_decay=2) | kw
    for j, k in enumerate((1.0, -2.0, 0.0)):
        mags = _growth([abs(v * k) for v in vals], **full)
        for u, v, m in zip(got, vals, mags):
            assert float(u[0][j]) == pytest.approx(math.copysign(m, v * k) if m else 0.0, rel=1e-12, abs=1e-15)
