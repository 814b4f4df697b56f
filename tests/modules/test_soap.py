"""matrix_adaptive/soap.py: SOAP (Vyas et al., 2024) and its Kronecker eigenbasis helpers."""
from __future__ import annotations

import math

import pytest
import torch

import torchzero as tz
from torchzero.modules.matrix_adaptive.soap import from_layout, kron_layout, to_layout
from module_updates import updates

DT = torch.float64


def rand_seq(shapes, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [[torch.randn(s, generator=g, dtype=DT) for s in shapes] for _ in range(n)]


def test_first_step_is_clipped_and_skips_inner():
    g = torch.tensor([[0.03, -2.0, 0.5], [1e-3, 0.2, -0.05]], dtype=DT)
    inner = tz.m.Mul(100.0)
    (u,), = updates([tz.m.SOAP(inner=inner), tz.m.LR(1.0)], [[g]])
    assert torch.allclose(u, g.clamp(-0.1, 0.1))


@pytest.mark.parametrize("shape", [(4, 3), (5,), (2, 3, 2)])
def test_eigenbasis_is_orthonormal_and_diagonalizes(shape):
    seq = rand_seq([shape], 7)
    soap = tz.m.SOAP(precond_freq=2)
    ps = [torch.zeros(shape, dtype=DT, requires_grad=True)]
    opt = tz.Optimizer(ps, soap, tz.m.LR(0.1))
    for k, (g,) in enumerate(seq):
        ps[0].grad = g.clone()
        opt.step()
        st = soap.state[ps[0]]
        for A, Q in zip(st["GG"], st["Q"]):
            assert torch.allclose(Q.T @ Q, torch.eye(Q.shape[0], dtype=DT), atol=1e-6)
            if k == 0:  # exact eigenvectors, by decreasing eigenvalue
                D = Q.T @ A @ Q
                assert torch.allclose(D, torch.diag(torch.diagonal(D)), atol=1e-12)
                assert bool((torch.diagonal(D)[:-1] >= torch.diagonal(D)[1:] - 1e-12).all())


def test_fixed_singular_bases_give_rotated_adam():
    """Gradients ``U diag(d_k) V^T`` with fixed ``U, V``: the eigenbases are ``U, V`` and SOAP is
    elementwise Adam on ``d_k`` (every step counted, the first one clipped). ``eps`` is large enough
    that the float32 rounding of the refreshed bases (coordinates of ~1e-7 where ``d`` has none) is
    not amplified to O(1) by the division."""
    gen = torch.Generator().manual_seed(3)
    U = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=DT)).Q
    V = torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=DT)).Q
    ds = [torch.tensor([3.0, -2.0, 1.0], dtype=DT) * (1 + 0.1 * k) * torch.tensor([1.0, (-1.0) ** k, 1.0], dtype=DT)
          for k in range(6)]
    Gs = [U[:, :3] @ torch.diag(d) @ V.T for d in ds]
    b1, b2, eps = 0.9, 0.95, 1e-2
    out = updates([tz.m.SOAP(beta1=b1, beta2=b2, eps=eps, precond_freq=1, merge_small=False), tz.m.LR(1.0)], [[G] for G in Gs])
    m = torch.zeros(3, dtype=DT)
    v = torch.zeros(3, dtype=DT)
    assert torch.allclose(out[0][0], Gs[0].clamp(-0.1, 0.1))
    for k in range(1, 6):
        t = k + 1
        m = b1 * m + (1 - b1) * ds[k]
        v = b2 * v + (1 - b2) * ds[k] ** 2
        a = m / (v.sqrt() + eps) * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        expected = U[:, :3] @ torch.diag(a) @ V.T
        assert torch.allclose(out[k][0], expected, atol=1e-4), k


