"""matrix_adaptive/: Orthogonalize (Muon), DualNormCorrection, MuonAdjustLR, Shampoo."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.matrix_adaptive._linalg import _minimax_odd_quintic, orthogonalize, polar_express_schedule
from module_updates import updates, once

DT = torch.float64


def rand(*shapes, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=DT) * scale for s in shapes]


def polar(A):
    U, _, Vh = torch.linalg.svd(A, full_matrices=False)
    return U @ Vh


def quadratic(n=6, cond=20.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=DT))
    A = q @ torch.diag(torch.logspace(0, math.log10(cond), n, dtype=DT)) @ q.T
    b = torch.randn(n, generator=g, dtype=DT)
    return A, b


def run_quadratic(modules, steps, shape=(6,)):
    n = math.prod(shape)
    A, b = quadratic(n)
    x = torch.zeros(shape, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([x], *modules)

    def loss_fn():
        v = x.reshape(-1)
        return 0.5 * v @ A @ v - b @ v

    def closure(backward=True):
        loss = loss_fn()
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    with torch.no_grad():
        start = float(loss_fn())
    for _ in range(steps):
        opt.step(closure)
    opt_val = float(-0.5 * b @ torch.linalg.solve(A, b))
    with torch.no_grad():
        end = float(loss_fn())
    return start, end, opt_val


# ----------------------------------------------------------------------------- orthogonalization
@pytest.mark.parametrize("shape", [(4, 3), (3, 7), (5, 4, 3), (6, 6)])
def test_orthogonalize_methods_give_orthogonal_factor(shape):
    A = rand(shape)[0]
    exact = polar(A)
    s = torch.linalg.svdvals(orthogonalize(A, "newtonschulz"))
    assert float((s - 1).abs().max()) < 0.05  # bfloat16, converged
    s5 = torch.linalg.svdvals(orthogonalize(A, "ns5"))
    assert 0.5 < float(s5.min()) and float(s5.max()) < 1.3  # Muon's five steps: a band around 1
    # the reference's eigh crashes on non-square matrices; ours is the polar factor for any shape
    for m in ("svd", "eigh", "polar_express"):
        assert torch.allclose(orthogonalize(A, m), exact, atol=1e-7), m
    Q = orthogonalize(A, "qr")
    k = min(A.shape[-2:])
    eye = torch.eye(k, dtype=DT)
    gram = Q.mT @ Q if A.shape[-2] >= A.shape[-1] else Q @ Q.mT
    assert torch.allclose(gram, eye.expand_as(gram), atol=1e-10)


def test_polar_express_schedule_reproduces_the_published_polynomials():
    """The greedy minimax construction gives the coefficients printed in arXiv:2505.16932 (their
    first, fourth and last polynomials for l = 1e-3, seven steps)."""
    pe = polar_express_schedule()
    assert len(pe) == 7
    published = {0: (8.28721201814563, -23.595886519098837, 17.300387312530933),
                 3: (3.3184196573706015, -2.488488024314874, 0.51004894012372),
                 6: (1.8750014808534479, -1.2500016453999487, 0.3750001645474248)}
    for i, coefs in published.items():
        assert pe[i] == pytest.approx(coefs, rel=1e-12 if i < 6 else 1e-9), i
    # each polynomial maps its interval symmetrically around 1, and the intervals shrink toward 1
    lo, hi = 1e-3, 1.0
    for a, b, c in pe:
        p = lambda x: a * x + b * x ** 3 + c * x ** 5  # noqa: E731
        assert p(lo) + p(hi) == pytest.approx(2.0, rel=1e-12)
        assert lo < p(lo) <= 1
        lo, hi = p(lo), 2 - p(lo)
    assert 1 - lo < 1e-6


def test_minimax_odd_quintic_equioscillates():
    lo, hi = 0.1, 1.0
    a, b, c = _minimax_odd_quintic(lo, hi)
    x = torch.linspace(lo, hi, 200001, dtype=torch.float64)
    err = 1 - (a * x + b * x ** 3 + c * x ** 5)
    E = float(err.abs().max())
    # the error reaches +E at both ends and -E in between, and nowhere more than E
    assert float(err[0]) == pytest.approx(E, rel=1e-9) and float(err[-1]) == pytest.approx(-E, rel=1e-9)
    assert float(err.min()) == pytest.approx(-E, rel=1e-6) and float(err.max()) == pytest.approx(E, rel=1e-6)
    assert _minimax_odd_quintic(1.0, 1.0) == (1.875, -1.25, 0.375)


def test_newton_schulz_keeps_dtype_and_handles_zero():
    A = torch.zeros(3, 4, dtype=torch.float32)
    out = orthogonalize(A, "newtonschulz")
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_orthogonalize_module_dims_and_skips():
    g = rand((3, 4, 2), (5,), (1, 3), (3, 1, 2))
    out = once([tz.m.Orthogonalize(method="svd")], g)
    exp0 = torch.stack([polar(g[0][:, :, i]) for i in range(2)], -1)
    assert torch.allclose(out[0], exp0, atol=1e-12)
    for i in (1, 2, 3):  # vectors and size-1 matrix dims pass through
        assert torch.equal(out[i], g[i])
    out = once([tz.m.Orthogonalize(method="svd", channel_first=False)], g)
    assert torch.allclose(out[0], torch.stack([polar(m) for m in g[0]]), atol=1e-12)
    assert torch.equal(out[3], g[3])  # last two dims (1, 2): a size-1 matrix dim


def test_orthogonalize_group_setting_disables():
    g = rand((3, 4), (4, 3))
    out = once([tz.m.Orthogonalize(method="svd")], g, groups=lambda ps: [{"params": [ps[0]], "orthogonalize": False}, {"params": [ps[1]]}])
    assert torch.equal(out[0], g[0])
    assert torch.allclose(out[1], polar(g[1]), atol=1e-12)


def test_orthogonalize_adjust_lr_and_dual_norm():
    g = rand((3, 5))[0]
    P = polar(g)
    out = once([tz.m.Orthogonalize(method="svd", adjust_lr=True)], [g])[0]
    assert torch.allclose(out, P * 0.2 * math.sqrt(5), atol=1e-12)
    out = once([tz.m.Orthogonalize(method="svd", dual_norm_correction=True)], [g])[0]
    nuclear = torch.linalg.matrix_norm(g, "nuc")
    assert torch.allclose(out, P * nuclear, atol=1e-10)


def test_dual_norm_correction_uses_gradient():
    # the reference's DualNormCorrection asserts a gradient it never requests; ours reads it
    g = rand((4, 3), (2,))
    out = once([tz.m.Mul(2.0), tz.m.Orthogonalize(method="svd"), tz.m.DualNormCorrection()], g)
    P = polar(g[0])
    assert torch.allclose(out[0], P * (g[0] * P).sum(), atol=1e-10)  # <grad, O> O, not <2 grad, O>
    assert torch.allclose(out[1], 2 * g[1])


def test_muon_adjust_lr():
    # the reference's MuonAdjustLR is abstract (cannot be instantiated)
    g = rand((2, 7, 3), (4,))
    out = once([tz.m.MuonAdjustLR()], g)
    assert torch.allclose(out[0], g[0] * 0.2 * math.sqrt(7))
    assert torch.equal(out[1], g[1])
    out = once([tz.m.MuonAdjustLR(channel_first=False, alpha=0.5)], g)
    assert torch.allclose(out[0], g[0] * 0.5 * 0.2 * math.sqrt(7))


def test_muon_converges():
    start, end, best = run_quadratic([tz.m.HeavyBall(0.9), tz.m.Orthogonalize(), tz.m.LR(0.02)], 200, shape=(2, 3))
    assert end - best < 0.05 * (start - best)


def test_orthogonalize_bad_method():
    with pytest.raises(ValueError, match="method"):
        tz.m.Orthogonalize(method="nope")


# ----------------------------------------------------------------------------- Shampoo
def _mpow(A, p):
    L, Q = torch.linalg.eigh(A)
    return Q @ torch.diag(L.abs() ** p) @ Q.T


def test_shampoo_matrix_formula():
    seq = [rand((4, 3), seed=i) for i in range(3)]
    got = updates([tz.m.Shampoo(precond_freq=1, merge_small=False)], seq)
    L, R = torch.eye(4, dtype=DT), torch.eye(3, dtype=DT)
    for (g,), (u,) in zip(seq, got):
        L, R = L + g @ g.T, R + g.T @ g
        assert torch.allclose(u, _mpow(L, -0.25) @ g @ _mpow(R, -0.25), atol=1e-10)


def test_shampoo_precond_freq_reuses_roots():
    seq = [rand((4, 3), seed=i) for i in range(2)]
    got = updates([tz.m.Shampoo(precond_freq=5, merge_small=False)], seq)
    g0, g1 = seq[0][0], seq[1][0]
    L, R = torch.eye(4, dtype=DT) + g0 @ g0.T, torch.eye(3, dtype=DT) + g0.T @ g0
    assert torch.allclose(got[1][0], _mpow(L, -0.25) @ g1 @ _mpow(R, -0.25), atol=1e-10)


def test_shampoo_beta_debias_counts_accumulator_updates():
    # the reference debiases by the number of root computations; the EMA is updated every step
    seq = [rand((5,), seed=i) for i in range(3)]
    got = updates([tz.m.Shampoo(precond_freq=2, beta=0.9)], seq)
    A = torch.eye(5, dtype=DT)
    for g, in seq:
        A = 0.9 * A + 0.1 * torch.outer(g, g)
    g2 = seq[2][0]
    assert torch.allclose(got[2][0], _mpow(A / (1 - 0.9 ** 3), -0.5) @ g2, atol=1e-8)


def test_shampoo_adagrad_fallback_for_large_dims():
    # the reference leaves such tensors unchanged; the seed documents an Adagrad fallback
    seq = [rand((4, 3), (), seed=i) for i in range(3)]
    got = updates([tz.m.Shampoo(precond_freq=1, merge_small=False, max_dim=3, adagrad_eps=1e-8)], seq)
    acc = [torch.zeros(4, 3, dtype=DT), torch.zeros((), dtype=DT)]
    for gs, us in zip(seq, got):
        for i in range(2):
            acc[i] = acc[i] + gs[i] ** 2
            assert torch.allclose(us[i], gs[i] / (acc[i].sqrt() + 1e-8))


def test_shampoo_size1_dims_without_merge():
    # the reference crashes here
    seq = [rand((2, 1, 3), seed=i) for i in range(2)]
    got = updates([tz.m.Shampoo(precond_freq=1, merge_small=False)], seq)
    ref = updates([tz.m.Shampoo(precond_freq=1, merge_small=False)], [[g[0].reshape(2, 3)] for g in seq])
    for (u,), (r,) in zip(got, ref):
        assert torch.allclose(u.reshape(2, 3), r)


def test_shampoo_merge_small():
    seq = [rand((2, 3, 4), seed=i) for i in range(2)]
    merged = updates([tz.m.Shampoo(precond_freq=1)], seq)
    flat = updates([tz.m.Shampoo(precond_freq=1)], [[g[0].reshape(24)] for g in seq])
    assert torch.allclose(merged[1][0].reshape(24), flat[1][0])
    kron = updates([tz.m.Shampoo(precond_freq=1, max_dim=6)], seq)  # (2,3,4) -> (6, 4)
    assert not torch.allclose(kron[1][0], merged[1][0])


def test_shampoo_matrix_power_option():
    g = rand((5,))[0]
    out = once([tz.m.Shampoo(matrix_power=-1.0)], [g])[0]
    A = torch.eye(5, dtype=DT) + torch.outer(g, g)
    assert torch.allclose(out, torch.linalg.solve(A, g), atol=1e-10)


def test_shampoo_converges():
    start, end, best = run_quadratic([tz.m.Shampoo(precond_freq=1), tz.m.LR(0.3)], 60, shape=(2, 3))
    assert end - best < 0.05 * (start - best)
