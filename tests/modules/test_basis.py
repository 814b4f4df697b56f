"""basis/: SOAPBasis (optimizers run in the eigenbases of Shampoo's Kronecker factors)."""
from __future__ import annotations

import pytest
import torch

import torchzero as tz
from module_updates import updates

DT = torch.float64


def rand_seq(shapes, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=DT) for s in shapes] for _ in range(n)]


def maxdiff(a, b, start=0):
    return max(float((x - y).abs().max()) for sa, sb in zip(a[start:], b[start:]) for x, y in zip(sa, sb))


SHAPES = [(4, 3), (5,), (2, 1, 3), ()]


@pytest.mark.parametrize("merge_small", [False, True])
def test_adam_in_basis_is_soap(merge_small):
    """SOAP is Adam in the eigenbases: without debiasing (whose step counts differ: SOAP counts its
    first, clipped step) the two agree exactly, basis refreshes included."""
    seq = rand_seq(SHAPES, 8)
    a = updates([tz.m.SOAPBasis(tz.m.Adam(0.9, 0.99, debias=False), precond_freq=2, merge_small=merge_small), tz.m.LR(1.0)], seq)
    b = updates([tz.m.SOAP(0.9, 0.99, precond_freq=2, merge_small=merge_small, debias=False), tz.m.LR(1.0)], seq)
    assert maxdiff(a, b) < 1e-12


def test_first_step_is_clipped():
    seq = rand_seq([(4, 3)], 1)
    (u,), = updates([tz.m.SOAPBasis(tz.m.Mul(100.0), inner=tz.m.Mul(100.0)), tz.m.LR(1.0)], seq)
    assert torch.allclose(u, seq[0][0].clamp(-0.1, 0.1))


def test_identity_in_basis_returns_the_update():
    seq = rand_seq(SHAPES, 6)
    out = updates([tz.m.SOAPBasis(tz.m.Mul(1.0), precond_freq=1), tz.m.LR(1.0)], seq)
    assert maxdiff(out, seq, start=1) < 1e-5


def test_momentum_is_rotated_with_the_basis():
    """EMA is linear, so EMA in any basis, rotated back, is EMA -- only if its buffer follows the
    basis when it is refreshed (``m <- Q_new^T Q_old m``)."""
    seq = rand_seq(SHAPES, 9, seed=4)
    a = updates([tz.m.SOAPBasis(tz.m.EMA(0.8), precond_freq=1), tz.m.LR(1.0)], seq)
    b = updates([tz.m.EMA(0.8), tz.m.LR(1.0)], seq[1:])
    assert maxdiff(a[1:], b) < 1e-5


def test_second_moments_stay_nonnegative():
    """Adagrad's accumulator of squares is re-ordered with the basis, not rotated (the reference
    rotates it, which makes it negative and the step NaN)."""
    seq = rand_seq([(4, 3), (5,)], 8, seed=2)
    sb = tz.m.SOAPBasis(tz.m.Adagrad(), precond_freq=1)
    ps = [torch.zeros_like(g).requires_grad_(True) for g in seq[0]]
    opt = tz.Optimizer(ps, sb, tz.m.LR(0.1))
    for gs in seq:
        for p, g in zip(ps, gs):
            p.grad = g.clone()
        opt.step()
    assert all(torch.isfinite(p).all() for p in ps)
    ada = sb.children["basis_opt"]
    assert all(bool((st["accumulator"] >= 0).all()) for st in ada.state.values())


def test_state_dict_round_trip_keeps_reprojection():
    seq = rand_seq([(4, 3)], 8, seed=6)
    build = lambda: [tz.m.SOAPBasis(tz.m.Adam(0.9, 0.95), precond_freq=1), tz.m.LR(0.1)]
    p1 = torch.zeros(4, 3, dtype=DT, requires_grad=True)
    o1 = tz.Optimizer([p1], *build())
    for (g,) in seq:
        p1.grad = g.clone()
        o1.step()
    p2 = torch.zeros(4, 3, dtype=DT, requires_grad=True)
    o2 = tz.Optimizer([p2], *build())
    for (g,) in seq[:4]:
        p2.grad = g.clone()
        o2.step()
    sd = o2.state_dict()
    p3 = p2.detach().clone().requires_grad_(True)
    o3 = tz.Optimizer([p3], *build())
    o3.load_state_dict(sd)
    for (g,) in seq[4:]:
        p3.grad = g.clone()
        o3.step()
    assert torch.allclose(p1, p3, atol=1e-12)


def test_converges_on_ill_conditioned_matrix_problem():
    gen = torch.Generator().manual_seed(0)
    A = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=DT)).Q @ torch.diag(torch.tensor([10.0, 3.0, 1.0, 0.3], dtype=DT))
    B = torch.diag(torch.tensor([5.0, 1.0, 0.2], dtype=DT)) @ torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=DT)).Q
    C = torch.randn(4, 3, generator=gen, dtype=DT)
    W = torch.zeros(4, 3, dtype=DT, requires_grad=True)
    f = lambda: 0.5 * ((A @ W @ B - C) ** 2).sum()
    opt = tz.Optimizer([W], tz.m.SOAPBasis(tz.m.Adam(0.9, 0.95), precond_freq=5, merge_small=False), tz.m.LR(0.05))
    f0 = float(f().detach())
    for _ in range(300):
        opt.zero_grad()
        f().backward()
        opt.step()
    assert float(f().detach()) < 1e-3 * f0