def test_no_momentum_is_signed_rotation():
    """beta1 = beta2 = 0, no debias, eps = 0: the update is ``Q_L sign(Q_L^T G Q_R) Q_R^T``."""
    seq = rand_seq([(4, 3)], 2, seed=5)
    out = updates([tz.m.SOAP(beta1=0.0, beta2=0.0, eps=0.0, debias=False, precond_freq=100, merge_small=False), tz.m.LR(1.0)], seq)
    G0, G1 = seq[0][0], seq[1][0]
    QL = torch.linalg.eigh(G0 @ G0.T)[1]
    QR = torch.linalg.eigh(G0.T @ G0)[1]
    expected = QL @ torch.sign(QL.T @ G1 @ QR) @ QR.T
    assert torch.allclose(out[1][0], expected, atol=1e-10)


def test_unpreconditioned_tensors_get_adam():
    """0-d tensors and vectors without precondition_1d: plain Adam with every step counted."""
    seq = rand_seq([(), (5,)], 5, seed=2)
    out = updates([tz.m.SOAP(precondition_1d=False), tz.m.LR(1.0)], seq)
    for i in range(2):
        m = torch.zeros_like(seq[0][i])
        v = torch.zeros_like(seq[0][i])
        for k in range(1, 5):
            g = seq[k][i]
            m = 0.95 * m + 0.05 * g
            v = 0.95 * v + 0.05 * g * g
            t = k + 1
            exp = m / (v.sqrt() + 1e-8) * math.sqrt(1 - 0.95 ** t) / (1 - 0.95 ** t)
            assert torch.allclose(out[k][i], exp, atol=1e-12)


def test_layout():
    assert kron_layout((4, 3), False, 4096, True) == (None, [4, 3], [True, True])
    assert kron_layout((4, 3), True, 4096, True) == ([1, 0], [12], [True])
    assert kron_layout((4, 3), True, 4096, False) == ([1, 0], [12], None)
    assert kron_layout((3, 2, 5, 1), True, 6, True) == ([3, 1, 0, 2], [6, 5], [True, True])
    assert kron_layout((7, 8), True, 4, True) == (None, [7, 8], [False, False])
    assert kron_layout((), False, 10, True) == (None, [], None)
    assert kron_layout((4, 1), False, 10, True) == (None, [4, 1], [True, False])
    # a dim of exactly max_dim is preconditioned (the reference skips it)
    assert kron_layout((3, 3), False, 3, True) == (None, [3, 3], [True, True])
    t = torch.arange(30.0).reshape(3, 2, 5, 1)
    perm, work, _ = kron_layout(t.shape, True, 6, True)
    assert torch.equal(from_layout(to_layout(t, perm, work), perm, t.shape), t)


def test_max_dim_equal_size_is_preconditioned():
    soap = tz.m.SOAP(max_dim=3)
    p = torch.zeros(3, 3, dtype=DT, requires_grad=True)
    opt = tz.Optimizer([p], soap, tz.m.LR(0.1))
    p.grad = torch.randn(3, 3, dtype=DT)
    opt.step()
    assert all(Q is not None for Q in soap.state[p]["Q"])
    soap2 = tz.m.SOAP(max_dim=2)
    opt2 = tz.Optimizer([p], soap2, tz.m.LR(0.1))
    p.grad = torch.randn(3, 3, dtype=DT)
    opt2.step()
    assert all(Q is None for Q in soap2.state[p]["Q"])


def test_converges_on_ill_conditioned_matrix_problem():
    """``0.5 ||A W B - C||^2`` with ill-conditioned ``A, B`` (a Kronecker-structured Hessian)."""
    gen = torch.Generator().manual_seed(0)
    A = torch.linalg.qr(torch.randn(4, 4, generator=gen, dtype=DT)).Q @ torch.diag(torch.tensor([10.0, 3.0, 1.0, 0.3], dtype=DT))
    B = torch.diag(torch.tensor([5.0, 1.0, 0.2], dtype=DT)) @ torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=DT)).Q
    C = torch.randn(4, 3, generator=gen, dtype=DT)
    W = torch.zeros(4, 3, dtype=DT, requires_grad=True)
    f = lambda: 0.5 * ((A @ W @ B - C) ** 2).sum()
    opt = tz.Optimizer([W], tz.m.SOAP(precond_freq=5, merge_small=False), tz.m.LR(0.05))
    f0 = float(f().detach())
    for _ in range(300):
        opt.zero_grad()
        loss = f()
        loss.backward()
        opt.step()
    assert float(f().detach()) < 1e-3 * f0


def test_small_dims_are_merged_by_default():
    """The seed's default: ``merge_small=True`` (a 4x3 matrix gets one 12x12 eigenbasis)."""
    seq = rand_seq([(4, 3), (5,)], 4, seed=2)
    default = updates([tz.m.SOAP(precond_freq=1), tz.m.LR(1.0)], seq)
    merged = updates([tz.m.SOAP(precond_freq=1, merge_small=True), tz.m.LR(1.0)], seq)
    for a, b in zip(default, merged):
        assert all(torch.equal(x, y) for x, y in zip(a, b))


OPTIONS = [dict(beta1=0.5), dict(beta2=0.5), dict(shampoo_beta=0.5), dict(shampoo_beta=None), dict(precond_freq=1),
           dict(merge_small=False), dict(max_dim=3), dict(precondition_1d=False), dict(eps=1e-1), dict(debias=False),
           dict(alpha=0.5), dict(inner=tz.m.EMA(0.5))]


@pytest.mark.parametrize("kw", OPTIONS, ids=lambda kw: ",".join(kw))
def test_each_option_changes_the_update(kw):
    seq = rand_seq([(4, 3), (5,)], 6, seed=1)
    base = updates([tz.m.SOAP(precond_freq=2), tz.m.LR(1.0)], seq)
    kw = dict(kw)
    if "inner" in kw:
        kw["inner"] = tz.m.EMA(0.5)
    changed = updates([tz.m.SOAP(**{"precond_freq": 2, **kw}), tz.m.LR(1.0)], seq)
    diff = max(float((a - b).abs().max()) for sa, sb in zip(base[1:], changed[1:]) for a, b in zip(sa, sb))
    assert diff > 1e-4


def test_proj_exp_avg_changes_where_the_momentum_lives_not_the_step():
    """The first moment rotated along with the basis (``Q_new^T Q_old m``) equals the first moment
    kept in the original space and rotated each step, up to the float32 rounding of the bases."""
    seq = rand_seq([(4, 3)], 8, seed=1)
    ps = [torch.zeros(4, 3, dtype=DT, requires_grad=True) for _ in range(2)]
    mods = [tz.m.SOAP(precond_freq=2, proj_exp_avg=True), tz.m.SOAP(precond_freq=2, proj_exp_avg=False)]
    opts = [tz.Optimizer([p], m, tz.m.LR(1.0)) for p, m in zip(ps, mods)]
    for (g,) in seq:
        for p, o in zip(ps, opts):
            p.grad = g.clone()
            o.step()
    assert torch.allclose(ps[0], ps[1], atol=1e-5)
    st0, st1 = mods[0].state[ps[0]], mods[1].state[ps[1]]
    from torchzero.modules.matrix_adaptive.soap import project
    assert not torch.allclose(st0["exp_avg"], st1["exp_avg"], atol=1e-3)
    assert torch.allclose(st0["exp_avg"], project(st1["exp_avg"], st1["Q"]), atol=1e-5)


def test_float32_and_bad_arguments():
    p = torch.zeros(4, 3, requires_grad=True)
    opt = tz.Optimizer([p], tz.m.SOAP(precond_freq=1), tz.m.LR(0.1))
    for _ in range(4):
        p.grad = torch.randn(4, 3)
        opt.step()
    assert p.dtype == torch.float32 and torch.isfinite(p).all()
    with pytest.raises(ValueError, match="precond_freq"):
        tz.m.SOAP(precond_freq=0)
    with pytest.raises(ValueError, match="max_dim"):
        tz.m.SOAP(max_dim=0)