OPTIONS = [dict(shampoo_beta=0.5), dict(shampoo_beta=None), dict(precond_freq=1), dict(merge_small=False),
           dict(max_dim=3), dict(precondition_1d=False), dict(inner=tz.m.EMA(0.5))]


@pytest.mark.parametrize("kw", OPTIONS, ids=lambda kw: ",".join(kw))
def test_each_option_changes_the_update(kw):
    seq = rand_seq([(4, 3), (5,)], 6, seed=1)
    base = updates([tz.m.SOAPBasis(tz.m.Adam(0.9, 0.95), precond_freq=2), tz.m.LR(1.0)], seq)
    kw = dict(kw)
    if "inner" in kw:
        kw["inner"] = tz.m.EMA(0.5)
    changed = updates([tz.m.SOAPBasis(tz.m.Adam(0.9, 0.95), **{"precond_freq": 2, **kw}), tz.m.LR(1.0)], seq)
    assert maxdiff(base, changed, start=1) > 1e-4


def test_gradient_is_projected_for_the_basis_optimizer():
    """Cautious compares the update with the gradient: inside the basis both are projected, so
    with the gradient as the update nothing is masked and the step is the identity's."""
    seq = rand_seq([(4, 3)], 5, seed=3)
    a = updates([tz.m.SOAPBasis(tz.m.Cautious(), precond_freq=1), tz.m.LR(1.0)], seq)
    b = updates([tz.m.SOAPBasis(tz.m.Mul(1.0), precond_freq=1), tz.m.LR(1.0)], seq)
    assert maxdiff(a, b) < 1e-6


def test_bad_arguments():
    with pytest.raises(ValueError, match="precond_freq"):
        tz.m.SOAPBasis(tz.m.Adam(), precond_freq=0)
    with pytest.raises(ValueError, match="max_dim"):
        tz.m.SOAPBasis(tz.m.Adam(), max_dim=0)


# -- GGTBasis ---------------------------------------------------------------------------------


def test_ggt_identity_returns_updates_in_the_window():
    seq = rand_seq([(2,), (1,)], 6, seed=7)
    out = updates([tz.m.GGTBasis(tz.m.Mul(1.0), damping=1e-14), tz.m.LR(1.0)], seq)
    assert maxdiff(out, seq) < 1e-6


def test_ggt_momentum_follows_the_basis_as_its_rank_grows():
    """With every update in the window the basis spans all past updates, so EMA in the basis is
    EMA -- only if its buffer is mapped by ``U_new^T U_old`` at each change (and rank change)."""
    seq = rand_seq([(2,), (1,)], 6, seed=8)
    a = updates([tz.m.GGTBasis(tz.m.EMA(0.7), damping=1e-14), tz.m.LR(1.0)], seq)
    b = updates([tz.m.EMA(0.7), tz.m.LR(1.0)], seq)
    assert maxdiff(a, b) < 1e-6


def test_ggt_second_moments_stay_nonnegative():
    seq = rand_seq([(4, 3)], 8, seed=2)
    gb = tz.m.GGTBasis(tz.m.Adagrad(), history_size=3)
    p = torch.zeros(4, 3, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([p], gb, tz.m.LR(0.1))
    for (g,) in seq:
        p.grad = g.clone()
        opt.step()
    assert torch.isfinite(p).all()
    ada = gb.children["basis_opt"]
    assert all(bool((st["accumulator"] >= 0).all()) for st in ada.state.values())


GGT_OPTIONS = [dict(history_size=2), dict(update_freq=3), dict(truncate=1), dict(damping=1.0), dict(matrix_power=-1.0),
               dict(eig_tol=0.5), dict(inner=tz.m.EMA(0.5))]


@pytest.mark.parametrize("kw", GGT_OPTIONS, ids=lambda kw: ",".join(kw))
def test_ggt_each_option_changes_the_update(kw):
    seq = rand_seq([(4, 3), (5,)], 6, seed=1)
    base = updates([tz.m.GGTBasis(tz.m.Adam(0.9, 0.95)), tz.m.LR(1.0)], seq)
    kw = dict(kw)
    if "inner" in kw:
        kw["inner"] = tz.m.EMA(0.5)
    changed = updates([tz.m.GGTBasis(tz.m.Adam(0.9, 0.95), **kw), tz.m.LR(1.0)], seq)
    assert maxdiff(base, changed, start=1) > 1e-4


def test_ggt_bad_arguments():
    with pytest.raises(ValueError, match="history_size"):
        tz.m.GGTBasis(tz.m.Adam(), history_size=0)
    with pytest.raises(ValueError, match="update_freq"):
        tz.m.GGTBasis(tz.m.Adam(), update_freq=0)
